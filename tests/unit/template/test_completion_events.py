"""Completion events as the template declares them (docs/CONTRACTS.md, "Completion events"): JobsTable's
stream, one pipe with its filters and input template, the bus, the pipe's role and dead-letter queue; the
filters and template evaluated on stream records shaped as DynamoDB Streams delivers them
(https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Streams.Lambda.html, event records)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from browserjobs.core.contract import (
    COMPLETION_FIELDS,
    FINAL_JOB_STATUSES,
    JOB_EVENT_DETAIL_TYPES,
    JOB_EVENT_SOURCE,
    JobStatus,
    completion,
)
from browserjobs.emulator.pipes import json_path, matches, render
from tests.conftest import template

pytestmark = pytest.mark.unit

RESOURCES = template()["Resources"]
PIPE = RESOURCES["JobEventsPipe"]["Properties"]
FILTERS = PIPE["SourceParameters"]["FilterCriteria"]["Filters"]
BUS_PARAMETERS = PIPE["TargetParameters"]["EventBridgeEventBusParameters"]
STREAM_ARN = "arn:aws:dynamodb:us-east-1:123456789012:table/jobs/stream/2026-12-04T00:00:00.000"


def _image(status: str, **extra: str) -> dict[str, Any]:
    item = {"jobId": {"S": "job-1"}, "lockKey": {"S": "tenant#a"}, "status": {"S": status}, **extra}
    if status in FINAL_JOB_STATUSES:
        item |= {
            "eventType": {"S": JOB_EVENT_DETAIL_TYPES[JobStatus(status)]},
            "endedAt": {"S": "2026-12-04"},
            "completion": {"M": {k: {"S": v} for k, v in completion("tenant#a").items()}},
        }
    return {k: v if isinstance(v, dict) else {"S": v} for k, v in item.items()}


def _record(event: str, new: str | None, old: str | None = None) -> dict[str, Any]:
    dynamodb: dict[str, Any] = {"Keys": {"jobId": {"S": "job-1"}}, "SequenceNumber": "100"}
    if new:
        dynamodb["NewImage"] = _image(new)
    if old:
        dynamodb["OldImage"] = _image(old)
    return {
        "eventName": event,
        "eventSource": "aws:dynamodb",
        "dynamodb": dynamodb,
        "eventSourceARN": STREAM_ARN,
    }


@pytest.mark.parametrize("status", sorted(FINAL_JOB_STATUSES))
def test_a_change_into_a_final_status_passes_the_filters_once(status: str) -> None:
    assert matches(FILTERS, _record("MODIFY", status, "RUNNING"))
    assert not matches(FILTERS, _record("MODIFY", status, status)), "a final record written again"
    assert not matches(FILTERS, _record("MODIFY", status, "FAILED" if status != "FAILED" else "SUCCEEDED"))


@pytest.mark.parametrize("status", ["SUBMITTED", "WAITING", "RUNNING"])
def test_changes_between_statuses_that_are_not_final_do_not_pass(status: str) -> None:
    assert not matches(FILTERS, _record("MODIFY", status, "SUBMITTED"))
    assert not matches(FILTERS, _record("INSERT", status))


def test_a_record_created_final_passes_and_a_deleted_one_does_not() -> None:
    assert matches(FILTERS, _record("INSERT", "REJECTED"))  # rejected at intake: the record is created so
    assert not matches(FILTERS, _record("REMOVE", None, "SUCCEEDED"))  # TTL expiry


def test_the_event_names_its_detail_type_and_source_and_shapes_its_detail() -> None:
    record = _record("MODIFY", "FAILED", "RUNNING")
    record["dynamodb"]["NewImage"]["error"] = {
        "M": {"Error": {"S": "Job.StepTimeout"}, "Cause": {"S": '{"a": 1}'}}
    }
    fields = completion("tenant#a", error="Job.StepTimeout", cause='{"a": 1}')
    record["dynamodb"]["NewImage"]["completion"] = {"M": {k: {"S": v} for k, v in fields.items()}}

    assert BUS_PARAMETERS["Source"] == JOB_EVENT_SOURCE == "browserjobs"
    # A dynamic path parameter: the whole value is a JSON path into the record (eb-pipes-event-target.html).
    assert json_path(record, BUS_PARAMETERS["DetailType"]) == "Job Failed"
    detail = json.loads(render(PIPE["TargetParameters"]["InputTemplate"], record))
    assert {k: detail[k] for k in ("jobId", "status", "endedAt")} == {
        "jobId": "job-1",
        "status": "FAILED",
        "endedAt": "2026-12-04",
    }
    # The completion map's fields at the top level, every one of them in every final record.
    assert {k: detail[k] for k in COMPLETION_FIELDS} == fields
    assert detail["cause"] == '{"a": 1}'  # quotes in a value stay valid JSON
    assert detail["record"]["lockKey"] == {"S": "tenant#a"}


def test_the_pipe_reads_the_jobs_stream_into_the_bus_with_a_dead_letter_queue() -> None:
    table = RESOURCES["JobsTable"]["Properties"]
    assert table["StreamSpecification"] == {"StreamViewType": "NEW_AND_OLD_IMAGES"}
    assert PIPE["Source"] == {"Fn::GetAtt": ["JobsTable", "StreamArn"]}
    assert PIPE["Target"] == {"Fn::GetAtt": ["JobEventBus", "Arn"]}
    stream = PIPE["SourceParameters"]["DynamoDBStreamParameters"]
    assert stream["DeadLetterConfig"] == {"Arn": {"Fn::GetAtt": ["JobEventsDeadLetterQueue", "Arn"]}}
    assert stream["MaximumRetryAttempts"] > 0
    # One reader of the stream: "No more than two processes at most should be reading from the same
    # streams shard at the same time" (Streams.html); a pipe per status would be five.
    pipes = [r for r in RESOURCES.values() if r["Type"] == "AWS::Pipes::Pipe"]
    assert len(pipes) == 1
    assert RESOURCES["JobEventsDeadLetterQueue"]["Properties"]["KmsMasterKeyId"] == {"Ref": "Key"}


def test_the_pipe_role_may_read_the_stream_put_on_the_bus_and_dead_letter_only() -> None:
    role = RESOURCES["JobEventsPipeRole"]["Properties"]
    [statement] = role["AssumeRolePolicyDocument"]["Statement"]
    assert statement["Principal"] == {"Service": "pipes.amazonaws.com"}
    allowed = {
        action: statement["Resource"]
        for policy in role["Policies"]
        for statement in policy["PolicyDocument"]["Statement"]
        for action in statement["Action"]
        if isinstance(statement["Action"], list)
    } | {
        statement["Action"]: statement["Resource"]
        for policy in role["Policies"]
        for statement in policy["PolicyDocument"]["Statement"]
        if isinstance(statement["Action"], str)
    }
    assert allowed["events:PutEvents"] == {"Fn::GetAtt": ["JobEventBus", "Arn"]}
    assert allowed["dynamodb:GetRecords"] == {"Fn::GetAtt": ["JobsTable", "StreamArn"]}
    assert allowed["sqs:SendMessage"] == {"Fn::GetAtt": ["JobEventsDeadLetterQueue", "Arn"]}
    assert allowed["kms:Decrypt"] == {"Fn::GetAtt": ["Key", "Arn"]}
    assert "*" not in json.dumps(allowed).replace("/stream/*", "")
