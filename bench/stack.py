"""One embedded local stack (real template, ASL, Lambdas, worker, Chromium) and the sample site, shared by
the benchmarks that run jobs; plus what they read from execution histories."""

from __future__ import annotations

import contextlib
import datetime
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from bench.common import say
from browserjobs.emulator.stack import LocalStack
from browserjobs.testing.harness import Harness, new_id, poll
from browserjobs.testing.sample_site.server import SampleSite

# Two tokens, then one every five seconds per rate key: a third job on one key is throttled for <= 5 s.
# Sixteen slots, so that the 16-key throughput run measures the pipeline rather than the capacity cap.
# The pool (bench/dispatch.py): one warm task before the first job, 16 job slots in two tasks at most.
# Local tasks start in about a second: a 5 s start grace on the heartbeat deadline (TaskStartGraceSeconds,
# 90 s by default, for Fargate) keeps a hung worker's detection (bench/failure.py) about the heartbeat.
TASK_START_GRACE_SECONDS = 5
PARAMETERS = {
    "RateBurst": "2",
    "RateLimitPerMinute": "12",
    "MaxConcurrentTasks": "16",
    "TaskStartGraceSeconds": str(TASK_START_GRACE_SECONDS),
    "PoolMinTasks": "1",
    "PoolMaxTasks": "2",
    "PoolJobsPerTask": "8",
}
JOB_DEADLINE_SECONDS = 180


@dataclass
class BenchStack:
    stack: LocalStack
    harness: Harness
    site_url: str
    start_seconds: float

    def job(self, prefix: str, steps: list[dict[str, Any]] | None = None, **fields: Any) -> dict[str, Any]:
        return {
            "jobId": new_id(prefix),
            "lockKey": new_id("bench-key"),
            "action": "browse",
            "params": {"steps": steps or [{"goto": {"url": f"{self.site_url}/"}}]},
            "timeoutSeconds": 120,
            "heartbeatSeconds": 10,
            "meta": {"bench": prefix},
            **fields,
        }

    def submit(self, job: dict[str, Any]) -> float:
        """Send the job to the intake queue as producers do; returns the wall-clock time of sending."""
        sent = time.time()
        self.harness.submit(job)
        return sent

    def submit_together(self, jobs: list[dict[str, Any]]) -> None:
        """One SendMessageBatch, so that the jobs reach intake at once (as a burst arrives)."""
        entries = [{"Id": str(i), "MessageBody": json.dumps(job)} for i, job in enumerate(jobs)]
        response = self.harness.client("sqs").send_message_batch(
            QueueUrl=self.harness.outputs["IntakeQueueUrl"], Entries=entries
        )
        assert not response.get("Failed"), response["Failed"]

    def finish(self, job_id: str, timeout: float = JOB_DEADLINE_SECONDS) -> tuple[dict, dict]:
        return self.harness.wait_for_job_end(job_id, timeout)

    def registered_task(self, job: dict[str, Any]) -> str:
        """The job's task ARN once the worker registered it on the lock (the worker is really running)."""

        def registered() -> str | None:
            lock = self.harness.lock(job["lockKey"])
            return lock.get("taskArn") if lock and lock.get("jobId") == job["jobId"] else None

        return poll(f"job {job['jobId']} registering its task", registered, 90, interval=0.05)


@contextlib.contextmanager
def running() -> Iterator[BenchStack]:
    say("== starting the local stack and the sample site ...")
    started = time.monotonic()
    with SampleSite() as site, LocalStack.start(port=0, parameter_overrides=PARAMETERS, say=say) as stack:
        seconds = time.monotonic() - started
        say(f"   up in {seconds:.1f}s at {stack.endpoint_url}")
        yield BenchStack(stack, Harness.for_endpoint(stack.stack_name, stack.endpoint_url), site.url, seconds)


# --- reading execution histories ------------------------------------------------------------------------


def states_entered(history: list[dict[str, Any]]) -> list[str]:
    return [e["stateEnteredEventDetails"]["name"] for e in history if e["type"].endswith("StateEntered")]


def lambda_invocations(history: list[dict[str, Any]]) -> int:
    """Lambda calls made by the workflow itself (lambda:invoke tasks and Lambda task states)."""
    return sum(
        1
        for e in history
        if e["type"] == "LambdaFunctionScheduled"
        or (e["type"] == "TaskScheduled" and e["taskScheduledEventDetails"]["resourceType"] == "lambda")
    )


def claim_outcomes(history: list[dict[str, Any]]) -> list[str]:
    return [
        json.loads(e["taskSucceededEventDetails"]["output"])["Payload"]["outcome"]
        for e in history
        if e["type"] == "TaskSucceeded" and e["taskSucceededEventDetails"]["resourceType"] == "lambda"
    ]


def first_event(history: list[dict[str, Any]], kind: str, state: str | None = None) -> datetime.datetime:
    """The timestamp of the first event of a type (for StateEntered/Exited types, of that state)."""
    for event in history:
        if event["type"] != kind:
            continue
        if state is None:
            return event["timestamp"]
        details = event.get("stateEnteredEventDetails") or event.get("stateExitedEventDetails") or {}
        if details.get("name") == state:
            return event["timestamp"]
    raise LookupError(f"no {kind} event" + (f" for {state}" if state else ""))


def epoch(moment: datetime.datetime | str) -> float:
    if isinstance(moment, str):
        moment = datetime.datetime.fromisoformat(moment.replace("Z", "+00:00"))
    return moment.timestamp()
