"""`browserjobs doctor`: its decisions on their own, and each check against the template on the local stack.

The local stack is shared by the session: every test puts back what it changes, in a finally block.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import boto3
import pytest
from typer.testing import CliRunner

from browserjobs.ops import doctor
from browserjobs.ops.cli import app
from tests.cli.local_stack_process import RunningStack

CHECK_IDS = [check_id for check_id, _ in doctor.CHECKS]
FAKE_KEY = "AKIA" + "ABCDEFGHIJKLMNOP"  # the shape of a long-term access key id, not a real one


# --- pure decisions -------------------------------------------------------------------------------------


@pytest.mark.unit
def test_access_keys_are_found_by_name_and_by_value():
    assert doctor.leaked_credentials({"STAGE": "dev", "TOKEN": "x"}) == []
    assert doctor.leaked_credentials({"AWS_SECRET_ACCESS_KEY": "s"}) == ["AWS_SECRET_ACCESS_KEY"]
    assert doctor.leaked_credentials({"DEPLOY_KEY": f"id={FAKE_KEY};"}) == ["DEPLOY_KEY"]
    assert doctor.leaked_credentials({"NOT_A_KEY": "AKIA123"}) == []  # too short
    assert doctor.leaked_credentials({"LOWER": FAKE_KEY.lower()}) == []


@pytest.mark.unit
def test_the_quota_must_cover_every_concurrent_task():
    assert doctor.required_vcpus(4, 1024) == 4
    assert doctor.required_vcpus(10, 512) == 5
    assert doctor.quota_decision(6, 4, 1024)[0] == doctor.OK
    assert doctor.quota_decision(4, 4, 1024)[0] == doctor.OK
    status, evidence = doctor.quota_decision(6, 4, 2048)
    assert status == doctor.NOK and "8 vCPU" in evidence
    # The pool's tasks count too, at PoolMaxTasks, as on demand (an upper bound).
    assert doctor.required_vcpus(4, 1024, 2) == 6
    status, evidence = doctor.quota_decision(5, 4, 1024, 2)
    assert status == doctor.NOK and "PoolMaxTasks 2" in evidence and "= 6 vCPU" in evidence


@pytest.mark.unit
def test_image_pulls_need_all_three_endpoints_or_a_nat():
    region = "eu-west-1"
    endpoints = [f"com.amazonaws.{region}.{s}" for s in ("ecr.api", "ecr.dkr", "s3")]
    assert doctor.image_pull_route(region, endpoints, [])[0] == doctor.OK
    status, evidence = doctor.image_pull_route(region, endpoints[:2], ["nat-0abc"])
    assert status == doctor.OK and "NAT" in evidence and "docs/COST.md" in evidence
    status, evidence = doctor.image_pull_route(region, endpoints[:2], [])
    assert status == doctor.NOK and "s3" in evidence
    assert doctor.image_pull_route(region, [], ["igw-0abc"])[0] == doctor.NOK  # no public IP: no way out
    # endpoints of another region do not count
    assert doctor.image_pull_route("us-east-1", endpoints, [])[0] == doctor.NOK


@pytest.mark.unit
def test_subnets_and_ecr_repositories_are_read_from_what_is_deployed():
    network = {"Subnets.$": "States.StringSplit('subnet-0a1,subnet-0b2', ',')", "AssignPublicIp": "DISABLED"}
    assert doctor.subnets_in(network) == ["subnet-0a1", "subnet-0b2"]
    image = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/team/worker@sha256:" + "0" * 64
    assert doctor.ecr_repository(image) == "team/worker"
    assert doctor.ecr_repository("123456789012.dkr.ecr.eu-west-1.amazonaws.com/worker:1.0") == "worker"
    assert doctor.ecr_repository("browserjobs-worker:local") is None
    assert doctor.ecr_repository("public.ecr.aws/org/worker:1") is None
    states = {"Outer": {"Type": "Parallel", "Branches": [{"States": {"RunBrowserTask": {"Type": "Task"}}}]}}
    assert doctor.find_state(states, "RunBrowserTask") == {"Type": "Task"}


# --- against the local stack ------------------------------------------------------------------------------


def run(stack: RunningStack, *args: str):
    return CliRunner().invoke(
        app, ["--endpoint-url", stack.url, "--stack", stack.name, *args], env={"COLUMNS": "200"}
    )


def client(stack: RunningStack, service: str) -> Any:
    return boto3.client(
        service,
        endpoint_url=stack.url,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )


def resource(stack: RunningStack, logical_id: str) -> str:
    pages = (
        client(stack, "cloudformation").get_paginator("list_stack_resources").paginate(StackName=stack.name)
    )
    found = {
        r["LogicalResourceId"]: r["PhysicalResourceId"] for p in pages for r in p["StackResourceSummaries"]
    }
    return found[logical_id]


def results(stack: RunningStack) -> tuple[int, dict[str, dict[str, str]]]:
    result = run(stack, "doctor", "--json")
    assert result.exit_code in (0, 1), result.output
    return result.exit_code, {r["check"]: r for r in json.loads(result.stdout)}


def status_of(stack: RunningStack, check: str) -> str:
    return results(stack)[1][check]["status"]


@pytest.mark.e2e
def test_doctor_lists_every_check_with_evidence_and_fix(local_stack):
    exit_code, found = results(local_stack)
    assert list(found) == CHECK_IDS
    for check in found.values():
        assert check["status"] in ("OK", "NOK", "TODO")
        assert check["evidence"].strip() and check["fix"].strip(), check
    # what the local stack deploys from template.yaml (the DLQs: other tests on this shared stack fill them)
    for check in ("kms-rotation", "log-retention", "table-pitr", "state-machine-observability"):
        assert found[check]["status"] == "OK", found[check]
    assert found["function-credentials"]["status"] == "OK"
    assert found["worker-image"]["status"] == "TODO" and "not in ECR" in found["worker-image"]["evidence"]
    assert found["fargate-quota"]["status"] == "OK" and "= 6 vCPU" in found["fargate-quota"]["evidence"]
    assert found["drift"]["status"] == "OK" and "IN_SYNC" in found["drift"]["evidence"]
    # no subscriber without AlertEmail, and the local network has no endpoint or NAT: NOK, so exit 1
    assert found["alarm-actions"]["status"] == "NOK"
    assert found["task-networking"]["status"] == "NOK" and "no route" in found["task-networking"]["evidence"]
    assert exit_code == 1

    table = run(local_stack, "doctor")
    assert table.exit_code == 1 and "kms-rotation" in table.stdout and "NOK" in table.stdout


def _visible(sqs: Any, queue: str) -> int:
    attributes = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["ApproximateNumberOfMessages"])
    return int(attributes["Attributes"]["ApproximateNumberOfMessages"])


def _delete_only(sqs: Any, queue: str, body: str) -> None:
    """Delete this test's message; other tests' messages (the stack is shared) become visible again."""
    deadline, others = time.monotonic() + 30, []
    try:
        while time.monotonic() < deadline:
            for message in sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages", []):
                if message["Body"] == body:
                    sqs.delete_message(QueueUrl=queue, ReceiptHandle=message["ReceiptHandle"])
                    return
                others.append(message["ReceiptHandle"])
        raise AssertionError("the test's DLQ message was not found again")
    finally:
        for handle in others:
            sqs.change_message_visibility(QueueUrl=queue, ReceiptHandle=handle, VisibilityTimeout=0)


DLQS = ("JobDeadLetterQueue", "IntakeDeadLetterQueue")


@pytest.mark.e2e
def test_a_message_in_the_job_dlq_is_nok_until_it_is_gone(local_stack):
    sqs, queue = client(local_stack, "sqs"), resource(local_stack, "JobDeadLetterQueue")
    before = _visible(sqs, queue)  # other tests' failed jobs may be there already: the stack is shared
    body = json.dumps({"jobId": f"doctor-{uuid.uuid4().hex[:8]}"})
    sqs.send_message(QueueUrl=queue, MessageBody=body)
    try:
        exit_code, found = results(local_stack)
        assert exit_code == 1 and found["dlq-empty"]["status"] == "NOK"
        # Other tests' jobs may reach the shared DLQ while this one runs: the count can only have grown.
        counted = re.search(r"JobDeadLetterQueue: (\d+) visible", found["dlq-empty"]["evidence"])
        assert counted and int(counted[1]) >= before + 1
        assert "dlq redrive" in found["dlq-empty"]["fix"]
    finally:
        _delete_only(sqs, queue, body)
    after = results(local_stack)[1]["dlq-empty"]  # OK exactly when both queues read empty at that moment
    empty = all(f"{name}: 0 visible, 0 in flight" in after["evidence"] for name in DLQS)
    assert (after["status"] == "OK") == empty


@pytest.mark.e2e
def test_alerts_need_a_confirmed_subscription(local_stack):
    sqs, sns = client(local_stack, "sqs"), client(local_stack, "sns")
    topic = resource(local_stack, "AlertsTopic")
    queue = sqs.create_queue(QueueName=f"doctor-alerts-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    subscription = sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn, ReturnSubscriptionArn=True)
    try:
        _, found = results(local_stack)
        assert found["alarm-actions"]["status"] == "OK", found["alarm-actions"]
        assert "1 confirmed subscription(s) (sqs)" in found["alarm-actions"]["evidence"]
    finally:
        sns.unsubscribe(SubscriptionArn=subscription["SubscriptionArn"])
        sqs.delete_queue(QueueUrl=queue)
    assert status_of(local_stack, "alarm-actions") == "NOK"


@pytest.mark.e2e
def test_kms_rotation_off_is_nok(local_stack):
    kms, key = client(local_stack, "kms"), resource(local_stack, "Key")
    kms.disable_key_rotation(KeyId=key)
    try:
        assert status_of(local_stack, "kms-rotation") == "NOK"
    finally:
        kms.enable_key_rotation(KeyId=key)
    assert status_of(local_stack, "kms-rotation") == "OK"


@pytest.mark.e2e
def test_a_log_group_without_retention_is_nok(local_stack):
    logs, group = client(local_stack, "logs"), resource(local_stack, "WorkerLogs")
    days = logs.describe_log_groups(logGroupNamePrefix=group)["logGroups"][0]["retentionInDays"]
    logs.delete_retention_policy(logGroupName=group)
    try:
        check = results(local_stack)[1]["log-retention"]
        assert check["status"] == "NOK" and f"{group} (never expires)" in check["evidence"]
    finally:
        logs.put_retention_policy(logGroupName=group, retentionInDays=days)
    assert status_of(local_stack, "log-retention") == "OK"


@pytest.mark.e2e
def test_a_table_without_point_in_time_recovery_is_nok(local_stack):
    dynamodb, table = client(local_stack, "dynamodb"), resource(local_stack, "LocksTable")
    dynamodb.update_continuous_backups(
        TableName=table, PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": False}
    )
    try:
        check = results(local_stack)[1]["table-pitr"]
        assert check["status"] == "NOK" and f"{table} DISABLED" in check["evidence"]
    finally:
        dynamodb.update_continuous_backups(
            TableName=table, PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True}
        )
    assert status_of(local_stack, "table-pitr") == "OK"


@pytest.mark.e2e
def test_an_access_key_in_a_function_environment_is_nok(local_stack):
    lambda_, function = client(local_stack, "lambda"), resource(local_stack, "CleanupFunction")
    variables = lambda_.get_function_configuration(FunctionName=function)["Environment"]["Variables"]
    lambda_.update_function_configuration(
        FunctionName=function,
        Environment={"Variables": {**{k: str(v) for k, v in variables.items()}, "UPLOAD_KEY": FAKE_KEY}},
    )
    try:
        check = results(local_stack)[1]["function-credentials"]
        assert check["status"] == "NOK" and "CleanupFunction: UPLOAD_KEY" in check["evidence"]
        assert FAKE_KEY not in check["evidence"]  # the evidence names the variable, never the key
    finally:
        lambda_.update_function_configuration(
            FunctionName=function, Environment={"Variables": {k: str(v) for k, v in variables.items()}}
        )
    assert status_of(local_stack, "function-credentials") == "OK"


@contextmanager
def worker_revision(stack: RunningStack, image: str | None = None, **task: str) -> Iterator[None]:
    """A new revision of the worker's family (the one the workflow runs): another image, or task-level
    settings (cpu, memory)."""
    ecs = client(stack, "ecs")
    current = ecs.describe_task_definition(taskDefinition=resource(stack, "TaskDefinition"))["taskDefinition"]
    keep = (
        "family",
        "taskRoleArn",
        "executionRoleArn",
        "networkMode",
        "volumes",
        "requiresCompatibilities",
        "cpu",
        "memory",
        "runtimePlatform",
    )
    containers = [{**c, "image": image or c["image"]} for c in current["containerDefinitions"]]
    registered = ecs.register_task_definition(
        **{k: current[k] for k in keep if k in current} | task, containerDefinitions=containers
    )["taskDefinition"]["taskDefinitionArn"]
    try:
        yield
    finally:
        ecs.deregister_task_definition(taskDefinition=registered)


@pytest.mark.e2e
def test_the_worker_image_must_be_pinned_and_scanned(local_stack):
    ecr = client(local_stack, "ecr")
    name = f"doctor-worker-{uuid.uuid4().hex[:8]}"
    registry = "123456789012.dkr.ecr.us-east-1.amazonaws.com"
    ecr.create_repository(repositoryName=name, imageScanningConfiguration={"scanOnPush": True})
    try:
        with worker_revision(local_stack, f"{registry}/{name}:1.0"):
            check = results(local_stack)[1]["worker-image"]
            assert check["status"] == "NOK" and "not pinned" in check["evidence"], check
        with worker_revision(local_stack, f"{registry}/{name}@sha256:{'a' * 64}"):
            check = results(local_stack)[1]["worker-image"]
            assert check["status"] == "OK" and "scanOnPush true" in check["evidence"], check
        ecr.put_image_scanning_configuration(
            repositoryName=name, imageScanningConfiguration={"scanOnPush": False}
        )
        with worker_revision(local_stack, f"{registry}/{name}@sha256:{'a' * 64}"):
            assert status_of(local_stack, "worker-image") == "NOK"
    finally:
        ecr.delete_repository(repositoryName=name, force=True)
    assert status_of(local_stack, "worker-image") == "TODO"


@pytest.mark.e2e
def test_a_nat_gateway_route_gives_the_tasks_a_way_to_ecr(local_stack):
    ec2, sfn = client(local_stack, "ec2"), client(local_stack, "stepfunctions")
    machine = sfn.describe_state_machine(stateMachineArn=resource(local_stack, "JobStateMachine"))
    subnet_id = doctor.subnets_in(json.loads(machine["definition"]))[0]
    subnet = ec2.describe_subnets(SubnetIds=[subnet_id])["Subnets"][0]
    table = ec2.create_route_table(VpcId=subnet["VpcId"])["RouteTable"]["RouteTableId"]
    association = ec2.associate_route_table(RouteTableId=table, SubnetId=subnet_id)["AssociationId"]
    allocation = ec2.allocate_address(Domain="vpc")["AllocationId"]
    nat = ec2.create_nat_gateway(SubnetId=subnet_id, AllocationId=allocation)["NatGateway"]["NatGatewayId"]
    ec2.create_route(RouteTableId=table, DestinationCidrBlock="0.0.0.0/0", NatGatewayId=nat)
    try:
        check = results(local_stack)[1]["task-networking"]
        assert check["status"] == "OK" and nat in check["evidence"], check["evidence"]
        assert "docs/COST.md" in check["evidence"]
    finally:
        ec2.disassociate_route_table(AssociationId=association)
        ec2.delete_route_table(RouteTableId=table)
        ec2.delete_nat_gateway(NatGatewayId=nat)
        ec2.release_address(AllocationId=allocation)
    assert status_of(local_stack, "task-networking") == "NOK"


@pytest.mark.e2e
def test_the_fargate_quota_must_cover_every_concurrent_task(local_stack):
    # The local account's Fargate On-Demand vCPU quota is 6 (servicequotas shim); 4 per-job tasks and 2
    # pool tasks (MaxConcurrentTasks and PoolMaxTasks locally) of 4 vCPU (a revision the workflow would run)
    # need 24.
    quotas = client(local_stack, "service-quotas")
    with worker_revision(local_stack, cpu="4096", memory="8192"):
        check = results(local_stack)[1]["fargate-quota"]
        assert check["status"] == "NOK" and "quota 6;" in check["evidence"]
        assert "= 24 vCPU" in check["evidence"]
        # API_RequestServiceQuotaIncrease: the local account's request is approved at once
        quotas.request_service_quota_increase(ServiceCode="fargate", QuotaCode="L-3032A538", DesiredValue=24)
        check = results(local_stack)[1]["fargate-quota"]
        assert check["status"] == "OK" and "quota 24;" in check["evidence"], check
    assert status_of(local_stack, "fargate-quota") == "OK"


@pytest.mark.e2e
def test_a_setting_changed_outside_the_template_is_drift(local_stack):
    logs, group = client(local_stack, "logs"), resource(local_stack, "IntakeFunctionLogs")
    days = logs.describe_log_groups(logGroupNamePrefix=group)["logGroups"][0]["retentionInDays"]
    logs.put_retention_policy(logGroupName=group, retentionInDays=1)
    try:
        check = results(local_stack)[1]["drift"]
        assert check["status"] == "NOK" and "DRIFTED: IntakeFunctionLogs MODIFIED" in check["evidence"], check
        assert f"/RetentionInDays {days} -> 1" in check["evidence"]
    finally:
        logs.put_retention_policy(logGroupName=group, retentionInDays=days)
    assert status_of(local_stack, "drift") == "OK"
