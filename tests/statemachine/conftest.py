"""One local stack for the state machine tests: the real template, ASL and Lambdas, a scripted worker."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from browserjobs.emulator.stack import LocalStack
from browserjobs.testing.harness import Harness

SCRIPTED_WORKER = Path(__file__).with_name("scripted_worker.py")
# Two tokens, then one every five seconds: the third job on a rate key waits for the next token.
RATE = {"RateBurst": "2", "RateLimitPerMinute": "12"}
SECONDS_PER_TOKEN = 5
# A task's heartbeat deadline is heartbeatSeconds + this (the Fargate start), as a parameter of the stack.
TASK_START_GRACE_SECONDS = 4
# One warm pool task: a pool job's heartbeat deadline has no room for a scale-out from nothing.
PARAMETERS = {**RATE, "TaskStartGraceSeconds": str(TASK_START_GRACE_SECONDS), "PoolMinTasks": "1"}


@pytest.fixture(scope="package")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    worker = [sys.executable, str(SCRIPTED_WORKER)]
    logs = tmp_path_factory.mktemp("statemachine-logs")
    with LocalStack.start(
        port=0, parameter_overrides=PARAMETERS, worker_command=worker, log_dir=logs
    ) as running:
        yield running


@pytest.fixture(scope="package")
def harness(stack: LocalStack) -> Harness:
    return Harness.for_endpoint(stack.stack_name, stack.endpoint_url)
