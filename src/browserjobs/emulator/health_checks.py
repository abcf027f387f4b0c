"""Container health checks of local tasks, run as the ECS agent runs a container definition's healthCheck.

The command runs every interval with the container's environment; it is HEALTHY on exit 0, UNHEALTHY after
`retries` failures in a row, failures during `startPeriod` not counted. A task of a service that turns
UNHEALTHY is stopped and the service scheduler replaces it; a task run by itself goes on whatever its
health (https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_HealthCheck.html).

Locally the clock runs faster: every interval is LOCAL_HEALTH_CHECK_SECONDS (default 1 s) and the start
period keeps its number of intervals, so a 30 s check with a 60 s start period becomes a 1 s check with
a 2 s one. The container is told the same scale (POOL_HEALTH_STALE_SECONDS: three intervals) so that what
it calls stale matches.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from browserjobs.emulator.settings import seconds_setting

DEFAULT_LOCAL_INTERVAL_SECONDS = 1.0
# ECS's defaults (API_HealthCheck.html).
DEFAULT_INTERVAL, DEFAULT_TIMEOUT, DEFAULT_RETRIES, DEFAULT_START_PERIOD = 30, 5, 3, 0
# How many local intervals the container's own staleness window spans (worker/health.py).
STALE_INTERVALS = 3


def configured_interval_seconds() -> float:
    """LOCAL_HEALTH_CHECK_SECONDS, else DEFAULT_LOCAL_INTERVAL_SECONDS."""
    return seconds_setting("LOCAL_HEALTH_CHECK_SECONDS", DEFAULT_LOCAL_INTERVAL_SECONDS, positive=True)


@dataclass(frozen=True)
class HealthCheck:
    command: list[str]
    interval: float
    timeout: float
    retries: int
    start_period: float

    @classmethod
    def from_definition(cls, check: Mapping[str, Any], local_interval: float) -> HealthCheck:
        interval = float(check.get("interval") or DEFAULT_INTERVAL)
        start_period = float(check.get("startPeriod") or DEFAULT_START_PERIOD)
        return cls(
            command=[str(part) for part in check["command"]],
            interval=local_interval,
            timeout=float(check.get("timeout") or DEFAULT_TIMEOUT),
            retries=int(check.get("retries") or DEFAULT_RETRIES),
            start_period=start_period / interval * local_interval,
        )

    def argv(self) -> list[str]:
        """CMD as is (its python: this interpreter, as the image's is the worker's); CMD-SHELL in sh."""
        kind, *rest = self.command
        if kind == "CMD-SHELL":
            return ["/bin/sh", "-c", " ".join(rest)]
        if rest and Path(rest[0]).name.startswith("python"):
            rest[0] = sys.executable
        return rest

    def stale_seconds(self) -> str:
        return str(STALE_INTERVALS * self.interval)


def watch(
    check: HealthCheck,
    env: Mapping[str, str],
    cwd: Path,
    stopped: threading.Event,
    on_status: Callable[[str], None],
) -> None:
    """Run the check until the container stops or turns UNHEALTHY; report each change of status."""
    started, failures, status = time.monotonic(), 0, "UNKNOWN"
    while not stopped.wait(check.interval):
        if _passes(check, env, cwd):
            failures, now = 0, "HEALTHY"
        elif time.monotonic() - started < check.start_period:
            continue
        else:
            failures += 1
            if failures < check.retries:
                continue
            now = "UNHEALTHY"
        if now != status:
            status = now
            on_status(now)
        if status == "UNHEALTHY":
            return


def _passes(check: HealthCheck, env: Mapping[str, str], cwd: Path) -> bool:
    try:
        completed = subprocess.run(  # the task definition's own health check command
            check.argv(), env=dict(env), cwd=cwd, timeout=check.timeout, capture_output=True, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return completed.returncode == 0
