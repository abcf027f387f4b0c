"""What a chaos run submits: jobs over many lockKeys and rateKeys, each with the fault it will meet and
the outcomes it may end with. The plan is a pure function of (size, seed, site URL), so a run can be
repeated exactly (`CHAOS_SEED`).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

# Deploy-time parameters: two tokens, then one every three seconds per rateKey; four browsers at once.
RATE_BURST = 2
RATE_PER_MINUTE = 20
MAX_CONCURRENT_TASKS = 4
# Local tasks start in LOCAL_TASK_START_SECONDS (1 s by default), not Fargate's 30-60 s: the heartbeat
# deadline's grace for the start is 10 s here, so that a hung worker is still noticed within seconds.
TASK_START_GRACE_SECONDS = 10
# A site that goes down and comes back: its first OUTAGE_FAILED_LOADS loads answer 503, enough to open its
# breaker (BreakerFailureThreshold, 5) and to fail the first probe; the next probe finds it back.
BREAKER_OPEN_SECONDS = 3
OUTAGE_FAILED_LOADS = 6
PARAMETERS = {
    "BreakerOpenSeconds": str(BREAKER_OPEN_SECONDS),
    "RateBurst": str(RATE_BURST),
    "RateLimitPerMinute": str(RATE_PER_MINUTE),
    "MaxConcurrentTasks": str(MAX_CONCURRENT_TASKS),
    "TaskStartGraceSeconds": str(TASK_START_GRACE_SECONDS),
}
# AWS failures the endpoint injects meanwhile (browserjobs.emulator.faults), at modest rates:
# CHAOS_AWS_FAULTS overrides (an empty value turns them off). taskdef.deregistered is left out: once the
# revision the workflow names is INACTIVE, every later RunTask fails, which is what it is for, not a fault
# a run can be audited under.
AWS_FAULTS = (
    "runtask.capacity=0.1,ecs.throttle=0.05,ddb.conflict=0.05,ddb.throttle=0.02,"
    "events.late=0.1:3,events.duplicate=0.1,events.lost=0.02"
)

# Healthy jobs heartbeat every ~3 s (10/3); a hung one is noticed after 6 s.
HEARTBEAT_SECONDS = 10
HUNG_HEARTBEAT_SECONDS = 6
TIMEOUT_SECONDS = 90
# The worker gives up 5 s before timeoutSeconds: a job on the slow page overruns a 15 s timeout.
OVERRUN_TIMEOUT_SECONDS = 15
# Long enough that a fault lands while the page is still loading.
SLOW_PAGE_SECONDS = 12


class Role(StrEnum):
    PLAIN = "plain"
    DUPLICATE_MESSAGE = "duplicate message"  # the same SQS message (body and id) delivered twice
    DUPLICATE_DERIVED = "duplicate message, derived jobId"  # the same, for a job without a jobId
    DIRECT_AND_QUEUE = "direct + queue"  # the same job invoked directly and sent to the queue
    REJECT_ON_CONFLICT = "onConflict reject"
    INVALID = "invalid input"
    CRASH = "SIGKILL (crash hook)"
    HANG = "SIGSTOP (heartbeat timeout)"
    OVERRUN = "timeoutSeconds overrun"
    ABORT_RUNNING = "StopExecution while RUNNING"
    ABORT_WAITING = "StopExecution while WAITING"
    SPOT_ONCE = "SIGTERM once (retried)"
    SPOT_TWICE = "SIGTERM twice (retry spent)"
    SITE_OUTAGE = "site down, then back (breaker)"
    POOL = "pool (warm worker)"
    POOL_CRASH = "pool task SIGKILL (crash hook)"
    POOL_SPOT = "pool task SIGTERM (drain, then retried)"


# Pool jobs (dispatch: pool) run on the local pool service's tasks, several on one task.
POOL_ROLES = frozenset({Role.POOL, Role.POOL_CRASH, Role.POOL_SPOT})
FAULTS = (
    Role.POOL_CRASH,
    Role.POOL_SPOT,
    Role.CRASH,
    Role.HANG,
    Role.ABORT_RUNNING,
    Role.ABORT_WAITING,
    Role.SPOT_ONCE,
    Role.SPOT_TWICE,
)


class Delivery(StrEnum):
    QUEUE = "queue"
    REDELIVERED = "queue, then the same message again"
    DIRECT_AND_QUEUE = "direct invoke and queue"
    DIRECT = "direct invoke"


@dataclass(frozen=True)
class Outcome:
    """One acceptable end: the error names (error.Error, or rejection.code) and what goes with it."""

    reasons: frozenset[str] = frozenset()
    dead_letter: bool = False
    tasks: frozenset[int] = frozenset({1})


SUCCESS = {"SUCCEEDED": Outcome()}
POOL_OUTCOMES = {
    "SUCCEEDED": Outcome(tasks=frozenset({1, 2})),
    "FAILED": Outcome(frozenset({"Worker.Interrupted"}), dead_letter=True, tasks=frozenset({2})),
}
EXPECTED: dict[Role, dict[str, Outcome]] = {
    Role.PLAIN: SUCCESS,
    Role.DUPLICATE_MESSAGE: SUCCESS,
    Role.DUPLICATE_DERIVED: SUCCESS,
    Role.DIRECT_AND_QUEUE: SUCCESS,
    # Whether the lock is held when the job looks depends on timing: either end is right.
    Role.REJECT_ON_CONFLICT: {
        **SUCCESS,
        "REJECTED": Outcome(frozenset({"Job.LockHeld"}), tasks=frozenset({0})),
    },
    Role.CRASH: {"FAILED": Outcome(frozenset({"Worker.Crashed"}), dead_letter=True)},
    # moto reports an expired heartbeat as States.Timeout (docs/ARCHITECTURE.md, moto gaps).
    Role.HANG: {
        "TIMED_OUT": Outcome(frozenset({"States.HeartbeatTimeout", "States.Timeout"}), dead_letter=True)
    },
    Role.OVERRUN: {"TIMED_OUT": Outcome(frozenset({"Worker.Timeout", "States.Timeout"}), dead_letter=True)},
    Role.ABORT_RUNNING: {"FAILED": Outcome(frozenset({"Execution.Aborted"}), dead_letter=True)},
    # Aborted before its claim (no task), or claimed just before the abort landed (one task).
    Role.ABORT_WAITING: {
        "FAILED": Outcome(frozenset({"Execution.Aborted"}), dead_letter=True, tasks=frozenset({0, 1}))
    },
    Role.SPOT_ONCE: {"SUCCEEDED": Outcome(tasks=frozenset({2}))},
    Role.SPOT_TWICE: {
        "FAILED": Outcome(frozenset({"Worker.Interrupted"}), dead_letter=True, tasks=frozenset({2}))
    },
    # Retried 503s, tasks that found the breaker open and went back to their claim, then the load that works.
    Role.SITE_OUTAGE: {"SUCCEEDED": Outcome(tasks=frozenset(range(1, 40)))},
    # For pool jobs `tasks` counts dispatch messages (attempts). A fault on a pool task reaches every job it
    # holds: each is failed with Worker.Interrupted and retried once elsewhere; one hit twice fails.
    Role.POOL: POOL_OUTCOMES,
    Role.POOL_CRASH: {**POOL_OUTCOMES, "SUCCEEDED": Outcome(tasks=frozenset({2}))},
    # The drain (PoolDrainSeconds) lets a job finish when the notice lands late in its page load.
    Role.POOL_SPOT: POOL_OUTCOMES,
}


@dataclass
class PlannedJob:
    role: Role
    body: Any  # the job, or the bad input, exactly as delivered (a str is sent as is)
    delivery: Delivery
    job_id: str | None  # None until the delivery names it (an id derived from the SQS message id)
    lock_key: str | None = None
    rate_key: str | None = None
    rejection_code: str | None = None  # for invalid input: the code intake must record
    message_id: str | None = None  # set when sent to the queue
    faults: list[str] = field(default_factory=list)  # what was done to it, in order

    @property
    def expected(self) -> dict[str, Outcome]:
        if self.role is Role.INVALID:
            return {"REJECTED": Outcome(frozenset({self.rejection_code or ""}), tasks=frozenset({0}))}
        return EXPECTED[self.role]

    @property
    def pool(self) -> bool:
        return self.role in POOL_ROLES

    @property
    def runs(self) -> bool:
        """Whether an execution must exist for it (invalid input never starts one)."""
        return self.role is not Role.INVALID


def _browse(url: str, **fields: Any) -> dict[str, Any]:
    return {
        "action": "browse",
        "params": {
            "steps": [
                {"goto": {"url": url, "timeoutMs": 60_000}},
                {"extract": {"name": "page", "fields": {"title": {"selector": "#title"}}}},
            ]
        },
        "timeoutSeconds": TIMEOUT_SECONDS,
        "heartbeatSeconds": HEARTBEAT_SECONDS,
        **fields,
    }


def _invalid_inputs(run: str, site_url: str) -> list[tuple[Any, str, Delivery, str | None]]:
    """(body, rejection code, delivery, own jobId): bad input of several kinds and channels."""
    page = {"steps": [{"goto": {"url": f"{site_url}/"}}]}

    def job(suffix: str, **fields: Any) -> tuple[str, dict[str, Any]]:
        job_id = f"{run}-bad-{suffix}"
        return job_id, {
            "jobId": job_id,
            "lockKey": f"{run}-bad",
            "action": "browse",
            "params": page,
            **fields,
        }

    no_lock_id, no_lock = job("nolock")
    del no_lock["lockKey"]
    action_id, action = job("action", action="teleport", params={})
    steps_id, steps = job("steps", params={"steps": []})
    beat_id, beat = job("beat", heartbeatSeconds=60, timeoutSeconds=30)
    file_id, file_url = job("file", params={"steps": [{"goto": {"url": "file:///etc/passwd"}}]})
    _, bad_id = job("id")
    bad_id["jobId"] = "not a valid id!"
    direct_id, direct = job("direct", onConflict="sometimes")
    return [
        ('{"lockKey": "' + run + '", "action": ', "INVALID_JSON", Delivery.QUEUE, None),
        (no_lock, "INVALID_JOB", Delivery.QUEUE, no_lock_id),
        (action, "UNKNOWN_ACTION", Delivery.QUEUE, action_id),
        (steps, "INVALID_PARAMS", Delivery.REDELIVERED, steps_id),
        (beat, "INVALID_JOB", Delivery.QUEUE, beat_id),
        (file_url, "INVALID_PARAMS", Delivery.QUEUE, file_id),
        (bad_id, "INVALID_JOB", Delivery.QUEUE, None),  # not a valid jobId: the derived one is used
        ([1, 2, 3], "INVALID_JOB", Delivery.REDELIVERED, None),
        (direct, "INVALID_JOB", Delivery.DIRECT, direct_id),
    ]


# role -> (at least, one per this many jobs): every fault at every size, plain jobs the rest.
SHARES = {
    Role.INVALID: (4, 10),
    Role.DUPLICATE_MESSAGE: (2, 15),
    Role.DUPLICATE_DERIVED: (1, 30),
    Role.DIRECT_AND_QUEUE: (2, 15),
    Role.REJECT_ON_CONFLICT: (1, 30),
    Role.CRASH: (1, 30),
    Role.HANG: (1, 30),
    Role.OVERRUN: (1, 40),
    Role.ABORT_RUNNING: (1, 40),
    Role.ABORT_WAITING: (1, 40),
    Role.SPOT_ONCE: (1, 40),
    Role.SPOT_TWICE: (1, 40),
    Role.SITE_OUTAGE: (3, 10),
    Role.POOL: (4, 10),
    Role.POOL_CRASH: (1, 40),
    Role.POOL_SPOT: (1, 40),
}


def role_counts(size: int) -> dict[Role, int]:
    """How many jobs of each role a run of `size` jobs has."""
    counts = {role: max(least, size // per) for role, (least, per) in SHARES.items()}
    plain = size - sum(counts.values())
    if plain < 4:
        raise ValueError(f"a chaos run needs at least {size - plain + 4} jobs, not {size}")
    return {Role.PLAIN: plain, **counts}


def make_plan(size: int, seed: int, site_url: str) -> list[PlannedJob]:
    rng = random.Random(seed)
    run = f"chaos{seed}"
    counts = role_counts(size)
    tenants = [f"{run}-t{n}" for n in range(max(2, size // 10))]
    # About two jobs per lockKey, a few keys busier than the rest (up to five or so jobs in a row).
    accounts = [f"{rng.choice(tenants)}#a{n}" for n in range(max(4, size // 2))]
    weights = [1 / (rank + 1) ** 0.5 for rank in range(len(accounts))]

    def keys() -> dict[str, str]:
        lock_key = rng.choices(accounts, weights)[0]
        tenant = lock_key.split("#", 1)[0]
        return {"lockKey": lock_key, "rateKey": tenant} if rng.random() < 0.8 else {"lockKey": lock_key}

    plan: list[PlannedJob] = []
    invalid = _invalid_inputs(run, site_url)
    for index in range(counts[Role.INVALID]):
        body, code, delivery, own_id = invalid[index % len(invalid)]
        if index >= len(invalid) and isinstance(body, dict) and own_id:  # a fresh jobId for each copy
            own_id = f"{own_id}-{index}"
            body = {**body, "jobId": own_id}
        plan.append(PlannedJob(Role.INVALID, body, delivery, own_id, rejection_code=code))

    for role, count in counts.items():
        if role is Role.INVALID:
            continue
        for index in range(count):
            fields = keys()
            url = f"{site_url}/"
            if role in FAULTS or role is Role.OVERRUN:
                url = f"{site_url}/slow?seconds={SLOW_PAGE_SECONDS}"
            job = _browse(url, **fields, meta={"chaos": str(role)})
            if role is Role.HANG:
                job["heartbeatSeconds"] = HUNG_HEARTBEAT_SECONDS
            if role is Role.OVERRUN:
                job["timeoutSeconds"] = OVERRUN_TIMEOUT_SECONDS
                job["params"]["steps"][0]["goto"]["url"] = f"{site_url}/slow?seconds=30"
            if role is Role.REJECT_ON_CONFLICT:
                job["onConflict"] = "reject"
            if role in POOL_ROLES:
                job["dispatch"] = "pool"
            if role is Role.SITE_OUTAGE:
                job["siteKey"] = outage_site(run)
                job["params"]["steps"][0]["goto"]["url"] = (
                    f"{site_url}/flaky/{outage_site(run)}?fail={OUTAGE_FAILED_LOADS}&status=503"
                )
            job_id: str | None = f"{run}-{role.name.lower().replace('_', '-')}-{index}"
            if role in POOL_ROLES:  # its loads are counted by name: at most one per attempt
                seconds = SLOW_PAGE_SECONDS if role in FAULTS else 1
                job["params"]["steps"][0]["goto"]["url"] = f"{site_url}/slow?seconds={seconds}&name={job_id}"
            if role is Role.DUPLICATE_DERIVED:
                job_id = None  # intake derives it from the message id
            else:
                job["jobId"] = job_id
            delivery = {
                Role.DUPLICATE_MESSAGE: Delivery.REDELIVERED,
                Role.DUPLICATE_DERIVED: Delivery.REDELIVERED,
                Role.DIRECT_AND_QUEUE: Delivery.DIRECT_AND_QUEUE,
            }.get(role, Delivery.QUEUE)
            plan.append(
                PlannedJob(
                    role, job, delivery, job_id, lock_key=fields["lockKey"], rate_key=fields.get("rateKey")
                )
            )
    rng.shuffle(plan)
    # The outage's jobs go first, together: their loads, not one job's retries alone, open the breaker.
    plan.sort(key=lambda job: job.role is not Role.SITE_OUTAGE)
    return plan


def outage_site(run: str) -> str:
    """The siteKey (and the sample site's /flaky name) of a run's outage."""
    return f"{run}-outage"
