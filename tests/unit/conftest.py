"""Unit tests: moto in-process (no sockets), the template's own tables, handlers imported fresh."""

from __future__ import annotations

import importlib.util
import json
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import aws_xray_sdk.core  # noqa: F401 - its global recorder opens a UDP socket on import: before sockets go off
import boto3
import pytest
from moto import mock_aws

from tests.conftest import ROOT, create_template_tables

REGION = "us-east-1"
ACCOUNT = "123456789012"
# moto's default Step Functions backend records executions without running them: they stay RUNNING,
# as a job's execution does in AWS while it waits or runs.
IDLE_MACHINE = json.dumps({"StartAt": "Idle", "States": {"Idle": {"Type": "Pass", "End": True}}})


@pytest.fixture(autouse=True)
def _unit_environment(monkeypatch: pytest.MonkeyPatch, socket_disabled: None) -> None:
    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_SERVICE_NAME": "browserjobs",
        "POWERTOOLS_METRICS_NAMESPACE": "BrowserJobsTest",
    }.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("SCHEMAS_DIR", raising=False)


@dataclass
class Stack:
    """The resources the functions use, in moto, named as the template's environment names them."""

    jobs_table: str
    locks_table: str
    interruptions_table: str
    sessions_table: str
    artifacts_bucket: str
    intake_bucket: str
    dlq_url: str
    state_machine_arn: str
    cluster_arn: str
    ddb: Any = field(default_factory=lambda: boto3.client("dynamodb", region_name=REGION))
    s3: Any = field(default_factory=lambda: boto3.client("s3", region_name=REGION))
    sqs: Any = field(default_factory=lambda: boto3.client("sqs", region_name=REGION))
    sfn: Any = field(default_factory=lambda: boto3.client("stepfunctions", region_name=REGION))
    ecs: Any = field(default_factory=lambda: boto3.client("ecs", region_name=REGION))

    def job(self, job_id: str) -> dict[str, Any] | None:
        from browserjobs.core.ddb import plain
        from browserjobs.core.records import get_job

        item = get_job(self.ddb, self.jobs_table, job_id)
        return plain(item) if item is not None else None

    def lease(self, pk: str) -> dict[str, Any] | None:
        from browserjobs.core.ddb import from_item, plain

        item = self.ddb.get_item(TableName=self.locks_table, Key={"pk": {"S": pk}}, ConsistentRead=True)
        return plain(from_item(item.get("Item")))

    def put_lease(self, item: dict[str, Any]) -> None:
        from browserjobs.core.ddb import to_item

        self.ddb.put_item(TableName=self.locks_table, Item=to_item(item))

    def put_job(self, record: dict[str, Any]) -> None:
        from browserjobs.core.ddb import to_item

        self.ddb.put_item(TableName=self.jobs_table, Item=to_item(record))

    def dlq_messages(self) -> list[dict[str, Any]]:
        messages = []
        while True:
            batch = self.sqs.receive_message(QueueUrl=self.dlq_url, MaxNumberOfMessages=10).get(
                "Messages", []
            )
            if not batch:
                return messages
            messages += [json.loads(m["Body"]) for m in batch]

    def run_task(self) -> str:
        """A Fargate task in moto's ECS (awsvpc needs a subnet and a security group in a VPC with DNS
        hostnames enabled there)."""
        ec2 = boto3.client("ec2", region_name=REGION)
        vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
        ec2.modify_vpc_attribute(VpcId=vpc, EnableDnsHostnames={"Value": True})
        subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.0.0/24")["Subnet"]["SubnetId"]
        group = ec2.create_security_group(GroupName=f"sg-{uuid.uuid4().hex[:8]}", Description="t", VpcId=vpc)
        definition = self.ecs.register_task_definition(
            family="worker",
            requiresCompatibilities=["FARGATE"],
            networkMode="awsvpc",
            cpu="1024",
            memory="2048",
            containerDefinitions=[{"name": "worker", "image": "worker:test", "memory": 2048}],
        )["taskDefinition"]["taskDefinitionArn"]
        task = self.ecs.run_task(
            cluster=self.cluster_arn,
            taskDefinition=definition,
            launchType="FARGATE",
            networkConfiguration={
                "awsvpcConfiguration": {"subnets": [subnet], "securityGroups": [group["GroupId"]]}
            },
        )
        return str(task["tasks"][0]["taskArn"])


def build_stack(monkeypatch: pytest.MonkeyPatch, definition: str = IDLE_MACHINE) -> Stack:
    suffix = uuid.uuid4().hex[:8]
    ddb = boto3.client("dynamodb", region_name=REGION)
    names = {
        "JobsTable": f"jobs-{suffix}",
        "LocksTable": f"locks-{suffix}",
        "InterruptionsTable": f"interruptions-{suffix}",
        "SessionsTable": f"sessions-{suffix}",
    }
    create_template_tables(ddb, names)
    s3 = boto3.client("s3", region_name=REGION)
    for bucket in (f"artifacts-{suffix}", f"intake-{suffix}"):
        s3.create_bucket(Bucket=bucket)
    dlq_url = boto3.client("sqs", region_name=REGION).create_queue(QueueName=f"job-dlq-{suffix}")["QueueUrl"]
    machine = boto3.client("stepfunctions", region_name=REGION).create_state_machine(
        name=f"jobs-{suffix}", definition=definition, roleArn=f"arn:aws:iam::{ACCOUNT}:role/jobs"
    )["stateMachineArn"]
    cluster = boto3.client("ecs", region_name=REGION).create_cluster(clusterName=f"browsers-{suffix}")
    stack = Stack(
        jobs_table=names["JobsTable"],
        locks_table=names["LocksTable"],
        interruptions_table=names["InterruptionsTable"],
        sessions_table=names["SessionsTable"],
        artifacts_bucket=f"artifacts-{suffix}",
        intake_bucket=f"intake-{suffix}",
        dlq_url=dlq_url,
        state_machine_arn=machine,
        cluster_arn=cluster["cluster"]["clusterArn"],
    )
    for key, value in {
        "JOBS_TABLE": stack.jobs_table,
        "LOCKS_TABLE": stack.locks_table,
        "INTERRUPTIONS_TABLE": stack.interruptions_table,
        "SESSIONS_TABLE": stack.sessions_table,
        "ARTIFACTS_BUCKET": stack.artifacts_bucket,
        "JOB_DLQ_URL": stack.dlq_url,
        "STATE_MACHINE_ARN": stack.state_machine_arn,
        "CLUSTER_ARN": stack.cluster_arn,
    }.items():
        monkeypatch.setenv(key, value)
    return stack


@pytest.fixture
def stack(monkeypatch: pytest.MonkeyPatch) -> Iterator[Stack]:
    with mock_aws():
        yield build_stack(monkeypatch)


def load_app(function: str) -> ModuleType:
    """functions/<function>/app.py imported afresh, so its module-level clients and settings are
    created inside the test's moto mock and from the test's environment."""
    path = ROOT / "functions" / function / "app.py"
    name = f"{function}_app_{uuid.uuid4().hex}"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while the class is created
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def app() -> Iterator[Callable[[str], ModuleType]]:
    loaded: list[ModuleType] = []

    def load(function: str) -> ModuleType:
        loaded.append(load_app(function))
        return loaded[-1]

    yield load
    for module in loaded:
        sys.modules.pop(module.__name__, None)


@pytest.fixture(autouse=True)
def _calls_are_allowed_by_the_function_role(request: pytest.FixtureRequest) -> Iterator[None]:
    """In test_<function>.py, every AWS call the handler module makes must be allowed by its role."""
    folder = request.module.__name__.rsplit(".", 1)[-1].removeprefix("test_")
    handler = ROOT / "functions" / folder / "app.py"
    if not handler.is_file():
        yield
        return
    import os

    import botocore.client

    from tests.unit import iam

    calls: list[tuple[str, str, dict[str, Any], dict[str, str]]] = []
    original = botocore.client.BaseClient._make_api_call

    def recording(client: Any, operation: str, params: dict[str, Any]) -> Any:
        frame = sys._getframe(1)
        while frame is not None and frame.f_code.co_filename != str(handler):
            frame = frame.f_back
        if frame is not None:  # made while the handler module ran, not by the test's own setup
            tables = iam.table_names(dict(os.environ))  # the test's environment is gone by teardown
            calls.append((client.meta.service_model.service_name, operation, params, tables))
        return original(client, operation, params)

    monkey = pytest.MonkeyPatch()
    monkey.setattr(botocore.client.BaseClient, "_make_api_call", recording)
    try:
        yield
    finally:
        monkey.undo()
    statements = iam.function_policies()[iam.function_for_folder(folder)]
    denied = {
        (need.action, need.resource)
        for service, operation, params, tables in calls
        for need in iam.needs(service, operation, params, tables)
        if not any(statement.allows(need) for statement in statements)
    }
    assert not denied, f"functions/{folder} makes calls its role does not allow: {sorted(denied, key=str)}"
