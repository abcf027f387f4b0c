"""Every ` ```sh local` block of docs/RUNBOOK.md and docs/TROUBLESHOOTING.md, run as an operator runs
it (after its document's setup block, with bash, the AWS CLI, jq and `browserjobs`) against a local stack
that has failed jobs in its DLQ and messages of both kinds in its intake DLQ. Each must exit 0, and the
ones that act must have done what the docs say, so the docs cannot rot."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from browserjobs.emulator.stack import LocalStack
from browserjobs.ops import dlq
from browserjobs.testing.harness import Harness, new_id, poll
from browserjobs.testing.sample_site.server import SampleSite

from .doc_blocks import Block, shell_blocks

MISSING = [tool for tool in ("bash", "aws", "jq") if shutil.which(tool) is None]
pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(bool(MISSING), reason=f"the runbook's commands need {', '.join(MISSING)} on PATH"),
]

BLOCK_SECONDS = 180
JOB_SECONDS = 120
VENV_BIN = Path(sys.executable).parent
LOCAL_BLOCKS = [block for block in shell_blocks() if block.runs_locally and not block.is_setup]


@dataclass
class Operator:
    """The local stack as the runbook sees it, and what it was prepared with."""

    stack: LocalStack
    harness: Harness
    workdir: Path
    failed_job: str
    failed_message: str
    other_failed_job: str

    def environment(self) -> dict[str, str]:
        env = {key: value for key, value in os.environ.items() if not key.startswith("AWS_")}
        env.update(self.stack.environment())
        env.pop("AWS_ENDPOINT_URL")  # every command must name the endpoint itself, as the docs show
        env.update(
            STACK=self.stack.stack_name,
            ENDPOINT=f"--endpoint-url {self.stack.endpoint_url}",
            JOB_ID=self.failed_job,
            MESSAGE_ID=self.failed_message,
            PATH=f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        )
        return env

    def run(self, block: Block) -> subprocess.CompletedProcess[str]:
        setup = [b.text for b in shell_blocks() if b.doc == block.doc and b.is_setup and b.line < block.line]
        script = "\n".join(["set -euo pipefail", *setup, block.text])
        return subprocess.run(
            ["bash", "-c", script],
            cwd=self.workdir,
            env=self.environment(),
            capture_output=True,
            text=True,
            timeout=BLOCK_SECONDS,
            check=False,
        )


def _failing_job(site_url: str) -> dict[str, Any]:
    lock_key = new_id("runbook")
    return {
        "jobId": new_id("runbook"),
        "lockKey": lock_key,
        # A breaker of its own: its four failed attempts (Site.ServerError, three retries) stay under the
        # threshold, so the job fails at once instead of waiting for the sample site's breaker.
        "siteKey": lock_key,
        "action": "browse",
        "params": {"steps": [{"goto": {"url": f"{site_url}/status/503"}}]},
        "timeoutSeconds": 60,
        "heartbeatSeconds": 10,
    }


def _seed_intake_dlq(harness: Harness, site_url: str) -> None:
    """One message of each kind, as they arrive there: a queue message that intake failed five times
    (moved by the redrive policy: its body, nothing added), and an S3 event whose asynchronous invocation
    failed three times (sent by Lambda with RequestID, ErrorCode and ErrorMessage). Both are put there
    directly: waiting for five receives at the queue's visibility timeout, or for Lambda's retries, would
    take many minutes."""
    sqs, s3 = harness.client("sqs"), harness.client("s3")
    dlq_url, bucket = harness.outputs["IntakeDeadLetterQueueUrl"], harness.outputs["IntakeBucketName"]
    queued = _failing_job(site_url) | {"params": {"steps": [{"goto": {"url": f"{site_url}/"}}]}}
    sqs.send_message(QueueUrl=dlq_url, MessageBody=json.dumps(queued))
    key = f"manual/{uuid.uuid4().hex}.json"  # outside jobs/ and email/: nothing is notified of it
    body = json.dumps(_failing_job(site_url) | {"params": {"steps": [{"goto": {"url": f"{site_url}/"}}]}})
    etag = s3.put_object(Bucket=bucket, Key=key, Body=body.encode())["ETag"].strip('"')
    event = json.loads((Path(__file__).parents[2] / "events" / "intake-s3-job.json").read_text())
    event["Records"][0]["s3"]["bucket"] |= {"name": bucket, "arn": f"arn:aws:s3:::{bucket}"}
    event["Records"][0]["s3"]["object"] |= {"key": key, "size": len(body), "eTag": etag}
    attributes = {
        "RequestID": str(uuid.uuid4()),
        "ErrorCode": "200",
        "ErrorMessage": "An error occurred (ThrottlingException) when calling the PutItem operation",
    }
    sqs.send_message(
        QueueUrl=dlq_url,
        MessageBody=json.dumps(event),
        MessageAttributes={k: {"DataType": "String", "StringValue": v} for k, v in attributes.items()},
    )


@pytest.fixture(scope="module")
def operator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Operator]:
    logs = tmp_path_factory.mktemp("runbook-logs")
    with SampleSite() as site, LocalStack.start(port=0, log_dir=logs, say=lambda _: None) as stack:
        harness = Harness.for_endpoint(stack.stack_name, stack.endpoint_url)
        jobs = [_failing_job(site.url) for _ in range(2)]
        for job in jobs:
            harness.submit(job)
        for job in jobs:
            record, _ = harness.wait_for_job_end(job["jobId"], JOB_SECONDS)
            assert record["status"] == "FAILED", record
            harness.dead_letters(job["jobId"], 30)
        letters = {letter.job_id: letter.message_id for letter in dlq.list_dead_letters(harness.target)}
        _seed_intake_dlq(harness, site.url)

        workdir = tmp_path_factory.mktemp("operator")
        # The project folder (a checkout), as operators run these commands from.
        for name in ("events", "template.yaml", "functions", "statemachines"):
            (workdir / name).symlink_to(Path(__file__).parents[2] / name)
        (workdir / "cookies.json").write_text(
            json.dumps([{"name": "sid", "value": "local-only", "domain": "127.0.0.1", "path": "/"}])
        )
        (workdir / "credentials.json").write_text(json.dumps({"username": "ops", "password": "local-only"}))
        yield Operator(stack, harness, workdir, jobs[0]["jobId"], letters[jobs[0]["jobId"]], jobs[1]["jobId"])


def _dlq_job_ids(operator: Operator) -> set[str | None]:
    return {letter.job_id for letter in dlq.list_dead_letters(operator.harness.target)}


def _intake_dlq_depth(operator: Operator) -> int:
    attributes = operator.harness.client("sqs").get_queue_attributes(
        QueueUrl=operator.harness.outputs["IntakeDeadLetterQueueUrl"],
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return sum(int(value) for value in attributes.values())


# What some blocks must have printed or done, besides exiting 0: (a line of the block) -> check.
Check = Callable[[Operator, str], None]


def _prints(expected: Callable[[Operator], str]) -> Check:
    def check(operator: Operator, stdout: str) -> None:
        assert expected(operator) in stdout

    return check


def _redrove_one(operator: Operator, stdout: str) -> None:
    assert f"{operator.failed_job} → {operator.failed_job}-r1" in stdout
    assert f"{operator.other_failed_job} → {operator.other_failed_job}-r1" in stdout
    assert operator.failed_job not in _dlq_job_ids(operator)


def _emptied_the_intake_dlq(operator: Operator, stdout: str) -> None:
    assert "invoked intake with event" in stdout  # the S3 event, to intake directly
    assert "COMPLETED: 1 of 1 moved" in stdout  # the queue message, back to IntakeQueue
    poll("the intake DLQ to be empty", lambda: _intake_dlq_depth(operator) == 0, 10)


CHECKS: dict[str, Check] = {
    "dlq list\n": _prints(lambda op: op.failed_job),
    "doctor --json": _prints(lambda op: '"check": "drift"'),
    "dlq redrive --all": _redrove_one,
    'status "$JOB_ID-r1"': _prints(lambda op: f"{op.failed_job}-r1"),
    "sessions upload": _prints(lambda op: "stored the session of 'acme-ops'"),
    "dlq redrive --intake": _emptied_the_intake_dlq,
    'history "$JOB_ID" --events': _prints(lambda op: "RunBrowserTask"),
    'result.json" -': _prints(lambda op: '"Site.ServerError"'),
    # The failed job's evidence: its page answered 503 (the sample site's /status/503).
    "artifacts/network.json": _prints(lambda op: '"status": 503'),
}


@pytest.mark.parametrize("block", LOCAL_BLOCKS, ids=lambda block: f"{block.doc}:{block.line}")
def test_the_documented_command_works_on_the_local_stack(operator: Operator, block: Block) -> None:
    completed = operator.run(block)
    assert completed.returncode == 0, (
        f"{block.name} exited {completed.returncode}\n--- block\n{block.text}\n"
        f"--- stdout\n{completed.stdout[-3000:]}\n--- stderr\n{completed.stderr[-3000:]}"
    )
    for line, check in CHECKS.items():
        if line in block.text + "\n":
            check(operator, completed.stdout)


def test_every_check_matches_a_block() -> None:
    texts = [block.text + "\n" for block in LOCAL_BLOCKS]
    assert all(any(line in text for text in texts) for line in CHECKS)
