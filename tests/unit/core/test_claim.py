"""Claim: token, lock, slot and job status change together in one transaction, or not at all."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from browserjobs.core.claim import ClaimContention, ClaimRequest, JobNotClaimable, claim
from browserjobs.core.clock import iso_ms
from browserjobs.core.config import Settings
from browserjobs.core.keys import bucket_key, lock_key, slot_key
from tests.clocks import FixedClock

pytestmark = pytest.mark.unit

T0 = 1_736_933_400_000  # 2025-01-15T09:30:00Z


def settings(**overrides: Any) -> Settings:
    return dataclasses.replace(Settings.from_env(), **overrides)


def submitted(stack, job_id: str, lock: str, rate: str | None = None, timeout: int = 300) -> ClaimRequest:
    stack.put_job(
        {
            "jobId": job_id,
            "lockKey": lock,
            "rateKey": rate or lock,
            "status": "SUBMITTED",
            "timeoutSeconds": timeout,
            "createdAt": iso_ms(T0),
            "updatedAt": iso_ms(T0),
        }
    )
    arn = f"arn:aws:states:us-east-1:123456789012:execution:jobs:{job_id}"
    return ClaimRequest(job_id, lock, rate or lock, timeout, arn)


def tokens(stack, rate_key: str) -> float | None:
    item = stack.lease(bucket_key(rate_key))
    return None if item is None else item["tokens"]


def test_sample_event_claims_token_lock_slot_and_job_at_once(stack, app, event, lambda_context):
    request_event = event("claim-request")
    submitted(stack, request_event["jobId"], request_event["lockKey"])
    claim_app = app("claim")

    result = claim_app.lambda_handler(request_event, lambda_context)

    assert result["outcome"] == "CLAIMED"
    lock = stack.lease(lock_key(request_event["lockKey"]))
    assert lock["jobId"] == request_event["jobId"]
    assert lock["executionArn"] == request_event["executionArn"]
    assert lock["slot"] == result["slot"] and result["slot"].startswith("slot#")
    assert lock["leaseExpiresAt"] == result["leaseExpiresAt"]
    assert result["leaseExpiresAt"].endswith("Z") and "." not in result["leaseExpiresAt"]
    assert lock["expiresAt"] > lock["leaseExpiresAtEpoch"]
    assert stack.lease(result["slot"])["jobId"] == request_event["jobId"]
    assert tokens(stack, request_event["rateKey"]) == pytest.approx(9)
    job = stack.job(request_event["jobId"])
    assert job["status"] == "RUNNING"
    assert job["executionArn"] == request_event["executionArn"]
    assert "claimedAt" in job and "waitReason" not in job


def test_lease_is_claim_time_plus_timeout_plus_grace(stack):
    request = submitted(stack, "job-lease", "acct#1", timeout=300)

    result = claim(stack.ddb, settings(lease_grace_seconds=120), request, FixedClock(T0))

    lock = stack.lease(lock_key("acct#1"))
    assert lock["leaseExpiresAtEpoch"] == T0 // 1000 + 300 + 120
    assert result["leaseExpiresAt"] == "2025-01-15T09:37:00Z"


def test_a_repeated_claim_of_the_same_execution_spends_nothing(stack):
    request = submitted(stack, "job-retry", "acct#1")
    clock = FixedClock(T0)
    first = claim(stack.ddb, settings(), request, clock)
    clock.advance(1)

    again = claim(stack.ddb, settings(), request, clock)

    assert again == first
    assert tokens(stack, "acct#1") == pytest.approx(9)


def test_an_expired_lease_is_never_reported_as_a_live_claim_even_to_its_own_execution(stack):
    config, clock = one_short_lease(stack, "acct#1")
    request = submitted(stack, "job-short", "acct#1", timeout=10)  # the job waits to run again
    clock.advance(10)

    result = claim(stack.ddb, config, request, clock)

    assert result["leaseExpiresAt"] == "2025-01-15T09:30:20Z"
    assert stack.lease(lock_key("acct#1"))["claimedAt"] == iso_ms(T0 + 10_000)


def test_a_live_lock_of_another_job_is_locked_and_spends_no_token(stack):
    holder = submitted(stack, "job-holder", "acct#1")
    claim(stack.ddb, settings(), holder, FixedClock(T0))
    waiting = submitted(stack, "job-waiting", "acct#1", rate="acct#1-other")

    result = claim(stack.ddb, settings(), waiting, FixedClock(T0 + 1000))

    assert result == {"outcome": "LOCKED", "holder": "job-holder"}
    assert tokens(stack, "acct#1-other") is None
    job = stack.job("job-waiting")
    assert (job["status"], job["waitReason"]) == ("WAITING", "LOCKED")


def test_an_empty_bucket_says_exactly_how_long_until_the_next_token(stack):
    config = settings(rate_limit_per_minute=10, rate_burst=2)
    clock = FixedClock(T0)
    for n in (1, 2):
        assert (
            claim(stack.ddb, config, submitted(stack, f"job-{n}", f"acct#{n}", rate="tenant"), clock)[
                "outcome"
            ]
            == "CLAIMED"
        )
    third = submitted(stack, "job-3", "acct#3", rate="tenant")

    throttled = claim(stack.ddb, config, third, clock)

    assert throttled == {"outcome": "THROTTLED", "waitSeconds": 6}  # 10 a minute: one token per 6 s
    job = stack.job("job-3")
    assert (job["status"], job["waitReason"]) == ("WAITING", "THROTTLED")
    clock.advance(5.999)
    assert claim(stack.ddb, config, third, clock) == {"outcome": "THROTTLED", "waitSeconds": 1}
    clock.advance(0.001)
    assert claim(stack.ddb, config, third, clock)["outcome"] == "CLAIMED"
    assert stack.job("job-3")["status"] == "RUNNING"
    assert tokens(stack, "tenant") == pytest.approx(0)


def test_the_wait_is_rounded_up_to_whole_seconds(stack):
    config = settings(rate_limit_per_minute=7, rate_burst=1)
    clock = FixedClock(T0)
    claim(stack.ddb, config, submitted(stack, "job-1", "acct#1", rate="tenant"), clock)

    result = claim(stack.ddb, config, submitted(stack, "job-2", "acct#2", rate="tenant"), clock)

    assert result == {"outcome": "THROTTLED", "waitSeconds": 9}  # 60/7 = 8.57 s


def test_full_capacity_waits_without_spending_a_token(stack):
    config = settings(max_concurrent_tasks=2)
    clock = FixedClock(T0)
    for n in (1, 2):
        claim(stack.ddb, config, submitted(stack, f"job-{n}", f"acct#{n}"), clock)

    result = claim(stack.ddb, config, submitted(stack, "job-3", "acct#3"), clock)

    assert result == {"outcome": "AT_CAPACITY", "waitSeconds": 10}
    assert tokens(stack, "acct#3") is None
    assert stack.lease(lock_key("acct#3")) is None
    job = stack.job("job-3")
    assert (job["status"], job["waitReason"]) == ("WAITING", "AT_CAPACITY")
    assert {stack.lease(slot_key(n))["jobId"] for n in (0, 1)} == {"job-1", "job-2"}


def one_short_lease(stack, lock: str) -> tuple[Settings, FixedClock]:
    """The only slot, held by a job whose lease (no grace) lasts 10 s from T0."""
    config = settings(max_concurrent_tasks=1, lease_grace_seconds=0)
    clock = FixedClock(T0)
    claim(stack.ddb, config, submitted(stack, "job-short", lock, timeout=10), clock)
    return config, clock


def test_capacity_wait_is_no_longer_than_the_soonest_lease_expiry(stack):
    config, clock = one_short_lease(stack, "acct#1")
    clock.advance(7)

    result = claim(stack.ddb, config, submitted(stack, "job-2", "acct#2"), clock)

    assert result == {"outcome": "AT_CAPACITY", "waitSeconds": 3}


def test_an_expired_lease_is_taken_over_lock_and_slot(stack):
    config, clock = one_short_lease(stack, "acct#1")
    clock.advance(10)

    result = claim(stack.ddb, config, submitted(stack, "job-next", "acct#1"), clock)

    assert result["outcome"] == "CLAIMED"
    assert stack.lease(lock_key("acct#1"))["jobId"] == "job-next"
    assert stack.lease(slot_key(0))["jobId"] == "job-next"


class Interfering:
    """A DynamoDB client whose transactions are preceded by another claim's, as under real load."""

    def __init__(self, real: Any, before_transaction: Any, times: int = 1) -> None:
        self.real, self.before, self.times = real, before_transaction, times

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)

    def transact_write_items(self, **kwargs: Any) -> Any:
        if self.times > 0:
            self.times -= 1
            self.before()
        return self.real.transact_write_items(**kwargs)


def test_a_bucket_race_is_retried_on_fresh_state_and_spends_each_token_once(stack):
    config = settings(rate_limit_per_minute=1, rate_burst=3)
    clock = FixedClock(T0)
    claim(stack.ddb, config, submitted(stack, "job-0", "acct#0", rate="tenant"), clock)
    rival = submitted(stack, "job-rival", "acct#rival", rate="tenant")
    racing = Interfering(stack.ddb, lambda: claim(stack.ddb, config, rival, clock))

    result = claim(racing, config, submitted(stack, "job-mine", "acct#mine", rate="tenant"), clock)

    assert result["outcome"] == "CLAIMED"
    assert stack.job("job-rival")["status"] == "RUNNING"
    assert tokens(stack, "tenant") == pytest.approx(0)


def test_losing_the_last_token_in_a_race_is_throttled(stack):
    config = settings(rate_limit_per_minute=1, rate_burst=1)
    clock = FixedClock(T0)
    rival = submitted(stack, "job-rival", "acct#rival", rate="tenant")
    racing = Interfering(stack.ddb, lambda: claim(stack.ddb, config, rival, clock))

    result = claim(racing, config, submitted(stack, "job-mine", "acct#mine", rate="tenant"), clock)

    assert result == {"outcome": "THROTTLED", "waitSeconds": 60}
    assert stack.lease(lock_key("acct#mine")) is None


def test_a_lock_taken_during_the_claim_is_locked_with_its_holder(stack):
    clock = FixedClock(T0)
    rival = submitted(stack, "job-rival", "acct#1", rate="rival-rate")
    racing = Interfering(stack.ddb, lambda: claim(stack.ddb, settings(), rival, clock))

    result = claim(racing, settings(), submitted(stack, "job-mine", "acct#1"), clock)

    assert result == {"outcome": "LOCKED", "holder": "job-rival"}
    assert tokens(stack, "acct#1") is None  # the cancelled transaction spent nothing


def test_endless_races_end_in_claim_contention(stack):
    config = settings(rate_limit_per_minute=1, rate_burst=100)
    clock = FixedClock(T0)
    rivals = iter(submitted(stack, f"job-rival-{n}", f"acct#rival-{n}", rate="tenant") for n in range(10))
    racing = Interfering(stack.ddb, lambda: claim(stack.ddb, config, next(rivals), clock), times=10)

    with pytest.raises(ClaimContention):
        claim(racing, config, submitted(stack, "job-mine", "acct#mine", rate="tenant"), clock)

    assert stack.job("job-mine")["status"] == "SUBMITTED"
    assert stack.lease(lock_key("acct#mine")) is None


@pytest.mark.parametrize("status", ["FAILED", "RUNNING", None])
def test_a_job_that_is_not_waiting_cannot_be_claimed_and_nothing_is_spent(stack, status):
    request = submitted(stack, "job-1", "acct#1")
    if status is None:
        stack.ddb.delete_item(TableName=stack.jobs_table, Key={"jobId": {"S": "job-1"}})
    else:
        stack.ddb.update_item(
            TableName=stack.jobs_table,
            Key={"jobId": {"S": "job-1"}},
            UpdateExpression="SET #s = :s",
            ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues={":s": {"S": status}},
        )

    with pytest.raises(JobNotClaimable, match=status or "missing"):
        claim(stack.ddb, settings(), request, FixedClock(T0))

    assert tokens(stack, "acct#1") is None
    assert stack.lease(lock_key("acct#1")) is None


def test_a_claim_carries_the_task_heartbeat_deadline_with_the_start_grace(stack):
    """HeartbeatSeconds counts from the task state's start, before Fargate has provisioned the task and
    pulled the image (30-60 s): the state machine's deadline is heartbeatSeconds + TASK_START_GRACE_SECONDS,
    below TimeoutSeconds (https://docs.aws.amazon.com/step-functions/latest/dg/state-task.html)."""
    config = settings(task_start_grace_seconds=90)
    request = dataclasses.replace(submitted(stack, "job-hb", "acct#1", timeout=900), heartbeat_seconds=60)

    result = claim(stack.ddb, config, request, FixedClock(T0))

    assert result["outcome"] == "CLAIMED" and result["taskHeartbeatSeconds"] == 150
    assert claim(stack.ddb, config, request, FixedClock(T0))["taskHeartbeatSeconds"] == 150  # a repeat too
    short = dataclasses.replace(submitted(stack, "job-short-hb", "acct#2", timeout=100), heartbeat_seconds=60)
    assert claim(stack.ddb, config, short, FixedClock(T0))["taskHeartbeatSeconds"] == 99


def test_the_claim_event_from_the_state_machine_carries_heartbeat_and_start_time():
    event = {
        "jobId": "j",
        "lockKey": "l",
        "timeoutSeconds": 60,
        "executionArn": "arn",
        "heartbeatSeconds": 5,
        "executionStartTime": "2025-01-15T09:30:00.123Z",
    }
    request = ClaimRequest.from_event(event)
    assert (request.heartbeat_seconds, request.execution_started_ms) == (5, T0 + 123)


def test_a_job_that_has_waited_long_waits_longer_between_claims(stack):
    """Each THROTTLED/AT_CAPACITY round adds history events; AWS fails an execution at 25,000, uncatchably
    (https://docs.aws.amazon.com/step-functions/latest/dg/service-quotas.html): the wait grows with the
    time since the execution started, up to MAX_CLAIM_WAIT_SECONDS."""
    config = settings(max_concurrent_tasks=1)
    clock = FixedClock(T0)
    claim(stack.ddb, config, submitted(stack, "job-1", "acct#1", timeout=86_400), clock)
    waiting = submitted(stack, "job-2", "acct#2")

    fresh = dataclasses.replace(waiting, execution_started_ms=T0)
    assert claim(stack.ddb, config, fresh, clock) == {"outcome": "AT_CAPACITY", "waitSeconds": 10}
    half_an_hour = dataclasses.replace(waiting, execution_started_ms=T0 - 1_800_000)
    assert claim(stack.ddb, config, half_an_hour, clock) == {"outcome": "AT_CAPACITY", "waitSeconds": 180}
    a_day = dataclasses.replace(waiting, execution_started_ms=T0 - 80_000_000)
    assert claim(stack.ddb, config, a_day, clock) == {"outcome": "AT_CAPACITY", "waitSeconds": 300}
