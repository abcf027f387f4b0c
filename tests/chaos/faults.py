"""Faults injected while a chaos run's jobs run: each fault job is watched through its record in
JobsTable (status, and the task ARN its worker registers) and hit at a random moment once it is there.

SIGKILL and SIGSTOP go through the local stack's own fault hooks (crash_task, freeze_task); the Spot
notice is a SIGTERM to the worker process found in the OS process table (a pool task's: interrupt_task,
SIGTERM then SIGKILL after its stop timeout, replaced by its service); aborts are StopExecution.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from browserjobs.emulator.stack import LocalStack
from browserjobs.testing.harness import Harness

from .plan import FAULTS, PlannedJob, Role
from .processes import send_spot_notice, worker_pid
from .records import read_jobs

POLL_SECONDS = 0.25
# A fault lands this long after the worker registered its task: during start-up or the page load.
DELAY_RANGE_SECONDS = (0.2, 3.0)
TERMINAL = {"SUCCEEDED", "FAILED", "TIMED_OUT", "INTERRUPTED", "REJECTED"}


@dataclass
class _Watch:
    job: PlannedJob
    delay: float
    seen_task: str | None = None
    seen_at: float = 0.0
    hit_tasks: tuple[str, ...] = ()
    done: bool = False


class FaultInjector:
    def __init__(self, stack: LocalStack, harness: Harness, plan: list[PlannedJob], seed: int):
        self._stack = stack
        self._harness = harness
        self._rng = random.Random(seed)
        self._watches = [
            _Watch(job, self._rng.uniform(*DELAY_RANGE_SECONDS)) for job in plan if job.role in FAULTS
        ]
        self.injected: Counter[str] = Counter()
        self.missed: list[str] = []
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="chaos-faults", daemon=True)
        self.errors: list[str] = []

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join(timeout=30)
        self.missed.extend(
            f"{watch.job.job_id} ({watch.job.role}): the fault never found its moment"
            for watch in self._watches
            if not watch.done
        )

    def _loop(self) -> None:
        while not self._stopping.wait(POLL_SECONDS):
            pending = [watch for watch in self._watches if not watch.done and watch.job.job_id]
            if not pending:
                continue
            try:
                job_ids = [watch.job.job_id for watch in pending if watch.job.job_id]
                records = read_jobs(self._harness, job_ids, "status", "taskArn", "executionArn")
                for watch in pending:
                    record = records.get(watch.job.job_id or "")
                    if record is not None:
                        self._step(watch, record)
            except Exception as error:  # reported with the run's problems, which fails the run
                self.errors.append(f"{type(error).__name__}: {error}")
                return

    def _step(self, watch: _Watch, record: dict[str, Any]) -> None:
        status, task = record.get("status"), record.get("taskArn")
        role = watch.job.role
        if status in TERMINAL:  # before every planned hit landed (done watches are not polled)
            watch.done = True
            self.missed.append(
                f"{watch.job.job_id} ({role}) ended {status} after {len(watch.hit_tasks)} fault(s)"
            )
            return
        if role is Role.ABORT_WAITING and status == "WAITING":
            self._abort(watch, record, "WAITING")
            return
        if status != "RUNNING" or not task or task in watch.hit_tasks:
            return
        if task != watch.seen_task:
            watch.seen_task, watch.seen_at = task, time.monotonic()
        if time.monotonic() - watch.seen_at < watch.delay:
            return
        actions: dict[Role, Callable[[], None]] = {
            Role.CRASH: lambda: self._hit(watch, task, "SIGKILL", self._stack.crash_task),
            Role.HANG: lambda: self._hit(watch, task, "SIGSTOP", self._stack.freeze_task),
            Role.ABORT_RUNNING: lambda: self._abort(watch, record, "RUNNING"),
            Role.ABORT_WAITING: lambda: self._abort(watch, record, "RUNNING"),
            Role.SPOT_ONCE: lambda: self._spot(watch, task),
            Role.SPOT_TWICE: lambda: self._spot(watch, task),
            Role.POOL_CRASH: lambda: self._hit(watch, task, "SIGKILL of a pool task", self._stack.crash_task),
            Role.POOL_SPOT: lambda: self._hit(
                watch, task, "Spot interruption of a pool task", self._stack.interrupt_task
            ),
        }
        actions[role]()

    def _hit(self, watch: _Watch, task: str, kind: str, action: Callable[[str], None]) -> None:
        action(task)
        self._record(watch, task, kind)

    def _spot(self, watch: _Watch, task: str) -> None:
        pid = worker_pid(self._stack.endpoint_url, task)
        if pid is None or not send_spot_notice(pid):
            return  # not in the process table yet (or already gone): look again next round
        self._record(watch, task, "SIGTERM (Spot notice)")

    def _abort(self, watch: _Watch, record: dict[str, Any], state: str) -> None:
        self._harness.client("stepfunctions").stop_execution(
            executionArn=record["executionArn"], cause=f"chaos: StopExecution while {state}"
        )
        self._record(watch, record.get("taskArn") or "-", f"StopExecution while {state}")

    def _record(self, watch: _Watch, task: str, kind: str) -> None:
        watch.hit_tasks = (*watch.hit_tasks, task)
        watch.job.faults.append(kind)
        watch.done = len(watch.hit_tasks) >= (2 if watch.job.role is Role.SPOT_TWICE else 1)
        self.injected[kind] += 1
