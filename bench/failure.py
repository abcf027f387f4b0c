"""Failure detection on the local stack: how soon a dead or hung worker is noticed.

Crash: the worker's processes are killed (as by the OOM killer) while its job runs; measured from the kill
to the execution leaving RunBrowserTask (the crash hook's SendTaskFailure, through the ECS task-stopped
event). Hung: the worker is frozen (SIGSTOP: no heartbeats); measured from the freeze to the execution
leaving RunBrowserTask on States.HeartbeatTimeout, against the job's HeartbeatSeconds, and on to the end of
the timeout path (stop task, release, record, DLQ).
"""

from __future__ import annotations

import time

from bench.common import SPREAD_COLUMNS, Section, Spread, Table, Target, progress
from bench.stack import TASK_START_GRACE_SECONDS, BenchStack, epoch, first_event
from browserjobs.core.contract import ErrorName

CRASH_TARGET_SECONDS = 5.0
HEARTBEAT_SECONDS = 5


def crash_once(bs: BenchStack) -> dict[str, float]:
    job = bs.job("crash", [{"goto": {"url": f"{bs.site_url}/slow?seconds=60", "timeoutMs": 90000}}])
    job["heartbeatSeconds"] = 60
    bs.submit(job)
    task_arn = bs.registered_task(job)
    killed = time.time()
    bs.stack.crash_task(task_arn)
    record, execution = bs.finish(job["jobId"])
    assert record["status"] == "FAILED" and record["error"]["Error"] == ErrorName.WORKER_CRASHED, record
    history = bs.harness.history(job["jobId"])
    left = epoch(first_event(history, "TaskStateExited", "RunBrowserTask"))
    stopped = epoch(bs.harness.task(task_arn)["stoppedAt"])
    return {
        "crash_to_task_failed": left - killed,
        "crash_to_task_stopped": stopped - killed,
        "crash_to_execution_end": epoch(execution["stopDate"]) - killed,
    }


def hang_once(bs: BenchStack) -> dict[str, float]:
    job = bs.job("hung", [{"goto": {"url": f"{bs.site_url}/hang", "timeoutMs": 90000}}])
    job["heartbeatSeconds"] = HEARTBEAT_SECONDS
    bs.submit(job)
    task_arn = bs.registered_task(job)
    frozen = time.time()
    bs.stack.freeze_task(task_arn)
    record, execution = bs.finish(job["jobId"])
    assert record["status"] == "TIMED_OUT", record
    history = bs.harness.history(job["jobId"])
    timed_out = epoch(first_event(history, "TaskTimedOut"))
    return {
        "freeze_to_timeout": timed_out - frozen,
        "timeout_to_execution_end": epoch(execution["stopDate"]) - timed_out,
    }


def run(bs: BenchStack, quick: bool) -> Section:
    runs = 2 if quick else 4
    section = Section(
        "failure",
        "Failure detection (local stack, real worker and crash hook)",
        ".venv/bin/python -m bench --only failure" + (" --quick" if quick else ""),
    )
    crashes, hangs = [], []
    for index in range(1, runs + 1):
        crashes.append(crash_once(bs))
        progress("worker crash", index, runs, f"{crashes[-1]['crash_to_task_failed']:.2f}s to task failed")
    for index in range(1, runs + 1):
        hangs.append(hang_once(bs))
        progress("worker hung", index, runs, f"{hangs[-1]['freeze_to_timeout']:.2f}s to heartbeat timeout")
    table = Table("Seconds from the fault to the workflow noticing it", ["measurement", *SPREAD_COLUMNS])
    rows = [
        ("crash → task STOPPED (ECS event)", [c["crash_to_task_stopped"] for c in crashes]),
        (
            "crash → RunBrowserTask failed (Worker.Crashed, crash hook)",
            [c["crash_to_task_failed"] for c in crashes],
        ),
        (
            "crash → execution FAILED (release, record, DLQ done)",
            [c["crash_to_execution_end"] for c in crashes],
        ),
        (
            f"heartbeat stopped → States.HeartbeatTimeout (HeartbeatSeconds = {HEARTBEAT_SECONDS})",
            [h["freeze_to_timeout"] for h in hangs],
        ),
        (
            "heartbeat timeout → execution FAILED (stop task, release, DLQ)",
            [h["timeout_to_execution_end"] for h in hangs],
        ),
    ]
    spreads = {}
    for name, samples in rows:
        spreads[name] = Spread.of(samples)
        table.rows.append([name, *spreads[name].cells(2)])
    section.tables.append(table)
    crash = Spread.of([c["crash_to_task_failed"] for c in crashes])
    hang = Spread.of([h["freeze_to_timeout"] for h in hangs])
    section.notes += [
        "The worker heartbeats every HeartbeatSeconds / 3, so a hang is noticed between "
        f"{HEARTBEAT_SECONDS * 2 / 3:.1f} s and {HEARTBEAT_SECONDS} s after the last heartbeat, plus the "
        "interpreter's check; on AWS the same holds with the job's own heartbeatSeconds (default 60).",
        "On AWS a crash is noticed when ECS reports the task STOPPED (seconds to tens of seconds after "
        "the exit) plus EventBridge and the crash hook's cold or warm start; here the task stops at once.",
    ]
    section.targets.append(
        Target(
            f"crash noticed within {CRASH_TARGET_SECONDS:.0f} s",
            f"median {crash.median:.2f} s, max {crash.high:.2f} s",
            crash.high <= CRASH_TARGET_SECONDS,
        )
    )
    section.targets.append(
        Target(
            f"hang noticed within heartbeatSeconds ({HEARTBEAT_SECONDS} s) + TaskStartGraceSeconds "
            f"({TASK_START_GRACE_SECONDS} s) + 1 s",
            f"median {hang.median:.2f} s, max {hang.high:.2f} s",
            hang.high <= HEARTBEAT_SECONDS + TASK_START_GRACE_SECONDS + 1,
        )
    )
    section.data = {"crashes": crashes, "hangs": hangs}
    return section
