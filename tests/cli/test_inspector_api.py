"""The inspector's JSON API and its guards, over HTTP on loopback."""

from __future__ import annotations

import json
from collections.abc import Iterator
from urllib.parse import quote

import pytest
import requests

from browserjobs.ops.inspector.server import InspectorServer, running
from browserjobs.ops.outputs import Target
from tests.cli.operator_stack import HOSTILE, OperatorStack, dead_letter, png, start_job, wait_for_status

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def inspector(stack: OperatorStack) -> Iterator[InspectorServer]:
    with running(Target(stack.name, stack.url)) as server:
        yield server


def get(inspector: InspectorServer, path: str, **kwargs) -> requests.Response:
    return requests.get(inspector.url.rstrip("/") + path, timeout=30, **kwargs)


def test_the_page_is_served_with_a_strict_content_security_policy(inspector):
    response = get(inspector, "/")
    assert response.status_code == 200 and "browserjobs inspector" in response.text
    policy = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert get(inspector, "/static/app.js").headers["Content-Type"].startswith("text/javascript")
    assert get(inspector, "/static/../server.py").status_code == 404


def test_execution_detail_has_graph_statuses_path_states_and_events(stack, inspector):
    job_id, arn = start_job(stack, "fail-api")
    wait_for_status(stack, arn, {"FAILED"})
    detail = get(inspector, f"/api/executions/{quote(arn, safe='')}").json()
    assert detail["execution"]["status"] == "FAILED"
    assert detail["execution"]["cause"] == f"HTTP 503 from {HOSTILE}"
    assert {node["id"] for node in detail["graph"]["nodes"]} >= {"CheckLock", "JobFailed", "__end__"}
    assert detail["stateStatus"]["JobFailed"] == "FAILED" and "RecordSuccess" not in detail["stateStatus"]
    assert ["TaskOutcome", "MarkFailed"] in detail["transitions"]
    assert [state["name"] for state in detail["states"]][-1] == "JobFailed"
    assert detail["events"][-1]["type"] == "ExecutionFailed"
    assert get(inspector, f"/api/executions/{job_id}").json()["execution"]["executionArn"] == arn


def test_job_detail_lists_artifacts_and_reads_the_result(stack, inspector):
    job_id, _ = start_job(stack, "acct-api-job")
    bucket = stack.outputs["ArtifactsBucketName"]
    stack.client("s3").put_object(Bucket=bucket, Key=f"jobs/{job_id}/artifacts/shot.png", Body=png())
    stack.client("s3").put_object(Bucket=bucket, Key=f"jobs/{job_id}/result.json", Body=b'{"ok": true}')
    detail = get(inspector, f"/api/jobs/{job_id}").json()
    assert detail["job"]["jobId"] == job_id and detail["result"] == {"ok": True}
    listed = get(inspector, f"/api/jobs/{job_id}/artifacts").json()
    assert {(a["name"], a["kind"]) for a in listed["artifacts"]} == {
        ("artifacts/shot.png", "screenshot"),
        ("result.json", "result"),
    }
    assert listed["traceViewer"]["available"] is True
    url = next(a["url"] for a in listed["artifacts"] if a["kind"] == "screenshot")
    assert url == f"/api/jobs/{job_id}/files/artifacts/shot.png"
    image = get(inspector, url)
    assert image.headers["Content-Type"] == "image/png" and image.content == png()
    result = get(inspector, f"/api/jobs/{job_id}/files/result.json")
    assert result.headers["Content-Disposition"] == "attachment" and result.json() == {"ok": True}
    assert get(inspector, "/api/jobs/no-such-job").status_code == 404


def test_artifacts_are_served_from_the_job_s_prefix_only(stack, inspector):
    job_id, _ = start_job(stack, "acct-api-escape")
    s3, bucket = stack.client("s3"), stack.outputs["ArtifactsBucketName"]
    s3.put_object(Bucket=bucket, Key="sessions/acct/state.json", Body=b'{"cookies": []}')
    s3.put_object(Bucket=bucket, Key=f"jobs/{job_id}/artifacts/a.txt", Body=b"mine")
    escapes = [
        f"/api/jobs/{job_id}/files/../../../sessions/acct/state.json",
        f"/api/jobs/{job_id}/files/%2e%2e/%2e%2e/%2e%2e/sessions/acct/state.json",
        f"/api/jobs/{job_id}/files/artifacts/..%2f..%2f..%2fsessions%2facct%2fstate.json",
        "/api/jobs/..%2f..%2fsessions/files/acct/state.json",
        "/api/jobs/%2e%2e/files/sessions/acct/state.json",
        f"/api/jobs/{job_id}/files/artifacts//a.txt",
        f"/api/jobs/{job_id}/files/artifacts\\..\\..\\a.txt",
    ]
    for path in escapes:
        response = requests.get(inspector.url.rstrip("/") + path, timeout=30)
        assert response.status_code == 404, path
        assert "cookies" not in response.text
    assert get(inspector, f"/api/jobs/{job_id}/files/artifacts/a.txt").content == b"mine"


def test_the_trace_viewer_is_served_from_the_playwright_package(inspector):
    page = get(inspector, "/trace-viewer/index.html")
    assert page.status_code == 200 and "Trace Viewer" in page.text
    assert "frame-ancestors 'self'" in page.headers["Content-Security-Policy"]
    assert get(inspector, "/trace-viewer/sw.bundle.js").headers["Content-Type"].endswith("charset=utf-8")
    assert get(inspector, "/trace-viewer/../server.py").status_code == 404
    assert get(inspector, "/trace-viewer/%2e%2e/%2e%2e/__init__.py").status_code == 404


def test_without_playwright_the_viewer_is_reported_unavailable(stack, inspector, monkeypatch):
    monkeypatch.setattr("browserjobs.ops.inspector.api.trace_viewer_root", lambda: None)
    job_id, _ = start_job(stack, "acct-api-noviewer")
    listed = get(inspector, f"/api/jobs/{job_id}/artifacts").json()
    assert listed["traceViewer"]["available"] is False
    assert "playwright show-trace" in listed["traceViewer"]["howTo"]
    missing = get(inspector, "/trace-viewer/index.html")
    assert missing.status_code == 404 and "playwright show-trace" in missing.json()["error"]


def test_a_foreign_host_header_is_refused(inspector):
    response = get(inspector, "/api/executions", headers={"Host": "attacker.example:80"})
    assert response.status_code == 421


def test_redrive_needs_json_and_the_inspector_header(stack, inspector):
    job_id, _ = start_job(stack, "acct-api-redrive")
    message_id = dead_letter(stack, job_id)
    url = inspector.url + "api/dlq/redrive"
    form = requests.post(url, data={"messageId": message_id}, timeout=30)  # what a cross-site form sends
    assert form.status_code == 403
    no_header = requests.post(url, json={"messageId": message_id}, timeout=30)
    assert no_header.status_code == 403
    bad = requests.post(
        url, data="[]", headers={"X-Inspector": "1", "Content-Type": "application/json"}, timeout=30
    )
    assert bad.status_code == 400
    listed = {m["messageId"] for m in get(inspector, "/api/dlq").json()}
    assert message_id in listed  # nothing was redriven by the refused requests
    done = requests.post(url, json={"messageId": message_id}, headers={"X-Inspector": "1"}, timeout=60)
    assert done.status_code == 200, done.text
    assert json.loads(done.text)["newJobId"] == f"{job_id}-r1"
