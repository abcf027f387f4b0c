"""The workflow as AWS runs it, where the local stack (moto) is more forgiving: error names, IAM, limits.

Every rule here cites the AWS page or API model it follows; tests/statemachine/test_aws_parity.py runs the
same behaviours on the local stack where moto can show them.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from samcli.yamlhelper import yaml_parse

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[3]
TEMPLATE = yaml_parse((ROOT / "template.yaml").read_text())
ASL = json.loads(Path(os.environ.get("JOB_ASL_PATH", ROOT / "statemachines" / "job.asl.json")).read_text())
STATES = ASL["States"]
STATE_MACHINE = TEMPLATE["Resources"]["JobStateMachine"]["Properties"]

# The optimized DynamoDB integration (arn:aws:states:::dynamodb:*) prefixes errors with "DynamoDB.", the AWS
# SDK integration (arn:aws:states:::aws-sdk:dynamodb:*) with "DynamoDb." ("Exception prefix differences",
# https://docs.aws.amazon.com/step-functions/latest/dg/connect-ddb.html). The optimized integration names
# the AWS SDK for Java exception class (its causes read "Service: AmazonDynamoDBv2; ... Error Code: ..."):
# InternalServerErrorException, RequestLimitExceededException (botocore's shapes InternalServerError and
# RequestLimitExceeded, https://docs.aws.amazon.com/AWSJavaSDK/latest/javadoc/com/amazonaws/services/dynamodbv2/model/InternalServerErrorException.html),
# and AmazonDynamoDBException for any code without a class (a 500 or ValidationException among them).
OPTIMIZED_DYNAMODB_TRANSIENT = {
    "DynamoDB.ProvisionedThroughputExceededException",
    "DynamoDB.RequestLimitExceededException",
    "DynamoDB.ThrottlingException",
    "DynamoDB.InternalServerErrorException",
    "DynamoDB.AmazonDynamoDBException",
}
# The AWS SDK integration: ServiceName.ExceptionName, "Exception" appended where the API's name lacks it
# (https://docs.aws.amazon.com/step-functions/latest/dg/supported-services-awssdk.html); DynamoDbException is
# the SDK's class for codes without their own. TransactWriteItems' errors: botocore's dynamodb model.
AWS_SDK_DYNAMODB_TRANSIENT = {
    "DynamoDb.ProvisionedThroughputExceededException",
    "DynamoDb.RequestLimitExceededException",
    "DynamoDb.ThrottlingException",
    "DynamoDb.InternalServerErrorException",
    "DynamoDb.DynamoDbException",
}
OPTIMIZED_DYNAMODB_ERRORS = OPTIMIZED_DYNAMODB_TRANSIENT | {
    "DynamoDB.ConditionalCheckFailedException",
    "DynamoDB.TransactionConflictException",  # a single-item write on an item inside a transaction
}
AWS_SDK_DYNAMODB_ERRORS = AWS_SDK_DYNAMODB_TRANSIENT | {"DynamoDb.TransactionCanceledException"}


def _handled(state: dict[str, Any]) -> set[str]:
    return {name for rule in state.get("Retry", []) + state.get("Catch", []) for name in rule["ErrorEquals"]}


def _retried(state: dict[str, Any]) -> set[str]:
    return {name for rule in state.get("Retry", []) for name in rule["ErrorEquals"]}


def _states_using(resource_prefix: str) -> dict[str, dict[str, Any]]:
    return {n: s for n, s in STATES.items() if s.get("Resource", "").startswith(resource_prefix)}


# --- 1. capacity failures ------------------------------------------------------------------------------


def test_run_task_failures_capacity_spot_and_quota_are_retried_with_jitter():
    """RunTask can answer 200 with a non-empty `failures` (no Fargate capacity, Spot shortage, vCPU quota);
    a run-task state with .waitForTaskToken then fails with AmazonECS.Unknown
    (https://docs.aws.amazon.com/step-functions/latest/dg/connect-ecs.html, "Key features")."""
    retries = STATES["RunBrowserTask"]["Retry"]
    capacity = next(r for r in retries if "AmazonECS.Unknown" in r["ErrorEquals"])
    assert "ECS.AmazonECSException" in capacity["ErrorEquals"]
    assert capacity["JitterStrategy"] == "FULL" and capacity["BackoffRate"] > 1


def test_run_task_retries_end_within_the_lease_grace():
    """The lease is claimedAt + timeoutSeconds + LeaseGraceSeconds; the task's TimeoutSeconds starts anew
    with each attempt, so the retries' waits must fit in the grace or the lease ends under a running task."""
    rule = next(r for r in STATES["RunBrowserTask"]["Retry"] if "AmazonECS.Unknown" in r["ErrorEquals"])
    interval, total = rule["IntervalSeconds"], 0
    for _ in range(rule["MaxAttempts"]):
        total += min(interval, rule.get("MaxDelaySeconds", interval))
        interval *= rule["BackoffRate"]
    assert total < TEMPLATE["Parameters"]["LeaseGraceSeconds"]["Default"], total


# --- 2. a deploy replaces the task definition ----------------------------------------------------------


def test_the_browser_task_runs_the_family_that_iam_allows_in_every_revision():
    assert STATES["RunBrowserTask"]["Parameters"]["TaskDefinition"] == "${TaskDefinitionFamily}"
    family = STATE_MACHINE["DefinitionSubstitutions"]["TaskDefinitionFamily"]
    assert family == TEMPLATE["Resources"]["TaskDefinition"]["Properties"]["Family"]
    statement = _statement("RunBrowserTask")
    assert statement["Action"] == "ecs:RunTask"
    resource = statement["Resource"]["Fn::Sub"]
    assert resource.endswith(":task-definition/${AWS::StackName}-worker:*"), resource
    assert family == {"Fn::Sub": "${AWS::StackName}-worker"}


# --- 3. tags propagated by RunTask ---------------------------------------------------------------------


def _statement(sid: str) -> dict[str, Any]:
    for policy in STATE_MACHINE["Policies"]:
        for statement in policy.get("Statement", []) if isinstance(policy, dict) else []:
            if statement.get("Sid") == sid:
                return statement
    raise AssertionError(f"no statement {sid} in the state machine's policies")


def test_propagated_tags_are_allowed_on_run_task_only():
    """PropagateTags makes RunTask tag the task: ECS then also authorises ecs:TagResource, with the
    condition key ecs:CreateAction (https://docs.aws.amazon.com/AmazonECS/latest/developerguide/supported-iam-actions-tagging.html)."""
    assert STATES["RunBrowserTask"]["Parameters"]["PropagateTags"] == "TASK_DEFINITION"
    statement = _statement("TagBrowserTaskOnRun")
    assert statement["Action"] == "ecs:TagResource"
    assert statement["Condition"] == {"StringEquals": {"ecs:CreateAction": "RunTask"}}
    assert statement["Resource"]["Fn::Sub"].endswith(":task/${Cluster}/*")


# --- 4. release transactions ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["ReleaseAndRecordSuccess", "ReleaseAndRecordFailure"])
def test_a_release_transaction_is_retried_on_conflict_and_its_fallback_releases(name):
    state = STATES[name]
    assert "DynamoDb.TransactionCanceledException" in _retried(state)
    assert _retried(state) >= AWS_SDK_DYNAMODB_TRANSIENT
    fallback = next(c["Next"] for c in state["Catch"] if c["ErrorEquals"] == ["States.ALL"])
    released = []
    while STATES[fallback]["Type"] == "Task" and STATES[fallback]["Resource"].endswith("dynamodb:deleteItem"):
        released.append(STATES[fallback]["Parameters"]["Key"]["pk"])
        fallback = STATES[fallback]["Next"]
    assert released == [{"S.$": "States.Format('lock#{}', $.lockKey)"}, {"S.$": "$.claim.detail.slot"}]


# --- 6. error names ------------------------------------------------------------------------------------


def test_optimized_dynamodb_states_handle_only_names_that_integration_emits():
    states = _states_using("arn:aws:states:::dynamodb:")
    assert states
    for name, state in states.items():
        dynamodb_names = {n for n in _handled(state) if n.lower().startswith("dynamodb.")}
        assert dynamodb_names <= OPTIMIZED_DYNAMODB_ERRORS, (name, dynamodb_names - OPTIMIZED_DYNAMODB_ERRORS)
        assert _retried(state) >= OPTIMIZED_DYNAMODB_TRANSIENT, name


def test_aws_sdk_dynamodb_states_handle_only_names_that_integration_emits():
    states = _states_using("arn:aws:states:::aws-sdk:dynamodb:")
    assert states
    for name, state in states.items():
        dynamodb_names = {n for n in _handled(state) if n.lower().startswith("dynamodb.")}
        assert dynamodb_names <= AWS_SDK_DYNAMODB_ERRORS, (name, dynamodb_names - AWS_SDK_DYNAMODB_ERRORS)


# --- 5. the history limit ------------------------------------------------------------------------------


def test_the_lock_wait_grows_past_its_cap_as_test_aws_parity_simulates():
    """tests/statemachine/test_aws_parity.py counts the rounds of a day's wait with this rule."""
    assert STATES["GrowBackoff"]["Parameters"]["delaySeconds.$"] == (
        "States.MathAdd($.lockWait.delaySeconds, $.lockWait.delaySeconds)"
    )
    clamp = STATES["ClampBackoff"]["Parameters"]
    assert clamp["delaySeconds.$"] == "$.lockWait.maxDelaySeconds"
    assert clamp["maxDelaySeconds.$"] == "States.MathAdd($.lockWait.maxDelaySeconds, 1)"


def test_the_claim_knows_when_the_execution_started():
    payload = STATES["Claim"]["Parameters"]["Payload"]
    assert payload["executionStartTime.$"] == "$$.Execution.StartTime"
    assert ASL["TimeoutSeconds"] == 86_400


# --- 7. Choice rules on paths that may be missing ------------------------------------------------------


def _comparisons(rule: dict[str, Any], inside: list[dict[str, Any]] | None = None):
    """(comparison, the And-siblings before it) for every comparison of a Choice rule."""
    if "And" in rule:
        for index, member in enumerate(rule["And"]):
            yield from ((c, before + rule["And"][:index]) for c, before in _comparisons(member))
    elif "Or" in rule:
        for member in rule["Or"]:
            yield from _comparisons(member)
    elif "Not" in rule:
        yield from _comparisons(rule["Not"])
    else:
        yield rule, []


def test_the_error_cause_is_tested_only_after_is_present():
    """Any Choice test but IsPresent on a missing path is a States.Runtime error on AWS, which no Catch
    handles (https://docs.aws.amazon.com/step-functions/latest/dg/state-choice.html, IsPresent); an error
    caught from a timeout or a SendTaskFailure without a cause has no Cause."""
    checked = 0
    for name, state in STATES.items():
        for rule in state.get("Choices", []):
            for comparison, before in _comparisons(rule):
                if comparison.get("Variable") != "$.error.Cause" or "IsPresent" in comparison:
                    continue
                checked += 1
                guards = [
                    b for b in before if b.get("Variable") == "$.error.Cause" and b.get("IsPresent") is True
                ]
                assert guards, f"{name} tests $.error.Cause without IsPresent first"
    assert checked


# --- 8. the heartbeat deadline -------------------------------------------------------------------------


def test_the_task_heartbeat_deadline_includes_the_task_start_grace():
    task = STATES["RunBrowserTask"]
    assert task["HeartbeatSecondsPath"] == "$.claim.detail.taskHeartbeatSeconds"
    assert STATES["Claim"]["Parameters"]["Payload"]["heartbeatSeconds.$"] == "$.heartbeatSeconds"
    parameter = TEMPLATE["Parameters"]["TaskStartGraceSeconds"]
    assert (parameter["Default"], parameter["MinValue"], parameter["MaxValue"]) == (90, 0, 600)
    claim = TEMPLATE["Resources"]["ClaimFunction"]["Properties"]
    assert claim["Environment"]["Variables"]["TASK_START_GRACE_SECONDS"] == {"Ref": "TaskStartGraceSeconds"}
    environment = task["Parameters"]["Overrides"]["ContainerOverrides"][0]["Environment"]
    assert {"Name": "STATE_ENTERED_TIME", "Value.$": "$$.State.EnteredTime"} in environment
