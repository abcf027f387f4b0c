"""How the local stack runs code: Lambda errors, timeouts and warm environments as on AWS; no process left."""

from __future__ import annotations

import base64
import io
import json
import os
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path
from typing import Any

import boto3
import pytest

from browserjobs.emulator.stack import LocalStack
from browserjobs.testing.harness import new_id, poll
from tests.conftest import ROOT

pytestmark = pytest.mark.e2e

HANDLER = """
import os, time
INVOCATIONS = 0

def lambda_handler(event, context):
    global INVOCATIONS
    INVOCATIONS += 1
    if event.get("raise"):
        raise ValueError(event["raise"])
    time.sleep(event.get("sleep", 0))
    return {"pid": os.getpid(), "invocations": INVOCATIONS, "greeting": os.environ["GREETING"],
            "remainingMs": context.get_remaining_time_in_millis()}
"""


def _zip(source: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("handler.py", source)
    return buffer.getvalue()


def _create_function(stack: LocalStack, source: str, timeout: int) -> str:
    name = new_id("probe")
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
        ],
    }
    role = stack.client("iam").create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))["Role"]
    stack.client("lambda").create_function(
        FunctionName=name,
        Runtime="python3.13",
        Role=role["Arn"],
        Handler="handler.lambda_handler",
        Code={"ZipFile": _zip(source)},
        Timeout=timeout,
        Environment={"Variables": {"GREETING": "hello"}},
    )
    return name


@pytest.fixture(scope="module")
def function_name(stack: LocalStack) -> str:
    return _create_function(stack, HANDLER, timeout=2)


def invoke(
    stack: LocalStack, name: str, payload: dict[str, Any], **kwargs: Any
) -> tuple[dict[str, Any], Any]:
    response = stack.client("lambda").invoke(
        FunctionName=name, Payload=json.dumps(payload).encode(), **kwargs
    )
    return response, json.loads(response["Payload"].read())


def test_a_warm_environment_serves_later_invocations_with_the_configured_environment(
    stack: LocalStack, function_name: str
) -> None:
    _, first = invoke(stack, function_name, {})
    _, second = invoke(stack, function_name, {})
    assert first["greeting"] == "hello"
    assert second["pid"] == first["pid"] and second["invocations"] == first["invocations"] + 1
    assert 0 < first["remainingMs"] <= 2000


def test_an_exception_is_an_unhandled_function_error(stack: LocalStack, function_name: str) -> None:
    response, payload = invoke(stack, function_name, {"raise": "bad input"}, LogType="Tail")
    assert response["FunctionError"] == "Unhandled"
    assert payload["errorType"] == "ValueError" and payload["errorMessage"] == "bad input"
    assert payload["stackTrace"]
    assert "ValueError: bad input" in base64.b64decode(response["LogResult"]).decode()


def test_the_timeout_is_enforced_and_the_next_invocation_starts_cold(
    stack: LocalStack, function_name: str
) -> None:
    _, before = invoke(stack, function_name, {})
    started = time.monotonic()
    response, payload = invoke(stack, function_name, {"sleep": 30})
    assert time.monotonic() - started < 10
    assert response["FunctionError"] == "Unhandled"
    assert payload["errorType"] == "Sandbox.Timedout"
    assert "Task timed out after 2.00 seconds" in payload["errorMessage"]
    _, after = invoke(stack, function_name, {})
    assert after["pid"] != before["pid"] and after["invocations"] == 1


def test_a_slow_init_does_not_count_against_the_invocation_timeout(stack: LocalStack) -> None:
    """Lambda times the init (up to 10 s) apart from the invocation: a 3 s import, a 2 s timeout."""
    name = _create_function(stack, "import time\ntime.sleep(3)\n" + HANDLER, timeout=2)
    response, payload = invoke(stack, name, {})
    assert "FunctionError" not in response, payload
    assert payload["invocations"] == 1 and 1000 < payload["remainingMs"] <= 2000


def test_template_functions_run_from_their_source_folders(stack: LocalStack) -> None:
    response, payload = invoke(stack, stack.outputs["ClaimFunctionName"], {"jobId": "missing"})
    assert response["FunctionError"] == "Unhandled", payload
    configuration = stack.client("lambda").get_function_configuration(
        FunctionName=stack.outputs["ClaimFunctionName"]
    )
    assert configuration["Environment"]["Variables"]["LOCKS_TABLE"] == stack.outputs["LocksTableName"]


def _descendants(pid: int) -> set[int]:
    found, pending = set(), [pid]
    while pending:
        parent = pending.pop()
        for task in Path(f"/proc/{parent}/task").glob("*"):
            children = (task / "children").read_text().split() if (task / "children").exists() else []
            for child in map(int, children):
                if child not in found:
                    found.add(child)
                    pending.append(child)
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def test_serve_prints_how_to_use_it_and_ctrl_c_leaves_no_process(stack: LocalStack) -> None:
    """`python -m browserjobs.testing serve` in its own process (a second stack cannot share this moto)."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    serve = subprocess.Popen(
        [sys.executable, "-m", "browserjobs.testing", "serve", "--port", "0"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    try:
        deadline = time.monotonic() + 90
        while not any("Ctrl-C stops" in line for line in lines):
            assert time.monotonic() < deadline and serve.poll() is None, "".join(lines)
            lines.append(serve.stdout.readline())
        text = "".join(lines)
        url = next(line.split(" is up at ")[1].split()[0] for line in lines if " is up at " in line)
        for output in ("StateMachineArn", "IntakeQueueUrl", "JobsTableName", "DeadLetterQueueUrl"):
            assert output in text
        assert f"aws --endpoint-url {url}" in text

        session = boto3.Session(aws_access_key_id="x", aws_secret_access_key="x", region_name="us-east-1")
        outputs = {
            o["OutputKey"]: o["OutputValue"]
            for o in session.client("cloudformation", endpoint_url=url).describe_stacks()["Stacks"][0][
                "Outputs"
            ]
        }
        lam = session.client("lambda", endpoint_url=url)
        response = lam.invoke(FunctionName=outputs["ClaimFunctionName"], Payload=b'{"jobId": "none"}')
        assert response["FunctionError"] == "Unhandled"  # an execution environment now runs
        children = poll("serve's children", lambda: _descendants(serve.pid), 10)

        serve.send_signal(signal.SIGINT)
        assert serve.wait(timeout=60) == 0
        rest = serve.stdout.read()
        assert "stopped" in rest
        poll("every child of serve to exit", lambda: not any(_alive(pid) for pid in children), 10)
    finally:
        if serve.poll() is None:
            serve.kill()
            serve.wait()


def test_a_scheduled_rule_invokes_its_function(stack: LocalStack) -> None:
    """The cleanup sweep's rate(5 minutes) rule, fired now: EventBridge schedules reach Lambda targets."""
    events, logs = stack.client("events"), stack.client("logs")
    scheduled = [rule for rule in events.list_rules()["Rules"] if rule.get("ScheduleExpression")]
    sweep = next(rule for rule in scheduled if "SweepExpiredLeases" in rule["Name"])
    assert sweep["ScheduleExpression"] == "rate(5 minutes)"
    group = f"/aws/lambda/{stack.outputs['CleanupFunctionName']}"

    def starts() -> int:
        found = logs.filter_log_events(logGroupName=group, filterPattern="START").get("events", [])
        return len([event for event in found if event["message"].startswith("START RequestId")])

    before = starts()
    stack.fire_schedule(sweep["Name"])
    poll("the cleanup function to run on the schedule", lambda: starts() > before, 30)


PARTIAL_BATCH = """
def lambda_handler(event, context):
    failures = [r["messageId"] for r in event["Records"] if r["body"] == "fail"]
    return {"batchItemFailures": [{"itemIdentifier": m} for m in failures]}
"""


def _queue_with_function(
    stack: LocalStack, source: str, queue_attributes: dict[str, str], **mapping: Any
) -> tuple[str, str]:
    """A queue, a function with the role Lambda's poller needs, and their event source mapping."""
    sqs, lam, iam = stack.client("sqs"), stack.client("lambda"), stack.client("iam")
    name = new_id("batch")
    queue = sqs.create_queue(QueueName=name, Attributes=queue_attributes)["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    trust = {
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
        ]
    }
    role = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    # What Lambda's poller needs from the function's role (the endpoint refuses it otherwise):
    # https://docs.aws.amazon.com/lambda/latest/dg/with-sqs.html#events-sqs-permissions
    poller = ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"]
    statement = {"Effect": "Allow", "Action": poller, "Resource": queue_arn}
    policy = {"Version": "2012-10-17", "Statement": [statement]}
    iam.put_role_policy(RoleName=name, PolicyName="poller", PolicyDocument=json.dumps(policy))
    lam.create_function(
        FunctionName=name,
        Runtime="python3.13",
        Role=role,
        Handler="handler.lambda_handler",
        Code={"ZipFile": _zip(source)},
        Timeout=30,
    )
    lam.create_event_source_mapping(EventSourceArn=queue_arn, FunctionName=name, **mapping)
    return name, queue


def test_sqs_pollers_keep_only_reported_failures_and_the_queue_redrives_them(stack: LocalStack) -> None:
    sqs = stack.client("sqs")
    dead = sqs.create_queue(QueueName=new_id("batch-dlq"))["QueueUrl"]
    dead_arn = sqs.get_queue_attributes(QueueUrl=dead, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    redrive = json.dumps({"deadLetterTargetArn": dead_arn, "maxReceiveCount": 2})
    _, queue = _queue_with_function(
        stack,
        PARTIAL_BATCH,
        {"VisibilityTimeout": "1", "RedrivePolicy": redrive},
        BatchSize=10,
        MaximumBatchingWindowInSeconds=1,
        FunctionResponseTypes=["ReportBatchItemFailures"],
    )
    sqs.send_message(QueueUrl=queue, MessageBody="ok")
    sqs.send_message(QueueUrl=queue, MessageBody="fail")

    def dead_lettered() -> list[dict[str, Any]]:
        return sqs.receive_message(QueueUrl=dead, MaxNumberOfMessages=10).get("Messages", [])

    messages = poll("the failing message in the dead-letter queue", dead_lettered, 60)
    assert [message["Body"] for message in messages] == ["fail"]
    attributes = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["All"])["Attributes"]
    assert attributes["ApproximateNumberOfMessages"] == "0"  # "ok" was deleted after its first delivery


# Each message names a file the handler writes its invocation's start and end to (the local runtime's
# environments share this machine's file system), so the test sees which invocations overlapped.
TIMED_BATCH = """
import json, time

def lambda_handler(event, context):
    started = time.time()
    time.sleep(1.5)
    for record in event["Records"]:
        with open(record["body"], "w") as out:
            json.dump([started, time.time()], out)
"""


def _most_at_once(stack: LocalStack, tmp_path: Path, messages: int, **mapping: Any) -> int:
    _, queue = _queue_with_function(stack, TIMED_BATCH, {}, BatchSize=1, **mapping)
    for index in range(messages):
        stack.client("sqs").send_message(QueueUrl=queue, MessageBody=str(tmp_path / f"{index}.json"))

    def spans() -> list[list[float]] | None:
        files = list(tmp_path.glob("*.json"))
        return [json.loads(f.read_text()) for f in files] if len(files) == messages else None

    done = poll(f"{messages} invocations", spans, 60)
    return max(sum(1 for start, end in done if start <= moment < end) for moment, _ in done)


def test_sqs_pollers_process_five_batches_at_once(stack: LocalStack, tmp_path: Path) -> None:
    # "When messages are available, Lambda starts processing five batches at a time with five concurrent
    # invocations of your function": https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-scaling.html
    assert _most_at_once(stack, tmp_path, 5) == 5


def test_sqs_pollers_respect_the_mappings_maximum_concurrency(stack: LocalStack, tmp_path: Path) -> None:
    # ScalingConfig.MaximumConcurrency "limits the number of concurrent instances that the Amazon SQS event
    # source can invoke" (AWS::Lambda::EventSourceMapping ScalingConfig; minimum 2).
    assert _most_at_once(stack, tmp_path, 4, ScalingConfig={"MaximumConcurrency": 2}) == 2


def test_a_job_file_in_the_intake_bucket_runs(stack: LocalStack, site: Any) -> None:
    """S3 object-created notifications reach intake (asynchronously, as S3 invokes)."""
    from browserjobs.testing.harness import Harness

    harness = Harness.for_endpoint(stack.stack_name, stack.endpoint_url)
    job = {
        "lockKey": new_id("file"),
        "action": "browse",
        "params": {"steps": [{"goto": {"url": f"{site.url}/"}}]},
    }
    key = f"jobs/{new_id('file')}.json"
    stack.client("s3").put_object(
        Bucket=stack.outputs["IntakeBucketName"], Key=key, Body=json.dumps(job).encode()
    )
    jobs = harness.target.table(stack.outputs["JobsTableName"])

    def recorded() -> dict[str, Any] | None:
        items = jobs.scan().get("Items", [])
        return next((item for item in items if item.get("lockKey") == job["lockKey"]), None)

    record = poll("a job record for the file", recorded, 30)
    assert record["source"]["type"] == "s3" and key in record["source"]["id"]
    final, _ = harness.wait_for_job_end(record["jobId"], 90)
    assert final["status"] == "SUCCEEDED"
