"""Step Functions: where moto differs from AWS, and the shim that makes the local stack behave as AWS does.

Applied by browserjobs.emulator.shims.apply(); importing this module changes nothing.
"""

from __future__ import annotations

import datetime
import functools
import json
import re
import threading
from typing import Any

import botocore.session
from moto.core.responses import EmptyResult
from moto.stepfunctions.parser.api import HistoryEventType, TaskTimedOutEventDetails
from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import FailureEvent
from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name import StatesErrorName
from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name_type import (
    StatesErrorNameType,
)
from moto.stepfunctions.parser.asl.component.eval_component import EvalComponent
from moto.stepfunctions.parser.asl.component.state import state as state_module

# The factory imports every comparison operator, so that all of them are subclasses of Operator here.
from moto.stepfunctions.parser.asl.component.state.choice.comparison.operator import factory as _  # noqa: F401
from moto.stepfunctions.parser.asl.component.state.choice.comparison.operator.implementations import (
    is_operator,
)
from moto.stepfunctions.parser.asl.component.state.choice.comparison.operator.operator import Operator
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
    state_task_service_callback as callback_integration,
)
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
    state_task_service_ecs as ecs_integration,
)
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service import (
    StateTaskService,
)
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_aws_sdk import (
    StateTaskServiceAwsSdk,
)
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_ecs import (
    StateTaskServiceEcs,
)
from moto.stepfunctions.parser.asl.component.state.exec.state_task.state_task import StateTask
from moto.stepfunctions.parser.asl.eval.callback.callback import CallbackEndpoint, HeartbeatTimeoutError
from moto.stepfunctions.parser.asl.eval.environment import Environment
from moto.stepfunctions.parser.asl.eval.event.event_detail import EventDetails
from moto.stepfunctions.parser.asl.eval.program_state import ProgramStopped
from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser
from moto.stepfunctions.parser.asl.utils.boto_client import boto_client_for as _interpreter_client
from moto.stepfunctions.parser.asl.utils.json_path import extract_json
from moto.stepfunctions.parser.backend.execution import BaseExecutionWorkerCommunication, Execution
from moto.stepfunctions.parser.backend.execution_worker import ExecutionWorker
from moto.stepfunctions.parser.utils import camel_to_snake_case, long_uid
from moto.stepfunctions.responses import StepFunctionResponse

from browserjobs.emulator.shims import hooks

# --- Step Functions: parameter and response casing (ECS, AWS SDK integrations) -------------------------
# The interpreter passes the ASL's PascalCase parameters straight to boto3 (KeyError 'Cluster' for
# ecs:runTask, and for aws-sdk:ecs:stopTask) and hands back boto3's camelCase response (KeyError 'Tasks').
# The base class already converts both ways given botocore's shapes; these integrations never call it.


@functools.cache
def _operation(service: str, action: str) -> Any:
    model = botocore.session.get_session().get_service_model(service)
    by_snake_name = {camel_to_snake_case(name): name for name in model.operation_names}
    return model.operation_model(by_snake_name[camel_to_snake_case(action)])


def shim_integration_casing() -> None:
    def normalise_parameters(self, parameters, boto_service_name=None, service_action_name=None):
        operation = _operation(
            self._get_boto_service_name(boto_service_name), service_action_name or self.resource.api_action
        )
        self._to_boto_request(parameters, operation.input_shape)

    def normalise_response(self, response, boto_service_name=None, service_action_name=None):
        operation = _operation(
            self._get_boto_service_name(boto_service_name), service_action_name or self.resource.api_action
        )
        self._from_boto_response(response, operation.output_shape)

    for integration in (StateTaskServiceEcs, StateTaskServiceAwsSdk):
        integration._normalise_parameters = normalise_parameters
        integration._normalise_response = normalise_response


# --- Step Functions: SendTaskFailure's cause ---------------------------------------------------------------
# moto's SendTaskFailure reads the error and drops the cause, so a caught error's Cause is null.


def shim_send_task_failure_cause() -> None:
    def send_task_failure(self):
        backend = self.stepfunction_backend
        backend.send_task_failure(
            self._get_param("taskToken"), error=self._get_param("error"), cause=self._get_param("cause")
        )
        return EmptyResult()

    StepFunctionResponse.send_task_failure = send_task_failure


# --- Step Functions: ECS RunTask's CapacityProviderStrategy ---------------------------------------------
# The interpreter silently drops RunTask parameters missing from its list; CapacityProviderStrategy (which
# Step Functions passes through, e.g. for FARGATE_SPOT) is missing, so moto looks for EC2 instances instead.


def shim_ecs_capacity_provider_strategy() -> None:
    ecs_integration._SUPPORTED_API_PARAM_BINDINGS["runtask"].add("CapacityProviderStrategy")


# --- Step Functions: heartbeat expiry is States.HeartbeatTimeout -----------------------------------------
# moto raises a TimeoutError subclass for an expired heartbeat and reports it as States.Timeout; AWS
# reports States.HeartbeatTimeout (and keeps States.Timeout for TimeoutSeconds).


def shim_heartbeat_timeout_error_name() -> None:
    original = StateTask._from_error

    def from_error(self, env, ex):
        if not isinstance(ex, HeartbeatTimeoutError):
            return original(self, env, ex)
        error = StatesErrorNameType.StatesHeartbeatTimeout.to_name()
        details = TaskTimedOutEventDetails(error=error)
        if isinstance(self, StateTaskService):
            details["resourceType"] = self._get_sfn_resource_type()
            details["resource"] = self._get_sfn_resource()
        return FailureEvent(
            env=env,
            error_name=StatesErrorName(typ=StatesErrorNameType.StatesHeartbeatTimeout),
            event_type=HistoryEventType.TaskTimedOut,
            event_details=EventDetails(taskTimedOutEventDetails=details),
        )

    StateTask._from_error = from_error


# --- Step Functions: early heartbeats -----------------------------------------------------------------------
# A SendTaskHeartbeat that arrives before the interpreter starts watching heartbeats (the worker may start
# beating as soon as RunTask returns), or for a task without HeartbeatSeconds, is InvalidToken in moto;
# AWS accepts any heartbeat for an open token.


def shim_early_heartbeats() -> None:
    def notify_heartbeat(self):
        if self._heartbeat_endpoint is not None:
            self._heartbeat_endpoint.notify()
        return True

    CallbackEndpoint.notify_heartbeat = notify_heartbeat


# --- Step Functions: a new task token for every attempt -------------------------------------------------
# moto makes a callback task's token once, when the state is entered, so a retried attempt runs with the
# token (and the callback endpoint) of the attempt that failed: it ends at once with that attempt's stale
# outcome, and a late callback for the old attempt (the crash hook's, for a task that already reported)
# lands on the new one. On AWS every attempt is scheduled as a new task and waits for a callback of its own.


def shim_callback_token_per_attempt() -> None:
    callback_task = callback_integration.StateTaskServiceCallback
    original_eval_execution = callback_task._eval_execution

    def eval_execution(self, env):
        context = env.states.context_object
        if "Task" in context.context_object_data:  # a callback task: this attempt waits on a token of its own
            env.callback_pool_manager.add(context.update_task_token())
        return original_eval_execution(self, env)

    callback_task._eval_execution = eval_execution


# --- Step Functions: StopExecution aborts at once ---------------------------------------------------------
# moto's StopExecution only flags the program: a task waiting for its callback keeps waiting (until a
# heartbeat or its timeout), and the timeout error it then raises overwrites the stop, so the execution
# ends FAILED (States.Timeout) instead of ABORTED. On AWS it is ABORTED at once, with ExecutionAborted.
# (The interrupted wait still leaves a TaskTimedOut event before ExecutionAborted in the history.)


def shim_stop_execution() -> None:
    original_stop = ExecutionWorker.stop

    def stop(self, stop_date, error, cause):
        original_stop(self, stop_date=stop_date, error=error, cause=cause)
        for endpoint in list(self.env.callback_pool_manager._pool.values()):
            endpoint.interrupt_all()  # wake every task waiting for a callback

    ExecutionWorker.stop = stop

    for name in ("set_error", "set_timed_out"):
        original = getattr(Environment, name)

        def keep_stopped(self, *args, _original=original, **kwargs):
            if isinstance(self._program_state, ProgramStopped):
                return None
            return _original(self, *args, **kwargs)

        setattr(Environment, name, keep_stopped)


# --- Step Functions: Choice comparisons against the context object -----------------------------------------
# A *Path comparison whose value is a context object path (e.g. "TimestampGreaterThanPath":
# "$$.State.EnteredTime") fails in moto with a JSONPath parse error; AWS resolves it like any reference path.


def _all_subclasses(cls: type) -> list[type]:
    return [sub for direct in cls.__subclasses__() for sub in (direct, *_all_subclasses(direct))]


def shim_choice_context_object_paths() -> None:
    operators = {cls.impl_name(): cls for cls in _all_subclasses(Operator) if "impl_name" in vars(cls)}
    for name, path_operator in operators.items():
        literal_operator = operators.get(name.removesuffix("Path"))
        if not name.endswith("Path") or literal_operator is None:
            continue

        def evaluate(env, value, _path=path_operator.eval, _literal=literal_operator.eval):
            if isinstance(value, str) and value.startswith("$$"):
                context = env.states.context_object.context_object_data
                return _literal(env, extract_json("$" + value[2:], context))
            return _path(env, value)

        path_operator.eval = staticmethod(evaluate)


# --- Step Functions: timestamps ---------------------------------------------------------------------------
# moto writes $$.State.EnteredTime as Python's isoformat ("...17.293123+00:00") where AWS writes
# "...17.293Z", and its Timestamp* comparisons accept only "%Y-%m-%dT%H:%M:%SZ", so any RFC 3339 value with
# fractional seconds or an offset (AWS accepts both) compares as false.

_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")


def aws_timestamp(moment: datetime.datetime) -> str:
    """The way Step Functions writes times in the context object: UTC, milliseconds, Z."""
    return moment.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def shim_timestamps() -> None:
    original_state_data = state_module.StateData

    def state_data(**fields):
        fields["EnteredTime"] = aws_timestamp(datetime.datetime.fromisoformat(fields["EnteredTime"]))
        return original_state_data(**fields)

    def string_to_timestamp(string):
        if not isinstance(string, str) or not _RFC3339.match(string):
            return None
        return datetime.datetime.fromisoformat(string).astimezone(datetime.UTC)

    state_module.StateData = state_data
    is_operator.IsTimestamp.string_to_timestamp = staticmethod(string_to_timestamp)


# --- Step Functions: execution status change events -------------------------------------------------------
# AWS emits "Step Functions Execution Status Change" to EventBridge when an execution starts and ends;
# moto emits nothing.


def shim_execution_status_events() -> None:
    original_worker = Execution._get_start_execution_worker
    original_terminated = BaseExecutionWorkerCommunication.terminated

    def worker(self):
        # RUNNING goes out before the worker's thread starts: a short execution could otherwise end, and
        # send SUCCEEDED, before its RUNNING event, an order AWS never shows.
        execution_worker = original_worker(self)
        launch = execution_worker.start

        def start() -> None:
            if hooks.current() is not None:
                hooks.current().execution_status_changed(self, "RUNNING")
            launch()

        execution_worker.start = start
        return execution_worker

    def terminated(self):
        original_terminated(self)
        if hooks.current() is not None:
            hooks.current().execution_status_changed(self.execution, self.execution.status)

    Execution._get_start_execution_worker = worker
    BaseExecutionWorkerCommunication.terminated = terminated


# --- Step Functions: one parse per definition -------------------------------------------------------------
# moto parses the definition again (ANTLR, in Python) for every execution before its first state: 0.1 to
# 0.3 s of CPU for the job workflow, on every job's path and under the GIL the whole local stack shares.
# The parsed program keeps no execution state (each execution's Environment holds it, keyed by the
# components' heap keys), so executions of one definition share one parse. Concurrent executions then read
# heap keys from the same components: a key is set once, atomically, so that all of them agree on it.

_HEAP_KEY = "_EvalComponent__heap_key"


def shim_parse_once_per_definition() -> None:
    programs: dict[str, Any] = {}
    parsing = threading.Lock()

    def evaluation_entrypoint(self):
        definition = self._evaluation_details.state_machine_details.definition
        with parsing:
            if definition not in programs:
                programs[definition] = AmazonStateLanguageParser.parse(definition)[0]
            return programs[definition]

    def heap_key(self):
        key = self.__dict__.get(_HEAP_KEY)
        return key if key is not None else self.__dict__.setdefault(_HEAP_KEY, long_uid())

    ExecutionWorker._get_evaluation_entrypoint = evaluation_entrypoint
    EvalComponent.heap_key = property(heap_key)


# --- Step Functions: JSONPath expressions parsed once ------------------------------------------------------
# The interpreter parses every path it evaluates (InputPath, Parameters' "x.$", ResultPath, ...) on every
# evaluation, and jsonpath_ng builds a new PLY parser for each parse: a sixth of the local stack's CPU with
# sixteen executions at once. A parsed path keeps no evaluation state (find and update read it only), so
# executions share one parse per path string.


def shim_jsonpath_parse_once() -> None:
    from moto.stepfunctions.parser.asl.component.common.path import result_path
    from moto.stepfunctions.parser.asl.utils import json_path

    for module in (json_path, result_path):
        if not hasattr(module.parse, "cache_info"):
            module.parse = functools.lru_cache(maxsize=4096)(module.parse)


# --- Step Functions: the ECS integration's error names -----------------------------------------------------
# moto's ECS integration turns every ECS error (ThrottlingException, ClientException, ...) and a RunTask
# response that lists `failures` and no task (IndexError on Tasks[0]) into States.Runtime, which no Retry or
# Catch can match. AWS reports an error of the ECS API as ECS.AmazonECSException, e.g. a RunTask without
# capacity (https://repost.aws/knowledge-center/ecs-fargate-runtask-capacity: "Step Functions logs
# ECS.AmazonECSException in its ErrorEquals field"), and a RunTask answered with `failures` as
# AmazonECS.Unknown, the failures being the cause.

ECS_API_ERROR = "ECS.AmazonECSException"
ECS_RUN_TASK_FAILURES_ERROR = "AmazonECS.Unknown"


def _describe_started_task(client: Any, task: dict[str, Any], attempts: int = 5) -> dict[str, Any]:
    """moto's integration reads the task it started back with DescribeTasks (its output is that description).
    The task runs whatever that read meets: a throttled read is retried, as the service's own read would be,
    instead of failing the state and leaving the started task running unseen."""
    import time

    from botocore.exceptions import ClientError

    for attempt in range(attempts):
        try:
            return client.describe_tasks(cluster=task["clusterArn"], tasks=[task["taskArn"]])
        except ClientError as error:
            if error.response["Error"]["Code"] != "ThrottlingException" or attempt == attempts - 1:
                raise
            time.sleep(0.2 * 2**attempt)  # backoff between attempts, not a wait for a condition
    raise AssertionError("unreachable")


@functools.cache
def _service_ecs_client(region: str) -> Any:
    """An ECS client with the interpreter's own keys, which the endpoint does not check against a role."""
    return _interpreter_client(region=region, service="ecs")


class RunTaskFailures(Exception):
    """RunTask answered with failures and no task."""


def _ecs_api_error_cause(ex: Any) -> str:
    """An ECS API error (a ClientError) as Step Functions' ECS integration words its cause."""
    metadata = ex.response.get("ResponseMetadata", {})
    return (
        f"{ex.response['Error'].get('Message', '')} (Service: AmazonECS; "
        f"Status Code: {metadata.get('HTTPStatusCode')}; "
        f"Error Code: {ex.response['Error'].get('Code')}; "
        f"Request ID: {metadata.get('RequestId')}; Proxy: null)"
    )


def shim_ecs_integration_errors() -> None:
    from botocore.exceptions import ClientError
    from moto.stepfunctions.parser.api import TaskFailedEventDetails
    from moto.stepfunctions.parser.asl.component.common.error_name.custom_error_name import CustomErrorName

    original_eval_service_task = StateTaskServiceEcs._eval_service_task
    original_from_error = StateTaskServiceEcs._from_error

    def eval_service_task(self, env, resource_runtime_part, normalised_parameters, state_credentials):
        if self._get_boto_service_action() != "run_task":
            return original_eval_service_task(
                self, env, resource_runtime_part, normalised_parameters, state_credentials
            )
        from moto.stepfunctions.parser.asl.utils.boto_client import boto_client_for

        # moto's own run_task branch, with the failures checked before Tasks[0] is read.
        client = boto_client_for(
            region=resource_runtime_part.region, service="ecs", state_credentials=state_credentials
        )
        response = client.run_task(**normalised_parameters)
        if not response.get("tasks"):
            raise RunTaskFailures(json.dumps({"Failures": response.get("failures", [])}))
        task = response["tasks"][0]
        # Read back as the service, not as the role: for the callback pattern Step Functions needs only
        # ecs:RunTask from the execution role (https://docs.aws.amazon.com/step-functions/latest/dg/ecs-iam.html).
        reader = _service_ecs_client(resource_runtime_part.region)
        described = _describe_started_task(reader, task)
        described.pop("ResponseMetadata", None)
        self._normalise_response(response=described, service_action_name="describe_tasks")
        env.stack.append(described)
        return None

    def from_error(self, env, ex):
        if isinstance(ex, RunTaskFailures):
            error, cause = ECS_RUN_TASK_FAILURES_ERROR, str(ex)
        elif isinstance(ex, ClientError):
            error, cause = ECS_API_ERROR, _ecs_api_error_cause(ex)
        else:
            return original_from_error(self, env, ex)
        return FailureEvent(
            env=env,
            error_name=CustomErrorName(error),
            event_type=HistoryEventType.TaskFailed,
            event_details=EventDetails(
                taskFailedEventDetails=TaskFailedEventDetails(
                    error=error,
                    cause=cause,
                    resource=self._get_sfn_resource(),
                    resourceType=self._get_sfn_resource_type(),
                )
            ),
        )

    StateTaskServiceEcs._eval_service_task = eval_service_task
    StateTaskServiceEcs._from_error = from_error
