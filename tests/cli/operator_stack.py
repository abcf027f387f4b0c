"""A small stack for the operator tools' tests: the real intake and cleanup behind a moto endpoint.

It carries every Output the CLI and the inspector read, the tables/queues/bucket/key they touch, the
real intake and cleanup functions (run by the local Lambda runtime, so `submit --direct` and redrive
start real executions and `locks purge-expired` runs the real sweep) and a compact state machine of
the job workflow's shape (lock check, claim, browser task, success or failure) built from
Pass/Choice/Wait states, so executions finish in moto without ECS.
"""

from __future__ import annotations

import io
import json
import struct
import time
import uuid
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3

from browserjobs.emulator.deploy import FunctionSource
from browserjobs.emulator.endpoint import Endpoint
from browserjobs.emulator.lambda_runtime import LambdaRuntime
from browserjobs.emulator.processes import Launcher, LogSink
from browserjobs.emulator.shims import InvokeResult, install_hooks

ROOT = Path(__file__).resolve().parents[2]
REGION = "us-east-1"
HOSTILE = '<img src=x onerror="document.body.dataset.pwned=1">'

# Lock keys steer the path: "wait…" waits 3 s for the lock first, "hold…" waits 10 minutes (an execution
# that is still running whenever a test looks), "fail…" fails in the browser task.
WORKFLOW: dict[str, Any] = {
    "Comment": "The job workflow's shape, for the operator tools' tests",
    "StartAt": "CheckLock",
    "States": {
        "CheckLock": {"Type": "Pass", "ResultPath": "$.lock", "Result": {"held": False}, "Next": "LockFound"},
        "LockFound": {
            "Type": "Choice",
            "Choices": [
                {"Variable": "$.lockKey", "StringMatches": "wait*", "Next": "WaitForLock"},
                {"Variable": "$.lockKey", "StringMatches": "hold*", "Next": "HoldForLock"},
            ],
            "Default": "Claim",
        },
        "WaitForLock": {"Type": "Wait", "Seconds": 3, "Next": "Claim"},
        "HoldForLock": {"Type": "Wait", "Seconds": 600, "Next": "Claim"},
        "Claim": {
            "Type": "Pass",
            "ResultPath": "$.claim",
            "Result": {"outcome": "CLAIMED", "slot": 0},
            "Next": "RunBrowserTask",
        },
        "RunBrowserTask": {
            "Type": "Pass",
            "ResultPath": "$.task",
            "Result": {"status": "DONE"},
            "Next": "TaskOutcome",
        },
        "TaskOutcome": {
            "Type": "Choice",
            "Choices": [{"Variable": "$.lockKey", "StringMatches": "fail*", "Next": "MarkFailed"}],
            "Default": "RecordSuccess",
        },
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

    def execution_status_changed(self, execution: Any, status: str) -> None:
        pass  # no EventBridge rules here

    def deliver_to_target(self, rule: Any, target: dict[str, Any], event: Any) -> None:
        pass


@dataclass
class OperatorStack:
    url: str
    name: str
    outputs: dict[str, str]

    def client(self, service: str) -> Any:
        return boto3.client(
            service,
            endpoint_url=self.url,
            region_name=REGION,
            aws_access_key_id="test",
            aws_secret_access_key="test",
        )

    def table(self, output: str) -> Any:
        dynamodb = boto3.resource(
            "dynamodb",
            endpoint_url=self.url,
            region_name=REGION,
            aws_access_key_id="test",
            aws_secret_access_key="test",
        )
        return dynamodb.Table(self.outputs[output])


def _zip(folder: Path) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for path in folder.rglob("*.py"):
            archive.write(path, path.relative_to(folder))
    return buffer.getvalue()


TEMPLATE: dict[str, Any] = {
    "Resources": {
        "JobsTable": {
            "Type": "AWS::DynamoDB::Table",
            "Properties": {
                "BillingMode": "PAY_PER_REQUEST",
                "AttributeDefinitions": [
                    {"AttributeName": "jobId", "AttributeType": "S"},
                    {"AttributeName": "status", "AttributeType": "S"},
                    {"AttributeName": "updatedAt", "AttributeType": "S"},
                ],
                "KeySchema": [{"AttributeName": "jobId", "KeyType": "HASH"}],
                "GlobalSecondaryIndexes": [
                    {
                        "IndexName": "byStatus",
                        "Projection": {"ProjectionType": "ALL"},
                        "KeySchema": [
                            {"AttributeName": "status", "KeyType": "HASH"},
                            {"AttributeName": "updatedAt", "KeyType": "RANGE"},
                        ],
                    }
                ],
            },
        },
        "LocksTable": {
            "Type": "AWS::DynamoDB::Table",
            "Properties": {
                "BillingMode": "PAY_PER_REQUEST",
                "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
                "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
            },
        },
        "SessionsTable": {
            "Type": "AWS::DynamoDB::Table",
            "Properties": {
                "BillingMode": "PAY_PER_REQUEST",
                "AttributeDefinitions": [{"AttributeName": "account", "AttributeType": "S"}],
                "KeySchema": [{"AttributeName": "account", "KeyType": "HASH"}],
            },
        },
        "IntakeQueue": {
            "Type": "AWS::SQS::Queue",
            "Properties": {
                "RedrivePolicy": {
                    "deadLetterTargetArn": {"Fn::GetAtt": ["IntakeDeadLetterQueue", "Arn"]},
                    "maxReceiveCount": 5,
                }
            },
        },
        "IntakeDeadLetterQueue": {"Type": "AWS::SQS::Queue"},
        "JobDeadLetterQueue": {"Type": "AWS::SQS::Queue"},
        "InterruptQueue": {"Type": "AWS::SQS::Queue"},
        "ArtifactsBucket": {"Type": "AWS::S3::Bucket"},
        "Key": {
            "Type": "AWS::KMS::Key",
            "Properties": {"KeyPolicy": {"Version": "2012-10-17", "Statement": []}},
        },
    },
    "Parameters": {
        "StateMachineArn": {"Type": "String"},
        "IntakeFunctionName": {"Type": "String"},
        "CleanupFunctionName": {"Type": "String"},
    },
    "Outputs": {
        "StateMachineArn": {"Value": {"Ref": "StateMachineArn"}},
        "IntakeFunctionName": {"Value": {"Ref": "IntakeFunctionName"}},
        "CleanupFunctionName": {"Value": {"Ref": "CleanupFunctionName"}},
        "JobsTableName": {"Value": {"Ref": "JobsTable"}},
        "LocksTableName": {"Value": {"Ref": "LocksTable"}},
        "SessionsTableName": {"Value": {"Ref": "SessionsTable"}},
        "IntakeQueueUrl": {"Value": {"Ref": "IntakeQueue"}},
        "IntakeDeadLetterQueueUrl": {"Value": {"Ref": "IntakeDeadLetterQueue"}},
        "DeadLetterQueueUrl": {"Value": {"Ref": "JobDeadLetterQueue"}},
        "InterruptQueueUrl": {"Value": {"Ref": "InterruptQueue"}},
        "ArtifactsBucketName": {"Value": {"Ref": "ArtifactsBucket"}},
        "KmsKeyArn": {"Value": {"Fn::GetAtt": ["Key", "Arn"]}},
    },
}


FUNCTIONS = ("intake", "cleanup")  # the real handlers the operator tools drive


def deploy(url: str, name: str) -> OperatorStack:
    session = boto3.Session(aws_access_key_id="test", aws_secret_access_key="test", region_name=REGION)
    sfn = session.client("stepfunctions", endpoint_url=url)
    iam = session.client("iam", endpoint_url=url)
    role = iam.create_role(RoleName=f"{name}-role", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    machine = sfn.create_state_machine(
        name=f"{name}-jobs", definition=json.dumps(WORKFLOW), roleArn=role, type="STANDARD"
    )["stateMachineArn"]
    cfn = session.client("cloudformation", endpoint_url=url)
    cfn.create_stack(
        StackName=name,
        TemplateBody=json.dumps(TEMPLATE),
        Parameters=[
            {"ParameterKey": "StateMachineArn", "ParameterValue": machine},
            {"ParameterKey": "IntakeFunctionName", "ParameterValue": f"{name}-intake"},
            {"ParameterKey": "CleanupFunctionName", "ParameterValue": f"{name}-cleanup"},
        ],
    )
    outputs = {
        o["OutputKey"]: o["OutputValue"] for o in cfn.describe_stacks(StackName=name)["Stacks"][0]["Outputs"]
    }
    for function in FUNCTIONS:
        session.client("lambda", endpoint_url=url).create_function(
            FunctionName=f"{name}-{function}",
            Runtime="python3.13",
            Role=role,
            Handler="app.lambda_handler",
            Code={"ZipFile": _zip(ROOT / "functions" / function)},
            Timeout=30,
            Environment={
                "Variables": {
                    "POWERTOOLS_SERVICE_NAME": "browserjobs",
                    "POWERTOOLS_METRICS_NAMESPACE": "BrowserJobs",
                    "JOBS_TABLE": outputs["JobsTableName"],
                    "LOCKS_TABLE": outputs["LocksTableName"],
                    "ARTIFACTS_BUCKET": outputs["ArtifactsBucketName"],
                    "STATE_MACHINE_ARN": machine,
                    "JOB_DLQ_URL": outputs["DeadLetterQueueUrl"],
                    "CLUSTER_ARN": f"arn:aws:ecs:{REGION}:123456789012:cluster/{name}",
                }
            },
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
        self.runtime.register_sources(
            {
                f"{name}-{function}": FunctionSource(
                    code_dir=ROOT / "functions" / function, layer_dirs=(ROOT / "functions" / "shared",)
                )
                for function in FUNCTIONS
            }
        )
        return stack

    def stop(self) -> None:
        install_hooks(None)
        self.runtime.stop()
        self.launcher.stop()
        self.endpoint.stop()


def sample_job(lock_key: str, job_id: str | None = None, **fields: Any) -> dict[str, Any]:
    """The project's sample direct job (events/intake-direct.json) under a fresh jobId and a given lockKey."""
    job = json.loads((ROOT / "events" / "intake-direct.json").read_text())
    return {**job, "jobId": job_id or f"job-{uuid.uuid4().hex[:12]}", "lockKey": lock_key, **fields}


def wait_for_status(
    stack: OperatorStack, execution_arn: str, statuses: set[str], deadline: float = 30
) -> str:
    """Poll DescribeExecution until the status is one of `statuses` (fails the test at the deadline)."""
    sfn = stack.client("stepfunctions")
    ends = time.monotonic() + deadline
    status = "NOT_STARTED"
    while time.monotonic() < ends:
        try:
            status = sfn.describe_execution(executionArn=execution_arn)["status"]
        except sfn.exceptions.ExecutionDoesNotExist:
            status = "NOT_STARTED"
        if status in statuses:
            return status
        time.sleep(0.2)
    raise AssertionError(f"{execution_arn} is {status} after {deadline}s, expected one of {statuses}")


def start_job(
    stack: OperatorStack, lock_key: str, job_id: str | None = None, **fields: Any
) -> tuple[str, str]:
    """Submit through the real intake (direct invocation); returns (jobId, executionArn)."""
    job = sample_job(lock_key, job_id, **fields)
    response = stack.client("lambda").invoke(
        FunctionName=stack.outputs["IntakeFunctionName"], Payload=json.dumps(job).encode()
    )
    answer = json.loads(response["Payload"].read())
    assert "FunctionError" not in response, answer
    assert answer["status"] == "STARTED", answer
    return job["jobId"], answer["executionArn"]


def dead_letter(
    stack: OperatorStack,
    job_id: str | None,
    error: str = "Site.ServerError",
    cause: str = "HTTP 503",
    raw: str | None = None,
) -> str:
    """A DLQ message shaped as the workflow sends it (docs/CONTRACTS.md); returns its MessageId."""
    body = (
        raw
        if raw is not None
        else json.dumps(
            {
                "jobId": job_id,
                "status": "FAILED",
                "error": {"Error": error, "Cause": cause},
                "executionArn": f"{stack.outputs['StateMachineArn']}:{job_id}",
                "lockKey": "acct",
                "failedAt": "2026-01-01T00:00:00.000Z",
                "source": "workflow",
            }
        )
    )
    return stack.client("sqs").send_message(QueueUrl=stack.outputs["DeadLetterQueueUrl"], MessageBody=body)[
        "MessageId"
    ]


def queue_message_ids(stack: OperatorStack, output: str) -> set[str]:
    """The messages in a queue, looked at without consuming them (visibility restored at once)."""
    sqs = stack.client("sqs")
    seen: dict[str, str] = {}
    for _ in range(10):
        batch = sqs.receive_message(
            QueueUrl=stack.outputs[output], MaxNumberOfMessages=10, VisibilityTimeout=5
        ).get("Messages", [])
        new = [m for m in batch if m["MessageId"] not in seen]
        seen.update((m["MessageId"], m["ReceiptHandle"]) for m in batch)
        for message in batch:
            sqs.change_message_visibility(
                QueueUrl=stack.outputs[output], ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
            )
        if not new:
            break
    return set(seen)


def png(width: int = 64, height: int = 48, rgb: tuple[int, int, int] = (30, 120, 200)) -> bytes:
    """A real PNG image (solid colour), as the worker's screenshot artifact would be."""
    row = b"\x00" + bytes(rgb) * width
    chunks = [
        (b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)),
        (b"IDAT", zlib.compress(row * height)),
        (b"IEND", b""),
    ]
    out = b"\x89PNG\r\n\x1a\n"
    for kind, data in chunks:
        out += struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    return out
