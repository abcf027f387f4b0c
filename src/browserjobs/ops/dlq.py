"""The job dead-letter queue: list it without consuming it, and redrive without losing anything.

A redrive re-submits the failed job under a new jobId (`<jobId>-r<n>`) through intake, waits until the
new execution exists, and only then deletes the message. If anything fails midway the message becomes
visible again; redriving it again finds the job it already created (tagged with the message id) instead
of creating another one.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from browserjobs.core.model import JOB_FIELDS
from browserjobs.ops.jobs import describe_execution, execution_arn_for, get_job, submit_direct
from browserjobs.ops.outputs import OperatorError, Target

LIST_VISIBILITY_SECONDS = 5
REDRIVE_VISIBILITY_SECONDS = 120
MAX_REDRIVES_PER_JOB = 50
JOB_ID_MAX = 80
_REDRIVE_SUFFIX = re.compile(r"-r\d+$")


@dataclass
class DeadLetter:
    message_id: str
    receipt_handle: str
    body: dict[str, Any] | None  # None when the body is not a JSON object
    raw_body: str
    sent_at: int | None
    receive_count: int

    @property
    def job_id(self) -> str | None:
        return str(self.body["jobId"]) if self.body and self.body.get("jobId") else None

    def to_json(self) -> dict[str, Any]:
        body = self.body or {}
        return {
            "messageId": self.message_id,
            "jobId": self.job_id,
            "status": body.get("status"),
            "error": body.get("error"),
            "lockKey": body.get("lockKey"),
            "failedAt": body.get("failedAt"),
            "source": body.get("source"),
            "executionArn": body.get("executionArn"),
            "sentAt": self.sent_at,
            "receiveCount": self.receive_count,
            "rawBody": None if self.body is not None else self.raw_body,
        }


def _parse(message: dict[str, Any]) -> DeadLetter:
    try:
        body = json.loads(message["Body"])
    except json.JSONDecodeError:
        body = None
    attributes = message.get("Attributes", {})
    sent = attributes.get("SentTimestamp")
    return DeadLetter(
        message_id=message["MessageId"],
        receipt_handle=message["ReceiptHandle"],
        body=body if isinstance(body, dict) else None,
        raw_body=message["Body"],
        sent_at=int(sent) if sent else None,
        receive_count=int(attributes.get("ApproximateReceiveCount", 0)),
    )


def _receive(target: Target, visibility: int, wait_seconds: int = 0) -> list[DeadLetter]:
    try:
        response = target.client("sqs").receive_message(
            QueueUrl=target.outputs["DeadLetterQueueUrl"],
            MaxNumberOfMessages=10,
            VisibilityTimeout=visibility,
            WaitTimeSeconds=wait_seconds,
            AttributeNames=["All"],
        )
    except ClientError as error:
        raise OperatorError(f"cannot read the DLQ: {error.response['Error']['Message']}") from error
    return [_parse(message) for message in response.get("Messages", [])]


def _release(target: Target, letters: list[DeadLetter]) -> None:
    """Make received messages visible again at once: listing must not hide them from anyone."""
    queue = target.outputs["DeadLetterQueueUrl"]
    for start in range(0, len(letters), 10):
        batch = letters[start : start + 10]
        target.client("sqs").change_message_visibility_batch(
            QueueUrl=queue,
            Entries=[
                {"Id": str(i), "ReceiptHandle": letter.receipt_handle, "VisibilityTimeout": 0}
                for i, letter in enumerate(batch)
            ],
        )


def list_dead_letters(target: Target, limit: int = 100) -> list[DeadLetter]:
    seen: dict[str, DeadLetter] = {}
    try:
        while len(seen) < limit:
            batch = [
                letter
                for letter in _receive(target, LIST_VISIBILITY_SECONDS)
                if letter.message_id not in seen
            ]
            if not batch:
                break
            seen.update((letter.message_id, letter) for letter in batch)
    finally:
        _release(target, list(seen.values()))
    return list(seen.values())


def _take(target: Target, message_id: str, deadline_seconds: float) -> DeadLetter:
    """Receive until the wanted message shows up; every other message is released straight away."""
    deadline = time.monotonic() + deadline_seconds
    while time.monotonic() < deadline:
        batch = _receive(target, REDRIVE_VISIBILITY_SECONDS, wait_seconds=1)
        wanted = [letter for letter in batch if letter.message_id == message_id]
        _release(target, [letter for letter in batch if letter.message_id != message_id])
        if wanted:
            return wanted[0]
    raise OperatorError(
        f"message {message_id!r} is not in the DLQ (or stayed in flight for {deadline_seconds:.0f}s)",
        exit_code=3,
    )


def redrive_job(target: Target, original: dict[str, Any], message_id: str) -> tuple[str, bool]:
    """The jobId to re-submit under, and whether this message already created it (a resumed redrive)."""
    base = _REDRIVE_SUFFIX.sub("", str(original["jobId"]))
    for attempt in range(1, MAX_REDRIVES_PER_JOB + 1):
        candidate = f"{base}-r{attempt}"
        if len(candidate) > JOB_ID_MAX:
            raise OperatorError(f"cannot redrive {base!r}: {candidate!r} exceeds {JOB_ID_MAX} characters")
        existing = get_job(target, candidate)
        if existing is None:
            return candidate, False
        if (existing.get("meta") or {}).get("redriveMessageId") == message_id:
            return candidate, True
    raise OperatorError(f"{base!r} was already redriven {MAX_REDRIVES_PER_JOB} times; investigate instead")


@dataclass
class RedriveResult:
    message_id: str
    job_id: str | None
    new_job_id: str | None = None
    execution_arn: str | None = None
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "messageId": self.message_id,
            "jobId": self.job_id,
            "newJobId": self.new_job_id,
            "executionArn": self.execution_arn,
            "error": self.error,
        }


def _wait_for_execution(target: Target, arn: str, deadline_seconds: float) -> bool:
    deadline = time.monotonic() + deadline_seconds
    while True:
        if describe_execution(target, arn) is not None:
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.5)


def redrive_letter(target: Target, letter: DeadLetter, start_deadline: float = 60) -> RedriveResult:
    result = RedriveResult(letter.message_id, letter.job_id)
    if letter.job_id is None:
        result.error = "the message has no jobId: inspect it by hand (left in the DLQ)"
        return result
    original = get_job(target, letter.job_id)
    if original is None:
        result.error = f"job {letter.job_id!r} has no record to re-submit from (left in the DLQ)"
        return result
    new_id, resumed = redrive_job(target, original, letter.message_id)
    result.new_job_id = new_id
    arn = execution_arn_for(target, new_id)
    if not (resumed and describe_execution(target, arn) is not None):
        job = {key: original[key] for key in JOB_FIELDS if original.get(key) is not None}
        job["jobId"] = new_id
        job["meta"] = {
            **(original.get("meta") or {}),
            "redriveOf": letter.job_id,
            "redriveMessageId": letter.message_id,
        }
        try:
            submit_direct(target, job)
        except OperatorError as error:
            result.error = f"re-submitting as {new_id!r} failed: {error} (left in the DLQ)"
            return result
    if not _wait_for_execution(target, arn, start_deadline):
        record = get_job(target, new_id) or {}
        why = record.get("rejection") or record.get("error") or "no execution appeared"
        result.error = (
            f"{new_id!r} did not start within {start_deadline:.0f}s: {json.dumps(why)} (left in the DLQ)"
        )
        return result
    result.execution_arn = arn
    try:
        target.client("sqs").delete_message(
            QueueUrl=target.outputs["DeadLetterQueueUrl"], ReceiptHandle=letter.receipt_handle
        )
    except ClientError as error:
        result.error = (
            f"{new_id!r} started but the message could not be deleted "
            f"({error.response['Error']['Message']}); redriving it again resumes, no duplicate"
        )
    return result


def redrive(target: Target, message_id: str | None, start_deadline: float = 60) -> list[RedriveResult]:
    """Redrive one message by id, or every message (message_id None)."""
    results: list[RedriveResult] = []
    failed: list[DeadLetter] = []
    done: set[str] = set()
    try:
        while True:
            if message_id is not None:
                batch = [] if done else [_take(target, message_id, deadline_seconds=20)]
            else:
                batch = [
                    letter
                    for letter in _receive(target, REDRIVE_VISIBILITY_SECONDS, wait_seconds=1)
                    if letter.message_id not in done
                ]
            if not batch:
                return results
            for letter in batch:
                done.add(letter.message_id)
                results.append(redrive_letter(target, letter, start_deadline))
                if results[-1].error:
                    failed.append(letter)
    finally:
        _release(target, failed)  # a failed redrive leaves its message visible for the next try
