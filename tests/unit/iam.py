"""What each function's role allows, as AWS deploys it, and what a recorded AWS call needs.

The roles come from translating template.yaml with SAM (policy templates expanded), the same translation
the local stack deploys and the scanners scan. A call needs IAM actions on resources named by logical id:
DynamoDB tables are recognised by the table names the tests put in the functions' environment.
"""

from __future__ import annotations

import fnmatch
import functools
import importlib.util
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
from samtranslator.yaml_helper import yaml_parse

from tests.conftest import ROOT

SERVICE_PREFIX = {"stepfunctions": "states"}
TABLE_ENV = {
    "JOBS_TABLE": "JobsTable",
    "LOCKS_TABLE": "LocksTable",
    "INTERRUPTIONS_TABLE": "InterruptionsTable",
    "SESSIONS_TABLE": "SessionsTable",
}
TRANSACT_ACTIONS = {
    "Put": "PutItem",
    "Update": "UpdateItem",
    "Delete": "DeleteItem",
    "ConditionCheck": "ConditionCheckItem",
}


@dataclass(frozen=True)
class Need:
    action: str  # e.g. dynamodb:PutItem
    resource: str | None  # a logical id the statement must name, or None when only the action is checked


def _references(value: Any) -> Iterator[str]:
    """Logical ids a policy Resource names through Ref, GetAtt or Sub."""
    if isinstance(value, dict):
        for key, inner in value.items():
            if key == "Ref" and isinstance(inner, str):
                yield inner
            elif key == "Fn::GetAtt":
                yield inner[0] if isinstance(inner, list) else inner.split(".")[0]
            elif key == "Fn::Sub":
                text = inner[0] if isinstance(inner, list) else inner
                yield from (name.split(".")[0] for name in _sub_names(text))
                yield from _references(inner[1] if isinstance(inner, list) else {})
            else:
                yield from _references(inner)
    elif isinstance(value, list):
        for inner in value:
            yield from _references(inner)


def _sub_names(text: str) -> list[str]:
    return re.findall(r"\$\{([A-Za-z0-9.]+)\}", text)


@dataclass(frozen=True)
class Statement:
    actions: tuple[str, ...]
    resources: frozenset[str]
    any_resource: bool

    def allows(self, need: Need) -> bool:
        if not any(fnmatch.fnmatchcase(need.action, pattern) for pattern in self.actions):
            return False
        return self.any_resource or need.resource is None or need.resource in self.resources


def _statements(policy_document: dict[str, Any]) -> Iterator[Statement]:
    for statement in policy_document.get("Statement", []):
        if statement.get("Effect") != "Allow":
            continue
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        resource = statement.get("Resource", "*")
        yield Statement(tuple(actions), frozenset(_references(resource)), resource == "*")


@functools.cache
def _deployed_resources() -> dict[str, Any]:
    """The template's resources as SAM translates them for AWS (roles and policy templates expanded)."""
    spec = importlib.util.spec_from_file_location("checkov_translate", ROOT / ".checkov" / "translate.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    template = module.packaged(yaml_parse((ROOT / "template.yaml").read_text()), ROOT)
    return module.translate(template, {}, boto3.Session(region_name="us-east-1"))["Resources"]


def role_statements(role: str) -> tuple[Statement, ...]:
    """The Allow statements of a role's inline policies, by the role's logical id as deployed."""
    documents = [p["PolicyDocument"] for p in _deployed_resources()[role]["Properties"].get("Policies", [])]
    return tuple(s for d in documents for s in _statements(d))


@functools.cache
def function_policies() -> dict[str, tuple[Statement, ...]]:
    """Function logical id -> the Allow statements of its generated role."""
    return {
        logical_id: role_statements(resource["Properties"]["Role"]["Fn::GetAtt"][0])
        for logical_id, resource in _deployed_resources().items()
        if resource["Type"] == "AWS::Lambda::Function"
    }


def function_for_folder(folder: str) -> str:
    """functions/<folder>/ -> the logical id of the function built from it."""
    for logical_id, resource in yaml_parse((ROOT / "template.yaml").read_text())["Resources"].items():
        if (
            resource["Type"] == "AWS::Serverless::Function"
            and resource["Properties"]["CodeUri"].rstrip("/") == f"functions/{folder}"
        ):
            return logical_id
    raise KeyError(folder)


@functools.cache
def table_keys() -> dict[str, str]:
    """Table logical id -> the logical id of the customer managed key it is encrypted with."""
    keys = {}
    for logical_id, resource in yaml_parse((ROOT / "template.yaml").read_text())["Resources"].items():
        sse = resource.get("Properties", {}).get("SSESpecification", {}) if isinstance(resource, dict) else {}
        key = next(iter(_references(sse.get("KMSMasterKeyId"))), None) if sse.get("SSEEnabled") else None
        if resource["Type"] == "AWS::DynamoDB::Table" and key:
            keys[logical_id] = key
    return keys


def _table_kms(logical_ids: list[str | None]) -> list[Need]:
    """DynamoDB calls KMS as the caller for a table under a customer managed key: the caller needs
    kms:Decrypt on it (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/
    encryption.usagenotes.html), and moto checks none of it."""
    keys = {table_keys()[logical_id] for logical_id in logical_ids if logical_id in table_keys()}
    return [Need("kms:Decrypt", key) for key in sorted(keys)]


def needs(service: str, operation: str, params: dict[str, Any], tables: dict[str, str]) -> list[Need]:
    """The IAM actions (and DynamoDB tables by logical id) one API call needs."""
    prefix = SERVICE_PREFIX.get(service, service)
    if service == "dynamodb":
        if operation == "TransactWriteItems":
            found = [
                Need(f"dynamodb:{TRANSACT_ACTIONS[kind]}", tables.get(body["TableName"]))
                for item in params["TransactItems"]
                for kind, body in item.items()
            ]
        elif operation in ("BatchGetItem", "BatchWriteItem"):
            found = [Need(f"dynamodb:{operation}", tables.get(name)) for name in params["RequestItems"]]
        else:
            found = [Need(f"dynamodb:{operation}", tables.get(params.get("TableName", "")))]
        return found + _table_kms([need.resource for need in found])
    if service == "s3" and operation == "GetObject" and params.get("VersionId"):
        return [Need("s3:GetObjectVersion", None)]
    return [Need(f"{prefix}:{operation}", None)]


def table_names(environ: dict[str, str]) -> dict[str, str]:
    """Table name -> logical id, from the environment the tests give the functions."""
    return {environ[key]: logical for key, logical in TABLE_ENV.items() if key in environ}
