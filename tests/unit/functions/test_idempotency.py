"""A job delivered more than once starts exactly one execution and leaves exactly one job record: in a
row, at the same moment from several intake instances, after the job has ended, through SQS
redelivery of the same message and through S3's duplicate notifications."""

from __future__ import annotations

import copy
import json
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from browserjobs.core.clock import SystemClock
from browserjobs.core.ids import direct_job_id, email_job_id, s3_job_id, schedule_job_id, sqs_job_id
from browserjobs.core.model import Status
from browserjobs.core.records import set_terminal
from tests.conftest import EVENTS, load_event
from tests.unit.atomic_requests import atomic_requests
from tests.unit.functions.test_intake import put_event_object

pytestmark = pytest.mark.unit

CONCURRENT_DELIVERIES = 8
SOURCES = ["direct", "direct-derived-id", "sqs", "s3-job", "email", "schedule"]


def execution_names(stack) -> list[str]:
    pages = stack.sfn.get_paginator("list_executions").paginate(stateMachineArn=stack.state_machine_arn)
    return sorted(e["name"] for page in pages for e in page["executions"])


def job_ids(stack) -> list[str]:
    pages = stack.ddb.get_paginator("scan").paginate(TableName=stack.jobs_table, ConsistentRead=True)
    return sorted(item["jobId"]["S"] for page in pages for item in page["Items"])


def assert_one_job(stack, job_id: str) -> None:
    assert execution_names(stack) == [job_id]
    assert job_ids(stack) == [job_id]


def delivery(stack, source: str) -> tuple[Callable[[], dict[str, Any]], str]:
    """A fresh copy of the source's sample event on each call, and the jobId intake must give it."""
    if source == "direct":
        job = load_event("intake-direct")
        return lambda: copy.deepcopy(job), job["jobId"]
    if source == "direct-derived-id":
        job = {k: v for k, v in load_event("intake-direct").items() if k != "jobId"}
        return lambda: copy.deepcopy(job), direct_job_id(job)
    if source == "sqs":
        return lambda: load_event("intake-sqs"), sqs_job_id(
            load_event("intake-sqs")["Records"][0]["messageId"]
        )
    if source == "schedule":
        scheduled = load_event("intake-schedule")
        return lambda: copy.deepcopy(scheduled), schedule_job_id(scheduled["resources"][0], scheduled["time"])
    uploaded = put_event_object(
        stack, load_event("intake-s3-job" if source == "s3-job" else "intake-s3-email")
    )
    obj = uploaded["Records"][0]["s3"]["object"]
    if source == "s3-job":
        return lambda: copy.deepcopy(uploaded), s3_job_id(stack.intake_bucket, obj["key"], obj["eTag"])
    return lambda: copy.deepcopy(uploaded), email_job_id("<CAF=example-7d1f@mail.customer.example>")


def outcomes(response: dict[str, Any]) -> list[dict[str, Any]]:
    """Intake's decisions in a response; an SQS batch response lists only failures (none here)."""
    if "batchItemFailures" in response:
        assert response == {"batchItemFailures": []}
        return []
    return response.get("results", [response])


@pytest.fixture
def intake(stack, app):
    return app("intake")


@pytest.mark.parametrize("source", SOURCES)
def test_a_job_delivered_twice_in_a_row_starts_once(stack, intake, lambda_context, source):
    fresh_event, job_id = delivery(stack, source)

    first = outcomes(intake.lambda_handler(fresh_event(), lambda_context))
    again = outcomes(intake.lambda_handler(fresh_event(), lambda_context))

    assert [o["status"] for o in first + again] == ([] if source == "sqs" else ["STARTED", "DUPLICATE"])
    assert_one_job(stack, job_id)
    assert stack.job(job_id)["status"] == "SUBMITTED"


@pytest.mark.parametrize("source", SOURCES)
def test_concurrent_deliveries_to_separate_intake_instances_start_once(stack, app, lambda_context, source):
    fresh_event, job_id = delivery(stack, source)
    instances = [app("intake") for _ in range(CONCURRENT_DELIVERIES)]  # as many Lambda instances
    start_together = threading.Barrier(CONCURRENT_DELIVERIES)

    def deliver(instance: Any) -> list[dict[str, Any]]:
        event = fresh_event()
        start_together.wait()
        return outcomes(instance.route(event, lambda_context))

    with atomic_requests(), ThreadPoolExecutor(CONCURRENT_DELIVERIES) as pool:
        decided = [o for result in pool.map(deliver, instances) for o in result]

    if source != "sqs":
        assert sorted(o["status"] for o in decided) == ["DUPLICATE"] * (CONCURRENT_DELIVERIES - 1) + [
            "STARTED"
        ]
        assert {o["executionArn"] for o in decided} == {decided[0]["executionArn"]}
    assert_one_job(stack, job_id)


@pytest.mark.parametrize("source", SOURCES)
def test_a_delivery_after_the_job_ended_starts_nothing_and_changes_nothing(
    stack, intake, lambda_context, source
):
    fresh_event, job_id = delivery(stack, source)
    intake.lambda_handler(fresh_event(), lambda_context)
    arn = stack.job(job_id)["executionArn"]
    stack.sfn.stop_execution(executionArn=arn)
    assert set_terminal(stack.ddb, stack.jobs_table, job_id, Status.SUCCEEDED, SystemClock().now_ms())
    ended = stack.job(job_id)
    assert ended["eventType"] == "Job Succeeded"  # every final write names its completion event
    assert ended["completion"] == {"lockKey": "", "resultUri": "", "error": "", "cause": ""}

    late = outcomes(intake.lambda_handler(fresh_event(), lambda_context))

    assert late == (
        [] if source == "sqs" else [{"jobId": job_id, "status": "DUPLICATE", "executionArn": arn}]
    )
    assert stack.job(job_id) == ended
    assert_one_job(stack, job_id)
    assert stack.sfn.describe_execution(executionArn=arn)["status"] == "ABORTED"


def test_sqs_redelivers_the_same_message_after_its_visibility_timeout(stack, intake, lambda_context):
    batch = load_event("intake-sqs")
    intake.lambda_handler(batch, lambda_context)
    redelivered = copy.deepcopy(batch["Records"][0])
    redelivered["receiptHandle"] = "a-later-receipt-handle"
    redelivered["attributes"]["ApproximateReceiveCount"] = "2"
    new = copy.deepcopy(redelivered)
    new["messageId"] = "a-new-message"
    new["body"] = json.dumps({**json.loads(new["body"]), "lockKey": "tenant-a#account-77"})

    # Standard queues may also hand one message out twice in the same batch.
    response = intake.lambda_handler({"Records": [redelivered, new, redelivered]}, lambda_context)

    assert response == {"batchItemFailures": []}
    expected = sorted([sqs_job_id(batch["Records"][0]["messageId"]), sqs_job_id("a-new-message")])
    assert execution_names(stack) == expected
    assert job_ids(stack) == expected


def test_s3_duplicate_notifications_are_one_job_and_new_content_is_another(stack, intake, lambda_context):
    s3_event = put_event_object(stack, load_event("intake-s3-job"))
    record = s3_event["Records"][0]
    other_configuration = copy.deepcopy(record)
    other_configuration["s3"]["configurationId"] = "a-second-notification"

    # Two notification configurations matching one object: one event holding both records.
    both = intake.lambda_handler({"Records": [record, other_configuration]}, lambda_context)
    # The same content put again at the same key: same ETag, same job.
    key = record["s3"]["object"]["key"]
    body = (EVENTS / "objects" / key).read_bytes()
    stack.s3.put_object(Bucket=stack.intake_bucket, Key=key, Body=body)
    same_content = intake.lambda_handler(copy.deepcopy(s3_event), lambda_context)

    assert [r["status"] for r in outcomes(both) + outcomes(same_content)] == [
        "STARTED",
        "DUPLICATE",
        "DUPLICATE",
    ]
    first = s3_job_id(stack.intake_bucket, key, record["s3"]["object"]["eTag"])
    assert_one_job(stack, first)

    changed = json.dumps({**json.loads(body), "timeoutSeconds": 120}).encode()
    stack.s3.put_object(Bucket=stack.intake_bucket, Key=key, Body=changed)
    etag = stack.s3.head_object(Bucket=stack.intake_bucket, Key=key)["ETag"].strip('"')
    record["s3"]["object"].update(eTag=etag, size=len(changed))
    resubmitted = outcomes(intake.lambda_handler({"Records": [record]}, lambda_context))

    assert [r["status"] for r in resubmitted] == ["STARTED"]
    assert execution_names(stack) == sorted([first, s3_job_id(stack.intake_bucket, key, etag)])


def test_one_email_saved_twice_by_ses_is_one_job(stack, intake, lambda_context):
    first = put_event_object(stack, load_event("intake-s3-email"))
    raw = stack.s3.get_object(Bucket=stack.intake_bucket, Key=first["Records"][0]["s3"]["object"]["key"])
    stack.s3.put_object(Bucket=stack.intake_bucket, Key="email/another-ses-delivery", Body=raw["Body"].read())
    second = copy.deepcopy(first)
    second["Records"][0]["s3"]["object"]["key"] = "email/another-ses-delivery"

    results = outcomes(intake.lambda_handler(first, lambda_context)) + outcomes(
        intake.lambda_handler(second, lambda_context)
    )

    assert [r["status"] for r in results] == ["STARTED", "DUPLICATE"]
    assert_one_job(stack, email_job_id("<CAF=example-7d1f@mail.customer.example>"))


def test_one_job_id_through_every_channel_is_one_job(stack, intake, lambda_context):
    job = load_event("intake-direct")
    sqs = load_event("intake-sqs")
    sqs["Records"][0]["body"] = json.dumps(job)
    s3_event = load_event("intake-s3-job")
    stack.s3.put_object(Bucket=stack.intake_bucket, Key="jobs/same-job.json", Body=json.dumps(job).encode())
    s3_event["Records"][0]["s3"]["bucket"]["name"] = stack.intake_bucket
    s3_event["Records"][0]["s3"]["object"]["key"] = "jobs/same-job.json"

    results = [
        *outcomes(intake.lambda_handler(job, lambda_context)),
        *outcomes(intake.lambda_handler(sqs, lambda_context)),
        *outcomes(intake.lambda_handler(s3_event, lambda_context)),
    ]

    assert [r["status"] for r in results] == ["STARTED", "DUPLICATE"]
    assert_one_job(stack, job["jobId"])
    assert stack.job(job["jobId"])["source"]["type"] == "direct"
