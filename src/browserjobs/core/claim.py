"""The rate-limited claim: token, lock, concurrency slot and job status in one DynamoDB transaction.

Never a claim without a token, never a token spent without a claim. Conflicts are told apart from
the transaction's CancellationReasons (one per item, in order): a lock taken meanwhile is LOCKED,
a bucket or slot changed meanwhile is a race that is retried on fresh reads.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from botocore.exceptions import ClientError

from browserjobs.core.clock import Clock, iso_ms, iso_seconds
from browserjobs.core.config import Settings
from browserjobs.core.ddb import attr, error_code, expression_values, from_item, to_item
from browserjobs.core.keys import breaker_key, bucket_key, lock_key, slot_key
from browserjobs.core.leases import Leases, is_expired, read_leases
from browserjobs.core.model import CLAIMABLE, Status, WaitReason
from browserjobs.core.ratelimit import (
    Bucket,
    BucketPolicy,
    decimal_to_units,
    full_bucket,
    take,
    tokens_to_decimal,
)
from browserjobs.core.records import set_waiting
from browserjobs.core.site_health import (
    BREAKER_OPEN,
    FULL_RATE_PERCENT,
    breaker_gate,
    effective_rate_per_minute,
    effective_rate_percent,
)

logger = logging.getLogger(__name__)

MAX_ATTEMPTS = 5
# A slot frees as soon as any running job ends, which the claim cannot foresee: look again soon.
CAPACITY_RECHECK_SECONDS = 10
# Keep released-lease items readable a while after their lease for operators; TTL removes them later.
LEASE_ITEM_TTL_PADDING_SECONDS = 86_400
BUCKET_TTL_PADDING_SECONDS = 3_600
# Every THROTTLED/AT_CAPACITY round adds events to the execution's history, which AWS caps at 25,000 (a
# hard, uncatchable failure). So a job that has waited long waits longer between claims: at least
# 1/PATIENCE_DIVISOR of the time since its execution started, never more than MAX_CLAIM_WAIT_SECONDS.
# In a day (the execution's TimeoutSeconds) that is a few hundred rounds at most
# (tests/statemachine/test_history_bound.py).
PATIENCE_DIVISOR = 10
MAX_CLAIM_WAIT_SECONDS = 300


class Outcome(StrEnum):
    CLAIMED = "CLAIMED"
    LOCKED = "LOCKED"
    THROTTLED = "THROTTLED"
    AT_CAPACITY = "AT_CAPACITY"
    BREAKER_OPEN = "BREAKER_OPEN"


class ClaimContention(Exception):
    """The bucket or the slots kept changing under this claim; the state machine retries with backoff."""


class SiteUnavailable(Exception):
    """The job's site kept its breaker open for the job's whole timeoutSeconds: the job fails instead of
    waiting longer (its execution's own timeout is a day)."""


class JobNotClaimable(Exception):
    """The job record is missing or no longer SUBMITTED/WAITING (ended, or claimed by another execution)."""


@dataclass(frozen=True)
class ClaimRequest:
    job_id: str
    lock_key: str
    rate_key: str
    timeout_seconds: int
    execution_arn: str
    heartbeat_seconds: int | None = None
    # $$.Execution.StartTime in epoch milliseconds: how long this job has been waiting already.
    execution_started_ms: int | None = None
    site_key: str = ""  # the site's circuit breaker ("": none)

    @classmethod
    def from_event(cls, event: dict[str, Any]) -> ClaimRequest:
        heartbeat = event.get("heartbeatSeconds")
        started = event.get("executionStartTime")
        return cls(
            job_id=str(event["jobId"]),
            lock_key=str(event["lockKey"]),
            rate_key=str(event.get("rateKey") or event["lockKey"]),
            timeout_seconds=int(event["timeoutSeconds"]),
            execution_arn=str(event["executionArn"]),
            heartbeat_seconds=None if heartbeat is None else int(heartbeat),
            execution_started_ms=None if started is None else _epoch_ms(str(started)),
            # The execution's input (intake's execution_input) names the site; older inputs do not.
            site_key=str((event.get("executionInput") or {}).get("siteKey") or ""),
        )


def _epoch_ms(timestamp: str) -> int:
    """An ISO 8601 timestamp as Step Functions writes it (`2025-01-15T09:30:00.123Z`) in epoch ms."""
    moment = datetime.fromisoformat(timestamp.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        raise ValueError(f"timestamp without a time zone: {timestamp!r}")
    return round(moment.timestamp() * 1000)


def patience_seconds(waited_seconds: float) -> int:
    """The shortest wait before the next claim of a job that has waited this long (history bound)."""
    return int(min(MAX_CLAIM_WAIT_SECONDS, max(0.0, waited_seconds) // PATIENCE_DIVISOR))


def task_heartbeat_seconds(request: ClaimRequest, settings: Settings) -> int | None:
    """The browser task's HeartbeatSeconds: the job's interval plus the task's start (provisioning, image
    pull), kept below the task's TimeoutSeconds, which Step Functions requires to be the larger."""
    if request.heartbeat_seconds is None:
        return None
    deadline = request.heartbeat_seconds + settings.task_start_grace_seconds
    return max(1, min(deadline, request.timeout_seconds - 1))


@dataclass(frozen=True)
class Plan:
    """The writes of a claim that passed every check on the state it read."""

    slot: int
    bucket: Bucket
    previous_bucket: dict[str, Any] | None
    claimed_at_ms: int
    lease_expires_epoch: int
    probe: dict[str, Any] | None = None  # the open breaker whose probe this claim takes


def policy_of(settings: Settings, bucket: dict[str, Any] | None = None) -> BucketPolicy:
    """The rate key's policy: the configured rate, lowered while its site answers 429 (site_health)."""
    rate = effective_rate_per_minute(settings.rate_limit_per_minute, bucket)
    return BucketPolicy(rate_per_minute=rate, burst=settings.rate_burst)


def decide(request: ClaimRequest, leases: Leases, settings: Settings, now_ms: int) -> Plan | dict[str, Any]:
    """The claim to attempt, or the outcome that needs no write at all. Pure: no I/O."""
    now_s = now_ms // 1000
    lock = leases.lock
    if lock is not None and lock["jobId"] != request.job_id and not is_expired(lock, now_s):
        return {"outcome": Outcome.LOCKED, "holder": lock["jobId"]}
    if (
        lock is not None
        and lock["jobId"] == request.job_id
        and lock.get("executionArn") == request.execution_arn
        and not is_expired(lock, now_s)
    ):
        # The claim already committed (a retried invocation): report it again, spend nothing.
        return {"outcome": Outcome.CLAIMED, "slot": lock["slot"], "leaseExpiresAt": lock["leaseExpiresAt"]}

    started_ms = request.execution_started_ms
    patience = 0 if started_ms is None else patience_seconds((now_ms - started_ms) / 1000)
    gate, breaker_wait_ms = breaker_gate(leases.breaker, request.job_id, now_ms)
    if gate == "wait":
        if started_ms is not None and now_ms - started_ms >= request.timeout_seconds * 1000:
            raise SiteUnavailable(
                f"the circuit breaker of {request.site_key} stayed open for the job's whole timeoutSeconds "
                f"({request.timeout_seconds} s)"
            )
        wait = max(-(-breaker_wait_ms // 1000), patience)
        return {"outcome": Outcome.BREAKER_OPEN, "waitSeconds": wait, "siteKey": request.site_key}

    stored = leases.bucket
    policy = policy_of(settings, stored)
    current = (
        Bucket(units=decimal_to_units(stored["tokens"]), refilled_at_ms=int(stored["refilledAtMs"]))
        if stored is not None
        else full_bucket(policy, now_ms)
    )
    result = take(current, policy, now_ms)
    if not result.taken:
        return {"outcome": Outcome.THROTTLED, "waitSeconds": max(result.wait_seconds, patience)}

    slot = free_slot(request.job_id, leases.slots, settings.max_concurrent_tasks, now_s)
    if slot is None:
        soonest = min(int(s["leaseExpiresAtEpoch"]) for s in leases.slots.values()) - now_s
        recheck = max(1, min(CAPACITY_RECHECK_SECONDS, soonest))
        return {"outcome": Outcome.AT_CAPACITY, "waitSeconds": max(recheck, patience)}

    return Plan(
        slot=slot,
        bucket=result.bucket,
        previous_bucket=stored,
        claimed_at_ms=now_ms,
        lease_expires_epoch=-(-now_ms // 1000) + request.timeout_seconds + settings.lease_grace_seconds,
        probe=leases.breaker if gate == "probe" else None,
    )


def free_slot(job_id: str, slots: dict[int, dict[str, Any]], max_slots: int, now_s: int) -> int | None:
    """A slot that is absent, expired or already this job's; claimers start at different slots
    (by jobId) so that concurrent claims rarely race for the same one."""
    start = int(hashlib.sha256(job_id.encode()).hexdigest(), 16) % max_slots
    for offset in range(max_slots):
        n = (start + offset) % max_slots
        item = slots.get(n)
        if item is None or item["jobId"] == job_id or is_expired(item, now_s):
            return n
    return None


def transact_items(request: ClaimRequest, plan: Plan, settings: Settings) -> list[dict[str, Any]]:
    """[bucket, lock, slot, job, (breaker probe)]: the order CancellationReasons are read in."""
    table = settings.locks_table
    lease_ttl = plan.lease_expires_epoch + LEASE_ITEM_TTL_PADDING_SECONDS
    lease_values = expression_values(now=plan.claimed_at_ms // 1000, jobId=request.job_id)
    lock = {
        "pk": lock_key(request.lock_key),
        "jobId": request.job_id,
        "executionArn": request.execution_arn,
        "slot": slot_key(plan.slot),
        "claimedAt": iso_ms(plan.claimed_at_ms),
        "leaseExpiresAt": iso_seconds(plan.lease_expires_epoch),
        "leaseExpiresAtEpoch": plan.lease_expires_epoch,
        "expiresAt": lease_ttl,
    }
    slot = {
        "pk": slot_key(plan.slot),
        "jobId": request.job_id,
        "lockKey": request.lock_key,
        "leaseExpiresAtEpoch": plan.lease_expires_epoch,
        "expiresAt": lease_ttl,
    }
    items = [
        _bucket_put(request, plan, settings),
        _lease_put(table, lock, lease_values),
        _lease_put(table, slot, lease_values),
        _job_update(request, plan, settings),
    ]
    if plan.probe is not None:
        items.append(_probe_update(table, request, plan))
    return items


def _probe_update(table: str, request: ClaimRequest, plan: Plan) -> dict[str, Any]:
    """This job becomes the open breaker's probe, until its lease ends, if no other job is probing."""
    assert plan.probe is not None
    return {
        "Update": {
            "TableName": table,
            "Key": {"pk": attr(breaker_key(request.site_key))},
            "UpdateExpression": "SET probeJobId = :jobId, probeUntilMs = :probeUntil",
            "ConditionExpression": "#state = :open AND openUntilMs = :seenOpenUntil AND "
            "(attribute_not_exists(probeJobId) OR probeJobId = :jobId OR probeUntilMs <= :now)",
            "ExpressionAttributeNames": {"#state": "state"},
            "ExpressionAttributeValues": expression_values(
                jobId=request.job_id,
                probeUntil=plan.lease_expires_epoch * 1000,
                open=BREAKER_OPEN,
                seenOpenUntil=plan.probe["openUntilMs"],
                now=plan.claimed_at_ms,
            ),
        }
    }


def _bucket_put(request: ClaimRequest, plan: Plan, settings: Settings) -> dict[str, Any]:
    """The bucket after the take, written only if nobody took from it since it was read."""
    previous = plan.previous_bucket
    policy = policy_of(settings, previous)
    seconds_to_full = policy.burst * 60 // policy.rate_per_minute + 1
    refill_s = max(plan.claimed_at_ms, plan.bucket.refilled_at_ms) // 1000
    if previous is None:
        condition: dict[str, Any] = {"ConditionExpression": "attribute_not_exists(pk)"}
    else:
        # (refilledAtMs, tokens) is the bucket's version: within one millisecond tokens only fall,
        # so the pair never repeats and a concurrent take always fails this condition.
        condition = {
            "ConditionExpression": "refilledAtMs = :refilledAtMs AND tokens = :tokens",
            "ExpressionAttributeValues": expression_values(
                refilledAtMs=previous["refilledAtMs"], tokens=previous["tokens"]
            ),
        }
    return {
        "Put": {
            "TableName": settings.locks_table,
            "Item": to_item(
                {
                    "pk": bucket_key(request.rate_key),
                    "tokens": tokens_to_decimal(plan.bucket.units),
                    "refilledAtMs": plan.bucket.refilled_at_ms,
                    "expiresAt": refill_s + seconds_to_full + BUCKET_TTL_PADDING_SECONDS,
                    **_slowed_down(previous),
                }
            ),
            **condition,
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
        }
    }


def _slowed_down(bucket: dict[str, Any] | None) -> dict[str, Any]:
    """A lowered rate is kept until its successes have raised it back to the configured one."""
    if effective_rate_percent(bucket) >= FULL_RATE_PERCENT or bucket is None:
        return {}
    return {"ratePercent": bucket["ratePercent"], "successes": bucket.get("successes", 0)}


_FREE_OR_MINE = "attribute_not_exists(pk) OR leaseExpiresAtEpoch <= :now OR jobId = :jobId"


def _lease_put(table: str, item: dict[str, Any], lease_values: dict[str, Any]) -> dict[str, Any]:
    """A lock or slot item, written only if it is absent, expired or already this job's."""
    return {
        "Put": {
            "TableName": table,
            "Item": to_item(item),
            "ConditionExpression": _FREE_OR_MINE,
            "ExpressionAttributeValues": lease_values,
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
        }
    }


def _job_update(request: ClaimRequest, plan: Plan, settings: Settings) -> dict[str, Any]:
    """The job RUNNING, if it is still claimable."""
    claimed_at = iso_ms(plan.claimed_at_ms)
    claimable = {f"c_{s}": str(s) for s in CLAIMABLE}
    return {
        "Update": {
            "TableName": settings.jobs_table,
            "Key": {"jobId": attr(request.job_id)},
            "UpdateExpression": "SET #status = :running, claimedAt = :claimedAt, updatedAt = :claimedAt, "
            "executionArn = :executionArn REMOVE waitReason",
            "ConditionExpression": "#status IN (" + ", ".join(f":{k}" for k in claimable) + ")",
            "ExpressionAttributeNames": {"#status": "status"},
            "ExpressionAttributeValues": expression_values(
                running=str(Status.RUNNING),
                claimedAt=claimed_at,
                executionArn=request.execution_arn,
                **claimable,
            ),
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
        }
    }


def claim(ddb: Any, settings: Settings, request: ClaimRequest, clock: Clock) -> dict[str, Any]:
    """Run the claim, retrying races on fresh reads; THROTTLED/AT_CAPACITY/LOCKED mark the job WAITING."""
    for attempt in range(1, MAX_ATTEMPTS + 1):
        now_ms = clock.now_ms()
        leases = read_leases(
            ddb,
            settings.locks_table,
            settings.max_concurrent_tasks,
            request.lock_key,
            request.rate_key,
            request.site_key,
        )
        decision = decide(request, leases, settings, now_ms)
        if isinstance(decision, Plan):
            committed = _commit(ddb, settings, request, decision)
            if committed is None:
                logger.info("claim race on attempt %d for %s; reading again", attempt, request.job_id)
                continue
            decision = committed
        outcome = Outcome(decision["outcome"])
        if outcome is not Outcome.CLAIMED:
            set_waiting(ddb, settings.jobs_table, request.job_id, WaitReason(outcome), now_ms)
        elif (heartbeat := task_heartbeat_seconds(request, settings)) is not None:
            decision = {**decision, "taskHeartbeatSeconds": heartbeat}
        return {**decision, "outcome": str(outcome)}
    raise ClaimContention(f"claim for {request.job_id} lost {MAX_ATTEMPTS} races in a row")


def _commit(ddb: Any, settings: Settings, request: ClaimRequest, plan: Plan) -> dict[str, Any] | None:
    """The outcome of the transaction, or None for a race worth retrying."""
    try:
        ddb.transact_write_items(TransactItems=transact_items(request, plan, settings))
    except ClientError as exc:
        if error_code(exc) != "TransactionCanceledException":
            raise
        return _cancelled(exc, request)
    return {
        "outcome": Outcome.CLAIMED,
        "slot": slot_key(plan.slot),
        "leaseExpiresAt": iso_seconds(plan.lease_expires_epoch),
    }


def _cancelled(exc: ClientError, request: ClaimRequest) -> dict[str, Any] | None:
    reasons = exc.response.get("CancellationReasons") or []
    if len(reasons) not in (4, 5):
        raise exc
    bucket_reason, lock_reason, slot_reason, job_reason = (r.get("Code", "None") for r in reasons[:4])
    probe_reason = reasons[4].get("Code", "None") if len(reasons) == 5 else "None"
    if job_reason == "ConditionalCheckFailed":
        job = from_item(reasons[3].get("Item")) or {}
        raise JobNotClaimable(
            f"job {request.job_id} is {job.get('status', 'missing')}, not one of {sorted(CLAIMABLE)}"
        ) from exc
    if lock_reason == "ConditionalCheckFailed":
        holder = (from_item(reasons[1].get("Item")) or {}).get("jobId", "")
        return {"outcome": Outcome.LOCKED, "holder": holder}
    retryable = {"ConditionalCheckFailed", "TransactionConflict"}
    # A probe taken by another job meanwhile is a race too: the next read says BREAKER_OPEN.
    codes = {bucket_reason, lock_reason, slot_reason, job_reason, probe_reason} - {"None"}
    if codes <= retryable:
        return None
    raise exc
