"""AWS failures on demand: the errors AWS answers with now and then, injected at the endpoint.

    LOCAL_FAULTS="runtask.capacity=0.3,ecs.throttle=0.1,ddb.conflict=0.2,events.late=0.2:5"
    LOCAL_FAULTS_SEED=7   # the same seed and the same calls draw the same faults

The spec is a comma-separated list of `name=rate` (a probability from 0 to 1 per eligible call or event),
`events.late` also takes `:seconds` (the delay; 5 s when left out). Every fault is answered by the endpoint
itself (moto's request handlers), so every client sees it as it would on AWS: the Lambda handlers, the
worker, the AWS CLI, and the workflow's own service integrations in moto's interpreter (which, like Step
Functions, do not retry on their own: the workflow's Retry must).

Each fault, what it injects and the AWS documentation it follows: FAULTS below (and the emulator's README.md).
"""

from __future__ import annotations

import functools
import os
import random
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

DEFAULT_LATE_SECONDS = 5.0

# name -> (what it injects, the AWS documentation it follows)
FAULTS: dict[str, tuple[str, str]] = {
    "runtask.capacity": (
        "RunTask answers failures (no Fargate capacity) and no task",
        "https://docs.aws.amazon.com/AmazonECS/latest/developerguide/api_failures_messages.html",
    ),
    "ecs.throttle": (
        "ThrottlingException on RunTask, StopTask and DescribeTasks",
        "https://docs.aws.amazon.com/AmazonECS/latest/APIReference/request-throttling.html",
    ),
    "ddb.conflict": (
        "TransactionCanceledException (TransactionConflict) on TransactWriteItems",
        "https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/transaction-apis.html"
        "#transaction-conflict-handling",
    ),
    "ddb.throttle": (
        "ThrottlingException or ProvisionedThroughputExceededException on DynamoDB item calls",
        "https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/TroubleshootingThrottling.html",
    ),
    "taskdef.deregistered": (
        "the task definition revision a RunTask names is deregistered just before it",
        "https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_DeregisterTaskDefinition.html",
    ),
    "events.late": (
        "an ECS or Step Functions event reaches EventBridge late (rate:seconds)",
        "https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-service-event-delivery-level.html",
    ),
    "events.duplicate": (
        "an ECS or Step Functions event reaches EventBridge twice",
        "https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-service-event-delivery-level.html",
    ),
    "events.lost": (
        "an ECS or Step Functions event never reaches EventBridge (best-effort delivery)",
        "https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-service-event-delivery-level.html",
    ),
}

# ECS's stoppedReason for a task stopped by a Spot interruption (stopCode SpotInterruption).
SPOT_INTERRUPTION_REASON = "Your Spot Task was interrupted."
# The reason ECS gives when Fargate has no capacity for a RunTask (AWS re:Post, ecs-fargate-runtask-capacity).
CAPACITY_REASON = (
    "Capacity is unavailable at this time. Please try again later or in a different availability zone"
)
ECS_THROTTLED = ("ThrottlingException", "Rate exceeded")
DDB_PREFIX = "com.amazonaws.dynamodb.v20120810#"
DDB_THROTTLES = (
    (
        "ThrottlingException",
        "Throughput exceeds the current capacity of your table or index. DynamoDB is automatically scaling "
        "your table or index so please try again shortly.",
    ),
    (
        "ProvisionedThroughputExceededException",
        "The level of configured provisioned throughput for the table was exceeded. Consider increasing your "
        "provisioning level with the UpdateTable API.",
    ),
)
DDB_CONFLICT_MESSAGE = "Transaction is ongoing for the item"
DDB_DATA_CALLS = (
    "get_item",
    "put_item",
    "update_item",
    "delete_item",
    "query",
    "scan",
    "batch_get_item",
    "batch_write_item",
    "transact_get_items",
    "transact_write_items",
)
ECS_THROTTLED_CALLS = ("run_task", "stop_task", "describe_tasks")


class FaultSpecError(ValueError):
    """LOCAL_FAULTS is not a valid spec; the message says what is wrong and what is allowed."""


@dataclass(frozen=True)
class Fault:
    name: str
    rate: float
    seconds: float | None = None  # events.late only


def _usage() -> str:
    names = "\n".join(f"  {name:<22} {what}" for name, (what, _) in FAULTS.items())
    return (
        "LOCAL_FAULTS is a comma-separated list of name=rate (rate: a probability from 0 to 1), "
        "events.late=rate:seconds also takes a delay, e.g. "
        '"runtask.capacity=0.3,ddb.conflict=0.2,events.late=0.2:5". Names:\n' + names
    )


def parse(spec: str | None) -> dict[str, Fault]:
    """The faults a LOCAL_FAULTS value asks for; FaultSpecError (listing the names) when it is invalid."""
    faults: dict[str, Fault] = {}
    for raw in (spec or "").split(","):
        item = raw.strip()
        if not item:
            continue
        name, sep, value = (part.strip() for part in item.partition("="))
        if name not in FAULTS:
            raise FaultSpecError(f"unknown fault {name!r} in {spec!r}\n{_usage()}")
        if not sep or not value:
            raise FaultSpecError(f"fault {name!r} has no rate (write {name}=0.1)\n{_usage()}")
        rate_text, colon, seconds_text = value.partition(":")
        if colon and name != "events.late":
            raise FaultSpecError(f"only events.late takes :seconds, not {name!r}\n{_usage()}")
        try:
            rate = float(rate_text)
            seconds = float(seconds_text) if colon else None
        except ValueError:
            raise FaultSpecError(f"fault {name!r}: {value!r} is not a number\n{_usage()}") from None
        if not 0.0 <= rate <= 1.0:
            raise FaultSpecError(f"fault {name!r}: rate {rate} is not between 0 and 1\n{_usage()}")
        if seconds is not None and seconds < 0:
            raise FaultSpecError(f"fault {name!r}: a delay of {seconds} s is negative\n{_usage()}")
        if name in faults:
            raise FaultSpecError(f"fault {name!r} is given twice in {spec!r}")
        if name == "events.late" and seconds is None:
            seconds = DEFAULT_LATE_SECONDS
        faults[name] = Fault(name, rate, seconds)
    return faults


class Faults:
    """The faults of one local stack: which to inject, at what rate, and what was injected so far."""

    def __init__(self, spec: str | None = None, seed: int | None = None):
        self.spec = spec or ""
        self.faults = parse(spec)
        self.seed = seed
        self._rng = random.Random(seed)  # noqa: S311  # nosec B311: fault draws, not secrets
        self._lock = threading.Lock()
        self.injected: Counter[str] = Counter()

    @classmethod
    def from_environment(cls, spec: str | None = None, seed: int | None = None) -> Faults:
        """The constructor's arguments, else LOCAL_FAULTS and LOCAL_FAULTS_SEED."""
        if spec is None:
            spec = os.environ.get("LOCAL_FAULTS", "")
        if seed is None and os.environ.get("LOCAL_FAULTS_SEED"):
            try:
                seed = int(os.environ["LOCAL_FAULTS_SEED"])
            except ValueError:
                raise FaultSpecError(
                    f"LOCAL_FAULTS_SEED={os.environ['LOCAL_FAULTS_SEED']!r} is not an integer"
                ) from None
        return cls(spec, seed)

    def __bool__(self) -> bool:
        return any(fault.rate > 0 for fault in self.faults.values())

    def roll(self, name: str) -> bool:
        """Whether this call or event gets the fault (counted when it does)."""
        fault = self.faults.get(name)
        if fault is None or fault.rate <= 0:
            return False
        with self._lock:
            hit = self._rng.random() < fault.rate
            if hit:
                self.injected[name] += 1
        return hit

    def choice(self, options: tuple[Any, ...]) -> Any:
        with self._lock:
            return self._rng.choice(options)

    def late_seconds(self) -> float:
        fault = self.faults.get("events.late")
        return fault.seconds if fault and fault.seconds is not None else DEFAULT_LATE_SECONDS

    def describe(self) -> str:
        if not self:
            return "no faults"
        parts = [
            f"{f.name}={f.rate:g}" + (f":{f.seconds:g}s" if f.name == "events.late" else "")
            for f in self.faults.values()
        ]
        return ", ".join(parts) + (f" (seed {self.seed})" if self.seed is not None else "")

    # --- events (called by browserjobs.emulator.eventbridge) -----------------------------------------------

    def deliver_event(self, put: Callable[[], None]) -> None:
        """Deliver one AWS service event to EventBridge: maybe lost, maybe twice, maybe late."""
        if self.roll("events.lost"):
            return
        copies = 2 if self.roll("events.duplicate") else 1
        if self.roll("events.late"):
            for _ in range(copies):
                timer = threading.Timer(self.late_seconds(), put)
                timer.daemon = True
                timer.start()
            return
        for _ in range(copies):
            put()


# --- the endpoint's side: moto's request handlers answer with the faults ----------------------------------

_active: Faults | None = None
_installed = False
_install_lock = threading.Lock()


def activate(faults: Faults | None) -> None:
    """Make the endpoint inject these faults (None: none). Installs the handler wrappers once."""
    global _active
    _install()
    _active = faults if faults else None


def active() -> Faults | None:
    return _active


def _install() -> None:
    global _installed
    with _install_lock:
        if _installed:
            return
        _install_ecs()
        _install_dynamodb()
        _installed = True


def _install_ecs() -> None:
    from moto.core.exceptions import ServiceException
    from moto.core.responses import ActionResult
    from moto.ecs.responses import EC2ContainerServiceResponse

    class Throttled(ServiceException):  # defined here, not in moto.*: moto then serialises it as ECS's
        code, message = ECS_THROTTLED

    def wrap(action: str) -> None:
        original = getattr(EC2ContainerServiceResponse, action)

        @functools.wraps(original)
        def handler(self: Any) -> Any:
            faults = _active
            if faults is not None:
                if faults.roll("ecs.throttle"):
                    raise Throttled()
                if action == "run_task":
                    definition = self._get_param("taskDefinition")
                    if faults.roll("taskdef.deregistered"):
                        _deregister(self.ecs_backend, definition)
                    elif faults.roll("runtask.capacity"):
                        arn = self.ecs_backend.describe_task_definition(definition).arn
                        return ActionResult(
                            {"tasks": [], "failures": [{"arn": arn, "reason": CAPACITY_REASON}]}
                        )
            return original(self)

        setattr(EC2ContainerServiceResponse, action, handler)

    for action in ECS_THROTTLED_CALLS:
        wrap(action)


def _deregister(backend: Any, task_definition: str) -> None:
    """As a deploy that replaced the task definition would: the revision this call names goes INACTIVE."""
    try:
        revision = backend.describe_task_definition(task_definition)
    except Exception:  # an unknown definition: RunTask itself answers that
        return
    revision.status = "INACTIVE"


def _install_dynamodb() -> None:
    from moto.dynamodb.exceptions import DynamodbException, TransactionCanceledException
    from moto.dynamodb.responses import DynamoHandler

    def wrap(action: str) -> None:
        original = getattr(DynamoHandler, action)

        @functools.wraps(original)
        def handler(self: Any) -> Any:
            faults = _active
            if faults is not None:
                if faults.roll("ddb.throttle"):
                    code, message = faults.choice(DDB_THROTTLES)
                    raise DynamodbException(DDB_PREFIX + code, message)
                if action == "transact_write_items" and faults.roll("ddb.conflict"):
                    items = self._get_param("TransactItems") or []
                    conflicted = faults.choice(tuple(range(len(items)))) if items else 0
                    raise TransactionCanceledException(
                        [
                            ("TransactionConflict", DDB_CONFLICT_MESSAGE, None)
                            if i == conflicted
                            else (None, None, None)
                            for i in range(max(1, len(items)))
                        ]
                    )
            return original(self)

        setattr(DynamoHandler, action, handler)

    for action in DDB_DATA_CALLS:
        wrap(action)
