"""Resource types moto's CloudFormation cannot create, and how the local stack stands in for each.

Every stand-in creates the resource through the service's own API on the local endpoint and is
registered as a CloudFormation model, so the stack still lists the resource, Ref and GetAtt resolve, and
deleting the stack deletes it. A type that is neither supported by moto nor listed here stops the deploy
with its name rather than being dropped silently.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import boto3
from botocore import xform_name
from botocore.config import Config
from moto.cloudformation import parsing
from moto.core.common_models import CloudFormationModel

from browserjobs.emulator.settings import DUMMY_CREDENTIALS, HOST

Created = tuple[str, dict[str, str]]  # physical id, GetAtt attributes


@dataclass(frozen=True)
class StandIn:
    resource_type: str
    service: str
    why: str
    create: Callable[[Any, str, dict[str, Any]], Created]  # client, generated name, properties
    delete: Callable[[Any, str, dict[str, Any]], None]  # client, physical id, properties
    name_property: str = ""


def _alarm_creator(kind: str) -> Callable[[Any, str, dict[str, Any]], Created]:
    """Create a MetricAlarm or a CompositeAlarm (PutMetricAlarm / PutCompositeAlarm) and read its ARN back."""

    def create(client: Any, name: str, properties: dict[str, Any]) -> Created:
        alarm = {"AlarmName": name, **properties}
        put = client.put_composite_alarm if kind == "CompositeAlarm" else client.put_metric_alarm
        put(**alarm)
        described = client.describe_alarms(AlarmNames=[alarm["AlarmName"]], AlarmTypes=[kind])
        return alarm["AlarmName"], {"Arn": described[f"{kind}s"][0]["AlarmArn"]}

    return create


def _put_query_definition(client: Any, name: str, properties: dict[str, Any]) -> Created:
    definition_id = client.put_query_definition(
        name=properties["Name"],
        queryString=properties["QueryString"],
        logGroupNames=properties.get("LogGroupNames", []),
    )["queryDefinitionId"]
    return definition_id, {"QueryDefinitionId": definition_id}


def _requires_tls(statement: dict[str, Any]) -> bool:
    return "aws:SecureTransport" in json.dumps(statement.get("Condition", {}))


def _put_bucket_policy(client: Any, name: str, properties: dict[str, Any]) -> Created:
    # moto enforces bucket policies and the local endpoint is plain HTTP on loopback, so a statement that
    # denies requests without TLS would deny every request: those statements are left out locally.
    policy = dict(properties["PolicyDocument"])
    policy["Statement"] = [s for s in policy["Statement"] if not _requires_tls(s)]
    if policy["Statement"]:
        client.put_bucket_policy(Bucket=properties["Bucket"], Policy=json.dumps(policy))
    return properties["Bucket"], {}


def _put_topic_policy(client: Any, name: str, properties: dict[str, Any]) -> Created:
    for topic in properties["Topics"]:
        client.set_topic_attributes(
            TopicArn=topic, AttributeName="Policy", AttributeValue=json.dumps(properties["PolicyDocument"])
        )
    return name, {}


def _typed(shape: Any, value: Any) -> Any:
    """A value as the API model types it: CloudFormation hands parameter values over as strings, which the
    query APIs take as they are and the JSON APIs (Application Auto Scaling) do not."""
    if shape.type_name == "structure" and isinstance(value, dict):
        return {
            key: _typed(shape.members[key], item) if key in shape.members else item
            for key, item in value.items()
        }
    if shape.type_name == "list" and isinstance(value, list):
        return [_typed(shape.member, item) for item in value]
    if isinstance(value, str):
        if shape.type_name in ("integer", "long"):
            return int(value)
        if shape.type_name in ("double", "float"):
            return float(value)
        if shape.type_name == "boolean":
            return value.lower() == "true"
    return value


def _call(client: Any, operation: str, params: dict[str, Any]) -> Any:
    model = client.meta.service_model.operation_model(operation)
    return getattr(client, xform_name(operation))(**_typed(model.input_shape, params))


def _only(properties: dict[str, Any], supported: tuple[str, ...], resource_type: str) -> dict[str, Any]:
    """The properties a stand-in passes on; one it would drop stops the deploy instead."""
    unsupported = sorted(set(properties) - set(supported))
    if unsupported:
        raise NotImplementedError(f"the local stand-in for {resource_type} does not support {unsupported}")
    return dict(properties)


SCALABLE_TARGET = ("ServiceNamespace", "ResourceId", "ScalableDimension", "MinCapacity", "MaxCapacity")


def _register_scalable_target(client: Any, name: str, properties: dict[str, Any]) -> Created:
    target = _only(properties, (*SCALABLE_TARGET, "RoleARN", "SuspendedState"), "ScalableTarget")
    _call(client, "RegisterScalableTarget", target)
    # Ref is "<ResourceId>|<ScalableDimension>|<ServiceNamespace>", as a policy's ScalingTargetId names it.
    physical_id = "|".join(target[key] for key in ("ResourceId", "ScalableDimension", "ServiceNamespace"))
    return physical_id, {"Id": physical_id}


def _deregister_scalable_target(client: Any, physical_id: str, properties: dict[str, Any]) -> None:
    resource_id, dimension, namespace = physical_id.split("|")
    client.deregister_scalable_target(
        ServiceNamespace=namespace, ResourceId=resource_id, ScalableDimension=dimension
    )


def _policy_target(properties: dict[str, Any]) -> dict[str, str]:
    if "ScalingTargetId" in properties:
        resource_id, dimension, namespace = properties["ScalingTargetId"].split("|")
        return {"ResourceId": resource_id, "ScalableDimension": dimension, "ServiceNamespace": namespace}
    return {key: properties[key] for key in ("ResourceId", "ScalableDimension", "ServiceNamespace")}


def _put_scaling_policy(client: Any, name: str, properties: dict[str, Any]) -> Created:
    supported = (
        "PolicyName",
        "PolicyType",
        "ScalingTargetId",
        "ResourceId",
        "ScalableDimension",
        "ServiceNamespace",
        "TargetTrackingScalingPolicyConfiguration",
        "StepScalingPolicyConfiguration",
    )
    policy = _only(properties, supported, "ScalingPolicy")
    policy.pop("ScalingTargetId", None)
    arn = _call(client, "PutScalingPolicy", {**policy, **_policy_target(properties)})["PolicyARN"]
    return arn, {"Arn": arn}


def _delete_scaling_policy(client: Any, arn: str, properties: dict[str, Any]) -> None:
    client.delete_scaling_policy(PolicyName=properties["PolicyName"], **_policy_target(properties))


def _subscribe(client: Any, name: str, properties: dict[str, Any]) -> Created:
    subscription = client.subscribe(
        TopicArn=properties["TopicArn"],
        Protocol=properties["Protocol"],
        Endpoint=properties.get("Endpoint", ""),
        ReturnSubscriptionArn=True,
    )["SubscriptionArn"]
    return subscription, {}


PIPE = (
    "Name",
    "Description",
    "DesiredState",
    "RoleArn",
    "Source",
    "SourceParameters",
    "Target",
    "TargetParameters",
)


def _create_pipe(client: Any, name: str, properties: dict[str, Any]) -> Created:
    pipe = _only(properties, PIPE, "Pipe")
    pipe.setdefault("Name", name)
    arn = client.create_pipe(**pipe)["Arn"]
    return pipe["Name"], {"Arn": arn}


STAND_INS = (
    StandIn(
        "AWS::S3::BucketPolicy",
        "s3",
        why="moto's S3 stores bucket policies but its CloudFormation has no model for them; statements "
        "that require TLS are left out, as the local endpoint is plain HTTP on loopback",
        create=_put_bucket_policy,
        delete=lambda client, bucket, properties: client.delete_bucket_policy(Bucket=bucket),
    ),
    StandIn(
        "AWS::SNS::TopicPolicy",
        "sns",
        why="moto's SNS stores topic policies but its CloudFormation has no model for them",
        create=_put_topic_policy,
        delete=lambda client, name, properties: None,  # the policy goes with the topic
    ),
    StandIn(
        "AWS::SNS::Subscription",
        "sns",
        why="moto's CloudFormation has no subscription model; moto confirms any subscription at once",
        create=_subscribe,
        delete=lambda client, arn, properties: client.unsubscribe(SubscriptionArn=arn),
    ),
    StandIn(
        "AWS::CloudWatch::Alarm",
        "cloudwatch",
        why="moto's CloudWatch stores alarms (it never evaluates them) but its CloudFormation has no model",
        create=_alarm_creator("MetricAlarm"),
        delete=lambda client, name, properties: client.delete_alarms(AlarmNames=[name]),
        name_property="AlarmName",
    ),
    StandIn(
        "AWS::CloudWatch::CompositeAlarm",
        "cloudwatch",
        why="moto has no PutCompositeAlarm and no CloudFormation model; the local stack adds the API "
        "(shims/cloudwatch.py), and stores the alarm without evaluating it",
        create=_alarm_creator("CompositeAlarm"),
        delete=lambda client, name, properties: client.delete_alarms(AlarmNames=[name]),
        name_property="AlarmName",
    ),
    StandIn(
        "AWS::ApplicationAutoScaling::ScalableTarget",
        "application-autoscaling",
        why="moto's Application Auto Scaling registers targets but its CloudFormation has no model; the "
        "target is registered through RegisterScalableTarget, so DescribeScalableTargets answers as on AWS "
        "(nothing scales it locally unless the local stack acts on it)",
        create=_register_scalable_target,
        delete=_deregister_scalable_target,
    ),
    StandIn(
        "AWS::ApplicationAutoScaling::ScalingPolicy",
        "application-autoscaling",
        why="moto's Application Auto Scaling stores scaling policies but its CloudFormation has no model; "
        "the policy is put through PutScalingPolicy, so DescribeScalingPolicies answers as on AWS",
        create=_put_scaling_policy,
        delete=_delete_scaling_policy,
    ),
    StandIn(
        "AWS::Pipes::Pipe",
        "pipes",
        why="moto stores pipes (CreatePipe) but runs none and has no CloudFormation model; the local stack "
        "runs a pipe from a DynamoDB stream to an event bus (browserjobs.emulator.pipes)",
        create=_create_pipe,
        delete=lambda client, name, properties: client.delete_pipe(Name=name),
        name_property="Name",
    ),
    StandIn(
        "AWS::Logs::QueryDefinition",
        "logs",
        why="moto has no query definitions; the local stack adds the API (shims/logs.py)",
        create=_put_query_definition,
        delete=lambda client, definition_id, properties: client.delete_query_definition(
            queryDefinitionId=definition_id
        ),
    ),
)


def _client(service: str, region_name: str) -> Any:
    # Called while moto's CloudFormation creates the stack, from inside the endpoint: the API is reached
    # over loopback, the same way any client would reach it, with CloudFormation's loose typing allowed.
    return boto3.client(
        service,
        endpoint_url=f"http://{HOST}:{os.environ['MOTO_PORT']}",
        region_name=region_name,
        aws_access_key_id=DUMMY_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=DUMMY_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        config=Config(parameter_validation=False),
    )


def _model(stand_in: StandIn) -> type[CloudFormationModel]:
    class Model(CloudFormationModel):
        def __init__(self, physical_id: str, attributes: dict[str, str]):
            self.physical_resource_id = physical_id
            self._attributes = attributes

        @staticmethod
        def cloudformation_name_type() -> str:
            return stand_in.name_property

        @staticmethod
        def cloudformation_type() -> str:
            return stand_in.resource_type

        @classmethod
        def has_cfn_attr(cls, attr: str) -> bool:
            return attr in ("Arn", "Id", "QueryDefinitionId")

        def get_cfn_attribute(self, attribute_name: str) -> str:
            return self._attributes[attribute_name]

        @classmethod
        def create_from_cloudformation_json(
            cls, resource_name, cloudformation_json, account_id, region_name, **kwargs
        ):
            properties = cloudformation_json["Properties"]
            return cls(*stand_in.create(_client(stand_in.service, region_name), resource_name, properties))

        @classmethod
        def update_from_cloudformation_json(
            cls, original_resource, new_resource_name, cloudformation_json, account_id, region_name
        ):
            return cls.create_from_cloudformation_json(
                new_resource_name, cloudformation_json, account_id, region_name
            )

        @classmethod
        def delete_from_cloudformation_json(cls, resource_name, cloudformation_json, account_id, region_name):
            client = _client(stand_in.service, region_name)
            stand_in.delete(client, resource_name, cloudformation_json.get("Properties", {}))

    Model.__name__ = Model.__qualname__ = "StandIn" + stand_in.resource_type.replace("::", "")
    return Model


_models: list[type[CloudFormationModel]] = []
_models_lock = threading.Lock()


def stand_in(template: dict[str, Any]) -> dict[str, Any]:
    """Make every resource type in a CloudFormation template creatable locally, or say which is not."""
    with _models_lock:  # defined on first use, not on import: importing this module changes nothing
        if not _models:
            _models.extend(_model(stand_in) for stand_in in STAND_INS)
    # moto caches its type map from CloudFormationModel's subclasses; the models above are subclasses now.
    for cached in (parsing.get_model_list, parsing.get_model_map, parsing.get_name_type_map):
        cached.cache_clear()
    known = parsing.get_model_map()
    missing = sorted(
        {resource["Type"] for resource in template.get("Resources", {}).values()}
        - set(known)
        - set(parsing.NULL_MODELS)
    )
    if missing:
        raise NotImplementedError(
            f"moto cannot create {', '.join(missing)}; add a stand-in to browserjobs/emulator/unsupported.py"
        )
    return template
