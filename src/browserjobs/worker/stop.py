"""Why the job must stop early: set from any thread (signal handler, pollers), read at safe points."""

from __future__ import annotations

import threading

from browserjobs.worker.errors import ErrorName, JobFailure


class StopFlag:
    """The first reason wins: a later one (e.g. SIGTERM after an interrupt) does not rename the outcome."""

    def __init__(self) -> None:
        self._lock = threading.RLock()  # re-entrant: a second signal may arrive inside the handler
        self._reason: JobFailure | None = None
        self._event = threading.Event()

    def request(self, error: ErrorName, message: str, **details: object) -> None:
        with self._lock:
            if self._reason is None:
                self._reason = JobFailure(error, message, **details)
                self._event.set()

    @property
    def reason(self) -> JobFailure | None:
        return self._reason

    def wait(self, timeout: float) -> bool:
        return self._event.wait(timeout)
