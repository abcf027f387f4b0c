"""Heartbeats, interrupts, stop reasons and exit codes without a browser (tests/container/
test_worker_lifecycle.py runs them in real jobs)."""

from __future__ import annotations

import json

import pytest

from browserjobs.core.contract import MAX_CAUSE_CHARS
from browserjobs.worker.errors import WORKER_ERRORS, ErrorName, ExitCode, JobFailure
from browserjobs.worker.heartbeat import Heartbeat
from browserjobs.worker.stop import StopFlag
from tests.container.stack import poll

pytestmark = pytest.mark.unit


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


def _interrupt(stack, job_id: str, requested_by: str = "job-newer") -> None:
    stack.client("sqs").send_message(
        QueueUrl=stack.names["interrupts"],
        MessageBody=json.dumps({"jobId": job_id, "requestedBy": requested_by, "reason": "superseded"}),
    )


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
