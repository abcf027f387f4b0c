"""The CLI against the whole pipeline on the embedded local stack: submit, follow, history, DLQ, redrive.

The job asks for the instance metadata address, which the worker's egress guard refuses: a failure by
design, so the job deterministically takes the failure path to the DLQ without any network.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
from typer.testing import CliRunner

from browserjobs.ops.cli import app
from tests.cli.local_stack_process import RunningStack

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]
FORBIDDEN_URL = "http://169.254.169.254/latest/meta-data/"


def run(stack: RunningStack, *args: str):
    return CliRunner().invoke(
        app, ["--endpoint-url", stack.url, "--stack", stack.name, *args], env={"COLUMNS": "200"}
    )


def forbidden_job(tmp_path: Path) -> tuple[str, Path]:
    job = json.loads((ROOT / "events" / "intake-direct.json").read_text())
    job.update(
        jobId=f"e2e-{uuid.uuid4().hex[:10]}",
        lockKey=f"e2e#{uuid.uuid4().hex[:6]}",
        params={"steps": [{"goto": {"url": FORBIDDEN_URL}}]},
        timeoutSeconds=120,
        heartbeatSeconds=10,
    )
    path = tmp_path / "job.json"
    path.write_text(json.dumps(job))
    return job["jobId"], path


def test_a_failed_job_is_followed_explained_and_redriven(local_stack, tmp_path):
    job_id, path = forbidden_job(tmp_path)
    submitted = run(local_stack, "submit", str(path), "--follow", "--deadline", "240")
    assert submitted.exit_code == 1, submitted.output  # it ran to the end, and the end is a failure
    assert "RunBrowserTask" in submitted.stdout and "execution FAILED" in submitted.stdout

    status = json.loads(run(local_stack, "status", job_id, "--json").stdout)
    assert status["job"]["status"] in ("FAILED", "TIMED_OUT")
    assert status["execution"]["status"] == "FAILED"

    history = json.loads(run(local_stack, "history", job_id, "--json").stdout)
    states = {state["name"]: state for state in history["states"]}
    assert states["Claim"]["status"] == "SUCCEEDED"
    assert states["RunBrowserTask"]["status"] == "CAUGHT" and states["RunBrowserTask"]["error"]
    assert states["SendToDeadLetterQueue"]["status"] == "SUCCEEDED"

    letters = {m["jobId"]: m for m in json.loads(run(local_stack, "dlq", "list", "--json").stdout)}
    assert letters[job_id]["error"]["Error"] == states["RunBrowserTask"]["error"]

    redriven = run(local_stack, "dlq", "redrive", letters[job_id]["messageId"])
    assert redriven.exit_code == 0, redriven.output
    assert f"{job_id}-r1" in redriven.stdout
    again = json.loads(run(local_stack, "status", f"{job_id}-r1", "--json").stdout)
    assert again["job"]["meta"]["redriveOf"] == job_id and again["execution"] is not None
    remaining = {m["messageId"] for m in json.loads(run(local_stack, "dlq", "list", "--json").stdout)}
    assert letters[job_id]["messageId"] not in remaining


def test_invoke_runs_a_handler_with_the_deployed_functions_environment(local_stack, tmp_path):
    job = json.loads((ROOT / "events" / "intake-direct.json").read_text())
    job.update(jobId=f"invoke-{uuid.uuid4().hex[:10]}", lockKey=f"invoke#{uuid.uuid4().hex[:6]}")
    event = tmp_path / "event.json"
    event.write_text(json.dumps(job))
    result = run(local_stack, "invoke", "IntakeFunction", "-e", str(event))
    assert result.exit_code == 0, result.output
    assert "warning" not in result.stderr  # every variable came resolved from the deployed function
    answer = json.loads(result.stdout)
    assert answer["status"] == "STARTED" and answer["executionArn"].endswith(":" + job["jobId"])
    status = json.loads(run(local_stack, "status", job["jobId"], "--json").stdout)
    assert status["job"]["lockKey"] == job["lockKey"] and status["execution"] is not None
