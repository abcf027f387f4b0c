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


def _subscribe(client: Any, name: str, properties: dict[str, Any]) -> Created:
    subscription = client.subscribe(
        TopicArn=properties["TopicArn"],
        Protocol=properties["Protocol"],
        Endpoint=properties.get("Endpoint", ""),
        ReturnSubscriptionArn=True,
    )["SubscriptionArn"]
    return subscription, {}


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
            return attr in ("Arn", "QueryDefinitionId")

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
