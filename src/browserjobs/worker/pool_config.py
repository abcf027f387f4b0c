"""The pool worker's environment (docs/CONTRACTS.md, "Pool worker") and its dispatch messages."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from browserjobs.core.config import ConfigError, Settings
from browserjobs.worker.config import REQUIRED as TASK_REQUIRED
from browserjobs.worker.config import WorkerConfig, egress_allow, non_negative_int, positive_int
from browserjobs.worker.ecs_metadata import epoch_seconds

# A pool task gets its jobs from the dispatch queue, not from RunTask overrides.
REQUIRED = ("DISPATCH_QUEUE_URL", *(name for name in TASK_REQUIRED if name not in ("TASK_TOKEN", "JOB_ID")))


@dataclass(frozen=True)
class PoolConfig:
    queue_url: str
    jobs_per_task: int
    recycle_after_jobs: int
    memory_ceiling_mb: int
    drain_seconds: int  # after SIGTERM: how long running jobs may go on (inside the task's stopTimeout)
    resources: Settings
    kms_key_id: str
    egress_allow: tuple[str, ...]
    chromium_path: str | None
    metadata_uri: str | None
    task_arn: str | None
    agent_uri: str | None  # ECS_AGENT_URI: the task scale-in protection endpoint
    health_file: str

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> PoolConfig:
        env = os.environ if environ is None else environ
        missing = [name for name in REQUIRED if not env.get(name)]
        if missing:
            raise ConfigError(f"missing environment variables: {', '.join(missing)}")
        return cls(
            queue_url=env["DISPATCH_QUEUE_URL"],
            jobs_per_task=positive_int(env, "POOL_JOBS_PER_TASK", 4),
            recycle_after_jobs=positive_int(env, "POOL_RECYCLE_AFTER_JOBS", 50),
            memory_ceiling_mb=non_negative_int(env, "POOL_MEMORY_CEILING_MB"),
            drain_seconds=positive_int(env, "POOL_DRAIN_SECONDS", 100),
            resources=Settings.from_env(env),
            kms_key_id=env["KMS_KEY_ID"],
            egress_allow=egress_allow(env),
            chromium_path=env.get("CHROMIUM_PATH") or None,
            metadata_uri=env.get("ECS_CONTAINER_METADATA_URI_V4") or None,
            task_arn=env.get("TASK_ARN") or None,
            agent_uri=env.get("ECS_AGENT_URI") or None,
            health_file=health_file(env),
        )


def health_file(env: Mapping[str, str]) -> str:
    """Where the worker says it is alive, for the container health check (worker/health.py)."""
    # TMPDIR is the task's scratch volume (the root filesystem is read-only)
    scratch = env.get("TMPDIR") or "/tmp"  # noqa: S108  # nosec B108
    return env.get("POOL_HEALTH_FILE") or os.path.join(scratch, "pool-health")


class BadDispatch(ValueError):
    """A dispatch message that is not what the workflow's RunPoolJob state sends."""


@dataclass(frozen=True)
class Dispatch:
    """One attempt of a job, as RunPoolJob sends it (statemachines/job.asl.json)."""

    message_id: str
    receipt_handle: str
    job_id: str
    task_token: str
    heartbeat_seconds: int
    state_entered_time: str
    retry_count: int

    @classmethod
    def from_message(cls, message: Mapping[str, Any]) -> Dispatch:
        try:
            body = json.loads(message["Body"])
            dispatch = cls(
                message_id=message["MessageId"],
                receipt_handle=message["ReceiptHandle"],
                job_id=str(body["jobId"]),
                task_token=str(body["taskToken"]),
                heartbeat_seconds=int(body["heartbeatSeconds"]),
                state_entered_time=str(body["stateEnteredTime"]),
                retry_count=int(body.get("retryCount") or 0),
            )
        except (KeyError, TypeError, ValueError) as error:
            raise BadDispatch(f"{type(error).__name__}: {error}") from None
        if dispatch.heartbeat_seconds < 1 or dispatch.retry_count < 0 or not dispatch.job_id:
            raise BadDispatch("heartbeatSeconds, retryCount or jobId out of range")
        if epoch_seconds(dispatch.state_entered_time) is None:
            raise BadDispatch(f"stateEnteredTime {dispatch.state_entered_time[:64]!r} is not a timestamp")
        return dispatch

    def worker_config(self, pool: PoolConfig) -> WorkerConfig:
        """What a task of its own would read from its environment for this attempt."""
        return WorkerConfig(
            task_token=self.task_token,
            job_id=self.job_id,
            heartbeat_seconds=self.heartbeat_seconds,
            resources=pool.resources,
            kms_key_id=pool.kms_key_id,
            egress_allow=pool.egress_allow,
            chromium_path=pool.chromium_path,
            metadata_uri=pool.metadata_uri,
            task_arn=pool.task_arn,
            state_entered_at=epoch_seconds(self.state_entered_time),
            state_retry_count=self.retry_count,
        )
