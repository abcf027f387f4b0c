"""The ECS task metadata the worker reads, and the job's deadline in a real run (the worker's environment
and its action registry: tests/unit/worker/test_config.py)."""

from __future__ import annotations

import json
import socket
import threading
import time
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from browserjobs.worker.ecs_metadata import task_identity
from browserjobs.worker.errors import ExitCode

pytestmark = pytest.mark.container

METADATA_ARN = "arn:aws:ecs:us-east-1:123456789012:task/browserjobs/fedcba9876543210fedcba9876543210"


class _Metadata:
    """The ECS task metadata endpoint v4, as Fargate serves it."""

    def __init__(self, pull_started_at: str) -> None:
        body = json.dumps(
            {
                "TaskARN": METADATA_ARN,
                "PullStartedAt": pull_started_at,
                "KnownStatus": "RUNNING",
                "Limits": {"CPU": 1, "Memory": 2048},
            }
        )

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                found = self.path == "/v4/abc/task"
                self.send_response(200 if found else 404)
                self.end_headers()
                self.wfile.write(body.encode() if found else b"")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.uri = f"http://127.0.0.1:{self.server.server_address[1]}/v4/abc"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def test_the_task_arn_and_start_come_from_the_metadata_endpoint():
    metadata = _Metadata("2026-11-22T04:00:06.202617438Z")
    try:
        identity = task_identity(metadata.uri, "arn:fallback")
    finally:
        metadata.server.shutdown()
    assert identity.task_arn == METADATA_ARN
    assert identity.started_at == datetime(2026, 11, 22, 4, 0, 6, 202617, tzinfo=UTC).timestamp()
    assert identity.memory_limit_mb == 2048  # task-metadata-endpoint-v4-fargate.html, Limits


def test_without_an_endpoint_the_local_task_arn_is_used_and_an_unreachable_one_costs_little():
    assert task_identity(None, "arn:local").task_arn == "arn:local"
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    started = time.monotonic()
    identity = task_identity(f"http://127.0.0.1:{port}/v4/x", "arn:local")
    assert identity.task_arn == "arn:local" and identity.started_at is None
    assert time.monotonic() - started < 5


def test_the_deadline_counts_from_when_ecs_began_the_task(worker, stack, site):
    """A task that spent 100 s being placed has already used up a 60 s job: it times out at once."""
    pulled = (datetime.now(UTC) - timedelta(seconds=100)).strftime("%Y-%m-%dT%H:%M:%S.%f000Z")
    metadata = _Metadata(pulled)
    job_id = stack.put_job(
        "browse",
        {"steps": [{"goto": {"url": site.url("/page")}}, {"wait_for": {"timeoutMs": 30000}}]},
        timeout_seconds=60,
    )
    try:
        code, _ = worker.run(job_id, ECS_CONTAINER_METADATA_URI_V4=metadata.uri, TASK_ARN="")
    finally:
        metadata.server.shutdown()

    assert code == ExitCode.BY_ERROR["Worker.Timeout"]
    assert "deadline (timeoutSeconds=60)" in worker.failure()[1]["message"]
    lock = stack.client("dynamodb").get_item(
        TableName=stack.names["locks"], Key={"pk": {"S": f"lock#tenant#{job_id}"}}
    )["Item"]
    assert lock["taskArn"]["S"] == METADATA_ARN


# ---------------------------------------------------------------- the deadline's anchor


def test_a_task_state_entered_long_ago_times_the_job_out_at_once(worker, stack, site):
    """Fargate took 100 s to place the task: a 60 s job is already past Step Functions' timeout."""
    entered = (datetime.now(UTC) - timedelta(seconds=100)).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    job_id = stack.put_job(
        "browse",
        {"steps": [{"goto": {"url": site.url("/page")}}, {"wait_for": {"timeoutMs": 30000}}]},
        timeout_seconds=60,
    )

    code, _ = worker.run(job_id, STATE_ENTERED_TIME=entered)

    assert code == ExitCode.BY_ERROR["Worker.Timeout"]
    assert "deadline (timeoutSeconds=60)" in worker.failure()[1]["message"]
