"""The job as the worker needs it, read from JobsTable, and the task ARN registered on lock and record."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from browserjobs.core.claim import LEASE_ITEM_TTL_PADDING_SECONDS
from browserjobs.core.clock import SystemClock, iso_ms, iso_seconds
from browserjobs.core.contract import DEFAULT_TIMEOUT_SECONDS, TRACE_POLICIES
from browserjobs.core.ddb import attr, condition_failed_item, error_code, expression_values, from_item, plain
from browserjobs.core.keys import lock_key
from browserjobs.core.records import get_job
from browserjobs.core.sites import site_key_of
from browserjobs.worker.errors import ErrorName, JobFailure

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Job:
    job_id: str
    lock_key: str
    rate_key: str
    action: str
    params: dict[str, Any]
    timeout_seconds: int
    session: str | None
    site_key: str = ""  # the site's circuit breaker ("": none)
    trace: str = TRACE_POLICIES[0]  # when the Playwright trace is kept (worker/evidence.py)


def load_job(ddb: Any, table: str, job_id: str) -> Job:
    record = get_job(ddb, table, job_id)
    if record is None:
        raise JobFailure(ErrorName.WORKER_ERROR, f"no record for job {job_id} in {table}")
    record = plain(record)
    try:
        return Job(
            job_id=job_id,
            lock_key=record["lockKey"],
            rate_key=record.get("rateKey") or record["lockKey"],
            action=record["action"],
            params=record.get("params") or {},
            timeout_seconds=int(record.get("timeoutSeconds") or DEFAULT_TIMEOUT_SECONDS),
            session=record.get("session"),
            site_key=record.get("siteKey") or site_key_of(record.get("params") or {}),
            trace=record.get("trace") or TRACE_POLICIES[0],  # records from before the field: the default
        )
    except KeyError as missing:
        raise JobFailure(ErrorName.WORKER_ERROR, f"the record of job {job_id} has no {missing}") from None


class DuplicateDispatch(Exception):
    """This dispatch message was registered already: a second delivery of it, whose job runs elsewhere."""


def register_task(
    ddb: Any,
    *,
    locks_table: str,
    jobs_table: str,
    job: Job,
    task_arn: str,
    lease_grace_seconds: int,
    dispatch_id: str | None = None,
) -> None:
    """Put the task ARN where the workflow looks for it to stop the task; the lock must be this job's.

    The same write extends the lock's lease, and then the slot's, to now + timeoutSeconds +
    LEASE_GRACE_SECONDS: a retried task (a Fargate Spot interruption, Worker.Interrupted retried) starts
    long after the claim, whose lease (claimedAt + timeoutSeconds + grace, browserjobs.core.claim) would
    otherwise run out under it and let another job take the lock. Fields and formats are the claim's.

    A pool worker passes its dispatch message's MessageId: SQS delivers a message at least once, and a
    second delivery (to this worker or another) finds the registration of the first (DuplicateDispatch).
    Each attempt of the workflow sends a new message, so a retry registers afresh.
    """
    pk = lock_key(job.lock_key)
    now_ms = SystemClock().now_ms()
    # As browserjobs.core.claim.decide:
    lease_epoch = -(-now_ms // 1000) + job.timeout_seconds + lease_grace_seconds
    lease_ttl = lease_epoch + LEASE_ITEM_TTL_PADDING_SECONDS
    update = (
        "SET taskArn = :arn, leaseExpiresAt = :lease, leaseExpiresAtEpoch = :leaseEpoch, expiresAt = :ttl"
    )
    condition, dispatch = "jobId = :job", {}
    if dispatch_id is not None:
        update += ", dispatchId = :dispatch"
        condition += " AND (attribute_not_exists(dispatchId) OR dispatchId <> :dispatch)"
        dispatch = {"dispatch": dispatch_id}
    try:
        response = ddb.update_item(
            TableName=locks_table,
            Key={"pk": attr(pk)},
            UpdateExpression=update,
            ConditionExpression=condition,
            ExpressionAttributeValues=expression_values(
                arn=task_arn,
                job=job.job_id,
                lease=iso_seconds(lease_epoch),
                leaseEpoch=lease_epoch,
                ttl=lease_ttl,
                **dispatch,
            ),
            ReturnValues="ALL_NEW",
            ReturnValuesOnConditionCheckFailure="ALL_OLD",
        )
    except ClientError as error:
        if error_code(error) != "ConditionalCheckFailedException":
            raise
        current = condition_failed_item(error) or {}
        holder = current.get("jobId")
        if dispatch_id is not None and holder == job.job_id and current.get("dispatchId") == dispatch_id:
            raise DuplicateDispatch(
                f"message {dispatch_id} of job {job.job_id} was registered already"
            ) from None
        raise JobFailure(
            ErrorName.WORKER_ERROR,
            f"the lock {pk} is held by {holder or 'no job'}, not by this job: it must not run",
            lock=pk,
            holder=holder,
        ) from None
    slot = (from_item(response.get("Attributes")) or {}).get("slot")
    if slot:
        _extend_slot(ddb, locks_table, str(slot), job.job_id, lease_epoch, lease_ttl)
    else:
        logger.warning("the lock %s names no slot: only the lock's lease was extended", pk)
    ddb.update_item(
        TableName=jobs_table,
        Key={"jobId": attr(job.job_id)},
        UpdateExpression="SET taskArn = :arn, updatedAt = :now",
        ConditionExpression="attribute_exists(jobId)",
        ExpressionAttributeValues=expression_values(arn=task_arn, now=iso_ms(now_ms)),
    )


def _extend_slot(ddb: Any, table: str, slot: str, job_id: str, lease_epoch: int, lease_ttl: int) -> None:
    """The concurrency slot's lease (a slot item keeps only the number), while the slot is still this job's.
    A slot another job took over after the old lease ran out is left to it: the lock, which this job holds,
    is what keeps two jobs of one lockKey apart; the slot only counts tasks."""
    try:
        ddb.update_item(
            TableName=table,
            Key={"pk": attr(slot)},
            UpdateExpression="SET leaseExpiresAtEpoch = :leaseEpoch, expiresAt = :ttl",
            ConditionExpression="jobId = :job",
            ExpressionAttributeValues=expression_values(leaseEpoch=lease_epoch, ttl=lease_ttl, job=job_id),
        )
    except ClientError as error:
        if error_code(error) != "ConditionalCheckFailedException":
            raise
        logger.warning("slot %s is no longer held by %s: its lease was not extended", slot, job_id)
