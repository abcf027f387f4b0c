"""browserjobs.core.task_events: an ECS task-state-change event as the crash hook reads it."""

from __future__ import annotations

import json

from browserjobs.core.contract import MAX_CAUSE_CHARS
from browserjobs.core.task_events import StoppedTask
from tests.conftest import load_event


def test_the_cause_names_exit_codes_stop_code_and_reasons():
    task = StoppedTask.from_detail(load_event("crash-hook-task-stopped")["detail"])

    error, cause = task.failure()

    assert error == "Worker.Crashed"
    parsed = json.loads(cause)
    assert parsed["taskArn"] == task.task_arn
    assert parsed["exitCodes"] == {"worker": 137}
    assert parsed["stopCode"] == "EssentialContainerExited"
    assert parsed["stoppedReason"] == "Essential container in task exited"
    assert "OutOfMemoryError" in parsed["containers"][0]["reason"]


def test_error_and_cause_stay_within_the_api_limits():
    detail = load_event("crash-hook-task-stopped")["detail"]
    detail["containers"] = [
        {**detail["containers"][0], "reason": "x" * 255, "name": f"c{n}"} for n in range(200)
    ]

    error, cause = StoppedTask.from_detail(detail).failure()

    assert error == "Worker.Crashed"
    assert len(cause) == MAX_CAUSE_CHARS
