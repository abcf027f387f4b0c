"""What the local stack provides to the shims that run something: a Lambda handler, a task, an event."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from moto.awslambda.models import LambdaFunction
from moto.ecs.models import Task
from moto.events.models import Rule
from moto.stepfunctions.parser.backend.execution import Execution


@dataclass(frozen=True)
class InvokeResult:
    payload: bytes
    function_error: str | None = None  # "Unhandled" as on AWS, or None
    log_tail: str = ""


class RuntimeHooks(Protocol):
    """What the local stack provides to the shims that need to run something."""

    def invoke_function(
        self, function: LambdaFunction, payload: bytes, invocation_type: str
    ) -> InvokeResult: ...

    def task_started(self, task: Task) -> None: ...

    def stop_task(self, task: Task, reason: str) -> bool: ...

    def execution_status_changed(self, execution: Execution, status: str) -> None: ...

    def deliver_to_target(self, rule: Rule, target: dict[str, Any], event: Any) -> None: ...


_hooks: RuntimeHooks | None = None


def install_hooks(hooks: RuntimeHooks | None) -> None:
    global _hooks
    _hooks = hooks


def hooks_installed() -> bool:
    return _hooks is not None


def current() -> RuntimeHooks | None:
    """The local stack's hooks while it runs (None when no stack is up, e.g. in the probes)."""
    return _hooks
