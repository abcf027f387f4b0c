"""What the pool worker does with a dispatch message before any job runs: drop it, leave it, or take it."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from botocore.exceptions import ClientError

from browserjobs.worker.pool import PoolWorker
from browserjobs.worker.pool_config import PoolConfig
from tests.unit.worker.test_pool_config import ENV, message

pytestmark = pytest.mark.unit


class Fakes:
    """The AWS clients the intake path calls, recording what it did."""

    def __init__(self, heartbeat_error: str | None = None) -> None:
        self.heartbeat_error = heartbeat_error
        self.deleted: list[str] = []
        self.ddb_calls: list[str] = []

    def __call__(self, service: str) -> Any:
        return self

    def send_task_heartbeat(self, taskToken: str) -> None:
        if self.heartbeat_error:
            raise ClientError({"Error": {"Code": self.heartbeat_error, "Message": "x"}}, "SendTaskHeartbeat")

    def delete_message(self, QueueUrl: str, ReceiptHandle: str) -> None:
        self.deleted.append(ReceiptHandle)

    def update_item(self, **kwargs: Any) -> None:
        self.ddb_calls.append("update_item")
        raise AssertionError("nothing may be registered for this message")


def settled(pool: PoolWorker) -> PoolWorker:
    """Once the message's own thread (its admission) is done: the worker holds no job any more."""
    deadline = time.monotonic() + 10
    while pool.running_count() and time.monotonic() < deadline:
        time.sleep(0.01)  # polling a condition, bounded by the deadline
    assert pool.running_count() == 0
    return pool


def worker(fakes: Fakes) -> PoolWorker:
    config = PoolConfig.from_env({**ENV, "TASK_ARN": "arn:aws:ecs:us-east-1:123456789012:task/c/t1"})
    return PoolWorker(config, fakes, "arn:aws:ecs:us-east-1:123456789012:task/c/t1")  # type: ignore[arg-type]


@pytest.mark.parametrize("code", ["TaskTimedOut", "InvalidToken", "TaskDoesNotExist"])
def test_a_message_whose_attempt_is_over_is_deleted_unrun(code):
    fakes = Fakes(heartbeat_error=code)

    pool = worker(fakes)
    pool._take(message())

    settled(pool)
    assert fakes.deleted == ["r-1"] and fakes.ddb_calls == []


def test_a_message_whose_token_cannot_be_checked_now_is_left_to_come_back():
    """A throttled heartbeat says nothing about the attempt: the message returns after its visibility."""
    fakes = Fakes(heartbeat_error="ThrottlingException")
    pool = worker(fakes)

    pool._take(message())

    settled(pool)
    assert fakes.deleted == [] and fakes.ddb_calls == []


def test_a_malformed_message_is_deleted_and_nothing_runs():
    fakes = Fakes()

    worker(fakes)._take({"MessageId": "m-9", "ReceiptHandle": "r-9", "Body": json.dumps({"jobId": "j"})})

    assert fakes.deleted == ["r-9"] and fakes.ddb_calls == []
