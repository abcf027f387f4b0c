"""Runs an action until it ends, or until it must stop: a stop request, a dead browser, the job's deadline."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from browserjobs.worker.errors import ErrorName, JobFailure
from browserjobs.worker.stop import StopFlag

POLL_SECONDS = 0.1
CANCEL_GRACE_SECONDS = 5.0


async def supervise(
    work: Awaitable[None],
    *,
    stop: StopFlag,
    crashed: Callable[[], JobFailure | None],
    deadline: float,
    timeout_seconds: int,
) -> None:
    """Every await inside the action is a safe point: the action is cancelled there, its browser discarded."""
    task = asyncio.ensure_future(work)
    while True:
        done, _ = await asyncio.wait({task}, timeout=POLL_SECONDS)
        if done:
            task.result()
            return
        reason = stop.reason or crashed()
        if reason is None and time.monotonic() >= deadline:
            reason = JobFailure(
                ErrorName.WORKER_TIMEOUT,
                f"the job's deadline (timeoutSeconds={timeout_seconds}) passed inside the worker",
            )
        if reason is not None:
            task.cancel()
            await asyncio.wait({task}, timeout=CANCEL_GRACE_SECONDS)
            raise reason
