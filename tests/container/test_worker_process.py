"""`python -m browserjobs.worker` as its own process, against moto as a server: exit codes, SIGTERM, a real
token."""

from __future__ import annotations

import json
import signal
import time
import uuid

import pytest

from browserjobs.worker.errors import ExitCode
from tests.container.conftest import start_worker_process
from tests.container.stack import Task, parked, poll

pytestmark = pytest.mark.container

PROCESS_TIMEOUT = 90


def test_a_worker_process_keeps_a_real_task_alive_with_heartbeats_and_completes_it(server_stack, site):
    """The task's HeartbeatSeconds is 2; the job takes over 6 s; the execution must still succeed."""
    job_id = server_stack.put_job(
        "browse",
        {
            "steps": [
                {"goto": {"url": site.url("/slow/3000")}},
                {"wait_for": {"timeoutMs": 3000}},
                {"extract": {"name": "page", "fields": {"title": {"selector": "#title"}}}},
            ]
        },
    )
    task = server_stack.start_task(heartbeat_seconds=2, timeout_seconds=120)

    started = time.monotonic()
    process = start_worker_process(server_stack.worker_env(job_id, task, heartbeat_seconds=2))
    output, _ = process.communicate(timeout=PROCESS_TIMEOUT)
    elapsed = time.monotonic() - started

    assert process.returncode == ExitCode.SUCCEEDED, output
    assert elapsed > 2 * 2  # outlived two heartbeat timeouts
    execution = server_stack.finished(task)
    assert execution["status"] == "SUCCEEDED"
    summary = json.loads(execution["output"])
    assert summary["status"] == "SUCCEEDED" and summary["data"] == {"page": {"title": "Hello fixture"}}
    assert summary["resultUri"] == f"s3://{server_stack.names['bucket']}/jobs/{job_id}/result.json"
    logs = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    assert logs and all(line["jobId"] == job_id for line in logs)
    assert task.token not in output  # the token is a credential: never logged


def test_sigterm_mid_job_ends_it_as_worker_interrupted(server_stack, site):
    marker = f"/page?sigterm-{uuid.uuid4().hex}"
    job_id = server_stack.put_job(
        "browse",
        parked(site.url(marker), timeout_ms=120000),
    )
    task = server_stack.start_task()
    process = start_worker_process(server_stack.worker_env(job_id, task))
    poll(lambda: marker in site.requests, timeout=60, what="the worker to load the page")

    signalled = time.monotonic()
    process.send_signal(signal.SIGTERM)
    output, _ = process.communicate(timeout=PROCESS_TIMEOUT)

    assert process.returncode == ExitCode.BY_ERROR["Worker.Interrupted"], output
    assert time.monotonic() - signalled < 15  # well inside Fargate Spot's two minutes
    execution = server_stack.finished(task)
    assert execution["status"] == "FAILED" and execution["error"] == "Worker.Interrupted"
    result = server_stack.result(job_id)
    assert result["error"]["Error"] == "Worker.Interrupted" and "SIGTERM" in result["error"]["Cause"]
    assert result["steps"][-1]["status"] == "cancelled"  # stopped mid-step (loading the page, or waiting)


def test_a_worker_without_its_environment_says_so_and_fails_its_task(server_stack):
    task = server_stack.start_task()
    env = {**server_stack.worker_env("job-x", task), "JOBS_TABLE": "", "KMS_KEY_ID": ""}

    process = start_worker_process(env)
    output, _ = process.communicate(timeout=PROCESS_TIMEOUT)

    assert process.returncode == ExitCode.CONFIG_ERROR, output
    assert "missing environment variables: JOBS_TABLE, KMS_KEY_ID" in output
    execution = server_stack.finished(task)
    assert execution["status"] == "FAILED" and execution["error"] == "Worker.Error"


def test_a_token_step_functions_does_not_know_stops_the_job_with_its_own_exit_code(server_stack, site):
    marker = f"/page?unknown-token-{uuid.uuid4().hex}"
    job_id = server_stack.put_job(
        "browse",
        parked(site.url(marker)),
    )
    task = Task(execution_arn="", token="a-token-no-execution-issued")

    started = time.monotonic()
    process = start_worker_process(server_stack.worker_env(job_id, task))
    output, _ = process.communicate(timeout=PROCESS_TIMEOUT)

    assert process.returncode == ExitCode.CALLBACK_FAILED, output
    assert time.monotonic() - started < 30  # the first heartbeat's refusal stopped it, not the 60 s wait
    assert "heartbeats stop: Step Functions answered InvalidToken" in output
    assert "SendTaskFailure was not accepted" in output
