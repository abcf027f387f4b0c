"""Jobs as an operator sees them: submit one, read its record, find its execution."""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import ClientError

from browserjobs.core.config import Settings
from browserjobs.core.ddb import plain
from browserjobs.core.model import JobRejected, execution_arn
from browserjobs.core.schema import check_job
from browserjobs.ops.outputs import OperatorError, Target


class InvalidJob(OperatorError):
    def __init__(self, message: str, errors: list[dict[str, str]]):
        lines = [f"{error['path']}: {error['message']}" for error in errors]
        super().__init__("invalid job: " + "\n  ".join([message, *lines]), exit_code=2)
        self.errors = errors


def parse_job(text: str, origin: str) -> dict[str, Any]:
    """Parse a job and check it with intake's own validation (schema, action params, size)."""
    try:
        job = json.loads(text)
    except json.JSONDecodeError as error:
        raise InvalidJob(
            f"{origin} is not JSON: {error.msg} at line {error.lineno} column {error.colno}", []
        ) from error
    try:
        check_job(job, Settings.from_env())
    except JobRejected as rejection:
        raise InvalidJob(f"{rejection.code}: {rejection.message}", rejection.errors) from rejection
    return job


def get_job(target: Target, job_id: str) -> dict[str, Any] | None:
    table = target.table(target.outputs["JobsTableName"])
    try:
        item = table.get_item(Key={"jobId": job_id}, ConsistentRead=True).get("Item")
    except ClientError as error:
        raise OperatorError(f"cannot read job {job_id!r}: {error.response['Error']['Message']}") from error
    return plain(item) if item else None


def execution_arn_for(target: Target, job_id: str, record: dict[str, Any] | None = None) -> str:
    """The execution is named by the jobId; the record's executionArn wins when intake wrote one."""
    if record and record.get("executionArn"):
        return str(record["executionArn"])
    return execution_arn(target.outputs["StateMachineArn"], job_id)


def describe_execution(target: Target, execution_arn: str) -> dict[str, Any] | None:
    try:
        return target.client("stepfunctions").describe_execution(executionArn=execution_arn)
    except ClientError as error:
        if error.response["Error"]["Code"] == "ExecutionDoesNotExist":
            return None
        raise OperatorError(
            f"cannot describe {execution_arn}: {error.response['Error']['Message']}"
        ) from error


def resolve_execution(target: Target, job_or_arn: str) -> tuple[dict[str, Any] | None, str]:
    """A job id or an execution ARN -> (job record or None, execution ARN). Unknown jobs are errors."""
    if job_or_arn.startswith("arn:"):
        job_id = job_or_arn.rsplit(":", 1)[-1]
        return get_job(target, job_id), job_or_arn
    record = get_job(target, job_or_arn)
    arn = execution_arn_for(target, job_or_arn, record)
    if record is None and describe_execution(target, arn) is None:
        raise OperatorError(
            f"job {job_or_arn!r} not found: no record in {target.outputs['JobsTableName']} "
            "and no execution of that name",
            exit_code=3,
        )
    return record, arn


def execution_history(target: Target, execution_arn: str) -> list[dict[str, Any]]:
    paginator = target.client("stepfunctions").get_paginator("get_execution_history")
    try:
        return [event for page in paginator.paginate(executionArn=execution_arn) for event in page["events"]]
    except ClientError as error:
        if error.response["Error"]["Code"] == "ExecutionDoesNotExist":
            return []
        raise OperatorError(
            f"cannot read history of {execution_arn}: {error.response['Error']['Message']}"
        ) from error


def list_executions(target: Target, status: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
    kwargs: dict[str, Any] = {"stateMachineArn": target.outputs["StateMachineArn"]}
    if status:
        kwargs["statusFilter"] = status
    found: list[dict[str, Any]] = []
    paginator = target.client("stepfunctions").get_paginator("list_executions")
    try:
        for page in paginator.paginate(**kwargs, PaginationConfig={"MaxItems": limit}):
            found.extend(page["executions"])
    except ClientError as error:
        raise OperatorError(f"cannot list executions: {error.response['Error']['Message']}") from error
    return found


def submit_direct(target: Target, job: dict[str, Any]) -> dict[str, Any]:
    """Invoke intake synchronously, as a direct invocation: its answer says whether the job started."""
    function = target.outputs["IntakeFunctionName"]
    try:
        response = target.client("lambda").invoke(
            FunctionName=function, InvocationType="RequestResponse", Payload=json.dumps(job).encode()
        )
    except ClientError as error:
        raise OperatorError(f"cannot invoke {function}: {error.response['Error']['Message']}") from error
    payload = json.loads(response["Payload"].read() or b"null")
    if response.get("FunctionError"):
        raise OperatorError(f"intake failed: {json.dumps(payload)}")
    return payload if isinstance(payload, dict) else {"result": payload}


def submit_to_queue(target: Target, job: dict[str, Any]) -> str:
    """Send the job to the intake queue (the normal path); returns the SQS MessageId."""
    queue = target.outputs["IntakeQueueUrl"]
    try:
        return target.client("sqs").send_message(QueueUrl=queue, MessageBody=json.dumps(job))["MessageId"]
    except ClientError as error:
        raise OperatorError(f"cannot send to {queue}: {error.response['Error']['Message']}") from error
