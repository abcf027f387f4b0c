"""Intake against the bad-input corpus (tests/corpus/): every case, on every channel it can arrive by,
ends with the outcome it declares.

A rejected case must come back as {code, message, errors[]}, be recorded REJECTED in JobsTable with
that rejection, have its raw input kept in S3 under rejected/, and start no execution. An accepted
case must start its execution with the job exactly as sent. On SQS each case travels in a batch
between two good messages: the batch reports no failure (retrying cannot fix bad input) and the good
messages still start.
"""

from __future__ import annotations

import json
import re
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import cache
from types import ModuleType
from typing import Any

import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from browserjobs.core.ids import canonical_json
from browserjobs.core.model import JOB_FIELDS, RejectionCode, execution_arn
from browserjobs.core.records import MAX_RAW_CHARS
from tests.conftest import ROOT, load_event
from tests.unit.conftest import Stack, build_stack, load_app

pytestmark = pytest.mark.unit

CORPUS = ROOT / "tests" / "corpus"
ACCEPTED = "ACCEPTED"
# Which channels each kind of payload can arrive by. Text is never a Lambda payload (the runtime
# parses JSON before any handler runs) and raw bytes are never an SQS body (SQS bodies are text).
CHANNELS = {
    "body": ("direct", "sqs", "s3"),
    "text": ("sqs", "s3"),
    "bytes": ("s3",),
    "event": ("direct",),
    "email": ("email",),
}
# Rejections of the input as a whole: their message says it all, errors[] is empty.
WHOLE_INPUT = {str(RejectionCode.UNSUPPORTED_EVENT), str(RejectionCode.OBJECT_TOO_LARGE)}
RAW_KEY = re.compile(r"^rejected/\d{4}/\d{2}/\d{2}/(?P<job_id>[A-Za-z0-9_-]+)\.json$")


# --- the corpus -----------------------------------------------------------------------------------


def expand(value: Any) -> Any:
    """Corpus values with generators: {"$string", "$times"}, {"$concat": [...]}, {"$list", "$times"},
    {"$nest", "$leaf"} (lists nested that deep) and, inside a list, {"$each", "$times"} (spliced)."""
    if isinstance(value, dict):
        if "$string" in value:
            return value["$string"] * value["$times"]
        if "$concat" in value:
            return "".join(expand(part) for part in value["$concat"])
        if "$list" in value:
            return [expand(value["$list"]) for _ in range(value["$times"])]
        if "$nest" in value:
            nested = expand(value["$leaf"])
            for _ in range(value["$nest"]):
                nested = [nested]
            return nested
        return {key: expand(inner) for key, inner in value.items()}
    if isinstance(value, list):
        items: list[Any] = []
        for item in value:
            if isinstance(item, dict) and "$each" in item:
                items += [expand(item["$each"]) for _ in range(item["$times"])]
            else:
                items.append(expand(item))
        return items
    return value


@dataclass(frozen=True)
class Case:
    category: str
    name: str
    kind: str  # a key of CHANNELS
    payload: Any  # body: a JSON value; text: str; bytes/email: bytes; event: a Lambda event
    expect: str  # ACCEPTED or a RejectionCode
    expect_on: dict[str, str] = field(default_factory=dict)
    error_path: str | None = None
    message: str | None = None
    record: dict[str, Any] = field(default_factory=dict)
    source: str | None = None

    @property
    def id(self) -> str:
        return f"{self.category}/{self.name}"

    def expected(self, channel: str) -> str:
        return self.expect_on.get(channel, self.expect)


def _payload(spec: dict[str, Any], email: bool, base: dict[str, Any]) -> tuple[str, Any]:
    if "eventFile" in spec:
        return "event", json.loads((ROOT / spec["eventFile"]).read_text(encoding="utf-8"))
    if "event" in spec:
        return "event", spec["event"]
    if "file" in spec:
        return "email" if email else "bytes", (CORPUS / spec["file"]).read_bytes()
    if "base64" in spec:
        import base64

        return "email" if email else "bytes", base64.b64decode(spec["base64"])
    if "text" in spec:
        pieces = spec["text"] if isinstance(spec["text"], list) else [spec["text"]]
        text = "".join(expand(piece) for piece in pieces)
        return ("email", text.encode("utf-8")) if email else ("text", text)
    if "body" in spec:
        return "body", expand(spec["body"])
    body = {**base, **expand(spec.get("patch", {}))}
    for key in spec.get("remove", []):
        del body[key]
    return "body", body


@cache
def corpus() -> tuple[Case, ...]:
    base = json.loads((CORPUS / "base-job.json").read_text(encoding="utf-8"))
    cases = []
    for path in sorted(CORPUS.glob("*.json")):
        document = json.loads(path.read_text(encoding="utf-8"))
        if "cases" not in document:
            continue
        for spec in document["cases"]:
            kind, payload = _payload(spec, document.get("channel") == "email", base)
            cases.append(
                Case(
                    category=document["category"],
                    name=spec["name"],
                    kind=kind,
                    payload=payload,
                    expect=spec["expect"],
                    expect_on=spec.get("expectOn", {}),
                    error_path=spec.get("errorPath"),
                    message=spec.get("message"),
                    record=spec.get("record", {}),
                    source=spec.get("source"),
                )
            )
    return tuple(cases)


def runs() -> list[Any]:
    return [
        pytest.param(case, channel, id=f"{case.id}/{channel}")
        for case in corpus()
        for channel in CHANNELS[case.kind]
    ]


# --- the intake, one stack per channel --------------------------------------------------------------


@dataclass
class Intake:
    stack: Stack
    app: ModuleType


@pytest.fixture(scope="module")
def intakes() -> Iterator[Callable[[str], Intake]]:
    """One moto account for the module; each channel its own tables, buckets and state machine, so a
    case delivered by several channels (with one explicit jobId) is a first delivery on each. Built on
    first use, inside a test, where the unit tests' environment is set."""
    loaded: dict[str, Intake] = {}
    with pytest.MonkeyPatch.context() as monkeypatch, mock_aws():

        def intake(channel: str) -> Intake:
            if channel not in loaded:
                loaded[channel] = Intake(build_stack(monkeypatch), load_app("intake"))
            return loaded[channel]

        yield intake
    for intake in loaded.values():
        sys.modules.pop(intake.app.__name__, None)


@pytest.fixture
def record_results(monkeypatch: pytest.MonkeyPatch) -> Callable[[ModuleType], list[dict[str, Any]]]:
    """What intake decided for each SQS record (the batch response only lists failures)."""

    def install(app: ModuleType) -> list[dict[str, Any]]:
        results: list[dict[str, Any]] = []
        handler = app.sqs_record_handler

        def recording(record: Any) -> dict[str, Any]:
            results.append(handler(record))
            return results[-1]

        monkeypatch.setattr(app, "sqs_record_handler", recording)
        return results

    return install


def sqs_record(message_id: str, body: str) -> dict[str, Any]:
    record = load_event("intake-sqs")["Records"][0]
    return {**record, "messageId": message_id, "body": body}


def good_body(name: str) -> str:
    base = json.loads((CORPUS / "base-job.json").read_text(encoding="utf-8"))
    return json.dumps({**base, "lockKey": f"tenant-corpus#good-{name}"})


def as_text(body: Any) -> str:
    """A JSON body as a producer would send it: UTF-8 where it can be, escaped where it cannot."""
    text = json.dumps(body, ensure_ascii=False)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return json.dumps(body)
    return text


def s3_event(stack: Stack, key: str, data: bytes) -> dict[str, Any]:
    stack.s3.put_object(Bucket=stack.intake_bucket, Key=key, Body=data)
    etag = stack.s3.head_object(Bucket=stack.intake_bucket, Key=key)["ETag"].strip('"')
    event = load_event("intake-s3-job")
    event["Records"][0]["s3"]["bucket"]["name"] = stack.intake_bucket
    event["Records"][0]["s3"]["object"].update(key=key, size=len(data), eTag=etag)
    return event


@dataclass
class Delivery:
    outcome: dict[str, Any]  # what intake decided: {jobId, status, executionArn?, error?}
    raw: Any  # what the rejected-input document must keep
    truncated: bool = False


def deliver(
    intake: Intake, case: Case, channel: str, lambda_context: Any, results: list[dict[str, Any]]
) -> Delivery:
    app, stack = intake.app, intake.stack
    if channel == "direct":
        response = app.lambda_handler(case.payload, lambda_context)
        if "batchItemFailures" in response:  # an SQS event invoked directly
            assert response == {"batchItemFailures": []}
            return Delivery(results[0], case.payload["Records"][0]["body"])
        if "results" not in response:
            return Delivery(response, case.payload)
        # An S3 event is judged record by record: a record is kept, or only the URI and size of an
        # object too large to read.
        outcome, record = response["results"][0], case.payload["Records"][0]
        if outcome.get("error", {}).get("code") == RejectionCode.OBJECT_TOO_LARGE:
            s3 = record["s3"]
            uri = f"s3://{s3['bucket']['name']}/{s3['object']['key']}"
            return Delivery(outcome, {"uri": uri, "size": s3["object"]["size"]})
        return Delivery(outcome, record)
    if channel == "sqs":
        text = case.payload if case.kind == "text" else as_text(case.payload)
        batch = {
            "Records": [
                sqs_record(f"good-before-{case.name}", good_body(f"{case.name}-before")),
                sqs_record(f"corpus-{case.name}", text),
                sqs_record(f"good-after-{case.name}", good_body(f"{case.name}-after")),
            ]
        }
        response = app.lambda_handler(batch, lambda_context)
        assert response == {"batchItemFailures": []}, "bad input must not be retried"
        before, outcome, after = results
        for good in (before, after):
            assert good["status"] == "STARTED", good
            assert stack.job(good["jobId"])["status"] == "SUBMITTED"
            assert execution_status(stack, good["jobId"]) == "RUNNING"
        return Delivery(outcome, text[:MAX_RAW_CHARS], truncated=len(text) > MAX_RAW_CHARS)
    if case.kind == "text":
        data = case.payload.encode("utf-8")
    elif case.kind == "body":
        data = as_text(case.payload).encode("utf-8")
    else:
        data = case.payload
    key = f"email/{case.name}" if channel == "email" else f"jobs/{case.name}.json"
    response = app.lambda_handler(s3_event(stack, key, data), lambda_context)
    kept = data.decode("utf-8", errors="backslashreplace")
    return Delivery(response["results"][0], kept[:MAX_RAW_CHARS], truncated=len(kept) > MAX_RAW_CHARS)


def execution_status(stack: Stack, job_id: str) -> str | None:
    try:
        arn = execution_arn(stack.state_machine_arn, job_id)
        return str(stack.sfn.describe_execution(executionArn=arn)["status"])
    except ClientError as exc:
        assert exc.response["Error"]["Code"] == "ExecutionDoesNotExist"
        return None


def expected_source(case: Case, channel: str) -> str | None:
    """Each channel records its own source type; an event's depends on the event."""
    return case.source or (None if case.kind == "event" else channel)


# --- the tests ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("case", "channel"), runs())
def test_corpus_case_gets_its_declared_outcome(case, channel, intakes, record_results, lambda_context):
    intake = intakes(channel)
    results = record_results(intake.app)

    delivery = deliver(intake, case, channel, lambda_context, results)

    outcome, stack = delivery.outcome, intake.stack
    expected = case.expected(channel)
    record = stack.job(outcome["jobId"])
    source = expected_source(case, channel)
    if source is not None:
        assert record["source"]["type"] == source
    if expected == ACCEPTED:
        assert outcome["status"] == "STARTED", outcome.get("error")
        assert record["status"] == "SUBMITTED"
        assert execution_status(stack, outcome["jobId"]) == "RUNNING"
        sent = {k: case.payload[k] for k in JOB_FIELDS if case.kind == "body" and k in case.payload}
        assert {k: record[k] for k in sent} == sent
        assert {k: record[k] for k in case.record} == case.record
        return

    assert outcome["status"] == "REJECTED", f"expected {expected}, got {outcome}"
    error = outcome["error"]
    assert error["code"] == expected, error
    assert isinstance(error["message"], str) and error["message"]
    assert all(set(e) == {"path", "message"} for e in error["errors"]), error["errors"]
    assert error["errors"] or expected in WHOLE_INPUT, "a rejection of the job's content names what is wrong"
    if case.error_path:
        assert case.error_path in {e["path"] for e in error["errors"]}, error["errors"]
    if case.message:
        assert error["message"] == case.message
    assert record["status"] == "REJECTED"
    assert record["rejection"] == error
    assert execution_status(stack, outcome["jobId"]) is None

    bucket, _, key = error["rawUri"].removeprefix("s3://").partition("/")
    assert bucket == stack.artifacts_bucket
    match = RAW_KEY.match(key)
    assert match and match["job_id"] == outcome["jobId"], key
    kept = json.loads(stack.s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    assert {k: kept[k] for k in ("jobId", "code", "message", "errors")} == {
        "jobId": outcome["jobId"],
        **{k: error[k] for k in ("code", "message", "errors")},
    }
    assert kept["source"] == record["source"]
    assert kept["raw"] == delivery.raw
    assert kept.get("rawTruncated", False) == delivery.truncated


def test_corpus_is_well_formed_and_covers_every_rejection():
    cases = corpus()
    names = Counter(case.id for case in cases)
    assert [name for name, n in names.items() if n > 1] == []
    assert len(cases) >= 60
    outcomes = {case.expected(channel) for case in cases for channel in CHANNELS[case.kind]}
    assert outcomes - {ACCEPTED} == {str(code) for code in RejectionCode}
    for case in cases:
        assert case.expect == ACCEPTED or case.expect in set(RejectionCode), case.id
        assert set(case.expect_on) <= set(CHANNELS[case.kind]), case.id
    # Direct jobs without a jobId are named after their body: two equal bodies would be one job.
    bodies = Counter(canonical_json(case.payload) for case in cases if case.kind == "body")
    assert [body[:80] for body, n in bodies.items() if n > 1] == []


def test_corpus_summary(capsys):
    """The table docs/RELIABILITY.md quotes: cases and deliveries by category and declared outcome
    (each delivery is checked by test_corpus_case_gets_its_declared_outcome)."""
    cases = corpus()
    categories = sorted({case.category for case in cases})
    table = [("category", "cases", "deliveries", "rejected", "accepted", "rejection codes")]
    for category in categories:
        mine = [case for case in cases if case.category == category]
        outcomes = Counter(case.expected(channel) for case in mine for channel in CHANNELS[case.kind])
        codes = ", ".join(f"{code} {n}" for code, n in sorted(outcomes.items()) if code != ACCEPTED)
        rejected = sum(n for code, n in outcomes.items() if code != ACCEPTED)
        table.append((category, len(mine), sum(outcomes.values()), rejected, outcomes[ACCEPTED], codes))
    totals = [sum(int(row[i]) for row in table[1:]) for i in (1, 2, 3, 4)]
    table.append(("total", *totals, ""))
    widths = [max(len(str(row[i])) for row in table) for i in range(len(table[0]))]
    lines = [
        "  ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)) for row in table
    ]
    with capsys.disabled():
        print("\nintake corpus\n" + "\n".join(lines))
    assert totals[0] == len(cases)
    assert totals[2] + totals[3] == totals[1]
    assert totals[3] >= 10, "odd-but-valid cases must be in the corpus too"
