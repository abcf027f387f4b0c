"""Crash hook: a browser task that stopped without reporting fails its callback within seconds.

Every STOPPED task of the cluster comes here, including those that already reported success or
failure: for them Step Functions answers that the token is no longer open, which is expected.
"""

import json
import logging
from dataclasses import dataclass
from typing import Any, Self

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.data_classes import EventBridgeEvent
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.exceptions import ClientError

from browserjobs.core.aws import Clients
from browserjobs.core.ddb import error_code
from browserjobs.core.tracing import deferred_tracer

logger = Logger()
# Every SendTaskFailure body is a task token, and botocore logs request bodies at DEBUG: with LogLevel=DEBUG
# and the function's ApplicationLogLevel at DEBUG the tokens would land in the log group. The SDK logs
# at WARNING at most, whatever the level; nothing here logs the event or its overrides (docs/SECURITY.md).
for _sdk in ("botocore", "boto3", "urllib3", "s3transfer"):
    logging.getLogger(_sdk).setLevel(logging.WARNING)
tracer = deferred_tracer()
metrics = Metrics()

CLIENTS = Clients.create("stepfunctions")

MAX_ERROR_CHARS = 256
MAX_CAUSE_CHARS = 32_768
# Step Functions' answers for a token that is closed already (completed, timed out, or unknown).
TOKEN_CLOSED = frozenset({"TaskTimedOut", "InvalidToken", "TaskDoesNotExist"})
SPOT_INTERRUPTION = "SpotInterruption"


@dataclass(frozen=True)
class StoppedTask:
    task_arn: str
    token: str | None
    job_id: str | None
    stop_code: str
    stopped_reason: str
    containers: list[dict[str, Any]]

    @classmethod
    def from_detail(cls, detail: dict[str, Any]) -> Self:
        env: dict[str, str] = {}
        for override in (detail.get("overrides") or {}).get("containerOverrides") or []:
            for variable in override.get("environment") or []:
                env.setdefault(variable.get("name", ""), variable.get("value", ""))
        return cls(
            task_arn=detail.get("taskArn", ""),
            token=env.get("TASK_TOKEN") or None,
            job_id=env.get("JOB_ID") or None,
            stop_code=detail.get("stopCode", ""),
            stopped_reason=detail.get("stoppedReason", ""),
            containers=[
                {k: c[k] for k in ("name", "exitCode", "reason", "lastStatus") if k in c}
                for c in detail.get("containers") or []
            ],
        )

    def failure(self) -> tuple[str, str]:
        """(error, cause) for SendTaskFailure, within the API's limits."""
        error = "Worker.Interrupted" if self.stop_code == SPOT_INTERRUPTION else "Worker.Crashed"
        cause = {
            "taskArn": self.task_arn,
            "exitCodes": {c.get("name", "?"): c.get("exitCode") for c in self.containers},
            "stopCode": self.stop_code,
            "stoppedReason": self.stopped_reason,
            "containers": self.containers,
        }
        return error[:MAX_ERROR_CHARS], json.dumps(cause, ensure_ascii=False)[:MAX_CAUSE_CHARS]


@tracer.capture_method
def fail_callback(task: StoppedTask) -> str:
    """SendTaskFailure for the task's token: 'failed', 'closed' (already completed) or 'no-token'."""
    if task.token is None:
        logger.info("task %s carries no TASK_TOKEN: not a browser job task", task.task_arn)
        return "no-token"
    error, cause = task.failure()
    try:
        CLIENTS.sfn.send_task_failure(taskToken=task.token, error=error, cause=cause)
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
    return {"taskArn": task.task_arn, "jobId": task.job_id, "callback": fail_callback(task)}
