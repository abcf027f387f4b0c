"""EventBridge Pipes from a DynamoDB stream to an event bus, as the stack's JobEventsPipe uses them.

moto stores pipes (CreatePipe) but runs none. Here each pipe meant to run whose source is a DynamoDB stream
and whose target is an event bus reads the stream's shards with the pipe's role (StartingPosition), drops
the records its FilterCriteria do not match (EventBridge pattern rules, moto's matcher; a record matching
any filter passes), shapes each with the target's InputTemplate and sends it with PutEvents, its detail-type
and source from EventBridgeEventBusParameters (a value starting with `$.` is a dynamic path into the
record). A batch PutEvents refuses is retried up to the source's MaximumRetryAttempts, then described in the
DeadLetterConfig queue (the batch's shard and sequence numbers, not the records, as for any stream source),
and the pipe moves on.
https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-pipes-dynamodb.html
https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-pipes-input-transformation.html
https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-pipes-event-target.html (dynamic path parameters)
"""

from __future__ import annotations

import datetime
import json
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import boto3
from moto.events.models import EventPattern
from moto.pipes.models import pipes_backends
from moto.utilities.arns import parse_arn

from browserjobs.emulator.access import ENFORCER, role_client
from browserjobs.emulator.settings import ACCOUNT_ID, REGION

POLL_SECONDS = 0.25  # Pipes polls a stream's shards about four times a second
DESCRIBE_SECONDS = 5  # new shards are looked for this often
READ_LIMIT = 1000  # GetRecords' maximum
_PLACEHOLDER = re.compile(r'("?)<(\$[^>]*)>("?)')


def json_path(document: Any, path: str) -> Any:
    """A dotted path ($.a.b, $.list[0]) into a JSON document; None where it leads nowhere."""
    value = document
    for part in re.findall(r"[^.\[\]]+|\[\d+\]", path.removeprefix("$")):
        if part.startswith("["):
            index = int(part[1:-1])
            value = value[index] if isinstance(value, list) and index < len(value) else None
        else:
            value = value.get(part) if isinstance(value, dict) else None
        if value is None:
            return None
    return value


def render(template: str, record: dict[str, Any]) -> str:
    """An InputTemplate with its <$.path> placeholders filled: quoted ones as string content, bare ones as
    JSON values (objects, arrays), as the input transformation documents it."""

    def fill(match: re.Match[str]) -> str:
        before, path, after = match.groups()
        value = json_path(record, path)
        if before and after:
            text = value if isinstance(value, str) else json.dumps(value)
            return json.dumps(text)
        return before + json.dumps(value) + after

    return _PLACEHOLDER.sub(fill, template)


def matches(filters: list[dict[str, str]], record: dict[str, Any]) -> bool:
    """No filters pass every record; otherwise a record passes when any filter's pattern matches it."""
    return not filters or any(EventPattern.load(f["Pattern"]).matches_event(record) for f in filters)


@dataclass
class _Shard:
    iterator: str | None


@dataclass
class _RunningPipe:
    name: str
    streams: Any
    events: Any
    sqs: Any
    shards: dict[str, _Shard] = field(default_factory=dict)
    described_at: float = -DESCRIBE_SECONDS


class PipeRunner:
    def __init__(self, session: boto3.Session, endpoint_url: str | None, log: Callable[[str], None]):
        self._endpoint_url = endpoint_url
        # Only to find a dead-letter queue's URL, which Pipes knows from its ARN without calling SQS.
        self._sqs = session.client("sqs", endpoint_url=endpoint_url)
        self._log = log
        self._running: dict[str, _RunningPipe] = {}
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="pipes", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopped.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stopped.is_set():
            for pipe in list(pipes_backends[ACCOUNT_ID][REGION].pipes.values()):
                # moto's CurrentState advances only as DescribePipe is called: the desired state decides.
                if (pipe.desired_state or "RUNNING") != "RUNNING" or ":dynamodb:" not in pipe.source:
                    continue
                try:
                    self._poll(pipe)
                except Exception as error:  # a pipe that cannot read its source is retried, as Pipes does
                    self._log(f"pipe {pipe.name}: {type(error).__name__}: {error}")
            self._stopped.wait(POLL_SECONDS)

    def _state(self, pipe: Any) -> _RunningPipe:
        running = self._running.get(pipe.arn)
        if running is None:
            # Pipes reads, puts and dead-letters with the pipe's role, so the local pipe does too.
            credentials = ENFORCER.role_environment(pipe.role_arn, f"pipe-{pipe.name}"[:64])
            running = _RunningPipe(
                pipe.name,
                role_client("dynamodbstreams", credentials, region=REGION, endpoint_url=self._endpoint_url),
                role_client("events", credentials, region=REGION, endpoint_url=self._endpoint_url),
                role_client("sqs", credentials, region=REGION, endpoint_url=self._endpoint_url),
            )
            self._running[pipe.arn] = running
        return running

    def _poll(self, pipe: Any) -> None:
        running = self._state(pipe)
        stream = pipe.source_parameters.get("DynamoDBStreamParameters", {})
        if time.monotonic() - running.described_at >= DESCRIBE_SECONDS:
            self._add_shards(pipe, running, stream.get("StartingPosition", "LATEST"))
        filters = pipe.source_parameters.get("FilterCriteria", {}).get("Filters", [])
        for shard_id, shard in running.shards.items():
            if shard.iterator is None:
                continue
            # GetRecords returns up to 1,000 records; the pipe filters them, then batches what passed.
            answer = running.streams.get_records(ShardIterator=shard.iterator, Limit=READ_LIMIT)
            records = [_as_delivered(record, pipe.source) for record in answer.get("Records", [])]
            passed = [r for r in records if matches(filters, r)]
            size = int(stream.get("BatchSize", 100))
            for start in range(0, len(passed), size):
                batch = passed[start : start + size]
                self._deliver(pipe, running, shard_id, batch, int(stream.get("MaximumRetryAttempts", -1)))
            # Only once its batches are delivered (or dead-lettered): a failure before reads them again.
            shard.iterator = answer.get("NextShardIterator")

    @staticmethod
    def _add_shards(pipe: Any, running: _RunningPipe, starting_position: str) -> None:
        running.described_at = time.monotonic()
        description = running.streams.describe_stream(StreamArn=pipe.source)["StreamDescription"]
        for shard in description["Shards"]:
            if shard["ShardId"] not in running.shards:
                iterator = running.streams.get_shard_iterator(
                    StreamArn=pipe.source,
                    ShardId=shard["ShardId"],
                    ShardIteratorType=starting_position,
                )["ShardIterator"]
                running.shards[shard["ShardId"]] = _Shard(iterator)

    def _deliver(
        self, pipe: Any, running: _RunningPipe, shard_id: str, records: list[dict[str, Any]], retries: int
    ) -> None:
        target = pipe.target_parameters or {}
        bus = target.get("EventBridgeEventBusParameters", {})
        entries = [
            {
                "EventBusName": pipe.target,
                "Source": _value(bus.get("Source", "Pipe " + pipe.name), record),
                "DetailType": _value(bus.get("DetailType", "Event from aws:dynamodb"), record),
                "Detail": render(target["InputTemplate"], record)
                if "InputTemplate" in target
                else json.dumps(record),
            }
            for record in records
        ]
        attempt = 0
        while not self._stopped.is_set():
            try:
                answer = running.events.put_events(Entries=entries)
                if not answer.get("FailedEntryCount"):
                    return
                problem = json.dumps([e for e in answer["Entries"] if "ErrorCode" in e])
            except Exception as error:
                problem = f"{type(error).__name__}: {error}"
            attempt += 1
            if attempt == 1:  # said at once: the shard waits while the batch is retried
                self._log(
                    f"pipe {pipe.name}: PutEvents refused a batch of {len(records)}, retrying: {problem}"
                )
            if 0 <= retries < attempt:
                break
            self._stopped.wait(min(2**attempt * 0.1, 5))  # backoff between attempts
        self._dead_letter(pipe, running, shard_id, records, problem)

    def _dead_letter(
        self, pipe: Any, running: _RunningPipe, shard_id: str, records: list[dict[str, Any]], problem: str
    ) -> None:
        self._log(f"pipe {pipe.name}: {len(records)} records not delivered: {problem}")
        arn = (pipe.source_parameters.get("DynamoDBStreamParameters", {}).get("DeadLetterConfig") or {}).get(
            "Arn"
        )
        if not arn:
            return
        sequence = [r["dynamodb"]["SequenceNumber"] for r in records]
        body = {
            "requestContext": {"condition": "RetryAttemptsExhausted", "approximateInvokeCount": 1},
            "timestamp": datetime.datetime.now(datetime.UTC).isoformat(),
            "DDBStreamBatchInfo": {
                "shardId": shard_id,
                "startSequenceNumber": sequence[0],
                "endSequenceNumber": sequence[-1],
                "batchSize": len(records),
                "streamArn": pipe.source,
            },
        }
        queue = parse_arn(arn)
        url = self._sqs.get_queue_url(QueueName=queue.resource_id, QueueOwnerAWSAccountId=queue.account)[
            "QueueUrl"
        ]
        running.sqs.send_message(QueueUrl=url, MessageBody=json.dumps(body))


def _as_delivered(record: dict[str, Any], stream_arn: str) -> dict[str, Any]:
    """A stream record as Pipes hands it on: JSON, with its creation time in epoch seconds."""
    dynamodb = dict(record["dynamodb"])
    created = dynamodb.get("ApproximateCreationDateTime")
    if isinstance(created, datetime.datetime):
        dynamodb["ApproximateCreationDateTime"] = int(created.timestamp())
    return {**record, "dynamodb": dynamodb, "eventSourceARN": stream_arn}


def _value(setting: str, record: dict[str, Any]) -> str:
    """A target parameter: a dynamic path (the whole value starts with `$.`) or the value itself."""
    if setting.startswith("$."):
        found = json_path(record, setting)
        return found if isinstance(found, str) else json.dumps(found)
    return setting
