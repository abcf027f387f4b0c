"""`python -m browserjobs.worker.health`: the pool container's health check (exit 0 healthy, 1 not).

The pool worker writes its health file on every cycle of its receive loop while its browser loop answers
and no job is overdue (worker/pool.py, PoolWorker.healthy). A file older than STALE_SECONDS means a hung
worker: ECS marks the container UNHEALTHY after the check's retries and replaces the task, whose jobs the
crash hook fails so that they are retried elsewhere.
"""

from __future__ import annotations

import os
import sys
import time

from browserjobs.worker.pool_config import health_file

# The receive loop's longest cycle is a long poll (10 s) and a health probe (5 s); three of them missed.
STALE_SECONDS = 45.0


def check(path: str, now: float) -> str | None:
    try:
        age = now - os.stat(path).st_mtime
    except OSError:
        return f"no health file at {path}: the worker has not started its loop"
    return f"the worker last reported health {age:.0f} s ago" if age > STALE_SECONDS else None


if __name__ == "__main__":
    problem = check(health_file(os.environ), time.time())
    if problem:
        print(problem, file=sys.stderr)
    sys.exit(1 if problem else 0)
