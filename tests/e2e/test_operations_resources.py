"""The stack's operations resources as the local stack deploys them: the composite alarm with its rule and
actions, and the saved Logs Insights queries on the stack's log groups."""

from __future__ import annotations

import pytest

from browserjobs.emulator.stack import LocalStack


@pytest.fixture(scope="module")
def resources(stack: LocalStack) -> dict[str, str]:
    cloudformation = stack.client("cloudformation")
    listed = cloudformation.list_stack_resources(StackName=stack.stack_name)["StackResourceSummaries"]
    return {r["LogicalResourceId"]: r["PhysicalResourceId"] for r in listed}


def test_the_composite_alarm_names_the_stacks_alarms_and_notifies_the_topic(stack, resources):
    cloudwatch = stack.client("cloudwatch")

    composite = cloudwatch.describe_alarms(
        AlarmNames=[resources["OperationsAlarm"]], AlarmTypes=["CompositeAlarm"]
    )
    [alarm] = composite["CompositeAlarms"]

    for logical_id in (
        "JobDeadLetterQueueNotEmptyAlarm",
        "IntakeBacklogAgeAlarm",
        "IntakePartialFailureAlarm",
    ):
        assert f'ALARM("{resources[logical_id]}")' in alarm["AlarmRule"]
    assert alarm["AlarmActions"] == alarm["OKActions"] == [resources["AlertsTopic"]]
    # AlertMode=composite (the default): the metric alarms stay silent.
    dlq = cloudwatch.describe_alarms(AlarmNames=[resources["JobDeadLetterQueueNotEmptyAlarm"]])[
        "MetricAlarms"
    ]
    assert dlq[0]["AlarmActions"] == []


def test_the_saved_queries_read_the_stacks_log_groups(stack, resources):
    logs = stack.client("logs")

    found = logs.describe_query_definitions(queryDefinitionNamePrefix=f"{stack.stack_name}/")[
        "queryDefinitions"
    ]

    assert sorted(d["name"].split("/", 1)[1] for d in found) == [
        "errors-by-reason",
        "one-job-by-jobid",
        "rejected-inputs",
        "slow-jobs",
    ]
    groups = {g["logGroupName"] for g in logs.describe_log_groups()["logGroups"]}
    assert all(set(d["logGroupNames"]) <= groups for d in found), (found, groups)
