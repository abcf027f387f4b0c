"""The chaos run's checks catch what they are meant to: double claims, rate and capacity violations,
lost and duplicated jobs (on records made up here; the chaos run feeds them the real stores)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from .audit import (
    Interval,
    Stores,
    audit,
    capacity_violations,
    hold_intervals,
    overlaps,
    rate_violations,
)
from .plan import Delivery, PlannedJob, Role, make_plan, role_counts

pytestmark = pytest.mark.unit

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def at(seconds: float) -> str:
    moment = T0 + timedelta(seconds=seconds)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def record(job_id: str, claimed: float | None, ended: float, **fields: Any) -> dict[str, Any]:
    values = {"jobId": job_id, "lockKey": "k", "status": "SUCCEEDED", "endedAt": at(ended), **fields}
    if claimed is not None:
        values["claimedAt"] = at(claimed)
    return values


def test_back_to_back_claims_on_one_lock_are_not_an_overlap() -> None:
    records = {"a": record("a", 0, 5), "b": record("b", 5, 9)}
    assert overlaps(hold_intervals(records, {})) == []


def test_a_claim_inside_another_is_a_double_claim() -> None:
    records = {"a": record("a", 0, 30), "b": record("b", 2, 4), "c": record("c", 10, 12)}
    found = overlaps(hold_intervals(records, {}))
    assert len(found) == 2 and all("while a held it" in line for line in found)


def test_claims_on_different_locks_may_overlap() -> None:
    records = {"a": record("a", 0, 30), "b": record("b", 1, 4, lockKey="other")}
    assert overlaps(hold_intervals(records, {})) == []


def test_an_unended_claim_holds_the_lock_for_ever() -> None:
    records = {"a": {**record("a", 0, 0, status="RUNNING"), "endedAt": None}, "b": record("b", 100, 101)}
    assert overlaps(hold_intervals(records, {}))


def test_the_rate_check_allows_the_burst_then_the_rate() -> None:
    # burst 2, 20 a minute: a token every 3 s
    records = {f"j{i}": record(f"j{i}", t, t + 1, rateKey="r") for i, t in enumerate([0, 0, 3, 6, 9])}
    assert rate_violations(records, burst=2, per_minute=20) == []


def test_one_claim_too_early_is_a_rate_violation() -> None:
    records = {f"j{i}": record(f"j{i}", t, t + 1, rateKey="r") for i, t in enumerate([0, 0, 2.999])}
    found = rate_violations(records, burst=2, per_minute=20)
    assert found == ["r: 3 claims in 2.999s (at most 3.00)"]


def test_the_rate_key_defaults_to_the_lock_key() -> None:
    records = {f"j{i}": record(f"j{i}", 0, 1, lockKey=f"k{i % 2}") for i in range(4)}
    assert rate_violations(records, burst=2, per_minute=20) == []
    records["j4"] = record("j4", 0, 1, lockKey="k0")
    assert rate_violations(records, burst=2, per_minute=20)


def test_more_claims_at_once_than_slots_is_a_capacity_violation() -> None:
    records = {f"j{i}": record(f"j{i}", i, 10, lockKey=f"k{i}") for i in range(3)}
    assert capacity_violations(hold_intervals(records, {}), max_tasks=3) == []
    records["j3"] = record("j3", 5, 6, lockKey="k3")
    assert capacity_violations(hold_intervals(records, {}), max_tasks=3) == [
        f"4 jobs held slots at {T0 + timedelta(seconds=5):%H:%M:%S.%f} (j3 claimed): ['j0', 'j1', 'j2', 'j3']"
    ]


def test_a_slot_freed_and_taken_at_the_same_moment_is_not_a_violation() -> None:
    records = {"a": record("a", 0, 5, lockKey="x"), "b": record("b", 5, 9, lockKey="y")}
    assert capacity_violations(hold_intervals(records, {}), max_tasks=1) == []


def claimed_at(seconds: float) -> list[dict[str, Any]]:
    """An execution history whose Claim task answered CLAIMED at T0 + seconds."""
    answer = {"Payload": {"outcome": "CLAIMED", "slot": "slot#0"}}
    details = {"resourceType": "lambda", "output": json.dumps(answer)}
    return [{"timestamp": T0 + timedelta(seconds=seconds), "taskSucceededEventDetails": details}]


def test_a_hold_starts_when_the_claim_was_granted_not_when_it_read_the_table() -> None:
    # b read the table at 4 s, while a still held the lock, and its transaction went through after a
    # released it at 5 s: the Claim task reported CLAIMED at 6 s.
    records = {"a": record("a", 0, 5), "b": record("b", 4, 9)}
    assert overlaps(hold_intervals(records, {"a": claimed_at(0.1), "b": claimed_at(6)})) == []
    assert overlaps(hold_intervals(records, {"a": claimed_at(0.1), "b": claimed_at(4.5)}))


def test_intervals_sort_by_start_whatever_the_input_order() -> None:
    late, early = (
        Interval("late", T0 + timedelta(seconds=10), T0 + timedelta(seconds=20)),
        Interval("early", T0, T0 + timedelta(seconds=15)),
    )
    assert overlaps({"k": [late, early]}) != []


def _stores(records: dict[str, dict[str, Any]], **overrides: Any) -> Stores:
    values: dict[str, Any] = {
        "records": records,
        "dead_letters": [],
        "intake_dead_letters": 0,
        "executions": [{"name": job_id} for job_id in records if records[job_id]["status"] != "REJECTED"],
        "histories": {},
        "tasks": [],
        "lease_items": [],
        "processes": [],
    }
    return Stores(**{**values, **overrides})


def _task(job_id: str) -> dict[str, Any]:
    env = [{"name": "JOB_ID", "value": job_id}]
    return {
        "taskArn": f"task-{job_id}",
        "lastStatus": "STOPPED",
        "overrides": {"containerOverrides": [{"environment": env}]},
    }


def test_a_job_without_a_terminal_record_is_lost() -> None:
    plan = [
        PlannedJob(Role.PLAIN, {}, Delivery.QUEUE, "a", lock_key="k"),
        PlannedJob(Role.PLAIN, {}, Delivery.QUEUE, "b"),
    ]
    stores = _stores({"a": record("a", 0, 1, status="RUNNING")}, tasks=[_task("a")])
    found = audit(plan, stores)
    assert found.lost == ["a (plain): RUNNING", "b (plain): no record"]


def test_a_failed_job_must_be_in_the_dlq_exactly_once() -> None:
    plan = [PlannedJob(Role.CRASH, {}, Delivery.QUEUE, "a", lock_key="k")]
    failed = record("a", 0, 1, status="FAILED", error={"Error": "Worker.Crashed", "Cause": "{}"})
    letter = {"jobId": "a", "status": "FAILED", "error": {"Error": "Worker.Crashed"}}
    assert audit(plan, _stores({"a": failed}, tasks=[_task("a")])).lost == [
        "a (SIGKILL (crash hook)): FAILED but not in the DLQ"
    ]
    twice = audit(plan, _stores({"a": failed}, tasks=[_task("a")], dead_letters=[letter, letter]))
    assert twice.duplicated == ["a (SIGKILL (crash hook)): 2 DLQ messages"]
    once = audit(plan, _stores({"a": failed}, tasks=[_task("a")], dead_letters=[letter]))
    assert once.problems() == {}


def test_a_duplicate_delivery_that_ran_twice_is_caught() -> None:
    plan = [PlannedJob(Role.DUPLICATE_MESSAGE, {}, Delivery.REDELIVERED, "a", lock_key="k")]
    stores = _stores({"a": record("a", 0, 1)}, tasks=[_task("a"), _task("a")])
    assert audit(plan, stores).duplicated == ["a (duplicate message): 2 tasks, expected {1}"]


def test_records_and_leases_nobody_submitted_are_reported() -> None:
    plan = [PlannedJob(Role.PLAIN, {}, Delivery.QUEUE, "a", lock_key="k")]
    stores = _stores(
        {"a": record("a", 0, 1), "stray": record("stray", None, 1, status="REJECTED")},
        tasks=[_task("a")],
        lease_items=[{"pk": "lock#k", "jobId": "a"}],
    )
    found = audit(plan, stores)
    assert found.strays == ["record stray"]
    assert found.leaked_leases == ["lock#k held by a"]


def test_an_outcome_outside_the_role_s_expectations_is_unexpected() -> None:
    plan = [PlannedJob(Role.SPOT_ONCE, {}, Delivery.QUEUE, "a", lock_key="k")]
    crashed = record("a", 0, 1, status="FAILED", error={"Error": "Worker.Crashed", "Cause": ""})
    found = audit(plan, _stores({"a": crashed}, tasks=[_task("a"), _task("a")]))
    assert found.unexpected and "expected {'SUCCEEDED': []}" in found.unexpected[0]


@pytest.mark.parametrize("size", [30, 300])
def test_every_size_has_every_fault_and_the_plan_is_reproducible(size: int) -> None:
    counts = role_counts(size)
    assert sum(counts.values()) == size and all(count >= 1 for count in counts.values())
    first, again = make_plan(size, 7, "http://site"), make_plan(size, 7, "http://site")
    assert [(j.role, j.body, j.job_id) for j in first] == [(j.role, j.body, j.job_id) for j in again]
    assert len({j.job_id for j in first if j.job_id}) == sum(1 for j in first if j.job_id)


def test_a_run_too_small_for_every_fault_is_refused() -> None:
    with pytest.raises(ValueError, match="at least"):
        role_counts(10)


def test_a_job_that_gives_its_claim_back_holds_nothing_while_it_waits() -> None:
    # a held the lock from 0.1 s, gave it back at 2 s (a 429: GiveBackClaim), claimed again at 8 s and
    # ended at 10 s; b held the same lock from 3 s to 7 s in between.
    history = claimed_at(0.1) + claimed_at(8)
    history.append(
        {"timestamp": T0 + timedelta(seconds=2), "stateEnteredEventDetails": {"name": "GiveBackClaim"}}
    )
    records = {"a": record("a", 0, 10), "b": record("b", 3, 7)}
    holds = hold_intervals(records, {"a": history, "b": claimed_at(3.1)})
    assert [(i.start, i.end) for i in holds["k"] if i.job_id == "a"] == [
        (T0 + timedelta(seconds=0.1), T0 + timedelta(seconds=2)),
        (T0 + timedelta(seconds=8), T0 + timedelta(seconds=10)),
    ]
    assert overlaps(holds) == []
    assert capacity_violations(holds, max_tasks=1) == []
    # Without the give-back it would be one hold from 0.1 s to 10 s, across b's.
    assert overlaps(hold_intervals(records, {"a": claimed_at(0.1), "b": claimed_at(3.1)}))
