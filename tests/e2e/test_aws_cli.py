"""The local stack as a user with nothing but the AWS CLI sees it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from typing import Any

import pytest

from browserjobs.emulator.stack import LocalStack
from browserjobs.testing.harness import new_id, poll
from browserjobs.testing.sample_site.server import SampleSite

AWS = shutil.which("aws")
pytestmark = [pytest.mark.e2e, pytest.mark.skipif(AWS is None, reason="the AWS CLI (`aws`) is not on PATH")]


def aws(stack: LocalStack, *args: str) -> Any:
    env = {**os.environ, **stack.environment()}
    env.pop("AWS_ENDPOINT_URL")  # the endpoint is passed the way the README shows: --endpoint-url
    completed = subprocess.run(
        [AWS, "--endpoint-url", stack.endpoint_url, "--output", "json", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert completed.returncode == 0, f"aws {' '.join(args)} failed: {completed.stderr}"
    return json.loads(completed.stdout) if completed.stdout.strip() else None


def test_job_sent_with_the_aws_cli_succeeds_and_its_history_is_readable(
    stack: LocalStack, site: SampleSite
) -> None:
    described = aws(stack, "cloudformation", "describe-stacks", "--stack-name", stack.stack_name)["Stacks"][0]
    outputs = {output["OutputKey"]: output["OutputValue"] for output in described["Outputs"]}
    assert described["StackStatus"] == "CREATE_COMPLETE"
    assert outputs == stack.outputs
    for key in (
        "StateMachineArn",
        "IntakeFunctionName",
        "IntakeQueueUrl",
        "JobsTableName",
        "DeadLetterQueueUrl",
        "ArtifactsBucketName",
    ):
        assert outputs.get(key), key

    job_id = new_id("cli")
    job = {
        "jobId": job_id,
        "lockKey": new_id("cli"),
        "action": "browse",
        "params": {"steps": [{"goto": {"url": f"{site.url}/"}}]},
    }
    sent = aws(
        stack,
        "sqs",
        "send-message",
        "--queue-url",
        outputs["IntakeQueueUrl"],
        "--message-body",
        json.dumps(job),
    )
    assert sent["MessageId"]

    execution_arn = f"{outputs['StateMachineArn'].replace(':stateMachine:', ':execution:')}:{job_id}"

    def ended() -> dict[str, Any] | None:
        listed = aws(
            stack, "stepfunctions", "list-executions", "--state-machine-arn", outputs["StateMachineArn"]
        )
        if job_id not in [execution["name"] for execution in listed["executions"]]:
            return None
        execution = aws(stack, "stepfunctions", "describe-execution", "--execution-arn", execution_arn)
        return execution if execution["status"] != "RUNNING" else None

    execution = poll(f"execution {job_id} ending", ended, 120, interval=1)
    assert execution["status"] == "SUCCEEDED", execution

    events = aws(stack, "stepfunctions", "get-execution-history", "--execution-arn", execution_arn)["events"]
    types = [event["type"] for event in events]
    assert types[0] == "ExecutionStarted" and types[-1] == "ExecutionSucceeded"
    submitted = [e for e in events if e["type"] == "TaskSubmitted"]
    assert submitted and submitted[0]["taskSubmittedEventDetails"]["resource"] == "runTask.waitForTaskToken"
    record = aws(
        stack,
        "dynamodb",
        "get-item",
        "--table-name",
        outputs["JobsTableName"],
        "--key",
        json.dumps({"jobId": {"S": job_id}}),
        "--consistent-read",
    )["Item"]
    assert record["status"]["S"] == "SUCCEEDED"
