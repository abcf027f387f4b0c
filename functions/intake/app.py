"""Intake: SQS messages, S3 objects (a JSON job or a raw email), schedules and direct calls become jobs.

Every input ends as a started (or duplicate) job or a REJECTED record with its raw input in S3.
Invalid input is never retried; AWS errors are raised so that the source retries (SQS redrive).
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote_plus

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from browserjobs.core.aws import Clients
from browserjobs.core.clock import SystemClock
from browserjobs.core.config import Settings
from browserjobs.core.emailjob import parse_email
from browserjobs.core.ids import direct_job_id, email_job_id, s3_job_id, schedule_job_id, sqs_job_id
from browserjobs.core.model import JobRejected, RejectionCode, parse_json, utf8_text
from browserjobs.core.submit import Submission, SubmitStatus, submit
from browserjobs.core.tracing import deferred_tracer

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.batch import BatchProcessor
    from aws_lambda_powertools.utilities.data_classes import EventBridgeEvent, SQSRecord

logger = Logger()
tracer = deferred_tracer()
metrics = Metrics()
copy_config_to_registered_loggers(source_logger=logger, include={"browserjobs.core"})

SETTINGS = Settings.from_env().require("jobs_table", "artifacts_bucket", "state_machine_arn")
CLIENTS = Clients.create("dynamodb", "s3", "stepfunctions")
CLOCK = SystemClock()

MAX_OBJECT_BYTES = 40 * 1024 * 1024  # the largest email SES receives
EMAIL_PREFIX = "email/"
SCHEDULED_EVENT = "Scheduled Event"
OBJECT_CREATED = "ObjectCreated:"
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


def sqs_submission(record: SQSRecord) -> Submission:
    base = {"source": {"type": "sqs", "id": record.message_id}, "derived_id": sqs_job_id(record.message_id)}
    try:
        return Submission(**base, raw=record.body, body=parse_json(record.body, "the message body"))
    except JobRejected as rejection:
        return Submission(**base, raw=record.body, rejection=rejection)


def sqs_record_handler(record: SQSRecord) -> dict[str, Any]:
    return handle(sqs_submission(record))


def s3_submission(bucket: str, key: str, etag: str, size: int, version_id: str | None = None) -> Submission:
    """A job file (JSON) or, under email/ or named *.eml, a raw email holding the job."""
    uri = f"s3://{bucket}/{key}"
    is_email = key.startswith(EMAIL_PREFIX) or key.lower().endswith(".eml")
    base: dict[str, Any] = {"source": {"type": "s3", "id": uri}, "derived_id": s3_job_id(bucket, key, etag)}
    if size > MAX_OBJECT_BYTES:
        rejection = JobRejected(
            RejectionCode.OBJECT_TOO_LARGE, f"{uri} is {size} bytes; the limit is {MAX_OBJECT_BYTES}"
        )
        return Submission(**base, raw={"uri": uri, "size": size}, rejection=rejection)
    version = {"VersionId": version_id} if version_id else {}
    data = CLIENTS.s3.get_object(Bucket=bucket, Key=key, **version)["Body"].read()
    text = data.decode("utf-8", errors="backslashreplace")  # kept if rejected: shows any non-UTF-8 byte
    if not is_email:
        try:
            return Submission(**base, raw=text, body=parse_json(utf8_text(data, uri).lstrip("\ufeff"), uri))
        except JobRejected as rejection:
            return Submission(**base, raw=text, rejection=rejection)
    email = parse_email(data)
    if email.message_id:
        base = {
            "source": {"type": "email", "id": email.message_id},
            "derived_id": email_job_id(email.message_id),
        }
    return Submission(**base, raw=text, body=email.body, defaults=email.defaults(), rejection=email.rejection)


def unsupported_submission(event: Any, source_type: str, source_id: str | None, message: str) -> Submission:
    """An event intake does not take (another service's, wired to intake by mistake), kept as rejected."""
    derived = direct_job_id(event)
    return Submission(
        source={"type": source_type, "id": source_id or derived},
        derived_id=derived,
        raw=event,
        rejection=JobRejected(RejectionCode.UNSUPPORTED_EVENT, message),
    )


def eventbridge_submission(event: EventBridgeEvent) -> Submission:
    """A scheduled event whose detail is the job template (the rule's InputTransformer puts it there)."""
    if event.detail_type != SCHEDULED_EVENT or not event.resources:
        return unsupported_submission(
            event.raw_event,
            "eventbridge",
            event.get_id,
            f"intake takes scheduled events with a job template as detail, not {event.detail_type!r}",
        )
    rule = event.resources[0]
    base = {
        "source": {"type": "schedule", "id": f"{rule}@{event.time}"},
        "derived_id": schedule_job_id(rule, event.time),
    }
    detail = event.detail
    if isinstance(detail, dict) and "jobId" in detail:
        rejection = JobRejected(
            RejectionCode.SCHEDULE_JOB_ID,
            "a scheduled job template must not carry a jobId: each run's jobId is derived from rule and time",
            [{"path": "/jobId", "message": "remove jobId from the template"}],
        )
        return Submission(**base, raw=event.raw_event, rejection=rejection)
    return Submission(**base, raw=event.raw_event, body=detail)


def direct_submission(event: Any) -> Submission:
    derived = direct_job_id(event)
    return Submission(source={"type": "direct", "id": derived}, derived_id=derived, raw=event, body=event)


def records_source(event: Any) -> str | None:
    """The eventSource of an event made of Records (SQS, S3, SNS, DynamoDB and Kinesis streams...)."""
    records = event.get("Records") if isinstance(event, dict) else None
    if not isinstance(records, list) or not records or not isinstance(records[0], dict):
        return None
    return str(records[0].get("eventSource") or records[0].get("EventSource") or "unknown")


# Powertools' batch utility and event data classes import asyncio and every event class (~100 ms here):
# each is imported by the first event that needs it, so no cold start pays for all of them at import.
@cache
def sqs_processor() -> BatchProcessor:
    from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType

    return BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)


def sqs_results(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    from aws_lambda_powertools.utilities.batch import process_partial_response

    return process_partial_response(event, sqs_record_handler, sqs_processor(), context)


def s3_results(event: dict[str, Any]) -> dict[str, Any]:
    from aws_lambda_powertools.utilities.data_classes import S3Event

    results = []
    for record in S3Event(event).records:
        if not record.event_name.startswith(OBJECT_CREATED):
            message = f"intake takes S3 object-created events, not {record.event_name}"
            submission = unsupported_submission(record.raw_event, "s3", None, message)
        else:
            obj = record.s3.get_object
            key = unquote_plus(obj.key)
            submission = s3_submission(record.s3.bucket.name, key, obj.etag, obj.size, obj.version_id)
        results.append(handle(submission))
    return {"results": results}


def route(event: Any, context: LambdaContext) -> Any:
    source = records_source(event)
    if source == "aws:sqs":
        return sqs_results(event, context)
    if source == "aws:s3":
        return s3_results(event)
    if source is not None:
        return handle(
            unsupported_submission(
                event,
                "direct",
                None,
                f"intake takes SQS messages, S3 object-created events, scheduled events and jobs, "
                f"not {source} records",
            )
        )
    if isinstance(event, dict) and "detail-type" in event and "source" in event:
        from aws_lambda_powertools.utilities.data_classes import EventBridgeEvent

        return handle(eventbridge_submission(EventBridgeEvent(event)))
    return handle(direct_submission(event))


@tracer.capture_lambda_handler
@logger.inject_lambda_context(log_event=False)
@metrics.log_metrics
def lambda_handler(event: Any, context: LambdaContext) -> Any:
    return route(event, context)
