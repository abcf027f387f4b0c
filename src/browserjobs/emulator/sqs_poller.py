"""Lambda's SQS pollers: each enabled event source mapping polls its queue and invokes its function.

Batches honour BatchSize and MaximumBatchingWindowInSeconds; a function error leaves the whole batch to
come back after the queue's visibility timeout (and to the queue's own dead-letter queue after
maxReceiveCount, which SQS enforces); with ReportBatchItemFailures only the reported messages stay.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from typing import Any

import boto3
from moto.awslambda.utils import get_backend as lambda_backend
from moto.utilities.arns import parse_arn

from browserjobs.emulator.access import ENFORCER, role_client
from browserjobs.emulator.lambda_runtime import LambdaRuntime
from browserjobs.emulator.settings import ACCOUNT_ID, REGION

POLL_WAIT_SECONDS = 1  # long-poll briefly so that stopping is prompt
# "When messages are available, Lambda starts processing five batches at a time with five concurrent
# invocations of your function" (services-sqs-scaling.html).
INITIAL_POLLERS = 5


def poller_count(mapping: dict[str, Any]) -> int:
    """Pollers of a mapping: Lambda's initial five, at most the mapping's MaximumConcurrency."""
    maximum = (mapping.get("ScalingConfig") or {}).get("MaximumConcurrency")
    return min(INITIAL_POLLERS, maximum) if maximum else INITIAL_POLLERS


def _record(message: dict[str, Any], queue_arn: str) -> dict[str, Any]:
    attributes = {
        name: {
            "stringValue": value.get("StringValue"),
            "binaryValue": value.get("BinaryValue"),
            "stringListValues": [],
            "binaryListValues": [],
            "dataType": value["DataType"],
        }
        for name, value in message.get("MessageAttributes", {}).items()
    }
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": message.get("Attributes", {}),
        "messageAttributes": attributes,
        "md5OfBody": message["MD5OfBody"],
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": REGION,
    }


def failed_message_ids(mapping: dict[str, Any], batch: list[dict[str, Any]], response: bytes) -> set[str]:
    """Which messages stay on the queue after a successful invocation (Lambda's partial batch rules)."""
    every = {message["MessageId"] for message in batch}
    if "ReportBatchItemFailures" not in mapping.get("FunctionResponseTypes", []):
        return set()
    try:
        failures = json.loads(response or b"null") or {}
        reported = {item["itemIdentifier"] for item in failures.get("batchItemFailures", [])}
    except (ValueError, TypeError, KeyError, AttributeError):
        return every  # an unreadable response fails the whole batch
    if not reported <= every or "" in reported:
        return every
    return reported


class EventSourcePoller:
    def __init__(
        self,
        runtime: LambdaRuntime,
        session: boto3.Session,
        endpoint_url: str,
        log: Callable[[str], None],
    ):
        self._runtime = runtime
        self._endpoint_url = endpoint_url
        self._region = session.region_name
        self._lambda = session.client("lambda", endpoint_url=endpoint_url)
        # Only to find a queue's URL, which Lambda knows from the mapping without calling SQS.
        self._sqs = session.client("sqs", endpoint_url=endpoint_url)
        self._log = log
        self._workers: dict[tuple[str, int], threading.Thread] = {}
        self._stopped = threading.Event()
        self._supervisor = threading.Thread(target=self._supervise, name="sqs-pollers", daemon=True)

    def start(self) -> None:
        self._supervisor.start()

    def stop(self) -> None:
        self._stopped.set()
        self._supervisor.join()
        for worker in list(self._workers.values()):
            worker.join()

    def _mappings(self) -> list[dict[str, Any]]:
        pages = self._lambda.get_paginator("list_event_source_mappings").paginate()
        return [
            mapping
            for page in pages
            for mapping in page["EventSourceMappings"]
            if parse_arn(mapping["EventSourceArn"]).service == "sqs"
        ]

    def _supervise(self) -> None:
        while not self._stopped.is_set():
            for mapping in self._mappings():
                if mapping.get("State", "Enabled") != "Enabled":
                    continue
                for index in range(poller_count(mapping)):
                    key = (mapping["UUID"], index)
                    worker = self._workers.get(key)
                    if worker is None or not worker.is_alive():
                        worker = threading.Thread(
                            target=self._poll,
                            args=(mapping["UUID"],),
                            name=f"sqs-{mapping['UUID'][:8]}-{index}",
                            daemon=True,
                        )
                        self._workers[key] = worker
                        worker.start()
            self._stopped.wait(1.0)

    def _poller_client(self, mapping: dict[str, Any]) -> Any:
        """Lambda polls, deletes and decrypts with the function's execution role, so the poller does too."""
        role = self._lambda.get_function_configuration(FunctionName=mapping["FunctionArn"])["Role"]
        credentials = ENFORCER.role_environment(role, f"poller-{mapping['UUID'][:8]}")
        return role_client("sqs", credentials, region=self._region, endpoint_url=self._endpoint_url)

    def _poll(self, uuid: str) -> None:
        sqs = None
        while not self._stopped.is_set():
            mapping = self._lambda.get_event_source_mapping(UUID=uuid)
            if mapping.get("State", "Enabled") != "Enabled":
                return
            sqs = sqs or self._poller_client(mapping)
            queue_name = parse_arn(mapping["EventSourceArn"]).resource_id
            queue_url = self._sqs.get_queue_url(QueueName=queue_name, QueueOwnerAWSAccountId=ACCOUNT_ID)[
                "QueueUrl"
            ]
            batch = self._receive_batch(sqs, mapping, queue_url)
            if batch:
                self._process(sqs, mapping, queue_url, batch)

    def _receive_batch(self, sqs: Any, mapping: dict[str, Any], queue_url: str) -> list[dict[str, Any]]:
        size = mapping.get("BatchSize") or 10
        window_ends = time.monotonic() + (mapping.get("MaximumBatchingWindowInSeconds") or 0)
        batch: list[dict[str, Any]] = []
        while len(batch) < size and not self._stopped.is_set():
            messages = sqs.receive_message(
                QueueUrl=queue_url,
                MaxNumberOfMessages=min(10, size - len(batch)),
                WaitTimeSeconds=POLL_WAIT_SECONDS,
                AttributeNames=["All"],
                MessageAttributeNames=["All"],
            ).get("Messages", [])
            batch.extend(messages)
            if (batch and time.monotonic() >= window_ends) or (not batch and not messages):
                break
        return batch

    def _process(
        self, sqs: Any, mapping: dict[str, Any], queue_url: str, batch: list[dict[str, Any]]
    ) -> None:
        event = {"Records": [_record(message, mapping["EventSourceArn"]) for message in batch]}
        arn = parse_arn(mapping["FunctionArn"])
        function = lambda_backend(arn.account, arn.region).get_function(mapping["FunctionArn"])
        result = self._runtime.invoke(function, json.dumps(event).encode(), "RequestResponse")
        if result.function_error:
            self._log(
                f"{function.function_name} failed a batch of {len(batch)} from {queue_url.rsplit('/', 1)[-1]}"
            )
            return
        keep = failed_message_ids(mapping, batch, result.payload)
        done = [message for message in batch if message["MessageId"] not in keep]
        for start in range(0, len(done), 10):
            entries = [
                {"Id": str(index), "ReceiptHandle": message["ReceiptHandle"]}
                for index, message in enumerate(done[start : start + 10])
            ]
            sqs.delete_message_batch(QueueUrl=queue_url, Entries=entries)
