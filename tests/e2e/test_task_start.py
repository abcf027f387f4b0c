"""Fargate's start time on the local stack: PROVISIONING, then PENDING, then RUNNING, as ECS reports them.

On AWS a Fargate task takes 30-60 s from RunTask to a running container; the job's heartbeat deadline must
allow for it (the workflow's TaskStartGraceSeconds). Here each test sets the shared stack's task start time
(LOCAL_TASK_START_SECONDS) for its own tasks and puts it back.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest

from browserjobs.emulator.stack import LocalStack
from browserjobs.testing.harness import Harness, new_id, poll
from browserjobs.testing.sample_site.server import SampleSite

pytestmark = [pytest.mark.e2e]


@pytest.fixture
def task_start(stack: LocalStack) -> Iterator[Any]:
    previous = stack.tasks.start_seconds

    def set_seconds(seconds: float) -> None:
        stack.tasks.start_seconds = seconds

    yield set_seconds
    stack.tasks.start_seconds = previous


@pytest.fixture
def task_events(stack: LocalStack) -> Iterator[Any]:
    """Every "ECS Task State Change" event on the default bus, through a rule with an SQS target."""
    sqs, events = stack.client("sqs"), stack.client("events")
    name = new_id("task-events")
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(
        Name=name, EventPattern=json.dumps({"source": ["aws.ecs"], "detail-type": ["ECS Task State Change"]})
    )
    events.put_targets(Rule=name, Targets=[{"Id": "queue", "Arn": arn}])
    seen: list[dict[str, Any]] = []

    def read(task_arn: str) -> list[str]:
        while True:
            messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
            if not messages:
                break
            seen.extend(json.loads(m["Body"]) for m in messages)
            for message in messages:
                sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
        return [e["detail"]["lastStatus"] for e in seen if e["detail"]["taskArn"] == task_arn]

    yield read
    events.remove_targets(Rule=name, Ids=["queue"])
    events.delete_rule(Name=name)
    sqs.delete_queue(QueueUrl=url)


def _time(value: Any) -> datetime:
    return value if isinstance(value, datetime) else datetime.fromisoformat(str(value))


def test_a_job_with_a_10_s_heartbeat_succeeds_when_its_task_takes_20_s_to_start(
    stack: LocalStack, harness: Harness, site: SampleSite, task_start: Any, task_events: Any
) -> None:
    task_start(20.0)
    job = {
        "jobId": new_id("slow-start"),
        "lockKey": new_id("account"),
        "action": "browse",
        "params": {"steps": [{"goto": {"url": f"{site.url}/"}}]},
        "timeoutSeconds": 120,
        "heartbeatSeconds": 10,
    }
    harness.submit(job)
    task_arn = poll(
        "the job's task", lambda: harness.execution(job["jobId"]) and harness.task_arn_of(job["jobId"]), 60
    )
    assert harness.task(task_arn)["lastStatus"] in ("PROVISIONING", "PENDING")

    final, execution = harness.wait_for_job_end(job["jobId"], 150)

    assert final["status"] == "SUCCEEDED", (final, execution)
    task = poll(
        "the task to stop", lambda: (t := harness.task(task_arn))["lastStatus"] == "STOPPED" and t, 30
    )
    created, pull_started, pull_stopped, started = (
        _time(task[key]) for key in ("createdAt", "pullStartedAt", "pullStoppedAt", "startedAt")
    )
    assert created < pull_started < pull_stopped <= started
    assert (started - created).total_seconds() >= 19.5
    statuses = poll(
        "the STOPPED event", lambda: (s := task_events(task_arn)) and s[-1] == "STOPPED" and s, 30
    )
    assert statuses[:3] == ["PROVISIONING", "PENDING", "RUNNING"], statuses


def test_a_task_stopped_while_it_starts_never_runs_its_container(
    stack: LocalStack, harness: Harness, task_start: Any, task_events: Any
) -> None:
    task_start(30.0)
    outputs = stack.outputs
    ecs = stack.client("ecs")
    definition = ecs.describe_task_definition(taskDefinition=outputs["TaskDefinitionArn"])["taskDefinition"]
    network = {
        "awsvpcConfiguration": {
            "subnets": [stack.deployed.parameters["VpcSubnetIds"]],
            "securityGroups": [stack.deployed.parameters["SecurityGroupIds"]],
        }
    }
    task = ecs.run_task(
        cluster=outputs["ClusterArn"],
        taskDefinition=definition["taskDefinitionArn"],
        launchType="FARGATE",
        networkConfiguration=network,
    )["tasks"][0]
    assert task["lastStatus"] == "PROVISIONING"

    ecs.stop_task(cluster=outputs["ClusterArn"], task=task["taskArn"], reason="changed my mind")

    stopped = poll(
        "the task to stop", lambda: (t := harness.task(task["taskArn"]))["lastStatus"] == "STOPPED" and t, 10
    )
    assert stopped["stopCode"] == "UserInitiated" and stopped["stoppedReason"] == "changed my mind"
    assert "startedAt" not in stopped and "exitCode" not in stopped["containers"][0]
    statuses = poll(
        "the STOPPED event", lambda: (s := task_events(task["taskArn"])) and s[-1] == "STOPPED" and s, 10
    )
    assert statuses == ["PROVISIONING", "STOPPED"]
