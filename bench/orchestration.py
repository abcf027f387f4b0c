"""Orchestration cost: state transitions and Lambda invocations per job, from real execution histories.

Four kinds of job run on the local stack with the real worker: a plain success, a throttled one (a third
job on a rate key with a burst of two), one that waits for another job's lock, and one whose worker stops
heartbeating (frozen) and times out. Transitions are the StateEntered events of the history (what Standard
workflows bill); Lambda invocations inside the workflow are its Lambda task events; invocations outside it
(intake, crash hook, cleanup) are counted from the functions' logs (START lines) while the job ran alone.
"""

from __future__ import annotations

import re
import statistics
import time
from collections import Counter
from typing import Any

from bench.common import SPREAD_COLUMNS, Section, Spread, Table, Target, progress, say
from bench.stack import BenchStack, claim_outcomes, lambda_invocations, states_entered
from browserjobs.testing.harness import poll

TRANSITION_USD = 0.025 / 1000  # Standard workflows, per state transition
LAMBDA_REQUEST_USD = 0.20 / 1_000_000
FUNCTIONS = {
    "IntakeFunctionName": "intake",
    "ClaimFunctionName": "claim",
    "CrashHookFunctionName": "crash_hook",
    "CleanupFunctionName": "cleanup",
}
TARGET_TRANSITIONS = 8
_DURATION = re.compile(r"Duration: ([0-9.]+) ms")
TARGET_LAMBDAS = 1


def invocation_counts(bs: BenchStack, durations: dict[str, list[float]] | None = None) -> Counter[str]:
    """Invocations so far per function: START lines in its CloudWatch log group (and, when asked for,
    each invocation's duration from its REPORT line)."""
    logs = bs.harness.client("logs")
    counts: Counter[str] = Counter()
    for output, name in FUNCTIONS.items():
        group = f"/aws/lambda/{bs.harness.outputs[output]}"
        paginator = logs.get_paginator("filter_log_events")
        try:
            for page in paginator.paginate(logGroupName=group):
                for event in page["events"]:
                    message = event["message"]
                    counts[name] += message.startswith("START RequestId")
                    if durations is not None and message.startswith("REPORT RequestId"):
                        durations.setdefault(name, []).append(float(_DURATION.search(message).group(1)))
        except logs.exceptions.ResourceNotFoundException:
            pass  # never invoked yet
    return counts


def _quiet(bs: BenchStack) -> Counter[str]:
    """Counts once every earlier task has stopped and the crash hook has seen each stop (a worker exits a
    moment after its callback), so that a job's count holds only what that job caused."""
    ecs, cluster = bs.harness.client("ecs"), bs.harness.outputs["ClusterArn"]

    def quiet() -> list[Counter[str]] | None:  # in a list: an empty Counter is falsy
        # The warm pool's task (PoolMinTasks 1 here) runs throughout: only per-job tasks must have ended.
        if any(not str(task.group or "").startswith("service:") for task in bs.stack.tasks.running()):
            return None
        stopped = sum(
            len(page["taskArns"])
            for page in ecs.get_paginator("list_tasks").paginate(cluster=cluster, desiredStatus="STOPPED")
        )
        counts = invocation_counts(bs)
        return [counts] if counts["crash_hook"] >= stopped else None

    return poll("earlier tasks to stop and their crash-hook calls", quiet, 60, interval=0.2)[0]


def _settled(bs: BenchStack, before: Counter[str], expected: dict[str, int]) -> Counter[str]:
    """Wait for the asynchronous invocations a job causes (task stopped, execution failed) to show up."""

    def enough() -> Counter[str] | None:
        delta = invocation_counts(bs) - before
        return delta if all(delta[name] >= count for name, count in expected.items()) else None

    return poll(f"invocations {expected}", enough, 60, interval=0.2)


def _row(kind: str, history: list[dict[str, Any]], outside: Counter[str] | None, jobs_in_run: int) -> dict:
    entered = states_entered(history)
    return {
        "kind": kind,
        "transitions": len(entered),
        "lambda_inside": lambda_invocations(history),
        "claims": claim_outcomes(history),
        "path": entered,
        "outside": dict(outside or {}),
        "jobs_in_run": jobs_in_run,
    }


def success(bs: BenchStack) -> dict:
    before = _quiet(bs)
    job = bs.job("orch-success")
    bs.submit(job)
    record, _ = bs.finish(job["jobId"])
    assert record["status"] == "SUCCEEDED", record
    outside = _settled(bs, before, {"intake": 1, "claim": 1, "crash_hook": 1})
    outside.pop("claim", None)
    return _row("successful job", bs.harness.history(job["jobId"]), outside, 1)


def throttled(bs: BenchStack) -> dict:
    rate_key = f"bench-rate-{time.time_ns()}"
    jobs = [bs.job("orch-throttle", rateKey=rate_key) for _ in range(3)]
    bs.submit_together(jobs)
    for job in jobs:
        record, _ = bs.finish(job["jobId"])
        assert record["status"] == "SUCCEEDED", record
    for job in jobs:
        history = bs.harness.history(job["jobId"])
        if "THROTTLED" in claim_outcomes(history):
            return _row("throttled job (rate limit, burst 2)", history, None, 3)
    raise AssertionError("none of three jobs on one rate key was throttled")


def waited_for_lock(bs: BenchStack) -> dict:
    holder = bs.job("orch-holder", [{"goto": {"url": f"{bs.site_url}/slow?seconds=4", "timeoutMs": 30000}}])
    waiter = bs.job("orch-waiter", lockKey=holder["lockKey"])
    bs.submit(holder)
    bs.registered_task(holder)
    bs.submit(waiter)
    for job in (holder, waiter):
        record, _ = bs.finish(job["jobId"])
        assert record["status"] == "SUCCEEDED", record
    return _row("job that waited for a lock", bs.harness.history(waiter["jobId"]), None, 2)


def timed_out(bs: BenchStack) -> dict:
    job = bs.job("orch-timeout", [{"goto": {"url": f"{bs.site_url}/hang", "timeoutMs": 60000}}])
    job["heartbeatSeconds"] = 3
    before = _quiet(bs)
    bs.submit(job)
    bs.stack.freeze_task(bs.registered_task(job))
    record, _ = bs.finish(job["jobId"])
    assert record["status"] == "TIMED_OUT", record
    outside = _settled(bs, before, {"intake": 1, "claim": 1, "crash_hook": 1, "cleanup": 1})
    outside.pop("claim", None)
    return _row("timed-out job (heartbeat stopped)", bs.harness.history(job["jobId"]), outside, 1)


def run(bs: BenchStack, quick: bool) -> Section:
    section = Section(
        "orchestration",
        "Orchestration cost per job (Step Functions Standard, local stack, real histories)",
        ".venv/bin/python -m bench --only orchestration",
    )
    kinds = [success, throttled, waited_for_lock, timed_out]
    rows = []
    for index, kind in enumerate(kinds, 1):
        progress("orchestration", index, len(kinds), kind.__name__)
        rows.append(kind(bs))
        say(f"      {rows[-1]['transitions']} transitions, {rows[-1]['lambda_inside']} Lambda inside")
    successes = [rows[0]]
    if not quick:  # the success path is the one that matters most: check it is the same every time
        successes += [success(bs) for _ in range(2)]
    counts = {row["transitions"] for row in successes}
    table = Table(
        "State transitions and Lambda invocations per job",
        [
            "job",
            "transitions",
            "Lambda in workflow",
            "Lambda outside (intake, crash hook, cleanup)",
            "$ per 1,000 jobs: transitions",
            "$ per 1,000 jobs: Lambda requests",
            "path",
        ],
    )
    for row in rows:
        outside = row["outside"]
        outside_total = sum(outside.values()) if outside else None
        lambda_total = row["lambda_inside"] + (outside_total or 0)
        table.rows.append(
            [
                row["kind"],
                str(row["transitions"]),
                str(row["lambda_inside"]),
                (
                    f"{outside_total} ({', '.join(f'{k} {v}' for k, v in sorted(outside.items()))})"
                    if outside
                    else "as above (not isolated: several jobs ran together)"
                ),
                f"{row['transitions'] * TRANSITION_USD * 1000:.4f}",
                f"{lambda_total * LAMBDA_REQUEST_USD * 1000:.6f}",
                " → ".join(row["path"]),
            ]
        )
    section.tables.append(table)
    section.notes += [
        "Prices: $0.025 per 1,000 state transitions (Standard), $0.20 per million Lambda requests "
        "(us-east-1 list prices; check them). Lambda duration (GB-s) is in docs/COST.md.",
        "Intake counts one invocation per SQS batch (up to 10 messages); the crash hook runs once for "
        "every stopped task, including those that already reported; cleanup runs once per failed "
        "execution (it finds the job already ended and changes nothing).",
        f"The successful path was the same in {len(successes)} runs: {sorted(counts)} transitions.",
    ]
    ok = rows[0]
    section.targets += [
        Target(
            f"successful job ≤ {TARGET_TRANSITIONS} state transitions",
            f"{ok['transitions']}",
            max(counts) <= TARGET_TRANSITIONS,
        ),
        Target(
            f"successful job ≤ {TARGET_LAMBDAS} Lambda invocation inside the workflow",
            f"{ok['lambda_inside']}",
            ok["lambda_inside"] <= TARGET_LAMBDAS,
        ),
    ]
    durations: dict[str, list[float]] = {}
    invocation_counts(bs, durations)
    section.data = {
        "rows": rows,
        "success_transitions": sorted(counts),
        "lambda_ms": {name: Spread.of(values).__dict__ for name, values in durations.items()},
    }
    table = Table(
        "Lambda durations in the local stack during these jobs (ms; REPORT lines, warm and cold together)",
        ["function", *SPREAD_COLUMNS],
    )
    for name, values in sorted(durations.items()):
        table.rows.append([name, *Spread.of(values).cells(0)])
    section.tables.append(table)
    section.data["median_success_transitions"] = statistics.median(r["transitions"] for r in successes)
    return section
