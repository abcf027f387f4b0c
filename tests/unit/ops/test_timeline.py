"""Execution history read like the console: states, durations, retries, caught and uncaught errors."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from browserjobs.ops.timeline import build_timeline, event_summary

pytestmark = pytest.mark.unit
T0 = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)


def _details_key(event_type: str) -> str:
    for suffix in ("StateEntered", "StateExited"):
        if event_type.endswith(suffix):
            return f"state{suffix[5:]}EventDetails"
    return event_type[0].lower() + event_type[1:] + "EventDetails"


def history(*specs: tuple) -> list[dict]:
    """Events as GetExecutionHistory returns them: (type, ms after start, details) chained by id."""
    events = []
    for index, (event_type, at_ms, details) in enumerate(specs, start=1):
        event = {
            "id": index,
            "previousEventId": index - 1,
            "type": event_type,
            "timestamp": T0 + timedelta(milliseconds=at_ms),
        }
        if details is not None:
            event[_details_key(event_type)] = details
        events.append(event)
    return events


# A claim retried once after throttling, then a browser task whose heartbeat timed out, caught by the
# failure path, and the execution failing in its Fail state: what the job workflow does on AWS.
EVENTS = history(
    ("ExecutionStarted", 0, {"input": "{}"}),
    ("TaskStateEntered", 5, {"name": "Claim", "input": '{"jobId": "j"}'}),
    ("TaskScheduled", 6, {"resourceType": "lambda", "resource": "invoke"}),
    ("TaskStarted", 8, {"resourceType": "lambda", "resource": "invoke"}),
    ("TaskFailed", 40, {"error": "Lambda.TooManyRequestsException", "cause": "Rate exceeded"}),
    ("TaskScheduled", 1040, {"resourceType": "lambda", "resource": "invoke"}),
    ("TaskStarted", 1042, {"resourceType": "lambda", "resource": "invoke"}),
    ("TaskSucceeded", 1100, {"output": '{"outcome": "CLAIMED"}'}),
    ("TaskStateExited", 1101, {"name": "Claim", "output": '{"claim": {"outcome": "CLAIMED"}}'}),
    ("TaskStateEntered", 1102, {"name": "RunBrowserTask", "input": "{}"}),
    ("TaskScheduled", 1103, {"resourceType": "ecs", "resource": "runTask.waitForTaskToken"}),
    ("TaskStarted", 1200, {"resourceType": "ecs", "resource": "runTask.waitForTaskToken"}),
    ("TaskSubmitted", 1300, {"resourceType": "ecs", "resource": "runTask.waitForTaskToken"}),
    ("TaskTimedOut", 61300, {"error": "States.HeartbeatTimeout", "cause": "no heartbeat in 60 s"}),
    ("TaskStateExited", 61301, {"name": "RunBrowserTask", "output": "{}"}),
    ("PassStateEntered", 61302, {"name": "MarkTimedOut", "input": "{}"}),
    ("PassStateExited", 61303, {"name": "MarkTimedOut", "output": "{}"}),
    ("FailStateEntered", 61304, {"name": "JobFailed", "input": "{}"}),
    ("ExecutionFailed", 61305, {"error": "Worker.Timeout", "cause": "the job timed out"}),
)


def test_each_state_run_has_its_duration_input_and_output():
    runs = {run.name: run for run in build_timeline(EVENTS).runs}
    assert list(runs) == ["Claim", "RunBrowserTask", "MarkTimedOut", "JobFailed"]
    assert runs["Claim"].duration_ms == 1096
    assert runs["Claim"].input == '{"jobId": "j"}'
    assert runs["Claim"].output == '{"claim": {"outcome": "CLAIMED"}}'
    assert runs["JobFailed"].duration_ms is None  # a Fail state has no exit event


def test_a_retried_task_that_then_succeeds_counts_its_retries_and_succeeds():
    claim = build_timeline(EVENTS).runs[0]
    assert claim.attempts == 2 and claim.retries == 1
    assert claim.status == "SUCCEEDED" and claim.error is None


def test_a_caught_failure_keeps_its_error_and_shows_as_caught():
    task = build_timeline(EVENTS).runs[1]
    assert task.status == "CAUGHT"
    assert (task.error, task.cause) == ("States.HeartbeatTimeout", "no heartbeat in 60 s")


def test_the_fail_state_carries_the_execution_error():
    timeline = build_timeline(EVENTS)
    failed = timeline.runs[-1]
    assert failed.status == "FAILED" and failed.error == "Worker.Timeout"
    assert (timeline.execution_error, timeline.execution_cause) == ("Worker.Timeout", "the job timed out")


def test_transitions_are_the_path_taken():
    assert build_timeline(EVENTS).transitions == [
        ("__start__", "Claim"),
        ("Claim", "RunBrowserTask"),
        ("RunBrowserTask", "MarkTimedOut"),
        ("MarkTimedOut", "JobFailed"),
    ]


def test_events_are_attributed_to_their_state_with_elapsed_time():
    rows = {row["id"]: row for row in build_timeline(EVENTS).events}
    assert rows[5]["state"] == "Claim" and rows[5]["elapsed_ms"] == 40
    assert rows[14]["state"] == "RunBrowserTask"
    assert rows[1]["state"] is None


def test_a_running_state_stays_running_and_a_succeeded_execution_ends_at_end():
    steps = [("ExecutionStarted", 0, {}), ("WaitStateEntered", 1, {"name": "WaitForLock"})]
    assert build_timeline(history(*steps)).state_status() == {"WaitForLock": "RUNNING"}
    steps += [
        ("WaitStateExited", 3000, {"name": "WaitForLock"}),
        ("SucceedStateEntered", 3001, {"name": "Done"}),
        ("SucceedStateExited", 3001, {"name": "Done"}),
        ("ExecutionSucceeded", 3002, {"output": "{}"}),
    ]
    timeline = build_timeline(history(*steps))
    assert timeline.state_status() == {"WaitForLock": "SUCCEEDED", "Done": "SUCCEEDED"}
    assert timeline.transitions[-1] == ("Done", "__end__")


def test_an_aborted_execution_marks_the_open_state_failed():
    events = history(
        ("ExecutionStarted", 0, {}),
        ("WaitStateEntered", 1, {"name": "WaitForLock"}),
        ("ExecutionAborted", 500, None),
    )
    assert build_timeline(events).state_status() == {"WaitForLock": "FAILED"}


def test_event_summary_names_the_error_or_the_resource():
    assert event_summary(EVENTS[4]) == "Lambda.TooManyRequestsException: Rate exceeded"
    assert event_summary(EVENTS[10]) == "ecs:runTask.waitForTaskToken"
    assert event_summary(EVENTS[1]) == ""
