"""The intake dead-letter queue's redrive: SQS message move tasks back to IntakeQueue.

The intake DLQ holds two kinds of message. Queue messages go back to IntakeQueue as they are, which is
what a message move task does at scale (StartMessageMoveTask, its status, cancel:
https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-configure-dead-letter-queue-redrive.html).
Asynchronous invocations that failed (Lambda sets the message attribute ErrorCode: S3 object-created events,
the schedule's events) must not go to the queue, where intake would read the event as a job and reject it:
each is invoked on intake directly and deleted once intake took it. So a redrive first takes those out,
then starts the move task for what is left.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from browserjobs.ops.outputs import OperatorError, Target

SCAN_VISIBILITY_SECONDS = 300  # long enough to look at every message before any shows up again
ASYNC_ERROR_ATTRIBUTE = "ErrorCode"  # set by Lambda on a failed asynchronous invocation's record
FINAL_MOVE_STATUSES = frozenset({"COMPLETED", "CANCELLED", "FAILED"})


@dataclass
class IntakeRedrive:
    invoked: list[str] = field(default_factory=list)  # message ids of events intake took directly
    failed: list[dict[str, str]] = field(default_factory=list)  # events intake failed again (left in place)
    queued: int = 0  # queue messages the move task takes back to IntakeQueue
    task_handle: str | None = None


def _queue_arn(target: Target, url: str) -> str:
    sqs = target.client("sqs")
    return str(sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"])


def _invoke_intake(target: Target, body: str) -> str | None:
    """Intake's error for this event, or None when it took it."""
    answer = target.client("lambda").invoke(
        FunctionName=target.outputs["IntakeFunctionName"], Payload=body.encode()
    )
    if answer.get("FunctionError"):
        return str(answer["Payload"].read().decode(errors="replace"))[:500]
    return None


def _scan(target: Target, say: Callable[[str], None]) -> IntakeRedrive:
    """Invoke intake with every asynchronous event of the DLQ; leave the queue messages visible again."""
    sqs, url = target.client("sqs"), target.outputs["IntakeDeadLetterQueueUrl"]
    outcome, held = IntakeRedrive(), []
    try:
        while True:
            messages = sqs.receive_message(
                QueueUrl=url,
                MaxNumberOfMessages=10,
                VisibilityTimeout=SCAN_VISIBILITY_SECONDS,
                MessageAttributeNames=["All"],
            ).get("Messages", [])
            if not messages:
                return outcome
            for message in messages:
                if ASYNC_ERROR_ATTRIBUTE not in message.get("MessageAttributes", {}):
                    held.append(message)
                    continue
                error = _invoke_intake(target, message["Body"])
                if error is None:
                    sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
                    outcome.invoked.append(message["MessageId"])
                    say(f"invoked intake with event {message['MessageId']}")
                else:
                    held.append(message)
                    outcome.failed.append({"messageId": message["MessageId"], "error": error})
    finally:
        for start in range(0, len(held), 10):  # visible again: for the move task, or the next try
            sqs.change_message_visibility_batch(
                QueueUrl=url,
                Entries=[
                    {"Id": str(n), "ReceiptHandle": m["ReceiptHandle"], "VisibilityTimeout": 0}
                    for n, m in enumerate(held[start : start + 10])
                ],
            )
        outcome.queued = len(held) - len(outcome.failed)


def redrive(target: Target, rate: int | None, say: Callable[[str], None]) -> IntakeRedrive:
    """Take the asynchronous events out (invoking intake), then move the queue messages back."""
    outcome = _scan(target, say)
    if outcome.failed:
        raise OperatorError(
            f"intake failed again on {len(outcome.failed)} event(s), left in the DLQ (no move task started): "
            + json.dumps(outcome.failed)[:1000]
        )
    if outcome.queued == 0:
        return outcome
    sqs = target.client("sqs")
    arguments: dict[str, Any] = {
        "SourceArn": _queue_arn(target, target.outputs["IntakeDeadLetterQueueUrl"]),
        "DestinationArn": _queue_arn(target, target.outputs["IntakeQueueUrl"]),
    }
    if rate:
        arguments["MaxNumberOfMessagesPerSecond"] = rate
    try:
        outcome.task_handle = sqs.start_message_move_task(**arguments)["TaskHandle"]
    except ClientError as error:  # one task at a time per DLQ, permissions, ...
        raise OperatorError(f"SQS refused the move task: {error}") from error
    return outcome


def move_tasks(target: Target, limit: int = 10) -> list[dict[str, Any]]:
    """The intake DLQ's most recent message move tasks, newest first (SQS keeps them 14 days)."""
    sqs = target.client("sqs")
    source = _queue_arn(target, target.outputs["IntakeDeadLetterQueueUrl"])
    return list(sqs.list_message_move_tasks(SourceArn=source, MaxResults=limit)["Results"])


def wait_for_move(
    target: Target, deadline_seconds: float, say: Callable[[str], None], poll_seconds: float = 1.0
) -> dict[str, Any]:
    """Poll the newest move task until it ends (or the deadline passes: exit code 4), saying its progress."""
    deadline = time.monotonic() + deadline_seconds
    while True:
        tasks = move_tasks(target, limit=1)
        task = tasks[0] if tasks else {}
        say(
            f"{task.get('Status', 'no task')}: {task.get('ApproximateNumberOfMessagesMoved', 0)} of "
            f"{task.get('ApproximateNumberOfMessagesToMove', '?')} moved"
        )
        if not task or task.get("Status") in FINAL_MOVE_STATUSES:
            return task
        if time.monotonic() >= deadline:
            raise OperatorError(f"the move task still runs after {deadline_seconds:g}s", exit_code=4)
        time.sleep(poll_seconds)


def cancel(target: Target, task_handle: str) -> int:
    """Cancel a running move task; what it moved stays moved. Returns the messages moved so far."""
    try:
        answer = target.client("sqs").cancel_message_move_task(TaskHandle=task_handle)
    except ClientError as error:
        raise OperatorError(f"cannot cancel the move task: {error}", exit_code=3) from error
    return int(answer["ApproximateNumberOfMessagesMoved"])
