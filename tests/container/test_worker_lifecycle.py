"""Heartbeats, deadlines, crashes and interrupts: every job ends with exactly one callback."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
import uuid
from pathlib import Path

import pytest

from browserjobs.worker.errors import ExitCode
from tests.container.stack import parked, poll

pytestmark = pytest.mark.container


def test_heartbeats_keep_a_slow_step_alive_past_heartbeat_seconds(worker, stack, site):
    job_id = stack.put_job(
        "browse",
        {
            "steps": [
                {"goto": {"url": site.url("/slow/3500")}},
                {"wait_for": {"timeoutMs": 2500}},
            ]
        },
    )

    code, execution = worker.run(job_id, heartbeat_seconds=2)

    assert code == ExitCode.SUCCEEDED
    assert execution["status"] == "SUCCEEDED"  # 6 s of work against a 2 s heartbeat timeout
    beats = [name for name, _ in worker.calls if name == "SendTaskHeartbeat"]
    assert len(beats) >= 6  # one at once, then every max(1, 2 / 3) s
    assert [name for name, _ in worker.callbacks()] == ["SendTaskSuccess"]


def test_a_step_that_hangs_ends_at_its_own_timeout(worker, stack, site):
    job_id = stack.put_job(
        "browse",
        {
            "steps": [
                {"goto": {"url": site.url("/page")}},
                {"goto": {"url": site.url("/hang"), "timeoutMs": 1500}},
            ]
        },
    )

    started = time.monotonic()
    code, execution = worker.run(job_id)

    # A page that never loads is the site's failure (retried by the workflow), not the job's deadline.
    assert code == ExitCode.BY_ERROR["Site.Timeout"]
    assert execution["error"] == "Site.Timeout"
    _, cause = worker.failure()
    assert cause["step"] == {"index": 2, "type": "goto"}
    assert cause["message"].startswith("step 2 (goto) did not finish within 1500 ms")
    assert time.monotonic() - started < 30
    result = stack.result(job_id)
    assert [s["status"] for s in result["steps"]] == ["succeeded", "failed"]
    assert "failure-screenshot.png" in [a["name"] for a in result["artifacts"]]


def test_the_jobs_own_deadline_stops_a_step_that_would_outlive_it(worker, stack, site):
    # timeoutSeconds=10, minus the 5 s kept for reporting: the 60 s wait is cut after about 5 s.
    job_id = stack.put_job(
        "browse",
        parked(site.url("/page")),
        timeout_seconds=10,
    )

    started = time.monotonic()
    code, execution = worker.run(job_id)

    assert time.monotonic() - started < 15
    assert code == ExitCode.BY_ERROR["Worker.Timeout"]
    assert execution["error"] == "Worker.Timeout"
    _, cause = worker.failure()
    assert "deadline (timeoutSeconds=10)" in cause["message"] and cause["step"] == {
        "index": 2,
        "type": "wait_for",
    }
    assert stack.result(job_id)["steps"][-1]["status"] == "cancelled"


def _chromium_browser_pids() -> list[int]:
    """Chromium's browser process(es) started under this test process (not its renderers or helpers)."""
    parents = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
                cmdline = (entry / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            parents[int(entry.name)] = (int(stat.rsplit(")", 1)[1].split()[1]), cmdline)

    def descends_from_us(pid: int) -> bool:
        while pid in parents and pid > 1:
            pid = parents[pid][0]
            if pid == os.getpid():
                return True
        return False

    return [
        pid
        for pid, (_, cmd) in parents.items()
        if descends_from_us(pid) and b"chrom" in cmd[0] and not any(a.startswith(b"--type=") for a in cmd)
    ]


def test_a_browser_that_dies_mid_job_fails_it_as_browser_crashed(worker, stack, site):
    marker = f"/page?crash-{uuid.uuid4().hex}"
    job_id = stack.put_job(
        "browse",
        parked(site.url(marker), timeout_ms=30000),
    )

    def kill_chromium() -> None:
        poll(lambda: marker in site.requests, timeout=30, what="the page to load")
        for pid in poll(_chromium_browser_pids, timeout=10, what="Chromium's process"):
            os.kill(pid, signal.SIGKILL)

    killer = threading.Thread(target=kill_chromium)
    killer.start()
    started = time.monotonic()
    code, execution = worker.run(job_id)
    killer.join()

    assert code == ExitCode.BY_ERROR["Browser.Crashed"]
    assert execution["error"] == "Browser.Crashed"
    assert time.monotonic() - started < 25  # not the 30 s the step would have waited
    # What needs no browser is kept: the console and network log taken while the page lived.
    names = [a["name"] for a in stack.result(job_id)["artifacts"]]
    assert "failure-screenshot.png" not in names and {"console.json", "network.json"} <= set(names)


def _interrupt(stack, job_id: str, requested_by: str = "job-newer") -> None:
    stack.client("sqs").send_message(
        QueueUrl=stack.names["interrupts"],
        MessageBody=json.dumps({"jobId": job_id, "requestedBy": requested_by, "reason": "superseded"}),
    )


def test_an_interrupt_message_for_the_job_stops_it(worker, stack, site):
    job_id = stack.put_job(
        "browse",
        parked(site.url("/page")),
    )
    _interrupt(stack, job_id)

    started = time.monotonic()
    code, execution = worker.run(job_id)

    assert time.monotonic() - started < 30
    assert code == ExitCode.BY_ERROR["Job.Interrupted"]
    assert execution["error"] == "Job.Interrupted"
    _, cause = worker.failure()
    assert cause["requestedBy"] == "job-newer" and cause["reason"] == "superseded"
    queue = stack.client("sqs").get_queue_attributes(
        QueueUrl=stack.names["interrupts"],
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    assert queue == {"ApproximateNumberOfMessages": "0", "ApproximateNumberOfMessagesNotVisible": "0"}


def test_an_interruption_record_stops_the_job_even_without_its_message(worker, stack, site):
    job_id = stack.put_job(
        "browse",
        parked(site.url("/page")),
    )
    stack.client("dynamodb").put_item(
        TableName=stack.names["interruptions"],
        Item={"jobId": {"S": job_id}, "requestedBy": {"S": "job-other"}, "reason": {"S": "superseded"}},
    )

    code, _ = worker.run(job_id)

    assert code == ExitCode.BY_ERROR["Job.Interrupted"]
    assert worker.failure()[1]["requestedBy"] == "job-other"
