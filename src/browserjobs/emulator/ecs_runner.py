"""ECS tasks as local processes: RunTask starts the worker, its exit stops the task.

A Fargate task is not running when RunTask returns: it is PROVISIONING (ENI, capacity), then PENDING
(image pull), then RUNNING, which takes 30-60 s on AWS for a large image. `start_seconds`
(LOCAL_TASK_START_SECONDS) keeps each task PROVISIONING for the first half of that time and PENDING for the
second, with the timestamps DescribeTasks shows (createdAt; pullStartedAt and pullStoppedAt around the pull;
startedAt when the container starts) and an "ECS Task State Change" event at each status, as ECS emits them
(https://docs.aws.amazon.com/AmazonECS/latest/developerguide/task-lifecycle-explanation.html,
https://docs.aws.amazon.com/AmazonECS/latest/developerguide/ecs_task_events.html). A StopTask before the
container started stops the task without starting it.

The task definition's container environment, the RunTask overrides and the local endpoint's settings
make the worker's environment; volumes become a scratch folder per task (paths in the environment under a
mount point are moved there). The worker finds its task through ECS_CONTAINER_METADATA_URI_V4, served here
with the task metadata v4 document's fields the worker reads (TaskARN, PullStartedAt, ...;
https://docs.aws.amazon.com/AmazonECS/latest/developerguide/task-metadata-endpoint-v4-fargate.html).
ECS_AGENT_URI serves the agent's task scale-in protection endpoint (ecs_agent.py), which acts with the
task role's credentials. StopTask sends SIGTERM and SIGKILL after the container's stopTimeout, as ECS does,
with the stop code of whoever stopped the task (UserInitiated, ServiceSchedulerInitiated, SpotInterruption).
Each status change is published as an "ECS Task State Change" event with the shape AWS uses.
"""

from __future__ import annotations

import datetime
import json
import os
import shutil
import signal
import sys
import tempfile
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from subprocess import PIPE, STDOUT, Popen
from typing import Any

from moto.ecs.models import Task, TaskDefinition

from browserjobs.core.project import project_dir
from browserjobs.emulator.access import ENFORCER
from browserjobs.emulator.ecs_agent import STATE_PATH, TaskProtectionAgent
from browserjobs.emulator.faults import SPOT_INTERRUPTION_REASON
from browserjobs.emulator.health_checks import HealthCheck, configured_interval_seconds, watch
from browserjobs.emulator.processes import Launcher, LogSink
from browserjobs.emulator.settings import (
    HOST,
    IMPORT_ROOT,
    client_environment,
    seconds_setting,
    worker_chromium,
)

WORKER_COMMAND = (sys.executable, "-m", "browserjobs.worker")
# The browser must reach the sample site and the endpoint on loopback; everything else stays guarded.
LOCAL_EGRESS_ALLOW = "127.0.0.1/32,::1/128"
DEFAULT_STOP_TIMEOUT_SECONDS = 30
# Fargate takes 30-60 s; locally 1 s by default: long enough that every task really passes through
# PROVISIONING and PENDING (and a StopTask can land during start), short enough that a 30-job chaos run or
# the e2e suite, which run up to four tasks at once, pay seconds, not minutes, for it.
DEFAULT_TASK_START_SECONDS = 1.0


def configured_task_start_seconds() -> float:
    """LOCAL_TASK_START_SECONDS, else DEFAULT_TASK_START_SECONDS."""
    return seconds_setting("LOCAL_TASK_START_SECONDS", DEFAULT_TASK_START_SECONDS)


PublishEvent = Callable[[str, str, dict[str, Any], list[str]], None]


@dataclass
class RunningTask:
    task: Task
    scratch: Path
    process: Popen | None = None  # None until the container starts
    credentials: dict[str, str] = field(default_factory=dict)  # the task role's, as the container got them
    stop_requested: bool = False
    frozen: bool = False
    crashed: bool = False
    done: threading.Event = field(default_factory=threading.Event)
    wake: threading.Event = field(default_factory=threading.Event)  # a StopTask during start
    # A StopTask and the process's own exit may race: each changes the task's status under this lock.
    status_lock: threading.Lock = field(default_factory=threading.Lock)


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _iso(moment: datetime.datetime | None) -> str | None:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z") if moment else None


def _iso_ns(moment: datetime.datetime | None) -> str | None:
    """How the task metadata endpoint writes times: nanoseconds and Z ("...T20:30:06.202617438Z")."""
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f") + "000Z" if moment else None


class _EndpointServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A task stopped or killed while it asked (crash and Spot faults do it on purpose) is no error here.
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)


class TaskMetadataServer:
    """The ECS task metadata endpoint v4 for local tasks (GET {uri}/task, one URI per task) and the agent's
    endpoint (ECS_AGENT_URI) on the same port."""

    def __init__(self, document: Callable[[str], dict[str, Any] | None], agent: TaskProtectionAgent):
        self._document = document
        self._agent = agent
        self._server: ThreadingHTTPServer | None = None
        self._lock = threading.Lock()

    def uri(self, task: Task) -> str:
        return f"http://{HOST}:{self._port()}/v4/{task.id}"

    def agent_uri(self, task: Task) -> str:
        return f"http://{HOST}:{self._port()}/api/{task.id}"

    def _port(self) -> int:
        with self._lock:
            if self._server is None:
                self._server = _EndpointServer((HOST, 0), self._handler())
                threading.Thread(target=self._server.serve_forever, name="task-metadata", daemon=True).start()
            return self._server.server_address[1]

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        document = self._document
        agent = self._agent

        class Handler(BaseHTTPRequestHandler):
            def _agent(self, method: str) -> bool:
                """$ECS_AGENT_URI/task-protection/v1/state; False for any other path."""
                parts = self.path.strip("/").split("/")
                if len(parts) < 2 or parts[0] != "api" or "/".join(parts[2:]) != STATE_PATH:
                    return False
                length = int(self.headers.get("Content-Length") or 0)
                status, answer = agent.handle(parts[1], method, self.rfile.read(length) if length else b"")
                self._send(status, answer)
                return True

            def do_PUT(self) -> None:
                if not self._agent("PUT"):
                    self.send_error(404)

            def do_GET(self) -> None:
                if self._agent("GET"):
                    return
                parts = self.path.strip("/").split("/")
                found = document(parts[1]) if len(parts) >= 2 and parts[0] == "v4" else None
                if found is not None and parts[2:] == ["task"]:
                    body = found
                elif found is not None and parts[2:] == []:
                    body = found["Containers"][0]
                else:
                    self.send_error(404)
                    return
                self._send(200, body)

            def _send(self, status: int, body: dict[str, Any]) -> None:
                payload = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:
                return None

        return Handler

    def stop(self) -> None:
        with self._lock:
            server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()


def _next_version(task: Task) -> int:
    """Each event of a task carries a higher version, as ECS numbers a task's state changes."""
    task.event_version = getattr(task, "event_version", 0) + 1
    return task.event_version


def _pairs(items: list[dict[str, str]] | None) -> dict[str, str]:
    # ECS environment values are strings (CloudFormation turns a Number parameter into one; moto keeps it).
    return {item["name"]: str(item.get("value", "")) for item in items or []}


class TaskRunner:
    def __init__(
        self,
        launcher: Launcher,
        logs: LogSink,
        endpoint_url: str,
        publish: PublishEvent,
        command: Sequence[str] = WORKER_COMMAND,
        cwd: Path | None = None,
        start_seconds: float = 0.0,
    ):
        self.start_seconds = start_seconds
        self._launcher = launcher
        self._logs = logs
        self._endpoint_url = endpoint_url
        self._publish = publish
        self._command = list(command)
        self._cwd = cwd or project_dir()
        self._tasks: dict[str, RunningTask] = {}
        self._lock = threading.Lock()
        self.metadata = TaskMetadataServer(
            self._metadata_document, TaskProtectionAgent(endpoint_url, self._task_and_credentials)
        )

    def running(self) -> list[Task]:
        with self._lock:
            return [entry.task for entry in self._tasks.values() if not entry.done.is_set()]

    def start(self, task: Task) -> None:
        """RunTask: the task is PROVISIONING now; its container starts after start_seconds."""
        scratch = Path(tempfile.mkdtemp(prefix=f"task-{task.id[:8]}-"))
        task.created_at = _now()
        task.connectivity = "CONNECTING"
        task.last_status = "PROVISIONING"
        task.containers[0].last_status = "PENDING"
        task.containers[0].exitCode = None  # moto starts it at 0; ECS has none until the container exits
        # moto says HEALTHY; ECS says UNKNOWN until a health check has run, or when there is none.
        task.health_status = "UNKNOWN"
        entry = RunningTask(task=task, scratch=scratch)
        with self._lock:
            self._tasks[task.task_arn] = entry
        self._publish_state(task)
        if self.start_seconds <= 0:
            self._advance(entry, "PENDING")
            self._launch(entry)
            return
        threading.Thread(
            target=self._provision, args=(entry,), name=f"start-{task.id[:8]}", daemon=True
        ).start()

    def _provision(self, entry: RunningTask) -> None:
        try:
            self._provision_then_launch(entry)
        except Exception as error:  # the task fails to start, as ECS reports it, instead of hanging
            with entry.status_lock:
                entry.task.stop_code = "TaskFailedToStart"
                entry.task.stopped_reason = f"CannotStartContainerError: {error!r}"[:255]
            self._stopped_before_start(entry)
            raise

    def _provision_then_launch(self, entry: RunningTask) -> None:
        half = self.start_seconds / 2
        if entry.wake.wait(half) or not self._advance(entry, "PENDING"):
            self._stopped_before_start(entry)
            return
        if entry.wake.wait(half):
            self._stopped_before_start(entry)
            return
        self._launch(entry)

    def _advance(self, entry: RunningTask, status: str) -> bool:
        """PROVISIONING -> PENDING (the image pull starts); False when a stop came first."""
        task = entry.task
        with entry.status_lock:
            if entry.stop_requested:
                return False
            task.connectivity, task.connectivity_at = "CONNECTED", _now()
            task.pull_started_at = _now()
            task.last_status = status
        self._publish_state(task)
        return True

    def _launch(self, entry: RunningTask) -> None:
        task = entry.task
        definition = task._backend.describe_task_definition(task.task_definition_arn)
        container = definition.container_definitions[0]
        env = self._environment(entry, definition, container)
        check = (
            HealthCheck.from_definition(container["healthCheck"], configured_interval_seconds())
            if container.get("healthCheck")
            else None
        )
        if check is not None:
            env["POOL_HEALTH_STALE_SECONDS"] = check.stale_seconds()  # the local clock of the check
        with entry.status_lock:
            if entry.stop_requested:
                launched = False
            else:
                task.pull_stopped_at = _now()
                entry.process = self._launcher.spawn(
                    self._command, env=env, cwd=self._cwd, stdout=PIPE, stderr=STDOUT
                )
                task.started_at = _now()
                task.last_status = "RUNNING"
                task.containers[0].last_status = "RUNNING"
                launched = True
        if not launched:
            self._stopped_before_start(entry)
            return
        process = entry.process
        assert process is not None
        if entry.frozen:
            self._launcher.signal(process, signal.SIGSTOP)
        if entry.crashed:
            self._launcher.signal(process, signal.SIGKILL)
        options = container.get("logConfiguration", {}).get("options", {})
        if "awslogs-group" in options:
            stream = f"{options.get('awslogs-stream-prefix', 'ecs')}/{container['name']}/{task.id}"
            self._logs.follow(process.stdout, options["awslogs-group"], stream, f"task-{task.id[:8]}")
        self._publish_state(task)
        threading.Thread(target=self._wait, args=(entry,), name=f"task-{task.id[:8]}", daemon=True).start()
        if check is not None:
            threading.Thread(
                target=watch,
                args=(check, env, self._cwd, entry.done, lambda status: self._health_changed(entry, status)),
                name=f"health-{task.id[:8]}",
                daemon=True,
            ).start()

    def _health_changed(self, entry: RunningTask, status: str) -> None:
        """The container's health check changed its verdict: a service's UNHEALTHY task is stopped (and
        replaced by the scheduler); a task run by itself goes on (API_HealthCheck.html)."""
        task = entry.task
        task.health_status = status
        self._publish_state(task)
        if status == "UNHEALTHY" and str(task.group or "").startswith("service:"):
            self.stop(task, "Task failed container health checks", stop_code="ServiceSchedulerInitiated")

    def _stopped_before_start(self, entry: RunningTask) -> None:
        """A task stopped while PROVISIONING or PENDING: its container never started (no exit code)."""
        task = entry.task
        with entry.status_lock:
            if entry.done.is_set():
                return
            task.containers[0].last_status = "STOPPED"
            task.execution_stopped_at = task.stopped_at = _now()
            task.desired_status = task.last_status = "STOPPED"
            entry.done.set()
        shutil.rmtree(entry.scratch, ignore_errors=True)
        self._publish_state(task)

    def _environment(
        self, entry: RunningTask, definition: TaskDefinition, container: dict[str, Any]
    ) -> dict[str, str]:
        task, scratch = entry.task, entry.scratch
        # As ECS gives the task role's credentials (which the endpoint checks) to the container; the
        # agent's endpoint acts with the same ones.
        role_arn = getattr(definition, "task_role_arn", None)
        entry.credentials = ENFORCER.role_environment(role_arn, task.id[:32])
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
                "PYTHONPATH": str(IMPORT_ROOT),
                "EGRESS_ALLOW": LOCAL_EGRESS_ALLOW,
                "TASK_ARN": task.task_arn,
                "ECS_CONTAINER_METADATA_URI_V4": self.metadata.uri(task),
                "ECS_AGENT_URI": self.metadata.agent_uri(task),
                "CHROMIUM_PATH": worker_chromium(),
                **client_environment(self._endpoint_url),
                **entry.credentials,
            }
        )
        return env

    def stop(self, task: Task, reason: str, stop_code: str = "UserInitiated") -> bool:
        """StopTask (or ECS itself, with its stop code) for a task this runner started; False for one it
        does not know."""
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
                task.stop_code = stop_code
                task.stopping_at = _now()
                starting = entry.process is None
                if not starting:
                    task.last_status = "DEACTIVATING"
        if stopping and starting:
            entry.wake.set()  # the start thread ends it as STOPPED without starting the container
        elif stopping:
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

    def interrupt(self, task_arn: str) -> None:
        """Fault injection: a Fargate Spot interruption (SIGTERM now, SIGKILL after stopTimeout)."""
        self.stop(self._entry(task_arn).task, SPOT_INTERRUPTION_REASON, stop_code="SpotInterruption")

    def _task_and_credentials(self, task_id: str) -> tuple[Task, dict[str, str]] | None:
        with self._lock:
            entry = next((e for e in self._tasks.values() if e.task.id == task_id), None)
        return None if entry is None or entry.done.is_set() else (entry.task, entry.credentials)

    def pid(self, task_arn: str) -> int:
        """The process id of a running task's container (benchmarks measure its process tree)."""
        process = self._entry(task_arn).process
        if process is None:
            raise LookupError(f"task {task_arn} has no running container")
        return process.pid

    def freeze(self, task_arn: str) -> None:
        """Fault injection: the task's processes stop being scheduled (a hung container: no heartbeats)."""
        entry = self._entry(task_arn)
        with entry.status_lock:
            entry.frozen = True
            process = entry.process
        if process is not None:
            self._launcher.signal(process, signal.SIGSTOP)

    def crash(self, task_arn: str) -> None:
        """Fault injection: the task's processes are killed, as the OOM killer would."""
        entry = self._entry(task_arn)
        with entry.status_lock:
            entry.crashed = True
            process = entry.process
        if process is not None:
            self._launcher.signal(process, signal.SIGKILL)

    def _wait(self, entry: RunningTask) -> None:
        assert entry.process is not None
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
        if entry.process is None:
            return
        if entry.frozen:  # like stopping a paused container: it is resumed to receive SIGTERM
            self._launcher.signal(entry.process, signal.SIGCONT)
        self._launcher.terminate(entry.process, grace_seconds)

    def stop_all(self, grace_seconds: float) -> None:
        with self._lock:
            entries = [entry for entry in self._tasks.values() if not entry.done.is_set()]
        for entry in entries:
            with entry.status_lock:
                entry.stop_requested = True
                entry.task.stopped_reason = "Local stack stopped"
                entry.task.stop_code = "UserInitiated"
            entry.wake.set()
            self._terminate(entry, grace_seconds)
        for entry in entries:
            entry.done.wait(grace_seconds)
        self.metadata.stop()

    def _metadata_document(self, task_id: str) -> dict[str, Any] | None:
        with self._lock:
            entry = next((e for e in self._tasks.values() if e.task.id == task_id), None)
        if entry is None:
            return None
        task = entry.task
        definition_arn = task.task_definition_arn
        family, _, revision = definition_arn.split("/")[-1].partition(":")
        container = task.containers[0]
        return {
            "Cluster": task.cluster_arn,
            "TaskARN": task.task_arn,
            "Family": family,
            "Revision": revision,
            "DesiredStatus": task.desired_status,
            "KnownStatus": task.last_status,
            "PullStartedAt": _iso_ns(getattr(task, "pull_started_at", None)),
            "PullStoppedAt": _iso_ns(getattr(task, "pull_stopped_at", None)),
            "LaunchType": task.launch_type or "FARGATE",
            "AvailabilityZone": f"{task.region_name}a",
            "Containers": [
                {
                    "Name": container.name,
                    "Image": container.image,
                    "DesiredStatus": task.desired_status,
                    "KnownStatus": container.last_status,
                    "Type": "NORMAL",
                    "ContainerARN": container.container_arn,
                }
            ],
        }

    def _publish_state(self, task: Task) -> None:
        container = task.containers[0]
        detail = {
            "attachments": task.attachments,
            "availabilityZone": f"{task.region_name}a",
            "clusterArn": task.cluster_arn,
            "connectivity": getattr(task, "connectivity", "CONNECTED"),
            "healthStatus": getattr(task, "health_status", None),
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
            "pullStartedAt": _iso(getattr(task, "pull_started_at", None)),
            "pullStoppedAt": _iso(getattr(task, "pull_stopped_at", None)),
            "connectivityAt": _iso(getattr(task, "connectivity_at", None)),
            "version": _next_version(task),
        }
        detail = {key: value for key, value in detail.items() if value is not None}
        self._publish("aws.ecs", "ECS Task State Change", detail, [task.task_arn])
