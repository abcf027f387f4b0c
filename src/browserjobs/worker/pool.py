"""`python -m browserjobs.worker` with WORKER_MODE=pool: a long-running worker of the pool service.

It long-polls the dispatch queue and runs up to POOL_JOBS_PER_TASK jobs at once, each in a fresh context of
one warm Chromium, each with its own heartbeats, interrupt watcher, egress proxy, artifacts and exactly one
callback: the same attempt a task of its own runs (worker/lifecycle.run_attempt).

A job runs at most once per attempt (docs/CONTRACTS.md, "Pool worker"):
- a message whose token Step Functions no longer accepts (its attempt timed out, or the crash hook failed
  it) is deleted unrun;
- the lock registration carries the message's MessageId: a second delivery of it finds it there;
- the message is deleted as soon as the job is registered, so a worker that dies while running it does not
  see it redelivered: the crash hook fails the tokens this task registered (core/pool_registry.py) and
  the workflow's retry sends a new message.

SIGTERM (a Spot interruption, scale-in, a deploy) stops the intake: running jobs get POOL_DRAIN_SECONDS to
finish, the rest report Worker.Interrupted, which the workflow retries on another worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import signal
import threading
import time
from collections.abc import Coroutine
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from botocore.exceptions import BotoCoreError, ClientError

from browserjobs.core import pool_registry
from browserjobs.core.config import ConfigError
from browserjobs.core.contract import TOKEN_CLOSED
from browserjobs.core.ddb import error_code
from browserjobs.core.metrics import stage_metrics
from browserjobs.worker import logs
from browserjobs.worker.aws import AwsClients
from browserjobs.worker.callback import TaskCallback
from browserjobs.worker.ecs_metadata import task_identity
from browserjobs.worker.egress import EgressPolicy
from browserjobs.worker.errors import ErrorName, ExitCode, JobFailure
from browserjobs.worker.jobs import DuplicateDispatch, Job, load_job, register_task
from browserjobs.worker.lifecycle import Attempt, run_attempt
from browserjobs.worker.pool_browser import WarmBrowser
from browserjobs.worker.pool_config import BadDispatch, Dispatch, PoolConfig
from browserjobs.worker.protection import ScaleInProtection
from browserjobs.worker.run import RunOutcome
from browserjobs.worker.stop import StopFlag

logger = logging.getLogger(__name__)

POLL_SECONDS = 10  # SQS long poll; SIGTERM is noticed at once, messages it returns after that are given back
# How long a received message stays hidden. A worker that dies during its long poll leaves the poll open on
# SQS's side, which may still take a message for it that nobody receives: the message comes back after
# this, not after the queue's 60 s, well inside the job's heartbeat deadline. Registering and deleting a
# message takes well under a second; a slower one delivered twice is caught by its registration.
RECEIVE_VISIBILITY_SECONDS = 10
START_SECONDS = 90.0  # the warm browser's first launch
INTERRUPTED_GRACE_SECONDS = 20.0  # after the drain: interrupted jobs close their browser and report
HUNG_AFTER_SECONDS = 60  # a job this long past its timeoutSeconds did not stop: the worker is unhealthy
METRIC_SECONDS = 60.0
HEALTH_SECONDS = 1.0  # how often the health file is written while the worker is healthy
# A receive loop that has not come round for this long is stuck (a cycle is a long poll, or a wait for a
# free slot, each at most POLL_SECONDS, plus a few AWS calls per message taken).
STUCK_LOOP_SECONDS = POLL_SECONDS + 30


def main() -> int:
    logs.configure(None)
    env = os.environ
    if env.get("TMPDIR"):
        Path(env["TMPDIR"]).mkdir(parents=True, exist_ok=True)
    try:
        config = PoolConfig.from_env(env)
    except ConfigError as error:
        logger.error("cannot start: %s", error)
        return ExitCode.CONFIG_ERROR
    identity = task_identity(config.metadata_uri, config.task_arn)
    if not identity.task_arn:
        logger.error("cannot start: no task ARN (no ECS metadata endpoint, no TASK_ARN)")
        return ExitCode.CONFIG_ERROR
    ceiling = memory_ceiling_mb(config.memory_ceiling_mb, identity.memory_limit_mb)
    worker = PoolWorker(replace(config, memory_ceiling_mb=ceiling), AwsClients(), identity.task_arn)
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda number, _frame: worker.drain(signal.Signals(number).name))
    return worker.serve()


def memory_ceiling_mb(configured: int, task_limit_mb: int | None) -> int:
    """POOL_MEMORY_CEILING_MB, else three quarters of the task's memory (the task metadata's Limits.Memory):
    a browser relaunched there leaves room for the jobs still running in the old one. 0: no ceiling."""
    return configured or (task_limit_mb * 3 // 4 if task_limit_mb else 0)


@dataclass
class _Running:
    dispatch: Dispatch
    stop: StopFlag
    hung_at: float  # monotonic: when this job is overdue beyond any deadline of its own
    thread: threading.Thread | None = None


@dataclass
class PoolWorker:
    config: PoolConfig
    aws: AwsClients
    task_arn: str
    jobs_run: int = 0
    _running: dict[str, _Running] = field(default_factory=dict)
    _changed: threading.Condition = field(default_factory=threading.Condition)
    _draining: threading.Event = field(default_factory=threading.Event)
    _drain_reason: str = ""

    def __post_init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._browser = WarmBrowser(
            chromium_path=self.config.chromium_path,
            egress_allow=self.config.egress_allow,
            recycle_after_jobs=self.config.recycle_after_jobs,
            memory_ceiling_mb=self.config.memory_ceiling_mb,
        )
        self._protection = ScaleInProtection(self.config.agent_uri)
        self._metrics = stage_metrics()
        self._metric_due = 0.0
        self._cycle_at = time.monotonic()  # when the receive loop last came round
        self._stopped = threading.Event()

    def drain(self, reason: str) -> None:
        """Take no more work (safe in a signal handler: it only sets flags)."""
        self._drain_reason = reason
        self._draining.set()

    def serve(self) -> int:
        threading.Thread(target=self._loop.run_forever, name="browser-loop", daemon=True).start()
        try:
            asyncio.run_coroutine_threadsafe(self._browser.start(), self._loop).result(START_SECONDS)
        except Exception:
            logger.exception("the warm browser did not start: this task takes no jobs")
            return ExitCode.BY_ERROR[ErrorName.BROWSER_CRASHED]
        logger.info(
            "pool worker ready: up to %d jobs at once from %s",
            self.config.jobs_per_task,
            self.config.queue_url,
        )
        self._cycle_at = time.monotonic()
        threading.Thread(target=self._watch_health, name="health", daemon=True).start()
        while not self._draining.is_set():
            self._cycle_at = time.monotonic()
            self._report_metric()
            free = self.config.jobs_per_task - self.running_count()
            if free <= 0:
                with self._changed:
                    self._changed.wait_for(
                        lambda: self.running_count() < self.config.jobs_per_task or self._draining.is_set(),
                        timeout=POLL_SECONDS,
                    )
                continue
            for message in self._receive(min(free, 10)):
                self._take(message)
        self._finish_running()
        self._stopped.set()
        asyncio.run_coroutine_threadsafe(self._browser.close(), self._loop).result(START_SECONDS)
        self._loop.call_soon_threadsafe(self._loop.stop)
        logger.info("pool worker stopped (%s) after %d jobs", self._drain_reason, self.jobs_run)
        return ExitCode.SUCCEEDED

    def running_count(self) -> int:
        with self._changed:
            return len(self._running)

    # --- intake --------------------------------------------------------------------------------------------

    def _receive(self, count: int) -> list[dict[str, Any]]:
        try:
            messages = (
                self.aws("sqs")
                .receive_message(
                    QueueUrl=self.config.queue_url,
                    MaxNumberOfMessages=count,
                    WaitTimeSeconds=POLL_SECONDS,
                    VisibilityTimeout=RECEIVE_VISIBILITY_SECONDS,
                )
                .get("Messages", [])
            )
        except (BotoCoreError, ClientError) as error:
            logger.warning("the dispatch queue was not read: %s", error)
            self._draining.wait(1.0)  # back off before the next receive, not a wait for a condition
            return []
        if self._draining.is_set():  # received during SIGTERM: back to the queue for another worker, now
            for message in messages:
                self._give_back(message)
            return []
        return messages

    def _take(self, message: dict[str, Any]) -> None:
        try:
            dispatch = Dispatch.from_message(message)
        except BadDispatch as error:
            # Only the workflow sends here: a malformed message is a defect, kept in the log, not retried.
            logger.error(
                "a dispatch message is malformed and was dropped: %s",
                error,
                extra={"messageId": message.get("MessageId"), "error": "BadDispatch"},
            )
            self._delete(message)
            return
        entry = _Running(dispatch, StopFlag(), hung_at=math.inf)
        with self._changed:
            if dispatch.job_id in self._running:
                logger.warning(
                    "job %s already runs here: message %s is a duplicate",
                    dispatch.job_id,
                    dispatch.message_id,
                )
                self._delete(message)
                return
            self._running[dispatch.job_id] = entry  # its slot, from now on
        # The admission's AWS calls (token, registry, lock, deletion) run on the job's own thread: a batch
        # of messages is taken at once, not one after the other.
        entry.thread = threading.Thread(
            target=self._admit_and_run, args=(entry, message), name=f"job-{dispatch.job_id[:8]}", daemon=True
        )
        entry.thread.start()

    def _admit_and_run(self, entry: _Running, message: dict[str, Any]) -> None:
        dispatch = entry.dispatch
        logs.JOB_ID.set(dispatch.job_id)
        try:
            job = self._admit(dispatch, message) if self._token_open(dispatch, message) else None
        except Exception:  # a defect: the slot is freed, the message comes back (its job is not registered)
            logger.exception("job %s was not admitted", dispatch.job_id)
            job = None
        if job is None:
            self._ended(dispatch.job_id)
            return
        entry.hung_at = time.monotonic() + job.timeout_seconds + HUNG_AFTER_SECONDS
        self._protect()
        self._run(dispatch, job, entry.stop)

    def _token_open(self, dispatch: Dispatch, message: dict[str, Any]) -> bool:
        """An attempt whose token is closed (timed out, failed by the crash hook) must not run: its message
        is deleted. A heartbeat that fails otherwise leaves the message to come back in a few seconds."""
        try:
            self.aws("stepfunctions").send_task_heartbeat(taskToken=dispatch.task_token)
        except ClientError as error:
            if error_code(error) in TOKEN_CLOSED:
                logger.info(
                    "job %s: its attempt is over (%s): message %s dropped unrun",
                    dispatch.job_id,
                    error_code(error),
                    dispatch.message_id,
                )
                self._delete(message)
                return False
            logger.warning("job %s not taken (heartbeat: %s); its message comes back", dispatch.job_id, error)
            return False
        except BotoCoreError as error:
            logger.warning("job %s not taken (heartbeat: %s); its message comes back", dispatch.job_id, error)
            return False
        return True

    def _admit(self, dispatch: Dispatch, message: dict[str, Any]) -> Job | None:
        """Registry, then the lock registration, then the message's deletion: the job is this task's.
        None when it must not run here (a duplicate, or a job that could not be registered: reported)."""
        ddb, resources = self.aws("dynamodb"), self.config.resources
        try:
            pool_registry.add_job(
                ddb,
                resources.locks_table,
                self.task_arn,
                dispatch.job_id,
                dispatch.task_token,
                int(time.time()),
            )
        except (BotoCoreError, ClientError) as error:
            logger.error(
                "job %s not taken (registry not written: %s); its message comes back", dispatch.job_id, error
            )
            return None
        try:
            job = load_job(ddb, resources.jobs_table, dispatch.job_id)
            register_task(
                ddb,
                locks_table=resources.locks_table,
                jobs_table=resources.jobs_table,
                job=job,
                task_arn=self.task_arn,
                lease_grace_seconds=resources.lease_grace_seconds,
                dispatch_id=dispatch.message_id,
            )
        except DuplicateDispatch as duplicate:
            logger.warning("%s: dropped", duplicate)
            self._delete(message)
            self._unregister(dispatch.job_id)
            return None
        except JobFailure as failure:  # no record, or the lock is not the job's: it must not run
            self._delete(message)
            TaskCallback(self.aws("stepfunctions"), dispatch.task_token).fail(failure)
            self._unregister(dispatch.job_id)
            return None
        except (BotoCoreError, ClientError) as error:
            logger.error("job %s not registered (%s); its message comes back", dispatch.job_id, error)
            self._unregister(dispatch.job_id)
            return None
        self._delete(message)
        return job

    # --- one job --------------------------------------------------------------------------------------------

    def _run(self, dispatch: Dispatch, job: Job, stop: StopFlag) -> None:
        try:
            attempt = Attempt(
                dispatch.worker_config(self.config), self.task_arn, None, self._browser, job=job
            )
            code = run_attempt(
                attempt,
                EgressPolicy(self.config.egress_allow),
                self.aws,
                stop,
                self._on_loop(dispatch.job_id),
            )
            logger.info("job %s ended with code %d", dispatch.job_id, code)
        except Exception:  # run_attempt reports every failure it can; this is a defect, kept in the log
            logger.exception("job %s ended unexpectedly", dispatch.job_id)
        finally:
            self.jobs_run += 1
            self._unregister(dispatch.job_id)
            self._ended(dispatch.job_id)

    def _on_loop(self, job_id: str) -> Any:
        def run(work: Coroutine[Any, Any, RunOutcome]) -> RunOutcome:
            async def as_job() -> RunOutcome:
                logs.JOB_ID.set(job_id)  # the loop's task gets its own copy of the context
                return await work

            return asyncio.run_coroutine_threadsafe(as_job(), self._loop).result()

        return run

    def _ended(self, job_id: str) -> None:
        with self._changed:
            self._running.pop(job_id, None)
            idle = not self._running
            self._changed.notify_all()
        if idle:
            self._protection.set(False)

    def _protect(self) -> None:
        """Protected from scale-in while it holds jobs: until the latest of their deadlines."""
        with self._changed:  # jobs still being admitted have no deadline yet (inf)
            latest = max((e.hung_at for e in self._running.values() if e.hung_at != math.inf), default=0.0)
        if latest > time.monotonic():
            self._protection.set(True, math.ceil((latest - time.monotonic()) / 60))

    # --- the end ------------------------------------------------------------------------------------------

    def _finish_running(self) -> None:
        """Running jobs get the drain time, then report Worker.Interrupted (retried on another worker)."""
        deadline = time.monotonic() + self.config.drain_seconds
        logger.info(
            "draining (%s): %d jobs running, %d s to finish",
            self._drain_reason,
            self.running_count(),
            self.config.drain_seconds,
        )
        with self._changed:
            self._changed.wait_for(lambda: not self._running, timeout=max(0.0, deadline - time.monotonic()))
            left = list(self._running.values())
        for entry in left:
            entry.stop.request(
                ErrorName.WORKER_INTERRUPTED,
                f"{self._drain_reason}: the pool task is stopping (e.g. a Fargate Spot interruption)",
            )
        with self._changed:
            self._changed.wait_for(lambda: not self._running, timeout=INTERRUPTED_GRACE_SECONDS)

    # --- health and metrics -------------------------------------------------------------------------------

    def healthy(self) -> str | None:
        """None when healthy, else why: a browser loop that does not answer, or a job that did not stop."""
        try:
            asyncio.run_coroutine_threadsafe(asyncio.sleep(0), self._loop).result(5.0)
        except Exception:
            return "the browser's event loop does not answer"
        now = time.monotonic()
        with self._changed:
            overdue = [job_id for job_id, entry in self._running.items() if now > entry.hung_at]
        return f"jobs past their deadline did not stop: {', '.join(overdue)}" if overdue else None

    def _watch_health(self) -> None:
        """Write the health file every HEALTH_SECONDS while healthy, on a thread of its own: the receive
        loop spends up to a long poll per cycle, which the container's check must not take for a hang."""
        reported: str | None = None
        while not self._stopped.wait(HEALTH_SECONDS):
            problem = self.healthy()
            if problem is None and time.monotonic() - self._cycle_at > STUCK_LOOP_SECONDS:
                problem = f"the receive loop has not come round for {STUCK_LOOP_SECONDS} s"
            if problem is None:
                Path(self.config.health_file).write_text(str(time.time()), encoding="ascii")
            elif problem != reported:
                logger.error("unhealthy: %s", problem)
            reported = problem

    def _report_metric(self) -> None:
        if time.monotonic() >= self._metric_due:
            self._metric_due = time.monotonic() + METRIC_SECONDS
            # EMF on stdout: CloudWatch turns it into the metric the pool's scaling policy tracks.
            self._metrics.add_metric(
                name="PoolJobsRunning", unit=MetricUnit.Count, value=self.running_count()
            )
            with contextlib.suppress(Exception):  # a metric is never worth a job
                self._metrics.flush_metrics()

    # --- queue and registry ------------------------------------------------------------------------------

    def _delete(self, message: dict[str, Any]) -> None:
        try:
            self.aws("sqs").delete_message(
                QueueUrl=self.config.queue_url, ReceiptHandle=message["ReceiptHandle"]
            )
        except (BotoCoreError, ClientError) as error:  # a redelivery finds the registration: no second run
            logger.warning("message %s not deleted: %s", message.get("MessageId"), error)

    def _give_back(self, message: dict[str, Any]) -> None:
        with contextlib.suppress(BotoCoreError, ClientError):
            self.aws("sqs").change_message_visibility(
                QueueUrl=self.config.queue_url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
            )

    def _unregister(self, job_id: str) -> None:
        try:
            pool_registry.remove_job(
                self.aws("dynamodb"), self.config.resources.locks_table, self.task_arn, job_id
            )
        except (BotoCoreError, ClientError) as error:  # the crash hook would fail a closed token: harmless
            logger.warning("job %s stays in this task's registry: %s", job_id, error)
