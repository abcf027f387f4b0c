"""`python -m browserjobs.worker.health`: the pool container's health check (exit 0 healthy, 1 not).

The pool worker writes its health file every second while its browser loop answers, its receive loop comes
round and no job is overdue (worker/pool.py, PoolWorker._watch_health). A file older than STALE_SECONDS means
a hung worker: ECS marks the container UNHEALTHY after the check's retries and replaces the task, whose
jobs the crash hook fails so that they are retried elsewhere.
"""

from __future__ import annotations

import os
import sys
import time

from browserjobs.worker.pool_config import health_file

# Well beyond a second's writes, and no shorter than the check's own interval (30 s in the template):
# POOL_HEALTH_STALE_SECONDS changes it (the local stack runs its checks on a faster clock).
STALE_SECONDS = 45.0


def check(path: str, now: float, stale_seconds: float = STALE_SECONDS) -> str | None:
    try:
        age = now - os.stat(path).st_mtime
    except OSError:
        return f"no health file at {path}: the worker has not started its loop"
    return f"the worker last reported health {age:.0f} s ago" if age > stale_seconds else None


if __name__ == "__main__":
    stale = float(os.environ.get("POOL_HEALTH_STALE_SECONDS") or STALE_SECONDS)
    problem = check(health_file(os.environ), time.time(), stale)
    if problem:
        print(problem, file=sys.stderr)
    sys.exit(1 if problem else 0)
