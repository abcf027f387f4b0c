"""Cleanup: executions that ended outside the workflow, and the lease sweep; idempotent, owner-only."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from browserjobs.core.clock import iso_ms, iso_seconds
from browserjobs.core.keys import lock_key, slot_key

pytestmark = pytest.mark.unit

JOB = "direct-example-0001"  # the job named by the sample events
LOCK = "tenant-a#account-42"


def running_job(
    stack,
    job_id: str,
    lock: str,
    *,
    slot: int,
    task_arn: str | None = None,
    claimed_s: int | None = None,
    timeout: int = 300,
    lease_s: int | None = None,
) -> dict[str, Any]:
    """A RUNNING job holding its lock and a slot, as a claim and the worker's registration leave it."""
    claimed_s = int(time.time()) - 30 if claimed_s is None else claimed_s
    lease_s = claimed_s + timeout + 120 if lease_s is None else lease_s
    execution = stack.sfn.start_execution(stateMachineArn=stack.state_machine_arn, name=job_id, input="{}")
    record = {
        "jobId": job_id,
        "lockKey": lock,
        "rateKey": lock,
        "status": "RUNNING",
        "timeoutSeconds": timeout,
        "executionArn": execution["executionArn"],
        "claimedAt": iso_ms(claimed_s * 1000),
        "updatedAt": iso_ms(claimed_s * 1000),
    }
    stack.put_job(record)
    lock_item = {
        "pk": lock_key(lock),
        "jobId": job_id,
        "executionArn": execution["executionArn"],
        "slot": slot_key(slot),
        "leaseExpiresAt": iso_seconds(lease_s),
        "leaseExpiresAtEpoch": lease_s,
        "taskArn": task_arn,
    }
    stack.put_lease(lock_item)
    stack.put_lease({"pk": slot_key(slot), "jobId": job_id, "lockKey": lock, "leaseExpiresAtEpoch": lease_s})
    return record


def task_state(stack, task_arn: str) -> dict[str, Any]:
    return stack.ecs.describe_tasks(cluster=stack.cluster_arn, tasks=[task_arn])["tasks"][0]


@pytest.fixture
def cleanup(stack, app):
    return app("cleanup")


def test_an_aborted_execution_stops_the_task_releases_and_dead_letters_the_job(
    stack, cleanup, event, lambda_context
):
    task_arn = stack.run_task()
    record = running_job(stack, JOB, LOCK, slot=3, task_arn=task_arn)

    result = cleanup.lambda_handler(event("cleanup-execution-aborted"), lambda_context)

    assert result["ended"] is True
    assert result["releasedLock"] is True and result["releasedSlots"] == [3]
    stopped = task_state(stack, task_arn)
    assert stopped["desiredStatus"] == "STOPPED"
    assert "Execution.Aborted" in stopped["stoppedReason"]
    job = stack.job(JOB)
    assert job["status"] == "FAILED"
    assert job["error"]["Error"] == "Execution.Aborted"
    assert JOB in job["error"]["Cause"]
    assert job["endedAt"].endswith("Z")
    assert stack.lease(lock_key(LOCK)) is None and stack.lease(slot_key(3)) is None
    [message] = stack.dlq_messages()
    assert message == {
        "jobId": JOB,
        "status": "FAILED",
        "error": job["error"],
        "executionArn": record["executionArn"],
        "lockKey": LOCK,
        "failedAt": job["endedAt"],
        "source": "cleanup",
    }


def test_the_same_event_twice_ends_the_job_once(stack, cleanup, event, lambda_context):
    running_job(stack, JOB, LOCK, slot=0)
    cleanup.lambda_handler(event("cleanup-execution-aborted"), lambda_context)
    ended = stack.job(JOB)

    again = cleanup.lambda_handler(event("cleanup-execution-aborted"), lambda_context)

    assert again["ended"] is False and again["releasedSlots"] == [] and again["releasedLock"] is False
    assert stack.job(JOB) == ended
    assert len(stack.dlq_messages()) == 1


def test_leases_now_held_by_another_job_are_left_alone(stack, cleanup, event, lambda_context):
    mine = stack.run_task()
    theirs = stack.run_task()
    running_job(stack, JOB, LOCK, slot=1, task_arn=mine)
    # The lock expired and a later job took it over (with its own task); our slot is still ours.
    running_job(stack, "job-successor", LOCK, slot=2, task_arn=theirs)
    stack.ddb.update_item(
        TableName=stack.jobs_table,
        Key={"jobId": {"S": JOB}},
        UpdateExpression="SET taskArn = :t",
        ExpressionAttributeValues={":t": {"S": mine}},
    )

    result = cleanup.lambda_handler(event("cleanup-execution-aborted"), lambda_context)

    assert result["releasedLock"] is False and result["releasedSlots"] == [1]
    assert stack.lease(lock_key(LOCK))["jobId"] == "job-successor"
    assert stack.lease(slot_key(2))["jobId"] == "job-successor"
    assert task_state(stack, mine)["desiredStatus"] == "STOPPED"
    assert task_state(stack, theirs)["desiredStatus"] == "RUNNING"


def test_a_job_that_already_ended_only_has_its_leftover_leases_released(
    stack, cleanup, event, lambda_context
):
    running_job(stack, JOB, LOCK, slot=4)
    stack.ddb.update_item(
        TableName=stack.jobs_table,
        Key={"jobId": {"S": JOB}},
        UpdateExpression="SET #s = :s",
        ExpressionAttributeNames={"#s": "status"},
        ExpressionAttributeValues={":s": {"S": "SUCCEEDED"}},
    )

    result = cleanup.lambda_handler(event("cleanup-execution-aborted"), lambda_context)

    assert result == {"jobId": JOB, "ended": False, "releasedLock": True, "releasedSlots": [4]}
    assert stack.job(JOB)["status"] == "SUCCEEDED"
    assert stack.dlq_messages() == []


def test_a_missing_job_record_still_releases_the_leases_named_by_the_execution_input(
    stack, cleanup, event, lambda_context
):
    running_job(stack, JOB, LOCK, slot=5)
    stack.ddb.delete_item(TableName=stack.jobs_table, Key={"jobId": {"S": JOB}})

    result = cleanup.lambda_handler(event("cleanup-execution-aborted"), lambda_context)

    assert result == {"jobId": JOB, "ended": False, "releasedLock": True, "releasedSlots": [5]}
    assert stack.dlq_messages() == []


@pytest.mark.parametrize(
    ("name", "status", "error"),
    [
        ("cleanup-execution-timed-out", "TIMED_OUT", "Execution.TimedOut"),
        ("cleanup-execution-failed", "FAILED", "States.Runtime"),
    ],
)
def test_the_status_and_error_come_from_the_event(stack, cleanup, event, lambda_context, name, status, error):
    running_job(stack, JOB, LOCK, slot=0)
    sample = event(name)

    cleanup.lambda_handler(sample, lambda_context)

    job = stack.job(JOB)
    assert (job["status"], job["error"]["Error"]) == (status, error)
    assert job["error"]["Cause"] == (sample["detail"]["cause"] or job["error"]["Cause"])
    assert stack.dlq_messages()[0]["status"] == status


def test_a_succeeded_execution_is_not_cleaned_up(stack, cleanup, event, lambda_context):
    running_job(stack, JOB, LOCK, slot=0)
    succeeded = event("cleanup-execution-aborted")
    succeeded["detail"]["status"] = "SUCCEEDED"

    assert cleanup.lambda_handler(succeeded, lambda_context) == {"jobId": JOB, "ended": False}
    assert stack.job(JOB)["status"] == "RUNNING"


def test_the_sweep_ends_jobs_whose_lease_expired_and_leaves_live_ones(stack, cleanup, event, lambda_context):
    now = int(time.time())
    expired_task = stack.run_task()
    running_job(
        stack,
        "job-expired",
        "acct#1",
        slot=0,
        task_arn=expired_task,
        claimed_s=now - 600,
        timeout=300,
        lease_s=now - 60,
    )
    running_job(stack, "job-live", "acct#2", slot=1, claimed_s=now - 60, timeout=300)
    # Its lease expired and a later claim took lock and slot over: no lease item is left to find it by.
    running_job(
        stack, "job-overtaken", "acct#3", slot=2, claimed_s=now - 1000, timeout=300, lease_s=now - 500
    )
    stack.put_lease({"pk": lock_key("acct#3"), "jobId": "job-next", "leaseExpiresAtEpoch": now + 500})
    stack.put_lease(
        {"pk": slot_key(2), "jobId": "job-next", "lockKey": "acct#3", "leaseExpiresAtEpoch": now + 500}
    )

    result = cleanup.lambda_handler(event("cleanup-sweep"), lambda_context)

    swept = {r["jobId"]: r for r in result["swept"]}
    assert set(swept) == {"job-expired", "job-overtaken"}
    assert swept["job-expired"]["releasedLock"] is True and swept["job-expired"]["releasedSlots"] == [0]
    assert swept["job-overtaken"]["releasedLock"] is False and swept["job-overtaken"]["releasedSlots"] == []
    for job_id in swept:
        job = stack.job(job_id)
        assert (job["status"], job["error"]["Error"]) == ("TIMED_OUT", "Lease.Expired")
        execution = stack.sfn.describe_execution(executionArn=job["executionArn"])
        assert execution["status"] == "ABORTED"
    assert task_state(stack, expired_task)["desiredStatus"] == "STOPPED"
    assert stack.job("job-live")["status"] == "RUNNING"
    assert stack.lease(lock_key("acct#2"))["jobId"] == "job-live"
    assert stack.lease(lock_key("acct#3"))["jobId"] == "job-next"
    assert sorted(m["jobId"] for m in stack.dlq_messages()) == ["job-expired", "job-overtaken"]


def test_a_second_sweep_finds_nothing_more(stack, cleanup, event, lambda_context):
    now = int(time.time())
    running_job(stack, "job-expired", "acct#1", slot=0, claimed_s=now - 600, timeout=300, lease_s=now - 60)
    cleanup.lambda_handler(event("cleanup-sweep"), lambda_context)

    assert cleanup.lambda_handler(event("cleanup-sweep"), lambda_context) == {"swept": []}
    assert len(stack.dlq_messages()) == 1


def test_an_event_cleanup_does_not_take_is_an_error(stack, cleanup, event, lambda_context):
    other = {**event("cleanup-sweep"), "detail-type": "ECS Task State Change"}

    with pytest.raises(ValueError, match="ECS Task State Change"):
        cleanup.lambda_handler(other, lambda_context)


def test_execution_input_without_lock_key_is_tolerated(cleanup):
    assert cleanup.input_lock_key({"input": json.dumps({"jobId": "x"})}) is None
    assert cleanup.input_lock_key({"input": None}) is None
    assert cleanup.input_lock_key({"input": "[1]"}) is None
    assert cleanup.input_lock_key({"input": json.dumps({"lockKey": "a#b"})}) == "a#b"


def test_the_same_event_delivered_twice_at_once_sends_one_dlq_message(
    stack, cleanup, event, lambda_context, monkeypatch
):
    """EventBridge delivers at least once: two cleanups of one aborted execution both read the job while it
    is still RUNNING (the chaos run saw two DLQ messages for one job). Only one may send its message."""
    from browserjobs.core import cleanup as core_cleanup

    running_job(stack, JOB, LOCK, slot=0)
    stale = core_cleanup.get_job(stack.ddb, stack.jobs_table, JOB)  # what both read before either wrote
    monkeypatch.setattr(core_cleanup, "get_job", lambda ddb, table, job_id: dict(stale))

    first = cleanup.lambda_handler(event("cleanup-execution-aborted"), lambda_context)
    second = cleanup.lambda_handler(event("cleanup-execution-aborted"), lambda_context)

    assert first["ended"] is True and second["ended"] is False
    assert len(stack.dlq_messages()) == 1


def test_a_cleanup_that_died_midway_is_taken_over_later(stack, cleanup, event, lambda_context):
    """A mark left by a cleanup that crashed before it ended the job does not keep the job from ending."""
    running_job(stack, JOB, LOCK, slot=0)
    stale_ms = int(time.time() * 1000) - 10 * 60_000
    stack.ddb.update_item(
        TableName=stack.jobs_table,
        Key={"jobId": {"S": JOB}},
        UpdateExpression="SET endingAt = :t",
        ExpressionAttributeValues={":t": {"N": str(stale_ms)}},
    )

    result = cleanup.lambda_handler(event("cleanup-execution-aborted"), lambda_context)

    assert result["ended"] is True
    assert len(stack.dlq_messages()) == 1
