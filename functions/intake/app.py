"""Intake: SQS messages, S3 objects (a JSON job or a raw email), schedules and direct calls become jobs.

Every input ends as a started (or duplicate) job or a REJECTED record with its raw input in S3.
Invalid input is never retried; AWS errors are raised so that the source retries (SQS redrive).
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from browserjobs.core import intake
from browserjobs.core.aws import Clients
from browserjobs.core.clock import SystemClock
from browserjobs.core.config import Settings
from browserjobs.core.metrics import stage_metrics
from browserjobs.core.submit import Submission, SubmitStatus, submit
from browserjobs.core.tracing import deferred_tracer

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.batch import BatchProcessor
    from aws_lambda_powertools.utilities.data_classes import SQSRecord

logger = Logger()
tracer = deferred_tracer()
metrics = stage_metrics()
copy_config_to_registered_loggers(source_logger=logger, include={"browserjobs.core"})

SETTINGS = Settings.from_env().require("jobs_table", "artifacts_bucket", "state_machine_arn")
CLIENTS = Clients.create("dynamodb", "s3", "stepfunctions")
CLOCK = SystemClock()

_METRICS = {
    SubmitStatus.STARTED: "JobsStarted",
    SubmitStatus.DUPLICATE: "JobsDuplicate",
    SubmitStatus.REJECTED: "JobsRejected",
}


def handle(submission: Submission) -> dict[str, Any]:
    logger.set_correlation_id(submission.job_id)
    result = submit(CLIENTS, SETTINGS, CLOCK, submission)
    metrics.add_metric(name=_METRICS[SubmitStatus(result["status"])], unit=MetricUnit.Count, value=1)
    logger.info("job %s", result["status"].lower(), extra={"result": result, "source": submission.source})
    return result


def sqs_record_handler(record: SQSRecord) -> dict[str, Any]:
    return handle(intake.sqs_submission(record.message_id, record.body))


# Powertools' batch utility and event data classes import asyncio and every event class (~100 ms here):
# each is imported by the first event that needs it, so no cold start pays for all of them at import.
@cache
def sqs_processor() -> BatchProcessor:
    from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType

    return BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)


def sqs_results(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    from aws_lambda_powertools.utilities.batch import process_partial_response

    response = process_partial_response(event, sqs_record_handler, sqs_processor(), context)
    # The partial-failure alarm divides these (template.yaml, IntakePartialFailureAlarm).
    metrics.add_metric(name="IntakeRecords", unit=MetricUnit.Count, value=len(event["Records"]))
    failed = len(response.get("batchItemFailures", []))
    metrics.add_metric(name="IntakeRecordsFailed", unit=MetricUnit.Count, value=failed)
    return response


def s3_results(event: dict[str, Any]) -> dict[str, Any]:
    from aws_lambda_powertools.utilities.data_classes import S3Event

    return {"results": [handle(intake.s3_record_submission(CLIENTS.s3, r)) for r in S3Event(event).records]}


def route(event: Any, context: LambdaContext) -> Any:
    kind = intake.event_kind(event)
    if kind is intake.EventKind.SQS:
        return sqs_results(event, context)
    if kind is intake.EventKind.S3:
        return s3_results(event)
    if kind is intake.EventKind.OTHER_RECORDS:
        return handle(intake.other_records_submission(event))
    if kind is intake.EventKind.EVENTBRIDGE:
        from aws_lambda_powertools.utilities.data_classes import EventBridgeEvent

        return handle(intake.eventbridge_submission(EventBridgeEvent(event)))
    return handle(intake.direct_submission(event))


@tracer.capture_lambda_handler
@logger.inject_lambda_context(log_event=False)
@metrics.log_metrics
def lambda_handler(event: Any, context: LambdaContext) -> Any:
    return route(event, context)
