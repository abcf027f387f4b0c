"""`browserjobs dlq redrive --intake`, `dlq moves` and `dlq cancel-move` against the local stack: failed
asynchronous events go to intake directly, queue messages back to IntakeQueue by an SQS message move task
(https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_StartMessageMoveTask.html)."""

from __future__ import annotations

import json
import uuid

from tests.cli.test_cli import run
from tests.conftest import load_event


def _queue_bodies(stack, output: str) -> list[str]:
    sqs = stack.client("sqs")
    messages = sqs.receive_message(QueueUrl=stack.outputs[output], MaxNumberOfMessages=10).get("Messages", [])
    return sorted(message["Body"] for message in messages)


def _dlq_message(stack, body: str, **attributes: str) -> str:
    return stack.client("sqs").send_message(
        QueueUrl=stack.outputs["IntakeDeadLetterQueueUrl"],
        MessageBody=body,
        MessageAttributes={k: {"DataType": "String", "StringValue": v} for k, v in attributes.items()},
    )["MessageId"]


def test_events_go_to_intake_and_queue_messages_back_to_the_queue(stack):
    queued = [json.dumps({"lockKey": f"dlq#{n}", "action": "browse", "params": {}}) for n in range(2)]
    for body in queued:
        _dlq_message(stack, body)
    job = {**load_event("intake-direct"), "jobId": f"dlq-{uuid.uuid4().hex[:8]}"}
    event_id = _dlq_message(stack, json.dumps(job), ErrorCode="200", ErrorMessage="Task timed out")

    result = run(stack, "dlq", "redrive", "--intake", "--wait", "30")

    assert result.exit_code == 0, result.output
    assert f"invoked intake with event {event_id}" in result.stdout
    assert "COMPLETED: 2 of 2 moved" in result.stdout
    assert _queue_bodies(stack, "IntakeQueueUrl") == sorted(queued)  # as they were, and only them
    assert _queue_bodies(stack, "IntakeDeadLetterQueueUrl") == []
    status = json.loads(run(stack, "status", job["jobId"], "--json").stdout)
    assert status["job"]["jobId"] == job["jobId"]  # intake took the event: the job exists
    [task] = json.loads(run(stack, "dlq", "moves", "--json").stdout)
    assert (task["Status"], task["ApproximateNumberOfMessagesMoved"]) == ("COMPLETED", 2)


def test_an_empty_intake_dlq_starts_no_move_task(stack):
    before = json.loads(run(stack, "dlq", "moves", "--json").stdout)

    result = run(stack, "dlq", "redrive", "--intake")

    assert result.exit_code == 0, result.output
    assert "no queue message in the intake DLQ" in result.stdout
    assert json.loads(run(stack, "dlq", "moves", "--json").stdout) == before


def test_a_move_task_that_is_not_running_cannot_be_cancelled(stack):
    result = run(stack, "dlq", "cancel-move", "not-a-task-handle")

    assert result.exit_code == 3
    assert "cannot cancel the move task" in result.stderr
