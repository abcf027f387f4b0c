"""One Lambda execution environment: imports the handler once, then serves invocations until stdin closes.

Run as a script (never imported) with `python -P`, so its own folder is not on sys.path; PYTHONPATH puts the
function's code folder and its layers first, as /var/task and /opt/python are on Lambda.
Requests arrive on stdin and responses leave on the file descriptor in _LOCAL_RUNTIME_FD, one JSON object
per line, so nothing the handler prints can be mistaken for a result.
"""

import importlib
import json
import os
import sys
import time
import traceback


class Context:
    """The context object's attributes that handlers and Powertools read."""

    def __init__(self, request_id, deadline_epoch_ms):
        self.aws_request_id = request_id
        self.function_name = os.environ["AWS_LAMBDA_FUNCTION_NAME"]
        self.function_version = os.environ["AWS_LAMBDA_FUNCTION_VERSION"]
        self.invoked_function_arn = os.environ["_LOCAL_FUNCTION_ARN"]
        self.memory_limit_in_mb = int(os.environ["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"])
        self.log_group_name = os.environ["AWS_LAMBDA_LOG_GROUP_NAME"]
        self.log_stream_name = os.environ["AWS_LAMBDA_LOG_STREAM_NAME"]
        self.identity = None
        self.client_context = None
        self._deadline_epoch_ms = deadline_epoch_ms

    def get_remaining_time_in_millis(self):
        return max(0, int(self._deadline_epoch_ms - time.time() * 1000))


class _Tee:
    """Writes through to the real stream and keeps what one invocation wrote (for Invoke's LogResult)."""

    def __init__(self, stream, captured):
        self._stream = stream
        self._captured = captured

    def write(self, text):
        self._captured.append(text)
        return self._stream.write(text)

    def __getattr__(self, name):
        return getattr(self._stream, name)


def _error(error_type, message, request_id, stack=()):
    return {
        "errorMessage": message,
        "errorType": error_type,
        "requestId": request_id,
        "stackTrace": list(stack),
    }


def _load_handler():
    module_name, _, function_name = os.environ["_HANDLER"].rpartition(".")
    try:
        module = importlib.import_module(module_name.replace("/", "."))
    except ImportError as error:
        return None, ("Runtime.ImportModuleError", f"Unable to import module '{module_name}': {error}")
    except Exception as error:  # what the Python runtime reports for a module that raises on import
        return None, (
            "Runtime.UserCodeSyntaxError" if isinstance(error, SyntaxError) else type(error).__name__,
            f"Unable to import module '{module_name}': {error}",
        )
    handler = getattr(module, function_name, None)
    if handler is None:
        return None, (
            "Runtime.HandlerNotFound",
            f"Handler '{function_name}' missing on module '{module_name}'",
        )
    return handler, None


def main():
    responses = os.fdopen(int(os.environ.pop("_LOCAL_RUNTIME_FD")), "w", buffering=1)
    captured = []
    sys.stdout, sys.stderr = _Tee(sys.stdout, captured), _Tee(sys.stderr, captured)
    handler, init_error = _load_handler()
    responses.write(json.dumps({"ready": True}) + "\n")  # the invocation's timeout starts now, as on Lambda
    for line in sys.stdin:
        request = json.loads(line)
        request_id = request["requestId"]
        captured.clear()
        started = time.monotonic()
        print(
            f"START RequestId: {request_id} Version: {os.environ['AWS_LAMBDA_FUNCTION_VERSION']}", flush=True
        )
        if init_error:
            response = {"error": _error(*init_error, request_id)}
            print(f"[ERROR] {init_error[0]}: {init_error[1]}", file=sys.stderr, flush=True)
        else:
            try:
                result = handler(
                    json.loads(request["event"]), Context(request_id, request["deadlineEpochMs"])
                )
            except Exception as error:
                stack = traceback.format_list(traceback.extract_tb(error.__traceback__)[1:])
                response = {"error": _error(type(error).__name__, str(error), request_id, stack)}
                print(f"[ERROR] {type(error).__name__}: {error}", file=sys.stderr, flush=True)
                traceback.print_exc()
                sys.stderr.flush()
            else:
                try:
                    response = {"payload": json.dumps(result)}
                except (TypeError, ValueError) as error:
                    message = f"Unable to marshal response: {error}"
                    response = {"error": _error("Runtime.MarshalError", message, request_id)}
        duration_ms = (time.monotonic() - started) * 1000
        print(f"END RequestId: {request_id}", flush=True)
        print(f"REPORT RequestId: {request_id}\tDuration: {duration_ms:.2f} ms", flush=True)
        response["logTail"] = "".join(captured)[-4096:]
        responses.write(json.dumps(response) + "\n")


if __name__ == "__main__":
    main()
