"""Intake: every source becomes a started, duplicate or rejected job; nothing is dropped or doubled."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from botocore.exceptions import ClientError

from browserjobs.core.ids import (
    canonical_json,
    direct_job_id,
    email_job_id,
    s3_job_id,
    schedule_job_id,
    sqs_job_id,
)
from browserjobs.core.intake import MAX_OBJECT_BYTES
from tests.conftest import EVENTS

pytestmark = pytest.mark.unit


def executions(stack) -> dict[str, dict[str, Any]]:
    listed = stack.sfn.list_executions(stateMachineArn=stack.state_machine_arn)["executions"]
    return {e["name"]: stack.sfn.describe_execution(executionArn=e["executionArn"]) for e in listed}


def rejected_document(stack, raw_uri: str) -> dict[str, Any]:
    bucket, _, key = raw_uri.removeprefix("s3://").partition("/")
    return json.loads(stack.s3.get_object(Bucket=bucket, Key=key)["Body"].read())


@pytest.fixture
def intake(stack, app):
    return app("intake")


def test_direct_job_is_recorded_and_its_execution_started_with_the_contract_input(
    stack, intake, event, lambda_context
):
    job = event("intake-direct")

    result = intake.lambda_handler(job, lambda_context)

    assert result["status"] == "STARTED"
    assert result["jobId"] == job["jobId"]
    started = executions(stack)
    assert list(started) == [job["jobId"]]
    assert result["executionArn"] == started[job["jobId"]]["executionArn"]
    assert json.loads(started[job["jobId"]]["input"]) == {
        "jobId": job["jobId"],
        "lockKey": job["lockKey"],
        "rateKey": job["lockKey"],
        "siteKey": "example.com",  # the host of the job's first URL
        "dispatch": "task",  # the stack's DefaultDispatch
        "onConflict": "wait",
        "timeoutSeconds": job["timeoutSeconds"],
        "heartbeatSeconds": job["heartbeatSeconds"],
        "lockWait": {"attempt": 0, "delaySeconds": 1, "maxAttempts": 120, "maxDelaySeconds": 30},
    }
    record = stack.job(job["jobId"])
    assert record["status"] == "SUBMITTED"
    assert record["executionArn"] == result["executionArn"]
    assert record["params"] == job["params"]
    assert record["source"]["type"] == "direct"
    assert record["createdAt"].endswith("Z")
    assert record["expiresAt"] > 0


def test_a_duplicate_delivery_starts_no_second_execution(stack, intake, event, lambda_context):
    job = event("intake-direct")
    first = intake.lambda_handler(job, lambda_context)

    again = intake.lambda_handler(job, lambda_context)

    assert again == {**first, "status": "DUPLICATE"}
    assert len(executions(stack)) == 1


def test_a_job_without_jobid_gets_the_same_derived_id_however_its_keys_are_ordered(
    stack, intake, event, lambda_context
):
    job = event("intake-direct")
    del job["jobId"]
    reordered = dict(reversed(list(job.items())))

    first = intake.lambda_handler(job, lambda_context)
    second = intake.lambda_handler(reordered, lambda_context)

    assert first["jobId"] == direct_job_id(job) == direct_job_id(reordered)
    assert first["jobId"].startswith("direct-") and len(first["jobId"]) == len("direct-") + 40
    assert (first["status"], second["status"]) == ("STARTED", "DUPLICATE")
    assert canonical_json(job) == canonical_json(reordered)


def test_an_invalid_job_is_rejected_with_every_error_and_kept_with_its_raw_input(
    stack, intake, event, lambda_context
):
    job = {**event("intake-direct"), "onConflict": "sometimes", "timeoutSeconds": 5, "colour": "blue"}

    result = intake.lambda_handler(job, lambda_context)

    assert result["status"] == "REJECTED"
    assert result["jobId"] == job["jobId"]
    assert result["error"]["code"] == "INVALID_JOB"
    paths = {e["path"] for e in result["error"]["errors"]}
    assert paths == {"/", "/onConflict", "/timeoutSeconds"}
    record = stack.job(job["jobId"])
    assert record["status"] == "REJECTED"
    assert record["eventType"] == "Job Rejected"  # the completion event's detail-type (JobEventsPipe)
    assert record["completion"] == {  # the completion event's flat fields
        "lockKey": job["lockKey"],
        "resultUri": "",
        "error": "INVALID_JOB",
        "cause": record["rejection"]["message"],
    }
    assert record["rejection"]["code"] == "INVALID_JOB"
    assert record["rejection"]["rawUri"] == result["error"]["rawUri"]
    assert "/rejected/" in record["rejection"]["rawUri"] and record["rejection"]["rawUri"].endswith(
        f"/{job['jobId']}.json"
    )
    document = rejected_document(stack, record["rejection"]["rawUri"])
    assert document["raw"] == job
    assert document["code"] == "INVALID_JOB" and document["errors"] == result["error"]["errors"]
    assert executions(stack) == {}


def test_heartbeat_not_below_timeout_is_rejected_at_the_heartbeat(stack, intake, event, lambda_context):
    job = {**event("intake-direct"), "timeoutSeconds": 60, "heartbeatSeconds": 60}

    result = intake.lambda_handler(job, lambda_context)

    assert result["status"] == "REJECTED"
    assert result["error"]["errors"] == [
        {"path": "/heartbeatSeconds", "message": "60 is not less than timeoutSeconds 60"}
    ]


def test_a_rejection_never_overwrites_the_valid_job_that_owns_its_jobid(stack, intake, event, lambda_context):
    job = event("intake-direct")
    intake.lambda_handler(job, lambda_context)
    invalid = {**job, "action": "Not An Action"}

    result = intake.lambda_handler(invalid, lambda_context)

    assert result["status"] == "REJECTED"
    assert result["jobId"] == direct_job_id(invalid)
    assert stack.job(job["jobId"])["status"] == "SUBMITTED"
    assert stack.job(result["jobId"])["rejection"]["code"] == "INVALID_JOB"


def test_a_rejection_emits_a_metric(stack, intake, lambda_context, capsys):
    intake.lambda_handler({"action": "browse"}, lambda_context)

    emitted = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    assert any(m.get("JobsRejected") == [1.0] for m in emitted)


def test_mixed_sqs_batch_rejects_the_invalid_records_and_reports_no_failure(
    stack, intake, event, lambda_context
):
    batch = event("intake-sqs-mixed")
    valid, unparsable, invalid = batch["Records"]

    response = intake.lambda_handler(batch, lambda_context)

    assert response == {"batchItemFailures": []}
    assert stack.job(sqs_job_id(valid["messageId"]))["status"] == "SUBMITTED"
    assert list(executions(stack)) == [sqs_job_id(valid["messageId"])]
    for record, code in ((unparsable, "INVALID_JSON"), (invalid, "INVALID_JOB")):
        stored = stack.job(sqs_job_id(record["messageId"]))
        assert stored["status"] == "REJECTED"
        assert stored["rejection"]["code"] == code
        assert rejected_document(stack, stored["rejection"]["rawUri"])["raw"] == record["body"]


def test_a_redelivered_sqs_batch_changes_nothing(stack, intake, event, lambda_context):
    batch = event("intake-sqs-mixed")
    intake.lambda_handler(batch, lambda_context)
    before = {r["messageId"]: stack.job(sqs_job_id(r["messageId"])) for r in batch["Records"]}

    response = intake.lambda_handler(event("intake-sqs-mixed"), lambda_context)

    assert response == {"batchItemFailures": []}
    assert {r["messageId"]: stack.job(sqs_job_id(r["messageId"])) for r in batch["Records"]} == before
    assert len(executions(stack)) == 1


class FailingStarts:
    """Step Functions that refuses to start the named executions (as when throttled), else passes."""

    def __init__(self, real: Any, refuse: set[str]) -> None:
        self.real, self.refuse = real, refuse

    def start_execution(self, **kwargs: Any) -> Any:
        if kwargs["name"] in self.refuse:
            raise ClientError(
                {"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}}, "StartExecution"
            )
        return self.real.start_execution(**kwargs)


def test_an_aws_error_fails_only_its_record_and_the_retry_completes_the_job(
    stack, intake, event, lambda_context, monkeypatch
):
    batch = event("intake-sqs")
    second = copy.deepcopy(batch["Records"][0])
    second["messageId"] = "a-second-message"
    second["body"] = json.dumps({**json.loads(second["body"]), "lockKey": "tenant-a#account-99"})
    batch["Records"].append(second)
    refused = sqs_job_id(second["messageId"])
    monkeypatch.setattr(
        intake,
        "CLIENTS",
        intake.CLIENTS.__class__(
            ddb=intake.CLIENTS.ddb, s3=intake.CLIENTS.s3, sfn=FailingStarts(intake.CLIENTS.sfn, {refused})
        ),
    )

    response = intake.lambda_handler(batch, lambda_context)

    assert response == {"batchItemFailures": [{"itemIdentifier": "a-second-message"}]}
    assert stack.job(refused)["status"] == "SUBMITTED"  # written before the start failed
    assert refused not in executions(stack)

    monkeypatch.setattr(intake.CLIENTS.sfn, "refuse", set())
    retry = {"Records": [second]}
    assert intake.lambda_handler(retry, lambda_context) == {"batchItemFailures": []}
    assert refused in executions(stack)


def test_execution_already_exists_counts_as_started(stack, intake, event, lambda_context):
    job = event("intake-direct")
    stack.sfn.start_execution(stateMachineArn=stack.state_machine_arn, name=job["jobId"], input="{}")

    result = intake.lambda_handler(job, lambda_context)

    assert result["status"] == "STARTED"
    assert result["executionArn"].endswith(f":{job['jobId']}")
    assert len(executions(stack)) == 1


def put_event_object(stack, event: dict[str, Any]) -> dict[str, Any]:
    """Upload events/objects/<key> to the test's intake bucket and point the event at it."""
    record = event["Records"][0]["s3"]
    key = record["object"]["key"]
    stack.s3.put_object(Bucket=stack.intake_bucket, Key=key, Body=(EVENTS / "objects" / key).read_bytes())
    record["bucket"]["name"] = stack.intake_bucket
    return event


def test_s3_job_file_becomes_a_job_named_after_bucket_key_and_etag(stack, intake, event, lambda_context):
    s3_event = put_event_object(stack, event("intake-s3-job"))
    obj = s3_event["Records"][0]["s3"]["object"]

    response = intake.lambda_handler(s3_event, lambda_context)

    expected = s3_job_id(stack.intake_bucket, obj["key"], obj["eTag"])
    assert [r["jobId"] for r in response["results"]] == [expected]
    assert response["results"][0]["status"] == "STARTED"
    record = stack.job(expected)
    assert record["lockKey"] == "tenant-b#account-7"
    assert record["source"] == {"type": "s3", "id": f"s3://{stack.intake_bucket}/{obj['key']}"}


def test_email_job_takes_the_attachment_and_the_email_defaults(stack, intake, event, lambda_context):
    s3_event = put_event_object(stack, event("intake-s3-email"))

    response = intake.lambda_handler(s3_event, lambda_context)

    message_id = "<CAF=example-7d1f@mail.customer.example>"
    assert response["results"][0] == {
        "jobId": email_job_id(message_id),
        "status": "STARTED",
        "executionArn": response["results"][0]["executionArn"],
    }
    record = stack.job(email_job_id(message_id))
    assert record["lockKey"] == "email#ops@customer.example"
    assert record["onConflict"] == "interrupt"
    assert record["timeoutSeconds"] == 600
    assert record["meta"] == {
        "ticket": "OPS-1234",
        "messageId": message_id,
        "from": "ops@customer.example",
        "subject": "Sync \u2013 compte n\u00b042",
    }
    assert record["source"] == {"type": "email", "id": message_id}


def test_an_email_without_a_job_is_rejected_and_the_email_kept(stack, intake, event, lambda_context):
    s3_event = event("intake-s3-email")
    key = "email/no-job-here"
    raw = (
        b"From: a@example.com\r\nSubject: hello\r\nMessage-ID: <x1@example.com>\r\n"
        b"\r\nPlease sync my inbox.\r\n"
    )
    stack.s3.put_object(Bucket=stack.intake_bucket, Key=key, Body=raw)
    s3_event["Records"][0]["s3"]["bucket"]["name"] = stack.intake_bucket
    s3_event["Records"][0]["s3"]["object"].update(key=key, size=len(raw))

    result = intake.lambda_handler(s3_event, lambda_context)["results"][0]

    assert result["status"] == "REJECTED"
    assert result["jobId"] == email_job_id("<x1@example.com>")
    assert result["error"]["code"] == "NO_JOB_IN_EMAIL"
    assert rejected_document(stack, result["error"]["rawUri"])["raw"] == raw.decode()


def test_an_object_over_the_size_limit_is_rejected_without_being_read(stack, intake, event, lambda_context):
    s3_event = event("intake-s3-job")
    s3_event["Records"][0]["s3"]["bucket"]["name"] = stack.intake_bucket  # the object does not exist
    s3_event["Records"][0]["s3"]["object"]["size"] = MAX_OBJECT_BYTES + 1

    result = intake.lambda_handler(s3_event, lambda_context)["results"][0]

    assert result["status"] == "REJECTED"
    assert result["error"]["code"] == "OBJECT_TOO_LARGE"


def test_a_url_encoded_s3_key_is_read_decoded(stack, intake, event, lambda_context):
    s3_event = event("intake-s3-job")
    key = "jobs/daily run (1).json"
    stack.s3.put_object(
        Bucket=stack.intake_bucket, Key=key, Body=(EVENTS / "objects/jobs/example-job.json").read_bytes()
    )
    s3_event["Records"][0]["s3"]["bucket"]["name"] = stack.intake_bucket
    s3_event["Records"][0]["s3"]["object"]["key"] = "jobs/daily+run+%281%29.json"

    result = intake.lambda_handler(s3_event, lambda_context)["results"][0]

    assert result["status"] == "STARTED"
    assert stack.job(result["jobId"])["source"]["id"] == f"s3://{stack.intake_bucket}/{key}"


def test_each_scheduled_run_is_one_job_named_after_rule_and_time(stack, intake, event, lambda_context):
    scheduled = event("intake-schedule")

    first = intake.lambda_handler(scheduled, lambda_context)
    again = intake.lambda_handler(scheduled, lambda_context)
    later = intake.lambda_handler({**scheduled, "time": "2025-01-15T09:35:00Z"}, lambda_context)

    assert first["jobId"] == schedule_job_id(scheduled["resources"][0], scheduled["time"])
    assert (first["status"], again["status"], later["status"]) == ("STARTED", "DUPLICATE", "STARTED")
    assert stack.job(first["jobId"])["onConflict"] == "reject"


def test_a_schedule_template_with_a_jobid_is_rejected(stack, intake, event, lambda_context):
    scheduled = event("intake-schedule")
    scheduled["detail"]["jobId"] = "fixed"

    result = intake.lambda_handler(scheduled, lambda_context)

    assert result["status"] == "REJECTED"
    assert result["error"]["code"] == "SCHEDULE_JOB_ID"
    assert stack.job("fixed") is None


def test_an_eventbridge_event_that_is_not_a_schedule_is_rejected(stack, intake, event, lambda_context):
    other = {**event("intake-schedule"), "detail-type": "Object Created", "source": "aws.s3"}

    result = intake.lambda_handler(other, lambda_context)

    assert result["status"] == "REJECTED"
    assert result["error"]["code"] == "UNSUPPORTED_EVENT"
    assert stack.job(result["jobId"])["status"] == "REJECTED"
