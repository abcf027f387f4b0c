"""The embedded local stack: moto's endpoint with the template deployed into it and the code running.

    with LocalStack.start() as stack:
        stack.endpoint_url, stack.outputs["StateMachineArn"], stack.client("stepfunctions")

Lambda handlers run from functions/<name>/ in warm subprocesses, ECS tasks run the worker as a local
process, ECS services keep their tasks running and scale by their target tracking policies, SQS event source
mappings poll, EventBridge delivers service events and schedules. Stopping the
stack stops every process it started.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config
from moto.awslambda.models import LambdaFunction
from moto.ecs.models import Task, ecs_backends
from moto.events.models import Rule
from moto.stepfunctions.parser.backend.execution import Execution

from browserjobs.core.project import project_dir
from browserjobs.emulator import deploy, faults, shims
from browserjobs.emulator.access import ENFORCER
from browserjobs.emulator.ecs_runner import WORKER_COMMAND, TaskRunner, configured_task_start_seconds
from browserjobs.emulator.ecs_services import (
    ServiceScheduler,
    TargetTracking,
    configured_scale_in_cooldown_seconds,
    service_tasks,
)
from browserjobs.emulator.endpoint import Endpoint
from browserjobs.emulator.eventbridge import EventBridge, Scheduler
from browserjobs.emulator.lambda_runtime import LambdaRuntime
from browserjobs.emulator.pipes import PipeRunner
from browserjobs.emulator.processes import Launcher, LogSink
from browserjobs.emulator.settings import (
    ACCOUNT_ID,
    REGION,
    client_environment,
    configured_port,
    iam_enforced,
)
from browserjobs.emulator.shims import InvokeResult
from browserjobs.emulator.sqs_poller import EventSourcePoller


@contextlib.contextmanager
def _endpoint_log(path: Path) -> Iterator[None]:
    """moto's and the HTTP server's own logs (benign JSONPath misses, 500 tracebacks) go to a file."""
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
    loggers = [logging.getLogger(name) for name in ("moto", "werkzeug")]
    for logger in loggers:
        logger.addHandler(handler)
        logger.propagate = False
    try:
        yield
    finally:
        for logger in loggers:
            logger.removeHandler(handler)
            logger.propagate = True
        handler.close()


@dataclass(frozen=True)
class Timings:
    endpoint_seconds: float
    deploy_seconds: float

    @property
    def total_seconds(self) -> float:
        return self.endpoint_seconds + self.deploy_seconds


class LocalStack(shims.RuntimeHooks):
    def __init__(
        self,
        port: int | None = None,
        parameter_overrides: dict[str, str] | None = None,
        worker_command: Sequence[str] = WORKER_COMMAND,
        worker_dir: Path | None = None,
        log_dir: Path | None = None,
        echo: Callable[[str], None] | None = None,
        say: Callable[[str], None] = lambda line: print(line, file=sys.stderr),
        enforce_iam: bool | None = None,
        task_start_seconds: float | None = None,
        faults_spec: str | None = None,
        faults_seed: int | None = None,
        scale_in_cooldown_seconds: float | None = None,
    ):
        # Fargate's start time (LOCAL_TASK_START_SECONDS) and AWS failures on demand (LOCAL_FAULTS,
        # LOCAL_FAULTS_SEED): the arguments win over the environment; both are checked before anything runs.
        self.task_start_seconds = (
            configured_task_start_seconds() if task_start_seconds is None else task_start_seconds
        )
        self.faults = faults.Faults.from_environment(faults_spec, faults_seed)
        # LOCAL_SCALE_IN_COOLDOWN_SECONDS shortens target tracking's scale-in cooldown (ecs_services.py).
        self.scale_in_cooldown_seconds = (
            configured_scale_in_cooldown_seconds()
            if scale_in_cooldown_seconds is None
            else scale_in_cooldown_seconds
        )
        self._enforce_iam = iam_enforced() if enforce_iam is None else enforce_iam
        self._port = configured_port() if port is None else port
        self._parameter_overrides = parameter_overrides or {}
        self._worker_command = worker_command
        self._worker_dir = worker_dir
        self._say = say
        self.logs = LogSink(log_dir or project_dir() / "out" / "local" / "logs", echo=echo)
        self.launcher = Launcher()
        self._endpoint = Endpoint(self._port)
        self.endpoint_url = ""
        self.deployed: deploy.DeployedStack | None = None
        self.timings: Timings | None = None
        self._stack: contextlib.ExitStack | None = None

    # --- lifecycle -------------------------------------------------------------------------------------

    @classmethod
    @contextlib.contextmanager
    def start(cls, **kwargs: Any) -> Iterator[LocalStack]:
        stack = cls(**kwargs)
        try:
            stack.up()
            yield stack
        finally:
            stack.down()

    def up(self) -> None:
        if shims.hooks_installed():
            raise RuntimeError("a local stack already runs in this process: moto's backends are global")
        started = time.monotonic()
        self._stack = contextlib.ExitStack()
        self._stack.enter_context(_endpoint_log(self.logs.folder / "endpoint.log"))
        self.endpoint_url = self._endpoint.start()
        self._stack.callback(self._endpoint.stop)
        self._stack.callback(self._endpoint.reset)
        # Each role's credentials are checked against its policies from the first call on (deploying is
        # the operator's, whose credentials are the account administrator's).
        ENFORCER.enabled = self._enforce_iam
        ENFORCER.take_denials()
        ENFORCER.used.clear()
        self._stack.callback(setattr, ENFORCER, "enabled", False)
        endpoint_ready = time.monotonic()
        self._stack.callback(self.launcher.stop)

        self.runtime = LambdaRuntime(self.launcher, self.logs, self.endpoint_url)
        self._stack.callback(self.runtime.stop)
        self.eventbridge = EventBridge(self.runtime, self._say, self.faults)
        self.tasks = TaskRunner(
            self.launcher,
            self.logs,
            self.endpoint_url,
            self.eventbridge.publish,
            command=self._worker_command,
            cwd=self._worker_dir,
            start_seconds=self.task_start_seconds,
        )
        self._stack.callback(self.tasks.stop_all, 10.0)
        self._stack.callback(self.eventbridge.close)
        shims.install_hooks(self)
        self._stack.callback(shims.install_hooks, None)

        self.deployed = deploy.deploy(
            self.session(), self.endpoint_url, parameter_overrides=self._parameter_overrides
        )
        self.runtime.register_sources(self.deployed.function_sources)
        faults.activate(self.faults)  # after the deploy: faults are for the workload, not for CreateStack
        self._stack.callback(faults.activate, None)

        # After the deploy (which creates the services), stopped before the tasks are (callbacks run last
        # first): a scheduler still running would replace the tasks the stack is stopping.
        self.services = ServiceScheduler(
            self.tasks, TargetTracking(self.scale_in_cooldown_seconds, say=self._say), say=self._say
        )
        self.services.start()
        self._stack.callback(self.services.stop)

        self.poller = EventSourcePoller(self.runtime, self.session(), self.endpoint_url, self._say)
        self.poller.start()
        self._stack.callback(self.poller.stop)
        self.pipes = PipeRunner(self.session(), self.endpoint_url, self._say)
        self.pipes.start()
        self._stack.callback(self.pipes.stop)
        self.scheduler = Scheduler(self.eventbridge, self._say)
        self.scheduler.start()
        self._stack.callback(self.scheduler.stop)
        self.timings = Timings(endpoint_ready - started, time.monotonic() - endpoint_ready)

    def down(self) -> None:
        if self._stack is not None:
            self._stack.close()
            self._stack = None

    # --- what clients need -------------------------------------------------------------------------------

    @property
    def outputs(self) -> dict[str, str]:
        assert self.deployed is not None, "the stack is not up"
        return self.deployed.outputs

    @property
    def stack_name(self) -> str:
        assert self.deployed is not None, "the stack is not up"
        return self.deployed.name

    def environment(self) -> dict[str, str]:
        """Variables that point an AWS SDK or the AWS CLI at this stack."""
        return client_environment(self.endpoint_url)

    def session(self) -> boto3.Session:
        env = self.environment()
        return boto3.Session(
            aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
            region_name=REGION,
        )

    def client(self, service: str) -> Any:
        return self.session().client(
            service,
            endpoint_url=self.endpoint_url,
            config=Config(retries={"max_attempts": 2, "mode": "standard"}),
        )

    def access_denials(self) -> list[Any]:
        """Calls the endpoint refused since the last look, each naming the role and the missing action."""
        return ENFORCER.take_denials()

    def fire_schedule(self, rule_name: str) -> None:
        """Deliver a scheduled rule's event now instead of waiting for its period."""
        for rule in self.scheduler.scheduled_rules():
            if rule.name == rule_name:
                self.eventbridge.fire_schedule(rule)
                return
        raise KeyError(rule_name)

    def freeze_task(self, task_arn: str) -> None:
        """Fault injection: the task hangs (no heartbeats) until it is stopped."""
        self.tasks.freeze(task_arn)

    def crash_task(self, task_arn: str) -> None:
        """Fault injection: the task's processes are killed (SIGKILL, exit 137), as by the OOM killer."""
        self.tasks.crash(task_arn)

    def interrupt_task(self, task_arn: str) -> None:
        """Fault injection: a Fargate Spot interruption. The task gets SIGTERM at once and SIGKILL after its
        container's stopTimeout (the two-minute notice; 120 s is the most stopTimeout allows), and stops
        with stopCode SpotInterruption; a service replaces it
        (https://docs.aws.amazon.com/AmazonECS/latest/developerguide/fargate-capacity-providers.html)."""
        self.tasks.interrupt(task_arn)

    def service_task_arns(self, cluster: str, service: str) -> list[str]:
        """The ARNs of a service's tasks that are meant to run (to pick one to crash or interrupt)."""
        found = ecs_backends[ACCOUNT_ID][REGION]._get_service(cluster, service)
        return [task.task_arn for task in service_tasks(found)]

    # --- shims.RuntimeHooks -------------------------------------------------------------------------

    def invoke_function(self, function: LambdaFunction, payload: bytes, invocation_type: str) -> InvokeResult:
        return self.runtime.invoke(function, payload, invocation_type)

    def task_started(self, task: Task) -> None:
        self.tasks.start(task)

    def stop_task(self, task: Task, reason: str) -> bool:
        return self.tasks.stop(task, reason)

    def execution_status_changed(self, execution: Execution, status: str) -> None:
        self.eventbridge.execution_status_changed(execution, status)

    def deliver_to_target(self, rule: Rule, target: dict[str, Any], event: Any) -> None:
        self.eventbridge.deliver(rule, target, event)
