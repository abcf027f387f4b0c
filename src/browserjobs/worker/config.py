"""The worker's environment (docs/CONTRACTS.md, "Worker"); everything else comes from the job record."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from browserjobs.core.config import ConfigError, Settings
from browserjobs.core.contract import DEFAULT_HEARTBEAT_SECONDS
from browserjobs.worker.ecs_metadata import epoch_seconds

REQUIRED = (
    "TASK_TOKEN",
    "JOB_ID",
    "JOBS_TABLE",
    "LOCKS_TABLE",
    "INTERRUPTIONS_TABLE",
    "SESSIONS_TABLE",
    "ARTIFACTS_BUCKET",
    "INTERRUPT_QUEUE_URL",
    "KMS_KEY_ID",
)


@dataclass(frozen=True)
class WorkerConfig:
    task_token: str
    job_id: str
    heartbeat_seconds: int
    resources: Settings
    kms_key_id: str
    egress_allow: tuple[str, ...] = ()
    chromium_path: str | None = None
    metadata_uri: str | None = None
    task_arn: str | None = None  # only where there is no ECS metadata endpoint (local runs)
    # Epoch seconds of the task state's $$.State.EnteredTime: where Step Functions' TimeoutSeconds starts.
    state_entered_at: float | None = None
    # $$.State.RetryCount: on a retry, EnteredTime is the first attempt's (lifecycle.deadline_anchor).
    state_retry_count: int = 0

    @property
    def heartbeat_interval(self) -> float:
        return max(1.0, self.heartbeat_seconds / 3)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> WorkerConfig:
        env = os.environ if environ is None else environ
        missing = [name for name in REQUIRED if not env.get(name)]
        if missing:
            raise ConfigError(f"missing environment variables: {', '.join(missing)}")
        return cls(
            task_token=env["TASK_TOKEN"],
            job_id=env["JOB_ID"],
            heartbeat_seconds=positive_int(env, "HEARTBEAT_SECONDS", DEFAULT_HEARTBEAT_SECONDS),
            resources=Settings.from_env(env),
            kms_key_id=env["KMS_KEY_ID"],
            egress_allow=egress_allow(env),
            chromium_path=env.get("CHROMIUM_PATH") or None,
            metadata_uri=env.get("ECS_CONTAINER_METADATA_URI_V4") or None,
            task_arn=env.get("TASK_ARN") or None,
            state_entered_at=_timestamp(env, "STATE_ENTERED_TIME"),
            state_retry_count=non_negative_int(env, "STATE_RETRY_COUNT"),
        )


def egress_allow(env: Mapping[str, str]) -> tuple[str, ...]:
    """EGRESS_ALLOW: comma-separated CIDRs and hosts the egress guard lets through."""
    return tuple(entry.strip() for entry in env.get("EGRESS_ALLOW", "").split(",") if entry.strip())


def positive_int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    if not raw.isdigit() or int(raw) < 1:
        raise ConfigError(f"{name} must be a positive integer, got {raw!r}")
    return int(raw)


def non_negative_int(env: Mapping[str, str], name: str) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return 0
    if not raw.isdigit():
        raise ConfigError(f"{name} must be a non-negative integer, got {raw[:64]!r}")
    return int(raw)


def _timestamp(env: Mapping[str, str], name: str) -> float | None:
    raw = env.get(name, "").strip()
    if not raw:
        return None
    value = epoch_seconds(raw)
    if value is None:
        raise ConfigError(f"{name} must be an ISO 8601 timestamp with a time zone, got {raw[:64]!r}")
    return value
