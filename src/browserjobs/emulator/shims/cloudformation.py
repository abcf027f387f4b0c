"""CloudFormation: where moto differs from AWS, and the shim that makes the local stack behave as AWS does.

Applied by browserjobs.emulator.shims.apply(); importing this module changes nothing.
"""

from __future__ import annotations

import json
import threading
from typing import Any

from moto.core.utils import pascal_to_camelcase, remap_nested_keys
from moto.dynamodb.models import dynamodb_backends
from moto.dynamodb.models.table import Table
from moto.ecs.models import Service, TaskDefinition, ecs_backends
from moto.iam.aws_managed_policies import aws_managed_policies_data
from moto.iam.models import AWSManagedPolicy, Role, iam_backends
from moto.s3.models import FakeBucket
from moto.stepfunctions.models import StateMachine
from moto.stepfunctions.responses import get_backend as sfn_backend
from moto.stepfunctions.utils import cfn_to_api_tags
from moto.utilities.utils import get_partition

from browserjobs.emulator.shims.ecs import capacity_provider_strategy

# --- CloudFormation: AWS::StepFunctions::StateMachine --------------------------------------------------
# moto's CloudFormation creates state machines in the backend that cannot execute them (even with
# execute_state_machine on), ignores DefinitionSubstitutions, Definition and StateMachineType.


def _substituted_definition(properties: dict[str, Any]) -> str:
    definition = properties.get("DefinitionString") or json.dumps(properties.get("Definition", {}))
    for key, value in (properties.get("DefinitionSubstitutions") or {}).items():
        text = str(value).lower() if isinstance(value, bool) else str(value)
        definition = definition.replace("${" + key + "}", text)
    return definition


def shim_cloudformation_state_machines() -> None:
    def create(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):
        properties = cloudformation_json["Properties"]
        return sfn_backend(account_id, region_name).create_state_machine(
            name=properties.get("StateMachineName", resource_name),
            definition=_substituted_definition(properties),
            roleArn=properties.get("RoleArn", ""),
            tags=cfn_to_api_tags(properties.get("Tags", [])),
            sm_type=properties.get("StateMachineType", "STANDARD"),
        )

    def delete(cls, resource_name, cloudformation_json, account_id, region_name):
        backend = sfn_backend(account_id, region_name)
        for machine in list(backend.state_machines):
            if resource_name in (machine.name, machine.arn):
                backend.delete_state_machine(machine.arn)

    StateMachine.create_from_cloudformation_json = classmethod(create)
    StateMachine.delete_from_cloudformation_json = classmethod(delete)


# --- CloudFormation: a state machine's LoggingConfiguration and TracingConfiguration ---------------------
# moto's CloudFormation drops both: the machine describes as logging OFF and tracing disabled whatever the
# template says. Its CreateStateMachine API keeps them, so the created machine gets them from the template.
# https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/aws-resource-stepfunctions-statemachine.html


def shim_cloudformation_state_machine_observability() -> None:
    original = StateMachine.create_from_cloudformation_json.__func__

    def create(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):
        machine = original(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs)
        properties = cloudformation_json["Properties"]
        if properties.get("LoggingConfiguration"):
            machine.loggingConfiguration = remap_nested_keys(
                properties["LoggingConfiguration"], pascal_to_camelcase
            )
        if properties.get("TracingConfiguration"):
            machine.tracingConfiguration = remap_nested_keys(
                properties["TracingConfiguration"], pascal_to_camelcase
            )
        return machine

    StateMachine.create_from_cloudformation_json = classmethod(create)


# --- CloudFormation: AWS::DynamoDB::Table PointInTimeRecoverySpecification --------------------------------
# moto's CloudFormation ignores it: every table describes PITR as DISABLED. Its UpdateContinuousBackups
# API turns it on, so a table created with PointInTimeRecoveryEnabled gets it through that.


def shim_cloudformation_table_point_in_time_recovery() -> None:
    original = Table.create_from_cloudformation_json.__func__

    def create(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):
        table = original(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs)
        specification = cloudformation_json["Properties"].get("PointInTimeRecoverySpecification") or {}
        if str(specification.get("PointInTimeRecoveryEnabled")).lower() == "true":
            dynamodb_backends[account_id][region_name].update_continuous_backups(
                table.name, {"PointInTimeRecoveryEnabled": True}
            )
        return table

    Table.create_from_cloudformation_json = classmethod(create)


# --- CloudFormation: AWS::ECS::TaskDefinition properties -----------------------------------------------
# moto's CloudFormation registers a task definition with its family, containers, volumes and memory only:
# no task role (so the worker would get no role's credentials), no execution role, CPU, network mode,
# compatibilities, runtime platform or tags (which PropagateTags copies onto the task at RunTask).
# https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/aws-resource-ecs-taskdefinition.html

_TASK_DEFINITION_PROPERTIES = {
    "TaskRoleArn": "task_role_arn",
    "ExecutionRoleArn": "execution_role_arn",
    "Cpu": "cpu",
    "Memory": "memory",
    "NetworkMode": "network_mode",
    "RequiresCompatibilities": "requires_compatibilities",
    "RuntimePlatform": "runtime_platform",
    "EphemeralStorage": "ephemeral_storage",
}


def shim_cloudformation_task_definition_properties() -> None:
    def create(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):
        properties = cloudformation_json["Properties"]
        extra = {
            argument: remap_nested_keys(properties[key], pascal_to_camelcase)
            if isinstance(properties[key], dict)
            else properties[key]
            for key, argument in _TASK_DEFINITION_PROPERTIES.items()
            if key in properties
        }
        tags = [{"key": tag["Key"], "value": tag["Value"]} for tag in properties.get("Tags", [])]
        return ecs_backends[account_id][region_name].register_task_definition(
            family=properties.get("Family", resource_name),
            container_definitions=remap_nested_keys(
                properties.get("ContainerDefinitions", []), pascal_to_camelcase
            ),
            volumes=remap_nested_keys(properties.get("Volumes", []), pascal_to_camelcase),
            tags=tags or None,
            **extra,
        )

    TaskDefinition.create_from_cloudformation_json = classmethod(create)


# --- CloudFormation: AWS::ECS::Service properties ------------------------------------------------------
# moto's CloudFormation creates a service from its cluster, task definition and desired count only: it
# drops the capacity provider strategy (and describes launchType EC2 instead), the network configuration,
# the deployment configuration (circuit breaker), tag propagation, managed tags and AZ rebalancing. ECS
# keeps each as given, and a service with a capacity provider strategy has no launch type.
# https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/aws-resource-ecs-service.html

_SERVICE_PROPERTIES = {
    "CapacityProviderStrategy": "capacity_provider_strategy",
    "DeploymentConfiguration": "deployment_configuration",
    "PropagateTags": "propagate_tags",
    "EnableECSManagedTags": "enable_ecs_managed_tags",
    "AvailabilityZoneRebalancing": "availability_zone_rebalancing",
    "PlatformVersion": "platform_version",
    "LaunchType": "launch_type",
}


def shim_cloudformation_ecs_service_properties() -> None:
    original = Service.create_from_cloudformation_json.__func__

    def create(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):
        service = original(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs)
        properties = cloudformation_json["Properties"]
        for key, attribute in _SERVICE_PROPERTIES.items():
            if key in properties:
                setattr(service, attribute, remap_nested_keys(properties[key], pascal_to_camelcase))
        if properties.get("CapacityProviderStrategy"):
            # base and weight as numbers (parameters arrive as strings): the scheduler places by them
            service.capacity_provider_strategy = capacity_provider_strategy(
                properties["CapacityProviderStrategy"]
            )
            service.launch_type = None
        if properties.get("NetworkConfiguration"):
            # As CreateService does: subnets and security groups that do not exist are refused.
            service.network_configuration = service._validate_network(
                remap_nested_keys(properties["NetworkConfiguration"], pascal_to_camelcase)
            )
        for deployment in service.deployments:
            deployment["launchType"] = service.launch_type
            deployment["networkConfiguration"] = service.network_configuration
            deployment["capacityProviderStrategy"] = getattr(service, "capacity_provider_strategy", None)
        return service

    Service.create_from_cloudformation_json = classmethod(create)


# --- CloudFormation: AWS::S3::Bucket NotificationConfiguration -------------------------------------------
# moto's CloudFormation creates the bucket and drops its NotificationConfiguration (which is how SAM wires
# S3 events to a function), so nothing is ever notified.

_NOTIFICATION_TARGETS = {
    "LambdaConfigurations": ("CloudFunctionConfiguration", "Function", "CloudFunction"),
    "QueueConfigurations": ("QueueConfiguration", "Queue", "Queue"),
    "TopicConfigurations": ("TopicConfiguration", "Topic", "Topic"),
}


def _bucket_notifications(configuration: dict[str, Any]) -> dict[str, Any]:
    """CloudFormation's NotificationConfiguration in the shape moto's S3 backend stores."""
    converted: dict[str, Any] = {}
    for cfn_key, (api_key, cfn_target, api_target) in _NOTIFICATION_TARGETS.items():
        for item in configuration.get(cfn_key, []):
            entry: dict[str, Any] = {api_target: item[cfn_target], "Event": [item["Event"]]}
            rules = item.get("Filter", {}).get("S3Key", {}).get("Rules")
            if rules:
                entry["Filter"] = {"S3Key": {"FilterRule": rules}}
            converted.setdefault(api_key, []).append(entry)
    if configuration.get("EventBridgeConfiguration", {}).get("EventBridgeEnabled"):
        converted["EventBridgeConfiguration"] = {}
    return converted


def shim_cloudformation_bucket_notifications() -> None:
    original = FakeBucket.create_from_cloudformation_json.__func__

    def create(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):
        bucket = original(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs)
        configuration = cloudformation_json.get("Properties", {}).get("NotificationConfiguration")
        if configuration:
            bucket.set_notification_configuration(_bucket_notifications(configuration))
        return bucket

    FakeBucket.create_from_cloudformation_json = classmethod(create)


# --- CloudFormation: a role's ManagedPolicyArns ----------------------------------------------------------
# moto's AWS::IAM::Role puts the inline Policies and drops ManagedPolicyArns, so every role SAM gives
# AWSLambdaBasicExecutionRole, AWSLambdaSQSQueueExecutionRole or AWSXrayWriteOnlyAccess lacks them; the
# local endpoint checks roles against their policies, so the attachments must exist as on AWS. AWS managed
# policies exist in every account; moto loads its copies of them only when configured to, so the ones a
# role names are added from that copy.


def _ensure_aws_managed_policy(backend: Any, policy_arn: str) -> None:
    name = policy_arn.rsplit("/", 1)[-1]
    if policy_arn in backend.managed_policies or ":iam::aws:policy/" not in policy_arn:
        return
    known = json.loads(aws_managed_policies_data)
    if name in known:
        policy = AWSManagedPolicy.from_data(name, backend.account_id, backend.region_name, known[name])
        backend.managed_policies[policy.arn] = policy


def shim_cloudformation_role_managed_policies() -> None:
    original = Role.create_from_cloudformation_json.__func__

    def create(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):
        role = original(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs)
        backend = iam_backends[account_id][get_partition(region_name)]
        for policy_arn in cloudformation_json.get("Properties", {}).get("ManagedPolicyArns", []):
            _ensure_aws_managed_policy(backend, policy_arn)
            backend.attach_role_policy(policy_arn, role.name)
        return role

    Role.create_from_cloudformation_json = classmethod(create)


# --- CloudFormation: reading a stack while it is being created --------------------------------------------
# moto's ResourceMap creates a resource the first time anything reads it, and its CreateStack adds the stack
# to the backend before it creates the resources. A DescribeStacks (Outputs), ListStackResources or
# DescribeStackResources served on another thread meanwhile (`aws cloudformation wait stack-create-complete`
# polls exactly so) creates every resource it reads that creation has not reached yet, and creation then
# creates them again: two job state machines, two of each function, and Outputs (cached from that first
# read) naming the copies the rest of the stack does not use. On AWS a stack in CREATE_IN_PROGRESS shows no
# Outputs and lists only the resources created so far, and reads never create anything
# (https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_DescribeStacks.html: "Outputs:
# A list of output structures"; the stack's outputs appear once it is CREATE_COMPLETE).

_CREATING = {"CREATE_PENDING", "CREATE_IN_PROGRESS"}


def shim_cloudformation_reads_during_create() -> None:
    from moto.cloudformation.models import Stack
    from moto.cloudformation.parsing import ResourceMap

    original_getitem = ResourceMap.__getitem__
    original_outputs = Stack.outputs.fget
    original_resources = Stack.stack_resources.fget
    guard = threading.Lock()

    def getitem(self, key):
        # One resource is created by one thread at a time (reentrant: creating one resolves its references).
        with guard:
            lock = self.__dict__.setdefault("_local_create_lock", threading.RLock())
        with lock:
            return original_getitem(self, key)

    def outputs(self):
        return None if self.status in _CREATING else original_outputs(self)

    def stack_resources(self):
        if self.status not in _CREATING:
            return original_resources(self)
        resource_map = self.resource_map
        parsed = resource_map._parsed_resources
        return [parsed[key] for key in list(getattr(resource_map, "_resource_json_map", {})) if key in parsed]

    ResourceMap.__getitem__ = getitem
    Stack.outputs = property(outputs)
    Stack.stack_resources = property(stack_resources)
