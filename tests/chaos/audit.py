"""What a chaos run left in the real stores, checked against what was submitted.

Everything here is read back from the stack as an operator would read it: JobsTable, the job DLQ and
the intake DLQ, the execution histories, the ECS tasks, LocksTable, and the OS process table. Each check
returns the problems it found as sentences; a run is good when every list is empty.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from browserjobs.core.clock import parse_iso
from browserjobs.core.ddb import from_item, plain
from browserjobs.ops import dlq, jobs
from browserjobs.testing.harness import Harness

from .plan import MAX_CONCURRENT_TASKS, RATE_BURST, RATE_PER_MINUTE, PlannedJob
from .processes import task_processes

TERMINAL = {"SUCCEEDED", "FAILED", "TIMED_OUT", "INTERRUPTED", "REJECTED"}
DEAD_LETTERED = {"FAILED", "TIMED_OUT"}
MS_PER_MINUTE = 60_000


@dataclass
class Interval:
    job_id: str
    start: datetime
    end: datetime


@dataclass
class Stores:
    """Everything read back from the stack once the run has ended."""

    records: dict[str, dict[str, Any]]
    dead_letters: list[dict[str, Any]]
    intake_dead_letters: int
    executions: list[dict[str, Any]]
    histories: dict[str, list[dict[str, Any]]]
    tasks: list[dict[str, Any]]
    lease_items: list[dict[str, Any]]
    processes: list[str]

    @classmethod
    def read(cls, harness: Harness, endpoint_url: str) -> Stores:
        outputs = harness.outputs
        executions = jobs.list_executions(harness.target, limit=1_000_000)
        return cls(
            records={item["jobId"]: item for item in _scan(harness, outputs["JobsTableName"])},
            dead_letters=[
                letter.to_json() for letter in dlq.list_dead_letters(harness.target, limit=1_000_000)
            ],
            intake_dead_letters=sum(
                int(count)
                for count in harness.client("sqs")
                .get_queue_attributes(
                    QueueUrl=outputs["IntakeDeadLetterQueueUrl"],
                    AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
                )["Attributes"]
                .values()
            ),
            executions=executions,
            histories={
                e["name"]: jobs.execution_history(harness.target, e["executionArn"]) for e in executions
            },
            tasks=_tasks(harness),
            lease_items=[
                item
                for item in _scan(harness, outputs["LocksTableName"])
                if item["pk"].startswith(("lock#", "slot#"))
            ],
            processes=[f"pid {p.pid}: {' '.join(p.command)[:120]}" for p in task_processes(endpoint_url)],
        )


def _scan(harness: Harness, table: str) -> list[dict[str, Any]]:
    pages = harness.client("dynamodb").get_paginator("scan").paginate(TableName=table, ConsistentRead=True)
    return [plain(from_item(raw)) for page in pages for raw in page.get("Items", [])]


def _tasks(harness: Harness) -> list[dict[str, Any]]:
    ecs, cluster = harness.client("ecs"), harness.outputs["ClusterArn"]
    arns = [
        arn
        for status in ("RUNNING", "STOPPED")
        for page in ecs.get_paginator("list_tasks").paginate(cluster=cluster, desiredStatus=status)
        for arn in page["taskArns"]
    ]
    described = []
    for start in range(0, len(arns), 100):
        described += ecs.describe_tasks(cluster=cluster, tasks=arns[start : start + 100])["tasks"]
    return described


def task_job_id(task: dict[str, Any]) -> str | None:
    for override in task.get("overrides", {}).get("containerOverrides", []):
        for variable in override.get("environment", []):
            if variable["name"] == "JOB_ID":
                return str(variable["value"])
    return None


def is_service_task(task: dict[str, Any]) -> bool:
    """A task of the pool service (its jobs come from the dispatch queue, not its overrides)."""
    return str(task.get("group", "")).startswith("service:")


def dispatches(history: list[dict[str, Any]]) -> int:
    """A pool job's attempts: the dispatch messages its execution sent (RunPoolJob, once per attempt)."""
    return sum(
        1
        for event in history
        if event["type"] == "TaskScheduled"
        and event["taskScheduledEventDetails"].get("resource") == "sendMessage.waitForTaskToken"
    )


def double_runs(plan: list[PlannedJob], stores: Stores, loads: Callable[[str], list[float]]) -> list[str]:
    """Pool jobs whose page was loaded more often than they had attempts: a job run twice by one message."""
    found = []
    for job in plan:
        if job.pool and job.job_id:
            attempts, loaded = dispatches(stores.histories.get(job.job_id, [])), len(loads(job.job_id))
            if loaded > attempts:
                found.append(f"{job.job_id} ({job.role}): {loaded} page loads in {attempts} attempt(s)")
    return found


def reason_of(record: dict[str, Any]) -> str:
    return str((record.get("error") or {}).get("Error") or (record.get("rejection") or {}).get("code") or "")


@dataclass
class Findings:
    outcomes: Counter[str] = field(default_factory=Counter)
    lost: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    duplicated: list[str] = field(default_factory=list)
    strays: list[str] = field(default_factory=list)
    double_claims: list[str] = field(default_factory=list)
    double_runs: list[str] = field(default_factory=list)
    capacity_violations: list[str] = field(default_factory=list)
    rate_violations: list[str] = field(default_factory=list)
    leaked_leases: list[str] = field(default_factory=list)
    tasks_not_stopped: list[str] = field(default_factory=list)
    leaked_processes: list[str] = field(default_factory=list)
    figures: dict[str, Any] = field(default_factory=dict)

    def problems(self) -> dict[str, list[str]]:
        """Every check that found something, by name."""
        checks = {
            "lost": self.lost,
            "unexpected outcome": self.unexpected,
            "duplicated": self.duplicated,
            "not submitted": self.strays,
            "double claims": self.double_claims,
            "double runs": self.double_runs,
            "capacity violations": self.capacity_violations,
            "rate violations": self.rate_violations,
            "leaked locks/slots": self.leaked_leases,
            "tasks not stopped": self.tasks_not_stopped,
            "leaked processes": self.leaked_processes,
        }
        return {name: found for name, found in checks.items() if found}


def audit(plan: list[PlannedJob], stores: Stores) -> Findings:
    findings = Findings()
    _account(plan, stores, findings)
    held = hold_intervals(stores.records, stores.histories)
    findings.double_claims = overlaps(held)
    findings.capacity_violations = capacity_violations(held, MAX_CONCURRENT_TASKS)
    findings.rate_violations = rate_violations(stores.records, RATE_BURST, RATE_PER_MINUTE)
    findings.leaked_leases = [f"{item['pk']} held by {item.get('jobId')}" for item in stores.lease_items]
    findings.tasks_not_stopped = [t["taskArn"] for t in stores.tasks if t.get("lastStatus") != "STOPPED"]
    findings.leaked_processes = stores.processes
    if stores.intake_dead_letters:
        findings.strays.append(f"{stores.intake_dead_letters} message(s) in the intake DLQ")
    findings.figures.update(
        executions=len(stores.executions),
        tasks=len([t for t in stores.tasks if not is_service_task(t)]),
        pool_tasks=len([t for t in stores.tasks if is_service_task(t)]),
        dead_letters=len(stores.dead_letters),
        claims=sum(1 for r in stores.records.values() if r.get("claimedAt")),
        throttled_claims=_claim_outcomes(stores.histories)["THROTTLED"],
        at_capacity_claims=_claim_outcomes(stores.histories)["AT_CAPACITY"],
        locked_checks=sum(_states_entered(h)["WaitForLock"] for h in stores.histories.values()),
        rate_keys=len(
            {r.get("rateKey") or r.get("lockKey") for r in stores.records.values() if r.get("claimedAt")}
        ),
        lock_keys=len({r.get("lockKey") for r in stores.records.values() if r.get("claimedAt")}),
        claim_latency_seconds=_claim_latency(stores),
    )
    return findings


def _account(plan: list[PlannedJob], stores: Stores, findings: Findings) -> None:
    """Every submitted job exactly once: one terminal record, one execution (none for invalid input),
    the tasks its fault implies, and a DLQ message exactly when it failed or timed out."""
    executions = Counter(e["name"] for e in stores.executions)
    tasks = Counter(task_job_id(t) for t in stores.tasks if not is_service_task(t))
    letters: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for letter in stores.dead_letters:
        letters[str(letter.get("jobId"))].append(letter)
    planned_ids = {job.job_id for job in plan}

    for job in plan:
        job_id = job.job_id or ""
        record = stores.records.get(job_id)
        if record is None or record.get("status") not in TERMINAL:
            state = record.get("status") if record else "no record"
            findings.lost.append(f"{job_id} ({job.role}): {state}")
            continue
        status, reason = record["status"], reason_of(record)
        findings.outcomes[status] += 1
        expected = job.expected.get(status)
        if (
            expected is None
            or (expected.reasons and reason not in expected.reasons)
            or (not expected.reasons and reason)
        ):
            allowed = {s: sorted(o.reasons) for s, o in job.expected.items()}
            findings.unexpected.append(f"{job_id} ({job.role}): {status} {reason or ''} (expected {allowed})")
            continue
        if status == "REJECTED" and not (record.get("rejection") or {}).get("message"):
            findings.unexpected.append(f"{job_id}: REJECTED without a reason")
        if executions[job_id] != int(job.runs):
            findings.duplicated.append(f"{job_id} ({job.role}): {executions[job_id]} executions")
        ran = dispatches(stores.histories.get(job_id, [])) if job.pool else tasks[job_id]
        if ran not in expected.tasks:
            what = "attempts" if job.pool else "tasks"
            findings.duplicated.append(f"{job_id} ({job.role}): {ran} {what}, expected {set(expected.tasks)}")
        mine = letters.get(job_id, [])
        if expected.dead_letter and not mine:
            findings.lost.append(f"{job_id} ({job.role}): {status} but not in the DLQ")
        elif len(mine) > int(expected.dead_letter):
            findings.duplicated.append(f"{job_id} ({job.role}): {len(mine)} DLQ messages")
        for letter in mine:
            if letter.get("status") != status or (letter.get("error") or {}).get("Error") != reason:
                findings.unexpected.append(f"{job_id}: DLQ says {letter.get('status')} {letter.get('error')}")

    findings.strays += [f"record {job_id}" for job_id in stores.records if job_id not in planned_ids]
    findings.strays += [f"execution {name}" for name in executions if name not in planned_ids]
    findings.strays += [f"DLQ message for {job_id}" for job_id in letters if job_id not in planned_ids]
    findings.strays += [f"task for {job_id}" for job_id in tasks if job_id not in planned_ids]


# --- mutual exclusion, capacity and rate -------------------------------------------------------------------


def _claim_answers(history: list[dict[str, Any]]) -> Iterator[tuple[datetime, dict[str, Any]]]:
    """(when, answer) of every Claim task of an execution, in order (the claim is its only Lambda)."""
    for event in history:
        details = event.get("taskSucceededEventDetails") or {}
        if details.get("resourceType") == "lambda":
            yield event["timestamp"], json.loads(details["output"])["Payload"]


def claims_granted(histories: dict[str, list[dict[str, Any]]]) -> dict[str, tuple[datetime, dict[str, Any]]]:
    """jobId -> (when, answer) of the Claim task that answered CLAIMED: its transaction had committed."""
    granted = {}
    for name, history in histories.items():
        for moment, answer in _claim_answers(history):
            if answer.get("outcome") == "CLAIMED":
                granted.setdefault(name, (moment, answer))
    return granted


def hold_intervals(
    records: dict[str, dict[str, Any]], histories: dict[str, list[dict[str, Any]]]
) -> dict[str, list[Interval]]:
    """lockKey -> every hold of it: from each Claim task's CLAIMED event in the execution history to the
    job giving the claim back (GiveBackClaim entered: a 429 or an open breaker, the job then claims again)
    or, for its last claim, the job record's endedAt (the lock and the slot are released at or after it).

    Both ends lie inside the true hold, so two of these that intersect are a certain double hold. The
    record's claimedAt is when the claim read the table (its clock for the token bucket): it precedes
    the commit by the claim's own latency, seconds on a loaded machine, and would show overlaps that
    never were; it is the start only for a claim whose history is missing.
    """
    held: dict[str, list[Interval]] = defaultdict(list)
    for job_id, record in records.items():
        if not record.get("claimedAt"):
            continue
        history = histories.get(job_id, [])
        starts = [moment for moment, answer in _claim_answers(history) if answer.get("outcome") == "CLAIMED"]
        given_back = [
            event["timestamp"]
            for event in history
            if event.get("stateEnteredEventDetails", {}).get("name") == "GiveBackClaim"
        ]
        end = parse_iso(record["endedAt"]) if record.get("endedAt") else datetime.max.replace(tzinfo=UTC)
        for start in starts or [parse_iso(record["claimedAt"])]:
            handed_back = [moment for moment in given_back if moment > start]
            held[record["lockKey"]].append(Interval(job_id, start, min(handed_back) if handed_back else end))
    return held


def overlaps(held: dict[str, list[Interval]]) -> list[str]:
    """Pairs of holds of one lockKey that intersect (each later one against the longest before it)."""
    found = []
    for lock_key, intervals in held.items():
        ordered = sorted(intervals, key=lambda interval: interval.start)
        for index, later in enumerate(ordered[1:], start=1):
            earlier = max(ordered[:index], key=lambda interval: interval.end)
            if later.start < earlier.end:
                found.append(
                    f"{lock_key}: {later.job_id} from {later.start:%H:%M:%S.%f} while "
                    f"{earlier.job_id} held it until {earlier.end:%H:%M:%S.%f}"
                )
    return found


def capacity_violations(held: dict[str, list[Interval]], max_tasks: int) -> list[str]:
    """More than MaxConcurrentTasks holds at once, all lockKeys together (a sweep over starts and ends)."""
    events = []
    for interval in (interval for intervals in held.values() for interval in intervals):
        events += [(interval.start, 1, interval.job_id), (interval.end, -1, interval.job_id)]
    holding: set[str] = set()
    found = []
    for moment, change, job_id in sorted(events, key=lambda e: (e[0], e[1])):  # ends before starts at a tie
        if change < 0:
            holding.discard(job_id)
            continue
        holding.add(job_id)
        if len(holding) > max_tasks:
            at = f"{moment:%H:%M:%S.%f}"
            found.append(f"{len(holding)} jobs held slots at {at} ({job_id} claimed): {sorted(holding)}")
    return found


def rate_violations(records: dict[str, dict[str, Any]], burst: int, per_minute: int) -> list[str]:
    """For every rateKey and every window [t_i, t_j] between two of its claims: the claims in it are at
    most burst + rate x window (integer arithmetic in 1/60000 token, as the bucket itself counts)."""
    claims: dict[str, list[int]] = defaultdict(list)
    for record in records.values():
        if record.get("claimedAt"):
            key = record.get("rateKey") or record["lockKey"]
            claims[key].append(int(parse_iso(record["claimedAt"]).timestamp() * 1000))
    found = []
    for key, moments in claims.items():
        moments.sort()
        for i in range(len(moments)):
            for j in range(i + 1, len(moments)):
                taken = j - i + 1
                allowed_units = burst * MS_PER_MINUTE + per_minute * (moments[j] - moments[i])
                if taken * MS_PER_MINUTE > allowed_units:
                    window = (moments[j] - moments[i]) / 1000
                    found.append(
                        f"{key}: {taken} claims in {window:.3f}s "
                        f"(at most {allowed_units / MS_PER_MINUTE:.2f})"
                    )
    return found


def job_timeline(stores: Stores) -> dict[str, dict[str, Any]]:
    """Per job, what a post-mortem needs: status, reason, keys, when it was claimed and ended, its slot."""
    granted = claims_granted(stores.histories)
    return {
        job_id: {
            "status": record.get("status"),
            "reason": reason_of(record),
            "lockKey": record.get("lockKey"),
            "rateKey": record.get("rateKey"),
            "claimedAt": record.get("claimedAt"),
            "claimGrantedAt": str(granted[job_id][0]) if job_id in granted else None,
            "endedAt": record.get("endedAt"),
            "slot": granted[job_id][1].get("slot") if job_id in granted else None,
            "taskArn": record.get("taskArn"),
        }
        for job_id, record in stores.records.items()
    }


def _claim_latency(stores: Stores) -> dict[str, float]:
    """From the claim's read (claimedAt) to the Claim task's CLAIMED event: median and longest, seconds."""
    granted = claims_granted(stores.histories)
    latencies = sorted(
        (granted[job_id][0] - parse_iso(record["claimedAt"])).total_seconds()
        for job_id, record in stores.records.items()
        if record.get("claimedAt") and job_id in granted
    )
    if not latencies:
        return {"median": 0.0, "max": 0.0}
    return {"median": round(latencies[len(latencies) // 2], 2), "max": round(latencies[-1], 2)}


def _claim_outcomes(histories: dict[str, list[dict[str, Any]]]) -> Counter[str]:
    return Counter(answer.get("outcome") for h in histories.values() for _, answer in _claim_answers(h))


def _states_entered(history: list[dict[str, Any]]) -> Counter[str]:
    return Counter(
        event["stateEnteredEventDetails"]["name"] for event in history if "stateEnteredEventDetails" in event
    )


def worker_overlap_seconds(tasks: list[dict[str, Any]], by_job: dict[str, PlannedJob]) -> float:
    """The longest time two worker processes of one lockKey were alive together (ECS startedAt..stoppedAt).

    Not a lock violation: the lock guards the job, and an ended job's process still closes its browser
    and exits after its callback (or its stop) while the next job's task starts.
    """
    lives: dict[str, list[tuple[datetime, datetime]]] = defaultdict(list)
    for task in tasks:
        job = by_job.get(task_job_id(task) or "")
        if job and job.lock_key and task.get("startedAt") and task.get("stoppedAt"):
            lives[job.lock_key].append((task["startedAt"], task["stoppedAt"]))
    longest = 0.0
    for spans in lives.values():
        spans.sort()
        for index, (start, end) in enumerate(spans[1:], start=1):
            latest_end = max(earlier_end for _, earlier_end in spans[:index])
            longest = max(longest, (min(latest_end, end) - start).total_seconds())
    return longest
