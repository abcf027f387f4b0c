"""What intake makes of each input: the event's kind, and the Submission for an SQS message, an S3 object
(a JSON job or a raw email holding one), a schedule, a direct call or an event intake does not take.

Invalid input becomes a Submission carrying its rejection (recorded as REJECTED, its raw input kept);
nothing here raises for bad input. functions/intake/app.py submits what these return.
"""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote_plus

from browserjobs.core.emailjob import parse_email
from browserjobs.core.ids import direct_job_id, email_job_id, s3_job_id, schedule_job_id, sqs_job_id
from browserjobs.core.model import JobRejected, RejectionCode, parse_json, utf8_text
from browserjobs.core.submit import Submission

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.data_classes import EventBridgeEvent
    from aws_lambda_powertools.utilities.data_classes.s3_event import S3EventRecord

MAX_OBJECT_BYTES = 40 * 1024 * 1024  # the largest email SES receives
EMAIL_PREFIX = "email/"
SCHEDULED_EVENT = "Scheduled Event"
OBJECT_CREATED = "ObjectCreated:"


class EventKind(StrEnum):
    SQS = "sqs"
    S3 = "s3"
    OTHER_RECORDS = "other-records"  # another service's Records (SNS, streams...): not intake's
    EVENTBRIDGE = "eventbridge"
    DIRECT = "direct"


def records_source(event: Any) -> str | None:
    """The eventSource of an event made of Records (SQS, S3, SNS, DynamoDB and Kinesis streams...)."""
    records = event.get("Records") if isinstance(event, dict) else None
    if not isinstance(records, list) or not records or not isinstance(records[0], dict):
        return None
    return str(records[0].get("eventSource") or records[0].get("EventSource") or "unknown")


def event_kind(event: Any) -> EventKind:
    source = records_source(event)
    if source == "aws:sqs":
        return EventKind.SQS
    if source == "aws:s3":
        return EventKind.S3
    if source is not None:
        return EventKind.OTHER_RECORDS
    if isinstance(event, dict) and "detail-type" in event and "source" in event:
        return EventKind.EVENTBRIDGE
    return EventKind.DIRECT


def sqs_submission(message_id: str, body: str) -> Submission:
    base: dict[str, Any] = {"source": {"type": "sqs", "id": message_id}, "derived_id": sqs_job_id(message_id)}
    try:
        return Submission(**base, raw=body, body=parse_json(body, "the message body"))
    except JobRejected as rejection:
        return Submission(**base, raw=body, rejection=rejection)


def s3_submission(
    s3: Any, bucket: str, key: str, etag: str, size: int, version_id: str | None = None
) -> Submission:
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
    data = s3.get_object(Bucket=bucket, Key=key, **version)["Body"].read()
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


def s3_record_submission(s3: Any, record: S3EventRecord) -> Submission:
    """One record of an S3 notification: an object-created event's object, anything else rejected."""
    if not record.event_name.startswith(OBJECT_CREATED):
        message = f"intake takes S3 object-created events, not {record.event_name}"
        return unsupported_submission(record.raw_event, "s3", None, message)
    obj = record.s3.get_object
    key = unquote_plus(obj.key)  # S3 notifications URL-encode keys
    return s3_submission(s3, record.s3.bucket.name, key, obj.etag, obj.size, obj.version_id)


def unsupported_submission(event: Any, source_type: str, source_id: str | None, message: str) -> Submission:
    """An event intake does not take (another service's, wired to intake by mistake), kept as rejected."""
    derived = direct_job_id(event)
    return Submission(
        source={"type": source_type, "id": source_id or derived},
        derived_id=derived,
        raw=event,
        rejection=JobRejected(RejectionCode.UNSUPPORTED_EVENT, message),
    )


def other_records_submission(event: Any) -> Submission:
    return unsupported_submission(
        event,
        "direct",
        None,
        f"intake takes SQS messages, S3 object-created events, scheduled events and jobs, "
        f"not {records_source(event)} records",
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
    base: dict[str, Any] = {
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
