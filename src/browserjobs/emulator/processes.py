"""Child processes of the local stack (Lambda execution environments, workers) and where their output goes.

Every child is started from one long-lived thread with PR_SET_PDEATHSIG, so if the stack itself is
killed outright its children die with it instead of lingering. (The signal follows the thread that forked
the child, which is why forking happens on that one thread and not on whichever request thread asked.)
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import IO, Any

from moto.logs.models import logs_backends

from browserjobs.emulator.settings import ACCOUNT_ID, REGION

_PR_SET_PDEATHSIG = 1
_libc = ctypes.CDLL(None, use_errno=True)


def _die_with_parent() -> None:
    _libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


class Launcher:
    def __init__(self) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="local-launcher")
        self._children: set[subprocess.Popen] = set()
        self._lock = threading.Lock()

    def spawn(self, args: Sequence[str], **popen: Any) -> subprocess.Popen:
        process = self._executor.submit(
            subprocess.Popen, list(args), preexec_fn=_die_with_parent, start_new_session=True, **popen
        ).result()
        with self._lock:
            self._children.add(process)
        return process

    def terminate(self, process: subprocess.Popen, grace_seconds: float) -> int:
        """SIGTERM to the child, SIGKILL to its process group after the grace period; returns the exit code.

        As `docker stop` does to a container started with an init process (ECS initProcessEnabled): the
        init forwards SIGTERM to the main process only, so a pool worker's Chromium keeps serving the jobs
        it lets finish; everything left is killed at the end.
        """
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGTERM)
        try:
            code = process.wait(timeout=grace_seconds)
        except subprocess.TimeoutExpired:
            _signal_group(process, signal.SIGKILL)
            code = process.wait()
        # Grandchildren (Chromium) may outlive a worker that exited on its own.
        _signal_group(process, signal.SIGKILL)
        with self._lock:
            self._children.discard(process)
        return code

    def signal(self, process: subprocess.Popen, signum: int) -> None:
        _signal_group(process, signum)

    def kill(self, process: subprocess.Popen) -> None:
        _signal_group(process, signal.SIGKILL)
        process.wait()
        with self._lock:
            self._children.discard(process)

    def stop(self, grace_seconds: float = 5.0) -> None:
        with self._lock:
            children = list(self._children)
        threads = [threading.Thread(target=self.terminate, args=(child, grace_seconds)) for child in children]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        self._executor.shutdown(wait=True)


def _signal_group(process: subprocess.Popen, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signum)


class LogSink:
    """Writes a child's output lines to CloudWatch Logs (as AWS would) and to a file under the log folder."""

    def __init__(self, folder: Path, echo: Callable[[str], None] | None = None):
        self.folder = folder
        self.folder.mkdir(parents=True, exist_ok=True)
        self._echo = echo
        self._lock = threading.Lock()

    def follow(self, stream: IO[bytes], group: str, log_stream: str, label: str) -> threading.Thread:
        """Copy lines from a child's stdout until it closes."""
        thread = threading.Thread(target=self._copy, args=(stream, group, log_stream, label), daemon=True)
        thread.start()
        return thread

    def _copy(self, stream: IO[bytes], group: str, log_stream: str, label: str) -> None:
        backend = logs_backends[ACCOUNT_ID][REGION]
        with self._lock:
            if group not in backend.groups:
                backend.create_log_group(group, {})
            backend.create_log_stream(group, log_stream)
        path = self.folder / f"{label}.log"
        with stream, path.open("a", encoding="utf-8") as local_file:
            for raw in iter(stream.readline, b""):
                line = raw.decode("utf-8", "replace").rstrip("\n")
                local_file.write(line + "\n")
                local_file.flush()
                backend.put_log_events(
                    group, log_stream, [{"timestamp": int(time.time() * 1000), "message": line}]
                )
                if self._echo:
                    self._echo(f"[{label}] {line}")
