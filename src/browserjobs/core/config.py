"""Settings read from the environment the template gives each function."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields

from browserjobs.core.contract import (
    DEFAULT_HEARTBEAT_SECONDS,
    DEFAULT_TIMEOUT_SECONDS,
    DISPATCH_MODES,
    TRACE_POLICIES,
)


class ConfigError(RuntimeError):
    """A required setting is missing or malformed: the function cannot start."""


# Attribute name -> environment variable, for the resource names (strings, no default).
_NAMES = {
    "jobs_table": "JOBS_TABLE",
    "locks_table": "LOCKS_TABLE",
    "interruptions_table": "INTERRUPTIONS_TABLE",
    "sessions_table": "SESSIONS_TABLE",
    "artifacts_bucket": "ARTIFACTS_BUCKET",
    "job_dlq_url": "JOB_DLQ_URL",
    "interrupt_queue_url": "INTERRUPT_QUEUE_URL",
    "state_machine_arn": "STATE_MACHINE_ARN",
    "cluster_arn": "CLUSTER_ARN",
}

# Attribute name -> (environment variable, default, smallest allowed value).
_NUMBERS = {
    "rate_limit_per_minute": ("RATE_LIMIT_PER_MINUTE", 10, 1),
    "rate_burst": ("RATE_BURST", 10, 1),
    "max_concurrent_tasks": ("MAX_CONCURRENT_TASKS", 10, 1),
    "lease_grace_seconds": ("LEASE_GRACE_SECONDS", 120, 0),
    "default_timeout_seconds": ("DEFAULT_TIMEOUT_SECONDS", DEFAULT_TIMEOUT_SECONDS, 10),
    "default_heartbeat_seconds": ("DEFAULT_HEARTBEAT_SECONDS", DEFAULT_HEARTBEAT_SECONDS, 2),
    "job_retention_days": ("JOB_RETENTION_DAYS", 90, 1),
    "lock_wait_initial_seconds": ("LOCK_WAIT_INITIAL_SECONDS", 1, 1),
    "lock_wait_max_delay_seconds": ("LOCK_WAIT_MAX_DELAY_SECONDS", 30, 1),
    "lock_wait_max_attempts": ("LOCK_WAIT_MAX_ATTEMPTS", 120, 1),
    # Added to a job's heartbeatSeconds for the browser task's heartbeat deadline: Fargate provisioning and
    # the image pull come before the worker can send its first heartbeat.
    "task_start_grace_seconds": ("TASK_START_GRACE_SECONDS", 90, 0),
    # A site's circuit breaker (browserjobs.core.site_health): consecutive site failures that open it, and
    # how long it stays open before one probe job may try the site again.
    "breaker_failure_threshold": ("BREAKER_FAILURE_THRESHOLD", 5, 1),
    "breaker_open_seconds": ("BREAKER_OPEN_SECONDS", 60, 1),
}


@dataclass(frozen=True)
class Settings:
    jobs_table: str = ""
    locks_table: str = ""
    interruptions_table: str = ""
    sessions_table: str = ""
    artifacts_bucket: str = ""
    job_dlq_url: str = ""
    interrupt_queue_url: str = ""
    state_machine_arn: str = ""
    cluster_arn: str = ""
    rate_limit_per_minute: int = 10
    rate_burst: int = 10
    max_concurrent_tasks: int = 10
    lease_grace_seconds: int = 120
    default_timeout_seconds: int = DEFAULT_TIMEOUT_SECONDS
    default_heartbeat_seconds: int = DEFAULT_HEARTBEAT_SECONDS
    job_retention_days: int = 90
    lock_wait_initial_seconds: int = 1
    lock_wait_max_delay_seconds: int = 30
    lock_wait_max_attempts: int = 120
    task_start_grace_seconds: int = 90
    breaker_failure_threshold: int = 5
    breaker_open_seconds: int = 60
    # How jobs that do not say run (docs/CONTRACTS.md, "Dispatch"): "task" or "pool"; and whether the stack
    # has a pool at all (PoolMaxTasks > 0): without one a pool job is rejected at intake.
    default_dispatch: str = "task"
    pool_enabled: bool = False
    # When a job that does not say keeps its Playwright trace (docs/CONTRACTS.md, "Job"): the DefaultTrace.
    default_trace: str = TRACE_POLICIES[0]

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        values: dict[str, object] = {attr: env.get(var, "") for attr, var in _NAMES.items()}
        for attr, (var, default, minimum) in _NUMBERS.items():
            values[attr] = _int_setting(env, var, default, minimum)
        dispatch = values["default_dispatch"] = env.get("DEFAULT_DISPATCH", "").strip() or "task"
        if dispatch not in DISPATCH_MODES:
            raise ConfigError(f"DEFAULT_DISPATCH must be one of {'|'.join(DISPATCH_MODES)}, got {dispatch!r}")
        trace = values["default_trace"] = env.get("DEFAULT_TRACE", "").strip() or TRACE_POLICIES[0]
        if trace not in TRACE_POLICIES:
            raise ConfigError(f"DEFAULT_TRACE must be one of {'|'.join(TRACE_POLICIES)}, got {trace!r}")
        values["pool_enabled"] = env.get("POOL_ENABLED", "").strip().lower() == "true"
        return cls(**values)  # type: ignore[arg-type]

    def require(self, *names: str) -> Settings:
        """Fail at cold start, naming the variables, when a function's resources are not configured."""
        known = {f.name for f in fields(self)}
        unknown = [n for n in names if n not in known]
        if unknown:
            raise ConfigError(f"unknown settings: {', '.join(unknown)}")
        missing = [_NAMES[n] for n in names if n in _NAMES and not getattr(self, n)]
        if missing:
            raise ConfigError(f"missing environment variables: {', '.join(missing)}")
        return self


def _int_setting(env: Mapping[str, str], var: str, default: int, minimum: int) -> int:
    raw = env.get(var, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise ConfigError(f"{var} must be an integer, got {raw!r}") from exc
    if value < minimum:
        raise ConfigError(f"{var} must be >= {minimum}, got {value}")
    return value
