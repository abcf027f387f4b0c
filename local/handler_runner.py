"""Runs one Lambda handler in this (fresh) process, the way the Lambda Python runtime would.

Usage: python -m local.handler_runner <app.py> <handler function> <timeout seconds> <result file>
The event is read from stdin. The handler's own stdout/stderr (its logs) pass through untouched; the
result or the error goes to the result file as JSON, so logs can never be mistaken for the result.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
import time
import traceback
import uuid
from pathlib import Path
from typing import Any


class LambdaContext:
    """The attributes of the runtime's context object that handlers and Powertools read."""

    def __init__(self, timeout_seconds: float):
        self.function_name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "local")
        self.function_version = "$LATEST"
        region = os.environ.get("AWS_REGION", "us-east-1")
        self.invoked_function_arn = f"arn:aws:lambda:{region}:123456789012:function:{self.function_name}"
        self.memory_limit_in_mb = int(os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128"))
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{self.function_name}"
        self.log_stream_name = "local"
        self._deadline = time.monotonic() + timeout_seconds

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def main(argv: list[str]) -> int:
    app_path, handler_name, timeout, result_path = Path(argv[0]), argv[1], float(argv[2]), Path(argv[3])
    sys.path[:0] = [str(app_path.parent)]
    event: Any = json.loads(sys.stdin.read() or "{}")
    try:
        spec = importlib.util.spec_from_file_location("app", app_path)
        module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
        sys.modules["app"] = module
        spec.loader.exec_module(module)  # type: ignore[union-attr]
        result = getattr(module, handler_name)(event, LambdaContext(timeout))
        outcome: dict[str, Any] = {"result": result}
    except Exception as error:  # reported like the runtime does: type, message, stack
        outcome = {"error": {"errorType": type(error).__name__, "errorMessage": str(error),
                             "stackTrace": traceback.format_exception(error)}}
    result_path.write_text(json.dumps(outcome, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
