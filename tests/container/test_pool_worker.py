"""The pool worker (`WORKER_MODE=pool`) as its own process, against moto as a server: jobs from the dispatch
queue, several at once in one warm Chromium, each with exactly one callback; stale messages; SIGTERM."""

from __future__ import annotations

import datetime
import io
import json
import signal
import subprocess
import uuid
import zipfile
from typing import Any

import pytest

from browserjobs.core import pool_registry
from tests.container.conftest import start_worker_process
from tests.container.stack import TASK_ARN, Stack, Task, parked, poll

pytestmark = pytest.mark.container

PROCESS_TIMEOUT = 90


@pytest.fixture
def pool(server_stack: Stack) -> Any:
    """A dispatch queue and a way to start pool workers on it; every worker is stopped at the end."""
    queue = server_stack.client("sqs").create_queue(
        QueueName=f"dispatch-{uuid.uuid4().hex[:8]}", Attributes={"VisibilityTimeout": "60"}
    )["QueueUrl"]
    started: list[subprocess.Popen[str]] = []

    class Pool:
        queue_url = queue

        def start(self, **env: str) -> subprocess.Popen[str]:
            base = server_stack.worker_env("unused", Task("", ""))
            for per_job in ("TASK_TOKEN", "JOB_ID", "HEARTBEAT_SECONDS"):
                base.pop(per_job)
            started.append(
                start_worker_process({**base, "WORKER_MODE": "pool", "DISPATCH_QUEUE_URL": queue, **env})
            )
            return started[-1]

        def dispatch(self, job_id: str, task: Task, heartbeat_seconds: int = 60) -> str:
            """What the workflow's RunPoolJob state sends (statemachines/job.asl.json)."""
            body = {
                "jobId": job_id,
                "taskToken": task.token,
                "heartbeatSeconds": heartbeat_seconds,
                "stateEnteredTime": datetime.datetime.now(datetime.UTC).isoformat(timespec="milliseconds"),
                "retryCount": 0,
            }
            return server_stack.client("sqs").send_message(QueueUrl=queue, MessageBody=json.dumps(body))[
                "MessageId"
            ]

        def depth(self) -> int:
            attributes = server_stack.client("sqs").get_queue_attributes(
                QueueUrl=queue,
                AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
            )["Attributes"]
            return int(attributes["ApproximateNumberOfMessages"]) + int(
                attributes["ApproximateNumberOfMessagesNotVisible"]
            )

    yield Pool()
    for process in started:
        if process.poll() is None:
            process.kill()
            process.communicate(timeout=PROCESS_TIMEOUT)


def stop(process: subprocess.Popen[str]) -> str:
    process.send_signal(signal.SIGTERM)
    output, _ = process.communicate(timeout=PROCESS_TIMEOUT)
    return output


def token_closed(sfn: Any, token: str) -> bool:
    try:
        sfn.send_task_heartbeat(taskToken=token)
    except sfn.exceptions.ClientError:
        return True
    return False


def logs(output: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in output.splitlines() if line.startswith("{")]


def test_one_pool_worker_runs_several_jobs_at_once_in_one_browser_each_with_its_callback(
    server_stack, site, pool
):
    """Three jobs, two at a time: each page is a fresh context (no cookie from another job), each job its
    own result and callback, the registry empty and the queue drained afterwards."""
    jobs = []
    for n in range(3):
        job_id = server_stack.put_job(
            "browse",
            {
                "steps": [
                    {"goto": {"url": site.url(f"/slow/1500?pool-{n}")}},
                    {"extract": {"name": "page", "fields": {"title": {"selector": "#title"}}}},
                ]
            },
        )
        task = server_stack.start_task()
        message_id = pool.dispatch(job_id, task)
        jobs.append((job_id, task, message_id))
    process = pool.start(POOL_JOBS_PER_TASK="2")

    executions = [server_stack.finished(task, timeout=PROCESS_TIMEOUT) for _, task, _ in jobs]
    output = stop(process)

    assert process.returncode == 0, output
    for (job_id, task, message_id), execution in zip(jobs, executions, strict=True):
        assert execution["status"] == "SUCCEEDED", output
        assert json.loads(execution["output"])["data"] == {"page": {"title": "Hello fixture"}}
        result = server_stack.result(job_id)
        assert result["taskArn"] == TASK_ARN and result["status"] == "SUCCEEDED"
        lock = server_stack.client("dynamodb").get_item(
            TableName=server_stack.names["locks"], Key={"pk": {"S": f"lock#tenant#{job_id}"}}
        )["Item"]
        assert lock["dispatchId"]["S"] == message_id and lock["taskArn"]["S"] == TASK_ARN
        assert task.token not in output
    lines = logs(output)
    for job_id, _, _ in jobs:
        assert any(line.get("jobId") == job_id and "job succeeded" in line["message"] for line in lines)
    assert sum("ready" in line["message"] for line in lines) == 1  # one Chromium, launched once
    assert pool.depth() == 0
    registry = pool_registry.held_jobs(server_stack.client("dynamodb"), server_stack.names["locks"], TASK_ARN)
    assert registry == {}


def test_each_pool_job_keeps_its_own_evidence_from_its_own_context(server_stack, site, pool):
    """Two jobs at once in one warm Chromium: the failing one gets its trace, screenshot, console and
    network log, with only its own requests in them; the other, trace always, only its trace."""
    failing_url, passing_url = site.url("/page?pool-fails"), site.url("/page?pool-passes")
    failing = server_stack.put_job(
        "browse",
        {"steps": [{"goto": {"url": failing_url}}, {"click": {"selector": "#never", "timeoutMs": 2000}}]},
    )
    passing = server_stack.put_job("browse", {"steps": [{"goto": {"url": passing_url}}]}, trace="always")
    tasks = [server_stack.start_task(), server_stack.start_task()]
    for job_id, task in zip((failing, passing), tasks, strict=True):
        pool.dispatch(job_id, task)
    process = pool.start(POOL_JOBS_PER_TASK="2")

    executions = [server_stack.finished(task, timeout=PROCESS_TIMEOUT) for task in tasks]
    output = stop(process)

    assert [e["status"] for e in executions] == ["FAILED", "SUCCEEDED"], output
    assert json.loads(server_stack.result(failing)["error"]["Cause"])["artifacts"] == [
        {"name": "failure-screenshot.png", "kind": "failure-screenshot"},
        {"name": "console.json", "kind": "console"},
        {"name": "network.json", "kind": "network"},
        {"name": "trace.zip", "kind": "trace"},
    ]
    network = json.loads(server_stack.artifact(failing, "network.json")["Body"].read())
    assert {r["url"] for r in network["requests"]} == {failing_url}
    passed = server_stack.result(passing)
    assert [(a["name"], a["kind"]) for a in passed["artifacts"]] == [("trace.zip", "trace")]
    with zipfile.ZipFile(io.BytesIO(server_stack.artifact(passing, "trace.zip")["Body"].read())) as trace:
        recorded = trace.read("trace.trace").decode()
    assert passing_url in recorded and failing_url not in recorded


def test_a_message_whose_attempt_is_over_is_dropped_unrun(server_stack, site, pool):
    """The execution stopped (its token closed) before a worker took the message: the job must not run."""
    marker = f"/page?stale-{uuid.uuid4().hex}"
    job_id = server_stack.put_job("browse", {"steps": [{"goto": {"url": site.url(marker)}}]})
    task = server_stack.start_task()
    sfn = server_stack.client("stepfunctions")
    sfn.stop_execution(executionArn=task.execution_arn)
    poll(lambda: token_closed(sfn, task.token), timeout=30, what="the stopped execution's token to close")
    pool.dispatch(job_id, task)
    process = pool.start()

    poll(lambda: pool.depth() == 0, timeout=60, what="the stale message to be deleted")
    output = stop(process)

    assert marker not in site.requests
    assert any("attempt is over" in line["message"] for line in logs(output)), output


def test_sigterm_drains_running_jobs_then_interrupts_the_rest_and_takes_no_new_work(server_stack, site, pool):
    marker = f"/page?drain-{uuid.uuid4().hex}"
    job_id = server_stack.put_job("browse", parked(site.url(marker), timeout_ms=120000))
    task = server_stack.start_task()
    pool.dispatch(job_id, task)
    process = pool.start(POOL_DRAIN_SECONDS="2")
    poll(lambda: marker in site.requests, timeout=60, what="the pool worker to load the page")
    registry = pool_registry.held_jobs(server_stack.client("dynamodb"), server_stack.names["locks"], TASK_ARN)
    assert registry == {job_id: task.token}  # what the crash hook would fail if the task died now

    output = stop(process)
    later = server_stack.start_task()
    pool.dispatch(server_stack.put_job("browse", {"steps": []}), later)

    assert process.returncode == 0, output
    execution = server_stack.finished(task)
    assert execution["status"] == "FAILED" and execution["error"] == "Worker.Interrupted"
    assert "SIGTERM" in server_stack.result(job_id)["error"]["Cause"]
    assert pool.depth() == 1  # the message sent after the drain waits for another worker


def test_the_warm_browser_is_relaunched_after_its_share_of_jobs(server_stack, site, pool):
    """POOL_RECYCLE_AFTER_JOBS=2, one job at a time: the third job gets a new Chromium."""
    tasks = []
    for n in range(3):
        job_id = server_stack.put_job(
            "browse", {"steps": [{"goto": {"url": site.url(f"/page?recycle-{n}")}}]}
        )
        tasks.append(server_stack.start_task())
        pool.dispatch(job_id, tasks[-1])
    process = pool.start(POOL_JOBS_PER_TASK="1", POOL_RECYCLE_AFTER_JOBS="2")

    executions = [server_stack.finished(task, timeout=PROCESS_TIMEOUT) for task in tasks]
    output = stop(process)

    assert [execution["status"] for execution in executions] == ["SUCCEEDED"] * 3, output
    relaunches = [line for line in logs(output) if "will be relaunched" in line["message"]]
    assert len(relaunches) == 1 and "POOL_RECYCLE_AFTER_JOBS=2" in relaunches[0]["message"]


def test_a_message_taken_by_a_worker_killed_in_its_long_poll_comes_back_within_seconds(
    server_stack, site, pool, tmp_path
):
    """A worker killed while long-polling leaves its poll open on the queue's side, which then takes the
    next message for nobody. The message must come back to another worker within seconds (the receive's
    own VisibilityTimeout), not after the queue's 60 s: by then the job's heartbeat deadline may be over."""
    health = tmp_path / "first-health"
    first = pool.start(POOL_HEALTH_FILE=str(health))
    # The file first appears a second after the receive loop starts: inside its first 10 s long poll.
    poll(health.exists, timeout=60, what="the first worker's receive loop")
    first.kill()
    first.communicate(timeout=PROCESS_TIMEOUT)
    job_id = server_stack.put_job("browse", {"steps": [{"goto": {"url": site.url("/page?after-kill")}}]})
    task = server_stack.start_task()
    pool.dispatch(job_id, task)
    poll(lambda: _visible(server_stack, pool) == 0, timeout=5, what="the dead worker's open poll to take it")

    second = pool.start()

    execution = server_stack.finished(task, timeout=40)  # the queue's own 60 s visibility would fail this
    stop(second)
    assert execution["status"] == "SUCCEEDED"


def _visible(server_stack: Stack, pool: Any) -> int:
    return int(
        server_stack.client("sqs").get_queue_attributes(
            QueueUrl=pool.queue_url, AttributeNames=["ApproximateNumberOfMessages"]
        )["Attributes"]["ApproximateNumberOfMessages"]
    )
