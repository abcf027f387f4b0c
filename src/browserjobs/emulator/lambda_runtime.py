"""Runs Lambda functions from their source folders, in warm execution environments, as Lambda does.

Each execution environment is a subprocess (runtime_bootstrap/bootstrap.py) that imports the handler once
and serves one invocation at a time with the environment the function's configuration gives it.
Concurrent invocations get more environments; an invocation that outlives the function's Timeout (counted
from the end of the environment's init, as on Lambda) kills its environment (the next one starts cold),
and errors come back as Lambda reports them.
"""

from __future__ import annotations

import io
import json
import os
import select
import subprocess
import sys
import tempfile
import threading
import time
import uuid
import zipfile
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from moto.awslambda.models import LambdaFunction

from browserjobs.emulator.access import ENFORCER
from browserjobs.emulator.deploy import FunctionSource
from browserjobs.emulator.processes import Launcher, LogSink
from browserjobs.emulator.settings import IMPORT_ROOT, client_environment
from browserjobs.emulator.shims import InvokeResult

BOOTSTRAP = Path(__file__).resolve().parent / "runtime_bootstrap" / "bootstrap.py"
MAX_IDLE_ENVIRONMENTS = 4
INIT_TIMEOUT_SECONDS = 10.0  # Lambda's limit for an on-demand environment's init
# Asynchronous invocations are retried twice on error, one and then two minutes later, as on AWS.
ASYNC_RETRY_DELAYS_SECONDS = (60.0, 120.0)


@dataclass(frozen=True)
class FunctionConfig:
    name: str
    arn: str
    handler: str
    runtime: str
    timeout: float
    memory_size: int
    environment: dict[str, str]
    source: FunctionSource
    role: str = ""

    @property
    def version(self) -> str:
        return "$LATEST"


class ExecutionEnvironment:
    def __init__(self, config: FunctionConfig, launcher: Launcher, logs: LogSink, endpoint_url: str):
        self.config = config
        self._launcher = launcher
        log_stream = f"{time.strftime('%Y/%m/%d')}/[{config.version}]{uuid.uuid4().hex}"
        # The layer's browserjobs.core is this process's own (the layer build copies the same package).
        paths = [str(config.source.code_dir), *map(str, config.source.layer_dirs), str(IMPORT_ROOT)]
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "LANG": "C.UTF-8",
            "TZ": ":UTC",
            "LAMBDA_TASK_ROOT": str(config.source.code_dir),
            "_HANDLER": config.handler,
            "AWS_EXECUTION_ENV": f"AWS_Lambda_{config.runtime}",
            "AWS_LAMBDA_FUNCTION_NAME": config.name,
            "AWS_LAMBDA_FUNCTION_VERSION": config.version,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(config.memory_size),
            "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{config.name}",
            "AWS_LAMBDA_LOG_STREAM_NAME": log_stream,
            "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
            # There is no X-Ray daemon locally; Powertools' Tracer would only log that it cannot send.
            "POWERTOOLS_TRACE_DISABLED": "true",
            "PYTHONUNBUFFERED": "1",
            "_LOCAL_FUNCTION_ARN": config.arn,
            "PYTHONPATH": os.pathsep.join(paths),
            **(client_environment(endpoint_url) if endpoint_url else {}),  # no endpoint: AWS itself
            # As on Lambda: the execution role's temporary credentials, which the endpoint checks.
            **(ENFORCER.role_environment(config.role, config.name) if endpoint_url else {}),
            **config.environment,
        }
        read_fd, write_fd = os.pipe()
        env["_LOCAL_RUNTIME_FD"] = str(write_fd)
        self.process = launcher.spawn(
            [sys.executable, "-P", str(BOOTSTRAP)],
            env=env,
            cwd=config.source.code_dir,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            pass_fds=(write_fd,),
        )
        os.close(write_fd)
        self._responses = os.fdopen(read_fd, "rb")
        self._initialised = False
        logs.follow(self.process.stdout, f"/aws/lambda/{config.name}", log_stream, config.name)

    def invoke(self, request_id: str, event: bytes, timeout: float) -> dict[str, Any]:
        """Run one invocation; {"payload": str} or {"error": {...}}. Raises TimeoutError past its timeout.

        As on Lambda, the timeout counts from the end of the environment's init (the handler's import),
        which has INIT_TIMEOUT_SECONDS of its own.
        """
        if not self._initialised:
            line = self._read_line(time.time() + INIT_TIMEOUT_SECONDS)
            if not line:
                return self._exited(request_id)
            self._initialised = True
        deadline = time.time() + timeout
        request = {"requestId": request_id, "event": event.decode(), "deadlineEpochMs": deadline * 1000}
        try:
            self.process.stdin.write((json.dumps(request) + "\n").encode())
            self.process.stdin.flush()
        except BrokenPipeError:
            return self._exited(request_id)
        line = self._read_line(deadline)
        return json.loads(line) if line else self._exited(request_id)

    def _read_line(self, deadline: float) -> bytes:
        ready, _, _ = select.select([self._responses], [], [], max(deadline - time.time(), 0))
        if not ready:
            raise TimeoutError
        return self._responses.readline()

    def _exited(self, request_id: str) -> dict[str, Any]:
        code = self.process.wait()
        message = f"RequestId: {request_id} Error: Runtime exited with error: exit status {code}"
        return {"error": {"errorType": "Runtime.ExitError", "errorMessage": message}}

    def alive(self) -> bool:
        return self.process.poll() is None

    def close(self) -> None:
        self._launcher.kill(self.process)
        self._responses.close()


class LambdaRuntime:
    def __init__(self, launcher: Launcher, logs: LogSink, endpoint_url: str):
        self._launcher = launcher
        self._logs = logs
        self._endpoint_url = endpoint_url
        self._sources: dict[str, FunctionSource] = {}
        self._idle: dict[str, list[ExecutionEnvironment]] = defaultdict(list)
        self._lock = threading.Lock()
        self._async = ThreadPoolExecutor(max_workers=4, thread_name_prefix="lambda-async")
        self._retries: set[threading.Timer] = set()
        self._closed = False
        self._extracted = tempfile.TemporaryDirectory(prefix="local-lambda-code-")

    def register_sources(self, sources: dict[str, FunctionSource]) -> None:
        self._sources.update(sources)

    def invoke(self, function: LambdaFunction, payload: bytes, invocation_type: str) -> InvokeResult:
        config = self._config(function)
        if invocation_type == "Event":
            self._async.submit(self._invoke_async, config, payload, 0)
            return InvokeResult(payload=b"")
        return self._invoke(config, payload)

    def _invoke_async(self, config: FunctionConfig, payload: bytes, attempt: int) -> None:
        result = self._invoke(config, payload)
        if not result.function_error or self._closed or attempt >= len(ASYNC_RETRY_DELAYS_SECONDS):
            return
        timer = threading.Timer(
            ASYNC_RETRY_DELAYS_SECONDS[attempt],
            lambda: self._async.submit(self._invoke_async, config, payload, attempt + 1),
        )
        timer.daemon = True
        with self._lock:
            self._retries.add(timer)
        timer.start()

    def _invoke(self, config: FunctionConfig, payload: bytes) -> InvokeResult:
        request_id = str(uuid.uuid4())
        environment = self._acquire(config)
        try:
            response = environment.invoke(request_id, payload, timeout=config.timeout)
        except TimeoutError:
            environment.close()
            message = f"RequestId: {request_id} Error: Task timed out after {config.timeout:.2f} seconds"
            return _error_result({"errorType": "Sandbox.Timedout", "errorMessage": message})
        if "error" in response:
            if not environment.alive():
                environment.close()
            else:
                self._release(environment)
            return _error_result(response["error"], response.get("logTail", ""))
        self._release(environment)
        return InvokeResult(payload=response["payload"].encode(), log_tail=response.get("logTail", ""))

    def _acquire(self, config: FunctionConfig) -> ExecutionEnvironment:
        with self._lock:
            idle = self._idle[config.name]
            while idle:
                environment = idle.pop()
                if environment.alive() and environment.config == config:
                    return environment
                environment.close()
        return ExecutionEnvironment(config, self._launcher, self._logs, self._endpoint_url)

    def _release(self, environment: ExecutionEnvironment) -> None:
        with self._lock:
            idle = self._idle[environment.config.name]
            if not self._closed and len(idle) < MAX_IDLE_ENVIRONMENTS:
                idle.append(environment)
                return
        environment.close()

    def _config(self, function: LambdaFunction) -> FunctionConfig:
        return FunctionConfig(
            name=function.function_name,
            arn=function.function_arn,
            handler=function.handler,
            runtime=function.run_time or "python3.13",
            timeout=float(function.timeout or 3),
            memory_size=int(function.memory_size or 128),
            environment={key: str(value) for key, value in (function.environment_vars or {}).items()},
            source=self._sources.get(function.function_name) or self._extract(function),
            role=function.role or "",
        )

    def _extract(self, function: LambdaFunction) -> FunctionSource:
        """A function deployed as a zip (not from this template's folders) runs from its unpacked code."""
        folder = Path(self._extracted.name) / f"{function.function_name}-{function.code_sha_256[:12]}"
        if not folder.exists():
            with zipfile.ZipFile(io.BytesIO(function.code_bytes)) as archive:
                archive.extractall(folder)
        return FunctionSource(code_dir=folder)

    def stop(self) -> None:
        with self._lock:
            self._closed = True
            for timer in self._retries:
                timer.cancel()
            environments = [env for idle in self._idle.values() for env in idle]
            self._idle.clear()
        self._async.shutdown(wait=False, cancel_futures=True)
        for environment in environments:
            environment.close()
        self._extracted.cleanup()


def _error_result(error: dict[str, Any], log_tail: str = "") -> InvokeResult:
    return InvokeResult(payload=json.dumps(error).encode(), function_error="Unhandled", log_tail=log_tail)
