"""browserjobs.emulator.faults: LOCAL_FAULTS' syntax, and each fault as a client meets it (in-process)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from moto import mock_aws

from browserjobs.emulator import faults
from browserjobs.emulator.faults import CAPACITY_REASON, Fault, Faults, FaultSpecError, parse

pytestmark = pytest.mark.unit
NO_RETRIES = Config(retries={"max_attempts": 1, "mode": "standard"})


def test_a_spec_names_rates_and_the_delay_of_late_events() -> None:
    assert parse("runtask.capacity=0.3, ddb.conflict=0.2,events.late=0.2:7,events.lost=0") == {
        "runtask.capacity": Fault("runtask.capacity", 0.3),
        "ddb.conflict": Fault("ddb.conflict", 0.2),
        "events.late": Fault("events.late", 0.2, 7.0),
        "events.lost": Fault("events.lost", 0.0),
    }
    assert parse("events.late=1")["events.late"].seconds == faults.DEFAULT_LATE_SECONDS
    assert parse("") == {} and parse(None) == {}
    assert not Faults("ecs.throttle=0")


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("runtask.capacty=0.3", "unknown fault 'runtask.capacty'"),
        ("ecs.throttle", "has no rate"),
        ("ecs.throttle=lots", "is not a number"),
        ("ecs.throttle=1.5", "is not between 0 and 1"),
        ("ecs.throttle=0.1:5", "only events.late takes :seconds"),
        ("events.late=0.1:-1", "negative"),
        ("ddb.throttle=0.1,ddb.throttle=0.2", "given twice"),
    ],
)
def test_a_wrong_spec_is_a_clear_error(spec: str, message: str) -> None:
    with pytest.raises(FaultSpecError, match=message) as raised:
        parse(spec)
    if "unknown" in message:
        assert all(name in str(raised.value) for name in faults.FAULTS)


def test_the_same_seed_draws_the_same_faults() -> None:
    def draws(seed: int) -> list[bool]:
        chosen = Faults("ecs.throttle=0.5", seed=seed)
        return [chosen.roll("ecs.throttle") for _ in range(50)]

    assert draws(7) == draws(7) != draws(8)


def test_the_environment_supplies_spec_and_seed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOCAL_FAULTS", "events.duplicate=0.5")
    monkeypatch.setenv("LOCAL_FAULTS_SEED", "3")
    chosen = Faults.from_environment()
    assert chosen.faults == {"events.duplicate": Fault("events.duplicate", 0.5)} and chosen.seed == 3
    monkeypatch.setenv("LOCAL_FAULTS_SEED", "three")
    with pytest.raises(FaultSpecError, match="LOCAL_FAULTS_SEED"):
        Faults.from_environment()


def test_events_are_lost_duplicated_or_delivered_once() -> None:
    delivered: list[int] = []
    Faults("events.lost=1").deliver_event(lambda: delivered.append(1))
    assert delivered == []
    Faults("events.duplicate=1").deliver_event(lambda: delivered.append(2))
    assert delivered == [2, 2]


@pytest.fixture
def endpoint_faults() -> Iterator[Any]:
    def activate(spec: str) -> Faults:
        chosen = Faults(spec, seed=1)
        faults.activate(chosen)
        return chosen

    with mock_aws():
        yield activate
    faults.activate(None)


def _table(ddb: Any) -> str:
    ddb.create_table(
        TableName="t",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    return "t"


def test_a_transaction_is_cancelled_with_a_transaction_conflict(endpoint_faults: Any) -> None:
    ddb = boto3.client("dynamodb", region_name="us-east-1", config=NO_RETRIES)
    table = _table(ddb)
    injected = endpoint_faults("ddb.conflict=1")
    items = [{"Put": {"TableName": table, "Item": {"pk": {"S": key}}}} for key in ("a", "b")]
    with pytest.raises(ClientError) as raised:
        ddb.transact_write_items(TransactItems=items)
    error = raised.value.response
    assert error["Error"]["Code"] == "TransactionCanceledException"
    codes = [reason["Code"] for reason in error["CancellationReasons"]]
    assert sorted(codes) == ["None", "TransactionConflict"]
    assert injected.injected["ddb.conflict"] == 1
    assert ddb.scan(TableName=table)["Count"] == 0  # nothing of a cancelled transaction is written


def test_dynamodb_calls_are_throttled(endpoint_faults: Any) -> None:
    ddb = boto3.client("dynamodb", region_name="us-east-1", config=NO_RETRIES)
    table = _table(ddb)
    endpoint_faults("ddb.throttle=1")
    with pytest.raises(ClientError) as raised:
        ddb.put_item(TableName=table, Item={"pk": {"S": "a"}})
    assert raised.value.response["Error"]["Code"] in (
        "ThrottlingException",
        "ProvisionedThroughputExceededException",
    )


def _fargate() -> dict[str, Any]:
    ec2, ecs = boto3.client("ec2", region_name="us-east-1"), boto3.client("ecs", region_name="us-east-1")
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    ec2.modify_vpc_attribute(VpcId=vpc, EnableDnsHostnames={"Value": True})
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.1.0/24")["Subnet"]["SubnetId"]
    group = ec2.create_security_group(GroupName="g", Description="g", VpcId=vpc)["GroupId"]
    ecs.create_cluster(clusterName="c")
    definition = ecs.register_task_definition(
        family="f",
        networkMode="awsvpc",
        requiresCompatibilities=["FARGATE"],
        cpu="256",
        memory="512",
        containerDefinitions=[{"name": "w", "image": "i", "memory": 512}],
    )["taskDefinition"]["taskDefinitionArn"]
    return {
        "cluster": "c",
        "taskDefinition": definition,
        "launchType": "FARGATE",
        "networkConfiguration": {"awsvpcConfiguration": {"subnets": [subnet], "securityGroups": [group]}},
    }


def test_run_task_answers_failures_without_capacity(endpoint_faults: Any) -> None:
    run = _fargate()
    endpoint_faults("runtask.capacity=1")
    answer = boto3.client("ecs", region_name="us-east-1", config=NO_RETRIES).run_task(**run)
    assert answer["tasks"] == []
    assert answer["failures"] == [{"arn": run["taskDefinition"], "reason": CAPACITY_REASON}]


def test_ecs_calls_are_throttled(endpoint_faults: Any) -> None:
    run = _fargate()
    endpoint_faults("ecs.throttle=1")
    ecs = boto3.client("ecs", region_name="us-east-1", config=NO_RETRIES)
    for call in (lambda: ecs.run_task(**run), lambda: ecs.describe_tasks(cluster="c", tasks=["x"])):
        with pytest.raises(ClientError, match="Rate exceeded") as raised:
            call()
        assert raised.value.response["Error"]["Code"] == "ThrottlingException"


def test_the_revision_a_run_task_names_is_deregistered(endpoint_faults: Any) -> None:
    run = _fargate()
    endpoint_faults("taskdef.deregistered=1")
    ecs = boto3.client("ecs", region_name="us-east-1", config=NO_RETRIES)
    try:
        ecs.run_task(
            **run
        )  # refused once the INACTIVE shim (shims/ecs.py) is applied (the local stack applies it)
    except ClientError as error:
        assert error.response["Error"]["Message"] == "TaskDefinition is inactive"
    described = ecs.describe_task_definition(taskDefinition=run["taskDefinition"])["taskDefinition"]
    assert described["status"] == "INACTIVE", json.dumps(described, default=str)[:200]
