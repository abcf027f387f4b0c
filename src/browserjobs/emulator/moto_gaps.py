"""Every place where moto 5.2.5 behaves differently from AWS, fixed in one module.

`apply()` installs the shims once per process; `install_hooks()` connects the ones that need the local
stack's runtime (running Lambda handlers, starting workers, delivering events). Without hooks the
runtime-dependent shims fall back to moto's own behaviour, so importing this module changes nothing.

Each shim has a test in tests/unit/emulator/test_moto_gaps.py that asserts unpatched moto still misbehaves:
when one of those tests fails, moto has fixed the gap upstream and the shim should go.
"""

from __future__ import annotations

import base64
import copy
import datetime
import functools
import json
import re
import sys
import threading
from dataclasses import dataclass
from typing import Any, Protocol

import botocore.session
from moto.awslambda.models import LambdaFunction
from moto.core.responses import EmptyResult
from moto.core.utils import pascal_to_camelcase, remap_nested_keys
from moto.dynamodb.responses import DynamoHandler
from moto.ecs.models import EC2ContainerServiceBackend, Task, TaskDefinition, ecs_backends
from moto.events.models import EventTemplateParser, Rule
from moto.iam.aws_managed_policies import aws_managed_policies_data
from moto.iam.models import AWSManagedPolicy, Role, iam_backends
from moto.moto_api import state_manager
from moto.s3 import notifications as s3_notifications
from moto.s3.models import FakeBucket
from moto.sqs.models import Queue
from moto.stepfunctions.models import StateMachine
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
from moto.stepfunctions.responses import get_backend as sfn_backend
from moto.stepfunctions.utils import cfn_to_api_tags
from moto.utilities.arns import parse_arn
from moto.utilities.utils import get_partition


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
_applied = False
_apply_lock = threading.Lock()


def install_hooks(hooks: RuntimeHooks | None) -> None:
    global _hooks
    _hooks = hooks


def hooks_installed() -> bool:
    return _hooks is not None


def apply() -> None:
    """Install every shim (idempotent)."""
    global _applied
    with _apply_lock:
        if _applied:
            return
        _shim_integration_casing()
        _shim_send_task_failure_cause()
        _shim_ecs_capacity_provider_strategy()
        _shim_heartbeat_timeout_error_name()
        _shim_early_heartbeats()
        _shim_callback_token_per_attempt()
        _shim_stop_execution()
        _shim_choice_context_object_paths()
        _shim_timestamps()
        _shim_cloudformation_state_machines()
        _shim_cloudformation_bucket_notifications()
        _shim_cloudformation_role_managed_policies()
        _shim_ecs_task_lifecycle()
        _shim_ecs_numeric_container_properties()
        _shim_cloudformation_task_definition_properties()
        _shim_lambda_invoke()
        _shim_s3_notifications_async()
        _shim_sqs_inline_event_source_mapping()
        _shim_eventbridge_targets()
        _shim_execution_status_events()
        _shim_dynamodb_atomic_requests()
        _shim_parse_once_per_definition()
        _shim_cloudformation_reads_during_create()
        _shim_ecs_inactive_task_definition()
        _shim_ecs_integration_errors()
        _applied = True


# --- Step Functions: parameter and response casing (ECS, AWS SDK integrations) -------------------------
# The interpreter passes the ASL's PascalCase parameters straight to boto3 (KeyError 'Cluster' for
# ecs:runTask, and for aws-sdk:ecs:stopTask) and hands back boto3's camelCase response (KeyError 'Tasks').
# The base class already converts both ways given botocore's shapes; these integrations never call it.


@functools.cache
def _operation(service: str, action: str) -> Any:
    model = botocore.session.get_session().get_service_model(service)
    by_snake_name = {camel_to_snake_case(name): name for name in model.operation_names}
    return model.operation_model(by_snake_name[camel_to_snake_case(action)])


def _shim_integration_casing() -> None:
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


def _shim_send_task_failure_cause() -> None:
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


def _shim_ecs_capacity_provider_strategy() -> None:
    ecs_integration._SUPPORTED_API_PARAM_BINDINGS["runtask"].add("CapacityProviderStrategy")


# --- Step Functions: heartbeat expiry is States.HeartbeatTimeout -----------------------------------------
# moto raises a TimeoutError subclass for an expired heartbeat and reports it as States.Timeout; AWS
# reports States.HeartbeatTimeout (and keeps States.Timeout for TimeoutSeconds).


def _shim_heartbeat_timeout_error_name() -> None:
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


def _shim_early_heartbeats() -> None:
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


def _shim_callback_token_per_attempt() -> None:
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


def _shim_stop_execution() -> None:
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


def _shim_choice_context_object_paths() -> None:
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


def _shim_timestamps() -> None:
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


# --- CloudFormation: AWS::StepFunctions::StateMachine --------------------------------------------------
# moto's CloudFormation creates state machines in the backend that cannot execute them (even with
# execute_state_machine on), ignores DefinitionSubstitutions, Definition and StateMachineType.


def _substituted_definition(properties: dict[str, Any]) -> str:
    definition = properties.get("DefinitionString") or json.dumps(properties.get("Definition", {}))
    for key, value in (properties.get("DefinitionSubstitutions") or {}).items():
        text = str(value).lower() if isinstance(value, bool) else str(value)
        definition = definition.replace("${" + key + "}", text)
    return definition


def _shim_cloudformation_state_machines() -> None:
    def create(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):
        properties = cloudformation_json["Properties"]
        return sfn_backend(account_id, region_name).create_state_machine(
            name=properties.get("StateMachineName", resource_name),
            definition=_substituted_definition(properties),
            roleArn=properties.get("RoleArn", ""),
            tags=cfn_to_api_tags(properties.get("Tags", [])),
            sm_type=properties.get("StateMachineType", "STANDARD"),
        )

    def delete(cls, resource_name, cloudformation_json, account_id, region_name):
        backend = sfn_backend(account_id, region_name)
        for machine in list(backend.state_machines):
            if resource_name in (machine.name, machine.arn):
                backend.delete_state_machine(machine.arn)

    StateMachine.create_from_cloudformation_json = classmethod(create)
    StateMachine.delete_from_cloudformation_json = classmethod(delete)


# --- ECS: the local runner owns a task's lifecycle ------------------------------------------------------
# moto advances a task one status per DescribeTasks call (RUNNING -> ... -> STOPPED after a few polls),
# StopTask jumps straight to STOPPED, and RunTask starts nothing. Here a task stays RUNNING until its
# process exits, StopTask asks the process to stop, and RunTask starts the worker.


def _shim_ecs_task_lifecycle() -> None:
    state_manager.set_transition(
        model_name="ecs::task", transition={"progression": "manual", "times": sys.maxsize}
    )
    original_run_task = EC2ContainerServiceBackend.run_task
    original_stop_task = EC2ContainerServiceBackend.stop_task

    def run_task(self, *args, **kwargs):
        tasks = original_run_task(self, *args, **kwargs)
        if _hooks is not None:
            for task in tasks:
                _hooks.task_started(task)
        return tasks

    def stop_task(self, cluster_str, task_str, reason):
        task = _find_task(self, cluster_str, task_str)
        if task is not None and _hooks is not None and _hooks.stop_task(task, reason):
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


def _shim_ecs_numeric_container_properties() -> None:
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


# --- CloudFormation: AWS::ECS::TaskDefinition properties -----------------------------------------------
# moto's CloudFormation registers a task definition with its family, containers, volumes and memory only:
# no task role (so the worker would get no role's credentials), no execution role, CPU, network mode,
# compatibilities, runtime platform or tags (which PropagateTags copies onto the task at RunTask).
# https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/aws-resource-ecs-taskdefinition.html

_TASK_DEFINITION_PROPERTIES = {
    "TaskRoleArn": "task_role_arn",
    "ExecutionRoleArn": "execution_role_arn",
    "Cpu": "cpu",
    "Memory": "memory",
    "NetworkMode": "network_mode",
    "RequiresCompatibilities": "requires_compatibilities",
    "RuntimePlatform": "runtime_platform",
    "EphemeralStorage": "ephemeral_storage",
}


def _shim_cloudformation_task_definition_properties() -> None:
    def create(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):
        properties = cloudformation_json["Properties"]
        extra = {
            argument: remap_nested_keys(properties[key], pascal_to_camelcase)
            if isinstance(properties[key], dict)
            else properties[key]
            for key, argument in _TASK_DEFINITION_PROPERTIES.items()
            if key in properties
        }
        tags = [{"key": tag["Key"], "value": tag["Value"]} for tag in properties.get("Tags", [])]
        return ecs_backends[account_id][region_name].register_task_definition(
            family=properties.get("Family", resource_name),
            container_definitions=remap_nested_keys(
                properties.get("ContainerDefinitions", []), pascal_to_camelcase
            ),
            volumes=remap_nested_keys(properties.get("Volumes", []), pascal_to_camelcase),
            tags=tags or None,
            **extra,
        )

    TaskDefinition.create_from_cloudformation_json = classmethod(create)


# --- CloudFormation: AWS::S3::Bucket NotificationConfiguration -------------------------------------------
# moto's CloudFormation creates the bucket and drops its NotificationConfiguration (which is how SAM wires
# S3 events to a function), so nothing is ever notified.

_NOTIFICATION_TARGETS = {
    "LambdaConfigurations": ("CloudFunctionConfiguration", "Function", "CloudFunction"),
    "QueueConfigurations": ("QueueConfiguration", "Queue", "Queue"),
    "TopicConfigurations": ("TopicConfiguration", "Topic", "Topic"),
}


def _bucket_notifications(configuration: dict[str, Any]) -> dict[str, Any]:
    """CloudFormation's NotificationConfiguration in the shape moto's S3 backend stores."""
    converted: dict[str, Any] = {}
    for cfn_key, (api_key, cfn_target, api_target) in _NOTIFICATION_TARGETS.items():
        for item in configuration.get(cfn_key, []):
            entry: dict[str, Any] = {api_target: item[cfn_target], "Event": [item["Event"]]}
            rules = item.get("Filter", {}).get("S3Key", {}).get("Rules")
            if rules:
                entry["Filter"] = {"S3Key": {"FilterRule": rules}}
            converted.setdefault(api_key, []).append(entry)
    if configuration.get("EventBridgeConfiguration", {}).get("EventBridgeEnabled"):
        converted["EventBridgeConfiguration"] = {}
    return converted


def _shim_cloudformation_bucket_notifications() -> None:
    original = FakeBucket.create_from_cloudformation_json.__func__

    def create(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):
        bucket = original(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs)
        configuration = cloudformation_json.get("Properties", {}).get("NotificationConfiguration")
        if configuration:
            bucket.set_notification_configuration(_bucket_notifications(configuration))
        return bucket

    FakeBucket.create_from_cloudformation_json = classmethod(create)


# --- CloudFormation: a role's ManagedPolicyArns ----------------------------------------------------------
# moto's AWS::IAM::Role puts the inline Policies and drops ManagedPolicyArns, so every role SAM gives
# AWSLambdaBasicExecutionRole, AWSLambdaSQSQueueExecutionRole or AWSXrayWriteOnlyAccess lacks them; the
# local endpoint checks roles against their policies, so the attachments must exist as on AWS. AWS managed
# policies exist in every account; moto loads its copies of them only when configured to, so the ones a
# role names are added from that copy.


def _ensure_aws_managed_policy(backend: Any, policy_arn: str) -> None:
    name = policy_arn.rsplit("/", 1)[-1]
    if policy_arn in backend.managed_policies or ":iam::aws:policy/" not in policy_arn:
        return
    known = json.loads(aws_managed_policies_data)
    if name in known:
        policy = AWSManagedPolicy.from_data(name, backend.account_id, backend.region_name, known[name])
        backend.managed_policies[policy.arn] = policy


def _shim_cloudformation_role_managed_policies() -> None:
    original = Role.create_from_cloudformation_json.__func__

    def create(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):
        role = original(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs)
        backend = iam_backends[account_id][get_partition(region_name)]
        for policy_arn in cloudformation_json.get("Properties", {}).get("ManagedPolicyArns", []):
            _ensure_aws_managed_policy(backend, policy_arn)
            backend.attach_role_policy(policy_arn, role.name)
        return role

    Role.create_from_cloudformation_json = classmethod(create)


# --- Lambda: run the handler -------------------------------------------------------------------------------
# Without Docker moto cannot run code at all, marks every failure "Handled" and runs Event invocations
# synchronously. The hook runs the real handler and reports errors as AWS does.


def _header(headers: Any, name: str) -> str | None:
    for key, value in dict(headers or {}).items():
        if key.lower() == name:
            return value
    return None


def _shim_lambda_invoke() -> None:
    original = LambdaFunction.invoke

    def invoke(self, body, request_headers, response_headers):
        if _hooks is None:
            return original(self, body, request_headers, response_headers)
        invocation_type = _header(request_headers, "x-amz-invocation-type") or "RequestResponse"
        if invocation_type == "DryRun":
            return b""
        payload = body.encode() if isinstance(body, str) else (body or b"{}")
        result = _hooks.invoke_function(self, payload, invocation_type)
        if result.function_error:
            response_headers["x-amz-function-error"] = result.function_error
        if invocation_type == "RequestResponse" and _header(request_headers, "x-amz-log-type") == "Tail":
            response_headers["x-amz-log-result"] = base64.b64encode(result.log_tail[-4096:].encode()).decode()
        return result.payload

    LambdaFunction.invoke = invoke


# --- S3: notifications invoke Lambda asynchronously -------------------------------------------------------
# moto invokes the function inside PutObject and waits for it; S3 invokes asynchronously.


def _shim_s3_notifications_async() -> None:
    original = s3_notifications._invoke_awslambda

    def invoke_async(account_id, event_body, fn_arn, region_name):
        if _hooks is None:
            return original(account_id, event_body, fn_arn, region_name)
        from moto.awslambda.utils import get_backend

        function = get_backend(account_id, region_name).get_function(fn_arn)
        _hooks.invoke_function(function, json.dumps(event_body).encode(), "Event")
        return None

    s3_notifications._invoke_awslambda = invoke_async


# --- SQS: event source mappings poll, they are not called from SendMessage --------------------------------
# moto invokes the function inside SendMessage with one message, ignores batch size, batching windows and
# ReportBatchItemFailures, and never retries. The local stack polls the queue like Lambda's pollers do.


def _shim_sqs_inline_event_source_mapping() -> None:
    # moto writes the mapping into this dict at CreateEventSourceMapping and reads it in SendMessage; an
    # always-empty view stops the inline call. The mappings themselves live in the Lambda backend.
    Queue.lambda_event_source_mappings = property(lambda self: {}, lambda self, value: None)


# --- EventBridge: Lambda and Step Functions targets -------------------------------------------------------
# moto's PutEvents delivers to SQS, logs and buses only (Lambda and Step Functions targets raise
# NotImplementedError), does not skip DISABLED rules, and sends every event to a scheduled rule (its empty
# pattern matches anything), where AWS delivers only the rule's own "Scheduled Event".


def _target_input(target: dict[str, Any], event: dict[str, Any]) -> Any:
    if "Input" in target:
        return json.loads(target["Input"])
    if "InputTransformer" in target:
        transformer = target["InputTransformer"]
        return EventTemplateParser.parse(
            input_template=transformer.get("InputTemplate"),
            input_paths_map=transformer.get("InputPathsMap", {}),
            event=event,
        )
    if "InputPath" in target:
        from jsonpath_ng import parse as jsonpath

        matches = [match.value for match in jsonpath(target["InputPath"]).find(event)]
        return matches[0] if matches else None
    return event


def _is_own_schedule(rule: Rule, event: dict[str, Any]) -> bool:
    return (
        event.get("source") == "aws.events"
        and event.get("detail-type") == "Scheduled Event"
        and rule.arn in (event.get("resources") or [])
    )


def _shim_eventbridge_targets() -> None:
    original = Rule.send_to_targets

    def send_to_targets(self, original_event, transform_input=True):
        if _hooks is None:
            return original(self, original_event, transform_input)
        if self.state != "ENABLED" or not self.event_pattern.matches_event(original_event):
            return None
        scheduled_only = self.scheduled_expression and not self.event_pattern.get_pattern()
        if scheduled_only and not _is_own_schedule(self, original_event):
            return None
        event = dict(original_event)
        event.pop("ingestion-time", None)
        for target in self.targets:
            if parse_arn(target["Arn"]).service in ("lambda", "states"):
                _hooks.deliver_to_target(
                    self, target, _target_input(target, event) if transform_input else event
                )
            else:
                single = copy.copy(self)
                single.targets = [target]
                # moto's own targets read the event's ingestion-time (input transformers): the original event.
                original(single, copy.deepcopy(original_event), transform_input)
        return None

    Rule.send_to_targets = send_to_targets


# --- Step Functions: execution status change events -------------------------------------------------------
# AWS emits "Step Functions Execution Status Change" to EventBridge when an execution starts and ends;
# moto emits nothing.


def _shim_execution_status_events() -> None:
    original_start = Execution.start
    original_terminated = BaseExecutionWorkerCommunication.terminated

    def start(self):
        original_start(self)
        if _hooks is not None:  # the status as it was at the start: a short execution may have ended already
            _hooks.execution_status_changed(self, "RUNNING")

    def terminated(self):
        original_terminated(self)
        if _hooks is not None:
            _hooks.execution_status_changed(self.execution, self.execution.status)

    Execution.start = start
    BaseExecutionWorkerCommunication.terminated = terminated


# --- DynamoDB: each request is atomic --------------------------------------------------------------------
# moto serves requests on concurrent threads without isolating them: a TransactWriteItems snapshots the
# tables it touches and, when a condition fails, restores the snapshot, wiping out whatever other requests
# wrote meanwhile (a claim, a released lock, a job's final status); a conditional write reads, then writes.
# DynamoDB applies every request atomically: here the DynamoDB handler serves one request at a time.

_dynamodb_request_lock = threading.RLock()


def _shim_dynamodb_atomic_requests() -> None:
    original_call_action = DynamoHandler.call_action

    @functools.wraps(original_call_action)
    def call_action(self):
        with _dynamodb_request_lock:
            return original_call_action(self)

    DynamoHandler.call_action = call_action


# --- Step Functions: one parse per definition -------------------------------------------------------------
# moto parses the definition again (ANTLR, in Python) for every execution before its first state: 0.1 to
# 0.3 s of CPU for the job workflow, on every job's path and under the GIL the whole local stack shares.
# The parsed program keeps no execution state (each execution's Environment holds it, keyed by the
# components' heap keys), so executions of one definition share one parse. Concurrent executions then read
# heap keys from the same components: a key is set once, atomically, so that all of them agree on it.

_HEAP_KEY = "_EvalComponent__heap_key"


def _shim_parse_once_per_definition() -> None:
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


# --- CloudFormation: reading a stack while it is being created --------------------------------------------
# moto's ResourceMap creates a resource the first time anything reads it, and its CreateStack adds the stack
# to the backend before it creates the resources. A DescribeStacks (Outputs), ListStackResources or
# DescribeStackResources served on another thread meanwhile (`aws cloudformation wait stack-create-complete`
# polls exactly so) creates every resource it reads that creation has not reached yet, and creation then
# creates them again: two job state machines, two of each function, and Outputs (cached from that first
# read) naming the copies the rest of the stack does not use. On AWS a stack in CREATE_IN_PROGRESS shows no
# Outputs and lists only the resources created so far, and reads never create anything
# (https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_DescribeStacks.html: "Outputs:
# A list of output structures"; the stack's outputs appear once it is CREATE_COMPLETE).

_CREATING = {"CREATE_PENDING", "CREATE_IN_PROGRESS"}


def _shim_cloudformation_reads_during_create() -> None:
    from moto.cloudformation.models import Stack
    from moto.cloudformation.parsing import ResourceMap

    original_getitem = ResourceMap.__getitem__
    original_outputs = Stack.outputs.fget
    original_resources = Stack.stack_resources.fget
    guard = threading.Lock()

    def getitem(self, key):
        # One resource is created by one thread at a time (reentrant: creating one resolves its references).
        with guard:
            lock = self.__dict__.setdefault("_local_create_lock", threading.RLock())
        with lock:
            return original_getitem(self, key)

    def outputs(self):
        return None if self.status in _CREATING else original_outputs(self)

    def stack_resources(self):
        if self.status not in _CREATING:
            return original_resources(self)
        resource_map = self.resource_map
        parsed = resource_map._parsed_resources
        return [parsed[key] for key in list(getattr(resource_map, "_resource_json_map", {})) if key in parsed]

    ResourceMap.__getitem__ = getitem
    Stack.outputs = property(outputs)
    Stack.stack_resources = property(stack_resources)


# --- ECS: RunTask on an INACTIVE task definition revision -----------------------------------------------
# moto runs a deregistered (INACTIVE) revision, and resolves a bare family to its last revision even when
# that one is INACTIVE. ECS refuses both: "You can't use an INACTIVE task definition to run new tasks"
# (https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_DeregisterTaskDefinition.html), and a
# family without a revision means its latest ACTIVE revision
# (https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_RunTask.html, taskDefinition).
# (The documented window of up to 10 minutes in which an INACTIVE revision may still run is not modelled.)

INACTIVE_TASK_DEFINITION_MESSAGE = "TaskDefinition is inactive"


def _shim_ecs_inactive_task_definition() -> None:
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


def _shim_ecs_integration_errors() -> None:
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
            metadata = ex.response.get("ResponseMetadata", {})
            error = ECS_API_ERROR
            cause = (
                f"{ex.response['Error'].get('Message', '')} (Service: AmazonECS; "
                f"Status Code: {metadata.get('HTTPStatusCode')}; "
                f"Error Code: {ex.response['Error'].get('Code')}; "
                f"Request ID: {metadata.get('RequestId')}; Proxy: null)"
            )
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
