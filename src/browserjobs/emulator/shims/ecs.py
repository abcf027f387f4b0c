"""ECS: where moto differs from AWS, and the shim that makes the local stack behave as AWS does.

Applied by browserjobs.emulator.shims.apply(); importing this module changes nothing.
"""

from __future__ import annotations

import copy
import sys

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
