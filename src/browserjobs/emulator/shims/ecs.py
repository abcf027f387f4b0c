"""ECS: where moto differs from AWS, and the shim that makes the local stack behave as AWS does.

Applied by browserjobs.emulator.shims.apply(); importing this module changes nothing.
"""

from __future__ import annotations

import copy
import datetime
import sys
from typing import Any

from moto.ecs.models import EC2ContainerServiceBackend, Task
from moto.moto_api import state_manager

from browserjobs.emulator.shims import hooks

# --- ECS: the local runner owns a task's lifecycle ------------------------------------------------------
# moto advances a task one status per DescribeTasks call (RUNNING -> ... -> STOPPED after a few polls),
# StopTask jumps straight to STOPPED, and RunTask starts nothing. Here a task stays RUNNING until its
# process exits, StopTask asks the process to stop, and RunTask starts the worker.


def shim_ecs_task_lifecycle() -> None:
    state_manager.set_transition(
        model_name="ecs::task", transition={"progression": "manual", "times": sys.maxsize}
    )
    original_run_task = EC2ContainerServiceBackend.run_task
    original_stop_task = EC2ContainerServiceBackend.stop_task

    def run_task(self, *args, **kwargs):
        tasks = original_run_task(self, *args, **kwargs)
        if hooks.current() is not None:
            for task in tasks:
                hooks.current().task_started(task)
        return tasks

    def stop_task(self, cluster_str, task_str, reason):
        task = _find_task(self, cluster_str, task_str)
        if task is not None and hooks.current() is not None and hooks.current().stop_task(task, reason):
            return task
        return original_stop_task(self, cluster_str, task_str, reason)

    EC2ContainerServiceBackend.run_task = run_task
    EC2ContainerServiceBackend.stop_task = stop_task


def _find_task(backend: EC2ContainerServiceBackend, cluster_str: str, task_str: str) -> Task | None:
    cluster = backend._get_cluster(cluster_str)
    task_id = task_str.split("/")[-1]
    for arn, task in backend.tasks.get(cluster.name, {}).items():
        if arn.endswith(task_id):
            return task
    return None


# --- ECS: numeric container properties from CloudFormation ------------------------------------------------
# CloudFormation hands moto container `memory`/`cpu` as strings when they come from parameters; RunTask then
# fails adding them up (int + str). ECS itself takes integers, which is what the shim gives moto.


def shim_ecs_numeric_container_properties() -> None:
    original = EC2ContainerServiceBackend._calculate_task_resource_requirements

    def calculate(task_definition):
        numeric = ("cpu", "memory", "memoryReservation")
        patched = copy.copy(task_definition)
        patched.container_definitions = [
            {
                key: int(value) if key in numeric and isinstance(value, str) else value
                for key, value in d.items()
            }
            for d in task_definition.container_definitions
        ]
        return original(patched)

    EC2ContainerServiceBackend._calculate_task_resource_requirements = staticmethod(calculate)


# --- ECS: RunTask on an INACTIVE task definition revision -----------------------------------------------
# moto runs a deregistered (INACTIVE) revision, and resolves a bare family to its last revision even when
# that one is INACTIVE. ECS refuses both: "You can't use an INACTIVE task definition to run new tasks"
# (https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_DeregisterTaskDefinition.html), and a
# family without a revision means its latest ACTIVE revision
# (https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_RunTask.html, taskDefinition).
# (The documented window of up to 10 minutes in which an INACTIVE revision may still run is not modelled.)

INACTIVE_TASK_DEFINITION_MESSAGE = "TaskDefinition is inactive"


def shim_ecs_inactive_task_definition() -> None:
    from moto.ecs.exceptions import EcsClientException

    original_run_task = EC2ContainerServiceBackend.run_task

    def run_task(self, cluster_str, task_definition_str, *args, **kwargs):
        name = task_definition_str.split("/")[-1]
        if ":" in name:
            if self.describe_task_definition(task_definition_str).status == "INACTIVE":
                raise EcsClientException(INACTIVE_TASK_DEFINITION_MESSAGE)
        else:
            revisions = self.task_definitions.get(name, {})
            active = [number for number, found in revisions.items() if found.status != "INACTIVE"]
            if revisions and not active:
                raise EcsClientException(INACTIVE_TASK_DEFINITION_MESSAGE)
            if active:
                task_definition_str = revisions[max(active)].arn
        return original_run_task(self, cluster_str, task_definition_str, *args, **kwargs)

    EC2ContainerServiceBackend.run_task = run_task


# --- ECS: a service's capacity provider strategy and managed tags ------------------------------------------
# moto's CreateService ignores capacityProviderStrategy and enableECSManagedTags (and, with neither launch
# type nor strategy, makes the service EC2). ECS keeps them and places the service's tasks by them
# (https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_CreateService.html). AWS::ECS::Service's
# properties: shims/cloudformation.py, shim_cloudformation_ecs_service_properties.


def capacity_provider_strategy(items: list[dict[str, Any]] | None) -> list[dict[str, Any]]:
    """CapacityProviderStrategy in the API's casing, base and weight as integers (CloudFormation passes
    parameter values as strings)."""
    strategy = []
    for item in items or []:
        fields = {key[0].lower() + key[1:]: value for key, value in item.items()}
        strategy.append(
            {
                "capacityProvider": fields["capacityProvider"],
                "base": int(fields.get("base") or 0),
                "weight": int(fields.get("weight") or 0),
            }
        )
    return strategy


def _keep_service_settings(service: Any, strategy: list[dict[str, Any]], managed_tags: bool) -> None:
    service.capacity_provider_strategy = strategy
    service.enable_ecs_managed_tags = managed_tags
    if strategy:  # a service has a launch type or a strategy, never both
        service.launch_type = None
        for deployment in service.deployments:
            deployment["launchType"] = None
            deployment["capacityProviderStrategy"] = strategy


def shim_ecs_service_settings() -> None:
    from moto.ecs.responses import EC2ContainerServiceResponse

    original_create = EC2ContainerServiceResponse.create_service

    def create_service(self):
        result = original_create(self)
        service = self.ecs_backend._get_service(
            self._get_param("cluster", "default"), self._get_param("serviceName")
        )
        _keep_service_settings(
            service,
            capacity_provider_strategy(self._get_param("capacityProviderStrategy")),
            bool(self._get_param("enableECSManagedTags")),
        )
        return result

    EC2ContainerServiceResponse.create_service = create_service


# --- ECS: a service's running and pending counts ----------------------------------------------------------
# moto's UpdateService sets runningCount to the new desiredCount at once (and pendingCount to 0), as if every
# task had started that instant. In ECS they count the service's tasks in RUNNING and PENDING
# (https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_Service.html): the local stack's service
# scheduler (emulator/ecs_services.py) sets them from the tasks it runs; UpdateService leaves them alone.


def shim_ecs_service_counts() -> None:
    original = EC2ContainerServiceBackend.update_service

    def update_service(self, service_properties):
        cluster = service_properties.get("cluster", "default")
        service = self._get_service(cluster, service_properties["service"].split("/")[-1])
        counts = (service.running_count, service.pending_count)
        updated = original(self, service_properties)
        updated.running_count, updated.pending_count = counts
        return updated

    EC2ContainerServiceBackend.update_service = update_service


# --- ECS: task scale-in protection ------------------------------------------------------------------------
# moto has no UpdateTaskProtection or GetTaskProtection. ECS keeps a service task's protection until it
# expires (default 120 minutes, 1 to 2,880), answers TASK_NOT_VALID for a task outside a service and MISSING
# for an unknown one (https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_UpdateTaskProtection.html,
# https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_GetTaskProtection.html,
# https://docs.aws.amazon.com/AmazonECS/latest/developerguide/api_failures_messages.html).

DEFAULT_PROTECTION_MINUTES = 120
MAX_PROTECTION_MINUTES = 2880


def protection_expiry(task: Task, now: datetime.datetime | None = None) -> datetime.datetime | None:
    """When the task's scale-in protection ends, or None when it is not protected (now)."""
    until = getattr(task, "protected_until", None)
    moment = now or datetime.datetime.now(datetime.UTC)
    return until if until is not None and until > moment else None


def _protected_task(task: Task) -> dict[str, Any]:
    expiry = protection_expiry(task)
    return {"taskArn": task.task_arn, "protectionEnabled": expiry is not None, "expirationDate": expiry}


def _protection_targets(backend: EC2ContainerServiceBackend, cluster_str: str, tasks: list[str]):
    cluster = backend._get_cluster(cluster_str)
    found, failures = [], []
    for reference in tasks:
        task = _find_task(backend, cluster.name, reference)
        arn = task.task_arn if task is not None else reference
        if task is None:
            failures.append({"arn": arn, "reason": "MISSING"})
        elif not (task.started_by or "").startswith("ecs-svc/"):
            failures.append({"arn": arn, "reason": "TASK_NOT_VALID"})
        else:
            found.append(task)
    return found, failures


def shim_ecs_task_protection() -> None:
    from moto.core.responses import ActionResult
    from moto.ecs.exceptions import InvalidParameterException
    from moto.ecs.responses import EC2ContainerServiceResponse

    def update_task_protection(self):
        enabled = self._get_param("protectionEnabled")
        minutes = self._get_param("expiresInMinutes")
        if enabled is None:
            raise InvalidParameterException("protectionEnabled is required.")
        if minutes is not None and not 1 <= int(minutes) <= MAX_PROTECTION_MINUTES:
            raise InvalidParameterException(
                f"expiresInMinutes must be between 1 and {MAX_PROTECTION_MINUTES}, not {minutes}."
            )
        found, failures = _protection_targets(
            self.ecs_backend, self._get_param("cluster", "default"), self._get_param("tasks", [])
        )
        now = datetime.datetime.now(datetime.UTC)
        for task in found:
            # Each call restarts the period: repeating it keeps a task protected.
            period = datetime.timedelta(minutes=int(minutes or DEFAULT_PROTECTION_MINUTES))
            task.protected_until = now + period if enabled else None
        return ActionResult({"protectedTasks": [_protected_task(t) for t in found], "failures": failures})

    def get_task_protection(self):
        found, failures = _protection_targets(
            self.ecs_backend, self._get_param("cluster", "default"), self._get_param("tasks", [])
        )
        return ActionResult({"protectedTasks": [_protected_task(t) for t in found], "failures": failures})

    EC2ContainerServiceResponse.update_task_protection = update_task_protection
    EC2ContainerServiceResponse.get_task_protection = get_task_protection
