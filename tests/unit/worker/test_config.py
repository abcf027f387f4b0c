"""The worker's environment, its action registry and the sample events, and the deadline's anchor: no
browser (tests/container/test_worker_config.py runs the worker with its ECS task metadata)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from browserjobs.core.config import ConfigError, Settings
from browserjobs.core.schema import check_job
from browserjobs.worker import actions
from browserjobs.worker.config import WorkerConfig
from browserjobs.worker.lifecycle import deadline_anchor
from browserjobs.worker.stop import StopFlag
from tests.conftest import ROOT

pytestmark = pytest.mark.unit

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
