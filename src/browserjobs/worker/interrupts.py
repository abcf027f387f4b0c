"""Interrupt requests for the running job: InterruptQueue messages and the InterruptionsTable record.

Every worker long-polls the one queue, so a worker also receives messages meant for others: a message
for a job that has already ended is deleted as stale, any other is made visible again at once for its
own worker. The table record (written by the workflow together with the message) is read on every
cycle as well, so an interrupt is noticed within a cycle even while other workers hold its message.
"""

from __future__ import annotations

import json
import logging
import threading
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from browserjobs.core.ddb import attr, from_item
from browserjobs.core.model import TERMINAL
from browserjobs.core.records import get_job
from browserjobs.worker.errors import ErrorName
from browserjobs.worker.stop import StopFlag

logger = logging.getLogger(__name__)

POLL_SECONDS = 2  # SQS long-poll wait, and so the cycle length
RECEIVE_VISIBILITY_SECONDS = 30  # how long a message stays hidden if this worker dies holding it


class InterruptWatcher:
    def __init__(
        self,
        *,
        sqs: Any,
        ddb: Any,
        queue_url: str,
        interruptions_table: str,
        jobs_table: str,
        job_id: str,
        stop: StopFlag,
    ) -> None:
        self._sqs, self._ddb = sqs, ddb
        self._queue_url = queue_url
        self._interruptions_table = interruptions_table
        self._jobs_table = jobs_table
        self._job_id = job_id
        self._stop = stop
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, name="interrupts", daemon=True)

    def __enter__(self) -> InterruptWatcher:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._thread.join(timeout=POLL_SECONDS + 35)  # a long poll plus botocore's read timeout

    def _run(self) -> None:
        while not self._done.is_set() and self._stop.reason is None:
            try:
                self.check_table()
                if self._stop.reason is None:
                    self.poll_queue()
            except (BotoCoreError, ClientError) as error:
                logger.warning("interrupt check failed: %s", error)
                self._done.wait(POLL_SECONDS)

    def check_table(self) -> None:
        response = self._ddb.get_item(
            TableName=self._interruptions_table, Key={"jobId": attr(self._job_id)}, ConsistentRead=True
        )
        item = from_item(response.get("Item"))
        if item is not None:
            self._interrupt(item.get("requestedBy"), item.get("reason"), via="InterruptionsTable")

    def poll_queue(self) -> None:
        response = self._sqs.receive_message(
            QueueUrl=self._queue_url,
            MaxNumberOfMessages=10,
            WaitTimeSeconds=POLL_SECONDS,
            VisibilityTimeout=RECEIVE_VISIBILITY_SECONDS,
        )
        for message in response.get("Messages", []):
            self._handle(message)

    def _handle(self, message: dict[str, Any]) -> None:
        receipt = message["ReceiptHandle"]
        try:
            body = json.loads(message["Body"])
            target = body["jobId"]
            if not isinstance(target, str):
                raise TypeError("jobId is not a string")
        except (ValueError, KeyError, TypeError) as error:
            # Only the workflow writes this queue: a malformed message is a bug, logged in full and dropped.
            logger.error(
                "dropping malformed interrupt message %s (%s): %r",
                message["MessageId"],
                error,
                message["Body"],
            )
            self._sqs.delete_message(QueueUrl=self._queue_url, ReceiptHandle=receipt)
            return
        if target == self._job_id:
            self._sqs.delete_message(QueueUrl=self._queue_url, ReceiptHandle=receipt)
            self._interrupt(body.get("requestedBy"), body.get("reason"), via="InterruptQueue")
            return
        record = get_job(self._ddb, self._jobs_table, target)
        if record is None or record.get("status") in TERMINAL:
            logger.info(
                "deleting stale interrupt message for job %s (status %s)",
                target,
                record and record.get("status"),
            )
            self._sqs.delete_message(QueueUrl=self._queue_url, ReceiptHandle=receipt)
        else:
            self._sqs.change_message_visibility(
                QueueUrl=self._queue_url, ReceiptHandle=receipt, VisibilityTimeout=0
            )

    def _interrupt(self, requested_by: Any, reason: Any, via: str) -> None:
        logger.info("interrupt for this job via %s: requestedBy=%s reason=%s", via, requested_by, reason)
        self._stop.request(
            ErrorName.JOB_INTERRUPTED,
            f"interrupted by job {requested_by}: {reason}",
            requestedBy=requested_by,
            reason=reason,
        )
