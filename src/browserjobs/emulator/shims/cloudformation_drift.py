"""CloudFormation drift detection, which moto does not have: the local stack compares what its template set
with what the resources hold now, as AWS does.

Applied by browserjobs.emulator.shims.apply(); importing this module changes nothing.

AWS (https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/using-cfn-stack-drift.html) checks only
the properties a template sets explicitly, on resource types that support drift detection; others are
NOT_CHECKED. Here the checked types are the ones an operator most often edits by hand: log groups, queues,
functions and alarms, each on the properties listed in `_LIVE`. A detection runs to its end inside
DetectStackDrift (AWS runs it in the background: callers poll DescribeStackDriftDetectionStatus either way).
"""

from __future__ import annotations

import datetime
import threading
import uuid
from collections.abc import Callable
from typing import Any

from moto.awslambda.models import lambda_backends
from moto.cloudformation.parsing import clean_json
from moto.cloudformation.responses import CloudFormationResponse
from moto.cloudwatch.models import cloudwatch_backends
from moto.core.responses import ActionResult
from moto.logs.models import logs_backends
from moto.sqs.models import sqs_backends


def _log_group(account: str, region: str, name: str) -> dict[str, Any] | None:
    group = logs_backends[account][region].groups.get(name)
    return (
        None if group is None else {"RetentionInDays": group.retention_in_days, "KmsKeyId": group.kms_key_id}
    )


def _queue(account: str, region: str, url: str) -> dict[str, Any] | None:
    queue = sqs_backends[account][region].queues.get(url.rstrip("/").rsplit("/", 1)[-1])
    if queue is None:
        return None
    attributes = queue.attributes
    return {
        name: attributes.get(name)
        for name in ("VisibilityTimeout", "MessageRetentionPeriod", "DelaySeconds", "KmsMasterKeyId")
    } | {"RedrivePolicy": queue.redrive_policy}


def _function(account: str, region: str, name: str) -> dict[str, Any] | None:
    functions = lambda_backends[account][region]._lambdas
    if name not in functions._functions:
        return None
    function = functions.get_function_by_name_forbid_qualifier(name)
    return {
        "Timeout": function.timeout,
        "MemorySize": function.memory_size,
        "Handler": function.handler,
        "Runtime": function.run_time,
        "Environment": {"Variables": function.environment_vars},
    }


def _alarm(account: str, region: str, name: str) -> dict[str, Any] | None:
    alarm = cloudwatch_backends[account][region].alarms.get(name)
    if alarm is None:
        return None
    return {
        "AlarmActions": alarm.alarm_actions,
        "OKActions": alarm.ok_actions,
        "Threshold": alarm.threshold,
        "EvaluationPeriods": alarm.evaluation_periods,
        "ActionsEnabled": alarm.actions_enabled,
    }


# Resource type -> its live properties by physical id (None: the resource is gone).
_LIVE: dict[str, Callable[[str, str, str], dict[str, Any] | None]] = {
    "AWS::Logs::LogGroup": _log_group,
    "AWS::SQS::Queue": _queue,
    "AWS::Lambda::Function": _function,
    "AWS::CloudWatch::Alarm": _alarm,
}


def _same(expected: Any, actual: Any) -> bool:
    """Template values are strings or numbers for the same thing ("30" and 30); compare them as text."""
    if isinstance(expected, dict):
        return (
            isinstance(actual, dict)
            and expected.keys() == actual.keys()
            and all(_same(value, actual[key]) for key, value in expected.items())
        )
    if isinstance(expected, list):
        return (
            isinstance(actual, list)
            and len(expected) == len(actual)
            and all(_same(e, a) for e, a in zip(expected, actual, strict=True))
        )
    if isinstance(expected, bool) or isinstance(actual, bool):
        return str(expected).lower() == str(actual).lower()
    if isinstance(expected, int | float) or isinstance(actual, int | float):
        try:
            return float(expected) == float(actual)
        except (TypeError, ValueError):
            return False
    return str(expected) == str(actual)


def resource_drift(
    resource_type: str, expected: dict[str, Any], live: dict[str, Any] | None
) -> dict[str, Any]:
    """StackResourceDriftStatus and PropertyDifferences of one resource, AWS's shapes."""
    if resource_type not in _LIVE:
        return {"StackResourceDriftStatus": "NOT_CHECKED", "PropertyDifferences": []}
    if live is None:
        return {"StackResourceDriftStatus": "DELETED", "PropertyDifferences": []}
    differences = [
        {
            "PropertyPath": f"/{name}",
            "ExpectedValue": str(value),
            "ActualValue": str(live.get(name)),
            "DifferenceType": "NOT_EQUAL" if live.get(name) is not None else "REMOVE",
        }
        for name, value in expected.items()
        if name in live and not _same(value, live[name])
    ]
    return {
        "StackResourceDriftStatus": "MODIFIED" if differences else "IN_SYNC",
        "PropertyDifferences": differences,
    }


_detections: dict[str, dict[str, Any]] = {}
_latest: dict[str, list[dict[str, Any]]] = {}  # stack id -> its resources' drifts from the last detection
_lock = threading.Lock()


def _detect(account: str, region: str, stack: Any) -> list[dict[str, Any]]:
    now = datetime.datetime.now(datetime.UTC)
    resource_map = stack.resource_map
    drifts = []
    for logical_id, definition in stack.template_dict.get("Resources", {}).items():
        resource_type = definition.get("Type", "")
        if resource_type not in _LIVE:
            continue
        physical = getattr(resource_map[logical_id], "physical_resource_id", None)
        try:
            expected = clean_json(definition.get("Properties", {}), resource_map)
        except Exception:  # an intrinsic moto cannot resolve: AWS would check it, here it is NOT_CHECKED
            expected = None
        live = _LIVE[resource_type](account, region, physical) if physical else None
        outcome = (
            resource_drift(resource_type, expected, live)
            if expected is not None
            else {"StackResourceDriftStatus": "NOT_CHECKED", "PropertyDifferences": []}
        )
        drifts.append(
            {
                "StackId": stack.stack_id,
                "LogicalResourceId": logical_id,
                "PhysicalResourceId": physical or "",
                "ResourceType": resource_type,
                "Timestamp": now,
                **outcome,
            }
        )
    return drifts


def _detect_stack_drift(self: CloudFormationResponse) -> ActionResult:
    stack = self.cloudformation_backend.get_stack(self._get_param("StackName"))
    drifts = _detect(self.current_account, self.region, stack)
    drifted = sum(d["StackResourceDriftStatus"] in ("MODIFIED", "DELETED") for d in drifts)
    detection_id = str(uuid.uuid4())
    with _lock:
        _latest[stack.stack_id] = drifts
        _detections[detection_id] = {
            "StackId": stack.stack_id,
            "StackDriftDetectionId": detection_id,
            "StackDriftStatus": "DRIFTED" if drifted else "IN_SYNC",
            "DetectionStatus": "DETECTION_COMPLETE",
            "DriftedStackResourceCount": drifted,
            "Timestamp": datetime.datetime.now(datetime.UTC),
        }
    return ActionResult({"StackDriftDetectionId": detection_id})


def _describe_stack_drift_detection_status(self: CloudFormationResponse) -> ActionResult:
    with _lock:
        return ActionResult(dict(_detections[self._get_param("StackDriftDetectionId")]))


def _describe_stack_resource_drifts(self: CloudFormationResponse) -> ActionResult:
    stack = self.cloudformation_backend.get_stack(self._get_param("StackName"))
    wanted = set(self._get_param("StackResourceDriftStatusFilters", []))
    with _lock:
        drifts = _latest.get(stack.stack_id, [])
    return ActionResult(
        {"StackResourceDrifts": [d for d in drifts if not wanted or d["StackResourceDriftStatus"] in wanted]}
    )


def shim_cloudformation_drift_detection() -> None:
    CloudFormationResponse.detect_stack_drift = _detect_stack_drift
    CloudFormationResponse.describe_stack_drift_detection_status = _describe_stack_drift_detection_status
    CloudFormationResponse.describe_stack_resource_drifts = _describe_stack_resource_drifts
