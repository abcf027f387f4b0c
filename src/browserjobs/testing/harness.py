"""Driving a running stack as a user does: submit jobs, then watch records, executions, tasks and the DLQ.

Used by `make demo` and by the state machine and end-to-end tests. Every wait polls a condition with a
deadline and says what it was waiting for when the deadline passes.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from typing import Any, TypeVar

from browserjobs.core.contract import FINAL_EXECUTION_STATUSES, FINAL_JOB_STATUSES
from browserjobs.core.keys import breaker_key, bucket_key
from browserjobs.core.keys import lock_key as lock_key_of
from browserjobs.ops.jobs import describe_execution, execution_arn_for, get_job
from browserjobs.ops.outputs import Target

T = TypeVar("T")


class Deadline(AssertionError):
    """A condition did not hold within its deadline."""


def poll(what: str, probe: Callable[[], T | None], timeout: float, interval: float = 0.25) -> T:
    """Call probe until it returns something truthy; fail with `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise Deadline(f"{what}: not within {timeout:.0f}s")
        time.sleep(interval)


def new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


@dataclass
class Harness:
    target: Target

    @classmethod
    def for_endpoint(cls, stack_name: str, endpoint_url: str) -> Harness:
        return cls(Target(stack_name=stack_name, endpoint_url=endpoint_url))

    @property
    def outputs(self) -> Any:
        return self.target.outputs

    def client(self, service: str) -> Any:
        return self.target.client(service)

    # --- submitting -------------------------------------------------------------------------------------

    def submit(self, job: dict[str, Any]) -> str:
        """Send a job to the intake queue, as producers do; returns its jobId."""
        self.client("sqs").send_message(QueueUrl=self.outputs["IntakeQueueUrl"], MessageBody=json.dumps(job))
        return job["jobId"]

    def submit_direct(self, payload: Any) -> dict[str, Any]:
        """Invoke intake directly (a direct call); returns its response, raising on a function error."""
        response = self.client("lambda").invoke(
            FunctionName=self.outputs["IntakeFunctionName"], Payload=json.dumps(payload).encode()
        )
        body = json.loads(response["Payload"].read() or b"null")
        if response.get("FunctionError"):
            raise AssertionError(f"intake failed: {body}")
        return body

    # --- observing --------------------------------------------------------------------------------------

    def job(self, job_id: str) -> dict[str, Any] | None:
        return get_job(self.target, job_id)

    def execution_arn(self, job_id: str) -> str:
        return execution_arn_for(self.target, job_id)

    def execution(self, job_id: str) -> dict[str, Any] | None:
        return describe_execution(self.target, self.execution_arn(job_id))

    def history(self, job_id: str) -> list[dict[str, Any]]:
        sfn = self.client("stepfunctions")
        pages = sfn.get_paginator("get_execution_history").paginate(executionArn=self.execution_arn(job_id))
        return [event for page in pages for event in page["events"]]

    def wait_for_status(self, job_id: str, statuses: AbstractSet[str], timeout: float) -> dict[str, Any]:
        def reached() -> dict[str, Any] | None:
            record = self.job(job_id)
            return record if record and record.get("status") in statuses else None

        return poll(f"job {job_id} reaching {sorted(statuses)}", reached, timeout)

    def wait_for_execution_end(self, job_id: str, timeout: float) -> dict[str, Any]:
        def ended() -> dict[str, Any] | None:
            execution = self.execution(job_id)
            return execution if execution and execution["status"] in FINAL_EXECUTION_STATUSES else None

        return poll(f"execution {job_id} ending", ended, timeout)

    def wait_for_job_end(self, job_id: str, timeout: float) -> tuple[dict[str, Any], dict[str, Any]]:
        """The job's final record and its ended execution."""
        started = time.monotonic()
        execution = self.wait_for_execution_end(job_id, timeout)
        remaining = max(timeout - (time.monotonic() - started), 1.0)
        return self.wait_for_status(job_id, FINAL_JOB_STATUSES, remaining), execution

    def lock(self, lock_key: str) -> dict[str, Any] | None:
        table = self.target.table(self.outputs["LocksTableName"])
        return table.get_item(Key={"pk": lock_key_of(lock_key)}, ConsistentRead=True).get("Item")

    def bucket(self, rate_key: str) -> dict[str, Any] | None:
        table = self.target.table(self.outputs["LocksTableName"])
        return table.get_item(Key={"pk": bucket_key(rate_key)}, ConsistentRead=True).get("Item")

    def breaker(self, site_key: str) -> dict[str, Any] | None:
        table = self.target.table(self.outputs["LocksTableName"])
        return table.get_item(Key={"pk": breaker_key(site_key)}, ConsistentRead=True).get("Item")

    def dead_letters(self, job_id: str, timeout: float) -> dict[str, Any]:
        """The DLQ message for a job. Messages are looked at, never consumed: they become visible again."""
        sqs, url = self.client("sqs"), self.outputs["DeadLetterQueueUrl"]

        def find() -> dict[str, Any] | None:
            # Messages seen stay hidden until the whole queue has been looked through: made visible at once,
            # the same first ten would come back every time and a longer queue would never be read to the end.
            handles: list[str] = []
            try:
                while True:
                    batch = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=30)
                    messages = batch.get("Messages", [])
                    if not messages:
                        return None
                    handles += [message["ReceiptHandle"] for message in messages]
                    for body in (json.loads(message["Body"]) for message in messages):
                        if body.get("jobId") == job_id:
                            return dict(body)
            finally:
                for handle in handles:
                    sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=handle, VisibilityTimeout=0)

        return poll(f"DLQ message for {job_id}", find, timeout)

    def task(self, task_arn: str) -> dict[str, Any]:
        return self.client("ecs").describe_tasks(cluster=self.outputs["ClusterArn"], tasks=[task_arn])[
            "tasks"
        ][0]

    def task_arn_of(self, job_id: str) -> str | None:
        """The ECS task an execution started, from its history (TaskSubmitted carries RunTask's response)."""
        for event in self.history(job_id):
            details = event.get("taskSubmittedEventDetails")
            if details and details.get("resourceType") == "ecs":
                return json.loads(details["output"])["Tasks"][0]["TaskArn"]
        return None
