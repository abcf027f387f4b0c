"""Each path of statemachines/job.asl.json, run by moto with the real Lambdas and a scripted worker."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from browserjobs.testing.harness import Harness, new_id, poll

from .conftest import SECONDS_PER_TOKEN

pytestmark = pytest.mark.statemachine

JOB_END_SECONDS = 60


def job(script: str, lock_key: str | None = None, **fields: Any) -> dict[str, Any]:
    return {
        "jobId": new_id("sm"),
        "lockKey": lock_key or new_id("lock"),
        "action": "browse",
        "params": {"steps": [{"goto": {"url": "http://127.0.0.1:9/"}}]},
        "timeoutSeconds": 60,
        "heartbeatSeconds": 5,
        "meta": {"script": script},
        **fields,
    }


def run(harness: Harness, spec: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Submit a job to the intake queue; its final record and ended execution."""
    harness.submit(spec)
    return harness.wait_for_job_end(spec["jobId"], JOB_END_SECONDS)


def states_entered(harness: Harness, job_id: str) -> list[str]:
    return [
        e["stateEnteredEventDetails"]["name"]
        for e in harness.history(job_id)
        if "stateEnteredEventDetails" in e
    ]


def claim_outcomes(harness: Harness, job_id: str) -> list[dict[str, Any]]:
    outcomes = []
    for event in harness.history(job_id):
        details = event.get("taskSucceededEventDetails")
        if details and details["resourceType"] == "lambda":
            outcomes.append(json.loads(details["output"])["Payload"])
    return outcomes


def task_attempts(harness: Harness, job_id: str) -> int:
    """How many browser tasks the workflow started for the job (one per attempt of RunBrowserTask)."""
    return sum(
        1
        for e in harness.history(job_id)
        if e["type"] == "TaskScheduled" and e["taskScheduledEventDetails"]["resourceType"] == "ecs"
    )


def assert_released(harness: Harness, lock_key: str) -> None:
    assert harness.lock(lock_key) is None, f"lock {lock_key} still held"


def test_happy_path_records_success_and_releases_the_lock(harness: Harness) -> None:
    spec = job("succeed")
    record, execution = run(harness, spec)
    assert execution["status"] == "SUCCEEDED"
    assert record["status"] == "SUCCEEDED"
    assert json.loads(record["summary"]) == {"status": "SUCCEEDED", "script": "succeed"}
    assert "ReleaseAndRecordSuccess" in states_entered(harness, spec["jobId"])
    assert_released(harness, spec["lockKey"])
    task = harness.task(harness.task_arn_of(spec["jobId"]))
    poll("the task to stop", lambda: harness.task(task["taskArn"])["lastStatus"] == "STOPPED", 10)


def test_failure_is_recorded_and_dead_lettered(harness: Harness) -> None:
    spec = job("fail:Site.ClientError")
    record, execution = run(harness, spec)
    assert execution["status"] == "FAILED"
    assert execution["error"] == "Site.ClientError"
    assert record["status"] == "FAILED"
    assert record["error"] == {"Error": "Site.ClientError", "Cause": "scripted failure Site.ClientError"}
    assert task_attempts(harness, spec["jobId"]) == 1  # a client error is never retried
    message = harness.dead_letters(spec["jobId"], 10)
    assert message["status"] == "FAILED" and message["source"] == "workflow"
    assert message["error"]["Error"] == "Site.ClientError"
    assert message["executionArn"] == execution["executionArn"]
    assert_released(harness, spec["lockKey"])


@pytest.mark.parametrize(
    ("error", "retries"),
    [("Site.ServerError", 3), ("Site.Timeout", 2), ("Site.Unreachable", 2), ("Browser.Crashed", 1)],
)
def test_site_and_browser_failures_are_retried_as_the_table_says(harness: Harness, error, retries) -> None:
    # docs/CONTRACTS.md, Retries by error class. Each retry is a new task; the last allowed one succeeds.
    spec = job(f"fail-first:{retries}:{error}")
    record, execution = run(harness, spec)
    assert execution["status"] == "SUCCEEDED", execution
    assert json.loads(record["summary"])["attempt"] == retries
    assert task_attempts(harness, spec["jobId"]) == retries + 1
    assert_released(harness, spec["lockKey"])

    # One failure more than the table allows: the job fails with the site's error after every retry.
    spec = job(f"fail-first:{retries + 1}:{error}")
    record, execution = run(harness, spec)
    assert execution["status"] == "FAILED" and record["error"]["Error"] == error
    assert task_attempts(harness, spec["jobId"]) == retries + 1
    assert harness.dead_letters(spec["jobId"], 10)["error"]["Error"] == error
    assert_released(harness, spec["lockKey"])


def test_a_429_sends_the_job_back_to_its_claim_until_the_site_allows_it(harness: Harness) -> None:
    spec = job("ratelimited:1:3")
    record, execution = run(harness, spec)
    assert execution["status"] == "SUCCEEDED", execution
    assert json.loads(record["summary"])["runs"] == 2
    history = harness.history(spec["jobId"])
    entered = [e["stateEnteredEventDetails"]["name"] for e in history if "stateEnteredEventDetails" in e]
    assert entered.count("GiveBackClaim") == 1 and entered.count("RunBrowserTask") == 2
    # The second run starts at least the site's 3 s after the 429 (then a token at the halved rate).
    failed = next(e["timestamp"] for e in history if e["type"] == "TaskFailed")
    second_run = [
        e["timestamp"]
        for e in history
        if e.get("stateEnteredEventDetails", {}).get("name") == "RunBrowserTask"
    ][1]
    assert (second_run - failed).total_seconds() >= 3
    bucket = harness.bucket(spec["lockKey"])
    assert (
        bucket["ratePercent"] == 50 and bucket["successes"] == 1
    )  # halved, and one success towards recovery
    assert_released(harness, spec["lockKey"])


def test_a_site_that_keeps_answering_429_fails_the_job_after_five_rounds(harness: Harness) -> None:
    spec = job("ratelimited-bare:9", rateKey=new_id("rate"))
    record, execution = run(harness, spec)
    assert execution["status"] == "FAILED" and record["error"]["Error"] == "Site.RateLimited"
    assert states_entered(harness, spec["jobId"]).count("RunBrowserTask") == 6  # the first run, 5 rounds more
    assert harness.dead_letters(spec["jobId"], 10)["error"]["Error"] == "Site.RateLimited"
    assert_released(harness, spec["lockKey"])


def test_heartbeat_timeout_stops_the_task_releases_and_dead_letters(harness: Harness) -> None:
    spec = job("hang", heartbeatSeconds=2, timeoutSeconds=60)
    record, execution = run(harness, spec)
    assert execution["status"] == "FAILED"
    assert record["status"] == "TIMED_OUT"
    assert record["error"]["Error"] == "States.HeartbeatTimeout"
    entered = states_entered(harness, spec["jobId"])
    assert [name for name in entered if name in {"MarkTimedOut", "StopTask", "ReleaseAndRecordFailure"}] == [
        "MarkTimedOut",
        "StopTask",
        "ReleaseAndRecordFailure",
    ]
    task_arn = harness.task_arn_of(spec["jobId"])
    stopped = poll(
        "the hung task to stop", lambda: (t := harness.task(task_arn))["lastStatus"] == "STOPPED" and t, 30
    )
    assert stopped["stopCode"] == "UserInitiated"
    assert stopped["containers"][0]["exitCode"] == 143  # it exited on SIGTERM
    assert harness.dead_letters(spec["jobId"], 10)["status"] == "TIMED_OUT"
    assert_released(harness, spec["lockKey"])


def test_task_timeout_is_a_timeout_too(harness: Harness) -> None:
    # heartbeats come every 0.5 s, well inside 8 s even on a loaded machine: only the 10 s timeout ends it
    spec = job("work:30", heartbeatSeconds=8, timeoutSeconds=10)
    record, _ = run(harness, spec)
    assert record["status"] == "TIMED_OUT"
    assert record["error"]["Error"] == "States.Timeout"
    assert_released(harness, spec["lockKey"])


def test_crashed_worker_fails_within_seconds_through_the_crash_hook(harness: Harness) -> None:
    spec = job("crash", heartbeatSeconds=60, timeoutSeconds=600)
    record, execution = run(harness, spec)
    assert record["status"] == "FAILED"
    assert record["error"]["Error"] == "Worker.Crashed"
    task = harness.task(harness.task_arn_of(spec["jobId"]))
    assert task["containers"][0]["exitCode"] == 3
    # Long before the 60 s heartbeat could have noticed.
    crashed_to_failed = (execution["stopDate"] - task["stoppedAt"]).total_seconds()
    assert crashed_to_failed < 15, crashed_to_failed
    assert harness.dead_letters(spec["jobId"], 10)["error"]["Error"] == "Worker.Crashed"


def test_second_job_on_a_lock_waits_for_the_first(harness: Harness) -> None:
    lock_key = new_id("shared")
    first, second = job("work:4", lock_key), job("succeed", lock_key, onConflict="wait")
    harness.submit(first)
    harness.wait_for_status(first["jobId"], {"RUNNING"}, 30)
    harness.submit(second)
    waiting = harness.wait_for_status(second["jobId"], {"WAITING"}, 30)
    assert waiting["waitReason"] == "LOCKED"
    first_record, _ = harness.wait_for_job_end(first["jobId"], JOB_END_SECONDS)
    second_record, _ = harness.wait_for_job_end(second["jobId"], JOB_END_SECONDS)
    assert (first_record["status"], second_record["status"]) == ("SUCCEEDED", "SUCCEEDED")
    assert second_record["claimedAt"] >= first_record["endedAt"]
    assert "WaitForLock" in states_entered(harness, second["jobId"])


def test_interrupt_supersedes_the_running_job(harness: Harness) -> None:
    lock_key = new_id("shared")
    running, newer = job("work:40", lock_key), job("succeed", lock_key, onConflict="interrupt")
    harness.submit(running)
    harness.wait_for_status(running["jobId"], {"RUNNING"}, 30)
    harness.submit(newer)
    running_record, running_execution = harness.wait_for_job_end(running["jobId"], JOB_END_SECONDS)
    assert running_record["status"] == "INTERRUPTED"
    assert running_record["error"]["Error"] == "Job.Interrupted"
    assert running_execution["status"] == "SUCCEEDED"  # an interruption is an outcome, not an error
    newer_record, _ = harness.wait_for_job_end(newer["jobId"], JOB_END_SECONDS)
    assert newer_record["status"] == "SUCCEEDED"
    interruption = harness.target.table(harness.outputs["InterruptionsTableName"]).get_item(
        Key={"jobId": running["jobId"]}
    )["Item"]
    assert interruption["requestedBy"] == newer["jobId"]
    with pytest.raises(AssertionError):
        harness.dead_letters(running["jobId"], 3)


def test_reject_policy_ends_the_second_job_as_rejected(harness: Harness) -> None:
    lock_key = new_id("shared")
    running, rejected = job("work:6", lock_key), job("succeed", lock_key, onConflict="reject")
    harness.submit(running)
    harness.wait_for_status(running["jobId"], {"RUNNING"}, 30)
    harness.submit(rejected)
    record, execution = harness.wait_for_job_end(rejected["jobId"], JOB_END_SECONDS)
    assert execution["status"] == "SUCCEEDED"
    assert record["status"] == "REJECTED"
    assert record["rejection"]["code"] == "Job.LockHeld"
    assert harness.job(running["jobId"])["status"] == "RUNNING"  # untouched
    harness.wait_for_job_end(running["jobId"], JOB_END_SECONDS)


def test_throttled_claim_waits_exactly_what_the_bucket_needs(harness: Harness) -> None:
    rate_key = new_id("rate")
    specs = [job("succeed", rateKey=rate_key) for _ in range(3)]
    for spec in specs:
        harness.submit(spec)
    records = [harness.wait_for_job_end(spec["jobId"], JOB_END_SECONDS)[0] for spec in specs]
    assert [r["status"] for r in records] == ["SUCCEEDED"] * 3
    throttled = [
        spec["jobId"] for spec in specs if claim_outcomes(harness, spec["jobId"])[0]["outcome"] == "THROTTLED"
    ]
    assert len(throttled) == 1, "a burst of two allows two claims at once"
    outcomes = claim_outcomes(harness, throttled[0])
    assert [o["outcome"] for o in outcomes] == ["THROTTLED", "CLAIMED"], "one wait was enough"
    history = harness.history(throttled[0])
    entered = next(
        e for e in history if e.get("stateEnteredEventDetails", {}).get("name") == "WaitForCapacity"
    )
    exited = next(e for e in history if e.get("stateExitedEventDetails", {}).get("name") == "WaitForCapacity")
    waited = (exited["timestamp"] - entered["timestamp"]).total_seconds()
    asked = outcomes[0]["waitSeconds"]
    assert 1 <= asked <= SECONDS_PER_TOKEN
    assert asked <= waited < asked + 1, (asked, waited)


def test_duplicate_delivery_starts_one_execution(harness: Harness) -> None:
    spec = job("succeed")
    first, second = harness.submit_direct(spec), harness.submit_direct(spec)
    assert first["status"] == "STARTED" and second["status"] == "DUPLICATE"
    harness.wait_for_job_end(spec["jobId"], JOB_END_SECONDS)
    executions = harness.client("stepfunctions").list_executions(
        stateMachineArn=harness.outputs["StateMachineArn"]
    )
    assert [e["name"] for e in executions["executions"]].count(spec["jobId"]) == 1


def pool_messages(harness: Harness, job_id: str) -> int:
    """How many dispatch messages the workflow sent for the job (one per attempt of RunPoolJob)."""
    return sum(
        1
        for e in harness.history(job_id)
        if e["type"] == "TaskScheduled"
        and e["taskScheduledEventDetails"]["resource"] == "sendMessage.waitForTaskToken"
    )


def test_a_pool_job_takes_the_successful_path_through_the_dispatch_queue(harness: Harness) -> None:
    spec = job("succeed", dispatch="pool")
    record, execution = run(harness, spec)
    assert execution["status"] == "SUCCEEDED" and record["status"] == "SUCCEEDED"
    assert states_entered(harness, spec["jobId"]) == [
        "CheckLock",
        "LockFound",
        "Claim",
        "ClaimOutcome",
        "RunPoolJob",
        "ReleaseAndRecordSuccess",
        "Succeeded",
    ]
    assert (pool_messages(harness, spec["jobId"]), task_attempts(harness, spec["jobId"])) == (1, 0)
    assert harness.task(record["taskArn"])["group"].startswith("service:")  # a worker of the pool service
    assert_released(harness, spec["lockKey"])


def test_a_pool_job_that_stops_heartbeating_times_out_without_stopping_the_shared_task(
    harness: Harness,
) -> None:
    """Other jobs run on a pool task: a timeout releases the claim and leaves the task to the worker's own
    cancellation (its next heartbeat is refused) and health check."""
    spec = job("hang", dispatch="pool", heartbeatSeconds=2, timeoutSeconds=60)
    record, execution = run(harness, spec)
    assert execution["status"] == "FAILED" and record["status"] == "TIMED_OUT"
    assert record["error"]["Error"] == "States.HeartbeatTimeout"
    entered = states_entered(harness, spec["jobId"])
    assert "MarkTimedOut" in entered and "ReleaseAndRecordFailure" in entered
    assert not {"FindTask", "StopTask"} & set(entered)
    assert harness.task(record["taskArn"])["lastStatus"] == "RUNNING"
    assert harness.dead_letters(spec["jobId"], 10)["status"] == "TIMED_OUT"
    assert_released(harness, spec["lockKey"])


def test_a_pool_job_is_retried_by_class_as_a_task_job_is(harness: Harness) -> None:
    spec = job("fail-first:1:Site.ServerError", dispatch="pool")
    record, _ = run(harness, spec)
    assert record["status"] == "SUCCEEDED"
    assert json.loads(record["summary"])["attempt"] == 1
    assert pool_messages(harness, spec["jobId"]) == 2  # each retry is a new message, for any worker


def test_status_change_events_reach_the_cleanup_rule(harness: Harness, stack: Any) -> None:
    """An execution aborted from outside the workflow is cleaned up by the EventBridge rule's function."""
    spec = job("work:40")
    harness.submit(spec)
    harness.wait_for_status(spec["jobId"], {"RUNNING"}, 30)
    harness.client("stepfunctions").stop_execution(
        executionArn=harness.execution_arn(spec["jobId"]), error="Test.Abort"
    )
    record = harness.wait_for_status(spec["jobId"], {"FAILED", "TIMED_OUT"}, 30)
    assert record["status"] == "FAILED"
    poll("the lock to be released by cleanup", lambda: harness.lock(spec["lockKey"]) is None, 30)
    assert harness.dead_letters(spec["jobId"], 10)["source"] == "cleanup"
    started = time.monotonic()
    poll(
        "the aborted job's task to stop",
        lambda: harness.task(harness.task_arn_of(spec["jobId"]))["lastStatus"] == "STOPPED",
        30,
    )
    assert time.monotonic() - started < 30
