"""ECS services on the local stack: the service scheduler and Application Auto Scaling's target tracking.

ServiceScheduler keeps each ACTIVE service in moto's ECS backend (created by CloudFormation or CreateService)
at its desiredCount, as ECS's service scheduler does
(https://docs.aws.amazon.com/AmazonECS/latest/developerguide/ecs_services.html): it starts the missing tasks
through the TaskRunner (the same lifecycle, events, metadata, logs and task role as RunTask), replaces a task
that stops (a crash, a kill, a Spot interruption) on its next round, and stops tasks when desiredCount
drops, never one with scale-in protection
(https://docs.aws.amazon.com/AmazonECS/latest/developerguide/task-scale-in-protection.html). A service's
tasks carry ECS's fields: startedBy its deployment id (ecs-svc/...), group service:<name>, the capacity
provider the strategy places them on, the service's network configuration, and its managed or propagated
tags. runningCount and pendingCount count its RUNNING and PROVISIONING/PENDING tasks.

TargetTracking reads the ECS scalable targets and their TargetTrackingScaling policies from moto's
Application Auto Scaling backend, computes each policy's metric locally every second (LocalMetrics) and
sets the service's desiredCount as target tracking does
(https://docs.aws.amazon.com/autoscaling/application/userguide/target-tracking-scaling-policy-overview.html):
proportionally to metric / target, at once when scaling out, only after the scale-in cooldown when scaling
in, within the target's MinCapacity and MaxCapacity; each change is a scaling activity
(DescribeScalingActivities).
"""

from __future__ import annotations

import ast
import datetime
import logging
import math
import operator
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from moto.applicationautoscaling.models import applicationautoscaling_backends
from moto.ecs.models import Service, Task, ecs_backends
from moto.sqs.models import sqs_backends

from browserjobs.emulator.ecs_runner import TaskRunner
from browserjobs.emulator.settings import ACCOUNT_ID, REGION, seconds_setting
from browserjobs.emulator.shims import hooks
from browserjobs.emulator.shims.applicationautoscaling import record_activity
from browserjobs.emulator.shims.ecs import protection_expiry

log = logging.getLogger(__name__)

RECONCILE_SECONDS = 0.5
SCALING_SECONDS = 1.0
# AWS's scale-in cooldown defaults to 300 s (and its scale-in alarm waits 15 minutes); locally a scale-in may
# follow after 5 s so that a test or the demo sees it, still long enough for a burst of jobs to arrive.
DEFAULT_SCALE_IN_COOLDOWN_SECONDS = 5.0
AWS_DEFAULT_SCALE_IN_COOLDOWN_SECONDS = 300
ECS_DIMENSION = "ecs:service:DesiredCount"
SCALE_IN_STOP_CODE = "ServiceSchedulerInitiated"


def configured_scale_in_cooldown_seconds() -> float:
    """LOCAL_SCALE_IN_COOLDOWN_SECONDS, else DEFAULT_SCALE_IN_COOLDOWN_SECONDS."""
    return seconds_setting("LOCAL_SCALE_IN_COOLDOWN_SECONDS", DEFAULT_SCALE_IN_COOLDOWN_SECONDS)


# --- placement: where a service's next task runs, which task a scale-in stops ------------------------------


def place(strategy: Sequence[Mapping[str, Any]], counts: Mapping[str, int]) -> str | None:
    """The capacity provider for a service's next task, given how many run on each: the provider with a
    base gets tasks until it has `base`, then each task goes where the running tasks beyond the bases are
    furthest below the weights' shares
    (https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_CapacityProviderStrategyItem.html).
    None without a strategy (a launch type)."""
    if not strategy:
        return None
    for item in strategy:
        if counts.get(item["capacityProvider"], 0) < item.get("base", 0):
            return str(item["capacityProvider"])
    weighted = [(index, item) for index, item in enumerate(strategy) if item.get("weight", 0) > 0]
    if not weighted:
        return str(strategy[0]["capacityProvider"])

    def share_after_one_more(pair: tuple[int, Mapping[str, Any]]) -> tuple[float, int]:
        index, item = pair
        beyond_base = counts.get(item["capacityProvider"], 0) - item.get("base", 0)
        return ((beyond_base + 1) / item["weight"], index)

    return str(min(weighted, key=share_after_one_more)[1]["capacityProvider"])


def planned_split(strategy: Sequence[Mapping[str, Any]], total: int) -> Counter[str]:
    """How `total` tasks are split over the strategy's providers when placed one after another."""
    counts: Counter[str] = Counter()
    for _ in range(total):
        provider = place(strategy, counts)
        if provider is not None:
            counts[provider] += 1
    return counts


@dataclass(frozen=True)
class Candidate:
    """A task a scale-in may stop."""

    arn: str
    provider: str | None
    created: float  # epoch seconds
    protected: bool


def _excess(candidate: Candidate, held: Counter[str], planned: Counter[str]) -> int:
    return held[candidate.provider] - planned[candidate.provider] if candidate.provider else 0


def choose_to_stop(
    candidates: Sequence[Candidate], count: int, strategy: Sequence[Mapping[str, Any]]
) -> list[str]:
    """The tasks a scale-in by `count` stops. Never a protected one (task-scale-in-protection.html).
    ECS stops tasks so that the rest stay balanced across Availability Zones
    (https://docs.aws.amazon.com/AmazonECS/latest/developerguide/update-service-parameters.html); every
    local task is in one zone, so that rule ties them all, and the documentation gives no further order.
    The tie is broken by keeping the capacity provider strategy's split (the task comes off the provider
    furthest above its share of what remains), then by stopping the newest task."""
    eligible = [candidate for candidate in candidates if not candidate.protected]
    held: Counter[str] = Counter(c.provider for c in candidates if c.provider is not None)
    remaining = len(candidates)
    chosen: list[str] = []
    for _ in range(min(count, len(eligible))):
        remaining -= 1
        planned = planned_split(strategy, remaining)
        pick = min(eligible, key=lambda c: (-_excess(c, held, planned), -c.created))
        eligible.remove(pick)
        if pick.provider is not None:
            held[pick.provider] -= 1
        chosen.append(pick.arn)
    return chosen


# --- the service scheduler ------------------------------------------------------------------------------


def _epoch(moment: datetime.datetime | None) -> float:
    return moment.timestamp() if moment else time.time()


def service_tasks(service: Service) -> list[Task]:
    """The service's tasks that are meant to run (desiredStatus RUNNING)."""
    backend = ecs_backends[ACCOUNT_ID][REGION]
    group = f"service:{service.name}"
    return [
        task
        for task in list(backend.tasks.get(service.cluster_name, {}).values())
        if task.group == group and task.desired_status == "RUNNING"
    ]


class ServiceScheduler:
    def __init__(
        self,
        tasks: TaskRunner,
        scaling: TargetTracking | None = None,
        say: Callable[[str], None] = log.info,
    ):
        self._tasks = tasks
        self._scaling = scaling
        self._say = say
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="ecs-services", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _run(self) -> None:
        next_scaling = 0.0
        while not self._stop.is_set():
            try:
                if self._scaling is not None and time.monotonic() >= next_scaling:
                    next_scaling = time.monotonic() + SCALING_SECONDS
                    self._scaling.evaluate()
                self.reconcile()
            except Exception:  # one bad round (a service being deleted meanwhile) must not end the scheduler
                log.exception("ECS service scheduler round failed")
            self._stop.wait(RECONCILE_SECONDS)

    def reconcile(self) -> None:
        """One round: every service's tasks brought to its desiredCount, its counts updated."""
        backend = ecs_backends[ACCOUNT_ID][REGION]
        for service in list(backend.services.values()):
            if service.task_definition is None:
                continue
            self._reconcile(service)

    def _reconcile(self, service: Service) -> None:
        active = service_tasks(service)
        desired = int(service.desired_count or 0) if service.status == "ACTIVE" else 0
        strategy = getattr(service, "capacity_provider_strategy", None) or []
        if len(active) < desired:
            held = Counter(task.capacity_provider_name for task in active if task.capacity_provider_name)
            for _ in range(desired - len(active)):
                provider = place(strategy, held)
                task = self._start(service, provider)
                if task is None:
                    break
                if provider is not None:
                    held[provider] += 1
                active.append(task)
        elif len(active) > desired:
            now = datetime.datetime.now(datetime.UTC)
            candidates = [
                Candidate(
                    task.task_arn,
                    task.capacity_provider_name,
                    _epoch(getattr(task, "created_at", None)),
                    # A deleted service's tasks all stop: protection holds off scale-in only.
                    service.status == "ACTIVE" and protection_expiry(task, now) is not None,
                )
                for task in active
            ]
            stopping = set(choose_to_stop(candidates, len(active) - desired, strategy))
            for task in active:
                if task.task_arn in stopping:
                    reason = f"Scaling activity initiated by (deployment {self._deployment_id(service)})"
                    self._tasks.stop(task, reason, stop_code=SCALE_IN_STOP_CODE)
                    message = f"(service {service.name}) has stopped 1 running tasks: (task {task.id})."
                    self._event(service, message)
            active = [task for task in active if task.task_arn not in stopping]
        self._count(service, active)

    def _deployment_id(self, service: Service) -> str:
        return str(service.deployments[0]["id"]) if service.deployments else f"ecs-svc/{service.name}"

    def _start(self, service: Service, provider: str | None) -> Task | None:
        if not hooks.hooks_installed():
            return None  # no runtime to run it: a task moto created now would show RUNNING and never run
        backend = ecs_backends[ACCOUNT_ID][REGION]
        try:
            started = backend.run_task(
                cluster_str=service.cluster_name,
                task_definition_str=service.task_definition,
                count=1,
                overrides=None,
                started_by=self._deployment_id(service),
                tags=self._tags(service),
                # Every local task runs on Fargate, whatever moto defaulted the service's launch type to.
                launch_type=None if provider else "FARGATE",
                networking_configuration=service.network_configuration or None,
                group=f"service:{service.name}",
                platform_version=service.platform_version,
                capacity_provider_strategy=[{"capacityProvider": provider}] if provider else None,
            )
        except Exception as error:  # ECS reports it as a service event and tries again later
            self._event(service, f"(service {service.name}) was unable to place a task. Reason: {error}.")
            return None
        for task in started:
            self._event(service, f"(service {service.name}) has started 1 tasks: (task {task.id}).")
        return started[0] if started else None

    def _tags(self, service: Service) -> list[dict[str, str]]:
        tags: list[dict[str, str]] = []
        if getattr(service, "enable_ecs_managed_tags", False):
            tags += [
                {"key": "aws:ecs:serviceName", "value": service.name},
                {"key": "aws:ecs:clusterName", "value": service.cluster_name},
            ]
        if service.propagate_tags == "SERVICE":
            tags += list(service.tags)
        elif service.propagate_tags == "TASK_DEFINITION":
            definition = ecs_backends[ACCOUNT_ID][REGION].describe_task_definition(service.task_definition)
            tags += list(definition.tags or [])
        return tags

    def _event(self, service: Service, message: str) -> None:
        service.events.insert(
            0, {"id": str(uuid.uuid4()), "createdAt": datetime.datetime.now(datetime.UTC), "message": message}
        )
        del service.events[100:]
        self._say(message)

    def _count(self, service: Service, active: list[Task]) -> None:
        running = sum(1 for task in active if task.last_status == "RUNNING")
        pending = sum(1 for task in active if task.last_status in ("PROVISIONING", "PENDING"))
        service.running_count, service.pending_count = running, pending
        for deployment in service.deployments[:1]:
            deployment.update(
                desiredCount=int(service.desired_count or 0), runningCount=running, pendingCount=pending
            )
            deployment["rolloutState"] = "COMPLETED" if running == service.desired_count else "IN_PROGRESS"


# --- target tracking -----------------------------------------------------------------------------------


def desired_capacity(capacity: int, metric: float, target: float, minimum: int, maximum: int) -> int:
    """Target tracking's proportional step: the capacity that brings the metric back to the target,
    ceil(capacity * metric / target), within [minimum, maximum]
    (target-tracking-scaling-policy-overview.html). A hair of tolerance keeps 4 * 0.8 / 0.8 at 4, not 5."""
    wanted = math.ceil(capacity * metric / target - 1e-9) if target > 0 else capacity
    return max(minimum, min(maximum, wanted))


_OPERATORS: dict[type, Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
}


def evaluate_expression(expression: str, values: Mapping[str, float]) -> float:
    """A CloudWatch metric math expression of arithmetic, comparisons, IF(condition, then, else) and
    FILL(metric, value) over the metrics' ids
    (https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/using-metric-math.html). Division by
    zero gives no value (ValueError), as metric math drops the point. FILL replaces missing points: every
    local metric has its point (LocalMetrics), so it is its first argument."""

    def value(node: ast.AST) -> Any:
        if isinstance(node, ast.Constant) and isinstance(node.value, int | float):
            return node.value
        if isinstance(node, ast.Name):
            return values[node.id]
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            return -value(node.operand)
        if isinstance(node, ast.BinOp) and type(node.op) in _OPERATORS:
            left, right = value(node.left), value(node.right)
            if isinstance(node.op, ast.Div) and right == 0:
                raise ValueError(f"division by zero in {expression!r}")
            return _OPERATORS[type(node.op)](left, right)
        if isinstance(node, ast.Compare) and len(node.ops) == 1 and type(node.ops[0]) in _OPERATORS:
            return 1.0 if _OPERATORS[type(node.ops[0])](value(node.left), value(node.comparators[0])) else 0.0
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id.upper() == "IF":
            condition, then, otherwise = node.args
            return value(then) if value(condition) else value(otherwise)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id.upper() == "FILL":
            return value(node.args[0])
        raise ValueError(f"metric math the local stack does not evaluate: {ast.dump(node)} in {expression!r}")

    return float(value(ast.parse(expression, mode="eval").body))


def _dimensions(metric: Mapping[str, Any]) -> dict[str, str]:
    return {d["Name"]: str(d["Value"]) for d in metric.get("Dimensions", [])}


class LocalMetrics:
    """The metrics a pool's target tracking policy reads, computed from the local stack's own state.

    - AWS/SQS ApproximateNumberOfMessagesVisible (QueueName): moto's queue.
    - ECS/ContainerInsights RunningTaskCount (ClusterName, ServiceName): the service's RUNNING tasks.
    - PoolJobsRunning (the workers' custom metric, any namespace): AWS has it from the workers' EMF log
      lines, which the local stack does not turn into metrics. It is counted here as the messages in flight
      on the queues the policy reads (a job being taken: received, not yet deleted) plus the scaled
      service's tasks with scale-in protection (a worker protects itself while it holds jobs). A task
      holding several jobs counts once, so locally the policy may ask to scale in earlier than on AWS;
      protection keeps those busy tasks from being stopped, as on AWS.
    A metric not in this list has no data: the policy does not scale, as with an alarm in INSUFFICIENT_DATA.
    """

    def __init__(self, service: Service, queues: Sequence[str]):
        self._service = service
        self._queues = queues

    def value(self, metric: Mapping[str, Any]) -> float | None:
        name, namespace = metric.get("MetricName"), metric.get("Namespace")
        dimensions = _dimensions(metric)
        if namespace == "AWS/SQS" and name == "ApproximateNumberOfMessagesVisible":
            queue = self._queue(dimensions.get("QueueName", ""))
            return float(queue.approximate_number_of_messages) if queue is not None else None
        if namespace == "ECS/ContainerInsights" and name == "RunningTaskCount":
            backend = ecs_backends[ACCOUNT_ID][REGION]
            try:
                service = backend._get_service(dimensions["ClusterName"], dimensions["ServiceName"])
            except Exception:  # no such service: no data
                return None
            return float(sum(1 for task in service_tasks(service) if task.last_status == "RUNNING"))
        if name == "PoolJobsRunning":
            in_flight = sum(
                queue.approximate_number_of_messages_not_visible
                for queue in (self._queue(name) for name in self._queues)
                if queue is not None
            )
            protected = sum(1 for task in service_tasks(self._service) if protection_expiry(task) is not None)
            return float(in_flight + protected)
        return None

    @staticmethod
    def _queue(name: str) -> Any:
        return sqs_backends[ACCOUNT_ID][REGION].queues.get(name)


def policy_metric(configuration: Mapping[str, Any], service: Service) -> float | None:
    """The value a TargetTrackingScaling policy's customized metric has now, or None (no data)."""
    spec = configuration.get("CustomizedMetricSpecification")
    if not spec:
        return None  # predefined metrics (CPU, memory, ALB requests) have no local source
    queries = spec.get("Metrics")
    stats = [query["MetricStat"]["Metric"] for query in queries or [] if "MetricStat" in query]
    stats += [spec] if not queries else []
    queues = [_dimensions(m).get("QueueName", "") for m in stats if m.get("Namespace") == "AWS/SQS"]
    metrics = LocalMetrics(service, [queue for queue in queues if queue])
    if not queries:
        return metrics.value(spec)
    values: dict[str, float] = {}
    result: float | None = None
    for query in queries:  # metric math may only refer to queries listed before it
        if "MetricStat" in query:
            measured = metrics.value(query["MetricStat"]["Metric"])
            if measured is None:
                return None
            values[query["Id"]] = measured
        else:
            try:
                values[query["Id"]] = evaluate_expression(query["Expression"], values)
            except (KeyError, ValueError):
                return None
        if query.get("ReturnData", True):  # the one query whose value the policy tracks
            result = values[query["Id"]]
    return result


@dataclass
class _TargetState:
    lower_since: float | None = None
    last_scale_in: float = float("-inf")


class TargetTracking:
    def __init__(
        self,
        scale_in_cooldown_seconds: float,
        clock: Callable[[], float] = time.monotonic,
        say: Callable[[str], None] = log.info,
    ):
        self._cooldown = scale_in_cooldown_seconds
        self._clock = clock
        self._say = say
        self._state: dict[str, _TargetState] = {}
        self._reported: set[str] = set()

    def evaluate(self) -> None:
        """One evaluation of every ECS service's scalable target and its target tracking policies."""
        backend = applicationautoscaling_backends[ACCOUNT_ID][REGION]
        for target in list(backend.targets.get(ECS_DIMENSION, {}).values()):
            policies = [
                policy
                for policy in list(backend.policies.values())
                if policy.resource_id == target.resource_id
                and policy.scalable_dimension == ECS_DIMENSION
                and policy.policy_type == "TargetTrackingScaling"
            ]
            if policies:
                self._evaluate(backend, target, policies)

    def _evaluate(self, backend: Any, target: Any, policies: list[Any]) -> None:
        _, cluster, name = target.resource_id.split("/")
        try:
            service = ecs_backends[ACCOUNT_ID][REGION]._get_service(cluster, name)
        except Exception:  # a target whose service is gone scales nothing
            return
        running = sum(1 for task in service_tasks(service) if task.last_status == "RUNNING")
        current = int(service.desired_count or 0)
        minimum, maximum = int(target.min_capacity or 0), int(target.max_capacity or 0)
        # Each policy asks for a capacity; the largest wins, so a scale-in needs every policy to want it
        # (target-tracking-scaling-policy-overview.html, "Multiple scaling policies").
        wanted: list[tuple[int, Any]] = []
        for policy in policies:
            configuration = policy.target_tracking_scaling_policy_configuration or {}
            metric = policy_metric(configuration, service)
            if metric is None:
                message = f"policy {policy.policy_name}: no local data for its metric"
                self._report_once(policy.policy_name, message)
                return
            # The capacity the metric describes is the running tasks (the metric's own task count); at 0
            # the pool's metric divides by 1, so a waiting job asks for at least one task.
            capacity = max(running, 1)
            target_value = float(configuration["TargetValue"])
            wanted.append((desired_capacity(capacity, metric, target_value, minimum, maximum), policy))
        desired, policy = max(wanted, key=lambda pair: pair[0])
        state = self._state.setdefault(target.resource_id, _TargetState())
        suspended = target.suspended_state or {}
        now = self._clock()
        if desired > current and not suspended.get("DynamicScalingOutSuspended"):
            state.lower_since = None
            self._scale(backend, target, service, desired, policy, "AlarmHigh")
        elif desired < current and not suspended.get("DynamicScalingInSuspended"):
            configuration = policy.target_tracking_scaling_policy_configuration or {}
            if configuration.get("DisableScaleIn"):
                return
            policy_cooldown = configuration.get("ScaleInCooldown", AWS_DEFAULT_SCALE_IN_COOLDOWN_SECONDS)
            cooldown = min(self._cooldown, float(policy_cooldown))
            # A scale-in waits until the metric has stayed low for the cooldown (AWS's scale-in alarm needs
            # 15 minutes of low data points) and the cooldown since the last scale-in has passed.
            state.lower_since = now if state.lower_since is None else state.lower_since
            if now - state.lower_since >= cooldown and now - state.last_scale_in >= cooldown:
                state.lower_since, state.last_scale_in = None, now
                self._scale(backend, target, service, desired, policy, "AlarmLow")
        else:
            state.lower_since = None

    def _scale(
        self, backend: Any, target: Any, service: Service, desired: int, policy: Any, alarm: str
    ) -> None:
        previous = int(service.desired_count or 0)
        service.desired_count = desired
        now = time.time()
        alarm_name = f"TargetTracking-{target.resource_id}-{alarm}-{policy.policy_name}"
        record_activity(
            backend,
            {
                "ActivityId": str(uuid.uuid4()),
                "ServiceNamespace": "ecs",
                "ResourceId": target.resource_id,
                "ScalableDimension": ECS_DIMENSION,
                "Description": f"Setting desired count to {desired}.",
                "Cause": f"monitor alarm {alarm_name} in state ALARM triggered policy {policy.policy_name}",
                "StartTime": now,
                "EndTime": now,
                "StatusCode": "Successful",
                "StatusMessage": (
                    f"Successfully set desired count to {desired}. Change successfully fulfilled by ecs."
                ),
            },
        )
        self._say(f"{target.resource_id}: desired count {previous} -> {desired} ({policy.policy_name})")

    def _report_once(self, key: str, message: str) -> None:
        if key not in self._reported:
            self._reported.add(key)
            self._say(message)
