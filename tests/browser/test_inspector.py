"""The inspector in a real headless Chromium, against executions of a stack on a moto endpoint.

UPDATE_DOCS_IMAGES=1 also writes a failed job's evidence to docs/img/inspector-evidence.png (the README's).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from playwright.sync_api import Browser, expect

from browserjobs.ops.inspector.server import InspectorServer, running
from browserjobs.ops.outputs import Target
from tests.browser.pages import fill_of, node
from tests.cli.operator_stack import (
    HOSTILE,
    OperatorStack,
    dead_letter,
    png,
    queue_message_ids,
    start_job,
    wait_for_status,
)

pytestmark = [pytest.mark.browser, pytest.mark.allow_hosts(["127.0.0.1", "localhost", "::1"])]
DOCS = Path(__file__).resolve().parents[2] / "docs" / "img"
SUCCEEDED_FILL = "rgb(230, 244, 234)"
FAILED_FILL = "rgb(253, 236, 234)"


@pytest.fixture(scope="module")
def inspector(stack: OperatorStack) -> Iterator[InspectorServer]:
    with running(Target(stack.name, stack.url)) as server:
        yield server


def finished_job_with_artifacts(stack: OperatorStack) -> tuple[str, str]:
    """A failed job as the worker leaves it: a screenshot and a result.json under jobs/<jobId>/."""
    job_id, arn = start_job(stack, "fail-inspect", meta={"ticket": HOSTILE})
    wait_for_status(stack, arn, {"FAILED"})
    s3, bucket = stack.client("s3"), stack.outputs["ArtifactsBucketName"]
    s3.put_object(
        Bucket=bucket,
        Key=f"jobs/{job_id}/artifacts/screenshot.png",
        Body=png(320, 200),
        ContentType="image/png",
    )
    s3.put_object(
        Bucket=bucket,
        Key=f"jobs/{job_id}/result.json",
        ContentType="application/json",
        Body=json.dumps({"status": "FAILED", "title": HOSTILE, "httpStatus": 503}).encode(),
    )
    s3.put_object(
        Bucket=bucket,
        Key=f"jobs/{job_id}/artifacts/page.html",
        Body=HOSTILE.encode(),
        ContentType="text/html",
    )
    return job_id, arn


def real_trace(browser: Browser, folder: Path) -> tuple[bytes, bytes]:
    """A Playwright trace of a click on a tiny page, and the page's screenshot, as the worker records them."""
    context = browser.new_context(viewport={"width": 400, "height": 240})
    context.tracing.start(screenshots=True, snapshots=True)
    page = context.new_page()
    page.set_content(ORDER_PAGE)
    page.get_by_role("button", name="Place order").click()
    screenshot = page.screenshot()
    context.tracing.stop(path=folder / "trace.zip")
    context.close()
    return (folder / "trace.zip").read_bytes(), screenshot


ORDER_PAGE = """<body style="font: 16px sans-serif; padding: 16px">
<h3>Checkout</h3><button onclick="document.getElementById('e').textContent = 'Error 503: try again later'">
Place order</button><p id="e" style="color: #c62828"></p></body>"""


def failed_job_with_evidence(stack: OperatorStack, browser: Browser, folder: Path) -> str:
    """A failed job with the worker's failure evidence: trace, failure screenshot, console and network."""
    job_id, arn = start_job(stack, "fail-evidence")
    wait_for_status(stack, arn, {"FAILED"})
    s3, bucket = stack.client("s3"), stack.outputs["ArtifactsBucketName"]
    prefix = f"jobs/{job_id}/artifacts/"
    trace, screenshot = real_trace(browser, folder)
    files = [
        ("trace.zip", "trace", "application/zip", trace),
        ("failure-screenshot.png", "failure-screenshot", "image/png", screenshot),
        ("console.json", "console", "application/json", json.dumps(CONSOLE).encode()),
        ("network.json", "network", "application/json", json.dumps(NETWORK).encode()),
        ("invoice.pdf", "pdf", "application/pdf", b"%PDF-1.4 not really"),
    ]
    entries = []
    for name, kind, content_type, body in files:
        s3.put_object(Bucket=bucket, Key=prefix + name, Body=body, ContentType=content_type)
        uri = f"s3://{bucket}/{prefix}{name}"
        entries.append(
            {"name": name, "uri": uri, "contentType": content_type, "bytes": len(body), "kind": kind}
        )
    result = {"status": "FAILED", "error": "Site.ServerError", "artifacts": entries}
    s3.put_object(Bucket=bucket, Key=f"jobs/{job_id}/result.json", Body=json.dumps(result).encode())
    return job_id


CONSOLE = [{"type": "error", "text": HOSTILE, "location": "https://shop.example/app.js:1"}]
NETWORK = [{"method": "POST", "url": "https://shop.example/api/order", "status": 503, "durationMs": 41}]


def test_a_failed_job_shows_its_evidence_by_kind(stack, inspector, page, browser, tmp_path):
    job_id = failed_job_with_evidence(stack, browser, tmp_path)
    page.goto(f"{inspector.url}#/execution/{job_id}")
    kinds = page.locator("#artifacts section.kind")
    expect(kinds).to_have_count(6)
    assert [k.get_attribute("data-kind") for k in kinds.all()] == [
        "trace",
        "failure-screenshot",
        "console",
        "network",
        "pdf",
        "result",
    ]
    shot = page.locator("#artifacts [data-kind=failure-screenshot] img")
    expect(shot).to_be_visible()
    page.wait_for_function("img => img.complete && img.naturalWidth === 400", arg=shot.element_handle())
    expect(page.locator("#artifacts .records[data-kind=network] td").nth(2)).to_have_text("503")
    expect(page.locator("#artifacts .records[data-kind=console]")).to_contain_text(HOSTILE)  # as text
    assert page.evaluate("document.body.dataset.pwned") is None
    expect(page.locator('#artifacts a[data-name="artifacts/invoice.pdf"]')).to_be_visible()
    if os.environ.get("UPDATE_DOCS_IMAGES") == "1":  # the README's picture of a failed job's evidence
        page.locator("#artifacts").screenshot(path=DOCS / "inspector-evidence.png")

    viewer = page.locator("#artifacts a.open-trace").get_attribute("href")
    page.goto(inspector.url.rstrip("/") + viewer)
    # the viewer lists the trace's actions once its service worker has loaded the trace
    expect(page.get_by_text("Place order").first).to_be_visible(timeout=30_000)
    expect(page.locator(".action-title", has_text="Click").first).to_be_visible()
    expect(page.locator(".action-title", has_text="Set content").first).to_be_visible()


def test_without_playwright_the_page_says_how_to_view_a_trace(
    stack, inspector, page, browser, tmp_path, monkeypatch
):
    monkeypatch.setattr("browserjobs.ops.inspector.api.trace_viewer_root", lambda: None)
    job_id = failed_job_with_evidence(stack, browser, tmp_path)
    page.goto(f"{inspector.url}#/execution/{job_id}")
    expect(page.locator("#artifacts .trace-how")).to_contain_text("playwright show-trace")
    expect(page.locator("#artifacts a.open-trace")).to_have_count(0)


def test_the_execution_page_colours_the_graph_and_shows_the_failure(stack, inspector, page):
    _job_id, arn = finished_job_with_artifacts(stack)
    page.goto(f"{inspector.url}#/execution/{quote(arn, safe='')}")
    expect(node(page, "JobFailed")).to_have_attribute("data-status", "FAILED")
    for state in ("CheckLock", "LockFound", "Claim", "RunBrowserTask", "TaskOutcome", "MarkFailed"):
        expect(node(page, state)).to_have_attribute("data-status", "SUCCEEDED")
    for state in ("WaitForLock", "RecordSuccess", "Succeeded"):
        expect(node(page, state)).to_have_attribute("data-status", "NOT_VISITED")
    assert fill_of(page, "Claim") == SUCCEEDED_FILL
    assert fill_of(page, "JobFailed") == FAILED_FILL
    assert fill_of(page, "RecordSuccess") == "rgb(255, 255, 255)"
    taken = page.locator('path.edge[data-taken="true"]')
    assert {(e.get_attribute("data-source"), e.get_attribute("data-target")) for e in taken.all()} >= {
        ("TaskOutcome", "MarkFailed"),
        ("MarkFailed", "JobFailed"),
    }
    assert (
        page.locator('path.edge[data-source="TaskOutcome"][data-target="RecordSuccess"]').get_attribute(
            "data-taken"
        )
        == "false"
    )

    details = page.locator("#state-details")  # the failed state is selected first, as in the console
    expect(details).to_have_attribute("data-state", "JobFailed")
    expect(details).to_contain_text("Site.ServerError")
    expect(details).to_contain_text(f"HTTP 503 from {HOSTILE}")  # shown as text, never as markup
    node(page, "Claim").click()
    expect(details).to_have_attribute("data-state", "Claim")
    expect(details).to_contain_text('"outcome": "CLAIMED"')
    expect(page.locator("#events tr[data-type=ExecutionFailed]")).to_have_count(1)
    expect(page.locator("#job")).to_contain_text('"lockKey": "fail-inspect"')
    assert page.evaluate("document.body.dataset.pwned") is None
    assert page.locator("img[src='x']").count() == 0


def test_a_finished_job_shows_its_screenshot_result_and_lock(stack, inspector, page):
    job_id, _arn = finished_job_with_artifacts(stack)
    stack.table("LocksTableName").put_item(
        Item={"pk": "lock#fail-inspect", "jobId": job_id, "leaseExpiresAtEpoch": int(time.time()) + 600}
    )
    page.goto(f"{inspector.url}#/execution/{job_id}")
    image = page.locator(
        f'#artifacts [data-kind=screenshot] img[data-key="jobs/{job_id}/artifacts/screenshot.png"]'
    )
    expect(image).to_be_visible()
    page.wait_for_function("img => img.complete && img.naturalWidth === 320", arg=image.element_handle())
    expect(page.locator("#result")).to_contain_text('"httpStatus": 503')
    expect(page.locator("#lock-state")).to_contain_text(f'"jobId": "{job_id}"')
    # a non-image artifact is a download link, never rendered
    link = page.locator('#artifacts a[data-name="artifacts/page.html"]')
    response = page.request.get(inspector.url.rstrip("/") + link.get_attribute("href"))
    assert response.headers["content-disposition"] == "attachment"
    assert response.headers["content-type"] == "application/octet-stream"


def test_a_running_execution_refreshes_until_it_ends(stack, inspector, page):
    job_id, _arn = start_job(stack, "wait-live")
    page.goto(f"{inspector.url}#/execution/{job_id}")
    expect(node(page, "WaitForLock")).to_have_attribute("data-status", "RUNNING", timeout=5000)
    expect(page.locator("h1 .badge")).to_have_text("RUNNING")
    expect(node(page, "Succeeded")).to_have_attribute("data-status", "SUCCEEDED", timeout=15000)
    expect(node(page, "WaitForLock")).to_have_attribute("data-status", "SUCCEEDED")
    expect(page.locator("h1 .badge")).to_have_text("SUCCEEDED")


def test_the_executions_list_filters_by_status(stack, inspector, page):
    ok_id, ok_arn = start_job(stack, "acct-list")
    bad_id, bad_arn = start_job(stack, "fail-list")
    wait_for_status(stack, ok_arn, {"SUCCEEDED"})
    wait_for_status(stack, bad_arn, {"FAILED"})
    page.goto(inspector.url)
    expect(page.locator(f'#executions tr[data-name="{ok_id}"]')).to_be_visible()
    expect(page.locator(f'#executions tr[data-name="{bad_id}"]')).to_be_visible()
    page.locator('.filters a[data-filter="FAILED"]').click()
    expect(page.locator(f'#executions tr[data-name="{ok_id}"]')).to_have_count(0)
    expect(page.locator(f'#executions tr[data-name="{bad_id}"] .badge')).to_have_text("FAILED")
    page.locator(f'#executions tr[data-name="{bad_id}"] a').click()
    expect(node(page, "JobFailed")).to_have_attribute("data-status", "FAILED")


def test_redrive_from_the_dead_letter_page(stack, inspector, page):
    job_id, arn = start_job(stack, "fail-page-redrive")
    wait_for_status(stack, arn, {"FAILED"})
    message_id = dead_letter(stack, job_id, "Site.ServerError", HOSTILE)
    page.goto(f"{inspector.url}#/dlq")
    row = page.locator(f'#dlq tr[data-message="{message_id}"]')
    expect(row).to_contain_text(HOSTILE)
    row.get_by_role("button", name="Redrive").click()
    expect(page.locator("#redriven-job")).to_have_text(f"{job_id}-r1", timeout=20000)
    expect(row).to_have_count(0)
    assert message_id not in queue_message_ids(stack, "DeadLetterQueueUrl")
    wait_for_status(stack, arn.rsplit(":", 1)[0] + f":{job_id}-r1", {"FAILED"})
    page.locator("#redriven-job").click()
    expect(page.locator("h1")).to_contain_text(f"{job_id}-r1")


def test_an_unknown_job_is_reported_on_the_page(inspector, page):
    page.goto(f"{inspector.url}#/execution/no-such-job")
    expect(page.locator("#banner")).to_contain_text("job 'no-such-job' not found")
