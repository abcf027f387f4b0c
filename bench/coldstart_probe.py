"""One Lambda cold start in this fresh process: import the handler's module, then call it once.

Run as a script (never imported): `python -P -s [-S] -B coldstart_probe.py` with PYTHONPATH = code dir, layer,
runtime..., and a JSON request on stdin: {"handler": "app.lambda_handler", "event": {...}}. Prints one JSON
line: import and first-call times (wall and this process's CPU), and the outcome (the result's first
characters, or the error).
"""

import importlib
import json
import os
import sys
import time


class Context:
    """The attributes of Lambda's context object that handlers and Powertools read."""

    aws_request_id = "00000000-0000-4000-8000-000000000000"
    function_version = "$LATEST"
    identity = None
    client_context = None

    def __init__(self):
        self.function_name = os.environ["AWS_LAMBDA_FUNCTION_NAME"]
        self.invoked_function_arn = os.environ.get("_BENCH_FUNCTION_ARN", "")
        self.memory_limit_in_mb = int(os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128"))
        self.log_group_name = f"/aws/lambda/{self.function_name}"
        self.log_stream_name = "bench"
        self._deadline = time.time() + 30

    def get_remaining_time_in_millis(self):
        return int((self._deadline - time.time()) * 1000)


def main():
    request = json.loads(sys.stdin.read())
    module_name, _, function_name = request["handler"].rpartition(".")
    started, started_cpu = time.perf_counter(), time.process_time()
    handler = getattr(importlib.import_module(module_name), function_name)
    imported, imported_cpu = time.perf_counter(), time.process_time()
    try:
        outcome = json.dumps(handler(request["event"], Context()), default=str)[:300]
    except Exception as error:  # reported, not raised: the timing is still a measurement
        outcome = f"error {type(error).__name__}: {error}"[:300]
    called, called_cpu = time.perf_counter(), time.process_time()
    result = {
        "import_ms": (imported - started) * 1000,
        "import_cpu_ms": (imported_cpu - started_cpu) * 1000,
        "first_call_ms": (called - imported) * 1000,
        "first_call_cpu_ms": (called_cpu - imported_cpu) * 1000,
        "outcome": outcome,
    }
    sys.stdout.flush()
    os.write(int(os.environ["_BENCH_RESULT_FD"]), (json.dumps(result) + "\n").encode())


if __name__ == "__main__":
    main()
