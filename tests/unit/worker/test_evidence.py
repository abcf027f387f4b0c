"""The evidence's pieces without a browser: the trace policy, the console and network logs (fed the events
Playwright emits), URL scrubbing, artifact kinds and the names reserved for evidence."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import pytest

from browserjobs.core.schema import schema_errors, schemas_dir
from browserjobs.worker import evidence
from browserjobs.worker.artifacts import ArtifactKind, ArtifactStore
from browserjobs.worker.evidence import JobTrace, PageLog, safe_url

pytestmark = pytest.mark.unit


def _redact(text: str) -> str:
    return text.replace("hunter2", "***")


class FakeContext:
    """Records the handlers PageLog registers, and what JobTrace asks of its tracing."""

    def __init__(self) -> None:
        self.handlers: dict[str, Callable[[Any], None]] = {}
        self.calls: list[tuple[str, dict[str, Any]]] = []

        async def start(**options: Any) -> None:
            self.calls.append(("start", options))

        async def stop(**options: Any) -> None:
            self.calls.append(("stop", options))

        self.tracing = SimpleNamespace(start=start, stop=stop)

    def on(self, event: str, handler: Callable[[Any], None]) -> None:
        self.handlers[event] = handler

    def emit(self, event: str, payload: Any) -> None:
        self.handlers[event](payload)


class FakeRequest(SimpleNamespace):
    __hash__ = object.__hash__  # as Playwright's: one object per request, a dictionary key


def _request(url: str, *, response_end: float = -1, failure: str | None = None) -> FakeRequest:
    return FakeRequest(
        url=url,
        method="POST",
        resource_type="xhr",
        timing={"startTime": 1.0, "responseEnd": response_end},
        failure=failure,
        headers={"cookie": "sid=abc"},
    )


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://user:hunter2@shop.example/a?page=2", "https://shop.example/a?page=2"),
        ("https://shop.example/a?token=abc&page=2", "https://shop.example/a?token=***&page=2"),
        ("https://shop.example/a?SessionId=1&x", "https://shop.example/a?SessionId=***&x="),
        ("https://shop.example/a?evidence", "https://shop.example/a?evidence"),  # no sensitive name: as is
        ("https://shop.example/hunter2/", "https://shop.example/***/"),
        ("data:text/html,hi", "data:text/html,hi"),
    ],
)
def test_urls_lose_userinfo_sensitive_query_values_and_secrets(url, expected):
    assert safe_url(url, _redact) == expected


def test_the_network_log_has_no_headers_masks_secrets_and_keeps_the_latest(monkeypatch):
    monkeypatch.setattr(evidence, "MAX_REQUESTS", 2)
    context = FakeContext()
    log = PageLog(context)  # type: ignore[arg-type]
    first, second, third = (
        _request("https://shop.example/one"),
        _request("https://shop.example/two?api_key=k", response_end=41.6),
        _request("https://shop.example/three", failure="net::ERR_FAILED hunter2"),
    )
    for request in (first, second, third):
        context.emit("request", request)
    context.emit("response", SimpleNamespace(request=second, status=201))
    context.emit("requestfinished", second)
    context.emit("requestfailed", third)

    document = json.loads(log.network_json(_redact))

    assert document["omitted"] == 1  # the oldest went: the failure is at the end
    two, three = document["requests"]
    assert {k: two[k] for k in ("url", "method", "resourceType", "status", "state", "durationMs")} == {
        "url": "https://shop.example/two?api_key=***",
        "method": "POST",
        "resourceType": "xhr",
        "status": 201,
        "state": "finished",
        "durationMs": 42,
    }
    assert (three["state"], three["status"], three["failure"]) == ("failed", None, "net::ERR_FAILED ***")
    assert two["startedAt"].endswith("Z")
    assert "sid=abc" not in json.dumps(document) and "headers" not in two


def test_the_console_log_keeps_type_text_location_and_time(monkeypatch):
    monkeypatch.setattr(evidence, "MAX_CONSOLE_MESSAGES", 1)
    context = FakeContext()
    log = PageLog(context)  # type: ignore[arg-type]
    location = {"url": "https://a:b@shop.example/app.js", "lineNumber": 3, "columnNumber": 7}
    context.emit("console", SimpleNamespace(type="log", text="old", location=location, timestamp=0))
    context.emit(
        "console",
        SimpleNamespace(type="error", text="x" * 5000 + "hunter2", location=location, timestamp=1500),
    )

    document = json.loads(log.console_json(_redact))

    assert document["omitted"] == 1
    [message] = document["messages"]
    assert message["type"] == "error" and message["time"] == "1970-01-01T00:00:01.500Z"
    assert message["location"] == {"url": "https://shop.example/app.js", "lineNumber": 3, "columnNumber": 7}
    assert len(message["text"]) == evidence.MAX_TEXT_CHARS and "hunter2" not in message["text"]


@pytest.mark.parametrize(
    ("policy", "started", "kept_on_success", "kept_on_failure"),
    [("on-failure", True, False, True), ("always", True, True, True), ("off", False, False, False)],
)
def test_the_trace_policy(policy, started, kept_on_success, kept_on_failure):
    context = FakeContext()
    trace = JobTrace(context, policy)  # type: ignore[arg-type]

    asyncio.run(trace.start())

    assert trace.running is started
    assert context.calls == (
        [("start", {"screenshots": True, "snapshots": True, "sources": False})] if started else []
    )
    assert (trace.keeps(failed=False), trace.keeps(failed=True)) == (kept_on_success, kept_on_failure)


class FakeS3:
    def __init__(self) -> None:
        self.keys: list[str] = []

    def put_object(self, **request: Any) -> None:
        self.keys.append(request["Key"])


def test_steps_get_a_suffix_for_evidence_names_and_every_entry_has_its_kind():
    s3 = FakeS3()
    store = ArtifactStore(s3, "bucket", "job-1", "key")

    step_files = [
        store.put("console.json", b"{}", "application/json", ArtifactKind.FILE),
        store.put("trace.zip", b"PK", "application/zip", ArtifactKind.DOWNLOAD),
        store.put("shot.png", b"png", "image/png", ArtifactKind.SCREENSHOT),
        store.put("shot.png", b"png", "image/png", ArtifactKind.SCREENSHOT),
    ]
    kept = [
        store.put("console.json", b"{}", "application/json", ArtifactKind.CONSOLE),
        store.put("trace.zip", b"PK", "application/zip", ArtifactKind.TRACE),
    ]

    assert [(e["name"], e["kind"]) for e in step_files] == [
        ("console-2.json", "file"),
        ("trace-2.zip", "download"),
        ("shot.png", "screenshot"),
        ("shot-2.png", "screenshot"),
    ]
    assert [(e["name"], e["kind"]) for e in kept] == [("console.json", "console"), ("trace.zip", "trace")]
    assert s3.keys[-1] == "jobs/job-1/artifacts/trace.zip"


def _result(artifact: dict[str, Any]) -> dict[str, Any]:
    return {
        "jobId": "job-1",
        "action": "browse",
        "status": "SUCCEEDED",
        "taskArn": None,
        "startedAt": "2026-01-01T00:00:00.000Z",
        "endedAt": "2026-01-01T00:00:01.000Z",
        "durationMs": 1000,
        "data": {},
        "artifacts": [artifact],
        "steps": [],
        "blockedRequests": [],
    }


def test_the_result_schema_requires_a_known_kind_for_each_artifact():
    schema = schemas_dir() / "result.schema.json"
    entry = {
        "name": "trace.zip",
        "uri": "s3://b/jobs/job-1/artifacts/trace.zip",
        "contentType": "z",
        "bytes": 2,
    }

    assert schema_errors(_result({**entry, "kind": "trace"}), schema) == []
    assert schema_errors(_result(entry), schema)  # no kind
    assert schema_errors(_result({**entry, "kind": "video"}), schema)
    enum = json.loads(schema.read_text())["$defs"]["artifact"]["properties"]["kind"]["enum"]
    assert enum == [kind.value for kind in ArtifactKind]
