"""Fixtures shared by the CLI and the inspector tests (imported by their conftest files)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli.local_stack_process import RunningStack, local_stack_process
from tests.cli.operator_stack import OperatorStack, StackEnvironment

LOGS = Path(__file__).resolve().parents[2] / "out" / "test-artifacts" / "operator-stack-logs"


@pytest.fixture(scope="package")
def stack_env() -> Iterator[StackEnvironment]:
    environment = StackEnvironment(LOGS)
    yield environment
    environment.stop()


@pytest.fixture(scope="module")
def stack(stack_env: StackEnvironment) -> OperatorStack:
    """A fresh stack per test module: its queues and tables start empty."""
    return stack_env.deploy()


@pytest.fixture(scope="session")
def local_stack() -> Iterator[RunningStack]:
    """The real template and code on the embedded local stack (the worker fails its jobs: no internet)."""
    with local_stack_process(LOGS.parent / "local-stack.log") as running:
        yield running
