"""Ending a job whose execution ended outside the workflow's own paths, or whose lease ran out.

Idempotent: a job already in a terminal status only has its leases released (if it still owns
them); otherwise its task is stopped, the DLQ gets the job, then the terminal status is recorded.
The DLQ message is sent before the status so that a crash in between repeats the message rather
than losing it (at least once).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from browserjobs.core.aws import Clients
from browserjobs.core.clock import Clock, iso_ms, parse_iso
from browserjobs.core.config import Settings
from browserjobs.core.contract import MAX_CAUSE_CHARS, MAX_ERROR_CHARS, ErrorName, ExecutionStatus
from browserjobs.core.ddb import error_code, expression_values, from_item
from browserjobs.core.dlq import dlq_message, send_dlq_message
from browserjobs.core.keys import LOCK_PREFIX, lock_key, slot_key
from browserjobs.core.leases import read_leases, release_if_owned
from browserjobs.core.model import TERMINAL, Status
from browserjobs.core.records import claim_ending, get_job, set_terminal

logger = logging.getLogger(__name__)

# How long one cleanup's claim to end a job holds off another (it sends a message and writes two items).
ENDING_STALE_MS = 60_000
_EXECUTION_ERRORS = {
    ExecutionStatus.FAILED: (Status.FAILED, ErrorName.EXECUTION_FAILED),
    ExecutionStatus.TIMED_OUT: (Status.TIMED_OUT, ErrorName.EXECUTION_TIMED_OUT),
    ExecutionStatus.ABORTED: (Status.FAILED, ErrorName.EXECUTION_ABORTED),
}
HANDLED_EXECUTION_STATUSES = frozenset(_EXECUTION_ERRORS)


@dataclass(frozen=True)
class Failure:
    status: Status
    error: str
    cause: str

    def as_error(self) -> dict[str, str]:
        return {"Error": self.error[:MAX_ERROR_CHARS], "Cause": self.cause[:MAX_CAUSE_CHARS]}


def failure_from_execution(detail: dict[str, Any]) -> Failure:
    """The failure an execution status change (FAILED, TIMED_OUT, ABORTED) stands for."""
    status, default_error = _EXECUTION_ERRORS[detail["status"]]
    cause = (
        detail.get("cause") or f"execution {detail.get('name')} ended {detail['status']} outside the workflow"
    )
    return Failure(status=status, error=detail.get("error") or default_error, cause=cause)


def cleanup_job(
    clients: Clients,
    settings: Settings,
    clock: Clock,
    job_id: str,
    failure: Failure,
    *,
    lock_key_value: str | None = None,
    stop_execution: bool = False,
) -> dict[str, Any]:
    job = get_job(clients.ddb, settings.jobs_table, job_id)
    lock_key_value = lock_key_value or (job or {}).get("lockKey")
    leases = read_leases(clients.ddb, settings.locks_table, settings.max_concurrent_tasks, lock_key_value)
    owned_lock = leases.lock if leases.lock is not None and leases.lock.get("jobId") == job_id else None
    summary: dict[str, Any] = {"jobId": job_id, "ended": False}

    if job is None:
        logger.warning("no job record for %s: only its leases are released", job_id)
    elif job["status"] in TERMINAL:
        logger.info("job %s is already %s", job_id, job["status"])
    elif not claim_ending(clients.ddb, settings.jobs_table, job_id, clock.now_ms(), ENDING_STALE_MS):
        logger.info("job %s is being ended by another cleanup", job_id)
    else:
        now_ms = clock.now_ms()
        task_arn = (owned_lock or {}).get("taskArn") or job.get("taskArn")
        if task_arn:
            summary["stoppedTask"] = _stop_task(clients.ecs, settings.cluster_arn, task_arn, failure)
        message = dlq_message(
            job_id=job_id,
            status=failure.status,
            error=failure.as_error(),
            execution_arn=job.get("executionArn"),
            lock_key=job.get("lockKey"),
            failed_at=iso_ms(now_ms),
            source="cleanup",
        )
        summary["dlqMessageId"] = send_dlq_message(clients.sqs, settings.job_dlq_url, message)
        summary["ended"] = set_terminal(
            clients.ddb,
            settings.jobs_table,
            job_id,
            failure.status,
            now_ms,
            failure.as_error(),
            lock_key=job.get("lockKey") or "",
        )
        if not summary["ended"]:
            logger.warning("job %s ended concurrently; its DLQ message may be a duplicate", job_id)
        if stop_execution and job.get("executionArn"):
            summary["stoppedExecution"] = _stop_execution(clients.sfn, job["executionArn"], failure)

    if lock_key_value is not None:
        summary["releasedLock"] = owned_lock is not None and release_if_owned(
            clients.ddb, settings.locks_table, lock_key(lock_key_value), job_id
        )
    summary["releasedSlots"] = [
        n
        for n, item in sorted(leases.slots.items())
        if item.get("jobId") == job_id
        and release_if_owned(clients.ddb, settings.locks_table, slot_key(n), job_id)
    ]
    return summary


def sweep(clients: Clients, settings: Settings, clock: Clock) -> list[dict[str, Any]]:
    """End the jobs whose lease expired (lock or slot item) or that are RUNNING past their lease."""
    now_ms = clock.now_ms()
    jobs = expired_lease_holders(clients.ddb, settings, now_ms // 1000)
    for job_id in overdue_running_jobs(clients.ddb, settings, now_ms):
        jobs.setdefault(job_id, None)
    results = []
    for job_id, held_lock_key in sorted(jobs.items()):
        failure = Failure(
            status=Status.TIMED_OUT,
            error=ErrorName.LEASE_EXPIRED,
            cause=f"job {job_id} held its lease past timeoutSeconds + LEASE_GRACE_SECONDS "
            f"({settings.lease_grace_seconds}s); swept at {iso_ms(now_ms)}",
        )
        results.append(
            cleanup_job(
                clients, settings, clock, job_id, failure, lock_key_value=held_lock_key, stop_execution=True
            )
        )
    return results


def expired_lease_holders(ddb: Any, settings: Settings, now_s: int) -> dict[str, str | None]:
    """jobId -> the lockKey it holds, for every lock or slot item whose lease has expired."""
    holders: dict[str, str | None] = {}
    pages = ddb.get_paginator("scan").paginate(
        TableName=settings.locks_table,
        FilterExpression="leaseExpiresAtEpoch <= :now",
        ProjectionExpression="pk, jobId, lockKey",
        ExpressionAttributeValues=expression_values(now=now_s),
        ConsistentRead=True,
    )
    for page in pages:
        for raw in page.get("Items", []):
            item = from_item(raw) or {}
            pk = item["pk"]
            held = pk.removeprefix(LOCK_PREFIX) if pk.startswith(LOCK_PREFIX) else item.get("lockKey")
            holders[item["jobId"]] = holders.get(item["jobId"]) or held
    return holders


def overdue_running_jobs(ddb: Any, settings: Settings, now_ms: int) -> list[str]:
    """RUNNING jobs whose claim is older than their lease (claimedAt + timeoutSeconds + grace).

    Catches jobs whose lock was taken over by a later claim after expiring, so no lease item is
    left for the scan above to find. updatedAt <= now - grace bounds the query: a RUNNING job is
    only written to within its own timeout.
    """
    now_s = now_ms // 1000
    pages = ddb.get_paginator("query").paginate(
        TableName=settings.jobs_table,
        IndexName="byStatus",
        KeyConditionExpression="#status = :running AND updatedAt <= :before",
        ExpressionAttributeNames={"#status": "status"},
        ExpressionAttributeValues=expression_values(
            running=str(Status.RUNNING), before=iso_ms((now_s - settings.lease_grace_seconds) * 1000)
        ),
    )
    overdue = []
    for page in pages:
        for raw in page.get("Items", []):
            job_id = (from_item(raw) or {})["jobId"]
            job = get_job(ddb, settings.jobs_table, job_id)
            if job is None or job["status"] != Status.RUNNING or "claimedAt" not in job:
                continue
            lease_end = parse_iso(job["claimedAt"]).timestamp() + int(job["timeoutSeconds"])
            if lease_end + settings.lease_grace_seconds <= now_s:
                overdue.append(job_id)
    return overdue


def _stop_task(ecs: Any, cluster_arn: str, task_arn: str, failure: Failure) -> str:
    try:
        ecs.stop_task(
            cluster=cluster_arn, task=task_arn, reason=f"browserjobs cleanup: {failure.error}"[:255]
        )
    except ClientError as exc:
        # ECS answers InvalidParameterException for a task it no longer knows (stopped long ago).
        if error_code(exc) != "InvalidParameterException":
            raise
        logger.info("task %s not found: %s", task_arn, exc)
    return task_arn


def _stop_execution(sfn: Any, execution_arn: str, failure: Failure) -> bool:
    try:
        status = sfn.describe_execution(executionArn=execution_arn)["status"]
        if status != "RUNNING":
            return False
        error = failure.as_error()
        sfn.stop_execution(executionArn=execution_arn, error=error["Error"], cause=error["Cause"])
    except ClientError as exc:
        if error_code(exc) != "ExecutionDoesNotExist":
            raise
        return False
    return True
