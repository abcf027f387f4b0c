"""Claim: the rate-limited, capacity-capped lock claim the state machine calls before running a task."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from browserjobs.core.aws import Clients
from browserjobs.core.claim import ClaimRequest, claim
from browserjobs.core.clock import SystemClock
from browserjobs.core.config import Settings
from browserjobs.core.metrics import stage_metrics
from browserjobs.core.tracing import deferred_tracer

logger = Logger()
tracer = deferred_tracer()
metrics = stage_metrics()
copy_config_to_registered_loggers(source_logger=logger, include={"browserjobs.core"})

SETTINGS = Settings.from_env().require("jobs_table", "locks_table")
CLIENTS = Clients.create("dynamodb")
CLOCK = SystemClock()


@tracer.capture_method
def run_claim(request: ClaimRequest) -> dict[str, Any]:
    result = claim(CLIENTS.ddb, SETTINGS, request, CLOCK)
    metrics.add_metric(
        name=f"Claim{result['outcome'].title().replace('_', '')}", unit=MetricUnit.Count, value=1
    )
    logger.info("claim %s", result["outcome"], extra={"claim": result})
    return result


@tracer.capture_lambda_handler
@logger.inject_lambda_context(correlation_id_path="jobId")
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return run_claim(ClaimRequest.from_event(event))
