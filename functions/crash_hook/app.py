"""Crash hook: a browser task that stopped without reporting fails its callback within seconds.

Every STOPPED task of the cluster comes here, including those that already reported success or
failure: for them Step Functions answers that the token is no longer open, which is expected.
A task of its own carries its token in its overrides; a pool task (no TASK_TOKEN) held the jobs its
registry item names (browserjobs.core.pool_registry): each fails with Worker.Interrupted, so that the
workflow retries it on another worker at once.
"""

import logging
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.data_classes import EventBridgeEvent
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.exceptions import ClientError

from browserjobs.core import pool_registry
from browserjobs.core.aws import Clients
from browserjobs.core.config import Settings
from browserjobs.core.contract import TOKEN_CLOSED
from browserjobs.core.ddb import error_code
from browserjobs.core.metrics import stage_metrics
from browserjobs.core.task_events import StoppedTask
from browserjobs.core.tracing import deferred_tracer

logger = Logger()
# Every SendTaskFailure body is a task token, and botocore logs request bodies at DEBUG: with LogLevel=DEBUG
# and the function's ApplicationLogLevel at DEBUG the tokens would land in the log group. The SDK logs
# at WARNING at most, whatever the level; nothing here logs the event or its overrides (docs/SECURITY.md).
for _sdk in ("botocore", "boto3", "urllib3", "s3transfer"):
    logging.getLogger(_sdk).setLevel(logging.WARNING)
tracer = deferred_tracer()
metrics = stage_metrics()

SETTINGS = Settings.from_env().require("locks_table")
CLIENTS = Clients.create("stepfunctions", "dynamodb")


@tracer.capture_method
def fail_callback(task: StoppedTask) -> str:
    """SendTaskFailure for the task's token: 'failed', 'closed' (already completed) or 'no-token'."""
    if task.token is None:
        logger.info("task %s carries no TASK_TOKEN: not a browser job task", task.task_arn)
        return "no-token"
    return _fail(task, task.token, *task.failure())


@tracer.capture_method
def fail_pool_jobs(task: StoppedTask) -> dict[str, str]:
    """Every job the pool task registered and did not finish: jobId -> 'failed' or 'closed'."""
    held = pool_registry.held_jobs(CLIENTS.ddb, SETTINGS.locks_table, task.task_arn)
    outcomes = {job_id: _fail(task, token, *task.pool_failure(job_id)) for job_id, token in held.items()}
    pool_registry.forget_task(CLIENTS.ddb, SETTINGS.locks_table, task.task_arn)
    return outcomes


def _fail(task: StoppedTask, token: str, error: str, cause: str) -> str:
    try:
        CLIENTS.sfn.send_task_failure(taskToken=token, error=error, cause=cause)
    except ClientError as exc:
        if error_code(exc) not in TOKEN_CLOSED:
            raise
        logger.info("token of task %s was already closed (%s)", task.task_arn, error_code(exc))
        metrics.add_metric(name="CallbackAlreadyClosed", unit=MetricUnit.Count, value=1)
        return "closed"
    logger.warning("failed the callback of task %s with %s", task.task_arn, error, extra={"cause": cause})
    metrics.add_metric(name="CallbackFailedByCrashHook", unit=MetricUnit.Count, value=1)
    return "failed"


@tracer.capture_lambda_handler
@logger.inject_lambda_context(log_event=False)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    detail = EventBridgeEvent(event).detail
    task = StoppedTask.from_detail(detail)
    if task.job_id:
        logger.set_correlation_id(task.job_id)
    if detail.get("lastStatus") != "STOPPED":
        logger.info("task %s is %s, not STOPPED", task.task_arn, detail.get("lastStatus"))
        return {"taskArn": task.task_arn, "callback": "not-stopped"}
    if task.token is None:
        return {"taskArn": task.task_arn, "poolJobs": fail_pool_jobs(task)}
    return {"taskArn": task.task_arn, "jobId": task.job_id, "callback": fail_callback(task)}
