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


def test_the_pool_service_and_its_scaling_are_deployed_as_declared(stack, resources):
    """The local stack deploys the pool (PoolMaxTasks 2, PoolMinTasks 0): the service as ECS describes it,
    and the scalable target and policy as Application Auto Scaling describes them."""
    ecs, scaling = stack.client("ecs"), stack.client("application-autoscaling")
    cluster = stack.client("ecs").describe_clusters(clusters=[resources["Cluster"]])["clusters"][0]

    [service] = ecs.describe_services(cluster=cluster["clusterArn"], services=[resources["PoolService"]])[
        "services"
    ]
    [target] = scaling.describe_scalable_targets(ServiceNamespace="ecs")["ScalableTargets"]
    [policy] = scaling.describe_scaling_policies(ServiceNamespace="ecs", ResourceId=target["ResourceId"])[
        "ScalingPolicies"
    ]

    assert service["desiredCount"] == 0 and "launchType" not in service
    assert [s["capacityProvider"] for s in service["capacityProviderStrategy"]] == ["FARGATE"]  # ARM64
    assert service["networkConfiguration"]["awsvpcConfiguration"]["assignPublicIp"] == "DISABLED"
    assert service["deploymentConfiguration"]["deploymentCircuitBreaker"] == {
        "enable": True,
        "rollback": True,
    }
    assert target["ResourceId"] == f"service/{cluster['clusterName']}/{service['serviceName']}"
    assert (target["MinCapacity"], target["MaxCapacity"]) == (0, 2)
    configuration = policy["TargetTrackingScalingPolicyConfiguration"]
    assert policy["PolicyType"] == "TargetTrackingScaling" and configuration["TargetValue"] == 0.8
    metrics = configuration["CustomizedMetricSpecification"]["Metrics"]
    assert [m["Id"] for m in metrics if m["ReturnData"]] == ["utilization"]
