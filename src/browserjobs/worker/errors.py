"""The worker's classified errors (names in browserjobs.core.contract) and the exit code of each."""

from __future__ import annotations

import json
from typing import Any

from browserjobs.core.contract import MAX_CAUSE_CHARS, MAX_ERROR_CHARS, ErrorName

__all__ = ["WORKER_ERRORS", "ErrorName", "ExitCode", "JobFailure"]

# The errors the worker itself reports (result.json's error.Error, the SendTaskFailure error).
WORKER_ERRORS = (
    ErrorName.INVALID_PARAMS,
    ErrorName.JOB_INTERRUPTED,
    ErrorName.WORKER_INTERRUPTED,
    ErrorName.WORKER_TIMEOUT,
    ErrorName.STEP_TIMEOUT,
    ErrorName.SITE_CLIENT_ERROR,
    ErrorName.SITE_SERVER_ERROR,
    ErrorName.SITE_RATE_LIMITED,
    ErrorName.SITE_UNREACHABLE,
    ErrorName.SITE_TIMEOUT,
    ErrorName.SITE_BREAKER_OPEN,
    ErrorName.BROWSER_CRASHED,
    ErrorName.WORKER_ERROR,
)


class ExitCode:
    """The process exit status: what an operator (or the crash hook) reads from a stopped task."""

    SUCCEEDED = 0
    CONFIG_ERROR = 2  # the environment is incomplete: the job was never run
    CALLBACK_FAILED = (
        3  # the final callback did not reach Step Functions (token timed out, unknown, no network)
    )
    BY_ERROR = {
        ErrorName.INVALID_PARAMS: 10,
        ErrorName.JOB_INTERRUPTED: 11,
        ErrorName.WORKER_INTERRUPTED: 12,
        ErrorName.WORKER_TIMEOUT: 13,
        ErrorName.SITE_CLIENT_ERROR: 14,
        ErrorName.SITE_SERVER_ERROR: 15,
        ErrorName.SITE_RATE_LIMITED: 16,
        ErrorName.BROWSER_CRASHED: 17,
        ErrorName.WORKER_ERROR: 18,
        ErrorName.SITE_UNREACHABLE: 19,
        ErrorName.SITE_TIMEOUT: 20,
        ErrorName.SITE_BREAKER_OPEN: 21,
        ErrorName.STEP_TIMEOUT: 22,
    }


class JobFailure(Exception):
    """Ends the job with a classified error; `details` go into the cause next to the message."""

    def __init__(self, error: ErrorName, message: str, **details: Any) -> None:
        super().__init__(f"{error}: {message}")
        self.error = error
        self.message = message
        self.details = {k: v for k, v in details.items() if v is not None}

    def with_details(self, **details: Any) -> JobFailure:
        self.details.update({k: v for k, v in details.items() if v is not None and k not in self.details})
        return self

    def cause(self) -> str:
        """The SendTaskFailure cause: a JSON object, its message shortened if it must be to fit."""
        document = {"message": self.message, **self.details}
        text = json.dumps(document, default=str)
        excess = len(text) - MAX_CAUSE_CHARS
        if excess > 0:
            document["message"] = self.message[: max(0, len(self.message) - excess - 20)] + " [truncated]"
            text = json.dumps(document, default=str)[:MAX_CAUSE_CHARS]
        return text

    def as_record(self) -> dict[str, str]:
        return {"Error": str(self.error)[:MAX_ERROR_CHARS], "Cause": self.cause()}
