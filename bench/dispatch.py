"""Task mode and pool mode side by side, on one local stack: the same trivial job both ways.

Latency: intake invoked directly (as `sam local invoke` or an application would) to the execution's
SUCCEEDED, one job at a time. Dispatch latency: the claim's end (Claim's TaskStateExited) to the worker
starting the job (result.json's startedAt, the attempt's first instant in the worker). Throughput: closed
loops on 1, 4 and 16 lockKeys (bench/pipeline.py's) in each mode. Memory: the pool task's process tree
(worker, Playwright driver, Chromium) with 1, 4 and 8 jobs on a slow page at once.

The pool runs PoolMinTasks=1 (one warm task before the first job), PoolMaxTasks=2, PoolJobsPerTask=8.
Memory is measured first, on that one task. For throughput the pool is sized for the load, as an operator sets
PoolMinTasks for a known steady load: its scalable target's minimum is raised to 2 (16 warm job slots for the
16-key loop), so the loop measures warm dispatch rather than a task starting during it.
MaxConcurrentTasks=16 bounds task mode alike. Per-job tasks start in
LOCAL_TASK_START_SECONDS (1 s), not Fargate's 30-60 s: the local gap between the modes is the worker's own
start (Python, Chromium), the smaller part of what the pool saves on AWS.
"""

from __future__ import annotations

import json
import time
from typing import Any

from bench.common import SPREAD_COLUMNS, Section, Spread, Table, Target, progress, say
from bench.pipeline import throughput
from bench.stack import BenchStack, epoch, first_event
from browserjobs.testing.harness import poll
from browserjobs.worker.pool_browser import process_tree_rss_mb

MODES = ("task", "pool")
LATENCY_TARGET_SECONDS = 1.0
THROUGHPUT_RATIO_TARGET = 3.0
WARM_TASKS_FOR_THROUGHPUT = 2


def latency_once(bs: BenchStack, mode: str) -> dict[str, float]:
    job = bs.job(f"lat-{mode}", dispatch=mode)
    invoked = time.time()
    answer = bs.harness.submit_direct(job)
    assert answer.get("accepted", 1), answer
    record, execution = bs.finish(job["jobId"])
    assert record["status"] == "SUCCEEDED", record
    history = bs.harness.history(job["jobId"])
    claimed = epoch(first_event(history, "TaskStateExited", "Claim"))
    result = _result(bs, record)
    return {
        "total": epoch(execution["stopDate"]) - invoked,
        "dispatch": epoch(result["startedAt"]) - claimed,
    }


def _result(bs: BenchStack, record: dict[str, Any]) -> dict[str, Any]:
    """The job's result.json, from the summary its worker sent (docs/CONTRACTS.md, SendTaskSuccess)."""
    bucket, key = json.loads(record["summary"])["resultUri"].removeprefix("s3://").split("/", 1)
    return json.loads(bs.harness.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read())


def pool_memory(bs: BenchStack, jobs_at_once: int) -> float:
    """MiB of the pool task's processes with `jobs_at_once` jobs holding a slow page."""
    name = f"mem{jobs_at_once}-{time.time_ns()}"
    jobs = [
        bs.job(
            f"mem{jobs_at_once}",
            [{"goto": {"url": f"{bs.site_url}/slow?seconds=8&name={name}"}}],
            dispatch="pool",
        )
        for _ in range(jobs_at_once)
    ]
    for job in jobs:
        bs.harness.submit_direct(job)
    tasks = {bs.registered_task(job) for job in jobs}
    time.sleep(3)  # the pages' contexts are open and their requests pending: what a busy worker holds
    used = sum(process_tree_rss_mb(bs.stack.tasks.pid(task)) for task in tasks)
    for job in jobs:
        assert bs.finish(job["jobId"])[0]["status"] == "SUCCEEDED"
    return used / len(tasks)


def run(bs: BenchStack, quick: bool) -> Section:
    section = Section(
        "dispatch",
        "Task mode and pool mode side by side (the same trivial job, one local stack)",
        ".venv/bin/python -m bench --only dispatch" + (" --quick" if quick else ""),
    )
    poll("the warm pool task", lambda: bs.stack.service_task_arns(*_pool(bs)) or None, 60)
    runs = 3 if quick else 8
    latency: dict[str, list[dict[str, float]]] = {}
    for mode in MODES:
        latency_once(bs, mode)  # warms the Lambda environments (and, for the pool, its first context)
        latency[mode] = []
        for index in range(1, runs + 1):
            latency[mode].append(latency_once(bs, mode))
            progress(f"latency, {mode}", index, runs, f"{latency[mode][-1]['total']:.2f}s")
    table = Table("Trivial job, intake invoked directly, seconds", ["mode", "measure", *SPREAD_COLUMNS])
    for mode in MODES:
        table.rows.append(
            [mode, "intake → SUCCEEDED", *Spread.of([s["total"] for s in latency[mode]]).cells(2)]
        )
        table.rows.append(
            [
                mode,
                "claim → worker starts the job",
                *Spread.of([s["dispatch"] for s in latency[mode]]).cells(2),
            ]
        )
    section.tables.append(table)

    memory = {}
    for index, count in enumerate((1, 4, 8), 1):
        memory[count] = pool_memory(bs, count)
        progress("pool task memory", index, 3, f"{count} jobs: {memory[count]:.0f} MiB")
    mem = Table("Pool task memory (worker, driver and Chromium, RSS summed), MiB", ["jobs at once", "MiB"])
    mem.rows += [[str(count), f"{mib:.0f}"] for count, mib in memory.items()]
    section.tables.append(mem)

    _size_pool(bs, WARM_TASKS_FOR_THROUGHPUT)
    levels = [(1, 2), (4, 2), (16, 1)] if quick else [(1, 4), (4, 2), (16, 2)]
    rates: dict[str, dict[int, dict[str, Any]]] = {mode: {} for mode in MODES}
    for mode in MODES:
        for index, (keys, per_key) in enumerate(levels, 1):
            progress(f"throughput, {mode}", index, len(levels), f"{keys} lockKeys x {per_key} jobs")
            rates[mode][keys] = throughput(bs, keys, per_key, dispatch=mode)
            say(f"      {rates[mode][keys]['jobs_per_minute']:.1f} jobs/min")
    tput = Table(
        "Throughput: closed loops on concurrent lockKeys, jobs per minute",
        ["lockKeys", "task mode", "pool mode", "pool / task", "latency median s (task / pool)"],
    )
    for keys, _ in levels:
        task, pool = rates["task"][keys], rates["pool"][keys]
        tput.rows.append(
            [
                str(keys),
                f"{task['jobs_per_minute']:.1f}",
                f"{pool['jobs_per_minute']:.1f}",
                f"**{pool['jobs_per_minute'] / task['jobs_per_minute']:.1f}x**",
                f"{task['latency'].median:.2f} / {pool['latency'].median:.2f}",
            ]
        )
    section.tables.append(tput)

    pool_median = Spread.of([s["total"] for s in latency["pool"]]).median
    ratio = rates["pool"][16]["jobs_per_minute"] / rates["task"][16]["jobs_per_minute"]
    section.targets += [
        Target(
            f"pool mode, trivial job, intake → SUCCEEDED median ≤ {LATENCY_TARGET_SECONDS} s",
            f"{pool_median:.2f} s",
            pool_median <= LATENCY_TARGET_SECONDS,
        ),
        Target(
            f"pool throughput at 16 lockKeys ≥ {THROUGHPUT_RATIO_TARGET:.0f}x task mode's",
            f"{ratio:.1f}x",
            ratio >= THROUGHPUT_RATIO_TARGET,
        ),
    ]
    section.notes += [
        "RSS summed over processes counts shared pages once per process: an upper bound of the task's use.",
        "Throughput submits through the intake queue (1 s batching window), as bench/pipeline.py does.",
    ]
    section.data = {
        "latency": latency,
        "throughput": {
            m: {k: {**r, "latency": r["latency"].__dict__} for k, r in v.items()} for m, v in rates.items()
        },
        "memory_mib": memory,
    }
    return section


def _pool(bs: BenchStack) -> tuple[str, str]:
    return bs.harness.outputs["ClusterArn"], bs.harness.outputs["PoolServiceName"]


def _size_pool(bs: BenchStack, tasks: int) -> None:
    """Raise the pool's scalable target minimum (what PoolMinTasks sets) and wait for the tasks to run."""
    cluster, service = _pool(bs)
    bs.harness.client("application-autoscaling").register_scalable_target(
        ServiceNamespace="ecs",
        ResourceId=f"service/{cluster.rsplit('/', 1)[-1]}/{service}",
        ScalableDimension="ecs:service:DesiredCount",
        MinCapacity=tasks,
        MaxCapacity=tasks,
    )
    poll(
        f"{tasks} warm pool tasks",
        lambda: len(bs.stack.service_task_arns(cluster, service)) >= tasks or None,
        90,
    )
