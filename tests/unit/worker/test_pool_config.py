"""The pool worker's environment, its dispatch messages and its health check."""

from __future__ import annotations

import json
import os

import pytest

from browserjobs.core.config import ConfigError
from browserjobs.worker.health import STALE_SECONDS, check
from browserjobs.worker.pool_config import BadDispatch, Dispatch, PoolConfig

pytestmark = pytest.mark.unit

ENV = {
    "DISPATCH_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/dispatch",
    "JOBS_TABLE": "jobs",
    "LOCKS_TABLE": "locks",
    "INTERRUPTIONS_TABLE": "interruptions",
    "SESSIONS_TABLE": "sessions",
    "ARTIFACTS_BUCKET": "artifacts",
    "INTERRUPT_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/interrupts",
    "KMS_KEY_ID": "alias/key",
}


def message(**body: object) -> dict[str, str]:
    fields = {
        "jobId": "job-1",
        "taskToken": "token-1",
        "heartbeatSeconds": 30,
        "stateEnteredTime": "2026-12-04T09:00:00.123Z",
        "retryCount": 1,
        **body,
    }
    return {"MessageId": "m-1", "ReceiptHandle": "r-1", "Body": json.dumps(fields)}


def test_the_pool_needs_no_token_or_job_but_its_queue():
    config = PoolConfig.from_env(ENV)

    assert config.jobs_per_task == 4 and config.recycle_after_jobs == 50 and config.memory_ceiling_mb == 0
    assert config.drain_seconds == 100
    with pytest.raises(ConfigError, match="DISPATCH_QUEUE_URL"):
        PoolConfig.from_env({k: v for k, v in ENV.items() if k != "DISPATCH_QUEUE_URL"})
    with pytest.raises(ConfigError, match="POOL_JOBS_PER_TASK"):
        PoolConfig.from_env({**ENV, "POOL_JOBS_PER_TASK": "0"})


def test_a_dispatch_message_becomes_what_a_task_reads_from_its_environment():
    config = PoolConfig.from_env({**ENV, "TASK_ARN": "arn:aws:ecs:us-east-1:123456789012:task/c/abc"})

    worker = Dispatch.from_message(message()).worker_config(config)

    assert (worker.task_token, worker.job_id, worker.heartbeat_seconds) == ("token-1", "job-1", 30)
    assert worker.state_retry_count == 1 and worker.state_entered_at == pytest.approx(1796374800.123)
    assert worker.task_arn.endswith("/abc") and worker.resources.locks_table == "locks"


@pytest.mark.parametrize(
    "bad",
    [
        {"Body": "not json"},
        {"Body": json.dumps({"jobId": "job-1"})},
        message(heartbeatSeconds=0),
        message(retryCount=-1),
        message(stateEnteredTime="yesterday"),
        message(jobId=""),
    ],
)
def test_a_malformed_dispatch_message_is_refused_with_the_reason(bad):
    with pytest.raises(BadDispatch):
        Dispatch.from_message({"MessageId": "m", "ReceiptHandle": "r", **bad})


def test_the_memory_ceiling_defaults_to_three_quarters_of_the_task():
    from browserjobs.worker.pool import memory_ceiling_mb

    assert memory_ceiling_mb(0, 2048) == 1536
    assert memory_ceiling_mb(1000, 2048) == 1000  # POOL_MEMORY_CEILING_MB wins
    assert memory_ceiling_mb(0, None) == 0  # no limit known (a local run): no ceiling


def test_the_health_check_fails_on_a_missing_or_stale_file(tmp_path):
    path = tmp_path / "pool-health"
    assert "no health file" in (check(str(path), 1000.0) or "")

    path.write_text("x")
    written = os.stat(path).st_mtime

    assert check(str(path), written + 1) is None
    assert "ago" in (check(str(path), written + STALE_SECONDS + 1) or "")
