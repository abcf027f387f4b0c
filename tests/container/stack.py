"""The AWS side of a worker run, in moto: tables, bucket, queues, key, secret, and a real task token.

The token comes from a Step Functions execution whose only state is a waitForTaskToken task
(sqs:sendMessage carries the token to a queue the test reads), so every callback the worker makes is
judged by moto's Step Functions exactly as AWS would judge it: heartbeats, success, failure, timeouts.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from browserjobs.core.ddb import to_item
from browserjobs.core.sessions import SessionStore
from browserjobs.worker.interrupts import InterruptWatcher
from browserjobs.worker.stop import StopFlag
from tests.conftest import create_template_tables

REGION = "us-east-1"
TASK_ARN = "arn:aws:ecs:us-east-1:123456789012:task/browserjobs/0123456789abcdef0123456789abcdef"
TABLES = {
    "jobs": "JobsTable",
    "locks": "LocksTable",
    "interruptions": "InterruptionsTable",
    "sessions": "SessionsTable",
}


def poll(check: Callable[[], Any], *, timeout: float, interval: float = 0.1, what: str = "condition") -> Any:
    """check() until it returns something truthy, or fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


def parked(url: str, timeout_ms: int = 60_000) -> dict[str, Any]:
    """Params of a job that loads `url`, then waits for an element that never comes, until stopped."""
    return {"steps": [{"goto": {"url": url}}, {"wait_for": {"selector": "#never", "timeoutMs": timeout_ms}}]}


@dataclass
class Task:
    execution_arn: str
    token: str


@dataclass
class Stack:
    client: Callable[[str], Any]
    suffix: str = field(default_factory=lambda: uuid.uuid4().hex[:8])
    names: dict[str, str] = field(default_factory=dict)

    def create(self) -> Stack:
        self.names.update({table: f"{table}-{self.suffix}" for table in TABLES})
        create_template_tables(self.client("dynamodb"), {TABLES[t]: self.names[t] for t in TABLES})
        self.names["bucket"] = f"artifacts-{self.suffix}"
        self.client("s3").create_bucket(Bucket=self.names["bucket"])
        sqs = self.client("sqs")
        self.names["interrupts"] = sqs.create_queue(QueueName=f"interrupts-{self.suffix}")["QueueUrl"]
        self.names["tokens"] = sqs.create_queue(QueueName=f"tokens-{self.suffix}")["QueueUrl"]
        self.names["kms"] = self.client("kms").create_key(Description="project key")["KeyMetadata"]["Arn"]
        return self

    def worker_env(self, job_id: str, task: Task, *, heartbeat_seconds: int = 60) -> dict[str, str]:
        return {
            "TASK_TOKEN": task.token,
            "JOB_ID": job_id,
            "HEARTBEAT_SECONDS": str(heartbeat_seconds),
            "JOBS_TABLE": self.names["jobs"],
            "LOCKS_TABLE": self.names["locks"],
            "INTERRUPTIONS_TABLE": self.names["interruptions"],
            "SESSIONS_TABLE": self.names["sessions"],
            "ARTIFACTS_BUCKET": self.names["bucket"],
            "INTERRUPT_QUEUE_URL": self.names["interrupts"],
            "KMS_KEY_ID": self.names["kms"],
            "EGRESS_ALLOW": "127.0.0.1",
            "TASK_ARN": TASK_ARN,
        }

    def put_job(
        self,
        action: str,
        params: dict[str, Any],
        *,
        session: str | None = None,
        timeout_seconds: int = 120,
        status: str = "RUNNING",
        lock: bool = True,
        trace: str | None = None,
    ) -> str:
        """A job record as intake and claim leave it, with its lock held."""
        job_id = f"job-{uuid.uuid4().hex[:12]}"
        lock_key = f"tenant#{job_id}"
        record = {
            "jobId": job_id,
            "lockKey": lock_key,
            "action": action,
            "params": params,
            "status": status,
            "timeoutSeconds": timeout_seconds,
            "heartbeatSeconds": 60,
            "session": session,
            "trace": trace,  # None: as a record from before the field, the default (on-failure)
        }
        ddb = self.client("dynamodb")
        ddb.put_item(TableName=self.names["jobs"], Item=to_item(record))
        if lock:
            ddb.put_item(
                TableName=self.names["locks"], Item=to_item({"pk": f"lock#{lock_key}", "jobId": job_id})
            )
        return job_id

    def start_task(self, *, heartbeat_seconds: int = 60, timeout_seconds: int = 300) -> Task:
        """A running execution waiting in a task for its token; the token, read from the queue."""
        definition = {
            "StartAt": "Run",
            "States": {
                "Run": {
                    "Type": "Task",
                    "Resource": "arn:aws:states:::sqs:sendMessage.waitForTaskToken",
                    "Parameters": {
                        "QueueUrl": self.names["tokens"],
                        "MessageBody": {"token.$": "$$.Task.Token"},
                    },
                    "HeartbeatSeconds": heartbeat_seconds,
                    "TimeoutSeconds": timeout_seconds,
                    "End": True,
                }
            },
        }
        sfn = self.client("stepfunctions")
        machine = sfn.create_state_machine(
            name=f"run-{uuid.uuid4().hex[:10]}",
            definition=json.dumps(definition),
            roleArn="arn:aws:iam::123456789012:role/sfn",
        )["stateMachineArn"]
        execution = sfn.start_execution(stateMachineArn=machine, input="{}")["executionArn"]
        sqs = self.client("sqs")

        def token() -> str | None:
            messages = sqs.receive_message(QueueUrl=self.names["tokens"], WaitTimeSeconds=1).get("Messages")
            return json.loads(messages[0]["Body"])["token"] if messages else None

        return Task(execution, poll(token, timeout=30, what="the task token"))

    def finished(self, task: Task, timeout: float = 30) -> dict[str, Any]:
        sfn = self.client("stepfunctions")
        return poll(
            lambda: (
                (d := sfn.describe_execution(executionArn=task.execution_arn))["status"] != "RUNNING" and d
            ),
            timeout=timeout,
            what="the execution to end",
        )

    def interrupt_watcher(self, job_id: str, stop: StopFlag) -> InterruptWatcher:
        return InterruptWatcher(
            sqs=self.client("sqs"),
            ddb=self.client("dynamodb"),
            queue_url=self.names["interrupts"],
            interruptions_table=self.names["interruptions"],
            jobs_table=self.names["jobs"],
            job_id=job_id,
            stop=stop,
        )

    def session_store(self) -> SessionStore:
        return SessionStore(
            s3=self.client("s3"),
            ddb=self.client("dynamodb"),
            bucket=self.names["bucket"],
            table=self.names["sessions"],
            kms_key_id=self.names["kms"],
        )

    def result(self, job_id: str) -> dict[str, Any]:
        body = self.client("s3").get_object(Bucket=self.names["bucket"], Key=f"jobs/{job_id}/result.json")[
            "Body"
        ]
        return json.loads(body.read())

    def artifact(self, job_id: str, name: str) -> dict[str, Any]:
        return self.client("s3").get_object(
            Bucket=self.names["bucket"], Key=f"jobs/{job_id}/artifacts/{name}"
        )
