"""Resource types moto's CloudFormation cannot create, and how the local stack stands in for each.

Each stand-in is registered as a CloudFormation model, so the stack still lists the resource, Ref and
GetAtt still resolve, and deleting the stack deletes it. A type in the template that is neither supported
by moto nor listed here stops the deploy with its name, rather than being dropped silently.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from moto.cloudformation import parsing
from moto.core.common_models import CloudFormationModel
from moto.s3.models import s3_backends
from moto.utilities.utils import get_partition


@dataclass(frozen=True)
class StandIn:
    resource_type: str
    how: str
    why: str


STAND_INS = (
    StandIn(
        resource_type="AWS::S3::BucketPolicy",
        how="PutBucketPolicy on the bucket through moto's S3 backend",
        why="moto has no CloudFormation model for bucket policies; S3 itself stores and returns them",
    ),
)


class BucketPolicy(CloudFormationModel):
    """AWS::S3::BucketPolicy: stored on the bucket (moto does not enforce bucket policies)."""

    def __init__(self, bucket: str, account_id: str, region_name: str):
        self.bucket = bucket
        self.account_id = account_id
        self.region_name = region_name

    @property
    def physical_resource_id(self) -> str:
        return self.bucket

    @staticmethod
    def cloudformation_name_type() -> str:
        return ""

    @staticmethod
    def cloudformation_type() -> str:
        return "AWS::S3::BucketPolicy"

    @classmethod
    def has_cfn_attr(cls, attr: str) -> bool:
        return False

    @classmethod
    def create_from_cloudformation_json(
        cls, resource_name, cloudformation_json, account_id, region_name, **kwargs
    ):
        properties = cloudformation_json["Properties"]
        policy = properties["PolicyDocument"]
        backend = s3_backends[account_id][get_partition(region_name)]
        backend.put_bucket_policy(properties["Bucket"], json.dumps(policy).encode())
        return cls(properties["Bucket"], account_id, region_name)

    @classmethod
    def update_from_cloudformation_json(
        cls, original_resource, new_resource_name, cloudformation_json, account_id, region_name
    ):
        return cls.create_from_cloudformation_json(
            new_resource_name, cloudformation_json, account_id, region_name
        )

    @classmethod
    def delete_from_cloudformation_json(cls, resource_name, cloudformation_json, account_id, region_name):
        backend = s3_backends[account_id][get_partition(region_name)]
        backend.delete_bucket_policy(cloudformation_json["Properties"]["Bucket"])


def _register_models() -> None:
    # moto builds its type map once from CloudFormationModel's subclasses; the models above are subclasses
    # now, so rebuilding the cached map picks them up.
    parsing.get_model_list.cache_clear()
    parsing.get_model_map.cache_clear()
    parsing.get_name_type_map.cache_clear()


def stand_in(template: dict[str, Any]) -> dict[str, Any]:
    """Make every resource type in a CloudFormation template creatable locally, or say which is not."""
    _register_models()
    known = parsing.get_model_map()
    missing = sorted(
        {resource["Type"] for resource in template.get("Resources", {}).values()}
        - set(known)
        - set(parsing.NULL_MODELS)
    )
    if missing:
        raise NotImplementedError(
            f"moto cannot create {', '.join(missing)}; add a stand-in to local/unsupported.py"
        )
    return template
