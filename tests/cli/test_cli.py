"""The operator CLI against a stack on a moto endpoint, through Typer's CliRunner."""

from __future__ import annotations

import json
import os
import re
import select
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest
import requests
from typer.testing import CliRunner

from browserjobs.core.ids import sqs_job_id
from browserjobs.ops.cli import app
from tests.cli.operator_stack import (
    HOSTILE,
    OperatorStack,
    dead_letter,
    queue_message_ids,
    sample_job,
    start_job,
    wait_for_status,
)

pytestmark = pytest.mark.unit
ROOT = Path(__file__).resolve().parents[2]


def run(stack: OperatorStack, *args: str, stdin: str | None = None, stack_name: str | None = None):
    runner = CliRunner()
    return runner.invoke(
        app,
        ["--endpoint-url", stack.url, "--stack", stack_name or stack.name, *args],
        input=stdin,
        env={"COLUMNS": "200"},
    )


def job(**fields) -> dict:
    return sample_job(f"acct-{uuid.uuid4().hex[:6]}", **fields)


def write(tmp_path: Path, value, name: str = "job.json") -> Path:
    path = tmp_path / name
    path.write_text(value if isinstance(value, str) else json.dumps(value))
    return path


# -- submit ----------------------------------------------------------------------------------------


def test_submit_direct_starts_the_execution_named_by_the_job_id(stack, tmp_path):
    document = job()
    result = run(stack, "submit", "--direct", str(write(tmp_path, document)))
    assert result.exit_code == 0, result.output
    answer = json.loads(result.stdout[result.stdout.index("{") :])
    assert answer["status"] == "STARTED"
    assert answer["executionArn"].endswith(":" + document["jobId"])
    assert wait_for_status(stack, answer["executionArn"], {"SUCCEEDED"}) == "SUCCEEDED"
    record = stack.table("JobsTableName").get_item(Key={"jobId": document["jobId"]})["Item"]
    assert record["lockKey"] == document["lockKey"]


def test_submitting_the_same_job_twice_starts_one_execution(stack, tmp_path):
    path = write(tmp_path, job())
    first, second = (run(stack, "submit", "--direct", str(path)) for _ in range(2))
    assert first.exit_code == second.exit_code == 0, second.output
    assert '"STARTED"' in first.stdout and '"DUPLICATE"' in second.stdout


def test_submit_sends_the_job_to_the_intake_queue(stack, tmp_path):
    document = job()
    result = run(stack, "submit", str(write(tmp_path, document)))
    assert result.exit_code == 0, result.output
    message = stack.client("sqs").receive_message(
        QueueUrl=stack.outputs["IntakeQueueUrl"], WaitTimeSeconds=1
    )["Messages"][0]
    assert json.loads(message["Body"]) == document
    assert message["MessageId"] in result.stdout


def test_submit_without_a_job_id_prints_the_one_intake_derives(stack, tmp_path):
    document = job()
    del document["jobId"]
    result = run(stack, "submit", str(write(tmp_path, document)))
    assert result.exit_code == 0, result.output
    message = stack.client("sqs").receive_message(
        QueueUrl=stack.outputs["IntakeQueueUrl"], WaitTimeSeconds=1
    )["Messages"][0]
    assert f"job {sqs_job_id(message['MessageId'])}" in result.stdout


def test_submit_reads_the_job_from_stdin(stack):
    document = job()
    result = run(stack, "submit", "--direct", "-", stdin=json.dumps(document))
    assert result.exit_code == 0, result.output
    assert '"STARTED"' in result.stdout


def test_submit_rejects_malformed_json_before_sending_anything(stack, tmp_path):
    before = queue_message_ids(stack, "IntakeQueueUrl")
    result = run(stack, "submit", str(write(tmp_path, '{"jobId": "x",\n "lockKey": }')))
    assert result.exit_code == 2
    assert "not JSON" in result.stderr and "line 2" in result.stderr
    assert queue_message_ids(stack, "IntakeQueueUrl") == before


def test_submit_lists_every_schema_violation(stack, tmp_path):
    bad = {"jobId": "has spaces!", "action": "browse", "onConflict": "sometimes"}
    result = run(stack, "submit", str(write(tmp_path, bad)))
    assert result.exit_code == 2
    assert "INVALID_JOB" in result.stderr
    for path in ("/jobId", "/onConflict", "/: 'lockKey' is a required property"):
        assert path in result.stderr, result.stderr


def test_submit_of_a_missing_file_is_bad_input(stack, tmp_path):
    result = run(stack, "submit", str(tmp_path / "nope.json"))
    assert result.exit_code == 2
    assert "cannot read" in result.stderr


# -- finding the stack -----------------------------------------------------------------------------


def test_a_missing_stack_is_a_clear_error(stack):
    result = run(stack, "status", "any-job", stack_name="no-such-stack")
    assert result.exit_code == 1
    assert "stack 'no-such-stack' not found" in result.stderr


def test_a_stack_without_the_outputs_names_the_missing_one(stack):
    name = f"bare-{uuid.uuid4().hex[:6]}"
    stack.client("cloudformation").create_stack(
        StackName=name,
        TemplateBody=json.dumps(
            {"Resources": {"Queue": {"Type": "AWS::SQS::Queue"}}, "Outputs": {"Other": {"Value": "x"}}}
        ),
    )
    result = run(stack, "status", "any-job", stack_name=name)
    assert result.exit_code == 1
    assert "has no output 'JobsTableName'" in result.stderr and "Other" in result.stderr


def test_an_unreachable_endpoint_is_a_clear_error():
    result = CliRunner().invoke(app, ["--endpoint-url", "http://127.0.0.1:9", "status", "x"])
    assert result.exit_code == 1
    assert "cannot reach CloudFormation at http://127.0.0.1:9" in result.stderr


# -- status, history, follow, executions -----------------------------------------------------------


def test_status_of_an_unknown_job_is_not_found(stack):
    result = run(stack, "status", "never-submitted")
    assert result.exit_code == 3
    assert "job 'never-submitted' not found" in result.stderr


def test_status_shows_the_record_and_the_execution(stack):
    job_id, arn = start_job(stack, "acct-status")
    wait_for_status(stack, arn, {"SUCCEEDED"})
    result = run(stack, "status", job_id, "--json")
    assert result.exit_code == 0, result.output
    shown = json.loads(result.stdout)
    assert shown["job"]["jobId"] == job_id and shown["job"]["lockKey"] == "acct-status"
    assert shown["execution"]["status"] == "SUCCEEDED"


def test_history_shows_states_durations_and_the_failure_with_its_cause(stack):
    job_id, arn = start_job(stack, "fail-history")
    wait_for_status(stack, arn, {"FAILED"})
    result = run(stack, "history", job_id)
    assert result.exit_code == 0, result.output
    for text in ("CheckLock", "RunBrowserTask", "MarkFailed", "JobFailed", "Site.ServerError", "HTTP 503"):
        assert text in result.stdout
    as_json = json.loads(run(stack, "history", job_id, "--json").stdout)
    by_name = {state["name"]: state for state in as_json["states"]}
    assert by_name["Claim"]["status"] == "SUCCEEDED" and by_name["Claim"]["duration_ms"] is not None
    assert by_name["JobFailed"]["status"] == "FAILED"
    assert by_name["JobFailed"]["cause"] == f"HTTP 503 from {HOSTILE}"
    assert "RecordSuccess" not in by_name
    assert [e["type"] for e in as_json["events"]][-1] == "ExecutionFailed"


def test_follow_prints_events_until_the_job_succeeds(stack):
    job_id, _ = start_job(stack, "wait-follow")
    result = run(stack, "follow", job_id, "--deadline", "30", "--interval", "0.3")
    assert result.exit_code == 0, result.output
    assert "WaitStateEntered" in result.stdout and "ExecutionSucceeded" in result.stdout
    assert "execution SUCCEEDED" in result.stdout


def test_follow_exits_non_zero_for_a_failed_job(stack):
    job_id, _ = start_job(stack, "fail-follow")
    result = run(stack, "follow", job_id, "--deadline", "30", "--interval", "0.3")
    assert result.exit_code == 1
    assert "ExecutionFailed" in result.stdout


def test_follow_gives_up_at_its_deadline(stack):
    job_id, arn = start_job(stack, "wait-deadline")
    result = run(stack, "follow", job_id, "--deadline", "0.5", "--interval", "0.2")
    assert result.exit_code == 4
    # Still RUNNING when it gave up: it did not wait for the execution's end (a Wait state of 3 s).
    assert "deadline of 0s passed; execution is RUNNING" in result.stderr
    wait_for_status(stack, arn, {"SUCCEEDED"})


def test_executions_filters_by_status(stack):
    ok_id, ok_arn = start_job(stack, "acct-list")
    bad_id, bad_arn = start_job(stack, "fail-list")
    wait_for_status(stack, ok_arn, {"SUCCEEDED"})
    wait_for_status(stack, bad_arn, {"FAILED"})
    failed = json.loads(run(stack, "executions", "--status", "failed", "--json").stdout)
    names = {execution["name"] for execution in failed}
    assert bad_id in names and ok_id not in names
    assert {execution["status"] for execution in failed} == {"FAILED"}


def test_executions_rejects_an_unknown_status(stack):
    result = run(stack, "executions", "--status", "DONE")
    assert result.exit_code == 2
    assert "unknown status 'DONE'" in result.stderr


@pytest.mark.parametrize(
    "lock_key, ends, message",
    [
        ("acct-redrive-ok", "SUCCEEDED", "execution is SUCCEEDED: only FAILED"),  # nothing to rerun
        ("fail-redrive-exec", "FAILED", "RedriveExecution failed"),  # moto does not implement the API
    ],
)
def test_redrive_execution_explains_why_it_cannot(stack, lock_key, ends, message):
    job_id, arn = start_job(stack, lock_key)
    wait_for_status(stack, arn, {ends})
    result = run(stack, "redrive-execution", job_id)
    assert result.exit_code == 1
    assert message in result.stderr


# -- the DLQ ---------------------------------------------------------------------------------------


def test_dlq_list_shows_the_reasons_and_consumes_nothing(stack):
    job_id, _ = start_job(stack, "fail-dlq-list")
    message_id = dead_letter(stack, job_id, "Worker.Timeout", "no heartbeat for 60 s")
    for _ in range(2):  # listing twice shows the same message: listing does not hide it
        result = run(stack, "dlq", "list", "--json")
        assert result.exit_code == 0, result.output
        listed = {m["messageId"]: m for m in json.loads(result.stdout)}
        assert listed[message_id]["jobId"] == job_id
        assert listed[message_id]["error"] == {"Error": "Worker.Timeout", "Cause": "no heartbeat for 60 s"}
    assert message_id in queue_message_ids(stack, "DeadLetterQueueUrl")


def test_dlq_redrive_resubmits_then_deletes_the_message(stack):
    job_id, arn = start_job(stack, "fail-redrive")
    wait_for_status(stack, arn, {"FAILED"})
    message_id = dead_letter(stack, job_id)
    result = run(stack, "dlq", "redrive", message_id)
    assert result.exit_code == 0, result.output
    new_id = f"{job_id}-r1"
    assert new_id in result.stdout
    record = stack.table("JobsTableName").get_item(Key={"jobId": new_id})["Item"]
    assert record["meta"]["redriveOf"] == job_id and record["meta"]["redriveMessageId"] == message_id
    assert record["lockKey"] == "fail-redrive" and record["action"] == "browse"
    new_arn = arn.rsplit(":", 1)[0] + ":" + new_id
    assert wait_for_status(stack, new_arn, {"FAILED", "SUCCEEDED"})
    assert message_id not in queue_message_ids(stack, "DeadLetterQueueUrl")


def test_a_redrive_interrupted_before_the_delete_resumes_without_a_duplicate(stack):
    job_id, _ = start_job(stack, "acct-resume")
    message_id = dead_letter(stack, job_id)
    # the first attempt re-submitted <jobId>-r1 and stopped before deleting the message
    start_job(
        stack,
        "acct-resume",
        job_id=f"{job_id}-r1",
        meta={"redriveOf": job_id, "redriveMessageId": message_id},
    )
    result = run(stack, "dlq", "redrive", message_id)
    assert result.exit_code == 0, result.output
    assert f"{job_id}-r1" in result.stdout
    assert "Item" not in stack.table("JobsTableName").get_item(Key={"jobId": f"{job_id}-r2"})
    assert message_id not in queue_message_ids(stack, "DeadLetterQueueUrl")


def test_a_second_failure_is_redriven_as_the_next_attempt(stack):
    job_id, _ = start_job(stack, "acct-second")
    start_job(stack, "acct-second", job_id=f"{job_id}-r1", meta={"redriveOf": job_id})
    message_id = dead_letter(stack, f"{job_id}-r1")
    result = run(stack, "dlq", "redrive", message_id)
    assert result.exit_code == 0, result.output
    assert f"{job_id}-r2" in result.stdout


def test_a_message_that_cannot_be_redriven_stays_in_the_dlq(stack):
    orphan = dead_letter(stack, "job-without-record")
    garbage = dead_letter(stack, None, raw="not json at all")
    result = run(stack, "dlq", "redrive", "--all")
    assert result.exit_code == 1
    assert "has no record to re-submit from" in result.stderr
    assert "has no jobId" in result.stderr
    assert {orphan, garbage} <= queue_message_ids(stack, "DeadLetterQueueUrl")


def test_dlq_redrive_needs_a_message_or_all(stack):
    result = run(stack, "dlq", "redrive")
    assert result.exit_code == 2
    assert "give a MESSAGE_ID or --all" in result.stderr


def test_dlq_redrive_of_an_unknown_message(stack):
    result = run(stack, "dlq", "redrive", "00000000-0000-0000-0000-000000000000")
    assert result.exit_code == 3
    assert "is not in the DLQ" in result.stderr


# -- locks and sessions ----------------------------------------------------------------------------


def test_locks_purge_expired_ends_the_overdue_job_and_frees_only_expired_leases(stack):
    overdue_id, overdue_arn = start_job(stack, "hold-overdue")  # its execution is still waiting
    live_id, _ = start_job(stack, "acct-live")
    table = stack.table("LocksTableName")
    now = int(time.time())
    table.put_item(Item={"pk": "lock#hold-overdue", "jobId": overdue_id, "leaseExpiresAtEpoch": now - 60})
    table.put_item(
        Item={"pk": "slot#3", "jobId": overdue_id, "lockKey": "hold-overdue", "leaseExpiresAtEpoch": now - 60}
    )
    table.put_item(Item={"pk": "lock#acct-live", "jobId": live_id, "leaseExpiresAtEpoch": now + 600})
    table.put_item(Item={"pk": "bucket#acct-live", "tokens": 1, "refilledAtMs": now * 1000})

    dry = run(stack, "locks", "purge-expired", "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert f"would end {overdue_id} (lock hold-overdue)" in dry.stdout and live_id not in dry.stdout
    assert "Item" in table.get_item(Key={"pk": "lock#hold-overdue"})

    result = run(stack, "locks", "purge-expired")
    assert result.exit_code == 0, result.output
    assert f"{overdue_id}: ended TIMED_OUT, released its lock, slot 3" in result.stdout
    remaining = {item["pk"] for item in table.scan()["Items"]}
    assert {"lock#acct-live", "bucket#acct-live"} <= remaining
    assert not {"lock#hold-overdue", "slot#3"} & remaining
    record = stack.table("JobsTableName").get_item(Key={"jobId": overdue_id})["Item"]
    assert record["status"] == "TIMED_OUT"
    assert wait_for_status(stack, overdue_arn, {"ABORTED"}) == "ABORTED"  # the sweep stopped it
    letters = json.loads(run(stack, "dlq", "list", "--json").stdout)
    assert any(m["jobId"] == overdue_id and m["source"] == "cleanup" for m in letters)


def test_sessions_upload_stores_the_state_encrypted_and_records_it(stack, tmp_path):
    state = {
        "cookies": [{"name": "sid", "value": "s3cr3t", "domain": ".example.com", "path": "/"}],
        "origins": [],
    }
    result = run(
        stack,
        "sessions",
        "upload",
        "--account",
        "tenant#acct-1",
        "--cookies",
        str(write(tmp_path, state, "state.json")),
    )
    assert result.exit_code == 0, result.output
    assert "s3cr3t" not in result.output  # cookie values are never printed
    s3, bucket = stack.client("s3"), stack.outputs["ArtifactsBucketName"]
    head_key = "sessions/tenant#acct-1/state.json"
    head = s3.head_object(Bucket=bucket, Key=head_key)
    assert head["ServerSideEncryption"] == "aws:kms"
    assert head["SSEKMSKeyId"].endswith(stack.outputs["KmsKeyArn"].rsplit("/", 1)[-1])
    stored = json.loads(s3.get_object(Bucket=bucket, Key=head_key)["Body"].read())
    cookies = [(c["name"], c["value"], c["domain"]) for c in stored["cookies"]]
    assert cookies == [("sid", "s3cr3t", ".example.com")]
    row = stack.table("SessionsTableName").get_item(Key={"account": "tenant#acct-1"})["Item"]
    assert row["s3Key"] == "sessions/tenant#acct-1/state.json" and row["updatedBy"].startswith("cli:")


@pytest.mark.parametrize(
    "account, content, message",
    [
        ("a", "{", "Expecting property name"),
        ("a", '{"origins": []}', 'an object with a "cookies" list'),
        ("a", '{"cookies": [{"name": "a"}]}', "cookie 0: needs string name and value, and a domain"),
        ("tenant/other", '{"cookies": []}', "invalid account"),
    ],
)
def test_sessions_upload_rejects_what_is_not_a_session(stack, tmp_path, account, content, message):
    result = run(
        stack, "sessions", "upload", "--account", account, "--cookies", str(write(tmp_path, content))
    )
    assert result.exit_code == 2
    assert message in result.stderr


# -- invoke ----------------------------------------------------------------------------------------


def test_invoke_runs_the_handler_with_the_template_environment_and_overrides(stack, tmp_path):
    document = job()
    overrides = {
        "IntakeFunction": {
            "JOBS_TABLE": stack.outputs["JobsTableName"],
            "ARTIFACTS_BUCKET": stack.outputs["ArtifactsBucketName"],
            "STATE_MACHINE_ARN": stack.outputs["StateMachineArn"],
            "NOT_IN_TEMPLATE": "x",
        }
    }
    result = run(
        stack,
        "invoke",
        "intake",
        "-e",
        str(write(tmp_path, document, "event.json")),
        "--env-vars",
        str(write(tmp_path, overrides, "env.json")),
    )
    assert result.exit_code == 0, result.output
    answer = json.loads(result.stdout)
    assert answer["status"] == "STARTED" and answer["jobId"] == document["jobId"]
    assert "NOT_IN_TEMPLATE is not a variable of IntakeFunction" in result.stderr
    assert stack.table("JobsTableName").get_item(Key={"jobId": document["jobId"]})["Item"]


def test_invoke_reports_the_handler_error(stack, tmp_path):
    # without overrides the stack resources are unknown: the handler's own configuration check fails
    result = run(stack, "invoke", "IntakeFunction", "-e", str(write(tmp_path, job(), "event.json")))
    assert result.exit_code == 1
    assert "errorType" in result.stderr


def test_invoke_of_an_unknown_function_lists_the_known_ones(stack, tmp_path):
    result = run(stack, "invoke", "nope", "-e", str(write(tmp_path, {}, "event.json")))
    assert result.exit_code == 2
    assert "IntakeFunction" in result.stderr


def test_invoke_with_an_unreadable_event_is_bad_input(stack, tmp_path):
    result = run(stack, "invoke", "intake", "-e", str(write(tmp_path, "{oops", "event.json")))
    assert result.exit_code == 2
    assert "is not JSON" in result.stderr


def test_inspect_refuses_to_serve_a_missing_stack(stack):
    result = run(stack, "inspect", "--port", "0", stack_name="no-such-stack")
    assert result.exit_code == 1
    assert "not found" in result.stderr


def test_inspect_serves_the_inspector_for_the_stack(stack):
    command = [
        sys.executable,
        "-m",
        "browserjobs.ops.cli",
        "--endpoint-url",
        stack.url,
        "--stack",
        stack.name,
        "inspect",
        "--port",
        "0",
    ]
    process = subprocess.Popen(
        command,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
    )
    try:
        ready, _, _ = select.select([process.stdout], [], [], 30)
        assert ready, "the inspector did not announce itself within 30 s"
        url = re.search(r"http://127\.0\.0\.1:\d+/", process.stdout.readline()).group(0)
        config = requests.get(url + "api/config", timeout=10).json()
        assert config == {
            "stack": stack.name,
            "endpoint": stack.url,
            "region": "us-east-1",
            "stateMachineArn": stack.outputs["StateMachineArn"],
        }
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.mark.allow_hosts(["127.0.0.1", "localhost", "::1"])
def test_local_starts_the_local_stack_in_the_foreground_until_stopped():
    process = subprocess.Popen(
        [sys.executable, "-m", "browserjobs.ops.cli", "local", "--port", "0"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    watchdog = threading.Timer(180, process.kill)  # a stack that never comes up fails the test, not CI
    watchdog.start()
    try:
        found = None
        for line in process.stdout:
            found = re.search(r"is up at (http://127\.0\.0\.1:\d+)", line)
            if found:
                break
        assert found, "the local stack ended without coming up"
        status = CliRunner().invoke(app, ["--endpoint-url", found.group(1), "status", "no-such-job"])
        assert status.exit_code == 3, status.output  # the stack and its outputs are there; the job is not
    finally:
        process.send_signal(signal.SIGTERM)
        _, errors = process.communicate(timeout=60)
        watchdog.cancel()
    assert process.returncode == 0, errors
    assert "no process of the stack is left running" in errors
