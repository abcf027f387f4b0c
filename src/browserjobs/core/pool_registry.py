"""Which jobs a pool task holds, with their task tokens: what the crash hook fails when the task stops.

One LocksTable item per pool task, pk `worker#<taskArn>`, one attribute per job (`job:<jobId>` = its task
token). A per-job task carries its token in its RunTask overrides, which the task state event repeats; a
pool task gets its jobs from the dispatch queue, so only this item says which tokens die with it. The
table is encrypted with the stack's key; the tokens are never logged. Each attribute is written before its
job's lock registration and removed after its callback, so a task that stops in between is covered.
"""

from __future__ import annotations

from typing import Any

from browserjobs.core.ddb import attr, expression_values

JOB_PREFIX = "job:"
# A pool task's item outlives the task by this much (the crash hook deletes it; TTL catches the rest).
ITEM_TTL_SECONDS = 2 * 86_400


def registry_key(task_arn: str) -> str:
    return f"worker#{task_arn}"


def add_job(ddb: Any, table: str, task_arn: str, job_id: str, token: str, now_epoch: int) -> None:
    ddb.update_item(
        TableName=table,
        Key={"pk": attr(registry_key(task_arn))},
        UpdateExpression="SET #job = :token, expiresAt = :ttl",
        ExpressionAttributeNames={"#job": JOB_PREFIX + job_id},
        ExpressionAttributeValues=expression_values(token=token, ttl=now_epoch + ITEM_TTL_SECONDS),
    )


def remove_job(ddb: Any, table: str, task_arn: str, job_id: str) -> None:
    ddb.update_item(
        TableName=table,
        Key={"pk": attr(registry_key(task_arn))},
        UpdateExpression="REMOVE #job",
        ExpressionAttributeNames={"#job": JOB_PREFIX + job_id},
    )


def held_jobs(ddb: Any, table: str, task_arn: str) -> dict[str, str]:
    """jobId -> task token of every job the task registered and did not finish."""
    item = ddb.get_item(TableName=table, Key={"pk": attr(registry_key(task_arn))}, ConsistentRead=True)
    return {
        name[len(JOB_PREFIX) :]: value["S"]
        for name, value in (item.get("Item") or {}).items()
        if name.startswith(JOB_PREFIX) and "S" in value
    }


def forget_task(ddb: Any, table: str, task_arn: str) -> None:
    ddb.delete_item(TableName=table, Key={"pk": attr(registry_key(task_arn))})
