"""The job: statuses, rejection codes, defaults and the execution input written by intake."""

from __future__ import annotations

import json
from enum import StrEnum
from typing import Any

from browserjobs.core.config import Settings
from browserjobs.core.contract import CLAIMABLE_JOB_STATUSES, FINAL_JOB_STATUSES, JobStatus
from browserjobs.core.sites import site_key_of

# The job's statuses, under the names the job code has always used (defined in the contract).
Status = JobStatus
TERMINAL = FINAL_JOB_STATUSES
CLAIMABLE = CLAIMABLE_JOB_STATUSES


class WaitReason(StrEnum):
    LOCKED = "LOCKED"
    THROTTLED = "THROTTLED"
    AT_CAPACITY = "AT_CAPACITY"
    BREAKER_OPEN = "BREAKER_OPEN"


class RejectionCode(StrEnum):
    INVALID_JSON = "INVALID_JSON"
    INVALID_JOB = "INVALID_JOB"
    UNKNOWN_ACTION = "UNKNOWN_ACTION"
    INVALID_PARAMS = "INVALID_PARAMS"
    JOB_TOO_LARGE = "JOB_TOO_LARGE"
    NO_JOB_IN_EMAIL = "NO_JOB_IN_EMAIL"
    OBJECT_TOO_LARGE = "OBJECT_TOO_LARGE"
    SCHEDULE_JOB_ID = "SCHEDULE_JOB_ID"
    UNSUPPORTED_EVENT = "UNSUPPORTED_EVENT"


class JobRejected(Exception):
    """Input that can never become a job; recorded as REJECTED, never retried."""

    def __init__(self, code: RejectionCode, message: str, errors: list[dict[str, str]] | None = None) -> None:
        message = storable_text(message)
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.errors = [{key: storable_text(str(value)) for key, value in e.items()} for e in errors or []]

    def as_dict(self) -> dict[str, Any]:
        return {"code": str(self.code), "message": self.message, "errors": self.errors}


# Rejection text quotes the input (jsonschema quotes the offending value): bounded so that every
# error of a rejection fits one DynamoDB item (400 KB) however large the input.
MAX_ERROR_TEXT_CHARS = 1000


def storable_text(text: str) -> str:
    """Text as kept with a rejection: bounded, and valid UTF-8 (an unpaired surrogate is escaped)."""
    if len(text) > MAX_ERROR_TEXT_CHARS:
        text = f"{text[:MAX_ERROR_TEXT_CHARS]}... ({len(text) - MAX_ERROR_TEXT_CHARS} more characters)"
    return text.encode("utf-8", errors="backslashreplace").decode("utf-8")


class _NotJsonConstant(ValueError):
    pass


def _refuse_constant(name: str) -> Any:
    raise _NotJsonConstant(f"{name} is not a JSON value")


def parse_json(text: str, where: str, whole: bool = True) -> Any:
    """JSON text as a value, or INVALID_JSON naming where and at which line and column.

    Python's json takes NaN and Infinity, which JSON (RFC 8259) does not have: refused here.
    With whole=False the first JSON value is taken and anything after it ignored (an email body's
    signature, for example).
    """
    decoder = json.JSONDecoder(parse_constant=_refuse_constant)
    try:
        if whole:
            return decoder.decode(text)
        value, _ = decoder.raw_decode(text)
        return value
    except json.JSONDecodeError as exc:
        problem, detail = exc.msg, f"line {exc.lineno} column {exc.colno}: {exc.msg}"
    except _NotJsonConstant as exc:
        problem = detail = str(exc)
    except RecursionError:
        problem = detail = "nested too deeply"
    raise JobRejected(
        RejectionCode.INVALID_JSON,
        f"{where} is not valid JSON: {problem}",
        [{"path": "/", "message": detail}],
    )


def utf8_text(data: bytes, where: str) -> str:
    """Bytes that must be UTF-8 (JSON files), or INVALID_JSON naming the first bad byte: decoding with
    replacement characters would silently change the job (two lockKeys could become one)."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise JobRejected(
            RejectionCode.INVALID_JSON,
            f"{where} is not UTF-8: byte {data[exc.start]:#04x} at offset {exc.start}",
            [{"path": "/", "message": "JSON must be UTF-8 (RFC 8259); save the file as UTF-8"}],
        ) from exc


JOB_FIELDS = (
    "jobId",
    "lockKey",
    "rateKey",
    "siteKey",
    "dispatch",
    "trace",
    "action",
    "params",
    "onConflict",
    "timeoutSeconds",
    "heartbeatSeconds",
    "session",
    "meta",
)


def with_defaults(job: dict[str, Any], settings: Settings) -> dict[str, Any]:
    """The job as stored: every optional field filled, whole-number floats made integers."""
    out = dict(job)
    out.setdefault("rateKey", out["lockKey"])
    out.setdefault("siteKey", site_key_of(out.get("params") or {}))
    out.setdefault("params", {})
    out.setdefault("onConflict", "wait")
    out.setdefault("dispatch", settings.default_dispatch)
    out.setdefault("trace", settings.default_trace)
    out.setdefault("meta", {})
    out["timeoutSeconds"] = int(out.get("timeoutSeconds", settings.default_timeout_seconds))
    out["heartbeatSeconds"] = int(out.get("heartbeatSeconds", settings.default_heartbeat_seconds))
    return out


def execution_input(job: dict[str, Any], settings: Settings) -> dict[str, Any]:
    """What intake starts the execution with; lockWait drives the workflow's bounded lock back-off."""
    return {
        "jobId": job["jobId"],
        "lockKey": job["lockKey"],
        "rateKey": job["rateKey"],
        "siteKey": job.get("siteKey", ""),
        "dispatch": job.get("dispatch", "task"),
        "onConflict": job["onConflict"],
        "timeoutSeconds": int(job["timeoutSeconds"]),
        "heartbeatSeconds": int(job["heartbeatSeconds"]),
        "lockWait": {
            "attempt": 0,
            "delaySeconds": settings.lock_wait_initial_seconds,
            "maxAttempts": settings.lock_wait_max_attempts,
            "maxDelaySeconds": settings.lock_wait_max_delay_seconds,
        },
    }


def execution_arn(state_machine_arn: str, job_id: str) -> str:
    """The ARN StartExecution will give the execution named jobId (documented ARN format)."""
    prefix, _, machine = state_machine_arn.rpartition(":stateMachine:")
    if not prefix:
        raise ValueError(f"not a state machine ARN: {state_machine_arn!r}")
    return f"{prefix}:execution:{machine}:{job_id}"
