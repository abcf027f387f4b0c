"""`browserjobs doctor`: is the deployed stack ready for production traffic?

Each check reads the stack's resources (CloudFormation ListStackResources by logical id, the Outputs and
the Parameters) and the services' describe/list/get APIs, never a write, and returns OK, NOK, or TODO when
the APIs cannot tell (an API the endpoint does not implement, an image outside ECR). docs/RUNBOOK.md's
"Launch readiness" section explains each check, what NOK means and the fix.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from functools import cached_property
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from botocore.parsers import ResponseParserError

from browserjobs.ops.outputs import Target

OK, NOK, TODO = "OK", "NOK", "TODO"
# What an AWS call that fails raises; an endpoint without the API answers a 500 page botocore cannot parse.
API_ERRORS = (ClientError, BotoCoreError, ResponseParserError)

FARGATE_VCPU_QUOTA = ("fargate", "L-3032A538")  # Fargate On-Demand vCPU resource count
ACCESS_KEY_ID = re.compile(r"AKIA[0-9A-Z]{16}")
CREDENTIAL_VARIABLES = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")
IMAGE_PULL_SERVICES = ("ecr.api", "ecr.dkr", "s3")
ECR_IMAGE = re.compile(
    r"^(?P<account>\d{12})\.dkr\.ecr\.(?P<region>[a-z0-9-]+)\.amazonaws\.com(?:\.cn)?/(?P<repo>[^:@]+)"
)
DRIFT_DEADLINE_SECONDS = 60


@dataclass(frozen=True)
class CheckResult:
    check: str
    status: str  # OK | NOK | TODO
    evidence: str
    fix: str

    def to_json(self) -> dict[str, str]:
        return asdict(self)


# --- pure decisions (tested without a stack) ----------------------------------------------------------------


def leaked_credentials(variables: dict[str, Any]) -> list[str]:
    """Names of the environment variables that carry long-term AWS credentials."""
    return sorted(
        name
        for name, value in variables.items()
        if name in CREDENTIAL_VARIABLES or ACCESS_KEY_ID.search(str(value))
    )


def required_vcpus(max_concurrent_tasks: int, task_cpu_units: int, pool_max_tasks: int = 0) -> float:
    """Per-job tasks at MaxConcurrentTasks, plus the pool at PoolMaxTasks, all counted as on demand (an
    upper bound: on X86_64 most pool tasks run on Spot, whose vCPU quota is another one)."""
    return (max_concurrent_tasks + pool_max_tasks) * task_cpu_units / 1024


def quota_decision(
    quota: float, max_concurrent_tasks: int, task_cpu_units: int, pool_max_tasks: int = 0
) -> tuple[str, str]:
    needed = required_vcpus(max_concurrent_tasks, task_cpu_units, pool_max_tasks)
    pool = f" + PoolMaxTasks {pool_max_tasks}" if pool_max_tasks else ""
    evidence = (
        f"Fargate On-Demand vCPU quota {quota:g}; (MaxConcurrentTasks {max_concurrent_tasks}{pool}) x "
        f"{task_cpu_units / 1024:g} vCPU per task = {needed:g} vCPU"
    )
    return (OK if quota >= needed else NOK), evidence


def image_pull_route(
    region: str, endpoint_services: Iterable[str], default_routes: Iterable[str]
) -> tuple[str, str]:
    """How a private subnet's tasks reach ECR and S3: (status, evidence).

    `endpoint_services`: the VPC's endpoint service names; `default_routes`: the 0.0.0.0/0 targets of the
    subnet's route table (nat-…, igw-…)."""
    found = set(endpoint_services)
    wanted = {f"com.amazonaws.{region}.{service}": service for service in IMAGE_PULL_SERVICES}
    present = sorted(short for name, short in wanted.items() if name in found)
    missing = sorted(short for name, short in wanted.items() if name not in found)
    nats = sorted(target for target in default_routes if target.startswith("nat-"))
    if not missing:
        return OK, f"VPC endpoints for {', '.join(present)}"
    if nats:
        return OK, (
            f"0.0.0.0/0 -> {', '.join(nats)}; image pulls go through the NAT gateway (billed per GB: "
            f"see docs/COST.md){'; endpoints only for ' + ', '.join(present) if present else ''}"
        )
    return NOK, (
        f"no route to ECR/S3: no VPC endpoint for {', '.join(missing)} and no 0.0.0.0/0 route to a NAT "
        f"gateway (default routes: {', '.join(sorted(default_routes)) or 'none'})"
    )


def ecr_repository(image: str) -> str | None:
    match = ECR_IMAGE.match(image)
    return match["repo"] if match else None


def subnets_in(network_configuration: Any) -> list[str]:
    """Subnet ids in a RunTask NetworkConfiguration, literal or inside an intrinsic (States.StringSplit)."""
    return sorted(set(re.findall(r"subnet-[0-9a-zA-Z]+", json.dumps(network_configuration))))


def find_state(states: dict[str, Any], name: str) -> dict[str, Any] | None:
    """A state by name anywhere in a definition (inside Parallel branches and Map iterators too)."""
    for state_name, state in states.items():
        if state_name == name:
            return state
        nested = [*state.get("Branches", []), state.get("Iterator"), state.get("ItemProcessor")]
        for graph in filter(None, nested):
            found = find_state(graph.get("States", {}), name)
            if found is not None:
                return found
    return None


# --- reading the stack --------------------------------------------------------------------------------------


class Stack:
    """The stack's resources by logical id and its parameters, read once."""

    def __init__(self, target: Target):
        self.target = target
        self.name = target.stack_name

    def client(self, service: str) -> Any:
        return self.target.client(service)

    @cached_property
    def resources(self) -> dict[str, tuple[str, str]]:
        found = {}
        paginator = self.client("cloudformation").get_paginator("list_stack_resources")
        for page in paginator.paginate(StackName=self.name):
            for summary in page["StackResourceSummaries"]:
                found[summary["LogicalResourceId"]] = (
                    summary["ResourceType"],
                    summary.get("PhysicalResourceId", ""),
                )
        return found

    @cached_property
    def parameters(self) -> dict[str, str]:
        stack = self.client("cloudformation").describe_stacks(StackName=self.name)["Stacks"][0]
        return {p["ParameterKey"]: p.get("ParameterValue", "") for p in stack.get("Parameters", [])}

    def physical(self, logical_id: str) -> str:
        if logical_id not in self.resources:
            raise MissingResource(f"the stack has no resource {logical_id}")
        return self.resources[logical_id][1]

    def of_types(self, *types: str) -> list[tuple[str, str]]:
        return sorted((lid, pid) for lid, (kind, pid) in self.resources.items() if kind in types)

    @cached_property
    def region(self) -> str:
        return self.client("cloudformation").meta.region_name

    @cached_property
    def state_machine(self) -> dict[str, Any]:
        arn = self.target.outputs["StateMachineArn"]
        return self.client("stepfunctions").describe_state_machine(stateMachineArn=arn)

    @cached_property
    def task_definition(self) -> dict[str, Any]:
        # The workflow runs the family's latest ACTIVE revision: read that one, not the stack's revision.
        arn = self.physical("TaskDefinition")
        family = arn.rsplit("/", 1)[-1].rsplit(":", 1)[0]
        ecs = self.client("ecs")
        active = ecs.list_task_definitions(familyPrefix=family, status="ACTIVE", sort="DESC")
        revisions = [a for a in active["taskDefinitionArns"] if a.rsplit("/", 1)[-1].startswith(f"{family}:")]
        latest = max(revisions, key=lambda a: int(a.rsplit(":", 1)[-1]), default=arn)
        return ecs.describe_task_definition(taskDefinition=latest)["taskDefinition"]


class MissingResource(Exception):
    pass


def _error(error: Exception) -> str:
    if isinstance(error, ClientError):
        details = error.response.get("Error", {})
        return f"{details.get('Code', '')}: {details.get('Message', '')}".strip(": ")
    if isinstance(error, ResponseParserError):
        return "the endpoint answered with an error page instead of the API's response"
    return str(error).splitlines()[0][:300] if str(error) else type(error).__name__


# --- the checks ---------------------------------------------------------------------------------------------


def check_alarm_actions(stack: Stack) -> CheckResult:
    fix = (
        "deploy with AlertEmail=<address> (or subscribe a pager/chat endpoint to the AlertsTopicArn output) "
        "and confirm the subscription from the e-mail AWS sends"
    )
    cloudwatch, sns = stack.client("cloudwatch"), stack.client("sns")
    alarm_name = stack.physical("OperationsAlarm")
    alarms = cloudwatch.describe_alarms(AlarmNames=[alarm_name], AlarmTypes=["CompositeAlarm"])
    composite = (alarms.get("CompositeAlarms") or [{}])[0]
    actions = composite.get("AlarmActions", []) if composite.get("ActionsEnabled", True) else []
    topic = stack.physical("AlertsTopic")
    subscriptions = [
        s
        for page in sns.get_paginator("list_subscriptions_by_topic").paginate(TopicArn=topic)
        for s in page["Subscriptions"]
    ]
    confirmed = [s for s in subscriptions if s["SubscriptionArn"].startswith("arn:")]
    pending = len(subscriptions) - len(confirmed)
    evidence = (
        f"OperationsAlarm {alarm_name}: {len(actions)} alarm action(s)"
        f"{'' if composite.get('ActionsEnabled', True) else ' (actions disabled)'}; AlertsTopic: "
        f"{len(confirmed)} confirmed subscription(s) "
        f"({', '.join(sorted({s['Protocol'] for s in confirmed})) or 'none'}), {pending} pending"
    )
    if not composite:
        return CheckResult("alarm-actions", NOK, f"no composite alarm {alarm_name}", fix)
    if not actions:
        fix = (
            "enable the composite alarm's actions: aws cloudwatch enable-alarm-actions --alarm-names "
            + alarm_name
        )
        return CheckResult("alarm-actions", NOK, evidence, fix)
    return CheckResult("alarm-actions", OK if confirmed else NOK, evidence, fix)


def check_dlq_empty(stack: Stack) -> CheckResult:
    sqs = stack.client("sqs")
    counts = {}
    for logical_id in ("JobDeadLetterQueue", "IntakeDeadLetterQueue"):
        attributes = sqs.get_queue_attributes(
            QueueUrl=stack.physical(logical_id),
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        counts[logical_id] = (
            int(attributes.get("ApproximateNumberOfMessages", 0)),
            int(attributes.get("ApproximateNumberOfMessagesNotVisible", 0)),
        )
    evidence = "; ".join(
        f"{logical_id}: {visible} visible, {hidden} in flight"
        for logical_id, (visible, hidden) in counts.items()
    )
    fix = (
        "read why with `browserjobs dlq list`, then `browserjobs dlq redrive --all` (job DLQ); the intake "
        "DLQ: docs/RUNBOOK.md, `aws sqs start-message-move-task --source-arn <IntakeDeadLetterQueue ARN>` "
        "once the cause is fixed"
    )
    empty = all(visible + hidden == 0 for visible, hidden in counts.values())
    return CheckResult("dlq-empty", OK if empty else NOK, evidence, fix)


def check_task_networking(stack: Stack) -> CheckResult:
    fix = (
        "run the tasks in private subnets (AssignPublicIp=DISABLED, MapPublicIpOnLaunch off) with VPC "
        "endpoints for ecr.api, ecr.dkr and s3 (gateway), or a NAT gateway route (docs/COST.md)"
    )
    definition = json.loads(stack.state_machine["definition"])
    state = find_state(definition.get("States", {}), "RunBrowserTask")
    if state is None:
        return CheckResult("task-networking", NOK, "the state machine has no RunBrowserTask state", fix)
    arguments = state.get("Parameters") or state.get("Arguments") or {}
    network = arguments.get("NetworkConfiguration", {}).get("AwsvpcConfiguration", {})
    public_ip = network.get("AssignPublicIp", "DISABLED")
    subnet_ids = subnets_in(network)
    problems: list[str] = []
    notes = [f"RunBrowserTask AssignPublicIp {public_ip}"]
    if public_ip != "DISABLED":
        problems.append("tasks get public IPs")
    if not subnet_ids:
        return CheckResult(
            "task-networking", NOK, "; ".join([*notes, "no subnets in its NetworkConfiguration"]), fix
        )
    ec2 = stack.client("ec2")
    subnets = ec2.describe_subnets(SubnetIds=subnet_ids)["Subnets"]
    endpoint_services: dict[str, set[str]] = {}
    for subnet in subnets:
        subnet_id, vpc_id = subnet["SubnetId"], subnet["VpcId"]
        if subnet.get("MapPublicIpOnLaunch"):
            problems.append(f"{subnet_id} maps public IPs on launch")
        if vpc_id not in endpoint_services:
            endpoints = ec2.describe_vpc_endpoints(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])
            endpoint_services[vpc_id] = {
                e["ServiceName"]
                for e in endpoints["VpcEndpoints"]
                if e.get("State", "available") == "available"
            }
        status, evidence = image_pull_route(
            stack.region, endpoint_services[vpc_id], _default_routes(ec2, subnet_id, vpc_id)
        )
        notes.append(f"{subnet_id} ({vpc_id}): {evidence}")
        if status == NOK:
            problems.append(f"{subnet_id} cannot reach ECR/S3")
    if problems:
        return CheckResult("task-networking", NOK, "; ".join([*problems, *notes]), fix)
    return CheckResult("task-networking", OK, "; ".join(notes), fix)


def _default_routes(ec2: Any, subnet_id: str, vpc_id: str) -> list[str]:
    """The 0.0.0.0/0 targets of the subnet's route table (its own, else the VPC's main one)."""
    in_vpc = ec2.describe_route_tables(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])["RouteTables"]
    own = [t for t in in_vpc if any(a.get("SubnetId") == subnet_id for a in t.get("Associations", []))]
    tables = own or [t for t in in_vpc if any(a.get("Main") for a in t.get("Associations", []))]
    targets = []
    for table in tables:
        for route in table.get("Routes", []):
            if route.get("DestinationCidrBlock") == "0.0.0.0/0":
                target = (
                    route.get("NatGatewayId") or route.get("GatewayId") or route.get("NetworkInterfaceId")
                )
                if target:
                    targets.append(target)
    return targets


def check_worker_image(stack: Stack) -> CheckResult:
    fix = (
        "push the worker image to ECR, deploy WorkerImageUri as <repo>@sha256:<digest>, and turn on "
        "scan on push: aws ecr put-image-scanning-configuration --repository-name <repo> "
        "--image-scanning-configuration scanOnPush=true"
    )
    task = stack.task_definition
    revision = f"{task.get('family')}:{task.get('revision')}"
    images = [c["image"] for c in task.get("containerDefinitions", [])]
    if not images:
        return CheckResult("worker-image", NOK, f"task definition {revision} has no container", fix)
    image = images[0]
    pinned = "@sha256:" in image
    repository = ecr_repository(image)
    evidence = f"task definition {revision} runs {image} ({'pinned by digest' if pinned else 'not pinned'})"
    if repository is None:
        return CheckResult(
            "worker-image",
            TODO,
            f"{evidence}; the image is not in ECR (the local stack's placeholder is a local image), so its "
            "scanning cannot be read here",
            fix,
        )
    if not pinned:
        return CheckResult("worker-image", NOK, f"{evidence}: a tag can move to another image", fix)
    ecr = stack.client("ecr")
    try:
        repo = ecr.describe_repositories(repositoryNames=[repository])["repositories"][0]
    except ClientError as error:
        return CheckResult("worker-image", NOK, f"{evidence}; repository {repository}: {_error(error)}", fix)
    scan_on_push = repo.get("imageScanningConfiguration", {}).get("scanOnPush", False)
    evidence += f"; repository {repository} scanOnPush {str(scan_on_push).lower()}"
    try:
        findings = ecr.describe_image_scan_findings(
            repositoryName=repository, imageId={"imageDigest": image.split("@", 1)[1]}
        )
        counts = findings.get("imageScanFindings", {}).get("findingSeverityCounts", {})
        evidence += "; findings: " + (", ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "none")
    except API_ERRORS as error:
        evidence += f"; findings not available ({_error(error)})"
    return CheckResult("worker-image", OK if scan_on_push else NOK, evidence, fix)


def check_kms_rotation(stack: Stack) -> CheckResult:
    key_id = stack.physical("Key")
    enabled = stack.client("kms").get_key_rotation_status(KeyId=key_id).get("KeyRotationEnabled", False)
    return CheckResult(
        "kms-rotation",
        OK if enabled else NOK,
        f"key {key_id}: rotation {'enabled' if enabled else 'disabled'}",
        f"aws kms enable-key-rotation --key-id {key_id} "
        "(the template sets EnableKeyRotation: true; redeploy)",
    )


def check_log_retention(stack: Stack) -> CheckResult:
    logs = stack.client("logs")
    missing, seen = [], []
    for _, name in stack.of_types("AWS::Logs::LogGroup"):
        groups = logs.describe_log_groups(logGroupNamePrefix=name)["logGroups"]
        group = next((g for g in groups if g["logGroupName"] == name), None)
        if group is None:
            missing.append(f"{name} (not found)")
        elif group.get("retentionInDays") is None:
            missing.append(f"{name} (never expires)")
        else:
            seen.append(f"{name} {group['retentionInDays']} d")
    evidence = "; ".join([*(f"no retention: {m}" for m in missing), *seen]) or "no log groups in the stack"
    fix = "aws logs put-retention-policy --log-group-name <group> --retention-in-days <LogRetentionDays>"
    return CheckResult("log-retention", NOK if missing else OK, evidence, fix)


def check_table_pitr(stack: Stack) -> CheckResult:
    dynamodb = stack.client("dynamodb")
    off: list[str] = []
    on: list[str] = []
    for _, table in stack.of_types("AWS::DynamoDB::Table"):
        backups = dynamodb.describe_continuous_backups(TableName=table)["ContinuousBackupsDescription"]
        status = backups.get("PointInTimeRecoveryDescription", {}).get(
            "PointInTimeRecoveryStatus", "DISABLED"
        )
        (on if status == "ENABLED" else off).append(f"{table} {status}")
    evidence = "; ".join([*off, *on]) or "no tables in the stack"
    fix = (
        "aws dynamodb update-continuous-backups --table-name <table> "
        "--point-in-time-recovery-specification PointInTimeRecoveryEnabled=true"
    )
    return CheckResult("table-pitr", NOK if off else OK, evidence, fix)


def check_fargate_quota(stack: Stack) -> CheckResult:
    fix = (
        "request an increase of 'Fargate On-Demand vCPU resource count' (L-3032A538) in Service Quotas, "
        "or lower MaxConcurrentTasks (or PoolMaxTasks)"
    )
    max_tasks = int(stack.parameters.get("MaxConcurrentTasks", "0") or 0)
    pool_tasks = int(stack.parameters.get("PoolMaxTasks", "0") or 0)
    cpu = int(stack.task_definition.get("cpu") or stack.parameters.get("WorkerCpu") or 1024)
    service, code = FARGATE_VCPU_QUOTA
    try:
        quota = stack.client("service-quotas").get_service_quota(ServiceCode=service, QuotaCode=code)
    except API_ERRORS as error:
        needed = required_vcpus(max_tasks, cpu, pool_tasks)
        return CheckResult(
            "fargate-quota",
            TODO,
            f"needs {needed:g} vCPU ((MaxConcurrentTasks {max_tasks} + PoolMaxTasks {pool_tasks}) x "
            f"{cpu / 1024:g}); the quota could not "
            f"be read here ({_error(error)}): on AWS, aws service-quotas get-service-quota "
            f"--service-code {service} --quota-code {code}",
            fix,
        )
    status, evidence = quota_decision(float(quota["Quota"]["Value"]), max_tasks, cpu, pool_tasks)
    return CheckResult("fargate-quota", status, evidence, fix)


def check_state_machine_observability(stack: Stack) -> CheckResult:
    machine = stack.state_machine
    logging = machine.get("loggingConfiguration") or {}
    level = logging.get("level", "OFF")
    destinations = logging.get("destinations") or []
    tracing = bool((machine.get("tracingConfiguration") or {}).get("enabled"))
    groups = [
        d.get("cloudWatchLogsLogGroup", {}).get("logGroupArn", "?")
        for d in destinations
        if isinstance(d, dict)
    ]
    evidence = (
        f"logging level {level} to {', '.join(groups) or 'no destination'}; "
        f"tracing {'enabled' if tracing else 'disabled'}"
    )
    ok = level != "OFF" and bool(destinations) and tracing
    fix = (
        "deploy the template's Logging (Level ALL to StateMachineLogs) and Tracing (Enabled) "
        "on JobStateMachine"
    )
    return CheckResult("state-machine-observability", OK if ok else NOK, evidence, fix)


def check_function_credentials(stack: Stack) -> CheckResult:
    lambda_ = stack.client("lambda")
    leaks, read = [], []
    for logical_id, name in stack.of_types("AWS::Lambda::Function", "AWS::Serverless::Function"):
        configuration = lambda_.get_function_configuration(FunctionName=name)
        variables = (configuration.get("Environment") or {}).get("Variables") or {}
        read.append(logical_id)
        found = leaked_credentials(variables)
        if found:
            leaks.append(f"{logical_id}: {', '.join(found)}")
    evidence = (
        f"long-term access keys in {'; '.join(leaks)}"
        if leaks
        else f"no access keys in the environment of {', '.join(read) or 'no function'}"
    )
    fix = (
        "remove the variables (the functions get temporary credentials from their execution role), "
        "deactivate and delete the exposed access key in IAM"
    )
    return CheckResult("function-credentials", NOK if leaks else OK, evidence, fix)


def _drifted(drift: dict[str, Any]) -> str:
    changes = "; ".join(
        f"{d['PropertyPath']} {d.get('ExpectedValue')} -> {d.get('ActualValue')}"
        for d in drift.get("PropertyDifferences", [])[:3]
    )
    status = f"{drift['LogicalResourceId']} {drift['StackResourceDriftStatus']}"
    return f"{status} ({changes})" if changes else status


def check_drift(stack: Stack) -> CheckResult:
    fix = (
        f"on AWS: aws cloudformation detect-stack-drift --stack-name {stack.name}, then "
        f"describe-stack-resource-drifts --stack-name {stack.name}; redeploy, or bring the changes into the "
        "template"
    )
    cloudformation = stack.client("cloudformation")
    try:
        detection = cloudformation.detect_stack_drift(StackName=stack.name)["StackDriftDetectionId"]
        ends = time.monotonic() + DRIFT_DEADLINE_SECONDS
        while True:
            status = cloudformation.describe_stack_drift_detection_status(StackDriftDetectionId=detection)
            if status["DetectionStatus"] != "DETECTION_IN_PROGRESS" or time.monotonic() > ends:
                break
            time.sleep(2)
    except API_ERRORS as error:
        return CheckResult(
            "drift",
            TODO,
            "drift could not be detected here: the endpoint does not implement drift detection "
            f"({_error(error)})",
            fix,
        )
    if status["DetectionStatus"] == "DETECTION_IN_PROGRESS":
        return CheckResult("drift", TODO, f"drift detection {detection} still running after 60 s", fix)
    drift = status.get("StackDriftStatus", "UNKNOWN")
    if drift == "IN_SYNC":
        return CheckResult("drift", OK, f"stack {stack.name} IN_SYNC", fix)
    drifted = cloudformation.describe_stack_resource_drifts(
        StackName=stack.name, StackResourceDriftStatusFilters=["MODIFIED", "DELETED"]
    ).get("StackResourceDrifts", [])
    resources = ", ".join(_drifted(d) for d in drifted)
    reason = status.get("DetectionStatusReason", "")
    return CheckResult(
        "drift",
        NOK if drift == "DRIFTED" else TODO,
        f"stack {stack.name} {drift}"
        + (f": {resources}" if resources else "")
        + (f" ({reason})" if reason else ""),
        fix,
    )


CHECKS: tuple[tuple[str, Callable[[Stack], CheckResult]], ...] = (
    ("alarm-actions", check_alarm_actions),
    ("dlq-empty", check_dlq_empty),
    ("task-networking", check_task_networking),
    ("worker-image", check_worker_image),
    ("kms-rotation", check_kms_rotation),
    ("log-retention", check_log_retention),
    ("table-pitr", check_table_pitr),
    ("fargate-quota", check_fargate_quota),
    ("state-machine-observability", check_state_machine_observability),
    ("function-credentials", check_function_credentials),
    ("drift", check_drift),
)


def run_checks(target: Target) -> list[CheckResult]:
    """Every check in order; one that cannot read what it needs reports NOK (a resource the stack lacks)
    or TODO (an API error) instead of stopping the others."""
    _ = target.outputs  # a missing stack stops here, with the CLI's clear error
    stack = Stack(target)
    results = []
    for check_id, check in CHECKS:
        try:
            results.append(check(stack))
        except MissingResource as error:
            results.append(CheckResult(check_id, NOK, str(error), "deploy the stack from this template.yaml"))
        except API_ERRORS as error:
            results.append(
                CheckResult(
                    check_id, TODO, f"could not read: {_error(error)}", "rerun with read access to it"
                )
            )
    return results
