"""The harness finds a job's DLQ message however many messages the queue holds, and consumes none."""

from __future__ import annotations

import json

import boto3
import pytest
from moto import mock_aws

from browserjobs.ops.outputs import StackOutputs, Target
from browserjobs.testing.harness import Harness

pytestmark = pytest.mark.unit


def test_a_message_past_the_first_ten_is_found_and_all_stay_in_the_queue(monkeypatch):
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    with mock_aws():
        sqs = boto3.client("sqs", region_name="us-east-1")
        url = sqs.create_queue(QueueName="dlq")["QueueUrl"]
        for n in range(15):
            sqs.send_message(QueueUrl=url, MessageBody=json.dumps({"jobId": f"job-{n}", "status": "FAILED"}))
        target = Target(stack_name="s")
        target.__dict__["outputs"] = StackOutputs(
            "s", {"DeadLetterQueueUrl": url}
        )  # no stack to read them from
        harness = Harness(target=target)

        assert harness.dead_letters("job-13", timeout=5)["jobId"] == "job-13"
        assert harness.dead_letters("job-2", timeout=5)["jobId"] == "job-2"
        attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])
        assert attributes["Attributes"]["ApproximateNumberOfMessages"] == "15"  # looked at, never consumed
