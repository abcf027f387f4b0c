"""`python -m browserjobs.worker`: one job, from its record to exactly one callback and an exit code that
says how.

1. read the environment, the job record and the task's identity; register the task ARN on lock and record;
2. heartbeat in the background, watch for interrupts and SIGTERM;
3. validate params, run the action in a fresh browser context (bounded by the job's own deadline);
4. write result.json (and artifacts) to S3; send SendTaskSuccess or SendTaskFailure; exit.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from browserjobs.core import site_health
from browserjobs.core.clock import iso_ms
from browserjobs.core.config import ConfigError, Settings
from browserjobs.core.schema import action_schema_path, schema_errors
from browserjobs.core.sessions import SessionStore
from browserjobs.worker import logs
from browserjobs.worker.actions import load_action
from browserjobs.worker.artifacts import ArtifactStore
from browserjobs.worker.aws import AwsClients
from browserjobs.worker.callback import TaskCallback
from browserjobs.worker.config import WorkerConfig
from browserjobs.worker.ecs_metadata import task_identity
from browserjobs.worker.egress import EgressPolicy
from browserjobs.worker.errors import ErrorName, ExitCode, JobFailure
from browserjobs.worker.heartbeat import Heartbeat
from browserjobs.worker.interrupts import InterruptWatcher
from browserjobs.worker.jobs import Job, load_job, register_task
from browserjobs.worker.run import BrowserSource, LaunchedBrowser, RunOutcome, RunSettings, run_in_browser
from browserjobs.worker.stop import StopFlag

logger = logging.getLogger(__name__)

# Left of the job's timeoutSeconds for closing the browser, writing result.json and the callback.
FINISH_RESERVE_SECONDS = 5
MAX_SUMMARY_DATA_BYTES = 16 * 1024


def main() -> int:
    env = os.environ
    logs.configure(env.get("JOB_ID"))
    if env.get("TMPDIR"):  # on the task's scratch volume, which starts empty: Chromium and tempfile need it
        Path(env["TMPDIR"]).mkdir(parents=True, exist_ok=True)
    aws = AwsClients()
    try:
        config = WorkerConfig.from_env(env)
        policy = EgressPolicy(config.egress_allow)
    except ConfigError as error:
        logger.error("cannot start: %s", error)
        if env.get("TASK_TOKEN"):
            TaskCallback(aws("stepfunctions"), env["TASK_TOKEN"]).fail(
                JobFailure(ErrorName.WORKER_ERROR, f"the worker is misconfigured: {error}")
            )
        return ExitCode.CONFIG_ERROR
    stop = StopFlag()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(
            signum,
            lambda number, _frame: stop.request(
                ErrorName.WORKER_INTERRUPTED,
                f"{signal.Signals(number).name}: the task is being stopped "
                "(e.g. a Fargate Spot interruption)",
            ),
        )
    return run_job(config, policy, aws, stop)


def run_job(config: WorkerConfig, policy: EgressPolicy, aws: AwsClients, stop: StopFlag) -> int:
    """The per-job task: its own Chromium, its identity from the task metadata endpoint."""
    identity = task_identity(config.metadata_uri, config.task_arn)
    attempt = Attempt(config, identity.task_arn, identity.started_at, LaunchedBrowser(config.chromium_path))
    return run_attempt(attempt, policy, aws, stop, asyncio.run)


@dataclass(frozen=True)
class Attempt:
    """One attempt of one job in this process, as the per-job task reads it from its environment and a pool
    worker from its dispatch message (worker/pool.py)."""

    config: WorkerConfig
    task_arn: str | None
    pull_started_at: float | None  # epoch seconds: ECS's PullStartedAt of a task started for this attempt
    browsers: BrowserSource
    job: Job | None = (
        None  # loaded and registered already (a pool worker does it before deleting the message)
    )


def run_attempt(
    attempt: Attempt,
    policy: EgressPolicy,
    aws: AwsClients,
    stop: StopFlag,
    run_async: Callable[[Coroutine[Any, Any, RunOutcome]], RunOutcome],
) -> int:
    """From the job record to exactly one callback; returns the exit code that says how it ended.

    `run_async` runs the browser part: asyncio.run for a task of its own, the pool's event loop (which
    holds its warm browser) for a pool worker.
    """
    config = attempt.config
    started_ms, started = time.time_ns() // 1_000_000, time.monotonic()
    anchor, source = deadline_anchor(
        started,
        started_ms / 1000,
        config.state_entered_at,
        attempt.pull_started_at,
        retry_count=config.state_retry_count,
    )
    logger.info("the job's deadline counts from %s, %.1f s before this process", source, started - anchor)
    resources = config.resources
    artifacts = ArtifactStore(aws("s3"), resources.artifacts_bucket, config.job_id, config.kms_key_id)

    def token_rejected(code: str) -> None:
        error = ErrorName.WORKER_TIMEOUT if code == "TaskTimedOut" else ErrorName.WORKER_ERROR
        stop.request(error, f"Step Functions no longer accepts this task ({code})")

    heartbeat = Heartbeat(aws("stepfunctions"), config.task_token, config.heartbeat_interval, token_rejected)
    watcher = InterruptWatcher(
        sqs=aws("sqs"),
        ddb=aws("dynamodb"),
        queue_url=resources.interrupt_queue_url,
        interruptions_table=resources.interruptions_table,
        jobs_table=resources.jobs_table,
        job_id=config.job_id,
        stop=stop,
    )
    # Leaving this block joins the watcher, whose long poll may take a moment: only after the callback.
    with heartbeat, watcher:
        job, outcome = _run(attempt, policy, aws, stop, anchor, artifacts, run_async)
        if job is not None:
            _record_site_health(aws("dynamodb"), resources, job, outcome)
        duration_ms = round((time.monotonic() - started) * 1000)
        result = _result(config.job_id, job, attempt.task_arn, started_ms, duration_ms, outcome, artifacts)
        try:
            if _loaded_nothing(outcome):
                logger.info("the site's breaker is open: result.json keeps the last attempt that ran")
            else:
                artifacts.write_result(result)
        except Exception as error:
            logger.exception("result.json was not written")
            outcome.failure = outcome.failure or JobFailure(
                ErrorName.WORKER_ERROR, f"result.json not written: {error}"
            )
        heartbeat.stop()
        return _report(config, aws, outcome, artifacts, attempt.task_arn, duration_ms)


def deadline_anchor(
    started: float,
    started_epoch: float,
    state_entered_at: float | None,
    pull_started_at: float | None,
    *,
    retry_count: int = 0,
) -> tuple[float, str]:
    """Where the job's timeoutSeconds starts, on the monotonic clock, and what it was taken from.

    Step Functions' TimeoutSeconds counts from the task state's start ($$.State.EnteredTime, AWS Step
    Functions Developer Guide, "Context object"), before RunTask and Fargate's provisioning:
    STATE_ENTERED_TIME first, so Worker.Timeout (with result.json) comes before States.Timeout. But a
    Retry runs the state again without entering it again: EnteredTime stays the first attempt's while
    $$.State.RetryCount grows and each attempt has its own TimeoutSeconds (moto's interpreter, derived
    from AWS's behaviour, does the same: execute_state.py sets EnteredTime once, RetryCount per retry).
    So on a retry (STATE_RETRY_COUNT > 0) EnteredTime is not used: ECS's PullStartedAt (later than the
    attempt's start by RunTask and the placement), else the process start. A time ahead of this host's
    clock never moves the deadline past the process start's.
    """
    candidates = [("PullStartedAt", pull_started_at)]
    if retry_count == 0:
        candidates.insert(0, ("STATE_ENTERED_TIME", state_entered_at))
    for source, epoch in candidates:
        if epoch is not None:
            return started - max(0.0, started_epoch - epoch), source
    return started, "process start"


def _run(
    attempt: Attempt,
    policy: EgressPolicy,
    aws: AwsClients,
    stop: StopFlag,
    anchor: float,
    artifacts: ArtifactStore,
    run_async: Callable[[Coroutine[Any, Any, RunOutcome]], RunOutcome],
) -> tuple[Job | None, RunOutcome]:
    """The job from its record to the end of its action; any failure is in the outcome, classified."""
    config, task_arn = attempt.config, attempt.task_arn
    resources = config.resources
    job: Job | None = attempt.job
    try:
        if job is None:
            job = load_job(aws("dynamodb"), resources.jobs_table, config.job_id)
            if task_arn:
                register_task(
                    aws("dynamodb"),
                    locks_table=resources.locks_table,
                    jobs_table=resources.jobs_table,
                    job=job,
                    task_arn=task_arn,
                    lease_grace_seconds=resources.lease_grace_seconds,  # LEASE_GRACE_SECONDS, as the claim's
                )
            else:
                logger.warning("no task ARN (no ECS metadata endpoint, no TASK_ARN): nothing registered")
        action = load_action(job.action)
        _check_params(job)
        _check_breaker(aws("dynamodb"), resources.locks_table, job)
        if stop.reason is not None:
            raise stop.reason
        settings = RunSettings(
            policy=policy,
            browsers=attempt.browsers,
            aws=aws,
            deadline=anchor + job.timeout_seconds - FINISH_RESERVE_SECONDS,
            attempt=config.state_retry_count,
        )
        sessions = SessionStore(
            s3=aws("s3"),
            ddb=aws("dynamodb"),
            bucket=resources.artifacts_bucket,
            table=resources.sessions_table,
            kms_key_id=config.kms_key_id,
        )
        return job, run_async(
            run_in_browser(job, action, settings=settings, artifacts=artifacts, sessions=sessions, stop=stop)
        )
    except JobFailure as failure:
        return job, RunOutcome(failure=failure)
    except Exception as error:
        logger.exception("the job failed unexpectedly")
        return job, RunOutcome(failure=JobFailure(ErrorName.WORKER_ERROR, f"{type(error).__name__}: {error}"))


def _loaded_nothing(outcome: RunOutcome) -> bool:
    return outcome.failure is not None and outcome.failure.error == ErrorName.SITE_BREAKER_OPEN


def _check_breaker(ddb: Any, locks_table: str, job: Job) -> None:
    """A task that starts while its site's breaker is open (and its job is not the probe) loads nothing:
    its job goes back to the claim, which waits for the breaker."""
    breaker = site_health.read_breaker(ddb, locks_table, job.site_key)
    if site_health.breaker_blocks(breaker, job.job_id):
        assert breaker is not None
        open_until = iso_ms(int(breaker.get("openUntilMs", 0)))
        raise JobFailure(
            ErrorName.SITE_BREAKER_OPEN,
            f"the circuit breaker of {job.site_key} is open (until {open_until}, then one probe job)",
            siteKey=job.site_key,
            openUntil=open_until,
        )


def _record_site_health(ddb: Any, resources: Settings, job: Job, outcome: RunOutcome) -> None:
    """What the site's answer says about it: a 429 slows the job's rate key down (Retry-After, a halved
    rate); site failures count towards its breaker; a success helps both recover. Best effort: the job's
    own result does not depend on it."""
    failure, locks_table = outcome.failure, resources.locks_table
    try:
        if failure is None:
            site_health.record_success(ddb, locks_table, job.rate_key)
            site_health.record_site_success(ddb, locks_table, job.site_key)
        elif failure.error in site_health.SITE_FAILURES:
            opened = site_health.record_site_failure(
                ddb,
                locks_table,
                job.site_key,
                job.job_id,
                resources.breaker_failure_threshold,
                resources.breaker_open_seconds,
                time.time_ns() // 1_000_000,
            )
            if opened is not None:
                logger.warning(
                    "circuit breaker of %s opened after %d failures, until %s",
                    job.site_key,
                    opened["failures"],
                    iso_ms(opened["openUntilMs"]),
                    extra={"breaker": "OPENED", "siteKey": job.site_key},
                )
        elif failure.error == ErrorName.SITE_RATE_LIMITED:
            retry_after = failure.details.get("retryAfterSeconds")
            recorded = site_health.record_rate_limited(
                ddb, locks_table, job.rate_key, retry_after, time.time_ns() // 1_000_000
            )
            if recorded is not None:
                logger.info(
                    "rate key %s slowed to %s%% of its rate, refilling from %s",
                    job.rate_key,
                    recorded["ratePercent"],
                    iso_ms(recorded["refilledAtMs"]),
                )
    except Exception:  # logged: the rate key and the breaker stay as they were
        logger.exception("the answer of site %s (rate key %s) was not recorded", job.site_key, job.rate_key)


def _check_params(job: Job) -> None:
    schema = action_schema_path(job.action)
    if schema is None:
        raise JobFailure(ErrorName.INVALID_PARAMS, f"action {job.action!r} has no schema")
    errors = schema_errors(job.params, schema, prefix="/params")
    if errors:
        raise JobFailure(
            ErrorName.INVALID_PARAMS, f"params do not match the {job.action!r} schema", errors=errors
        )


def _result(
    job_id: str,
    job: Job | None,
    task_arn: str | None,
    started_ms: int,
    duration_ms: int,
    outcome: RunOutcome,
    artifacts: ArtifactStore,
) -> dict[str, Any]:
    result: dict[str, Any] = {
        "jobId": job_id,
        "action": job.action if job else None,
        "status": "FAILED" if outcome.failure else "SUCCEEDED",
        "taskArn": task_arn,
        "startedAt": iso_ms(started_ms),
        "endedAt": iso_ms(started_ms + duration_ms),
        "durationMs": duration_ms,
        "data": outcome.data,
        "artifacts": artifacts.saved,
        "steps": outcome.steps,
        "blockedRequests": outcome.blocked,
    }
    if outcome.session is not None:
        result["session"] = outcome.session
    if outcome.failure is not None:
        result["error"] = outcome.failure.as_record()
    return result


def _report(
    config: WorkerConfig,
    aws: AwsClients,
    outcome: RunOutcome,
    artifacts: ArtifactStore,
    task_arn: str | None,
    duration_ms: int,
) -> int:
    callback = TaskCallback(aws("stepfunctions"), config.task_token)
    failure = outcome.failure
    if failure is not None:
        # Structured fields for the saved Logs Insights queries (template.yaml, QueryDefinitions).
        outcome_fields = {"outcome": "FAILED", "error": str(failure.error), "durationMs": duration_ms}
        logger.info("job failed: %s: %s", failure.error, failure.message, extra=outcome_fields)
        accepted = callback.fail(failure.with_details(resultUri=artifacts.result_uri, taskArn=task_arn))
        return ExitCode.BY_ERROR[failure.error] if accepted else ExitCode.CALLBACK_FAILED
    summary: dict[str, Any] = {
        "status": "SUCCEEDED",
        "resultUri": artifacts.result_uri,
        "artifacts": [entry["uri"] for entry in artifacts.saved],
        "durationMs": duration_ms,
    }
    if len(json.dumps(outcome.data, default=str).encode()) < MAX_SUMMARY_DATA_BYTES:
        summary["data"] = outcome.data
    logger.info(
        "job succeeded in %d ms", duration_ms, extra={"outcome": "SUCCEEDED", "durationMs": duration_ms}
    )
    return ExitCode.SUCCEEDED if callback.succeed(summary) else ExitCode.CALLBACK_FAILED
