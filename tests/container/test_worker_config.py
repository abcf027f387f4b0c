"""The worker's environment, the ECS task metadata it reads, and its action registry."""

from __future__ import annotations

import json
import re
import socket
import threading
import time
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from browserjobs.core.config import ConfigError, Settings
from browserjobs.core.schema import check_job
from browserjobs.worker import actions
from browserjobs.worker.config import WorkerConfig
from browserjobs.worker.ecs_metadata import task_identity
from browserjobs.worker.errors import WORKER_ERRORS, ExitCode
from browserjobs.worker.lifecycle import deadline_anchor
from browserjobs.worker.stop import StopFlag
from tests.container.conftest import ROOT

pytestmark = pytest.mark.container

METADATA_ARN = "arn:aws:ecs:us-east-1:123456789012:task/browserjobs/fedcba9876543210fedcba9876543210"
FULL_ENV = {
    "TASK_TOKEN": "t",
    "JOB_ID": "j",
    "JOBS_TABLE": "a",
    "LOCKS_TABLE": "b",
    "INTERRUPTIONS_TABLE": "c",
    "SESSIONS_TABLE": "d",
    "ARTIFACTS_BUCKET": "e",
    "INTERRUPT_QUEUE_URL": "f",
    "KMS_KEY_ID": "g",
}


def test_every_missing_variable_is_named_at_once():
    with pytest.raises(
        ConfigError, match="missing environment variables: TASK_TOKEN, LOCKS_TABLE, KMS_KEY_ID"
    ):
        WorkerConfig.from_env(
            {k: v for k, v in FULL_ENV.items() if k not in {"TASK_TOKEN", "LOCKS_TABLE", "KMS_KEY_ID"}}
        )


@pytest.mark.parametrize(("heartbeat", "interval"), [("", 20.0), ("60", 20.0), ("9", 3.0), ("2", 1.0)])
def test_heartbeats_go_out_at_a_third_of_heartbeat_seconds_and_at_least_every_second(heartbeat, interval):
    assert WorkerConfig.from_env({**FULL_ENV, "HEARTBEAT_SECONDS": heartbeat}).heartbeat_interval == interval


def test_malformed_settings_are_refused():
    with pytest.raises(ConfigError, match="HEARTBEAT_SECONDS must be a positive integer"):
        WorkerConfig.from_env({**FULL_ENV, "HEARTBEAT_SECONDS": "0"})
    config = WorkerConfig.from_env({**FULL_ENV, "EGRESS_ALLOW": " 127.0.0.1, 10.0.0.0/8 ,,"})
    assert config.egress_allow == ("127.0.0.1", "10.0.0.0/8")


class _Metadata:
    """The ECS task metadata endpoint v4, as Fargate serves it."""

    def __init__(self, pull_started_at: str) -> None:
        body = json.dumps(
            {"TaskARN": METADATA_ARN, "PullStartedAt": pull_started_at, "KnownStatus": "RUNNING"}
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


def test_every_action_has_a_module_and_a_schema():
    schemas = sorted(
        p.name.removesuffix(".schema.json") for p in (ROOT / "schemas" / "actions").glob("*.json")
    )
    assert actions.registered() == schemas == ["browse", "form_login"]
    for name in schemas:
        assert callable(actions.load_action(name))
        assert json.loads(Path(ROOT / "schemas" / "actions" / f"{name}.schema.json").read_text())[
            "$id"
        ].endswith(name)


@pytest.mark.parametrize("name", ["worker-browse", "worker-form-login"])
def test_the_sample_jobs_are_valid_jobs_with_valid_params(name):
    job = check_job(json.loads((ROOT / "events" / f"{name}.json").read_text()), Settings())
    assert actions.load_action(job["action"])


def test_the_sample_interrupt_message_interrupts_its_job(stack):
    body = (ROOT / "events" / "worker-interrupt-message.json").read_text()
    message = json.loads(body)
    stack.client("sqs").send_message(QueueUrl=stack.names["interrupts"], MessageBody=body)
    stop = StopFlag()

    stack.interrupt_watcher(message["jobId"], stop).poll_queue()

    assert stop.reason is not None and stop.reason.error == "Job.Interrupted"
    assert stop.reason.details == {"requestedBy": message["requestedBy"], "reason": message["reason"]}


def test_the_worker_reports_exactly_the_error_names_of_the_contract():
    contract = (
        (ROOT / "docs" / "CONTRACTS.md")
        .read_text()
        .split("SendTaskFailure error names")[1]
        .split("## DLQ")[0]
    )
    named = set(re.findall(r"`((?:Job|Worker|Site|Browser)\.[A-Za-z]+)`", contract))
    result_schema = json.loads((ROOT / "schemas" / "result.schema.json").read_text())
    assert named - {"Worker.Crashed"} == {str(e) for e in WORKER_ERRORS}  # Worker.Crashed: the crash hook's
    assert set(result_schema["properties"]["error"]["properties"]["Error"]["enum"]) == {
        str(e) for e in WORKER_ERRORS
    }


# ---------------------------------------------------------------- the deadline's anchor


def test_the_deadline_counts_from_the_task_states_entered_time_first():
    """Step Functions' TimeoutSeconds runs from the task state's EnteredTime, before Fargate placed the
    task: that time (STATE_ENTERED_TIME) wins over PullStartedAt, which wins over the process start."""
    now_epoch, now_monotonic = 1_800_000_000.0, 5_000.0
    entered, pulled = now_epoch - 90, now_epoch - 30
    assert deadline_anchor(now_monotonic, now_epoch, entered, pulled) == (
        now_monotonic - 90,
        "STATE_ENTERED_TIME",
    )
    assert deadline_anchor(now_monotonic, now_epoch, None, pulled) == (now_monotonic - 30, "PullStartedAt")
    assert deadline_anchor(now_monotonic, now_epoch, None, None) == (now_monotonic, "process start")
    # A retry runs the state again without entering it: EnteredTime is the first attempt's, not this one's.
    assert deadline_anchor(now_monotonic, now_epoch, entered, pulled, retry_count=1) == (
        now_monotonic - 30,
        "PullStartedAt",
    )
    assert deadline_anchor(now_monotonic, now_epoch, entered, None, retry_count=2) == (
        now_monotonic,
        "process start",
    )
    # A clock ahead of this one never moves the deadline past the process start's.
    assert deadline_anchor(now_monotonic, now_epoch, now_epoch + 5, None) == (
        now_monotonic,
        "STATE_ENTERED_TIME",
    )


def test_state_entered_time_is_read_as_step_functions_writes_it():
    config = WorkerConfig.from_env({**FULL_ENV, "STATE_ENTERED_TIME": "2026-12-02T21:38:24.123Z"})
    assert config.state_entered_at == datetime(2026, 12, 2, 21, 38, 24, 123000, tzinfo=UTC).timestamp()
    assert WorkerConfig.from_env(FULL_ENV).state_entered_at is None
    with pytest.raises(ConfigError, match="STATE_ENTERED_TIME must be an ISO 8601 timestamp"):
        WorkerConfig.from_env({**FULL_ENV, "STATE_ENTERED_TIME": "yesterday"})
    assert WorkerConfig.from_env({**FULL_ENV, "STATE_RETRY_COUNT": "2"}).state_retry_count == 2
    assert WorkerConfig.from_env(FULL_ENV).state_retry_count == 0
    with pytest.raises(ConfigError, match="STATE_RETRY_COUNT must be a non-negative integer"):
        WorkerConfig.from_env({**FULL_ENV, "STATE_RETRY_COUNT": "-1"})


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
