"""Submitting a job: validate, write the record, start the execution named by jobId.

A duplicate delivery never starts a second execution: the record is written only if absent, and
StartExecution is idempotent by name (ExecutionAlreadyExists is success). A record written by an
attempt that crashed before StartExecution is completed by the next delivery.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from botocore.exceptions import ClientError

from browserjobs.core.aws import Clients
from browserjobs.core.clock import Clock
from browserjobs.core.config import Settings
from browserjobs.core.ddb import error_code, plain
from browserjobs.core.model import TERMINAL, JobRejected, execution_arn, execution_input, storable_text
from browserjobs.core.records import new_record, put_if_absent, record_rejection
from browserjobs.core.schema import check_job

logger = logging.getLogger(__name__)

JOB_ID_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,80}$")


class SubmitStatus(StrEnum):
    STARTED = "STARTED"
    DUPLICATE = "DUPLICATE"
    REJECTED = "REJECTED"


@dataclass(frozen=True)
class Submission:
    """A candidate job from one source message.

    `body` is the parsed job, `raw` what is kept if it is rejected, `derived_id` the jobId the
    source message gives it, `defaults` fields the source supplies when the job does not (emails).
    `rejection` is set when the message could not even be parsed into a job.
    """

    source: dict[str, str]
    derived_id: str
    raw: Any
    body: Any = None
    defaults: dict[str, Any] = field(default_factory=dict)
    rejection: JobRejected | None = None

    @property
    def job_id(self) -> str:
        """The jobId this submission goes by: its own when valid, else the derived one."""
        own = self.body.get("jobId") if isinstance(self.body, dict) else None
        return own if isinstance(own, str) and JOB_ID_PATTERN.match(own) else self.derived_id

    @property
    def lock_key(self) -> str:
        """The lockKey the job gives, when it gives one as a string (a rejected job may not), storable."""
        own = self.body.get("lockKey") if isinstance(self.body, dict) else None
        return storable_text(own) if isinstance(own, str) else ""

    def candidate(self) -> Any:
        if not isinstance(self.body, dict):
            return self.body
        merged = {**self.defaults, **self.body}
        if isinstance(self.defaults.get("meta"), dict) and isinstance(self.body.get("meta"), dict):
            merged["meta"] = {**self.defaults["meta"], **self.body["meta"]}
        merged.setdefault("jobId", self.derived_id)
        return merged


def submit(clients: Clients, settings: Settings, clock: Clock, submission: Submission) -> dict[str, Any]:
    """{"jobId", "status": STARTED|DUPLICATE|REJECTED, "executionArn"?, "error"?}"""
    try:
        if submission.rejection is not None:
            raise submission.rejection
        job = check_job(submission.candidate(), settings)
    except JobRejected as rejection:
        return reject(clients, settings, clock, submission, rejection)

    arn = execution_arn(settings.state_machine_arn, job["jobId"])
    record = new_record(job, submission.source, arn, clock.now_ms(), settings)
    existing = put_if_absent(clients.ddb, settings.jobs_table, record)
    if existing is None:
        return {
            "jobId": job["jobId"],
            "status": str(SubmitStatus.STARTED),
            "executionArn": start(clients, settings, job),
        }

    result = {"jobId": job["jobId"], "status": str(SubmitStatus.DUPLICATE)}
    if existing["status"] in TERMINAL:
        logger.info("duplicate of job %s, already %s", job["jobId"], existing["status"])
        return {
            **result,
            **({"executionArn": existing["executionArn"]} if "executionArn" in existing else {}),
        }
    # The first delivery may have crashed between the record and the execution: start it from the
    # stored record (same name, same input), which is a no-op when the execution exists.
    return {**result, "executionArn": start(clients, settings, plain(existing))}


def start(clients: Clients, settings: Settings, job: dict[str, Any]) -> str:
    try:
        response = clients.sfn.start_execution(
            stateMachineArn=settings.state_machine_arn,
            name=job["jobId"],
            input=json.dumps(execution_input(job, settings)),
        )
        return str(response["executionArn"])
    except ClientError as exc:
        if error_code(exc) != "ExecutionAlreadyExists":
            raise
        logger.info("execution %s already exists", job["jobId"])
        return execution_arn(settings.state_machine_arn, job["jobId"])


def reject(
    clients: Clients, settings: Settings, clock: Clock, submission: Submission, rejection: JobRejected
) -> dict[str, Any]:
    logger.warning("rejected %s: %s", submission.job_id, rejection, extra={"errors": rejection.errors})
    recorded = record_rejection(
        clients.ddb,
        clients.s3,
        settings,
        candidates=[submission.job_id, submission.derived_id],
        source=submission.source,
        rejection=rejection,
        raw=submission.raw,
        now_ms=clock.now_ms(),
        lock_key=submission.lock_key,
    )
    return {
        "jobId": recorded["jobId"],
        "status": str(SubmitStatus.REJECTED),
        "error": {**rejection.as_dict(), "rawUri": recorded["rawUri"]},
    }
