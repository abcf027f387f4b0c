"""The local pipe's failure path: a batch PutEvents keeps refusing is retried MaximumRetryAttempts times, then
described in the pipe's dead-letter queue, and the shard moves on (as a DynamoDB stream source does:
https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-pipes-batching-concurrency.html and the
dead-letter record of https://docs.aws.amazon.com/lambda/latest/dg/services-dynamodb-errors.html)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws
from moto.pipes.models import pipes_backends

from browserjobs.emulator.pipes import PipeRunner
from browserjobs.emulator.settings import ACCOUNT_ID, REGION

ROLE = f"arn:aws:iam::{ACCOUNT_ID}:role/pipe"
MISSING_BUS = f"arn:aws:events:{REGION}:{ACCOUNT_ID}:event-bus/missing"


@pytest.fixture
def aws() -> Iterator[None]:
    with mock_aws():
        yield


def _table_with_stream() -> str:
    ddb = boto3.client("dynamodb", region_name=REGION)
    table = ddb.create_table(
        TableName="jobs",
        KeySchema=[{"AttributeName": "jobId", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "jobId", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
    )
    return table["TableDescription"]["LatestStreamArn"]


def _pipe(stream_arn: str, dead_letter_arn: str, retries: int) -> Any:
    boto3.client("pipes", region_name=REGION).create_pipe(
        Name="events",
        RoleArn=ROLE,
        Source=stream_arn,
        SourceParameters={
            "DynamoDBStreamParameters": {
                "StartingPosition": "TRIM_HORIZON",
                "BatchSize": 10,
                "MaximumRetryAttempts": retries,
                "DeadLetterConfig": {"Arn": dead_letter_arn},
            }
        },
        Target=MISSING_BUS,
        TargetParameters={"EventBridgeEventBusParameters": {"Source": "browserjobs", "DetailType": "Job"}},
    )
    return pipes_backends[ACCOUNT_ID][REGION].pipes["events"]


def test_a_refused_batch_is_retried_then_dead_lettered_and_the_shard_moves_on(aws: None) -> None:
    sqs = boto3.client("sqs", region_name=REGION)
    queue = sqs.create_queue(QueueName="events-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    stream_arn = _table_with_stream()
    pipe = _pipe(stream_arn, dlq_arn, retries=1)
    ddb = boto3.client("dynamodb", region_name=REGION)
    for job_id in ("job-1", "job-2"):
        ddb.put_item(TableName="jobs", Item={"jobId": {"S": job_id}, "status": {"S": "SUCCEEDED"}})
    said: list[str] = []
    runner = PipeRunner(boto3.Session(region_name=REGION), None, said.append)
    events = runner._state(pipe).events
    attempts: list[int] = []
    real_put_events = events.put_events

    def put_events(**request: Any) -> Any:
        attempts.append(len(request["Entries"]))
        return real_put_events(**request)

    events.put_events = put_events

    runner._poll(pipe)  # one round, as the runner's thread does four times a second

    assert attempts == [2, 2]  # the first attempt and MaximumRetryAttempts (1) retry, of the whole batch
    messages = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, WaitTimeSeconds=0)["Messages"]
    assert len(messages) == 1
    body = json.loads(messages[0]["Body"])
    assert body["requestContext"]["condition"] == "RetryAttemptsExhausted"
    batch = body["DDBStreamBatchInfo"]
    assert batch["batchSize"] == 2 and batch["streamArn"] == stream_arn
    assert int(batch["startSequenceNumber"]) < int(batch["endSequenceNumber"])
    assert [line.split(":")[1].strip().split(",")[0] for line in said] == [
        "PutEvents refused a batch of 2",
        "2 records not delivered",
    ]
    runner._poll(pipe)  # the dead-lettered records are not read again
    assert attempts == [2, 2]
    assert "Messages" not in sqs.receive_message(QueueUrl=queue, WaitTimeSeconds=0)
