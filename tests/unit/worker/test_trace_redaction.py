"""A trace made safe to keep: a small zip laid out as Playwright writes one (trace.trace, trace.network,
resources/, screencast frames), redacted, then read back."""

from __future__ import annotations

import html
import json
import zipfile
from pathlib import Path
from urllib.parse import quote_plus

import pytest

from browserjobs.worker.trace_redaction import redact_headers, redact_trace

pytestmark = pytest.mark.unit

PASSWORD = 'pa"ss w0rd&<x>'  # quotes, a space and markup: each encoding of it must go
COOKIE = "c0ffee-session-value"
JPEG = b"\xff\xd8\xff\xe0" + PASSWORD.encode() + b"\xff\xd9"  # binary: left alone


def _trace(path: Path) -> None:
    actions = [
        {
            "type": "context-options",
            "options": {"storageState": {"cookies": [{"name": "sid", "value": COOKIE}]}},
        },
        {"type": "before", "callId": "c1", "method": "fill", "params": {"selector": "#p", "value": PASSWORD}},
        {
            "type": "frame-snapshot",
            "snapshot": {"html": ["INPUT", {"__playwright_value_": PASSWORD, "type": "password"}]},
        },
        {"type": "after", "callId": "c2", "result": {"count": 12}},  # numbers survive untouched
    ]
    network = {
        "type": "resource-snapshot",
        "snapshot": {
            "request": {
                "url": "https://shop.example/login",
                "headers": [
                    {"name": "Cookie", "value": f"sid={COOKIE}"},
                    {"name": "Authorization", "value": "Bearer abc"},
                    {"name": "Accept", "value": "text/html"},
                ],
                "cookies": [{"name": "sid", "value": COOKIE}],
                "postData": {"text": "user=alice&password=" + quote_plus(PASSWORD)},
            },
            "response": {
                "status": 302,
                "headers": [{"name": "set-cookie", "value": f"sid={COOKIE}; Path=/"}],
                "cookies": [{"name": "sid", "value": COOKIE}],
            },
        },
    }
    with zipfile.ZipFile(path, "w") as trace:
        trace.writestr("trace.trace", "\n".join(json.dumps(a) for a in actions) + "\n")
        trace.writestr("trace.network", json.dumps(network) + "\n")
        trace.writestr(
            "resources/0a1b.html", f"<input value='{html.escape(PASSWORD)}'> {json.dumps(PASSWORD)}"
        )
        trace.writestr("screencast/page@1-100.jpeg", JPEG)


def test_a_trace_keeps_its_layout_and_loses_cookies_credentials_and_secrets(tmp_path):
    source, target = tmp_path / "raw.zip", tmp_path / "trace.zip"
    _trace(source)

    redact_trace(source, target, {PASSWORD, COOKIE})

    with zipfile.ZipFile(target) as trace:
        members = {name: trace.read(name) for name in trace.namelist()}
    assert set(members) == {
        "trace.trace",
        "trace.network",
        "resources/0a1b.html",
        "screencast/page@1-100.jpeg",
    }
    assert members["screencast/page@1-100.jpeg"] == JPEG
    for name, data in members.items():
        if name.endswith((".trace", ".network", ".html")):
            text = data.decode()
            for form in (
                PASSWORD,
                quote_plus(PASSWORD),
                html.escape(PASSWORD),
                json.dumps(PASSWORD)[1:-1],
                COOKIE,
            ):
                assert form not in text, (name, form)
    actions = [json.loads(line) for line in members["trace.trace"].decode().splitlines() if line]
    assert actions[1]["params"] == {"selector": "#p", "value": "***"}
    assert actions[2]["snapshot"]["html"][1]["__playwright_value_"] == "***"
    assert actions[0]["options"]["storageState"]["cookies"] == [{"name": "sid", "value": "[redacted]"}]
    assert actions[3]["result"] == {"count": 12}
    [entry] = [json.loads(line) for line in members["trace.network"].decode().splitlines() if line]
    request, response = entry["snapshot"]["request"], entry["snapshot"]["response"]
    assert request["headers"] == [
        {"name": "Cookie", "value": "[redacted]"},
        {"name": "Authorization", "value": "[redacted]"},
        {"name": "Accept", "value": "text/html"},
    ]
    assert response["headers"] == [{"name": "set-cookie", "value": "[redacted]"}]
    assert request["postData"]["text"] == "user=alice&password=***"
    assert request["url"] == "https://shop.example/login"


def test_without_secrets_only_cookies_and_credentials_go(tmp_path):
    source, target = tmp_path / "raw.zip", tmp_path / "trace.zip"
    _trace(source)

    redact_trace(source, target, set())

    with zipfile.ZipFile(target) as trace:
        network = trace.read("trace.network").decode()
        actions = trace.read("trace.trace").decode()
    assert COOKIE not in network and "Bearer abc" not in network
    assert json.dumps(PASSWORD)[1:-1] in actions  # nothing said it was secret


def test_header_lists_lose_only_the_sensitive_values():
    headers = [
        {"name": "Proxy-Authorization", "value": "Basic eA=="},
        {"name": "X-Request-Id", "value": "7"},
    ]

    assert redact_headers(headers) == [
        {"name": "Proxy-Authorization", "value": "[redacted]"},
        {"name": "X-Request-Id", "value": "7"},
    ]
