"""IAM and KMS at the local endpoint, enforced as AWS enforces them.

moto checks no permission its own way that fits a deployed stack: its optional IAM check sees "*" as the
resource of nearly every call and ignores conditions. Here every component of the stack calls the endpoint
with its own role's credentials (`role_environment`: a Lambda function's execution role, the worker's
task role, the state machine's role for its service integrations and an SQS event source's poller), and
each call is allowed only when that role's policies allow every action it needs on the resources it names,
including what encrypted stores need from the caller:

- DynamoDB tables encrypted with a customer managed key: kms:Decrypt on the key for every item read or
  write (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/encryption.usagenotes.html,
  "Authorizing use of your AWS KMS key").
- SQS queues with SSE-KMS: senders kms:GenerateDataKey and kms:Decrypt, receivers kms:Decrypt
  (https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-key-management.html).
- S3 objects under SSE-KMS: writers kms:GenerateDataKey, readers kms:Decrypt
  (https://docs.aws.amazon.com/AmazonS3/latest/userguide/UsingKMSEncryption.html#require-sse-kms).
- ECS RunTask: iam:PassRole on the task and execution roles (iam:PassedToService ecs-tasks.amazonaws.com),
  and ecs:TagResource (ecs:CreateAction RunTask) when the task is tagged at launch
  (https://docs.aws.amazon.com/AmazonECS/latest/developerguide/supported-iam-actions-tagging.html).

Credentials the stack did not issue (the operator's, the tests') act as the account's administrator, as a
developer's own credentials would. Every refusal is also kept in `denials` so a test can name the role and
the action that was missing.
"""

from __future__ import annotations

import base64
import fnmatch
import functools
import importlib
import json
import re
import secrets
import sys
import threading
import time
import types
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

import boto3
from botocore.config import Config
from moto.core.authorization import ActionAuthenticatorMixin
from moto.core.exceptions import JsonRESTError
from moto.dynamodb.models import dynamodb_backends
from moto.ecs.models import ecs_backends
from moto.iam.models import iam_backends
from moto.kms.models import kms_backends
from moto.s3.exceptions import BucketAccessDeniedError, S3AccessDeniedError
from moto.s3.models import s3_backends
from moto.secretsmanager.models import secretsmanager_backends
from moto.settings import moto_server_port
from moto.sqs.models import sqs_backends
from moto.stepfunctions.parser.asl.component.common.timeouts.timeout import TimeoutSeconds
from moto.stepfunctions.parser.asl.utils import boto_client as boto_client_module
from moto.stepfunctions.parser.backend.execution_worker import ExecutionWorker

PARTITION = "aws"
SERVICE_PREFIX = {"awslambda": "lambda", "stepfunctions": "states"}
# DynamoDB operations that read or write items, and so use the table's key.
DYNAMODB_ITEM_ACTIONS = {
    "GetItem",
    "PutItem",
    "UpdateItem",
    "DeleteItem",
    "Query",
    "Scan",
    "BatchGetItem",
    "BatchWriteItem",
    "TransactWriteItems",
    "TransactGetItems",
    "ExecuteStatement",
    "BatchExecuteStatement",
}
TRANSACT_ACTIONS = {
    "Put": "PutItem",
    "Update": "UpdateItem",
    "Delete": "DeleteItem",
    "ConditionCheck": "ConditionCheckItem",
    "Get": "GetItem",
}
SQS_BATCH_ACTIONS = {
    "SendMessageBatch": "SendMessage",
    "DeleteMessageBatch": "DeleteMessage",
    "ChangeMessageVisibilityBatch": "ChangeMessageVisibility",
}
SQS_SENDS = {"SendMessage"}
SQS_RECEIVES = {"ReceiveMessage"}


@dataclass(frozen=True)
class Principal:
    role_arn: str
    session: str

    @property
    def role_name(self) -> str:
        return self.role_arn.rsplit("/", 1)[-1]

    @property
    def arn(self) -> str:
        account = self.role_arn.split(":")[4]
        return f"arn:{PARTITION}:sts::{account}:assumed-role/{self.role_name}/{self.session}"


@dataclass(frozen=True)
class Need:
    action: str
    resource: str
    context: dict[str, str] = field(default_factory=dict)
    via: str = ""  # the call that needs it, when it is not the action itself (KMS as the caller)


@dataclass(frozen=True)
class Denial:
    principal: str
    role: str
    action: str
    resource: str
    call: str
    at: float

    def __str__(self) -> str:
        via = f" (needed by {self.call})" if self.call and not self.call.endswith(self.action) else ""
        return f"role {self.role} may not {self.action} on {self.resource}{via}"


class Enforcer:
    """Issues role credentials and checks every call made with them."""

    def __init__(self) -> None:
        self.enabled = False
        self._issued: dict[str, Principal] = {}
        self._shared: dict[tuple[str, str], dict[str, str]] = {}
        self._lock = threading.Lock()
        self.denials: list[Denial] = []
        # (role name, policy name, statement index) of every statement that allowed a call
        self.used: set[tuple[str, str, int]] = set()

    def role_environment(self, role_arn: str | None, session: str) -> dict[str, str]:
        """The variables an SDK reads for temporary credentials of `role_arn` (as Lambda and ECS give)."""
        if not role_arn:
            return {}
        key_id = "ASIA" + secrets.token_hex(8).upper()
        with self._lock:
            self._issued[key_id] = Principal(role_arn, session[:64])
        return {
            "AWS_ACCESS_KEY_ID": key_id,
            "AWS_SECRET_ACCESS_KEY": secrets.token_urlsafe(30),
            "AWS_SESSION_TOKEN": secrets.token_urlsafe(60),
        }

    def shared_role_environment(self, role_arn: str, session: str) -> dict[str, str]:
        """role_environment, issued once per role and session: for a caller that acts for many requests
        (the interpreter's integrations), whose SDK clients are then built once (role_client)."""
        with self._lock:
            issued = self._shared.get((role_arn, session))
        if issued is None:
            issued = self.role_environment(role_arn, session)
            with self._lock:
                issued = self._shared.setdefault((role_arn, session), issued)
        return issued

    def principal(self, key_id: str) -> Principal | None:
        with self._lock:
            return self._issued.get(key_id)

    def take_denials(self) -> list[Denial]:
        with self._lock:
            taken, self.denials = self.denials, []
        return taken

    def check(self, principal: Principal, call: str, needs: list[Need], account: str) -> Need | None:
        """The first need the principal's role does not allow (recorded), or None."""
        documents = list(role_policies(principal.role_name, account))
        for need in needs:
            allows = allowing(documents, need)
            with self._lock:
                self.used.update((principal.role_name, policy, index) for policy, index in allows)
            if not allows:
                with self._lock:
                    self.denials.append(
                        Denial(
                            principal.arn, principal.role_name, need.action, need.resource, call, time.time()
                        )
                    )
                return need
        return None


ENFORCER = Enforcer()


def role_client(
    service: str,
    credentials: dict[str, str],
    *,
    region: str,
    endpoint_url: str | None,
    config: Config | None = None,
) -> Any:
    """An SDK client acting with issued credentials (role_environment's), built once per service,
    credentials, endpoint and config: building one costs tens of milliseconds of the stack's CPU."""
    return _role_client(
        service,
        region,
        endpoint_url,
        credentials["AWS_ACCESS_KEY_ID"],
        credentials["AWS_SECRET_ACCESS_KEY"],
        credentials["AWS_SESSION_TOKEN"],
        config,
    )


@functools.lru_cache(maxsize=512)
def _role_client(
    service: str,
    region: str,
    endpoint_url: str | None,
    key_id: str,
    secret: str,
    token: str,
    config: Config | None,
) -> Any:
    return boto3.client(
        service,
        region_name=region,
        endpoint_url=endpoint_url,
        aws_access_key_id=key_id,
        aws_secret_access_key=secret,
        aws_session_token=token,
        config=config,
    )


# --- policy evaluation -----------------------------------------------------------------------------------


def role_policies(role_name: str, account: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """The identity policies of a role by name: inline and attached managed (their default version)."""
    role = iam_backends[account][PARTITION].get_role(role_name)
    for name, document in role.policies.items():
        yield name, json.loads(document) if isinstance(document, str) else document
    for arn, policy in role.managed_policies.items():
        document = next(version.document for version in policy.versions if version.is_default)
        yield arn, json.loads(document) if isinstance(document, str) else document


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _matches(patterns: Any, value: str, *, case_sensitive: bool) -> bool:
    match = (
        fnmatch.fnmatchcase if case_sensitive else (lambda v, p: fnmatch.fnmatchcase(v.lower(), p.lower()))
    )
    return any(match(value, pattern) for pattern in _as_list(patterns))


def _condition_holds(operator: str, key: str, expected: Any, context: dict[str, str]) -> bool:
    if_exists = operator.endswith("IfExists")
    operator = operator.removesuffix("IfExists")
    actual = context.get(key.lower())
    if actual is None:
        return if_exists or operator.startswith(("StringNot", "ArnNot"))
    expected = [str(value) for value in _as_list(expected)]
    if operator in ("StringEquals", "ArnEquals"):
        return actual in expected
    if operator == "StringEqualsIgnoreCase":
        return actual.lower() in [value.lower() for value in expected]
    if operator in ("StringLike", "ArnLike"):
        return any(fnmatch.fnmatchcase(actual, value) for value in expected)
    if operator in ("StringNotEquals", "ArnNotEquals"):
        return actual not in expected
    if operator in ("StringNotLike", "ArnNotLike"):
        return not any(fnmatch.fnmatchcase(actual, value) for value in expected)
    if operator == "Bool":
        return actual.lower() in [value.lower() for value in expected]
    return False  # an operator this evaluator does not know never grants


def _statement_applies(statement: dict[str, Any], need: Need) -> bool:
    if "Action" in statement and not _matches(statement["Action"], need.action, case_sensitive=False):
        return False
    if "NotAction" in statement and _matches(statement["NotAction"], need.action, case_sensitive=False):
        return False
    if "Resource" in statement and not _matches(statement["Resource"], need.resource, case_sensitive=True):
        return False
    if "NotResource" in statement and _matches(statement["NotResource"], need.resource, case_sensitive=True):
        return False
    context = {key.lower(): value for key, value in need.context.items()}
    return all(
        _condition_holds(operator, key, expected, context)
        for operator, keys in statement.get("Condition", {}).items()
        for key, expected in keys.items()
    )


def allowing(documents: list[tuple[str, dict[str, Any]]], need: Need) -> list[tuple[str, int]]:
    """The (policy, statement index) pairs that allow the need; none when nothing allows it or a Deny
    applies (identity policies only: there is no permission boundary or SCP here)."""
    allows = []
    for policy, document in documents:
        for index, statement in enumerate(_as_list(document.get("Statement", []))):
            if _statement_applies(statement, need):
                if statement.get("Effect") == "Deny":
                    return []
                allows.append((policy, index))
    return allows


# --- what a call needs -----------------------------------------------------------------------------------


def _key_arn(key_id: str | None, account: str, region: str) -> str | None:
    if not key_id:
        return None
    backend = kms_backends[account][region]
    try:
        return backend.describe_key(backend.get_key_id(key_id) if key_id.startswith("alias/") else key_id).arn
    except Exception:  # a key that is gone: the service call itself reports that
        return None


def _kms_needs(key_arn: str | None, actions: tuple[str, ...], call: str) -> list[Need]:
    return [Need(f"kms:{action}", key_arn, via=call) for action in actions] if key_arn else []


def _table_key(name: str, account: str, region: str) -> str | None:
    table = dynamodb_backends[account][region].tables.get(name)
    spec = (table.sse_specification or {}) if table is not None else {}
    enabled = spec.get("Enabled", spec.get("SSEEnabled"))
    if str(enabled).lower() != "true" or spec.get("SSEType", "KMS") != "KMS":
        return None
    return _key_arn(spec.get("KMSMasterKeyId"), account, region)


def _dynamodb_needs(operation: str, params: dict[str, Any], account: str, region: str) -> list[Need]:
    def table_arn(name: str) -> str:
        return f"arn:{PARTITION}:dynamodb:{region}:{account}:table/{name}"

    call = f"dynamodb:{operation}"
    if operation in ("TransactWriteItems", "TransactGetItems"):
        pairs = [
            (TRANSACT_ACTIONS[kind], body["TableName"])
            for item in params.get("TransactItems", [])
            for kind, body in item.items()
        ]
    elif operation in ("BatchGetItem", "BatchWriteItem"):
        pairs = [(operation, name) for name in params.get("RequestItems", {})]
    else:
        name = params.get("TableName", "")
        resource = table_arn(name) + (f"/index/{params['IndexName']}" if params.get("IndexName") else "")
        needs = [Need(call, resource)]
        if operation in DYNAMODB_ITEM_ACTIONS:
            needs += _kms_needs(_table_key(name, account, region), ("Decrypt",), call)
        return needs
    needs = [Need(f"dynamodb:{action}", table_arn(name)) for action, name in pairs]
    for name in dict.fromkeys(name for _, name in pairs):
        needs += _kms_needs(_table_key(name, account, region), ("Decrypt",), call)
    return needs


def _sqs_needs(
    response: Any, operation: str, params: dict[str, Any], account: str, region: str
) -> list[Need]:
    queue_arn = response._determine_resource()
    # The batch operations are authorized as their single-message actions (there is no
    # sqs:SendMessageBatch permission): https://docs.aws.amazon.com/AWSSimpleQueueService/latest/
    # SQSDeveloperGuide/sqs-api-permissions-reference.html
    operation = SQS_BATCH_ACTIONS.get(operation, operation)
    if operation == "GetQueueUrl":
        queue_arn = f"arn:{PARTITION}:sqs:{region}:{account}:{params.get('QueueName', '*')}"
    call = f"sqs:{operation}"
    needs = [Need(call, queue_arn)]
    queue = sqs_backends[account][region].queues.get(queue_arn.rsplit(":", 1)[-1])
    key = _key_arn(getattr(queue, "kms_master_key_id", None), account, region) if queue else None
    if operation in SQS_SENDS:
        needs += _kms_needs(key, ("GenerateDataKey", "Decrypt"), call)
    elif operation in SQS_RECEIVES:
        needs += _kms_needs(key, ("Decrypt",), call)
    return needs


def _states_needs(operation: str, params: dict[str, Any]) -> list[Need]:
    resource = params.get("stateMachineArn") or params.get("executionArn") or "*"
    return [Need(f"states:{operation}", resource)]


def _task_definition_arn(reference: str, account: str, region: str) -> str:
    """RunTask's taskDefinition (family, family:revision or ARN) as the ARN it resolves to."""
    backend = ecs_backends[account][region]
    if reference.startswith("arn:"):
        return reference
    family, _, revision = reference.partition(":")
    revisions = backend.task_definitions.get(family, {})
    if not revision:
        active = [number for number, definition in revisions.items() if definition.status == "ACTIVE"]
        revision = str(max(active)) if active else "0"
    return f"arn:{PARTITION}:ecs:{region}:{account}:task-definition/{family}:{revision}"


def _ecs_needs(operation: str, params: dict[str, Any], account: str, region: str) -> list[Need]:
    cluster = (params.get("cluster") or "default").rsplit("/", 1)[-1]
    call = f"ecs:{operation}"

    def task_arn(task: str) -> str:
        return (
            task
            if task.startswith("arn:")
            else f"arn:{PARTITION}:ecs:{region}:{account}:task/{cluster}/{task}"
        )

    if operation == "RunTask":
        definition_arn = _task_definition_arn(params.get("taskDefinition", ""), account, region)
        needs = [Need(call, definition_arn)]
        family_revision = definition_arn.rsplit("/", 1)[-1]
        family, _, revision = family_revision.partition(":")
        definition = ecs_backends[account][region].task_definitions.get(family, {}).get(int(revision or 0))
        overrides = params.get("overrides") or {}
        roles = [
            overrides.get("taskRoleArn") or getattr(definition, "task_role_arn", None),
            overrides.get("executionRoleArn") or getattr(definition, "execution_role_arn", None),
        ]
        needs += [
            Need("iam:PassRole", role, {"iam:PassedToService": "ecs-tasks.amazonaws.com"}, call)
            for role in roles
            if role
        ]
        tagged = params.get("tags") or (
            params.get("propagateTags") == "TASK_DEFINITION" and definition is not None and definition.tags
        )
        if tagged:
            needs.append(Need("ecs:TagResource", task_arn("new-task"), {"ecs:CreateAction": "RunTask"}, call))
        return needs
    if operation == "StopTask":
        return [Need(call, task_arn(params.get("task", "")))]
    if operation in ("DescribeTasks", "UpdateTaskProtection", "GetTaskProtection"):
        # Task protection is authorized on the tasks it names (resource type task:
        # https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonelasticcontainerservice.html)
        return [Need(call, task_arn(task)) for task in params.get("tasks", [])] or [Need(call, "*")]
    return [Need(call, "*")]


def _lambda_needs(response: Any, operation: str, account: str, region: str) -> list[Need]:
    match = re.search(r"/functions/([^/]+)", unquote(response.path))
    name = match.group(1) if match else "*"
    if not name.startswith("arn:"):
        name = f"arn:{PARTITION}:lambda:{region}:{account}:function:{name}"
    action = "InvokeFunction" if operation == "Invoke" else operation
    return [Need(f"lambda:{action}", name)]


def _kms_direct_needs(operation: str, params: dict[str, Any], account: str, region: str) -> list[Need]:
    key = _key_arn(params.get("KeyId"), account, region)
    if key is None and operation == "Decrypt" and params.get("CiphertextBlob"):
        try:
            _, key = kms_backends[account][region].decrypt(
                base64.b64decode(params["CiphertextBlob"]), params.get("EncryptionContext") or {}
            )
        except Exception:  # an invalid blob: the call itself reports it
            key = None
    return [Need(f"kms:{operation}", key or "*")]


def _secret_needs(operation: str, params: dict[str, Any], account: str, region: str) -> list[Need]:
    secret_id = params.get("SecretId", "*")
    try:
        arn = secretsmanager_backends[account][region].describe_secret(secret_id).arn
    except Exception:  # not found: name it as AWS would, with its name
        arn = (
            secret_id
            if secret_id.startswith("arn:")
            else (f"arn:{PARTITION}:secretsmanager:{region}:{account}:secret:{secret_id}")
        )
    return [Need(f"secretsmanager:{operation}", arn)]


def _json_params(response: Any) -> dict[str, Any]:
    body = response.body
    if isinstance(body, dict):  # some handlers keep their parsed parameters there
        return body
    try:
        return json.loads(getattr(response, "raw_body", None) or body or "{}")
    except (TypeError, ValueError):
        return {}


def _streams_needs(operation: str, params: dict[str, Any], account: str, region: str) -> list[Need]:
    """DynamoDB Streams is authorized under the `dynamodb` prefix, on the stream's ARN; reading records of a
    table encrypted with a customer managed key also needs kms:Decrypt (the Service Authorization
    Reference's Amazon DynamoDB actions: DescribeStream, GetRecords, GetShardIterator on `stream`)."""
    call = f"dynamodb:{operation}"
    # A shard iterator is "<stream ARN>|1|<id>" (moto's form of it).
    stream = params.get("StreamArn") or params.get("ShardIterator", "").split("|", 1)[0]
    if not stream:
        return [
            Need(
                call,
                f"arn:{PARTITION}:dynamodb:{region}:{account}:table/{params.get('TableName', '*')}/stream/*",
            )
        ]
    needs = [Need(call, stream)]
    if operation == "GetRecords":
        table = stream.split(":table/", 1)[-1].split("/stream/", 1)[0]
        needs += _kms_needs(_table_key(table, account, region), ("Decrypt",), call)
    return needs


def _events_needs(operation: str, params: dict[str, Any], account: str, region: str) -> list[Need]:
    """PutEvents is authorized on each entry's event bus (the account's default bus when none is named)."""
    if operation != "PutEvents":
        return [Need(f"events:{operation}", "*")]
    buses = {entry.get("EventBusName") or "default" for entry in params.get("Entries", [])}
    return [
        Need(
            "events:PutEvents",
            bus if bus.startswith("arn:") else f"arn:{PARTITION}:events:{region}:{account}:event-bus/{bus}",
        )
        for bus in sorted(buses)
    ]


def request_needs(response: Any, resource: str) -> list[Need]:
    """Every permission one request to the endpoint needs from its caller."""
    service = response.service_name
    operation = response._get_action()
    account, region = response.current_account, response.region
    params = _json_params(response)
    if service == "dynamodb":
        return _dynamodb_needs(operation, params, account, region)
    if service == "events":
        return _events_needs(operation, params, account, region)
    if service == "dynamodbstreams":
        return _streams_needs(operation, params, account, region)
    if service == "sqs":
        return _sqs_needs(response, operation, params, account, region)
    if service == "stepfunctions":
        return _states_needs(operation, params)
    if service == "ecs":
        return _ecs_needs(operation, params, account, region)
    if service == "awslambda":
        return _lambda_needs(response, operation, account, region)
    if service == "kms":
        return _kms_direct_needs(operation, params, account, region)
    if service == "secretsmanager":
        return _secret_needs(operation, params, account, region)
    if service == "sts" and operation == "GetCallerIdentity":
        return []  # always allowed, whatever the policies say
    return [Need(f"{SERVICE_PREFIX.get(service, service)}:{operation}", resource)]


def s3_needs(response: Any, action: str, bucket: str | None, key: str | None, resource: str) -> list[Need]:
    account, region = response.current_account, response.region
    call = f"s3:{action}"
    needs = [Need(call, resource)]
    if not bucket or not key:
        return needs
    try:
        stored_bucket = s3_backends[account][PARTITION].get_bucket(bucket)
    except Exception:  # no such bucket: the call itself reports it
        return needs
    if action == "PutObject":
        key_id = response.headers.get("x-amz-server-side-encryption-aws-kms-key-id")
        default = (stored_bucket.encryption or {}).get("Rule") or {}
        default = default[0] if isinstance(default, list) else default
        by_default = default.get("ApplyServerSideEncryptionByDefault", {})
        if key_id is None and by_default.get("SSEAlgorithm") == "aws:kms":
            key_id = by_default.get("KMSMasterKeyID")
        needs += _kms_needs(_key_arn(key_id, account, region), ("GenerateDataKey",), call)
    elif action == "GetObject":
        stored = stored_bucket.keys.get(key)
        if stored is not None and getattr(stored, "encryption", None) == "aws:kms":
            needs += _kms_needs(_key_arn(stored.kms_key_id, account, region), ("Decrypt",), call)
    return needs


# --- the endpoint's checks -------------------------------------------------------------------------------


def _caller_key(headers: Any) -> str | None:
    authorization = headers.get("Authorization") or ""
    match = re.search(r"Credential=([^/]+)/", authorization)
    return match.group(1) if match else None


def _message(principal: Principal, need: Need) -> str:
    reason = f"because no identity-based policy allows the {need.action} action"
    return (
        f"User: {principal.arn} is not authorized to perform: {need.action} on resource: {need.resource} "
        + reason
    )


def _authorize_normal(self: Any, iam_request_cls: type, resource: str = "*") -> None:
    if not ENFORCER.enabled:
        return
    principal = ENFORCER.principal(_caller_key(self.headers) or "")
    if principal is None:
        return
    needs = request_needs(self, resource)
    call = needs[0].action if needs else ""
    refused = ENFORCER.check(principal, call, needs, self.current_account)
    if refused is not None:
        status = 403 if self.service_name == "awslambda" else 400
        error = JsonRESTError("AccessDeniedException", _message(principal, refused))
        error.code = status
        raise error


def _authorize_s3(self: Any, bucket_name: str | None = None, key_name: str | None = None) -> None:
    if not ENFORCER.enabled:
        return
    principal = ENFORCER.principal(_caller_key(self.headers) or "")
    if principal is None:
        return
    arn = f"{bucket_name or '*'}/{key_name}" if key_name else (bucket_name or "*")
    action = self.data.get("Action") or self._get_action()
    needs = s3_needs(self, action, bucket_name, key_name, f"arn:{PARTITION}:s3:::{arn}")
    if ENFORCER.check(principal, f"s3:{action}", needs, self.current_account) is not None:
        raise BucketAccessDeniedError(bucket=bucket_name) if bucket_name else S3AccessDeniedError()


# --- the state machine's own calls --------------------------------------------------------------------------

_execution_role = threading.local()


def execution_credentials() -> dict[str, str]:
    """The state machine role's credentials for the service integration calls of the running execution."""
    return getattr(_execution_role, "credentials", {})


def _shim_execution_role() -> None:
    original = ExecutionWorker._execution_logic

    def execution_logic(self):
        role_arn = self._evaluation_details.aws_execution_details.role_arn
        # One session per role, not per execution: the integrations' clients are then built once.
        _execution_role.credentials = ENFORCER.shared_role_environment(role_arn, "states")
        try:
            return original(self)
        finally:
            _execution_role.credentials = {}

    ExecutionWorker._execution_logic = execution_logic
    # The interpreter runs states on threads of its own (the program, each state, callback waits, Map and
    # Parallel branches): those threads inherit the credentials of the thread that starts them.
    for name, attribute in _INTERPRETER_THREADS:
        module = importlib.import_module(name)
        if attribute == "Thread":
            module.Thread = _InheritingThread
        else:
            module.threading = types.SimpleNamespace(
                **{key: getattr(threading, key) for key in dir(threading) if not key.startswith("__")}
            )
            module.threading.Thread = _InheritingThread


class _InheritingThread(threading.Thread):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._credentials = execution_credentials()

    def run(self) -> None:
        _execution_role.credentials = self._credentials
        super().run()


_ASL = "moto.stepfunctions.parser.asl.component"
_INTERPRETER_THREADS = (
    (f"{_ASL}.program.program", "threading"),
    (f"{_ASL}.state.exec.execute_state", "Thread"),
    (f"{_ASL}.state.exec.state_task.service.state_task_service_callback", "threading"),
    (f"{_ASL}.state.exec.state_map.iteration.inline_iteration_component", "threading"),
    (f"{_ASL}.state.exec.state_parallel.branch_worker", "threading"),
)


# As the interpreter's own clients: no SDK retries, the ASL's Retry decides.
_INTEGRATION_CONFIG = Config(
    parameter_validation=False,
    retries={"max_attempts": 0, "total_max_attempts": 1},
    connect_timeout=TimeoutSeconds.DEFAULT_TIMEOUT_SECONDS,
    read_timeout=TimeoutSeconds.DEFAULT_TIMEOUT_SECONDS,
)


_STATE_TASK = f"{_ASL}.state.exec.state_task"
_INTEGRATION_MODULES = (
    f"{_STATE_TASK}.lambda_eval_utils",
    *(
        f"{_STATE_TASK}.service.state_task_service_{service}"
        for service in ("aws_sdk", "dynamodb", "ecs", "events", "sfn", "sns", "sqs", "unsupported")
    ),
)


def _shim_integration_clients() -> None:
    """moto's interpreter calls the endpoint with fixed dummy keys; make it use the execution's role."""
    original = boto_client_module.boto_client_for

    def boto_client_for(region: str, service: str, state_credentials: Any = None):
        credentials = execution_credentials()
        if not credentials:
            return original(region, service, state_credentials)
        return role_client(
            service,
            credentials,
            region=region,
            endpoint_url=f"http://localhost:{moto_server_port()}",
            config=_INTEGRATION_CONFIG,
        )

    boto_client_module.boto_client_for = boto_client_for
    # The integrations import boto_client_for by name, some only on first use: import them all first.
    for name in _INTEGRATION_MODULES:
        importlib.import_module(name)
    for module in list(sys.modules.values()):
        if getattr(module, "boto_client_for", None) is original:
            module.boto_client_for = boto_client_for


_installed = False
_install_lock = threading.Lock()


def install() -> None:
    """Route moto's authorization hooks here (idempotent); checks run only while ENFORCER.enabled."""
    global _installed
    with _install_lock:
        if _installed:
            return
        ActionAuthenticatorMixin._authenticate_and_authorize_action = _authorize_normal
        ActionAuthenticatorMixin._authenticate_and_authorize_s3_action = _authorize_s3
        _shim_execution_role()
        _shim_integration_clients()
        _installed = True
