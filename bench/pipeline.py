"""The local pipeline as a user runs it: a trivial job from the intake queue to SUCCEEDED, and throughput.

Latency: one job at a time (goto the sample site's index page), from SendMessage to the execution's
SUCCEEDED, split by the timestamps the pipeline itself records (job record, execution, history events).
Throughput: closed loops on 1, 4 and 16 lockKeys at once (each key submits its next job when the previous
ended); jobs per second from the first SendMessage to the last job's end. Every job runs the real worker,
which starts its own Chromium (as a Fargate task would): on a 2-core machine that dominates.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from bench.common import SPREAD_COLUMNS, Section, Spread, Table, progress, say
from bench.stack import BenchStack, epoch, first_event
from browserjobs.core.contract import FINAL_JOB_STATUSES
from browserjobs.emulator.settings import FULL_CHROMIUM, worker_chromium

OBSERVE_SECONDS = 0.25
PHASES = [
    ("queue → job record (SQS poll, 1 s batching window, intake)", "queued"),
    ("job record → execution started (StartExecution)", "starting"),
    ("execution started → task started (CheckLock, Claim, RunTask)", "claiming"),
    ("task started → callback (worker process: Python, Chromium, page, S3, callback)", "task"),
    ("   of which the worker's own job time (durationMs)", "worker_job"),
    ("callback → execution SUCCEEDED (release and record)", "finishing"),
    ("total: SendMessage → SUCCEEDED", "total"),
]


def latency_once(bs: BenchStack) -> dict[str, float]:
    job = bs.job("latency")
    sent = bs.submit(job)
    record, execution = bs.finish(job["jobId"])
    assert record["status"] == "SUCCEEDED", record
    history = bs.harness.history(job["jobId"])
    created = epoch(record["createdAt"])
    started = epoch(execution["startDate"])
    submitted = epoch(first_event(history, "TaskSubmitted"))
    called_back = epoch(first_event(history, "TaskStateExited", "RunBrowserTask"))
    stopped = epoch(execution["stopDate"])
    return {
        "queued": created - sent,
        "starting": started - created,
        "claiming": submitted - started,
        "task": called_back - submitted,
        "worker_job": json.loads(record["summary"])["durationMs"] / 1000,
        "finishing": stopped - called_back,
        "total": stopped - sent,
    }


def _with_browser(bs: BenchStack, chromium: str, runs: int) -> list[dict[str, float]]:
    """Latency runs whose workers launch another browser (the runner reads CHROMIUM_PATH per task)."""
    before = os.environ.get("CHROMIUM_PATH")
    os.environ["CHROMIUM_PATH"] = chromium
    try:
        samples = []
        for index in range(1, runs + 1):
            samples.append(latency_once(bs))
            progress(f"trivial job, {Path(chromium).name}", index, runs, f"{samples[-1]['total']:.2f}s")
        return samples
    finally:
        if before is None:
            os.environ.pop("CHROMIUM_PATH", None)
        else:
            os.environ["CHROMIUM_PATH"] = before


def throughput(bs: BenchStack, keys: int, jobs_per_key: int, **fields: Any) -> dict[str, Any]:
    """Closed loops on `keys` lockKeys; one BatchGetItem per observation so watching costs little.
    `fields` go into every job (e.g. dispatch)."""
    ddb = bs.harness.client("dynamodb")
    table = bs.harness.outputs["JobsTableName"]
    lock_keys = [f"bench-tput-{keys}-{index}-{time.time_ns()}" for index in range(keys)]
    remaining = dict.fromkeys(lock_keys, jobs_per_key)
    in_flight: dict[str, tuple[str, float]] = {}  # jobId -> (lockKey, sent)
    done: list[dict[str, Any]] = []
    deadline = time.monotonic() + 120 + 30 * jobs_per_key * max(1, keys // 2)
    while remaining or in_flight:
        busy = {key for key, _ in in_flight.values()}
        for key in [k for k in remaining if k not in busy]:
            # A rate key of its own per job: this measures the pipeline, not the token bucket.
            job = bs.job(f"tput{keys}", lockKey=key, rateKey=f"{key}-{remaining[key]}", **fields)
            in_flight[job["jobId"]] = (key, bs.submit(job))
            remaining[key] -= 1
            if not remaining[key]:
                del remaining[key]
        response = ddb.batch_get_item(
            RequestItems={
                table: {
                    "Keys": [{"jobId": {"S": job_id}} for job_id in in_flight],
                    "ConsistentRead": True,
                    "ProjectionExpression": "jobId, #s, endedAt",
                    "ExpressionAttributeNames": {"#s": "status"},
                }
            }
        )
        for item in response["Responses"].get(table, []):
            status = item["status"]["S"]
            if status in FINAL_JOB_STATUSES:
                _, sent = in_flight.pop(item["jobId"]["S"])
                done.append({"status": status, "sent": sent, "ended": epoch(item["endedAt"]["S"])})
        if time.monotonic() > deadline:
            raise TimeoutError(f"throughput at {keys} keys: {len(in_flight)} jobs still running")
        time.sleep(OBSERVE_SECONDS)  # the observation interval of this poll loop (bounded above)
    failed = [d for d in done if d["status"] != "SUCCEEDED"]
    assert not failed, failed
    wall = max(d["ended"] for d in done) - min(d["sent"] for d in done)
    return {
        "keys": keys,
        "jobs": len(done),
        "wall_seconds": wall,
        "jobs_per_minute": len(done) / wall * 60,
        "latency": Spread.of([d["ended"] - d["sent"] for d in done]),
    }


def run(bs: BenchStack, quick: bool) -> Section:
    section = Section(
        "pipeline",
        "Local pipeline: end-to-end latency and throughput (real worker and Chromium)",
        ".venv/bin/python -m bench --only pipeline" + (" --quick" if quick else ""),
    )
    section.data = {}
    say("   first job after the stack started (Lambda environments start cold) ...")
    cold = latency_once(bs)
    runs = 3 if quick else 8
    samples = []
    for index in range(1, runs + 1):
        samples.append(latency_once(bs))
        progress("trivial job", index, runs, f"{samples[-1]['total']:.2f}s")
    table = Table(
        "Trivial job, one at a time: seconds per phase (warm Lambda environments)",
        ["phase", *SPREAD_COLUMNS, "first job (cold)"],
    )
    for label, key in PHASES:
        table.rows.append([label, *Spread.of([s[key] for s in samples]).cells(2), f"{cold[key]:.2f}"])
    section.tables.append(table)
    if worker_chromium() != str(FULL_CHROMIUM) and FULL_CHROMIUM.is_file():
        full = _with_browser(bs, str(FULL_CHROMIUM), runs)
        compare = Table(
            "The same trivial job with the full Chromium as the worker's browser (CHROMIUM_PATH), seconds",
            ["phase", *SPREAD_COLUMNS, f"{Path(worker_chromium()).name} (above), median"],
        )
        for label, key in PHASES:
            if key in {"task", "worker_job", "total"}:
                default = Spread.of([s[key] for s in samples]).median
                compare.rows.append([label, *Spread.of([s[key] for s in full]).cells(2), f"{default:.2f}"])
        section.tables.append(compare)
        section.data["latency_full_chromium"] = full

    levels = [(1, 2), (4, 2), (16, 1)] if quick else [(1, 4), (4, 2), (16, 1)]
    results = []
    for index, (keys, per_key) in enumerate(levels, 1):
        progress("throughput", index, len(levels), f"{keys} lockKeys x {per_key} jobs")
        results.append(throughput(bs, keys, per_key))
        say(f"      {results[-1]['jobs_per_minute']:.1f} jobs/min")
    tput = Table(
        "Throughput: closed loops on concurrent lockKeys",
        ["lockKeys", "jobs", "seconds", "jobs / minute", "latency median s", "latency p10-p90 s"],
    )
    for r in results:
        lat = r["latency"]
        tput.rows.append(
            [
                str(r["keys"]),
                str(r["jobs"]),
                f"{r['wall_seconds']:.1f}",
                f"**{r['jobs_per_minute']:.1f}**",
                f"{lat.median:.2f}",
                f"{lat.p10:.2f}-{lat.p90:.2f}",
            ]
        )
    section.tables.append(tput)
    section.notes += [
        "The 1 s batching window is the template's MaximumBatchingWindowInSeconds for the intake queue "
        "(Lambda's poller waits up to that long for more messages); the local poller honours it as AWS does.",
        "Each job's task is a fresh worker process that launches its own Chromium, as a Fargate task does; "
        "at 16 keys sixteen Chromiums share two cores, so throughput is bound by the machine, not the "
        "orchestration.",
    ]
    section.data |= {
        "latency": samples,
        "cold": cold,
        "throughput": [{**r, "latency": r["latency"].__dict__} for r in results],
    }
    return section
