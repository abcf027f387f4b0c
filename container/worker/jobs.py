"""The job as the worker needs it, read from JobsTable, and the task ARN registered on lock and record."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError
from jobcore.clock import SystemClock, iso_ms
from jobcore.ddb import attr, error_code, expression_values, from_item, plain
from jobcore.keys import lock_key
from jobcore.records import get_job

from worker.errors import ErrorName, JobFailure

logger = logging.getLogger(__name__)

DEFAULT_TIMEOUT_SECONDS = 900


@dataclass(frozen=True)
class Job:
    job_id: str
    lock_key: str
    action: str
    params: dict[str, Any]
    timeout_seconds: int
    session: str | None


def load_job(ddb: Any, table: str, job_id: str) -> Job:
    record = get_job(ddb, table, job_id)
    if record is None:
        raise JobFailure(ErrorName.WORKER_ERROR, f"no record for job {job_id} in {table}")
    record = plain(record)
    try:
        return Job(
            job_id=job_id,
            lock_key=record["lockKey"],
            action=record["action"],
            params=record.get("params") or {},
            timeout_seconds=int(record.get("timeoutSeconds") or DEFAULT_TIMEOUT_SECONDS),
            session=record.get("session"),
        )
    except KeyError as missing:
        raise JobFailure(ErrorName.WORKER_ERROR, f"the record of job {job_id} has no {missing}") from None


def register_task(ddb: Any, *, locks_table: str, jobs_table: str, job: Job, task_arn: str) -> None:
    """Put the task ARN where the workflow looks for it to stop the task; the lock must be this job's."""
    pk = lock_key(job.lock_key)
    try:
        ddb.update_item(
            TableName=locks_table,
            Key={"pk": attr(pk)},
            UpdateExpression="SET taskArn = :arn",
            ConditionExpression="jobId = :job",
            ExpressionAttributeValues=expression_values(arn=task_arn, job=job.job_id),
            ReturnValuesOnConditionCheckFailure="ALL_OLD",
        )
    except ClientError as error:
        if error_code(error) != "ConditionalCheckFailedException":
            raise
        holder = (from_item(error.response.get("Item")) or {}).get("jobId")
        raise JobFailure(
            ErrorName.WORKER_ERROR,
            f"the lock {pk} is held by {holder or 'no job'}, not by this job: it must not run",
            lock=pk,
            holder=holder,
        ) from None
    ddb.update_item(
        TableName=jobs_table,
        Key={"jobId": attr(job.job_id)},
        UpdateExpression="SET taskArn = :arn, updatedAt = :now",
        ConditionExpression="attribute_exists(jobId)",
        ExpressionAttributeValues=expression_values(arn=task_arn, now=iso_ms(SystemClock().now_ms())),
    )
