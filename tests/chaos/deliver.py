"""Delivering a chaos run's jobs all at once, duplicates included, the ways producers and AWS deliver them.

A redelivery is what SQS does when a visibility timeout lapses: the intake function receives the very
same message (same messageId, same body) again. It is reproduced by invoking intake with an SQS event
built from the message that was sent, exactly as the event source mapping builds it.
"""

from __future__ import annotations

import hashlib
import json
import random
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from browserjobs.core.ids import direct_job_id, sqs_job_id
from browserjobs.testing.harness import Deadline, Harness, poll

from .plan import Delivery, PlannedJob

SENDERS = 8
REDELIVERY_WAIT_SECONDS = 120


def _text(body: Any) -> str:
    return body if isinstance(body, str) else json.dumps(body)


class Deliverer:
    def __init__(self, harness: Harness, seed: int):
        self._harness = harness
        self._sqs = harness.client("sqs")
        self._lambda = harness.client("lambda")
        self._ddb = harness.client("dynamodb")
        self._queue_url = harness.outputs["IntakeQueueUrl"]
        self._queue_arn = self._sqs.get_queue_attributes(
            QueueUrl=self._queue_url, AttributeNames=["QueueArn"]
        )["Attributes"]["QueueArn"]
        self._seed = seed
        self.deliveries = 0
        self.redelivered: Counter[str] = Counter()
        self.problems: list[str] = []

    def deliver_all(self, plan: list[PlannedJob]) -> None:
        """The jobs' first deliveries at once; then the redeliveries that wait for their job's record."""
        later: list[tuple[PlannedJob, int]] = []
        with ThreadPoolExecutor(max_workers=SENDERS, thread_name_prefix="chaos-deliver") as pool:
            for job, outcome in zip(plan, pool.map(self._guarded(self._deliver), plan), strict=True):
                if isinstance(outcome, tuple):  # (sent, copies to redeliver once the job is recorded)
                    self.deliveries += outcome[0]
                    later.append((job, outcome[1]))
                else:
                    self.deliveries += outcome
            self.deliveries += sum(
                pool.map(self._guarded(self._redeliver_after_record), *zip(*later, strict=True))
            )
        self.problems += [f"{job.role}: no jobId known after delivery" for job in plan if job.job_id is None]

    def _guarded(self, deliver: Callable[..., Any]) -> Callable[..., Any]:
        """A delivery that fails is a problem of the run (reported, failing it), not the end of the others."""

        def guarded(job: PlannedJob, *args: Any) -> Any:
            try:
                return deliver(job, *args)
            except Exception as error:  # reported with the run's problems, which fails the run
                self.problems.append(f"delivering {job.job_id or job.role}: {type(error).__name__}: {error}")
                return 0

        return guarded

    def _deliver(self, job: PlannedJob) -> int | tuple[int, int]:
        rng = random.Random(f"{self._seed}/{job.job_id}/{_text(job.body)}")
        if job.delivery is Delivery.QUEUE:
            self._send(job)
            return 1
        if job.delivery is Delivery.DIRECT:
            self._invoke(job, job.body)
            return 1
        if job.delivery is Delivery.DIRECT_AND_QUEUE:
            if rng.random() < 0.5:
                self._invoke(job, job.body)
                self._send(job)
            else:
                self._send(job)
                self._invoke(job, job.body)
            return 2
        # REDELIVERED: at once (most likely before the event source mapping delivers the original), or
        # once the original created the job; sometimes both copies in one batch.
        self._send(job)
        copies = 2 if rng.random() < 0.3 else 1
        if rng.random() < 0.5:
            return (1, copies)
        self._invoke(job, self._sqs_event(job, copies), expect_batch=True)
        self.redelivered["at once"] += 1
        return 1 + copies

    def _redeliver_after_record(self, job: PlannedJob, copies: int) -> int:
        try:
            poll(
                f"job {job.job_id} recorded",
                lambda: self._recorded(job.job_id or ""),
                REDELIVERY_WAIT_SECONDS,
            )
            self.redelivered["after the job was recorded"] += 1
        except Deadline:  # intake is behind: the copy arrives before the original after all
            self.redelivered["at once"] += 1
        self._invoke(job, self._sqs_event(job, copies), expect_batch=True)
        return copies

    def _recorded(self, job_id: str) -> bool:
        table = self._harness.outputs["JobsTableName"]
        return "Item" in self._ddb.get_item(
            TableName=table, Key={"jobId": {"S": job_id}}, ConsistentRead=True
        )

    def _send(self, job: PlannedJob) -> None:
        message_id = self._sqs.send_message(QueueUrl=self._queue_url, MessageBody=_text(job.body))[
            "MessageId"
        ]
        job.message_id = message_id
        if job.job_id is None:
            job.job_id = sqs_job_id(message_id)

    def _invoke(self, job: PlannedJob, payload: Any, expect_batch: bool = False) -> None:
        response = self._lambda.invoke(
            FunctionName=self._harness.outputs["IntakeFunctionName"], Payload=json.dumps(payload).encode()
        )
        answer = json.loads(response["Payload"].read() or b"null")
        if response.get("FunctionError"):
            self.problems.append(f"intake failed on {job.job_id or job.role}: {answer}")
        elif expect_batch and answer != {"batchItemFailures": []}:
            self.problems.append(f"intake reported failed records for {job.job_id}: {answer}")
        elif not expect_batch and job.job_id is None:
            job.job_id = answer.get("jobId") if isinstance(answer, dict) else direct_job_id(payload)

    def _sqs_event(self, job: PlannedJob, copies: int) -> dict[str, Any]:
        body = _text(job.body)
        now_ms = str(int(time.time() * 1000))
        record = {
            "messageId": job.message_id,
            "receiptHandle": f"chaos-redelivery-{job.message_id}",
            "body": body,
            "attributes": {
                "ApproximateReceiveCount": "2",
                "SentTimestamp": now_ms,
                "SenderId": "123456789012",
                "ApproximateFirstReceiveTimestamp": now_ms,
            },
            "messageAttributes": {},
            "md5OfBody": hashlib.md5(body.encode(), usedforsecurity=False).hexdigest(),
            "eventSource": "aws:sqs",
            "eventSourceARN": self._queue_arn,
            "awsRegion": self._queue_arn.split(":")[3],
        }
        return {"Records": [record] * copies}
