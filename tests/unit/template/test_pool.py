"""The warm worker pool as the template declares it (docs/CONTRACTS.md, "Dispatch to the warm worker pool"):
its parameters and condition, the dispatch queue, the pool worker's task and role, the service and its
scaling, and what the workflow, intake and the crash hook get for it."""

from __future__ import annotations

import json
import re
from typing import Any

import botocore.session
import pytest
from botocore.validate import ParamValidator

from browserjobs.emulator.deploy import LOCAL_PARAMETER_DEFAULTS
from tests.conftest import ROOT, template
from tests.unit import iam
from tests.unit.template.test_template import _refused_by

pytestmark = pytest.mark.unit

TEMPLATE = template()
PARAMETERS = TEMPLATE["Parameters"]
RESOURCES = TEMPLATE["Resources"]
ASL = json.loads((ROOT / "statemachines" / "job.asl.json").read_text())
POOL_ONLY = (
    "PoolService",
    "PoolScalableTarget",
    "PoolScalingPolicy",
    "PoolBacklogAgeAlarm",
    "PoolAtMaxAlarm",
)


def _properties(logical_id: str) -> dict[str, Any]:
    return RESOURCES[logical_id]["Properties"]


def _container(logical_id: str) -> dict[str, Any]:
    [container] = _properties(logical_id)["ContainerDefinitions"]
    return container


def _statements(role: str) -> list[dict[str, Any]]:
    [policy] = _properties(role)["Policies"]
    return policy["PolicyDocument"]["Statement"]


def test_parameters_and_condition_follow_the_contract():
    assert PARAMETERS["DefaultDispatch"]["AllowedValues"] == ["task", "pool"]
    assert PARAMETERS["DefaultDispatch"]["Default"] == "task"
    expected = {
        "PoolMinTasks": (1, 0, None),
        "PoolMaxTasks": (0, 0, None),
        "PoolJobsPerTask": (4, 1, 16),
        "PoolRecycleAfterJobs": (50, 1, None),
        "PoolDrainSeconds": (100, 1, 110),
    }
    for name, (default, minimum, maximum) in expected.items():
        parameter = PARAMETERS[name]
        assert parameter["Type"] == "Number" and parameter["Description"], name
        assert (parameter["Default"], parameter["MinValue"], parameter.get("MaxValue")) == (
            default,
            minimum,
            maximum,
        )
    assert TEMPLATE["Conditions"]["PoolEnabled"] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": "PoolMaxTasks"}, "0"]}]
    }
    groups = TEMPLATE["Metadata"]["AWS::CloudFormation::Interface"]["ParameterGroups"]
    [group] = [g for g in groups if "DefaultDispatch" in g["Parameters"]]
    assert set(group["Parameters"]) == {"DefaultDispatch", *expected}


def test_only_the_dispatch_queue_exists_without_a_pool():
    assert all(RESOURCES[name].get("Condition") == "PoolEnabled" for name in POOL_ONLY)
    conditional = {name for name, r in RESOURCES.items() if r.get("Condition") == "PoolEnabled"}
    assert conditional == set(POOL_ONLY)
    assert TEMPLATE["Outputs"]["PoolServiceName"]["Condition"] == "PoolEnabled"
    assert "Condition" not in TEMPLATE["Outputs"]["DispatchQueueUrl"]


def test_pool_dispatch_by_default_is_refused_without_a_pool():
    assert _refused_by({"DefaultDispatch": "pool"}) == [
        "DefaultDispatch pool needs a pool; set PoolMaxTasks above 0"
    ]
    assert _refused_by({"DefaultDispatch": "pool", "PoolMaxTasks": "3"}) == []


def test_the_dispatch_queue_is_encrypted_without_redrive_and_keeps_a_day():
    queue = _properties("DispatchQueue")
    assert queue["KmsMasterKeyId"] == {"Ref": "Key"}
    assert (queue["VisibilityTimeout"], queue["MessageRetentionPeriod"]) == (60, 86400)
    assert "RedrivePolicy" not in queue


# ---------------------------------------------------------------- the pool worker's task and role


def test_the_pool_role_is_the_worker_role_plus_the_queue_and_its_own_task_protection():
    worker, pool = _statements("TaskRole"), _statements("PoolTaskRole")
    assert pool[: len(worker)] == worker
    added = pool[len(worker) :]
    assert {s["Sid"]: (s["Action"], s["Resource"]) for s in added} == {
        "DispatchMessages": (
            ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility"],
            {"Fn::GetAtt": ["DispatchQueue", "Arn"]},
        ),
        "OwnTaskScaleInProtection": (
            ["ecs:UpdateTaskProtection", "ecs:GetTaskProtection"],
            {"Fn::Sub": "arn:${AWS::Partition}:ecs:${AWS::Region}:${AWS::AccountId}:task/${Cluster}/*"},
        ),
    }
    assert (
        _properties("PoolTaskRole")["AssumeRolePolicyDocument"]
        == _properties("TaskRole")["AssumeRolePolicyDocument"]
    )


def test_the_pool_role_may_receive_from_the_encrypted_dispatch_queue():
    """SQS decrypts a received message with the queue's key as the caller (kms:Decrypt)."""
    statements = iam.role_statements("PoolTaskRole")
    for action in ("sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility"):
        assert any(s.allows(iam.Need(action, "DispatchQueue")) for s in statements), action
    assert any(s.allows(iam.Need("kms:Decrypt", "Key")) for s in statements)
    assert not any(s.allows(iam.Need("sqs:SendMessage", "DispatchQueue")) for s in statements)


def test_the_pool_task_is_hardened_as_the_per_job_task():
    per_job, pool = _properties("TaskDefinition"), _properties("PoolTaskDefinition")
    same = (
        "RequiresCompatibilities",
        "NetworkMode",
        "Cpu",
        "Memory",
        "RuntimePlatform",
        "ExecutionRoleArn",
        "Volumes",
    )
    assert {key: pool[key] for key in same} == {key: per_job[key] for key in same}
    assert pool["TaskRoleArn"] == {"Fn::GetAtt": ["PoolTaskRole", "Arn"]}
    hardening = (
        "Image",
        "User",
        "ReadonlyRootFilesystem",
        "LinuxParameters",
        "MountPoints",
        "Memory",
        "Name",
    )
    assert {key: _container("PoolTaskDefinition")[key] for key in hardening} == {
        key: _container("TaskDefinition")[key] for key in hardening
    }
    assert _container("PoolTaskDefinition")["StopTimeout"] == 120
    assert _container("PoolTaskDefinition")["HealthCheck"] == {
        "Command": ["CMD", "python", "-m", "browserjobs.worker.health"],
        "Interval": 30,
        "Timeout": 5,
        "Retries": 3,
        "StartPeriod": 60,
    }


def test_the_pool_worker_gets_the_worker_environment_and_the_pool_settings():
    def environment(logical_id: str) -> dict[str, Any]:
        return {item["Name"]: item["Value"] for item in _container(logical_id)["Environment"]}

    per_job, pool = environment("TaskDefinition"), environment("PoolTaskDefinition")
    assert per_job.items() <= pool.items()
    assert {key: pool[key] for key in set(pool) - set(per_job)} == {
        "WORKER_MODE": "pool",
        "DISPATCH_QUEUE_URL": {"Ref": "DispatchQueue"},
        "POOL_JOBS_PER_TASK": {"Ref": "PoolJobsPerTask"},
        "POOL_RECYCLE_AFTER_JOBS": {"Ref": "PoolRecycleAfterJobs"},
        "POOL_DRAIN_SECONDS": {"Ref": "PoolDrainSeconds"},
        "POWERTOOLS_SERVICE_NAME": "browserjobs",
        "POWERTOOLS_METRICS_NAMESPACE": "BrowserJobs",
        "STAGE": {"Ref": "Stage"},
    }
    assert not {"TASK_TOKEN", "JOB_ID"} & set(pool)


# ---------------------------------------------------------------- the service and its scaling


def test_the_service_runs_spot_only_on_x86_and_always_one_on_demand_task():
    service = _properties("PoolService")
    condition, on_x86, otherwise = service["CapacityProviderStrategy"]["Fn::If"]
    assert TEMPLATE["Conditions"][condition] == {"Fn::Equals": [{"Ref": "WorkerArchitecture"}, "X86_64"]}
    on_demand = {"CapacityProvider": "FARGATE", "Base": 1, "Weight": 1}
    assert on_x86 == [on_demand, {"CapacityProvider": "FARGATE_SPOT", "Weight": 4}]
    assert otherwise == [on_demand]
    assert service["DesiredCount"] == {"Ref": "PoolMinTasks"}
    assert service["DeploymentConfiguration"]["DeploymentCircuitBreaker"] == {
        "Enable": True,
        "Rollback": True,
    }


def test_the_service_uses_the_network_of_the_per_job_tasks():
    """RunBrowserTask's AwsvpcConfiguration, with the substitutions the template gives the workflow."""
    substitutions = _properties("JobStateMachine")["DefinitionSubstitutions"]
    joined = {
        "SubnetIds": {"Ref": "VpcSubnetIds"},
        "SecurityGroupIds": {"Ref": "SecurityGroupIds"},
    }
    assert {key: substitutions[key]["Fn::Join"][1] for key in joined} == joined
    per_job = ASL["States"]["RunBrowserTask"]["Parameters"]["NetworkConfiguration"]["AwsvpcConfiguration"]
    assert per_job == {
        "Subnets.$": "States.StringSplit('${SubnetIds}', ',')",
        "SecurityGroups.$": "States.StringSplit('${SecurityGroupIds}', ',')",
        "AssignPublicIp": "${AssignPublicIp}",
    }
    assert substitutions["AssignPublicIp"] == {"Ref": "AssignPublicIp"}
    assert _properties("PoolService")["NetworkConfiguration"]["AwsvpcConfiguration"] == {
        "Subnets": {"Ref": "VpcSubnetIds"},
        "SecurityGroups": {"Ref": "SecurityGroupIds"},
        "AssignPublicIp": {"Ref": "AssignPublicIp"},
    }


def _resolved(value: Any) -> Any:
    """Intrinsic functions replaced by plausible values of their type, to check a shape against the API."""
    if isinstance(value, list):
        return [_resolved(item) for item in value]
    if not isinstance(value, dict):
        return value
    if "Ref" in value and value["Ref"] in PARAMETERS:
        parameter = PARAMETERS[value["Ref"]]
        return int(parameter["Default"]) if parameter["Type"] == "Number" else str(parameter["Default"])
    if len(value) == 1 and next(iter(value)).startswith(("Ref", "Fn::")):
        return "resolved"
    return {key: _resolved(item) for key, item in value.items()}


def _validate(operation: str, params: dict[str, Any]) -> None:
    model = botocore.session.get_session().get_service_model("application-autoscaling")
    report = ParamValidator().validate(params, model.operation_model(operation).input_shape)
    assert not report.has_errors(), report.generate_report()


def test_the_scalable_target_and_policy_have_the_shapes_the_api_takes():
    target = _resolved(_properties("PoolScalableTarget"))
    _validate("RegisterScalableTarget", target)
    assert (target["ServiceNamespace"], target["ScalableDimension"]) == ("ecs", "ecs:service:DesiredCount")
    assert _properties("PoolScalableTarget")["ResourceId"] == {
        "Fn::Sub": "service/${Cluster}/${PoolService.Name}"
    }
    assert _properties("PoolScalableTarget")["MaxCapacity"] == {"Ref": "PoolMaxTasks"}

    policy = _resolved(_properties("PoolScalingPolicy"))
    assert policy.pop("ScalingTargetId") == "resolved"
    _validate(
        "PutScalingPolicy", {**policy, "ServiceNamespace": "ecs", "ResourceId": "r", "ScalableDimension": "d"}
    )
    configuration = policy["TargetTrackingScalingPolicyConfiguration"]
    assert (
        configuration["TargetValue"],
        configuration["ScaleOutCooldown"],
        configuration["ScaleInCooldown"],
    ) == (
        0.8,
        30,
        300,
    )


def test_the_policy_tracks_busy_job_slots():
    metrics = _properties("PoolScalingPolicy")["TargetTrackingScalingPolicyConfiguration"]
    metrics = metrics["CustomizedMetricSpecification"]["Metrics"]
    by_id = {metric["Id"]: metric for metric in metrics}
    [returned] = [metric for metric in metrics if metric["ReturnData"]]
    stats = {key: m["MetricStat"]["Metric"] for key, m in by_id.items() if "MetricStat" in m}
    assert {key: (m["Namespace"], m["MetricName"]) for key, m in stats.items()} == {
        "waiting": ("AWS/SQS", "ApproximateNumberOfMessagesVisible"),
        "running": ("BrowserJobs", "PoolJobsRunning"),
        "tasks": ("ECS/ContainerInsights", "RunningTaskCount"),
    }
    # The pool workers' metric carries the dimensions of the functions' custom metrics.
    breaker = _properties("BreakerOpenAlarm")
    assert (stats["running"]["Namespace"], stats["running"]["Dimensions"]) == (
        breaker["Namespace"],
        breaker["Dimensions"],
    )
    assert by_id["running"]["MetricStat"]["Stat"] == "Sum"
    expression = returned["Expression"]["Fn::Sub"]
    assert set(re.findall(r"\b[a-z]\w*\b(?=\s*[,)])", expression)) <= set(by_id)
    assert "${PoolJobsPerTask}" in expression
    # RunningTaskCount comes from Container Insights, which the cluster has on.
    assert {"Name": "containerInsights", "Value": "enabled"} in _properties("Cluster")["ClusterSettings"]


def test_the_pool_alarms_follow_the_contract():
    backlog, at_max = _properties("PoolBacklogAgeAlarm"), _properties("PoolAtMaxAlarm")
    assert (
        backlog["MetricName"],
        backlog["Threshold"],
        backlog["Period"] * backlog["EvaluationPeriods"],
    ) == (
        "ApproximateAgeOfOldestMessage",
        60,
        180,
    )
    assert (at_max["MetricName"], at_max["Threshold"], at_max["Period"] * at_max["EvaluationPeriods"]) == (
        "RunningTaskCount",
        {"Ref": "PoolMaxTasks"},
        900,
    )
    assert (
        at_max["ComparisonOperator"] == "GreaterThanOrEqualToThreshold" and at_max["Statistic"] == "Minimum"
    )


# ---------------------------------------------------------------- the workflow, intake and the crash hook


def test_the_workflow_may_send_to_the_encrypted_dispatch_queue():
    """sqs:sendMessage.waitForTaskToken sends as the state machine's role: SendMessage on the queue, and
    kms:GenerateDataKey and kms:Decrypt on its key (SQS encrypts as the caller)."""
    assert _properties("JobStateMachine")["DefinitionSubstitutions"]["DispatchQueueUrl"] == {
        "Ref": "DispatchQueue"
    }
    statements = iam.role_statements("JobStateMachineRole")
    for need in (
        iam.Need("sqs:SendMessage", "DispatchQueue"),
        iam.Need("kms:GenerateDataKey", "Key"),
        iam.Need("kms:Decrypt", "Key"),
    ):
        assert any(s.allows(need) for s in statements), need
    assert not any(s.allows(iam.Need("sqs:ReceiveMessage", "DispatchQueue")) for s in statements)


def test_every_queue_the_workflow_sends_to_is_allowed():
    substitutions = _properties("JobStateMachine")["DefinitionSubstitutions"]
    statements = iam.role_statements("JobStateMachineRole")
    sending = [
        s
        for s in ASL["States"].values()
        if s.get("Resource", "").startswith("arn:aws:states:::sqs:sendMessage")
    ]
    assert sending
    for state in sending:
        placeholder = re.fullmatch(r"\$\{(\w+)\}", state["Parameters"]["QueueUrl"]).group(1)
        queue = substitutions[placeholder]["Ref"]
        assert any(s.allows(iam.Need("sqs:SendMessage", queue)) for s in statements), queue


def test_intake_knows_the_default_dispatch_and_whether_a_pool_exists():
    variables = _properties("IntakeFunction")["Environment"]["Variables"]
    assert variables["DEFAULT_DISPATCH"] == {"Ref": "DefaultDispatch"}
    assert variables["POOL_ENABLED"] == {"Fn::If": ["PoolEnabled", "true", "false"]}


def test_the_crash_hook_may_read_and_delete_pool_registry_items():
    statements = iam.function_policies()["CrashHookFunction"]
    for need in (
        iam.Need("dynamodb:GetItem", "LocksTable"),
        iam.Need("dynamodb:DeleteItem", "LocksTable"),
        iam.Need("kms:Decrypt", "Key"),
    ):
        assert any(s.allows(need) for s in statements), need
    assert not any(s.allows(iam.Need("dynamodb:GetItem", "JobsTable")) for s in statements)
    assert not any(s.allows(iam.Need("dynamodb:UpdateItem", "LocksTable")) for s in statements)
    assert TEMPLATE["Globals"]["Function"]["Environment"]["Variables"]["LOCKS_TABLE"] == {"Ref": "LocksTable"}


def test_the_local_stack_has_a_pool_that_starts_no_task_until_used():
    assert (LOCAL_PARAMETER_DEFAULTS["PoolMinTasks"], LOCAL_PARAMETER_DEFAULTS["PoolMaxTasks"]) == ("0", "2")
