"""A small stack for the operator tools' tests: the real intake behind a moto endpoint.

It carries every Output the CLI and the inspector read, the tables/queues/bucket/key they touch, the
real intake function (run by the local Lambda runtime, so `submit --direct` and redrive start real
executions) and a compact state machine of the job workflow's shape (lock check, claim, browser task,
success or failure) built from Pass/Choice/Wait states, so executions finish in moto without ECS.
"""

from __future__ import annotations

import io
import json
import uuid
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3

from local.deploy import FunctionSource
from local.endpoint import Endpoint
from local.lambda_runtime import LambdaRuntime
from local.moto_gaps import InvokeResult, install_hooks
from local.processes import Launcher, LogSink

ROOT = Path(__file__).resolve().parents[2]
REGION = "us-east-1"
HOSTILE = '<img src=x onerror="document.body.dataset.pwned=1">'

# Lock keys steer the path: "wait…" waits for the lock first, "fail…" fails in the browser task.
WORKFLOW: dict[str, Any] = {
    "Comment": "The job workflow's shape, for the operator tools' tests",
    "StartAt": "CheckLock",
    "States": {
        "CheckLock": {"Type": "Pass", "ResultPath": "$.lock", "Result": {"held": False}, "Next": "LockFound"},
        "LockFound": {"Type": "Choice", "Choices": [
            {"Variable": "$.lockKey", "StringMatches": "wait*", "Next": "WaitForLock"}], "Default": "Claim"},
        "WaitForLock": {"Type": "Wait", "Seconds": 3, "Next": "Claim"},
        "Claim": {"Type": "Pass", "ResultPath": "$.claim", "Result": {"outcome": "CLAIMED", "slot": 0},
                  "Next": "RunBrowserTask"},
        "RunBrowserTask": {"Type": "Pass", "ResultPath": "$.task", "Result": {"status": "DONE"},
                           "Next": "TaskOutcome"},
        "TaskOutcome": {"Type": "Choice", "Choices": [
            {"Variable": "$.lockKey", "StringMatches": "fail*", "Next": "MarkFailed"}],
            "Default": "RecordSuccess"},
        "RecordSuccess": {"Type": "Pass", "Next": "Succeeded"},
        "Succeeded": {"Type": "Succeed"},
        "MarkFailed": {"Type": "Pass", "Next": "JobFailed"},
        "JobFailed": {"Type": "Fail", "Error": "Site.ServerError", "Cause": f"HTTP 503 from {HOSTILE}"},
    },
}


class IntakeHooks:
    """The local stack's runtime hooks, narrowed to what these tests use: Lambda invocations."""

    def __init__(self, runtime: LambdaRuntime):
        self.runtime = runtime

    def invoke_function(self, function: Any, payload: bytes, invocation_type: str) -> InvokeResult:
        return self.runtime.invoke(function, payload, invocation_type)

    def task_started(self, task: Any) -> None:
        raise AssertionError("the operator stack runs no ECS tasks")

    def stop_task(self, task: Any, reason: str) -> bool:
        return False

    def execution_status_changed(self, execution: Any) -> None:
        pass  # no EventBridge rules here

    def deliver_to_target(self, rule: Any, target: dict[str, Any], event: Any) -> None:
        pass


@dataclass
class OperatorStack:
    url: str
    name: str
    outputs: dict[str, str]

    def client(self, service: str) -> Any:
        return boto3.client(service, endpoint_url=self.url, region_name=REGION,
                            aws_access_key_id="test", aws_secret_access_key="test")

    def table(self, output: str) -> Any:
        return boto3.resource("dynamodb", endpoint_url=self.url, region_name=REGION,
                              aws_access_key_id="test", aws_secret_access_key="test").Table(self.outputs[output])


def _zip(folder: Path) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for path in folder.rglob("*.py"):
            archive.write(path, path.relative_to(folder))
    return buffer.getvalue()


TEMPLATE: dict[str, Any] = {
    "Resources": {
        "JobsTable": {"Type": "AWS::DynamoDB::Table", "Properties": {
            "BillingMode": "PAY_PER_REQUEST",
            "AttributeDefinitions": [{"AttributeName": "jobId", "AttributeType": "S"},
                                     {"AttributeName": "status", "AttributeType": "S"},
                                     {"AttributeName": "updatedAt", "AttributeType": "S"}],
            "KeySchema": [{"AttributeName": "jobId", "KeyType": "HASH"}],
            "GlobalSecondaryIndexes": [{"IndexName": "byStatus", "Projection": {"ProjectionType": "ALL"},
                                        "KeySchema": [{"AttributeName": "status", "KeyType": "HASH"},
                                                      {"AttributeName": "updatedAt", "KeyType": "RANGE"}]}]}},
        "LocksTable": {"Type": "AWS::DynamoDB::Table", "Properties": {
            "BillingMode": "PAY_PER_REQUEST", "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
            "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}]}},
        "SessionsTable": {"Type": "AWS::DynamoDB::Table", "Properties": {
            "BillingMode": "PAY_PER_REQUEST",
            "AttributeDefinitions": [{"AttributeName": "account", "AttributeType": "S"}],
            "KeySchema": [{"AttributeName": "account", "KeyType": "HASH"}]}},
        "IntakeQueue": {"Type": "AWS::SQS::Queue"},
        "JobDeadLetterQueue": {"Type": "AWS::SQS::Queue"},
        "InterruptQueue": {"Type": "AWS::SQS::Queue"},
        "ArtifactsBucket": {"Type": "AWS::S3::Bucket"},
        "Key": {"Type": "AWS::KMS::Key", "Properties": {"KeyPolicy": {"Version": "2012-10-17", "Statement": []}}},
    },
    "Parameters": {"StateMachineArn": {"Type": "String"}, "IntakeFunctionName": {"Type": "String"}},
    "Outputs": {
        "StateMachineArn": {"Value": {"Ref": "StateMachineArn"}},
        "IntakeFunctionName": {"Value": {"Ref": "IntakeFunctionName"}},
        "JobsTableName": {"Value": {"Ref": "JobsTable"}},
        "LocksTableName": {"Value": {"Ref": "LocksTable"}},
        "SessionsTableName": {"Value": {"Ref": "SessionsTable"}},
        "IntakeQueueUrl": {"Value": {"Ref": "IntakeQueue"}},
        "DeadLetterQueueUrl": {"Value": {"Ref": "JobDeadLetterQueue"}},
        "InterruptQueueUrl": {"Value": {"Ref": "InterruptQueue"}},
        "ArtifactsBucketName": {"Value": {"Ref": "ArtifactsBucket"}},
        "KmsKeyArn": {"Value": {"Fn::GetAtt": ["Key", "Arn"]}},
    },
}


def deploy(url: str, name: str) -> OperatorStack:
    session = boto3.Session(aws_access_key_id="test", aws_secret_access_key="test", region_name=REGION)
    sfn = session.client("stepfunctions", endpoint_url=url)
    iam = session.client("iam", endpoint_url=url)
    role = iam.create_role(RoleName=f"{name}-role", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    machine = sfn.create_state_machine(name=f"{name}-jobs", definition=json.dumps(WORKFLOW), roleArn=role,
                                       type="STANDARD")["stateMachineArn"]
    cfn = session.client("cloudformation", endpoint_url=url)
    function_name = f"{name}-intake"
    cfn.create_stack(StackName=name, TemplateBody=json.dumps(TEMPLATE), Parameters=[
        {"ParameterKey": "StateMachineArn", "ParameterValue": machine},
        {"ParameterKey": "IntakeFunctionName", "ParameterValue": function_name}])
    outputs = {o["OutputKey"]: o["OutputValue"]
               for o in cfn.describe_stacks(StackName=name)["Stacks"][0]["Outputs"]}
    session.client("lambda", endpoint_url=url).create_function(
        FunctionName=function_name, Runtime="python3.13", Role=role, Handler="app.lambda_handler",
        Code={"ZipFile": _zip(ROOT / "functions" / "intake")}, Timeout=30,
        Environment={"Variables": {
            "POWERTOOLS_SERVICE_NAME": "browserjobs", "POWERTOOLS_METRICS_NAMESPACE": "BrowserJobs",
            "JOBS_TABLE": outputs["JobsTableName"], "LOCKS_TABLE": outputs["LocksTableName"],
            "ARTIFACTS_BUCKET": outputs["ArtifactsBucketName"], "STATE_MACHINE_ARN": machine,
            "JOB_DLQ_URL": outputs["DeadLetterQueueUrl"]}},
    )
    return OperatorStack(url, name, outputs)


class StackEnvironment:
    """The endpoint, the runtime that runs intake, and the stacks deployed on it."""

    def __init__(self, log_folder: Path):
        self.endpoint = Endpoint(port=0)
        self.url = self.endpoint.start()
        self.launcher = Launcher()
        self.runtime = LambdaRuntime(self.launcher, LogSink(log_folder), self.url)
        install_hooks(IntakeHooks(self.runtime))

    def deploy(self) -> OperatorStack:
        name = f"ops-{uuid.uuid4().hex[:8]}"
        stack = deploy(self.url, name)
        self.runtime.register_sources({f"{name}-intake": FunctionSource(
            code_dir=ROOT / "functions" / "intake", layer_dirs=(ROOT / "functions" / "shared",))})
        return stack

    def stop(self) -> None:
        install_hooks(None)
        self.runtime.stop()
        self.launcher.stop()
        self.endpoint.stop()
