"""Cleanup: executions that ended outside the workflow's own paths, and the periodic lease sweep.

Step Functions delivers status-change events best effort, so the sweep (a schedule) also ends jobs
whose lease expired, and releases the leases.
"""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.data_classes import EventBridgeEvent
from aws_lambda_powertools.utilities.typing import LambdaContext

from browserjobs.core.aws import Clients
from browserjobs.core.cleanup import HANDLED_EXECUTION_STATUSES, cleanup_job, failure_from_execution, sweep
from browserjobs.core.clock import SystemClock
from browserjobs.core.config import Settings
from browserjobs.core.metrics import stage_metrics
from browserjobs.core.tracing import deferred_tracer

logger = Logger()
tracer = deferred_tracer()
metrics = stage_metrics()
copy_config_to_registered_loggers(source_logger=logger, include={"browserjobs.core"})

SETTINGS = Settings.from_env().require("jobs_table", "locks_table", "job_dlq_url", "cluster_arn")
CLIENTS = Clients.create("dynamodb", "sqs", "ecs", "stepfunctions")
CLOCK = SystemClock()

EXECUTION_STATUS_CHANGE = "Step Functions Execution Status Change"
SCHEDULED_EVENT = "Scheduled Event"


@tracer.capture_method
def on_execution_ended(detail: dict[str, Any]) -> dict[str, Any]:
    job_id = detail["name"]
    logger.set_correlation_id(job_id)
    if detail.get("status") not in HANDLED_EXECUTION_STATUSES:
        logger.info("execution %s is %s: nothing to clean up", job_id, detail.get("status"))
        return {"jobId": job_id, "ended": False}
    result = cleanup_job(
        CLIENTS,
        SETTINGS,
        CLOCK,
        job_id,
        failure_from_execution(detail),
        lock_key_value=input_lock_key(detail),
    )
    _count(result)
    logger.info("cleaned up after execution %s", detail["status"], extra={"cleanup": result})
    return result


def input_lock_key(detail: dict[str, Any]) -> str | None:
    """The lockKey from the execution input, when the event includes it (it is left out past 256 KiB)."""
    try:
        value = json.loads(detail.get("input") or "{}").get("lockKey")
    except (json.JSONDecodeError, AttributeError):
        return None
    return value if isinstance(value, str) else None


@tracer.capture_method
def on_schedule() -> dict[str, Any]:
    results = sweep(CLIENTS, SETTINGS, CLOCK)
    for result in results:
        _count(result)
    logger.info("swept %d jobs with expired leases", len(results), extra={"swept": results})
    return {"swept": results}


def _count(result: dict[str, Any]) -> None:
    if result["ended"]:
        metrics.add_metric(name="JobsEndedByCleanup", unit=MetricUnit.Count, value=1)
    released = len(result["releasedSlots"]) + int(bool(result.get("releasedLock")))
    if released:
        metrics.add_metric(name="LeasesReleasedByCleanup", unit=MetricUnit.Count, value=released)


@tracer.capture_lambda_handler
@logger.inject_lambda_context(log_event=False)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    envelope = EventBridgeEvent(event)
    if envelope.detail_type == EXECUTION_STATUS_CHANGE:
        return on_execution_ended(envelope.detail)
    if envelope.detail_type == SCHEDULED_EVENT:
        return on_schedule()
    raise ValueError(f"cleanup takes execution status changes and schedules, not {envelope.detail_type!r}")
