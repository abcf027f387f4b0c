"""An execution's history read the way the Step Functions console shows it.

GetExecutionHistory returns flat events; operators want the states: when each was entered and exited,
how long it took, its input and output, how often its task was retried, and the error and cause when it
failed. Events carry the state name only on StateEntered/StateExited, so the others are attributed by
following previousEventId back to the state they belong to (this also works for interleaved branches).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

# Events of a task attempt that failed; a later *Scheduled/*Started event in the same state is a retry.
_ATTEMPT_FAILED = ("Failed", "TimedOut", "StartFailed", "SubmitFailed", "ScheduleFailed")
_ATTEMPT_BEGIN = ("TaskScheduled", "LambdaFunctionScheduled", "ActivityScheduled")


@dataclass
class StateRun:
    """One visit of a state (a state entered twice, e.g. in a wait loop, has two runs)."""

    name: str
    type: str
    entered_at: datetime
    exited_at: datetime | None = None
    input: str | None = None
    output: str | None = None
    attempts: int = 0
    error: str | None = None
    cause: str | None = None
    status: str = "RUNNING"  # RUNNING | SUCCEEDED | FAILED | CAUGHT
    event_ids: list[int] = field(default_factory=list)

    @property
    def retries(self) -> int:
        return max(0, self.attempts - 1)

    @property
    def duration_ms(self) -> int | None:
        if self.exited_at is None:
            return None
        return int((self.exited_at - self.entered_at).total_seconds() * 1000)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data.update(
            entered_at=self.entered_at.isoformat(),
            exited_at=self.exited_at.isoformat() if self.exited_at else None,
            duration_ms=self.duration_ms,
            retries=self.retries,
        )
        return data


@dataclass
class Timeline:
    runs: list[StateRun]
    events: list[dict[str, Any]]  # each event plus `state` and `elapsed_ms`
    transitions: list[tuple[str, str]]  # (from, to) edges taken; "__start__" / "__end__" at the ends
    execution_error: str | None = None
    execution_cause: str | None = None

    def state_status(self) -> dict[str, str]:
        """The console colour of each visited state: the status of its latest run."""
        return {run.name: run.status for run in self.runs}


def _details(event: dict[str, Any]) -> dict[str, Any]:
    for key, value in event.items():
        if key.endswith("EventDetails") and isinstance(value, dict):
            return value
    return {}


def _state_type(event_type: str, suffix: str) -> str:
    return event_type[: -len(suffix)] if event_type.endswith(suffix) else event_type


def build_timeline(events: list[dict[str, Any]]) -> Timeline:
    events = sorted(events, key=lambda e: e["id"])
    builder = _TimelineBuilder(start=events[0]["timestamp"] if events else None)
    for event in events:
        builder.add(event)
    return builder.finish()


@dataclass
class _TimelineBuilder:
    """The runs, rows and transitions of the events so far, fed in order of their ids."""

    start: datetime | None
    runs: list[StateRun] = field(default_factory=list)
    run_of_event: dict[int, StateRun] = field(default_factory=dict)
    exited_from: dict[int, str] = field(default_factory=dict)  # StateExited id -> state (links transitions)
    transitions: list[tuple[str, str]] = field(default_factory=list)
    rows: list[dict[str, Any]] = field(default_factory=list)
    execution_error: str | None = None
    execution_cause: str | None = None

    def add(self, event: dict[str, Any]) -> None:
        event_type = event["type"]
        details = _details(event)
        previous = event.get("previousEventId", 0)
        parent_run = self.run_of_event.get(previous)
        if parent_run is not None and parent_run.exited_at is not None:
            parent_run = None  # the event after an exit belongs to whatever comes next

        run: StateRun | None
        if event_type.endswith("StateEntered"):
            run = self._entered(event, details, previous, parent_run)
        elif event_type.endswith("StateExited"):
            run = self._exited(event, details, parent_run)
        else:
            run = parent_run
            if run is not None:
                _count_attempt(run, event_type, details)
            if event_type.startswith("Execution") and event_type != "ExecutionStarted":
                self._execution_event(event_type, details)
        if run is not None:
            run.event_ids.append(event["id"])
            self.run_of_event[event["id"]] = run
        elapsed = (event["timestamp"] - self.start).total_seconds() if self.start else 0
        self.rows.append(
            {**event, "state": run.name if run is not None else None, "elapsed_ms": int(elapsed * 1000)}
        )

    def _entered(
        self, event: dict[str, Any], details: dict[str, Any], previous: int, parent_run: StateRun | None
    ) -> StateRun:
        run = StateRun(
            name=details.get("name", "?"),
            type=_state_type(event["type"], "StateEntered"),
            entered_at=event["timestamp"],
            input=details.get("input"),
        )
        if parent_run is not None and parent_run.status == "FAILED":
            # entered straight from a failed state without its exit event: a Catch moved on
            parent_run.status, parent_run.exited_at = "CAUGHT", event["timestamp"]
        source = self.exited_from.get(previous) or (parent_run.name if parent_run else None)
        self.transitions.append((source or "__start__", run.name))
        self.runs.append(run)
        return run

    def _exited(
        self, event: dict[str, Any], details: dict[str, Any], parent_run: StateRun | None
    ) -> StateRun | None:
        run = parent_run or _latest_open(self.runs, details.get("name"))
        if run is not None:
            run.exited_at = event["timestamp"]
            run.output = details.get("output")
            if run.status == "RUNNING":
                run.status = "SUCCEEDED"
            elif run.status == "FAILED":
                run.status = "CAUGHT"  # it failed, yet exited: a Catch took it elsewhere
            self.exited_from[event["id"]] = run.name
        return run

    def _execution_event(self, event_type: str, details: dict[str, Any]) -> None:
        """ExecutionSucceeded/Failed/TimedOut/Aborted: the last transition, or the runs it left failed."""
        self.execution_error = details.get("error") or self.execution_error
        self.execution_cause = details.get("cause") or self.execution_cause
        if not self.runs:
            return
        if event_type == "ExecutionSucceeded":
            self.transitions.append((self.runs[-1].name, "__end__"))
        elif event_type in ("ExecutionFailed", "ExecutionTimedOut", "ExecutionAborted"):
            for open_run in self.runs:
                if open_run.exited_at is None:
                    open_run.status = "FAILED"
                    open_run.error = open_run.error or self.execution_error
                    open_run.cause = open_run.cause or self.execution_cause

    def finish(self) -> Timeline:
        for run in self.runs:
            if run.type == "Fail":
                run.status = "FAILED"
                run.error = run.error or self.execution_error
                run.cause = run.cause or self.execution_cause
        return Timeline(self.runs, self.rows, self.transitions, self.execution_error, self.execution_cause)


def _count_attempt(run: StateRun, event_type: str, details: dict[str, Any]) -> None:
    """A task attempt's begin or failure, within the state `run`."""
    if event_type in _ATTEMPT_BEGIN:
        run.attempts += 1
        if run.status == "FAILED":  # a Retry: the failure stays in the events, not the state
            run.status, run.error, run.cause = "RUNNING", None, None
    if event_type.endswith(_ATTEMPT_FAILED) and "error" in details:
        run.error, run.cause, run.status = details.get("error"), details.get("cause"), "FAILED"


def _latest_open(runs: list[StateRun], name: str | None) -> StateRun | None:
    for run in reversed(runs):
        if run.name == name and run.exited_at is None:
            return run
    return None


def event_summary(event: dict[str, Any]) -> str:
    """A one-line description of an event, for the CLI's history table."""
    details = _details(event)
    if "error" in details:
        cause = str(details.get("cause") or "")
        return f"{details['error']}: {cause[:300]}" if cause else str(details["error"])
    for key in ("resourceType", "resource"):
        if key in details:
            return f"{details.get('resourceType', '')}:{details.get('resource', '')}".strip(":")
    return ""
