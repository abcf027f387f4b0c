"""Fixtures shared by every test suite: the repository, sample events, the template's tables."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
EVENTS = ROOT / "events"


def load_event(name: str) -> Any:
    """events/<name>.json, the same file `sam local invoke -e` takes."""
    return json.loads((EVENTS / f"{name}.json").read_text(encoding="utf-8"))


def template() -> dict[str, Any]:
    from samcli.yamlhelper import yaml_parse

    return yaml_parse((ROOT / "template.yaml").read_text(encoding="utf-8"))


def dynamodb_table_definitions() -> dict[str, dict[str, Any]]:
    """Logical id -> CreateTable arguments (TableName left out) for every table in template.yaml.

    Only the parts that shape data are kept (keys, attributes, indexes, billing); encryption and
    recovery settings name the project's KMS key, which tests do not need.
    """
    tables = {}
    for logical_id, resource in template()["Resources"].items():
        if resource["Type"] != "AWS::DynamoDB::Table":
            continue
        properties = resource["Properties"]
        definition = {
            "AttributeDefinitions": properties["AttributeDefinitions"],
            "KeySchema": properties["KeySchema"],
            "BillingMode": properties.get("BillingMode", "PAY_PER_REQUEST"),
        }
        if "GlobalSecondaryIndexes" in properties:
            definition["GlobalSecondaryIndexes"] = properties["GlobalSecondaryIndexes"]
        ttl = properties.get("TimeToLiveSpecification")
        tables[logical_id] = {
            "definition": definition,
            "ttl_attribute": ttl["AttributeName"] if ttl else None,
        }
    return tables


def create_template_tables(ddb: Any, names: dict[str, str]) -> None:
    """Create the template's tables (logical id -> table name) with a DynamoDB client."""
    definitions = dynamodb_table_definitions()
    for logical_id, table_name in names.items():
        table = definitions[logical_id]
        ddb.create_table(TableName=table_name, **table["definition"])
        if table["ttl_attribute"]:
            ddb.update_time_to_live(
                TableName=table_name,
                TimeToLiveSpecification={"Enabled": True, "AttributeName": table["ttl_attribute"]},
            )


@dataclass
class FakeLambdaContext:
    function_name: str = "browserjobs-test"
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:browserjobs-test"
    aws_request_id: str = "00000000-0000-4000-8000-000000000000"
    tenant_id: str | None = None

    def get_remaining_time_in_millis(self) -> int:
        return 30_000


@pytest.fixture
def lambda_context() -> FakeLambdaContext:
    return FakeLambdaContext()


@pytest.fixture
def event() -> Callable[[str], Any]:
    """event("intake-sqs") -> the parsed events/intake-sqs.json (a fresh copy each call)."""
    return load_event


@pytest.fixture(autouse=True)
def _no_call_refused_by_iam(request: pytest.FixtureRequest):
    """On a local stack, a call its role's policies do not allow fails the test that saw it, by name.

    The endpoint refuses what AWS would (a missing IAM action, or a KMS permission an encrypted table,
    queue or bucket needs from the caller); this names the role and the action even when the refusal
    only showed as a failed job.
    """
    stack = request.getfixturevalue("stack") if "stack" in request.fixturenames else None
    yield
    if not hasattr(stack, "access_denials"):  # not a local stack
        return
    refused = sorted({str(denial) for denial in stack.access_denials()})
    assert not refused, "the local endpoint refused, as AWS would:\n  " + "\n  ".join(refused)
