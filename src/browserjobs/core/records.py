"""Writes to the job record in JobsTable, and the rejection record with its raw input in S3."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError

from browserjobs.core.clock import iso_ms
from browserjobs.core.config import Settings
from browserjobs.core.contract import JOB_EVENT_DETAIL_TYPES, completion
from browserjobs.core.ddb import (
    attr,
    condition_failed_item,
    error_code,
    expression_values,
    from_item,
    to_item,
)
from browserjobs.core.model import CLAIMABLE, JOB_FIELDS, TERMINAL, JobRejected, Status, WaitReason

logger = logging.getLogger(__name__)

CONDITION_FAILED = "ConditionalCheckFailedException"
# Raw input kept with a rejection: enough to diagnose, bounded so a huge email cannot bloat S3 twice.
MAX_RAW_CHARS = 256 * 1024

NOT_TERMINAL = "attribute_exists(jobId) AND NOT #status IN (" + ", ".join(f":t_{s}" for s in TERMINAL) + ")"
_TERMINAL_VALUES = {f"t_{s}": str(s) for s in TERMINAL}


def expires_at(now_ms: int, settings: Settings) -> int:
    return now_ms // 1000 + settings.job_retention_days * 86_400


def new_record(
    job: dict[str, Any], source: dict[str, str], execution_arn: str, now_ms: int, settings: Settings
) -> dict[str, Any]:
    now = iso_ms(now_ms)
    return {
        **{k: job[k] for k in JOB_FIELDS if k in job},
        "status": str(Status.SUBMITTED),
        "source": source,
        "executionArn": execution_arn,
        "createdAt": now,
        "updatedAt": now,
        "expiresAt": expires_at(now_ms, settings),
    }


def put_if_absent(ddb: Any, table: str, record: dict[str, Any]) -> dict[str, Any] | None:
    """Create the record; on a duplicate jobId return the existing item instead (not an error)."""
    try:
        ddb.put_item(
            TableName=table,
            Item=to_item(record),
            ConditionExpression="attribute_not_exists(jobId)",
            ReturnValuesOnConditionCheckFailure="ALL_OLD",
        )
        return None
    except ClientError as exc:
        if error_code(exc) != CONDITION_FAILED:
            raise
        existing = condition_failed_item(exc)
        return existing if existing is not None else get_job(ddb, table, record["jobId"])


def get_job(ddb: Any, table: str, job_id: str) -> dict[str, Any] | None:
    response = ddb.get_item(TableName=table, Key={"jobId": attr(job_id)}, ConsistentRead=True)
    return from_item(response.get("Item"))


def set_waiting(ddb: Any, table: str, job_id: str, reason: WaitReason, now_ms: int) -> bool:
    """WAITING with its reason, unless the job has moved on (claimed or ended) meanwhile."""
    claimable = {f"c_{s}": str(s) for s in CLAIMABLE}
    try:
        ddb.update_item(
            TableName=table,
            Key={"jobId": attr(job_id)},
            UpdateExpression="SET #status = :waiting, waitReason = :reason, updatedAt = :now",
            ConditionExpression="#status IN (" + ", ".join(f":{k}" for k in claimable) + ")",
            ExpressionAttributeNames={"#status": "status"},
            ExpressionAttributeValues=expression_values(
                waiting=str(Status.WAITING), reason=str(reason), now=iso_ms(now_ms), **claimable
            ),
        )
        return True
    except ClientError as exc:
        if error_code(exc) != CONDITION_FAILED:
            raise
        logger.info("job %s is no longer claimable; not marked WAITING", job_id)
        return False


def set_terminal(
    ddb: Any,
    table: str,
    job_id: str,
    status: Status,
    now_ms: int,
    error: dict[str, str] | None = None,
    *,
    lock_key: str = "",
) -> bool:
    """Record a terminal status once: True when this call ended the job, False if it had already ended."""
    now = iso_ms(now_ms)
    error_name, cause = (error["Error"], error["Cause"]) if error else ("", "")
    values: dict[str, Any] = {
        "status": str(status),
        "event": JOB_EVENT_DETAIL_TYPES[Status(status)],
        "completion": completion(lock_key, error=error_name, cause=cause),
        "now": now,
        **_TERMINAL_VALUES,
    }
    update = (
        "SET #status = :status, eventType = :event, completion = :completion,"
        " endedAt = :now, updatedAt = :now"
    )
    if error is not None:
        update += ", #error = :error"
        values["error"] = error
    try:
        ddb.update_item(
            TableName=table,
            Key={"jobId": attr(job_id)},
            UpdateExpression=update + " REMOVE waitReason",
            ConditionExpression=NOT_TERMINAL,
            ExpressionAttributeNames={"#status": "status", **({"#error": "error"} if error else {})},
            ExpressionAttributeValues=expression_values(**values),
        )
        return True
    except ClientError as exc:
        if error_code(exc) != CONDITION_FAILED:
            raise
        return False


def claim_ending(ddb: Any, table: str, job_id: str, now_ms: int, stale_after_ms: int) -> bool:
    """Mark a job as being ended by this caller: True for one caller at a time.

    Cleanup sends the DLQ message before it records the terminal status (a crash in between must not lose
    the message), so two cleanups of one job (EventBridge delivers an event twice, at least once) would
    both send one. The mark lets one through; a mark older than stale_after_ms (its holder crashed) may be
    taken over, so the retry or the next sweep still ends the job.
    """
    try:
        ddb.update_item(
            TableName=table,
            Key={"jobId": attr(job_id)},
            UpdateExpression="SET endingAt = :now",
            ConditionExpression=f"{NOT_TERMINAL} AND (attribute_not_exists(endingAt) OR endingAt < :stale)",
            ExpressionAttributeNames={"#status": "status"},
            ExpressionAttributeValues=expression_values(
                now=now_ms, stale=now_ms - stale_after_ms, **_TERMINAL_VALUES
            ),
        )
        return True
    except ClientError as exc:
        if error_code(exc) != CONDITION_FAILED:
            raise
        return False


def rejected_key(job_id: str, now_ms: int) -> str:
    day = datetime.fromtimestamp(now_ms / 1000, tz=UTC)
    return f"rejected/{day:%Y/%m/%d}/{job_id}.json"


def record_rejection(
    ddb: Any,
    s3: Any,
    settings: Settings,
    *,
    candidates: list[str],
    source: dict[str, str],
    rejection: JobRejected,
    raw: Any,
    now_ms: int,
    lock_key: str = "",
) -> dict[str, Any]:
    """Keep rejected input where an operator finds it: a REJECTED record plus the raw input in S3.

    `candidates` are the jobIds to record under, preferred first (the job's own jobId when it has a
    valid one, then the id derived from the source message). An id already used by another job is
    skipped; an id already holding this very rejection (a redelivery) is reused, so retries are safe.
    """
    for job_id in dict.fromkeys(candidates):
        key = rejected_key(job_id, now_ms)
        raw_uri = f"s3://{settings.artifacts_bucket}/{key}"
        now = iso_ms(now_ms)
        record = {
            "jobId": job_id,
            "status": str(Status.REJECTED),
            "eventType": JOB_EVENT_DETAIL_TYPES[Status.REJECTED],
            "completion": completion(lock_key, error=str(rejection.code), cause=rejection.message),
            "source": source,
            "rejection": {**rejection.as_dict(), "rawUri": raw_uri},
            "createdAt": now,
            "updatedAt": now,
            "endedAt": now,
            "expiresAt": expires_at(now_ms, settings),
        }
        existing = put_if_absent(ddb, settings.jobs_table, record)
        if existing is not None:
            if existing.get("status") != Status.REJECTED or existing.get("source") != source:
                continue
            raw_uri = existing["rejection"]["rawUri"]
            key = raw_uri.removeprefix(f"s3://{settings.artifacts_bucket}/")
        s3.put_object(
            Bucket=settings.artifacts_bucket,
            Key=key,
            Body=_raw_document(job_id, source, rejection, raw, now),
            ContentType="application/json",
        )
        return {"jobId": job_id, "rawUri": raw_uri}
    raise RuntimeError(f"every jobId for this rejected input is taken by another job: {candidates}")


def _raw_document(job_id: str, source: dict[str, str], rejection: JobRejected, raw: Any, now: str) -> bytes:
    document: dict[str, Any] = {"jobId": job_id, "source": source, "receivedAt": now, **rejection.as_dict()}
    if isinstance(raw, str):
        document["raw"] = raw[:MAX_RAW_CHARS]
        document["rawTruncated"] = len(raw) > MAX_RAW_CHARS
    else:
        document["raw"] = raw
    text = json.dumps(document, ensure_ascii=False, default=str, indent=2)
    # An unpaired surrogate in the raw input (kept as it came) is written as its JSON escape again.
    return text.encode("utf-8", errors="backslashreplace")
