"""Properties of the claim under concurrency: jobs racing from threads against moto's DynamoDB, on
random lockKeys and rateKeys, with a clock the test moves.

Whatever the interleaving: never two live holders of one lock, never more claims in any window than
the bucket allows (burst + rate x elapsed), never more running than MAX_CONCURRENT_TASKS, never a token
spent without a claim (the stored bucket is exactly a full bucket minus the claims, refilled), and a
THROTTLED wait is exactly what the bucket needs (claiming after it succeeds, one second earlier not).

Each AWS request is atomic, as in AWS (tests/unit/atomic_requests.py says why moto needs the help);
the races between the claim's read and its transaction are left to happen.
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
import math
import sys
import threading
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from browserjobs.core.claim import ClaimContention, ClaimRequest, claim
from browserjobs.core.clock import iso_ms, parse_iso
from browserjobs.core.config import Settings
from browserjobs.core.keys import bucket_key, lock_key, slot_key
from browserjobs.core.leases import release_if_owned
from browserjobs.core.model import Status
from browserjobs.core.records import set_terminal
from tests.clocks import FixedClock
from tests.unit.atomic_requests import atomic_requests

pytestmark = pytest.mark.unit

T0 = 1_736_933_400_000  # 2025-01-15T09:30:00Z
# Each example makes its own keys on the test's tables (slot items are deleted after it): the
# function-scoped stack is shared on purpose. Example counts bound the time (about 25 s here);
# moto's speed depends on the machine's load, so no per-example deadline.
PROPERTY_SETTINGS = settings(
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


# --- an independent token bucket, in exact fractions ------------------------------------------------


class ReferenceBucket:
    """Full at its first take, refilled at rate_per_minute up to burst: tokens as exact fractions."""

    def __init__(self, rate_per_minute: int, burst: int) -> None:
        self.per_ms = Fraction(rate_per_minute, 60_000)
        self.burst = burst
        self.tokens = Fraction(burst)
        self.at_ms: int | None = None

    def refill(self, now_ms: int) -> None:
        if self.at_ms is not None and now_ms > self.at_ms:
            self.tokens = min(Fraction(self.burst), self.tokens + (now_ms - self.at_ms) * self.per_ms)
        self.at_ms = now_ms if self.at_ms is None else max(self.at_ms, now_ms)

    def take(self, now_ms: int) -> None:
        self.refill(now_ms)
        assert self.tokens >= 1, f"a claim at {now_ms} without a token ({self.tokens})"
        self.tokens -= 1

    def wait_seconds(self, now_ms: int) -> int:
        self.refill(now_ms)
        return max(1, math.ceil((1 - self.tokens) / self.per_ms / 1000))


# --- the scenario -----------------------------------------------------------------------------------


@dataclass
class Hold:
    """One CLAIMED outcome: the job holds lock and slot from start until its lease ends or it finishes."""

    job: str
    lock: str
    rate: str
    slot: str
    start_ms: int
    end_ms: int

    def live_at(self, now_ms: int) -> bool:
        return self.start_ms <= now_ms < self.end_ms


@dataclass
class Ledger:
    holds: dict[str, Hold] = field(default_factory=dict)  # by job
    outcomes: list[tuple[int, str, dict[str, Any]]] = field(default_factory=list)  # (time, job, result)
    finished: set[str] = field(default_factory=set)
    contention: int = 0  # claims that raised ClaimContention (lost five races in a row)
    races: int = 0  # claim attempts retried after a lost race

    def live(self, now_ms: int) -> list[Hold]:
        return [hold for hold in self.holds.values() if hold.live_at(now_ms)]


STATS: Counter[str] = Counter()  # outcomes over every example, reported in docs/RELIABILITY.md

policies = st.fixed_dictionaries(
    {
        "rate_limit_per_minute": st.integers(1, 30),
        "rate_burst": st.integers(1, 4),
        "max_concurrent_tasks": st.integers(1, 4),
        "lease_grace_seconds": st.integers(0, 5),
    }
)
# (lockKey index, rateKey index, timeoutSeconds): few keys, so jobs share locks and buckets.
job_specs = st.lists(
    st.tuples(st.integers(0, 5), st.integers(0, 1), st.integers(10, 40)), min_size=2, max_size=8
)
# (milliseconds the clock moves before the round, jobs that finish before it): time always moves, so
# a job that finishes did so after everything it saw.
rounds = st.lists(
    st.tuples(st.integers(1, 45_000), st.sets(st.integers(0, 7), max_size=3)), min_size=1, max_size=5
)


def make_jobs(stack, specs: list[tuple[int, int, int]]) -> list[ClaimRequest]:
    """SUBMITTED jobs (lockKey index, rateKey index, timeoutSeconds) on keys no other example uses."""
    prefix = uuid.uuid4().hex[:8]
    jobs = []
    for n, (lock, rate, timeout) in enumerate(specs):
        job_id = f"{prefix}-job-{n}"
        request = ClaimRequest(
            job_id=job_id,
            lock_key=f"{prefix}#lock-{lock}",
            rate_key=f"{prefix}#rate-{rate}",
            timeout_seconds=timeout,
            execution_arn=f"arn:aws:states:us-east-1:123456789012:execution:jobs:{job_id}",
        )
        stack.put_job(
            {
                "jobId": job_id,
                "lockKey": request.lock_key,
                "rateKey": request.rate_key,
                "status": "SUBMITTED",
                "timeoutSeconds": timeout,
                "createdAt": iso_ms(T0),
                "updatedAt": iso_ms(T0),
            }
        )
        jobs.append(request)
    return jobs


def finish(stack, config: Settings, ledger: Ledger, job_id: str, now_ms: int) -> None:
    """The job ends: it releases what it still holds (as the workflow's cleanup does)."""
    hold = ledger.holds[job_id]
    release_if_owned(stack.ddb, config.locks_table, lock_key(hold.lock), hold.job)
    release_if_owned(stack.ddb, config.locks_table, hold.slot, hold.job)
    set_terminal(stack.ddb, config.jobs_table, hold.job, Status.SUCCEEDED, now_ms)
    hold.end_ms = min(hold.end_ms, now_ms)
    ledger.finished.add(hold.job)


def claim_together(
    stack, config: Settings, clock: FixedClock, jobs: list[ClaimRequest]
) -> list[dict[str, Any] | None]:
    start_together = threading.Barrier(len(jobs))

    def one(job: ClaimRequest) -> dict[str, Any] | None:
        start_together.wait()
        try:
            return claim(stack.ddb, config, job, clock)
        except ClaimContention:
            return None

    with ThreadPoolExecutor(len(jobs)) as pool:
        return list(pool.map(one, jobs))


class RaceCounter(logging.Handler):
    """Counts the claim's retries after a lost race: proof that the threads did race."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.races = 0

    def emit(self, record: logging.LogRecord) -> None:
        self.races += str(record.msg).startswith("claim race")


@contextmanager
def switching_threads_often() -> Iterator[None]:
    """The interpreter hands the GIL to another thread as often as it can: the claims' requests
    interleave in many more orders than the default 5 ms switch interval allows."""
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        yield
    finally:
        sys.setswitchinterval(interval)


@contextmanager
def counting_races() -> Iterator[RaceCounter]:
    counter, claim_logger = RaceCounter(), logging.getLogger("browserjobs.core.claim")
    level = claim_logger.level
    claim_logger.setLevel(logging.INFO)
    claim_logger.addHandler(counter)
    try:
        yield counter
    finally:
        claim_logger.removeHandler(counter)
        claim_logger.setLevel(level)


def run_scenario(
    stack, config: Settings, jobs: list[ClaimRequest], schedule: list[tuple[int, set[int]]]
) -> Ledger:
    ledger, clock = Ledger(), FixedClock(T0)
    with atomic_requests(), switching_threads_often(), counting_races() as counter:
        for gap_ms, finishing in schedule:
            clock.advance(gap_ms / 1000)
            now = clock.now_ms()
            for job_id in sorted(jobs[n].job_id for n in finishing if n < len(jobs)):
                if job_id in ledger.holds and job_id not in ledger.finished:
                    finish(stack, config, ledger, job_id, now)
            waiting = [job for job in jobs if job.job_id not in ledger.holds]
            if not waiting:
                continue
            for job, result in zip(waiting, claim_together(stack, config, clock, waiting), strict=True):
                if result is None:
                    ledger.contention += 1
                    continue
                ledger.outcomes.append((now, job.job_id, result))
                if result["outcome"] == "CLAIMED":
                    lease_end = int(parse_iso(result["leaseExpiresAt"]).timestamp() * 1000)
                    ledger.holds[job.job_id] = Hold(
                        job.job_id, job.lock_key, job.rate_key, result["slot"], now, lease_end
                    )
    ledger.races = counter.races
    return ledger


def check(stack, config: Settings, jobs: list[ClaimRequest], ledger: Ledger, end_ms: int) -> None:
    requests = {job.job_id: job for job in jobs}
    holds = sorted(ledger.holds.values(), key=lambda h: h.start_ms)

    # One live holder per lock: the holds of a lock follow each other.
    for lock in {h.lock for h in holds}:
        of_lock = [h for h in holds if h.lock == lock]
        for earlier, later in itertools.pairwise(of_lock):
            assert later.start_ms >= earlier.end_ms, f"{later.job} took {lock} while {earlier.job} held it"

    # Never more running than MAX_CONCURRENT_TASKS, and never two in one slot.
    for hold in holds:
        live = ledger.live(hold.start_ms)
        assert len(live) <= config.max_concurrent_tasks
        assert len({h.slot for h in live}) == len(live), f"two live jobs in one slot: {live}"

    for rate in {r.rate_key for r in requests.values()}:
        taken = sorted(h.start_ms for h in holds if h.rate == rate)
        # Never more claims in a window than burst + rate x elapsed.
        for i, first in enumerate(taken):
            for j in range(i, len(taken)):
                allowed = config.rate_burst + Fraction(
                    config.rate_limit_per_minute * (taken[j] - first), 60_000
                )
                assert j - i + 1 <= allowed, f"{j - i + 1} claims on {rate} within {taken[j] - first} ms"
        # Tokens and claims conserve: the stored bucket is a full bucket minus exactly these claims.
        stored = stack.lease(bucket_key(rate))
        if not taken:
            assert stored is None, "a token was spent without a claim"
            continue
        reference = ReferenceBucket(config.rate_limit_per_minute, config.rate_burst)
        for at in taken:
            reference.take(at)
        assert stored["refilledAtMs"] == taken[-1]
        assert abs(Fraction(Decimal(str(stored["tokens"]))) - reference.tokens) < Fraction(1, 10**11)

    for at, job_id, result in ledger.outcomes:
        request = requests[job_id]
        STATS[result["outcome"]] += 1
        if result["outcome"] == "THROTTLED":
            # Exactly what the bucket needed at that moment: after every claim up to then.
            reference = ReferenceBucket(config.rate_limit_per_minute, config.rate_burst)
            for hold in holds:
                if hold.rate == request.rate_key and hold.start_ms <= at:
                    reference.take(hold.start_ms)
            assert result["waitSeconds"] == reference.wait_seconds(at)
        elif result["outcome"] == "LOCKED":
            live_holders = {h.job for h in ledger.live(at) if h.lock == request.lock_key}
            assert result["holder"] in live_holders
        elif result["outcome"] == "AT_CAPACITY":
            assert len(ledger.live(at)) == config.max_concurrent_tasks, "AT_CAPACITY with a free slot"
            assert 1 <= result["waitSeconds"] <= 10

    # What DynamoDB holds agrees: each lock names its live holder, each job its status.
    for lock in {r.lock_key for r in requests.values()}:
        item = stack.lease(lock_key(lock))
        live_item = item is not None and item["leaseExpiresAtEpoch"] * 1000 > end_ms
        holders = [h.job for h in ledger.live(end_ms) if h.lock == lock]
        assert ([item["jobId"]] if live_item else []) == holders
    for job_id in requests:
        expected = (
            {"SUCCEEDED"} if job_id in ledger.finished else {"RUNNING"} if job_id in ledger.holds else None
        )
        assert stack.job(job_id)["status"] in (expected or {"SUBMITTED", "WAITING"})


@settings(PROPERTY_SETTINGS, max_examples=50)
@given(policy=policies, specs=job_specs, schedule=rounds)
def test_concurrent_claims_keep_every_promise(stack, policy, specs, schedule):
    config = dataclasses.replace(Settings.from_env(), **policy)
    jobs = make_jobs(stack, specs)
    try:
        ledger = run_scenario(stack, config, jobs, schedule)
        STATS["examples"] += 1
        STATS["claims"] += len(ledger.outcomes)
        STATS["ClaimContention"] += ledger.contention
        STATS["races retried"] += ledger.races
        check(stack, config, jobs, ledger, T0 + sum(gap for gap, _ in schedule))
    finally:
        for n in range(config.max_concurrent_tasks):
            stack.ddb.delete_item(TableName=stack.locks_table, Key={"pk": {"S": slot_key(n)}})


@settings(PROPERTY_SETTINGS, max_examples=25)
@given(
    policy=st.fixed_dictionaries(
        {"rate_limit_per_minute": st.integers(1, 60), "rate_burst": st.integers(1, 4)}
    ),
    gaps=st.lists(st.integers(0, 20_000), max_size=5),
)
def test_a_throttled_claim_succeeds_after_its_wait_and_not_a_second_earlier(stack, policy, gaps):
    config = dataclasses.replace(Settings.from_env(), max_concurrent_tasks=12, **policy)
    # Every job on its own lock, all on one bucket; at most 5 + burst + 1 claims: slots never run out.
    jobs = iter(make_jobs(stack, [(n, 0, 60) for n in range(len(gaps) + policy["rate_burst"] + 1)]))
    clock = FixedClock(T0)
    try:
        for gap in gaps:  # some history: claims spread over time, some throttled
            clock.advance(gap / 1000)
            claim(stack.ddb, config, next(jobs), clock)
        for job in jobs:  # then claims at one instant until one is throttled (nothing refills meanwhile)
            result = claim(stack.ddb, config, job, clock)
            if result["outcome"] == "THROTTLED":
                break
        assert result["outcome"] == "THROTTLED"
        STATS["throttled waits checked"] += 1

        clock.advance(result["waitSeconds"] - 1)
        assert claim(stack.ddb, config, job, clock) == {"outcome": "THROTTLED", "waitSeconds": 1}
        clock.advance(1)
        assert claim(stack.ddb, config, job, clock)["outcome"] == "CLAIMED"
    finally:
        for n in range(config.max_concurrent_tasks):
            stack.ddb.delete_item(TableName=stack.locks_table, Key={"pk": {"S": slot_key(n)}})


@pytest.fixture(scope="module", autouse=True)
def _report_what_the_examples_exercised(request: pytest.FixtureRequest) -> Any:
    """The figures docs/RELIABILITY.md quotes: examples run and the claim outcomes they produced."""
    yield
    if STATS:
        with request.config.pluginmanager.getplugin("capturemanager").global_and_fixture_disabled():
            print("\nclaim properties: " + ", ".join(f"{k} {v}" for k, v in sorted(STATS.items())))
