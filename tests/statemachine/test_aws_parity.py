"""What the workflow must do to work on AWS, not only on the local stack ("Works on AWS" issue).

Each test drives statemachines/job.asl.json on the local stack; where moto is more forgiving than AWS,
the comment says what AWS does and where that is documented.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import pytest

from browserjobs.core.claim import patience_seconds
from browserjobs.core.config import Settings
from browserjobs.testing.harness import Harness, new_id

from .conftest import TASK_START_GRACE_SECONDS
from .test_job_workflow import JOB_END_SECONDS, assert_released, claim_outcomes, job, run, states_entered

pytestmark = pytest.mark.statemachine

ASL_EXECUTION_TIMEOUT_SECONDS = 86_400
HISTORY_LIMIT = (
    25_000  # hard and uncatchable: https://docs.aws.amazon.com/step-functions/latest/dg/service-quotas.html
)
HISTORY_BUDGET = 20_000


def slot_item(harness: Harness, slot: str) -> dict[str, Any] | None:
    table = harness.target.table(harness.outputs["LocksTableName"])
    return table.get_item(Key={"pk": slot}, ConsistentRead=True).get("Item")


# --- 2. a deploy replaces the task definition revision while executions wait ---------------------------


def test_a_waiting_execution_runs_the_latest_revision_after_a_deploy(harness: Harness) -> None:
    """CloudFormation replaces AWS::ECS::TaskDefinition on a deploy: it registers a new revision and
    deregisters the old one. RunTask on an INACTIVE revision fails on AWS (DeregisterTaskDefinition: "you
    can't use an INACTIVE task definition to run new tasks",
    https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_DeregisterTaskDefinition.html), so the
    workflow runs the family, which RunTask resolves to its latest ACTIVE revision
    (https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_RunTask.html, taskDefinition).
    moto keeps deregistered revisions runnable, so this asserts the revision the waiting job ran."""
    ecs = harness.client("ecs")
    lock_key = new_id("deploy")
    first, waiting = job("work:4", lock_key), job("succeed", lock_key, onConflict="wait")
    harness.submit(first)
    harness.wait_for_status(first["jobId"], {"RUNNING"}, 30)
    harness.submit(waiting)
    harness.wait_for_status(waiting["jobId"], {"WAITING"}, 30)

    old_arn = harness.task(harness.task_arn_of(first["jobId"]))["taskDefinitionArn"]
    old = ecs.describe_task_definition(taskDefinition=old_arn)["taskDefinition"]
    copied = (
        "family",
        "containerDefinitions",
        "taskRoleArn",
        "executionRoleArn",
        "networkMode",
        "volumes",
        "requiresCompatibilities",
        "cpu",
        "memory",
        "runtimePlatform",
    )
    new_arn = ecs.register_task_definition(**{k: old[k] for k in copied if k in old})["taskDefinition"][
        "taskDefinitionArn"
    ]
    ecs.deregister_task_definition(taskDefinition=old_arn)

    record, execution = harness.wait_for_job_end(waiting["jobId"], JOB_END_SECONDS)
    assert (record["status"], execution["status"]) == ("SUCCEEDED", "SUCCEEDED")
    assert harness.task(harness.task_arn_of(waiting["jobId"]))["taskDefinitionArn"] == new_arn


# --- 4. a release transaction cancelled by a conflict --------------------------------------------------


@pytest.mark.parametrize("conflicts", [1, 100], ids=["once-then-retried", "always-then-fallback"])
def test_a_release_cancelled_by_a_transaction_conflict_still_releases_lock_and_slot(
    harness: Harness, monkeypatch: pytest.MonkeyPatch, conflicts: int
) -> None:
    """DynamoDB cancels a TransactWriteItems that conflicts with another transaction on one of its items
    (CancellationReason TransactionConflict,
    https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_TransactWriteItems.html); the AWS
    SDK integration raises it as DynamoDb.TransactionCanceledException (ServiceName.ExceptionName,
    https://docs.aws.amazon.com/step-functions/latest/dg/supported-services-awssdk.html). moto never
    does this: the test cancels the release transaction of its own job, `conflicts` times."""
    from moto.dynamodb.exceptions import TransactionCanceledException
    from moto.dynamodb.models import DynamoDBBackend

    spec = job("succeed")
    original = DynamoDBBackend.transact_write_items
    cancelled: list[int] = []

    def conflicting(self: Any, transact_items: list[dict[str, Any]]) -> None:
        releases_this_job = any(
            "Delete" in item and f"lock#{spec['lockKey']}" in json.dumps(item) for item in transact_items
        )
        if releases_this_job and len(cancelled) < conflicts:
            cancelled.append(1)
            reasons = [("TransactionConflict", "Transaction is ongoing for the item", None)]
            raise TransactionCanceledException(reasons + [(None, None, None)] * (len(transact_items) - 1))
        return original(self, transact_items)

    monkeypatch.setattr(DynamoDBBackend, "transact_write_items", conflicting)
    record, execution = run(harness, spec)

    assert cancelled, "the release transaction was never attempted"
    assert (record["status"], execution["status"]) == ("SUCCEEDED", "SUCCEEDED")
    assert_released(harness, spec["lockKey"])
    slot = claim_outcomes(harness, spec["jobId"])[-1]["slot"]
    assert slot_item(harness, slot) is None, f"slot {slot} still held"


# --- 7. an error without a Cause -----------------------------------------------------------------------


def test_a_failure_without_a_cause_is_given_one(harness: Harness) -> None:
    """A Choice rule on a missing path fails the execution with States.Runtime on AWS (IsPresent is the one
    test that may look at a missing path: https://docs.aws.amazon.com/step-functions/latest/dg/state-choice.html);
    moto answers false instead, so tests/unit/template/test_template.py checks the IsPresent guard itself."""
    spec = job("fail-nocause:Site.ServerError")
    record, execution = run(harness, spec)
    assert execution["status"] == "FAILED"
    assert record["error"]["Error"] == "Site.ServerError"
    assert record["error"]["Cause"].startswith("Site.ServerError while the job was FAILED")
    entered = states_entered(harness, spec["jobId"])
    assert entered.index("ErrorHasCause") < entered.index("AddCause")
    assert_released(harness, spec["lockKey"])


# --- 8. the heartbeat deadline includes the task's start -----------------------------------------------


def test_a_first_heartbeat_after_heartbeat_seconds_but_within_the_start_grace_succeeds(
    harness: Harness,
) -> None:
    """HeartbeatSeconds counts from the task state's start, and a Fargate task needs 30-60 s (provisioning,
    image pull) before its process can send a heartbeat: the deadline is heartbeatSeconds +
    TaskStartGraceSeconds (https://docs.aws.amazon.com/step-functions/latest/dg/state-task.html)."""
    heartbeat = 2
    late = heartbeat + TASK_START_GRACE_SECONDS / 3
    spec = job(f"late:{late}", heartbeatSeconds=heartbeat, timeoutSeconds=60)
    record, execution = run(harness, spec)
    assert (record["status"], execution["status"]) == ("SUCCEEDED", "SUCCEEDED")
    summary = json.loads(record["summary"])
    assert summary["stateEnteredTime"], "the worker is told when the task state was entered"
    assert summary["stateRetryCount"] == "0", "and which attempt it is (EnteredTime is the first attempt's)"
    assert (
        claim_outcomes(harness, spec["jobId"])[-1]["taskHeartbeatSeconds"]
        == heartbeat + TASK_START_GRACE_SECONDS
    )


# --- 5. a job waiting a whole day stays far from the history limit -------------------------------------


def _events_by_state(history: list[dict[str, Any]]) -> dict[str, int]:
    """How many history events each state's visits take, the most of any visit (entered ... exited)."""
    counts: dict[str, int] = {}
    current: str | None = None
    seen = 0
    for event in history:
        entered = event.get("stateEnteredEventDetails")
        exited = event.get("stateExitedEventDetails")
        if entered:
            current, seen = entered["name"], 0
        if current is not None:
            seen += 1
        if exited and current == exited["name"]:
            counts[current] = max(counts.get(current, 0), seen)
            current = None
    return counts


def _lock_wait_rounds(initial: int, max_delay: int, seconds: int) -> int:
    """Rounds of the lock-wait loop in `seconds`, as GrowBackoff/ClampBackoff compute the delay (checked
    against the ASL in tests/unit/template/test_template.py), with no time spent outside the Wait state."""
    delay, cap, waited, rounds = initial, max_delay, 0, 0
    while waited < seconds:
        waited, rounds = waited + delay, rounds + 1
        delay *= 2
        if delay > cap:
            delay, cap = cap, cap + 1
    return rounds


def _claim_wait_rounds(seconds: int) -> int:
    """Rounds of the claim loop in `seconds` when every claim is THROTTLED or AT_CAPACITY with the shortest
    wait the bucket or the slots allow (1 s), so that only the claim's patience spaces them out."""
    waited, rounds = 0, 0
    while waited < seconds:
        waited, rounds = waited + max(1, patience_seconds(waited)), rounds + 1
    return rounds


def test_a_job_waiting_for_the_whole_execution_timeout_stays_under_the_history_limit(
    harness: Harness,
) -> None:
    """Counts the events of each state from real histories (a job that waited for a lock, one that was
    throttled), then the most rounds each wait loop can make in the execution's TimeoutSeconds."""
    lock_key, rate_key = new_id("bound"), new_id("rate")
    holder, waiter = job("work:4", lock_key), job("succeed", lock_key, onConflict="wait")
    throttled = [job("succeed", rateKey=rate_key) for _ in range(3)]
    harness.submit(holder)
    harness.wait_for_status(holder["jobId"], {"RUNNING"}, 30)
    for spec in [waiter, *throttled]:
        harness.submit(spec)
    for spec in [holder, waiter, *throttled]:
        harness.wait_for_job_end(spec["jobId"], JOB_END_SECONDS)

    events: Counter[str] = Counter()
    for spec in [waiter, *throttled]:
        for name, count in _events_by_state(harness.history(spec["jobId"])).items():
            events[name] = max(events[name], count)
    # ClampBackoff runs only once the delay passes maxDelaySeconds; it is a Pass state like GrowBackoff.
    events["ClampBackoff"] = events["ClampBackoff"] or events["GrowBackoff"]
    lock_round = [
        "CheckLock",
        "LockFound",
        "LockHeldByAnother",
        "ConflictPolicy",
        "LockWaitExhausted",
        "MarkWaiting",
        "WaitForLock",
        "GrowBackoff",
        "CapBackoff",
        "ClampBackoff",
    ]
    claim_round = ["Claim", "ClaimOutcome", "WaitForCapacity"]
    missing = [name for name in lock_round + claim_round if not events[name]]
    assert not missing, f"no history measured for {missing}"
    lock_events = sum(events[name] for name in lock_round)
    claim_events = sum(events[name] for name in claim_round)
    locked_claim_events = events["Claim"] + events["ClaimOutcome"]  # a claim that found the lock taken

    settings = Settings.from_env({})
    lock_rounds = _lock_wait_rounds(
        settings.lock_wait_initial_seconds,
        settings.lock_wait_max_delay_seconds,
        ASL_EXECUTION_TIMEOUT_SECONDS,
    )
    claim_rounds = _claim_wait_rounds(ASL_EXECUTION_TIMEOUT_SECONDS)
    # Waiting for the lock and for a token or slot share the day, so the sum of both worst cases bounds
    # any mix; every lock round may also follow a claim that found the lock taken. The rest of the job
    # (run, failure path, retries) is a few dozen events.
    worst = lock_rounds * (lock_events + locked_claim_events) + claim_rounds * claim_events + 200
    assert worst < HISTORY_BUDGET < HISTORY_LIMIT, (
        f"{lock_rounds} lock rounds x {lock_events + locked_claim_events} + "
        f"{claim_rounds} claim rounds x {claim_events} = {worst}"
    )
