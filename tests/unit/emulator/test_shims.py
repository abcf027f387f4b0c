"""Each shim in src/browserjobs/emulator/shims/ against moto itself.

Every probe below runs a small scenario in moto and reports what it saw. The probes run twice, in fresh
processes: against moto as installed (where each must still show the gap: when one of those assertions
fails, moto has fixed the gap upstream and its shim should be removed) and with the shims applied (where
each must behave as AWS does). Run as a script, this file is the probe runner.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[3]
ROLE = "arn:aws:iam::123456789012:role/probe"
SFN_CONFIG = {"stepfunctions": {"execute_state_machine": True}}
PROBE_SECONDS = 20


# --- probes (run in a subprocess) -------------------------------------------------------------------------


class Recorder:
    """Stands in for the local stack behind the runtime hooks, recording what the shims hand it."""

    def __init__(self) -> None:
        self.invocations: list[str] = []
        self.deliveries: list[dict[str, Any]] = []
        self.statuses: list[str] = []

    def invoke_function(self, function: Any, payload: bytes, invocation_type: str) -> Any:
        from browserjobs.emulator.shims import InvokeResult

        self.invocations.append(invocation_type)
        return InvokeResult(payload=b'{"errorType": "ValueError"}', function_error="Unhandled")

    def task_started(self, task: Any) -> None:
        return None

    def stop_task(self, task: Any, reason: str) -> bool:
        return False

    def execution_status_changed(self, execution: Any, status: str) -> None:
        self.statuses.append(status)

    def deliver_to_target(self, rule: Any, target: dict[str, Any], event: Any) -> None:
        self.deliveries.append({"arn": target["Arn"], "event": event})


def _client(service: str) -> Any:
    import boto3

    return boto3.client(service, region_name="us-east-1")


def _run_machine(definition: dict[str, Any], execution_input: dict[str, Any] | None = None) -> dict[str, Any]:
    sfn = _client("stepfunctions")
    machine = sfn.create_state_machine(
        name=f"m{time.monotonic_ns()}", definition=json.dumps(definition), roleArn=ROLE
    )
    arn = sfn.start_execution(
        stateMachineArn=machine["stateMachineArn"], input=json.dumps(execution_input or {})
    )["executionArn"]
    return _wait(arn)


def _wait(execution_arn: str) -> dict[str, Any]:
    sfn = _client("stepfunctions")
    deadline = time.monotonic() + PROBE_SECONDS
    while time.monotonic() < deadline:
        described = sfn.describe_execution(executionArn=execution_arn)
        if described["status"] != "RUNNING":
            return {
                "status": described["status"],
                "error": described.get("error"),
                "cause": described.get("cause"),
                "output": json.loads(described.get("output") or "null"),
            }
        time.sleep(0.1)
    return {"status": "RUNNING"}


def _fargate(dns_hostnames: bool = True) -> dict[str, str]:
    ec2, ecs = _client("ec2"), _client("ecs")
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    if dns_hostnames:
        ec2.modify_vpc_attribute(VpcId=vpc, EnableDnsHostnames={"Value": True})
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.1.0/24")["Subnet"]["SubnetId"]
    group = ec2.create_security_group(GroupName="g", Description="g", VpcId=vpc)["GroupId"]
    ecs.create_cluster(clusterName="probe")
    definition = ecs.register_task_definition(
        family="probe",
        networkMode="awsvpc",
        requiresCompatibilities=["FARGATE"],
        cpu="256",
        memory="512",
        containerDefinitions=[{"name": "worker", "image": "probe", "memory": 512}],
    )["taskDefinition"]["taskDefinitionArn"]
    return {"cluster": "probe", "definition": definition, "subnet": subnet, "group": group}


def _run_task_state(ecs: dict[str, str], **extra: Any) -> dict[str, Any]:
    return {
        "Type": "Task",
        "Resource": "arn:aws:states:::ecs:runTask",
        "Parameters": {
            "Cluster": ecs["cluster"],
            "TaskDefinition": ecs["definition"],
            "NetworkConfiguration": {
                "AwsvpcConfiguration": {"Subnets": [ecs["subnet"]], "SecurityGroups": [ecs["group"]]}
            },
            **extra,
        },
        "End": True,
    }


def probe_ecs_integration_casing() -> Any:
    ecs = _fargate()
    result = _run_machine({"StartAt": "Run", "States": {"Run": _run_task_state(ecs, LaunchType="FARGATE")}})
    return {"status": result["status"], "has_tasks": bool((result["output"] or {}).get("Tasks"))}


def probe_aws_sdk_integration_casing() -> Any:
    _client("ecs").create_cluster(clusterName="probe")
    state = {
        "Type": "Task",
        "Resource": "arn:aws:states:::aws-sdk:ecs:listTasks",
        "Parameters": {"Cluster": "probe"},
    }
    return _run_machine({"StartAt": "List", "States": {"List": {**state, "End": True}}})["status"]


def probe_capacity_provider_strategy() -> Any:
    ecs = _fargate()
    strategy = [{"CapacityProvider": "FARGATE", "Weight": 1}]
    state = _run_task_state(ecs, CapacityProviderStrategy=strategy)
    return _run_machine({"StartAt": "Run", "States": {"Run": state}})["status"]


def _callback_execution(**task_fields: Any) -> tuple[str, str]:
    """An execution of one sqs:sendMessage.waitForTaskToken task; returns (execution ARN, the token queue)."""
    queue = _client("sqs").create_queue(QueueName=f"q{time.monotonic_ns()}")["QueueUrl"]
    state = {
        "Type": "Task",
        "Resource": "arn:aws:states:::sqs:sendMessage.waitForTaskToken",
        "Parameters": {"QueueUrl": queue, "MessageBody": {"token.$": "$$.Task.Token"}},
        "End": True,
        **task_fields,
    }
    sfn = _client("stepfunctions")
    machine = sfn.create_state_machine(
        name=f"m{time.monotonic_ns()}",
        definition=json.dumps({"StartAt": "Wait", "States": {"Wait": state}}),
        roleArn=ROLE,
    )["stateMachineArn"]
    return sfn.start_execution(stateMachineArn=machine)["executionArn"], queue


def _callback_machine(**task_fields: Any) -> tuple[str, str]:
    """An execution waiting on its callback; returns (execution ARN, token)."""
    execution, queue = _callback_execution(**task_fields)
    return execution, _next_token(queue)


def probe_send_task_failure_cause() -> Any:
    execution, token = _callback_machine()
    _client("stepfunctions").send_task_failure(taskToken=token, error="Site.ServerError", cause="HTTP 503")
    return _wait(execution)["cause"]


def probe_heartbeat_timeout_error_name() -> Any:
    execution, _ = _callback_machine(HeartbeatSeconds=1, TimeoutSeconds=30)
    return _wait(execution)["error"]


def probe_early_heartbeat() -> Any:
    from botocore.exceptions import ClientError

    execution, token = _callback_machine()
    try:
        _client("stepfunctions").send_task_heartbeat(taskToken=token)
        outcome = "accepted"
    except ClientError as error:
        outcome = error.response["Error"]["Code"]
    _client("stepfunctions").send_task_success(taskToken=token, output="{}")
    _wait(execution)
    return outcome


def _next_token(queue_url: str) -> str:
    sqs = _client("sqs")
    deadline = time.monotonic() + PROBE_SECONDS
    while time.monotonic() < deadline:
        for message in sqs.receive_message(QueueUrl=queue_url).get("Messages", []):
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
            return json.loads(message["Body"])["token"]
        time.sleep(0.1)
    raise TimeoutError("no task token reached the queue")


def probe_callback_token_per_attempt() -> Any:
    """A callback task whose first attempt fails and is retried: the token the retry hands out, waits on."""
    from botocore.exceptions import ClientError

    sfn = _client("stepfunctions")
    retry = [{"ErrorEquals": ["Worker.Interrupted"], "IntervalSeconds": 1, "MaxAttempts": 1}]
    execution, queue = _callback_execution(Retry=retry)
    first = _next_token(queue)
    sfn.send_task_failure(taskToken=first, error="Worker.Interrupted", cause="SIGTERM")
    second = _next_token(queue)
    try:
        sfn.send_task_success(taskToken=second, output='{"attempt": 2}')
        callback = "accepted"
    except ClientError as error:  # the execution already ended
        callback = error.response["Error"]["Code"]
    return {"new token": second != first, "second callback": callback, "status": _wait(execution)["status"]}


def probe_stop_execution_while_waiting() -> Any:
    """StopExecution while a task waits for its callback (then a heartbeat, as a live worker sends)."""
    from botocore.exceptions import ClientError

    sfn = _client("stepfunctions")
    execution, token = _callback_machine(HeartbeatSeconds=30)
    sfn.stop_execution(executionArn=execution, cause="operator")
    # Refused once the stop has closed the token (as on AWS), which may happen first.
    with contextlib.suppress(ClientError):
        sfn.send_task_heartbeat(taskToken=token)
    result = _wait(execution)
    events = [event["type"] for event in sfn.get_execution_history(executionArn=execution)["events"]]
    return {"status": result["status"], "last event": events[-1]}


def _choice(rule: dict[str, Any]) -> dict[str, Any]:
    return {
        "StartAt": "Decide",
        "States": {
            "Decide": {"Type": "Choice", "Choices": [{**rule, "Next": "Yes"}], "Default": "No"},
            "Yes": {"Type": "Pass", "Result": {"branch": "yes"}, "End": True},
            "No": {"Type": "Pass", "Result": {"branch": "no"}, "End": True},
        },
    }


def probe_choice_context_object_path() -> Any:
    result = _run_machine(
        _choice({"Variable": "$.at", "TimestampLessThanPath": "$$.State.EnteredTime"}),
        {"at": "2020-01-01T00:00:00Z"},
    )
    return result["output"] if result["status"] == "SUCCEEDED" else result["status"]


def probe_fractional_timestamp_comparison() -> Any:
    rule = {"Variable": "$.at", "TimestampGreaterThan": "2020-01-01T00:00:00Z"}
    return _run_machine(_choice(rule), {"at": "2026-01-01T00:00:00.500Z"})["output"]


def probe_entered_time_format() -> Any:
    machine = {
        "StartAt": "Now",
        "States": {"Now": {"Type": "Pass", "Parameters": {"t.$": "$$.State.EnteredTime"}, "End": True}},
    }
    entered = _run_machine(machine)["output"]["t"]
    return {"ends_with_z": entered.endswith("Z"), "length": len(entered)}


def _create_stack(template: dict[str, Any], parameters: dict[str, str] | None = None) -> None:
    _client("cloudformation").create_stack(
        StackName=f"s{time.monotonic_ns()}",
        TemplateBody=json.dumps(template),
        Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in (parameters or {}).items()],
    )


def probe_cloudformation_state_machine() -> Any:
    definition = {
        "StartAt": "P",
        "States": {"P": {"Type": "Pass", "Result": {"greeting": "${Greeting}"}, "End": True}},
    }
    properties = {
        "DefinitionString": json.dumps(definition),
        "RoleArn": ROLE,
        "DefinitionSubstitutions": {"Greeting": "hello"},
    }
    _create_stack(
        {"Resources": {"Machine": {"Type": "AWS::StepFunctions::StateMachine", "Properties": properties}}}
    )
    machines = _client("stepfunctions").list_state_machines()["stateMachines"]
    if not machines:
        return "not executable"
    execution = _client("stepfunctions").start_execution(stateMachineArn=machines[0]["stateMachineArn"])
    return _wait(execution["executionArn"])["output"]


def probe_cloudformation_state_machine_observability() -> Any:
    """A state machine's LoggingConfiguration and TracingConfiguration from its template."""
    definition = {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}}
    group = "arn:aws:logs:us-east-1:123456789012:log-group:machine:*"
    properties = {
        "DefinitionString": json.dumps(definition),
        "RoleArn": ROLE,
        "LoggingConfiguration": {
            "Level": "ALL",
            "IncludeExecutionData": False,
            "Destinations": [{"CloudWatchLogsLogGroup": {"LogGroupArn": group}}],
        },
        "TracingConfiguration": {"Enabled": True},
    }
    _create_stack(
        {"Resources": {"Machine": {"Type": "AWS::StepFunctions::StateMachine", "Properties": properties}}}
    )
    sfn = _client("stepfunctions")
    machine = sfn.describe_state_machine(
        stateMachineArn=sfn.list_state_machines()["stateMachines"][0]["stateMachineArn"]
    )
    logging = machine.get("loggingConfiguration", {})
    destinations = [d["cloudWatchLogsLogGroup"]["logGroupArn"] for d in logging.get("destinations", [])]
    return [logging.get("level"), destinations, machine.get("tracingConfiguration", {}).get("enabled")]


def probe_cloudformation_table_point_in_time_recovery() -> Any:
    table = {
        "Type": "AWS::DynamoDB::Table",
        "Properties": {
            "TableName": "recoverable",
            "BillingMode": "PAY_PER_REQUEST",
            "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
            "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
            "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": True},
        },
    }
    _create_stack({"Resources": {"Table": table}})
    backups = _client("dynamodb").describe_continuous_backups(TableName="recoverable")
    return backups["ContinuousBackupsDescription"]["PointInTimeRecoveryDescription"][
        "PointInTimeRecoveryStatus"
    ]


def probe_cloudformation_bucket_notifications() -> Any:
    queue = {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": "notified"}}
    notification = {"Event": "s3:ObjectCreated:*", "Queue": {"Fn::GetAtt": ["Queue", "Arn"]}}
    bucket = {
        "Type": "AWS::S3::Bucket",
        "Properties": {
            "BucketName": "notifying",
            "NotificationConfiguration": {"QueueConfigurations": [notification]},
        },
    }
    _create_stack({"Resources": {"Queue": queue, "Bucket": bucket}})
    configuration = _client("s3").get_bucket_notification_configuration(Bucket="notifying")
    return sorted(key for key in configuration if key != "ResponseMetadata")


def probe_cloudformation_role_managed_policies() -> Any:
    """A role's ManagedPolicyArns (SAM puts AWS managed policies there) are attached."""
    trust = {"Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}}]}
    managed = "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"
    role = {
        "Type": "AWS::IAM::Role",
        "Properties": {
            "RoleName": "managed",
            "AssumeRolePolicyDocument": trust,
            "ManagedPolicyArns": [managed],
        },
    }
    _create_stack({"Resources": {"Role": role}})
    attached = _client("iam").list_attached_role_policies(RoleName="managed")["AttachedPolicies"]
    return [policy["PolicyArn"] for policy in attached]


TASK_DEFINITION_KEPT = {
    "taskRoleArn": ROLE,
    "executionRoleArn": ROLE,
    "cpu": "512",
    "networkMode": "awsvpc",
    "requiresCompatibilities": ["FARGATE"],
    "runtimePlatform": {"cpuArchitecture": "ARM64", "operatingSystemFamily": "LINUX"},
}


def probe_cloudformation_task_definition_properties() -> Any:
    """What a task definition created by CloudFormation keeps of its properties."""
    properties = {
        "Family": "declared",
        "TaskRoleArn": ROLE,
        "ExecutionRoleArn": ROLE,
        "Cpu": "512",
        "Memory": "1024",
        "NetworkMode": "awsvpc",
        "RequiresCompatibilities": ["FARGATE"],
        "RuntimePlatform": {"CpuArchitecture": "ARM64", "OperatingSystemFamily": "LINUX"},
        "Tags": [{"Key": "team", "Value": "jobs"}],
        "ContainerDefinitions": [{"Name": "worker", "Image": "probe", "Essential": True}],
    }
    definition = {"Type": "AWS::ECS::TaskDefinition", "Properties": properties}
    _create_stack({"Resources": {"Definition": definition}})
    described = _client("ecs").describe_task_definition(taskDefinition="declared", include=["TAGS"])
    definition = described["taskDefinition"]
    return {
        "kept": sorted(key for key, value in TASK_DEFINITION_KEPT.items() if definition.get(key) == value),
        "tags": [tag["key"] for tag in described.get("tags", [])],
    }


def probe_cloudformation_ecs_service_properties() -> Any:
    """What an ECS service created by CloudFormation keeps of its properties."""
    ecs = _fargate()
    properties = {
        "Cluster": ecs["cluster"],
        "TaskDefinition": ecs["definition"],
        "DesiredCount": {"Ref": "Desired"},
        "CapacityProviderStrategy": [
            {"CapacityProvider": "FARGATE", "Base": 1, "Weight": 1},
            {"CapacityProvider": "FARGATE_SPOT", "Weight": 4},
        ],
        "NetworkConfiguration": {
            "AwsvpcConfiguration": {"Subnets": [ecs["subnet"]], "SecurityGroups": [ecs["group"]]}
        },
        "DeploymentConfiguration": {"DeploymentCircuitBreaker": {"Enable": True, "Rollback": True}},
        "PropagateTags": "TASK_DEFINITION",
        "EnableECSManagedTags": True,
    }
    template = {
        "Parameters": {"Desired": {"Type": "Number"}},
        "Resources": {"Service": {"Type": "AWS::ECS::Service", "Properties": properties}},
    }
    _create_stack(template, {"Desired": "2"})
    client = _client("ecs")
    [arn] = client.list_services(cluster=ecs["cluster"])["serviceArns"]
    [service] = client.describe_services(cluster=ecs["cluster"], services=[arn])["services"]
    return {
        "desiredCount": service["desiredCount"],
        "launchType": service.get("launchType"),
        "capacityProviders": [s["capacityProvider"] for s in service.get("capacityProviderStrategy", [])],
        "subnets": len(service["networkConfiguration"].get("awsvpcConfiguration", {}).get("subnets", [])),
        "circuitBreaker": service.get("deploymentConfiguration", {}).get("deploymentCircuitBreaker"),
        "tags": [service["propagateTags"], service.get("enableECSManagedTags", False)],
    }


def probe_ecs_awsvpc_without_dns_hostnames() -> Any:
    """Not shimmed: the local stack's VPC has DNS hostnames on (emulator/deploy.py), as Fargate needs."""
    ecs = _fargate(dns_hostnames=False)
    _client("ecs").run_task(
        cluster=ecs["cluster"],
        taskDefinition=ecs["definition"],
        launchType="FARGATE",
        networkConfiguration={
            "awsvpcConfiguration": {"subnets": [ecs["subnet"]], "securityGroups": [ecs["group"]]}
        },
    )
    return "started"


def probe_ecs_task_advances_per_describe() -> Any:
    ecs = _fargate()
    task = _client("ecs").run_task(
        cluster=ecs["cluster"],
        taskDefinition=ecs["definition"],
        launchType="FARGATE",
        networkConfiguration={
            "awsvpcConfiguration": {"subnets": [ecs["subnet"]], "securityGroups": [ecs["group"]]}
        },
    )["tasks"][0]["taskArn"]
    statuses = [
        _client("ecs").describe_tasks(cluster=ecs["cluster"], tasks=[task])["tasks"][0]["lastStatus"]
        for _ in range(6)
    ]
    return statuses[-1]


def probe_ecs_memory_from_cloudformation_parameter() -> Any:
    from botocore.exceptions import ClientError

    ecs = _fargate()
    container = {"Name": "worker", "Image": "probe", "Memory": {"Ref": "Memory"}}
    properties = {
        "Family": "cfn",
        "RequiresCompatibilities": ["FARGATE"],
        "NetworkMode": "awsvpc",
        "Cpu": "256",
        "Memory": {"Ref": "Memory"},
        "ContainerDefinitions": [container],
    }
    template = {
        "Parameters": {"Memory": {"Type": "String"}},
        "Resources": {"Definition": {"Type": "AWS::ECS::TaskDefinition", "Properties": properties}},
    }
    _create_stack(template, {"Memory": "512"})
    try:
        _client("ecs").run_task(
            cluster=ecs["cluster"],
            taskDefinition="cfn",
            launchType="FARGATE",
            networkConfiguration={
                "awsvpcConfiguration": {"subnets": [ecs["subnet"]], "securityGroups": [ecs["group"]]}
            },
        )
    except ClientError as error:
        return error.response["ResponseMetadata"]["HTTPStatusCode"]
    return "started"


def _function() -> str:
    import io
    import zipfile

    code = io.BytesIO()
    with zipfile.ZipFile(code, "w") as archive:
        archive.writestr("app.py", "def lambda_handler(event, context):\n    raise ValueError('boom')\n")
    iam = _client("iam")
    trust = {
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
        ]
    }
    role = iam.create_role(RoleName=f"r{time.monotonic_ns()}", AssumeRolePolicyDocument=json.dumps(trust))[
        "Role"
    ]["Arn"]
    return _client("lambda").create_function(
        FunctionName=f"f{time.monotonic_ns()}",
        Runtime="python3.13",
        Role=role,
        Handler="app.lambda_handler",
        Code={"ZipFile": code.getvalue()},
    )["FunctionArn"]


def probe_lambda_invoke() -> Any:
    response = _client("lambda").invoke(FunctionName=_function(), Payload=b"{}")
    return response.get("FunctionError")


def probe_s3_notification_invocation(recorder: Recorder | None) -> Any:
    from moto.awslambda.models import LambdaFunction

    seen: list[Any] = []
    original = LambdaFunction.invoke

    def spy(self: Any, body: Any, request_headers: Any, response_headers: Any) -> Any:
        seen.append(dict(request_headers).get("x-amz-invocation-type", "RequestResponse (none given)"))
        return original(self, body, request_headers, response_headers)

    LambdaFunction.invoke = spy
    try:
        function = _function()
        s3 = _client("s3")
        s3.create_bucket(Bucket="probe")
        s3.put_bucket_notification_configuration(
            Bucket="probe",
            NotificationConfiguration={
                "LambdaFunctionConfigurations": [
                    {"LambdaFunctionArn": function, "Events": ["s3:ObjectCreated:*"]}
                ]
            },
        )
        s3.put_object(Bucket="probe", Key="job.json", Body=b"{}")
    finally:
        LambdaFunction.invoke = original
    return recorder.invocations if recorder else seen


def probe_sqs_event_source_mapping() -> Any:
    sqs = _client("sqs")
    queue = sqs.create_queue(QueueName=f"q{time.monotonic_ns()}")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    _client("lambda").create_event_source_mapping(EventSourceArn=arn, FunctionName=_function(), BatchSize=10)
    sqs.send_message(QueueUrl=queue, MessageBody="{}")
    received = sqs.receive_message(QueueUrl=queue, AttributeNames=["ApproximateReceiveCount"])["Messages"][0]
    return int(received["Attributes"]["ApproximateReceiveCount"])  # 2: SendMessage itself received it once


def _rule(name: str, target_arn: str, state: str = "ENABLED") -> None:
    events = _client("events")
    events.put_rule(Name=name, EventPattern=json.dumps({"source": ["probe"]}), State=state)
    events.put_targets(Rule=name, Targets=[{"Id": "t", "Arn": target_arn}])


def probe_eventbridge_lambda_target(recorder: Recorder | None) -> Any:
    from botocore.exceptions import ClientError

    _rule("to-lambda", _function())
    try:
        _client("events").put_events(Entries=[{"Source": "probe", "DetailType": "Probe", "Detail": "{}"}])
    except ClientError as error:
        return error.response["ResponseMetadata"]["HTTPStatusCode"]
    return [delivery["event"]["detail-type"] for delivery in recorder.deliveries] if recorder else "no error"


def probe_eventbridge_disabled_rule() -> Any:
    sqs = _client("sqs")
    queue = sqs.create_queue(QueueName="disabled-rule")["QueueUrl"]
    _rule(
        "disabled",
        sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"],
        "DISABLED",
    )
    _client("events").put_events(Entries=[{"Source": "probe", "DetailType": "Probe", "Detail": "{}"}])
    return len(sqs.receive_message(QueueUrl=queue).get("Messages", []))


def probe_event_bus_ref() -> Any:
    """What an Output's Ref of a CloudFormation event bus gives."""
    template = {
        "Resources": {"Bus": {"Type": "AWS::Events::EventBus", "Properties": {"Name": "probe-bus"}}},
        "Outputs": {"BusName": {"Value": {"Ref": "Bus"}}},
    }
    cfn = _client("cloudformation")
    cfn.create_stack(StackName="bus-ref", TemplateBody=json.dumps(template))
    value = cfn.describe_stacks(StackName="bus-ref")["Stacks"][0]["Outputs"][0]["OutputValue"]
    return value if value == "probe-bus" else "an object's repr"


def probe_eventbridge_scheduled_rule() -> Any:
    """A rule with only a schedule receives no PutEvents event (its pattern is empty in moto)."""
    sqs = _client("sqs")
    queue = sqs.create_queue(QueueName="scheduled-rule")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events = _client("events")
    events.put_rule(Name="every-five-minutes", ScheduleExpression="rate(5 minutes)")
    events.put_targets(Rule="every-five-minutes", Targets=[{"Id": "q", "Arn": arn}])
    events.put_events(Entries=[{"Source": "probe", "DetailType": "Probe", "Detail": "{}"}])
    return len(sqs.receive_message(QueueUrl=queue).get("Messages", []))


def probe_execution_status_events(recorder: Recorder | None) -> Any:
    sqs = _client("sqs")
    queue = sqs.create_queue(QueueName="status-events")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    events = _client("events")
    events.put_rule(Name="statuses", EventPattern=json.dumps({"source": ["aws.states"]}))
    events.put_targets(Rule="statuses", Targets=[{"Id": "q", "Arn": queue_arn}])
    # The execution runs to its end before StartExecution returns: the race in which a short execution's
    # SUCCEEDED once went out before its RUNNING is then lost every time, not now and then.
    from moto.stepfunctions.parser.backend.execution_worker import ExecutionWorker

    run_in_thread = ExecutionWorker.start
    ExecutionWorker.start = ExecutionWorker._execution_logic
    try:
        _run_machine({"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}})
    finally:
        ExecutionWorker.start = run_in_thread
    if recorder:
        return recorder.statuses
    return len(sqs.receive_message(QueueUrl=queue).get("Messages", []))


def probe_dynamodb_request_isolation() -> Any:
    """A write made while a TransactWriteItems runs, and that transaction's condition then fails."""
    import threading

    from botocore.exceptions import ClientError
    from moto.dynamodb.models import DynamoDBBackend

    transactor, writer, reader = _client("dynamodb"), _client("dynamodb"), _client("dynamodb")
    reader.create_table(
        TableName="isolation",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    reader.put_item(TableName="isolation", Item={"pk": {"S": "taken"}})
    inside, resume = threading.Event(), threading.Event()
    outcome: dict[str, str] = {}
    original_put_item = DynamoDBBackend.put_item

    def put_item(self, table_name, item_attrs, *args, **kwargs):  # holds the transaction after its 1st write
        if item_attrs["pk"]["S"] == "first":
            inside.set()
            resume.wait(PROBE_SECONDS)
        return original_put_item(self, table_name, item_attrs, *args, **kwargs)

    def transaction() -> None:
        items = [
            {"Put": {"TableName": "isolation", "Item": {"pk": {"S": "first"}}}},
            {
                "Put": {
                    "TableName": "isolation",
                    "Item": {"pk": {"S": "taken"}},
                    "ConditionExpression": "attribute_not_exists(pk)",
                }
            },
        ]
        try:
            transactor.transact_write_items(TransactItems=items)
            outcome["transaction"] = "committed"
        except ClientError as error:
            outcome["transaction"] = error.response["Error"]["Code"]

    DynamoDBBackend.put_item = put_item
    try:
        transacting = threading.Thread(target=transaction)
        transacting.start()
        inside.wait(PROBE_SECONDS)
        writing = threading.Thread(
            target=lambda: writer.put_item(TableName="isolation", Item={"pk": {"S": "meanwhile"}})
        )
        writing.start()
        writing.join(1.0)  # an atomic transaction holds this write back until it has finished
        resume.set()
        transacting.join(PROBE_SECONDS)
        writing.join(PROBE_SECONDS)
    finally:
        DynamoDBBackend.put_item = original_put_item
    kept = reader.get_item(TableName="isolation", Key={"pk": {"S": "meanwhile"}}, ConsistentRead=True)
    return {**outcome, "write": "kept" if "Item" in kept else "lost"}


def probe_transaction_backup() -> Any:
    """A cancelled TransactWriteItems on a table of 300 items with a stream: what it copied, and what it
    left (DynamoDB: all or nothing, https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_TransactWriteItems.html)."""
    from botocore.exceptions import ClientError
    from moto.dynamodb.models.dynamo_type import Item

    ddb = _client("dynamodb")
    ddb.create_table(
        TableName="backup",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        BillingMode="PAY_PER_REQUEST",
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
    )
    for index in range(300):
        ddb.put_item(TableName="backup", Item={"pk": {"S": f"p{index}"}, "sk": {"S": "s"}, "n": {"N": "0"}})
    stream = ddb.describe_table(TableName="backup")["Table"]["LatestStreamArn"]
    streams = _client("dynamodbstreams")
    shard = streams.describe_stream(StreamArn=stream)["StreamDescription"]["Shards"][0]["ShardId"]
    iterator = streams.get_shard_iterator(StreamArn=stream, ShardId=shard, ShardIteratorType="TRIM_HORIZON")
    records_before = len(streams.get_records(ShardIterator=iterator["ShardIterator"], Limit=1000)["Records"])
    copies = []
    original = Item.__deepcopy__

    def counting(self: Any, memo: dict[int, Any]) -> Any:
        copies.append(1)
        return original(self, memo)

    Item.__deepcopy__ = counting
    try:
        ddb.transact_write_items(
            TransactItems=[
                {"Put": {"TableName": "backup", "Item": {"pk": {"S": "new"}, "sk": {"S": "s"}}}},
                {
                    "Update": {
                        "TableName": "backup",
                        "Key": {"pk": {"S": "p1"}, "sk": {"S": "s"}},
                        "UpdateExpression": "SET n = :one",
                        "ExpressionAttributeValues": {":one": {"N": "1"}},
                    }
                },
                {
                    "ConditionCheck": {
                        "TableName": "backup",
                        "Key": {"pk": {"S": "p2"}, "sk": {"S": "s"}},
                        "ConditionExpression": "attribute_not_exists(pk)",
                    }
                },
            ]
        )
        outcome = "committed"
    except ClientError as error:
        outcome = error.response["Error"]["Code"]
    finally:
        Item.__deepcopy__ = original
    iterator = streams.get_shard_iterator(StreamArn=stream, ShardId=shard, ShardIteratorType="TRIM_HORIZON")
    records_after = len(streams.get_records(ShardIterator=iterator["ShardIterator"], Limit=1000)["Records"])
    p1 = ddb.get_item(TableName="backup", Key={"pk": {"S": "p1"}, "sk": {"S": "s"}})["Item"]
    return {
        "outcome": outcome,
        "copied": "every item" if len(copies) >= 300 else f"{len(copies)} items",
        "put undone": "Item"
        not in ddb.get_item(TableName="backup", Key={"pk": {"S": "new"}, "sk": {"S": "s"}}),
        "update undone": p1["n"] == {"N": "0"},
        "new stream records": records_after - records_before,
        "items": ddb.scan(TableName="backup", Select="COUNT")["Count"],
    }


def probe_backend_lookups() -> Any:
    """How often three requests to one host list moto's services, and how often three requests list a
    response class's methods."""
    from moto import backends
    from moto.core import responses
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

    listed, named = [], []
    original_modules, original_names = backends.list_of_moto_modules, responses.method_names_from_class

    def modules() -> Any:
        listed.append(1)
        return original_modules()

    def names(clazz: object) -> list[str]:
        named.append(1)
        return original_names(clazz)

    backends.list_of_moto_modules = modules
    cached = getattr(original_names, "cache_info", None)  # the shim's cache stands in front of the listing
    if cached is None:
        responses.method_names_from_class = names
    try:
        app = DomainDispatcherApplication(create_backend_app)
        for _ in range(3):
            app.get_backend_for_host("dynamodb.us-east-1.amazonaws.com")
        misses = cached().misses if cached else 0
        for _ in range(3):
            _client("sqs").list_queues()
        listings = cached().misses - misses if cached else len(named)
    finally:
        backends.list_of_moto_modules, responses.method_names_from_class = original_modules, original_names
    return {"service listings": len(listed), "method listings": "at most one" if listings <= 1 else listings}


def probe_parse_per_execution() -> Any:
    """How many times two executions of one state machine parse its definition."""
    from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser

    parsed = []
    original = AmazonStateLanguageParser.parse

    def counting(definition: str) -> Any:
        parsed.append(definition)
        return original(definition)

    sfn = _client("stepfunctions")
    definition = {"StartAt": "P", "States": {"P": {"Type": "Pass", "Comment": "parse count", "End": True}}}
    machine = sfn.create_state_machine(
        name=f"m{time.monotonic_ns()}", definition=json.dumps(definition), roleArn=ROLE
    )["stateMachineArn"]
    AmazonStateLanguageParser.parse = staticmethod(counting)
    try:
        for run in ("first", "second"):
            _wait(sfn.start_execution(stateMachineArn=machine, name=run)["executionArn"])
    finally:
        AmazonStateLanguageParser.parse = staticmethod(original)
    return len(parsed)


def probe_jsonpath_parses() -> Any:
    """How many JSONPath parsers two executions of one state machine build (one per path evaluated)."""
    from jsonpath_ng.parser import JsonPathParser

    built = []
    original = JsonPathParser.__init__

    def counting(self: Any, *args: Any, **kwargs: Any) -> None:
        built.append(type(self).__name__)
        original(self, *args, **kwargs)

    sfn = _client("stepfunctions")
    state = {
        "Type": "Pass",
        "InputPath": "$.jsonpathProbe",
        "Parameters": {"b.$": "$.inner"},
        "ResultPath": "$.jsonpathResult",
        "End": True,
    }
    definition = {"StartAt": "P", "States": {"P": state}}
    machine = sfn.create_state_machine(
        name=f"m{time.monotonic_ns()}", definition=json.dumps(definition), roleArn=ROLE
    )["stateMachineArn"]
    JsonPathParser.__init__ = counting
    try:
        for run in ("first", "second"):
            arn = sfn.start_execution(
                stateMachineArn=machine, name=run, input='{"jsonpathProbe": {"inner": 1}}'
            )["executionArn"]
            _wait(arn)
    finally:
        JsonPathParser.__init__ = original
    return len(built)


def probe_cloudformation_describe_during_create() -> Any:
    """DescribeStacks and ListStackResources from another thread while CreateStack is still creating."""
    import threading

    from moto.sqs.models import Queue

    creating, read = threading.Event(), threading.Event()
    original = Queue.create_from_cloudformation_json.__func__
    seen: dict[str, Any] = {}

    def slow_second(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):
        if "Second" in resource_name and not creating.is_set():
            creating.set()
            read.wait(PROBE_SECONDS)  # creating Second waits here until the other thread has read the stack
        return original(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs)

    def reader() -> None:
        creating.wait(PROBE_SECONDS)
        cfn = _client("cloudformation")
        stack = cfn.describe_stacks(StackName="racing")["Stacks"][0]
        seen["outputs while creating"] = bool(stack.get("Outputs"))
        seen["resources listed"] = len(cfn.list_stack_resources(StackName="racing")["StackResourceSummaries"])
        read.set()

    template = {
        "Resources": {
            "First": {"Type": "AWS::SQS::Queue"},
            "Second": {"Type": "AWS::SQS::Queue", "DependsOn": "First"},
        },
        "Outputs": {"SecondUrl": {"Value": {"Ref": "Second"}}},
    }
    Queue.create_from_cloudformation_json = classmethod(slow_second)
    thread = threading.Thread(target=reader)
    thread.start()
    try:
        _client("cloudformation").create_stack(StackName="racing", TemplateBody=json.dumps(template))
    finally:
        thread.join()
        Queue.create_from_cloudformation_json = classmethod(original)
    queues = _client("sqs").list_queues().get("QueueUrls", [])
    outputs = _client("cloudformation").describe_stacks(StackName="racing")["Stacks"][0]["Outputs"]
    return {
        **seen,
        "queues": len(queues),
        "output names a queue of the stack": outputs[0]["OutputValue"]
        in [
            r["PhysicalResourceId"]
            for r in _client("cloudformation").list_stack_resources(StackName="racing")[
                "StackResourceSummaries"
            ]
        ],
    }


def probe_ecs_inactive_task_definition() -> Any:
    """RunTask of a deregistered revision, and of its family once no revision is ACTIVE."""
    ecs_setup = _fargate()
    ecs = _client("ecs")
    ecs.deregister_task_definition(taskDefinition=ecs_setup["definition"])
    network = {
        "awsvpcConfiguration": {"subnets": [ecs_setup["subnet"]], "securityGroups": [ecs_setup["group"]]}
    }
    outcomes = []
    for definition in (ecs_setup["definition"], "probe"):
        try:
            ecs.run_task(
                cluster="probe", taskDefinition=definition, launchType="FARGATE", networkConfiguration=network
            )
            outcomes.append("started")
        except Exception as error:
            details = getattr(error, "response", {}).get("Error", {})
            outcomes.append(f"{details.get('Code')}: {details.get('Message')}")
    return outcomes


def probe_ecs_integration_error_names() -> Any:
    """The error a run-task state reports for an ECS API error, and for a RunTask answered with failures."""
    from moto.core.responses import ActionResult
    from moto.ecs.responses import EC2ContainerServiceResponse

    ecs = _fargate()
    unknown = {**ecs, "definition": "no-such-family:1"}
    api_error = _run_machine(
        {"StartAt": "Run", "States": {"Run": _run_task_state(unknown, LaunchType="FARGATE")}}
    )
    original = EC2ContainerServiceResponse.run_task
    failure = {
        "arn": "arn:aws:ecs:us-east-1:123456789012:task-definition/probe:1",
        "reason": "Capacity is unavailable at this time. Please try again later or in a different "
        "availability zone",
    }
    EC2ContainerServiceResponse.run_task = lambda self: ActionResult({"tasks": [], "failures": [failure]})
    try:
        failures = _run_machine(
            {"StartAt": "Run", "States": {"Run": _run_task_state(ecs, LaunchType="FARGATE")}}
        )
    finally:
        EC2ContainerServiceResponse.run_task = original
    return {"api error": api_error["error"], "failures": failures["error"]}


def probe_composite_alarms() -> Any:
    """PutCompositeAlarm, then the alarm as DescribeAlarms lists it (API_PutCompositeAlarm.html)."""
    cloudwatch = _client("cloudwatch")
    cloudwatch.put_metric_alarm(
        AlarmName="dlq",
        Namespace="AWS/SQS",
        MetricName="ApproximateNumberOfMessagesVisible",
        Statistic="Maximum",
        Period=60,
        EvaluationPeriods=1,
        Threshold=0,
        ComparisonOperator="GreaterThanThreshold",
    )
    try:
        cloudwatch.put_composite_alarm(AlarmName="ops", AlarmRule='ALARM("dlq")', OKActions=["arn:topic"])
    except Exception as error:
        return type(error).__name__
    found = cloudwatch.describe_alarms(AlarmTypes=["CompositeAlarm"])["CompositeAlarms"]
    return [[alarm["AlarmName"], alarm["AlarmRule"], alarm["OKActions"]] for alarm in found]


def probe_query_definitions() -> Any:
    """PutQueryDefinition and DescribeQueryDefinitions by name prefix (API_PutQueryDefinition.html)."""
    logs = _client("logs")
    try:
        logs.put_query_definition(name="stack/slow", queryString="fields @message", logGroupNames=["g"])
    except Exception as error:
        return type(error).__name__
    found = logs.describe_query_definitions(queryDefinitionNamePrefix="stack/")["queryDefinitions"]
    return [[d["name"], d["logGroupNames"]] for d in found]


def probe_fargate_quota() -> Any:
    """The Fargate vCPU quota, then an increase (API_GetServiceQuota, API_RequestServiceQuotaIncrease)."""
    quotas = _client("service-quotas")
    try:
        before = quotas.get_service_quota(ServiceCode="fargate", QuotaCode="L-3032A538")["Quota"]["Value"]
    except Exception as error:
        return type(error).__name__
    quotas.request_service_quota_increase(ServiceCode="fargate", QuotaCode="L-3032A538", DesiredValue=40)
    after = quotas.get_service_quota(ServiceCode="fargate", QuotaCode="L-3032A538")["Quota"]["Value"]
    return [before, after]


def probe_cloudformation_drift_detection() -> Any:
    """A retention changed by hand is drift (using-cfn-stack-drift.html, API_DetectStackDrift.html)."""
    cloudformation, logs = _client("cloudformation"), _client("logs")
    template = {
        "Resources": {"Group": {"Type": "AWS::Logs::LogGroup", "Properties": {"RetentionInDays": 30}}}
    }
    cloudformation.create_stack(StackName="drifting", TemplateBody=json.dumps(template))
    group = cloudformation.describe_stack_resource(StackName="drifting", LogicalResourceId="Group")
    logs.put_retention_policy(
        logGroupName=group["StackResourceDetail"]["PhysicalResourceId"], retentionInDays=7
    )
    try:
        detection = cloudformation.detect_stack_drift(StackName="drifting")["StackDriftDetectionId"]
    except Exception as error:
        return type(error).__name__
    status = cloudformation.describe_stack_drift_detection_status(StackDriftDetectionId=detection)
    drifts = cloudformation.describe_stack_resource_drifts(StackName="drifting")["StackResourceDrifts"]
    return [status["StackDriftStatus"], [[d["PropertyDifferences"][0]["PropertyPath"]] for d in drifts]]


def probe_cloudformation_log_group_kms_key() -> Any:
    """A log group created from a template with KmsKeyId is encrypted with it (AWS::Logs::LogGroup)."""
    cloudformation, logs = _client("cloudformation"), _client("logs")
    key = "arn:aws:kms:us-east-1:123456789012:key/probe"
    template = {"Resources": {"Group": {"Type": "AWS::Logs::LogGroup", "Properties": {"KmsKeyId": key}}}}
    cloudformation.create_stack(StackName="encrypted-logs", TemplateBody=json.dumps(template))
    group = cloudformation.describe_stack_resource(StackName="encrypted-logs", LogicalResourceId="Group")
    name = group["StackResourceDetail"]["PhysicalResourceId"]
    return logs.describe_log_groups(logGroupNamePrefix=name)["logGroups"][0].get("kmsKeyId")


def probe_message_move_tasks() -> Any:
    """A DLQ's messages moved back to the queue that feeds it (API_StartMessageMoveTask.html)."""
    import time

    sqs = _client("sqs")
    dlq = sqs.create_queue(QueueName="move-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    policy = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 5})
    source = sqs.create_queue(QueueName="move-source", Attributes={"RedrivePolicy": policy})["QueueUrl"]
    for body in ("one", "two"):
        sqs.send_message(QueueUrl=dlq, MessageBody=body)
    try:
        sqs.start_message_move_task(SourceArn=dlq_arn)
    except Exception as error:
        return type(error).__name__
    deadline = time.monotonic() + PROBE_SECONDS
    while (task := sqs.list_message_move_tasks(SourceArn=dlq_arn)["Results"][0])["Status"] == "RUNNING":
        assert time.monotonic() < deadline, task
        time.sleep(0.05)
    moved = sqs.receive_message(QueueUrl=source, MaxNumberOfMessages=10).get("Messages", [])
    return {"status": task["Status"], "moved": sorted(m["Body"] for m in moved)}


SPOT_STRATEGY = [
    {"capacityProvider": "FARGATE", "base": 1, "weight": 1},
    {"capacityProvider": "FARGATE_SPOT", "base": 0, "weight": 4},
]


def probe_ecs_service_capacity_provider_strategy() -> Any:
    """CreateService keeps the capacity provider strategy, and a service with one has no launch type."""
    ecs = _fargate()
    client = _client("ecs")
    client.create_service(
        cluster=ecs["cluster"],
        serviceName="strategy",
        taskDefinition=ecs["definition"],
        desiredCount=0,
        capacityProviderStrategy=SPOT_STRATEGY,
    )
    service = client.describe_services(cluster=ecs["cluster"], services=["strategy"])["services"][0]
    return {
        "strategy": [item["capacityProvider"] for item in service.get("capacityProviderStrategy", [])],
        "launchType": service.get("launchType"),
    }


def probe_ecs_service_counts_after_update() -> Any:
    """UpdateService's desiredCount is not a count of running tasks (none run here: no scheduler)."""
    ecs = _fargate()
    client = _client("ecs")
    client.create_service(
        cluster=ecs["cluster"], serviceName="counts", taskDefinition=ecs["definition"], desiredCount=0
    )
    client.update_service(cluster=ecs["cluster"], service="counts", desiredCount=2)
    service = client.describe_services(cluster=ecs["cluster"], services=["counts"])["services"][0]
    return {"desired": service["desiredCount"], "running": service["runningCount"]}


def probe_ecs_task_protection() -> Any:
    """UpdateTaskProtection protects a service's task (120 minutes by default), not a standalone one."""
    ecs = _fargate()
    client = _client("ecs")
    network = {"awsvpcConfiguration": {"subnets": [ecs["subnet"]], "securityGroups": [ecs["group"]]}}
    tasks = [
        client.run_task(
            cluster=ecs["cluster"],
            taskDefinition=ecs["definition"],
            launchType="FARGATE",
            networkConfiguration=network,
            **({"startedBy": started_by} if started_by else {}),
        )["tasks"][0]["taskArn"]
        for started_by in ("ecs-svc/1234567890", None)
    ]
    try:
        answer = client.update_task_protection(cluster=ecs["cluster"], tasks=tasks, protectionEnabled=True)
    except Exception as error:
        return type(error).__name__
    protected = answer["protectedTasks"][0]
    minutes = (protected["expirationDate"].timestamp() - time.time()) / 60
    read = client.get_task_protection(cluster=ecs["cluster"], tasks=tasks[:1])["protectedTasks"][0]
    return {
        "protected": protected["protectionEnabled"] and read["protectionEnabled"],
        "minutes": round(minutes),
        "standalone": [failure["reason"] for failure in answer["failures"]],
    }


def probe_describe_scaling_activities() -> Any:
    try:
        answer = _client("application-autoscaling").describe_scaling_activities(ServiceNamespace="ecs")
    except Exception as error:
        return type(error).__name__
    return answer["ScalingActivities"]


# Probes that need other gaps closed before they can show their own: name -> shims applied first.
PREREQUISITES = {
    "capacity_provider_strategy": ["shim_integration_casing"],
    "ecs_integration_error_names": ["shim_integration_casing"],
    "cloudformation_state_machine_observability": ["shim_cloudformation_state_machines"],
}
NEEDS_RECORDER = {
    "s3_notification_invocation",
    "eventbridge_lambda_target",
    "execution_status_events",
}


def run_probes(patched: bool, names: list[str]) -> dict[str, Any]:
    from moto import mock_aws

    from browserjobs.emulator import shims

    recorder = Recorder() if patched else None
    if patched:
        shims.apply()
    results = {}
    for name in names:
        if not patched:
            for shim in PREREQUISITES.get(name, []):
                (getattr(shims.stepfunctions, shim, None) or getattr(shims.cloudformation, shim))()
        if recorder:
            shims.install_hooks(recorder)
            recorder.__init__()
        with mock_aws(config=SFN_CONFIG):
            probe = globals()[f"probe_{name}"]
            try:
                results[name] = probe(recorder) if name in NEEDS_RECORDER else probe()
            except Exception as error:  # a probe that fails outright reports how
                results[name] = f"{type(error).__name__}: {error}"
        shims.install_hooks(None)
    return results


# --- the tests ------------------------------------------------------------------------------------------

PROBES = sorted(name.removeprefix("probe_") for name in list(globals()) if name.startswith("probe_"))


def _observe(patched: bool, names: list[str]) -> dict[str, Any]:
    env = {
        "PATH": os.environ.get("PATH", ""),
        "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT), str(ROOT / "functions" / "shared")]),
        "AWS_ACCESS_KEY_ID": "probe",
        "AWS_SECRET_ACCESS_KEY": "probe",
        "AWS_DEFAULT_REGION": "us-east-1",
        "MOTO_ALLOW_NONEXISTENT_REGION": "true",
    }
    args = [sys.executable, __file__, "--patched" if patched else "--pristine", *names]
    completed = subprocess.run(
        args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    return json.loads(completed.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def pristine() -> dict[str, Any]:
    """What moto does without any shim (except those a probe lists as prerequisites, applied one by one)."""
    plain = [name for name in PROBES if name not in PREREQUISITES]
    observed = _observe(patched=False, names=plain)
    for name in PREREQUISITES:
        observed.update(_observe(patched=False, names=[name]))
    return observed


@pytest.fixture(scope="module")
def shimmed() -> dict[str, Any]:
    return _observe(patched=True, names=PROBES)


_NO_DNS = "AttributeError: 'NetworkInterface' object has no attribute 'private_dns_name'"
# probe -> (what moto still does, what AWS does and the shim gives)
EXPECTED: dict[str, tuple[Any, Any]] = {
    "message_move_tasks": ("NotImplementedError", {"status": "COMPLETED", "moved": ["one", "two"]}),
    "cloudformation_state_machine_observability": (
        ["OFF", [], False],
        ["ALL", ["arn:aws:logs:us-east-1:123456789012:log-group:machine:*"], True],
    ),
    "cloudformation_table_point_in_time_recovery": ("DISABLED", "ENABLED"),
    "composite_alarms": ("NotImplementedError", [["ops", 'ALARM("dlq")', ["arn:topic"]]]),
    "query_definitions": ("NotImplementedError", [["stack/slow", ["g"]]]),
    "fargate_quota": ("NoSuchResourceException", [6.0, 40.0]),
    "cloudformation_drift_detection": ("NotImplementedError", ["DRIFTED", [["/RetentionInDays"]]]),
    "cloudformation_log_group_kms_key": (None, "arn:aws:kms:us-east-1:123456789012:key/probe"),
    "ecs_integration_casing": (
        {"status": "FAILED", "has_tasks": False},
        {"status": "SUCCEEDED", "has_tasks": True},
    ),
    "aws_sdk_integration_casing": ("FAILED", "SUCCEEDED"),
    "capacity_provider_strategy": ("FAILED", "SUCCEEDED"),
    "send_task_failure_cause": (None, "HTTP 503"),
    "heartbeat_timeout_error_name": ("States.Timeout", "States.HeartbeatTimeout"),
    "early_heartbeat": ("InvalidToken", "accepted"),
    "stop_execution_while_waiting": (
        {"status": "FAILED", "last event": "ExecutionFailed"},
        {"status": "ABORTED", "last event": "ExecutionAborted"},
    ),
    "callback_token_per_attempt": (
        {"new token": False, "second callback": "InvalidToken", "status": "FAILED"},
        {"new token": True, "second callback": "accepted", "status": "SUCCEEDED"},
    ),
    "choice_context_object_path": ("FAILED", {"branch": "yes"}),
    "fractional_timestamp_comparison": ({"branch": "no"}, {"branch": "yes"}),
    "entered_time_format": ({"ends_with_z": False, "length": 32}, {"ends_with_z": True, "length": 24}),
    "cloudformation_state_machine": ("not executable", {"greeting": "hello"}),
    "cloudformation_bucket_notifications": ([], ["QueueConfigurations"]),
    "cloudformation_role_managed_policies": (
        [],
        ["arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"],
    ),
    "cloudformation_task_definition_properties": (
        {"kept": [], "tags": []},
        {
            "kept": sorted(TASK_DEFINITION_KEPT),
            "tags": ["team"],
        },
    ),
    "cloudformation_ecs_service_properties": (
        {
            "desiredCount": 2,
            "launchType": "EC2",
            "capacityProviders": [],
            "subnets": 0,
            "circuitBreaker": None,
            "tags": ["NONE", False],
        },
        {
            "desiredCount": 2,
            "launchType": None,
            "capacityProviders": ["FARGATE", "FARGATE_SPOT"],
            "subnets": 1,
            "circuitBreaker": {"enable": True, "rollback": True},
            "tags": ["TASK_DEFINITION", True],
        },
    ),
    "ecs_task_advances_per_describe": ("STOPPED", "RUNNING"),
    "ecs_memory_from_cloudformation_parameter": (
        "TypeError: unsupported operand type(s) for +=: 'int' and 'str'",
        "started",
    ),
    "ecs_awsvpc_without_dns_hostnames": (_NO_DNS, _NO_DNS),
    "lambda_invoke": ("Handled", "Unhandled"),
    "s3_notification_invocation": (["RequestResponse (none given)"], ["Event"]),
    "sqs_event_source_mapping": (2, 1),
    "eventbridge_lambda_target": (
        "NotImplementedError: Expr not defined for <class 'moto.events.models.Rule'>",
        ["Probe"],
    ),
    "eventbridge_disabled_rule": (1, 0),
    "event_bus_ref": ("an object's repr", "probe-bus"),
    "eventbridge_scheduled_rule": (1, 0),
    "execution_status_events": (0, ["RUNNING", "SUCCEEDED"]),
    "dynamodb_request_isolation": (
        {"transaction": "TransactionCanceledException", "write": "lost"},
        {"transaction": "TransactionCanceledException", "write": "kept"},
    ),
    "parse_per_execution": (2, 1),
    "backend_lookups": (
        {"service listings": 3, "method listings": 3},
        {"service listings": 1, "method listings": "at most one"},
    ),
    "transaction_backup": (
        {
            "outcome": "TransactionCanceledException",
            "copied": "every item",
            "put undone": True,
            "update undone": True,
            "new stream records": 0,
            "items": 300,
        },
        {
            "outcome": "TransactionCanceledException",
            "copied": "3 items",
            "put undone": True,
            "update undone": True,
            "new stream records": 0,
            "items": 300,
        },
    ),
    "jsonpath_parses": (6, 3),  # three paths: each parsed per evaluation, or once
    "cloudformation_describe_during_create": (
        {
            "outputs while creating": True,
            "resources listed": 2,
            "queues": 3,
            "output names a queue of the stack": False,
        },
        {
            "outputs while creating": False,
            "resources listed": 1,
            "queues": 2,
            "output names a queue of the stack": True,
        },
    ),
    "ecs_inactive_task_definition": (
        ["started", "started"],
        ["ClientException: TaskDefinition is inactive"] * 2,
    ),
    "ecs_integration_error_names": (
        {"api error": "States.Runtime", "failures": "States.Runtime"},
        {"api error": "ECS.AmazonECSException", "failures": "AmazonECS.Unknown"},
    ),
    "ecs_service_capacity_provider_strategy": (
        {"strategy": [], "launchType": "EC2"},
        {"strategy": ["FARGATE", "FARGATE_SPOT"], "launchType": None},
    ),
    "ecs_service_counts_after_update": ({"desired": 2, "running": 2}, {"desired": 2, "running": 0}),
    "ecs_task_protection": (
        "NotImplementedError",
        {"protected": True, "minutes": 120, "standalone": ["TASK_NOT_VALID"]},
    ),
    "describe_scaling_activities": ("NotImplementedError", []),
}


def test_every_probe_has_expectations() -> None:
    assert sorted(EXPECTED) == PROBES


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_moto_still_has_the_gap(pristine: dict[str, Any], name: str) -> None:
    assert pristine[name] == EXPECTED[name][0], (
        f"moto changed: {name} now gives {pristine[name]!r}; is the shim still needed?"
    )


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_the_shim_closes_the_gap(shimmed: dict[str, Any], name: str) -> None:
    assert shimmed[name] == EXPECTED[name][1]


def test_the_local_network_lets_awsvpc_tasks_start() -> None:
    """The gap above is met by the network the local stack creates: a VPC with DNS hostnames on."""
    import boto3
    from moto import mock_aws

    from browserjobs.emulator.deploy import create_network

    with mock_aws():
        session = boto3.Session(aws_access_key_id="x", aws_secret_access_key="x", region_name="us-east-1")
        network = create_network(session, endpoint_url=None)
        attribute = session.client("ec2").describe_vpc_attribute(
            VpcId=network.vpc_id, Attribute="enableDnsHostnames"
        )
        assert attribute["EnableDnsHostnames"]["Value"] is True


def test_a_resource_type_without_moto_model_or_stand_in_stops_the_deploy() -> None:
    from browserjobs.emulator import unsupported

    template = {
        "Resources": {
            "Schedule": {"Type": "AWS::Scheduler::Schedule"},
            "Policy": {"Type": "AWS::S3::BucketPolicy"},
        }
    }
    with pytest.raises(NotImplementedError, match=r"AWS::Scheduler::Schedule; add a stand-in"):
        unsupported.stand_in(template)
    listed = {stand_in.resource_type for stand_in in unsupported.STAND_INS}
    assert unsupported.stand_in({"Resources": {t: {"Type": t} for t in listed}})
    assert all(stand_in.why for stand_in in unsupported.STAND_INS)


if __name__ == "__main__":
    print(json.dumps(run_probes(patched=sys.argv[1] == "--patched", names=sys.argv[2:]), default=str))
