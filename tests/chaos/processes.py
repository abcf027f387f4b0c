"""The OS process table, read from /proc: which processes a local stack started, and which are workers.

Every process the local stack starts (Lambda environments, workers, their Chromium) inherits the
stack's AWS_ENDPOINT_URL, and workers also carry their TASK_ARN: that is how a run finds its own
processes among those of anything else running on the machine.
"""

from __future__ import annotations

import contextlib
import os
import signal
from dataclasses import dataclass
from pathlib import Path

PROC = Path("/proc")


@dataclass(frozen=True)
class ProcessInfo:
    pid: int
    command: list[str]
    environment: dict[str, str]

    @property
    def task_arn(self) -> str | None:
        return self.environment.get("TASK_ARN")

    @property
    def is_worker(self) -> bool:
        """The worker itself (`python -m browserjobs.worker`), not the Chromium or driver processes it ran."""
        return self.command[1:3] == ["-m", "browserjobs.worker"]


def _read(pid_dir: Path) -> ProcessInfo | None:
    try:
        raw_env = (pid_dir / "environ").read_bytes()
        raw_cmd = (pid_dir / "cmdline").read_bytes()
        state = (pid_dir / "stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None  # ended meanwhile, or not ours to read
    if state == "Z":  # a zombie runs nothing; its parent has yet to reap it
        return None
    environment = {}
    for entry in raw_env.split(b"\0"):
        key, sep, value = entry.partition(b"=")
        if sep:
            environment[key.decode(errors="replace")] = value.decode(errors="replace")
    command = [part.decode(errors="replace") for part in raw_cmd.split(b"\0") if part]
    return ProcessInfo(int(pid_dir.name), command, environment)


def stack_processes(endpoint_url: str) -> list[ProcessInfo]:
    """Live processes started by the local stack at endpoint_url (any depth below it)."""
    found = []
    for pid_dir in PROC.iterdir():
        if not pid_dir.name.isdigit() or int(pid_dir.name) == os.getpid():
            continue
        info = _read(pid_dir)
        if info is not None and info.environment.get("AWS_ENDPOINT_URL") == endpoint_url:
            found.append(info)
    return found


def task_processes(endpoint_url: str) -> list[ProcessInfo]:
    """Live processes of ECS tasks (workers and their browsers) of that stack."""
    return [info for info in stack_processes(endpoint_url) if info.task_arn]


def worker_pid(endpoint_url: str, task_arn: str) -> int | None:
    for info in task_processes(endpoint_url):
        if info.task_arn == task_arn and info.is_worker:
            return info.pid
    return None


def send_spot_notice(pid: int) -> bool:
    """SIGTERM to the worker alone, as Fargate's init forwards a Spot interruption notice to it."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
        return True
    return False
