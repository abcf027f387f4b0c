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

from browserjobs.core.contract import MAX_CAUSE_CHARS
from browserjobs.worker.errors import WORKER_ERRORS, ErrorName, ExitCode, JobFailure
from browserjobs.worker.heartbeat import Heartbeat
from browserjobs.worker.stop import StopFlag
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


def test_heartbeats_stop_by_themselves_when_the_token_is_rejected(stack):
    task = stack.start_task(heartbeat_seconds=1, timeout_seconds=30)
    assert stack.finished(task)["status"] == "FAILED"  # no heartbeat for 1 s: the token is dead
    rejected: list[str] = []
    heartbeat = Heartbeat(
        stack.client("stepfunctions"), task.token, interval=0.1, on_rejected=rejected.append
    )

    with heartbeat:
        poll(lambda: rejected, timeout=10, what="the rejection")

    assert rejected == [heartbeat.rejected_by] and heartbeat.rejected_by in {"TaskTimedOut", "InvalidToken"}
    assert heartbeat.sent == 0


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

    assert code == ExitCode.BY_ERROR["Worker.Timeout"]
    assert execution["error"] == "Worker.Timeout"
    _, cause = worker.failure()
    assert cause["step"] == {"index": 2, "type": "goto"}
    assert cause["message"].startswith("step 2 (goto) did not finish within 1500 ms")
    assert time.monotonic() - started < 30
    result = stack.result(job_id)
    assert [s["status"] for s in result["steps"]] == ["succeeded", "failed"]
    assert "failure.png" in [a["name"] for a in result["artifacts"]]


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
    assert "failure.png" not in [a["name"] for a in stack.result(job_id)["artifacts"]]


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


def test_messages_for_other_jobs_go_back_at_once_unless_their_job_has_ended(stack):
    running = stack.put_job("browse", {"steps": []})
    ended = stack.put_job("browse", {"steps": []}, status="SUCCEEDED")
    this_job = stack.put_job("browse", {"steps": []})
    _interrupt(stack, running)
    _interrupt(stack, ended)
    _interrupt(stack, "job-with-no-record")
    sqs = stack.client("sqs")
    sqs.send_message(QueueUrl=stack.names["interrupts"], MessageBody="not json")
    stop = StopFlag()

    stack.interrupt_watcher(this_job, stop).poll_queue()

    assert stop.reason is None
    left = sqs.receive_message(
        QueueUrl=stack.names["interrupts"],
        MaxNumberOfMessages=10,
        VisibilityTimeout=0,
        AttributeNames=["ApproximateReceiveCount"],
    )["Messages"]
    assert [json.loads(m["Body"])["jobId"] for m in left] == [running]  # visible again at once
    assert left[0]["Attributes"]["ApproximateReceiveCount"] == "2"


def test_the_signal_handler_and_the_watcher_agree_on_who_stopped_first():
    stop = StopFlag()
    stop.request(ErrorName.JOB_INTERRUPTED, "first")
    stop.request(ErrorName.WORKER_INTERRUPTED, "second")
    assert stop.reason.error == ErrorName.JOB_INTERRUPTED and stop.reason.message == "first"


def test_a_cause_is_cut_to_fit_step_functions_and_stays_json():
    failure = JobFailure(ErrorName.WORKER_ERROR, "x" * 40_000, step={"index": 3, "type": "goto"})
    cause = failure.cause()
    assert len(cause) <= MAX_CAUSE_CHARS
    document = json.loads(cause)
    assert document["message"].endswith("[truncated]") and document["step"] == {"index": 3, "type": "goto"}


def test_every_error_name_has_its_own_exit_code():
    codes = [ExitCode.BY_ERROR[name] for name in WORKER_ERRORS]
    assert len(set(codes)) == len(WORKER_ERRORS) == len(ExitCode.BY_ERROR)
    assert not {ExitCode.SUCCEEDED, ExitCode.CONFIG_ERROR, ExitCode.CALLBACK_FAILED} & set(codes)
