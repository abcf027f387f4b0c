"""Crash hook: a stopped browser task fails its open callback at once; closed tokens are expected."""

from __future__ import annotations

import json
import time
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber
from moto import mock_aws

from browserjobs.core import pool_registry
from tests.unit.conftest import REGION, build_stack

pytestmark = pytest.mark.unit

DEADLINE_SECONDS = 30


def waiting_machine(queue_url: str) -> str:
    """A workflow that hands its task token out (to SQS here, to the ECS task in the real one) and waits."""
    return json.dumps(
        {
            "StartAt": "RunBrowserTask",
            "States": {
                "RunBrowserTask": {
                    "Type": "Task",
                    "Resource": "arn:aws:states:::sqs:sendMessage.waitForTaskToken",
                    "Parameters": {"QueueUrl": queue_url, "MessageBody": {"token.$": "$$.Task.Token"}},
                    "HeartbeatSeconds": 600,
                    "End": True,
                }
            },
        }
    )


@pytest.fixture
def running(monkeypatch) -> Any:
    """An execution really waiting on its task token, in moto's Step Functions interpreter."""
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        queue = boto3.client("sqs", region_name=REGION).create_queue(QueueName="tokens")["QueueUrl"]
        stack = build_stack(monkeypatch, definition=waiting_machine(queue))
        execution = stack.sfn.start_execution(
            stateMachineArn=stack.state_machine_arn, name="job-1", input="{}"
        )
        token = wait_for_token(stack, queue)
        yield stack, execution["executionArn"], token
        if stack.sfn.describe_execution(executionArn=execution["executionArn"])["status"] == "RUNNING":
            stack.sfn.stop_execution(executionArn=execution["executionArn"])


def wait_for_token(stack, queue_url: str) -> str:
    deadline = time.monotonic() + DEADLINE_SECONDS
    while time.monotonic() < deadline:
        messages = stack.sqs.receive_message(QueueUrl=queue_url, WaitTimeSeconds=1).get("Messages", [])
        if messages:
            return json.loads(messages[0]["Body"])["token"]
    raise AssertionError(f"no task token within {DEADLINE_SECONDS}s")


def wait_until_ended(stack, execution_arn: str) -> dict[str, Any]:
    deadline = time.monotonic() + DEADLINE_SECONDS
    while time.monotonic() < deadline:
        described = stack.sfn.describe_execution(executionArn=execution_arn)
        if described["status"] != "RUNNING":
            return described
        time.sleep(0.05)  # polling a condition, bounded by the deadline
    raise AssertionError(f"execution still RUNNING after {DEADLINE_SECONDS}s")


def stopped_event(event, token: str, **detail: Any) -> dict[str, Any]:
    sample = event("crash-hook-task-stopped")
    environment = sample["detail"]["overrides"]["containerOverrides"][0]["environment"]
    next(v for v in environment if v["name"] == "TASK_TOKEN")["value"] = token
    sample["detail"].update(detail)
    return sample


def failure_event(stack, execution_arn: str) -> dict[str, Any]:
    events = stack.sfn.get_execution_history(executionArn=execution_arn)["events"]
    return next(e["executionFailedEventDetails"] for e in events if e["type"] == "ExecutionFailed")


def test_a_crashed_task_fails_its_execution_with_worker_crashed(running, app, event, lambda_context):
    stack, execution_arn, token = running
    crash_hook = app("crash_hook")

    result = crash_hook.lambda_handler(stopped_event(event, token), lambda_context)

    assert result == {
        "taskArn": event("crash-hook-task-stopped")["detail"]["taskArn"],
        "jobId": "direct-example-0001",
        "callback": "failed",
    }
    assert wait_until_ended(stack, execution_arn)["status"] == "FAILED"
    # moto 5.2.5 drops SendTaskFailure's cause from the history; the cause is checked below.
    assert failure_event(stack, execution_arn)["error"] == "Worker.Crashed"


def test_a_spot_interruption_fails_with_worker_interrupted(running, app, event, lambda_context):
    stack, execution_arn, token = running
    sample = event("crash-hook-spot-interruption")
    sample["detail"]["overrides"]["containerOverrides"][0]["environment"][0]["value"] = token

    assert app("crash_hook").lambda_handler(sample, lambda_context)["callback"] == "failed"

    wait_until_ended(stack, execution_arn)
    assert failure_event(stack, execution_arn)["error"] == "Worker.Interrupted"


@pytest.mark.parametrize("code", ["TaskTimedOut", "InvalidToken", "TaskDoesNotExist"])
def test_a_token_already_closed_is_expected_not_an_error(app, event, lambda_context, code, monkeypatch):
    """Step Functions answers these for a token that completed, timed out or never existed (moto 5.2.5
    accepts a completed token silently, so the documented answers are stubbed here)."""
    monkeypatch.setenv("LOCKS_TABLE", "locks")
    crash_hook = app("crash_hook")
    with Stubber(crash_hook.CLIENTS.sfn) as stubber:
        stubber.add_client_error("send_task_failure", service_error_code=code, service_message="closed")

        result = crash_hook.lambda_handler(stopped_event(event, "a-completed-token"), lambda_context)

        stubber.assert_no_pending_responses()
    assert result["callback"] == "closed"


def test_an_unknown_token_is_expected_not_an_error(running, app, event, lambda_context):
    assert app("crash_hook").lambda_handler(stopped_event(event, "not-a-token"), lambda_context)[
        "callback"
    ] == ("closed")


def test_a_task_without_a_token_and_no_registered_jobs_fails_nothing(running, app, event, lambda_context):
    stack, execution_arn, _ = running
    sample = event("crash-hook-task-stopped")
    sample["detail"]["overrides"] = {"containerOverrides": [{"name": "worker"}]}

    assert app("crash_hook").lambda_handler(sample, lambda_context)["poolJobs"] == {}
    assert stack.sfn.describe_execution(executionArn=execution_arn)["status"] == "RUNNING"


def test_a_stopped_pool_task_fails_every_job_it_held_with_worker_interrupted(
    running, app, event, lambda_context
):
    """A pool task gets its tokens from the dispatch queue: its registry item names the jobs it held.
    Each fails with Worker.Interrupted (retried elsewhere), whatever stopped the task; the item goes."""
    stack, execution_arn, token = running
    second = stack.sfn.start_execution(stateMachineArn=stack.state_machine_arn, name="job-2", input="{}")
    queue = stack.sqs.get_queue_url(QueueName="tokens")["QueueUrl"]
    second_token = wait_for_token(stack, queue)
    sample = event("crash-hook-task-stopped")
    sample["detail"]["overrides"] = {"containerOverrides": [{"name": "worker"}]}
    task_arn = sample["detail"]["taskArn"]
    for job_id, job_token in (("job-1", token), ("job-2", second_token)):
        pool_registry.add_job(stack.ddb, stack.locks_table, task_arn, job_id, job_token, int(time.time()))

    crash_hook = app("crash_hook")
    sent: list[dict[str, Any]] = []  # moto's interpreter keeps no cause in the history: read the calls
    crash_hook.CLIENTS.sfn.meta.events.register(
        "before-parameter-build.sfn.SendTaskFailure", lambda params, **_: sent.append(params)
    )

    result = crash_hook.lambda_handler(sample, lambda_context)

    assert result["poolJobs"] == {"job-1": "failed", "job-2": "failed"}
    for arn in (execution_arn, second["executionArn"]):
        wait_until_ended(stack, arn)
        assert failure_event(stack, arn)["error"] == "Worker.Interrupted"
    causes = {json.loads(params["cause"])["jobId"]: json.loads(params["cause"]) for params in sent}
    assert set(causes) == {"job-1", "job-2"} and all(cause["pool"] for cause in causes.values())
    assert pool_registry.held_jobs(stack.ddb, stack.locks_table, task_arn) == {}


def test_any_other_error_is_raised(running, app, event, lambda_context, monkeypatch):
    crash_hook = app("crash_hook")

    def throttled(**_: Any) -> None:
        raise ClientError(
            {"Error": {"Code": "ThrottlingException", "Message": "slow down"}}, "SendTaskFailure"
        )

    monkeypatch.setattr(crash_hook.CLIENTS.sfn, "send_task_failure", throttled)

    with pytest.raises(ClientError, match="ThrottlingException"):
        crash_hook.lambda_handler(stopped_event(event, running[2]), lambda_context)
