"""Evidence of a job's run: the Playwright trace by the job's `trace` policy, and on failure the page's
screenshot, console and network log; all in result.json with their kinds, the failure's in its cause."""

from __future__ import annotations

import io
import json
import zipfile
from typing import Any

import pytest

from browserjobs.worker.errors import ExitCode
from tests.container.site import CONSOLE_MESSAGE, PASSWORD
from tests.container.test_worker_sessions import _login_params, _secret

pytestmark = pytest.mark.container

EVIDENCE = [
    {"name": "failure-screenshot.png", "kind": "failure-screenshot"},
    {"name": "console.json", "kind": "console"},
    {"name": "network.json", "kind": "network"},
    {"name": "trace.zip", "kind": "trace"},
]


def _missing_button(site) -> dict[str, Any]:
    """Loads the fixture page, saves a screenshot named like the evidence, then clicks what never appears."""
    return {
        "steps": [
            {"goto": {"url": site.url("/page?evidence")}},
            {"screenshot": {"name": "failure-screenshot"}},
            {"click": {"selector": "#never-there", "timeoutMs": 1500}},
        ]
    }


def _kinds(result: dict[str, Any]) -> dict[str, str]:
    return {a["name"]: a["kind"] for a in result["artifacts"]}


def _trace_members(stack, job_id: str) -> dict[str, bytes]:
    body = stack.artifact(job_id, "trace.zip")["Body"].read()
    with zipfile.ZipFile(io.BytesIO(body)) as trace:
        return {name: trace.read(name) for name in trace.namelist()}


def _actions(members: dict[str, bytes]) -> list[dict[str, Any]]:
    events = [json.loads(line) for line in members["trace.trace"].decode().splitlines() if line]
    return [e for e in events if e.get("type") == "before"]


def test_a_click_that_never_finds_its_element_leaves_trace_screenshot_console_and_network(
    worker, stack, site
):
    job_id = stack.put_job("browse", _missing_button(site))  # no `trace`: the default, on-failure

    code, execution = worker.run(job_id)

    # Not the job's deadline: the step's own wait ran out (docs/CONTRACTS.md, Job.StepTimeout).
    assert code == ExitCode.BY_ERROR["Job.StepTimeout"]
    assert execution["error"] == "Job.StepTimeout"
    _, cause = worker.failure()
    assert cause["step"] == {"index": 3, "type": "click"}
    assert cause["artifacts"] == EVIDENCE
    result = stack.result(job_id)
    assert json.loads(result["error"]["Cause"])["artifacts"] == EVIDENCE
    # The step's own file keeps its place but not the evidence's name.
    assert _kinds(result) == {"failure-screenshot-2.png": "screenshot"} | {
        e["name"]: e["kind"] for e in EVIDENCE
    }
    for entry in result["artifacts"]:
        stored = stack.artifact(job_id, entry["name"])
        assert stored["ServerSideEncryption"] == "aws:kms"
        assert stored["ContentLength"] == entry["bytes"] and stored["ContentType"] == entry["contentType"]
    assert stack.artifact(job_id, "failure-screenshot.png")["Body"].read().startswith(b"\x89PNG\r\n\x1a\n")
    assert (
        next(a for a in result["artifacts"] if a["name"] == "trace.zip")["contentType"] == "application/zip"
    )

    clicks = [a for a in _actions(_trace_members(stack, job_id)) if a["method"] == "click"]
    assert [c["params"]["selector"] for c in clicks] == ["#never-there"]

    console = json.loads(stack.artifact(job_id, "console.json")["Body"].read())
    [logged] = [m for m in console["messages"] if m["text"] == CONSOLE_MESSAGE]
    assert logged["type"] == "log" and logged["location"]["url"] == site.url("/page?evidence")
    assert logged["time"].endswith("Z") and console["omitted"] == 0

    network = json.loads(stack.artifact(job_id, "network.json")["Body"].read())
    [page] = [r for r in network["requests"] if r["url"] == site.url("/page?evidence")]
    assert (page["method"], page["resourceType"], page["status"], page["state"]) == (
        "GET",
        "document",
        200,
        "finished",
    )
    assert page["durationMs"] >= 0 and page["failure"] is None and "headers" not in page


@pytest.mark.parametrize(("policy", "kept"), [("always", ["trace.zip"]), ("on-failure", []), ("off", [])])
def test_a_succeeding_job_keeps_a_trace_only_when_its_policy_says_always(worker, stack, site, policy, kept):
    steps = [{"goto": {"url": site.url("/page")}}, {"extract": {"fields": {"t": {"selector": "#title"}}}}]
    job_id = stack.put_job("browse", {"steps": steps}, trace=policy)

    code, execution = worker.run(job_id)

    assert code == ExitCode.SUCCEEDED
    assert [a["name"] for a in stack.result(job_id)["artifacts"]] == kept
    assert json.loads(execution["output"])["artifacts"] == [
        f"s3://{stack.names['bucket']}/jobs/{job_id}/artifacts/{name}" for name in kept
    ]
    if kept:
        [goto] = [a for a in _actions(_trace_members(stack, job_id)) if a["method"] == "goto"]
        assert goto["params"]["url"] == site.url("/page")


def test_trace_off_keeps_no_trace_of_a_failure_but_the_rest_of_its_evidence(worker, stack, site):
    job_id = stack.put_job("browse", _missing_button(site), trace="off")

    code, _ = worker.run(job_id)

    assert code == ExitCode.BY_ERROR["Job.StepTimeout"]
    _, cause = worker.failure()
    assert cause["artifacts"] == EVIDENCE[:3]
    assert "trace.zip" not in _kinds(stack.result(job_id))


def test_a_form_login_trace_holds_neither_the_password_nor_the_session_cookie(worker, stack, site):
    _secret(stack)
    sessions_before = set(site.sessions)
    job_id = stack.put_job("form_login", _login_params(site), session="acme-ops", trace="always")

    code, _ = worker.run(job_id)

    assert code == ExitCode.SUCCEEDED, worker.calls
    [sid] = site.sessions - sessions_before
    members = _trace_members(stack, job_id)
    for name, data in members.items():
        assert PASSWORD.encode() not in data, name
        assert sid.encode() not in data, name
    # What was recorded is there, masked: the password's fill, and the login's Set-Cookie header.
    fills = [a["params"] for a in _actions(members) if a["method"] == "fill"]
    assert {"selector": "#password", "value": "***"}.items() <= fills[-1].items()
    network = members["trace.network"].decode()
    assert '{"name":"Set-Cookie","value":"[redacted]"}' in network
