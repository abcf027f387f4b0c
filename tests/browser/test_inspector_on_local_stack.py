"""The inspector on the real workflow, run by the embedded local stack, in headless Chromium.

UPDATE_DOCS_IMAGES=1 also writes the execution page to docs/img/inspector-execution.png (the README's).
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect
from typer.testing import CliRunner

from browserjobs.ops.cli import app
from browserjobs.ops.inspector.server import InspectorServer, running
from browserjobs.ops.outputs import Target
from tests.browser.pages import SHOTS, node
from tests.cli.local_stack_process import RunningStack

pytestmark = pytest.mark.browser
ROOT = Path(__file__).resolve().parents[2]
DOCS_IMAGE = ROOT / "docs" / "img" / "inspector-execution.png"


@pytest.fixture(scope="module")
def inspector(local_stack: RunningStack) -> Iterator[InspectorServer]:
    with running(Target(local_stack.name, local_stack.url)) as server:
        yield server


def submit_forbidden_job(stack: RunningStack, tmp_path: Path) -> str:
    """A job the egress guard refuses (instance metadata): it fails and goes to the DLQ, no network needed."""
    job = json.loads((ROOT / "events" / "intake-direct.json").read_text())
    job.update(
        jobId=f"inspect-{uuid.uuid4().hex[:8]}",
        lockKey="tenant-a#account-42",
        params={
            "steps": [
                {"goto": {"url": "http://169.254.169.254/latest/meta-data/"}},
                {"screenshot": {"name": "page"}},
            ]
        },
        timeoutSeconds=120,
        heartbeatSeconds=10,
    )
    path = tmp_path / "job.json"
    path.write_text(json.dumps(job))
    result = CliRunner().invoke(
        app,
        [
            "--endpoint-url",
            stack.url,
            "--stack",
            stack.name,
            "submit",
            "--direct",
            str(path),
            "--follow",
            "--deadline",
            "240",
        ],
    )
    assert result.exit_code == 1 and "execution FAILED" in result.stdout, result.output
    return job["jobId"]


def test_the_real_workflow_failure_path_is_drawn_and_explained(local_stack, inspector, page: Page, tmp_path):
    job_id = submit_forbidden_job(local_stack, tmp_path)
    page.set_viewport_size({"width": 1600, "height": 1300})
    page.goto(f"{inspector.url}#/execution/{job_id}")
    expect(node(page, "JobFailed")).to_have_attribute("data-status", "FAILED")
    expect(node(page, "RunBrowserTask")).to_have_attribute("data-status", "CAUGHT")
    for state in ("CheckLock", "Claim", "ReleaseAndRecordFailure", "SendToDeadLetterQueue"):
        expect(node(page, state)).to_have_attribute("data-status", "SUCCEEDED")
    for state in ("ReleaseAndRecordSuccess", "Succeeded", "WaitForLock"):
        expect(node(page, state)).to_have_attribute("data-status", "NOT_VISITED")
    node(page, "RunBrowserTask").click()
    details = page.locator("#state-details")
    expect(details).to_have_attribute("data-state", "RunBrowserTask")
    error = page.locator("#state-details td.error")
    expect(error).not_to_be_empty()
    expect(page.locator("#job")).to_contain_text('"status": "FAILED"')
    page.locator("#graph").evaluate("graph => graph.scrollTo(0, 0)")  # the click scrolled it
    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=SHOTS / "real-workflow-execution.png")
    if os.environ.get("UPDATE_DOCS_IMAGES") == "1":
        DOCS_IMAGE.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=DOCS_IMAGE)

    page.goto(f"{inspector.url}#/dlq")
    expect(page.locator("#dlq tr", has_text=job_id)).to_have_count(1)
