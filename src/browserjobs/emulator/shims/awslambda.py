"""Lambda: where moto differs from AWS, and the shim that makes the local stack behave as AWS does.

Applied by browserjobs.emulator.shims.apply(); importing this module changes nothing.
"""

from __future__ import annotations

import base64
from typing import Any

from moto.awslambda.models import LambdaFunction

from browserjobs.emulator.shims import hooks

# --- Lambda: run the handler -------------------------------------------------------------------------------
# Without Docker moto cannot run code at all, marks every failure "Handled" and runs Event invocations
# synchronously. The hook runs the real handler and reports errors as AWS does.


def _header(headers: Any, name: str) -> str | None:
    for key, value in dict(headers or {}).items():
        if key.lower() == name:
            return value
    return None


def shim_lambda_invoke() -> None:
    original = LambdaFunction.invoke

    def invoke(self, body, request_headers, response_headers):
        if hooks.current() is None:
            return original(self, body, request_headers, response_headers)
        invocation_type = _header(request_headers, "x-amz-invocation-type") or "RequestResponse"
        if invocation_type == "DryRun":
            return b""
        payload = body.encode() if isinstance(body, str) else (body or b"{}")
        result = hooks.current().invoke_function(self, payload, invocation_type)
        if result.function_error:
            response_headers["x-amz-function-error"] = result.function_error
        if invocation_type == "RequestResponse" and _header(request_headers, "x-amz-log-type") == "Tail":
            response_headers["x-amz-log-result"] = base64.b64encode(result.log_tail[-4096:].encode()).decode()
        return result.payload

    LambdaFunction.invoke = invoke
