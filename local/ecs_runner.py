"""ECS tasks as local processes: RunTask starts the worker, its exit stops the task.

The task definition's container environment, the RunTask overrides and the local endpoint's settings
make the worker's environment; volumes become a scratch folder per task (paths in the environment under a
mount point are moved there). StopTask sends SIGTERM and SIGKILL after the container's stopTimeout, as
ECS does. Each status change is published as an "ECS Task State Change" event with the shape AWS uses.
"""

from __future__ import annotations

import datetime
import os
import shutil
import signal
import sys
import tempfile
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from subprocess import PIPE, STDOUT, Popen
from typing import Any

from moto.ecs.models import Task, TaskDefinition

from local.processes import Launcher, LogSink
from local.settings import REPO_ROOT, client_environment, worker_chromium

WORKER_COMMAND = (sys.executable, "-m", "worker")
WORKER_DIR = REPO_ROOT / "container"
# The browser must reach the sample site and the endpoint on loopback; everything else stays guarded.
LOCAL_EGRESS_ALLOW = "127.0.0.1/32,::1/128"
DEFAULT_STOP_TIMEOUT_SECONDS = 30

PublishEvent = Callable[[str, str, dict[str, Any], list[str]], None]


@dataclass
class RunningTask:
    task: Task
    process: Popen
    scratch: Path
    stop_requested: bool = False
    frozen: bool = False
    done: threading.Event = field(default_factory=threading.Event)
    # A StopTask and the process's own exit may race: each changes the task's status under this lock.
    status_lock: threading.Lock = field(default_factory=threading.Lock)


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _iso(moment: datetime.datetime | None) -> str | None:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z") if moment else None


def _pairs(items: list[dict[str, str]] | None) -> dict[str, str]:
    return {item["name"]: item.get("value", "") for item in items or []}


class TaskRunner:
    def __init__(
        self,
        launcher: Launcher,
        logs: LogSink,
        endpoint_url: str,
        publish: PublishEvent,
        command: Sequence[str] = WORKER_COMMAND,
        cwd: Path = WORKER_DIR,
    ):
        self._launcher = launcher
        self._logs = logs
        self._endpoint_url = endpoint_url
        self._publish = publish
        self._command = list(command)
        self._cwd = cwd
        self._tasks: dict[str, RunningTask] = {}
        self._lock = threading.Lock()

    def running(self) -> list[Task]:
        with self._lock:
            return [entry.task for entry in self._tasks.values() if not entry.done.is_set()]

    def start(self, task: Task) -> None:
        definition = task._backend.describe_task_definition(task.task_definition_arn)
        container = definition.container_definitions[0]
        scratch = Path(tempfile.mkdtemp(prefix=f"task-{task.id[:8]}-"))
        env = self._environment(task, definition, container, scratch)
        now = _now()
        task.created_at = task.pull_started_at = task.pull_stopped_at = now
        process = self._launcher.spawn(self._command, env=env, cwd=self._cwd, stdout=PIPE, stderr=STDOUT)
        task.started_at = task.connectivity_at = _now()
        task.connectivity = "CONNECTED"
        task.last_status = "RUNNING"
        task.containers[0].last_status = "RUNNING"
        entry = RunningTask(task=task, process=process, scratch=scratch)
        with self._lock:
            self._tasks[task.task_arn] = entry
        options = container.get("logConfiguration", {}).get("options", {})
        if "awslogs-group" in options:
            stream = f"{options.get('awslogs-stream-prefix', 'ecs')}/{container['name']}/{task.id}"
            self._logs.follow(process.stdout, options["awslogs-group"], stream, f"task-{task.id[:8]}")
        self._publish_state(task)
        threading.Thread(target=self._wait, args=(entry,), name=f"task-{task.id[:8]}", daemon=True).start()

    def _environment(
        self, task: Task, definition: TaskDefinition, container: dict[str, Any], scratch: Path
    ) -> dict[str, str]:
        env = _pairs(container.get("environment"))
        for override in task.overrides.get("containerOverrides", []):
            if override.get("name") == container["name"]:
                env.update(_pairs(override.get("environment")))
        mounts = {mount["containerPath"]: scratch for mount in container.get("mountPoints", [])}
        for key, value in env.items():
            for container_path, local_path in mounts.items():
                if value == container_path or value.startswith(container_path + "/"):
                    env[key] = str(local_path) + value[len(container_path) :]
        env.update(
            {
                "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
                "LANG": "C.UTF-8",
                "PYTHONUNBUFFERED": "1",
                "PYTHONPATH": str(self._cwd),
                "EGRESS_ALLOW": LOCAL_EGRESS_ALLOW,
                "TASK_ARN": task.task_arn,
                "CHROMIUM_PATH": worker_chromium(),
                **client_environment(self._endpoint_url),
            }
        )
        return env

    def stop(self, task: Task, reason: str) -> bool:
        """StopTask for a task this runner started; False for one it does not know."""
        with self._lock:
            entry = self._tasks.get(task.task_arn)
        if entry is None:
            return False
        with entry.status_lock:
            stopping = not entry.done.is_set() and not entry.stop_requested
            if stopping:
                entry.stop_requested = True
                task.desired_status = "STOPPED"
                task.stopped_reason = reason or "Task stopped by user"
                task.stop_code = "UserInitiated"
                task.stopping_at = _now()
                task.last_status = "DEACTIVATING"
        if stopping:
            self._publish_state(task)
            grace = (
                entry.task._backend.describe_task_definition(task.task_definition_arn)
                .container_definitions[0]
                .get("stopTimeout", DEFAULT_STOP_TIMEOUT_SECONDS)
            )
            threading.Thread(target=self._terminate, args=(entry, grace), daemon=True).start()
        return True

    def _entry(self, task_arn: str) -> RunningTask:
        with self._lock:
            return self._tasks[task_arn]

    def freeze(self, task_arn: str) -> None:
        """Fault injection: the task's processes stop being scheduled (a hung container: no heartbeats)."""
        entry = self._entry(task_arn)
        entry.frozen = True
        self._launcher.signal(entry.process, signal.SIGSTOP)

    def crash(self, task_arn: str) -> None:
        """Fault injection: the task's processes are killed, as the OOM killer would."""
        self._launcher.signal(self._entry(task_arn).process, signal.SIGKILL)

    def _wait(self, entry: RunningTask) -> None:
        code = entry.process.wait()
        self._launcher.kill(entry.process)  # whatever the worker left behind in its process group
        task = entry.task
        container = task.containers[0]
        with entry.status_lock:
            container.last_status = "STOPPED"
            container.exitCode = code if code >= 0 else 128 - code
            task.execution_stopped_at = task.stopped_at = _now()
            if not entry.stop_requested:
                task.stop_code = "EssentialContainerExited"
                task.stopped_reason = "Essential container in task exited"
            task.desired_status = "STOPPED"
            task.last_status = "STOPPED"
            entry.done.set()
        shutil.rmtree(entry.scratch, ignore_errors=True)
        self._publish_state(task)

    def wait_all(self, timeout: float) -> None:
        with self._lock:
            entries = list(self._tasks.values())
        for entry in entries:
            entry.done.wait(timeout)

    def _terminate(self, entry: RunningTask, grace_seconds: float) -> None:
        if entry.frozen:  # like stopping a paused container: it is resumed to receive SIGTERM
            self._launcher.signal(entry.process, signal.SIGCONT)
        self._launcher.terminate(entry.process, grace_seconds)

    def stop_all(self, grace_seconds: float) -> None:
        with self._lock:
            entries = [entry for entry in self._tasks.values() if not entry.done.is_set()]
        for entry in entries:
            entry.stop_requested = True
            entry.task.stopped_reason = "Local stack stopped"
            entry.task.stop_code = "UserInitiated"
            self._terminate(entry, grace_seconds)
        for entry in entries:
            entry.done.wait(grace_seconds)

    def _publish_state(self, task: Task) -> None:
        container = task.containers[0]
        detail = {
            "attachments": task.attachments,
            "availabilityZone": f"{task.region_name}a",
            "clusterArn": task.cluster_arn,
            "connectivity": getattr(task, "connectivity", "CONNECTED"),
            "containers": [
                {
                    "containerArn": container.container_arn,
                    "lastStatus": container.last_status,
                    "name": container.name,
                    "image": container.image,
                    "taskArn": task.task_arn,
                    **({"exitCode": container.exitCode} if container.last_status == "STOPPED" else {}),
                }
            ],
            "createdAt": _iso(getattr(task, "created_at", None)),
            "desiredStatus": task.desired_status,
            "group": task.group,
            "launchType": task.launch_type or "FARGATE",
            "capacityProviderName": task.capacity_provider_name,
            "lastStatus": task.last_status,
            "overrides": task.overrides,
            "platformVersion": task.platform_version or "1.4.0",
            "startedAt": _iso(getattr(task, "started_at", None)),
            "startedBy": task.started_by,
            "stoppingAt": _iso(getattr(task, "stopping_at", None)),
            "stoppedAt": _iso(getattr(task, "stopped_at", None)),
            "stoppedReason": task.stopped_reason or None,
            "stopCode": getattr(task, "stop_code", None),
            "taskArn": task.task_arn,
            "taskDefinitionArn": task.task_definition_arn,
            "updatedAt": _iso(_now()),
            "version": {"RUNNING": 2, "DEACTIVATING": 3}.get(task.last_status, 4),
        }
        detail = {key: value for key, value in detail.items() if value is not None}
        self._publish("aws.ecs", "ECS Task State Change", detail, [task.task_arn])
