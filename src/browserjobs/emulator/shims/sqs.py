"""SQS: where moto differs from AWS, and the shim that makes the local stack behave as AWS does.

Applied by browserjobs.emulator.shims.apply(); importing this module changes nothing.
"""

from __future__ import annotations

import base64
import json
import threading
import time
import uuid
from typing import Any

from moto.core.responses import ActionResult
from moto.sqs.exceptions import InvalidParameterValue, SQSException
from moto.sqs.models import Queue, SQSBackend
from moto.sqs.responses import SQSResponse

# --- SQS: event source mappings poll, they are not called from SendMessage --------------------------------
# moto invokes the function inside SendMessage with one message, ignores batch size, batching windows and
# ReportBatchItemFailures, and never retries. The local stack polls the queue like Lambda's pollers do.


def shim_sqs_inline_event_source_mapping() -> None:
    # moto writes the mapping into this dict at CreateEventSourceMapping and reads it in SendMessage; an
    # always-empty view stops the inline call. The mappings themselves live in the Lambda backend.
    Queue.lambda_event_source_mappings = property(lambda self: {}, lambda self, value: None)


# --- SQS: message move tasks (DLQ redrive) ------------------------------------------------------------
# moto has no StartMessageMoveTask, ListMessageMoveTasks or CancelMessageMoveTask ("not been implemented").
# As on AWS (https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_StartMessageMoveTask.html)
# the source must be the dead-letter queue of some queue, the destination defaults to that original source
# queue, one task at a time per source, and the task moves asynchronously, at most
# MaxNumberOfMessagesPerSecond, the messages the source held when it started: RUNNING, then COMPLETED,
# CANCELLED or FAILED with a reason. ListMessageMoveTasks lists the most recent first (at most 10).

_DEFAULT_RATE = 500  # AWS moves up to 500 messages per second when no maximum is given
_tasks: dict[str, dict[str, Any]] = {}
_cancelled: dict[str, threading.Event] = {}
_tasks_lock = threading.Lock()


def _not_found(message: str) -> SQSException:
    # An instance, not a subclass: defining a subclass of moto's exception would change moto on import.
    return SQSException("ResourceNotFoundException", message)


def _queue_by_arn(backend: SQSBackend, arn: str | None) -> Queue:
    queue = next((q for q in backend.queues.values() if q.queue_arn == arn), None)
    if queue is None:
        raise _not_found(f"The resource that you specified for the SourceArn parameter doesn't exist: {arn}")
    return queue


def _move(backend: SQSBackend, task: dict[str, Any], source: Queue, destination: Queue) -> None:
    cancelled = _cancelled[task["TaskHandle"]]
    interval = 1.0 / task["MaxNumberOfMessagesPerSecond"]
    try:
        while task["ApproximateNumberOfMessagesMoved"] < task["ApproximateNumberOfMessagesToMove"]:
            if cancelled.is_set():
                task["Status"] = "CANCELLED"
                return
            messages = backend.receive_message(source.name, 1, 0, 30)
            if not messages:
                break
            message = messages[0]
            backend.send_message(
                destination.name, message.body, message_attributes=message.message_attributes or None
            )
            backend.delete_message(source.name, message.receipt_handle)
            task["ApproximateNumberOfMessagesMoved"] += 1
            cancelled.wait(interval)
        task["Status"] = "COMPLETED"
    except Exception as error:  # the task's outcome, as ListMessageMoveTasks reports it
        task["Status"], task["FailureReason"] = "FAILED", f"{type(error).__name__}: {error}"


def _start_message_move_task(self: SQSResponse) -> ActionResult:
    backend = self.sqs_backend
    source = _queue_by_arn(backend, self._get_param("SourceArn"))
    origins = backend.list_dead_letter_source_queues(source.name)
    if not origins:
        raise InvalidParameterValue("Source queue must be configured as a Dead Letter Queue.")
    destination_arn = self._get_param("DestinationArn")
    destination = _queue_by_arn(backend, destination_arn) if destination_arn else origins[0]
    with _tasks_lock:
        if any(t["SourceArn"] == source.queue_arn and t["Status"] == "RUNNING" for t in _tasks.values()):
            raise InvalidParameterValue(
                "There is already a task running. Only one active task is allowed for a source queue "
                "arn at a given time."
            )
        handle = base64.b64encode(
            json.dumps({"taskId": str(uuid.uuid4()), "sourceArn": source.queue_arn}).encode()
        )
        task = {
            "TaskHandle": handle.decode(),
            "Status": "RUNNING",
            "SourceArn": source.queue_arn,
            "DestinationArn": destination.queue_arn,
            "MaxNumberOfMessagesPerSecond": int(
                self._get_param("MaxNumberOfMessagesPerSecond") or _DEFAULT_RATE
            ),
            "ApproximateNumberOfMessagesMoved": 0,
            "ApproximateNumberOfMessagesToMove": int(source.approximate_number_of_messages),
            "StartedTimestamp": int(time.time() * 1000),
        }
        _tasks[task["TaskHandle"]] = task
        _cancelled[task["TaskHandle"]] = threading.Event()
    threading.Thread(target=_move, args=(backend, task, source, destination), daemon=True).start()
    return ActionResult({"TaskHandle": task["TaskHandle"]})


def _list_message_move_tasks(self: SQSResponse) -> ActionResult:
    source = _queue_by_arn(self.sqs_backend, self._get_param("SourceArn"))
    limit = int(self._get_param("MaxResults") or 1)
    with _tasks_lock:
        found = [dict(t) for t in _tasks.values() if t["SourceArn"] == source.queue_arn]
    found.sort(key=lambda t: t["StartedTimestamp"], reverse=True)
    for task in found:
        if task["Status"] != "RUNNING":
            task.pop("TaskHandle")  # AWS gives a handle only while the task can be cancelled
    return ActionResult({"Results": found[: min(limit, 10)]})


def _cancel_message_move_task(self: SQSResponse) -> ActionResult:
    handle = self._get_param("TaskHandle")
    with _tasks_lock:
        task = _tasks.get(handle)
        if task is None or task["Status"] != "RUNNING":
            raise _not_found("Task does not exist or is not running.")
        _cancelled[handle].set()
        task["Status"] = "CANCELLING"
    return ActionResult({"ApproximateNumberOfMessagesMoved": task["ApproximateNumberOfMessagesMoved"]})


def shim_message_move_tasks() -> None:
    SQSResponse.start_message_move_task = _start_message_move_task
    SQSResponse.list_message_move_tasks = _list_message_move_tasks
    SQSResponse.cancel_message_move_task = _cancel_message_move_task
