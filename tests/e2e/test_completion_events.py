"""Completion events: an application's rule on the Output bus, with an SQS target, receives one event per
job's end (docs/CONTRACTS.md, "Completion events")."""

from __future__ import annotations

import json
from typing import Any

import pytest

from browserjobs.core.contract import ErrorName
from browserjobs.testing.harness import new_id, poll
from browserjobs.testing.scenarios import Context

pytestmark = pytest.mark.e2e


def _app_queue(ctx: Context) -> str:
    """What an application deploys beside the stack (docs/examples/completion-events.yaml): a queue, its
    policy for EventBridge, and a rule on the stack's bus with the queue as its target."""
    sqs, events = ctx.harness.client("sqs"), ctx.harness.client("events")
    name = new_id("app-events")
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    bus = ctx.harness.outputs["EventBusName"]
    pattern = json.dumps({"source": ["browserjobs"]})
    rule_arn = events.put_rule(Name=name, EventBusName=bus, EventPattern=pattern)["RuleArn"]
    statement = {
        "Effect": "Allow",
        "Principal": {"Service": "events.amazonaws.com"},
        "Action": "sqs:SendMessage",
        "Resource": arn,
        "Condition": {"ArnEquals": {"aws:SourceArn": rule_arn}},
    }
    policy = json.dumps({"Version": "2012-10-17", "Statement": [statement]})
    sqs.set_queue_attributes(QueueUrl=url, Attributes={"Policy": policy})
    events.put_targets(Rule=name, EventBusName=bus, Targets=[{"Id": "app", "Arn": arn}])
    return url


def _received(ctx: Context, queue_url: str, job_ids: set[str]) -> list[dict[str, Any]]:
    sqs, got = ctx.harness.client("sqs"), []

    def all_there() -> list[dict[str, Any]] | None:
        for message in sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", []):
            got.append(json.loads(message["Body"]))
        return got if job_ids <= {e["detail"]["jobId"] for e in got} else None

    return poll("the jobs' completion events", all_there, 60)


def test_an_apps_rule_receives_one_event_per_jobs_end(context: Context) -> None:
    ctx = context
    queue_url = _app_queue(ctx)
    good = ctx.job("events-ok", [{"goto": {"url": f"{ctx.site_url}/"}}])
    failing = ctx.job(
        "events-fail",
        [{"goto": {"url": f"{ctx.site_url}/"}}, {"click": {"selector": "#checkout", "timeoutMs": 1000}}],
    )
    rejected = ctx.job("events-rejected", [])  # a browse job needs a step: rejected at intake
    for job in (good, failing, rejected):
        ctx.harness.submit(job)
    for job in (good, failing):
        ctx.harness.wait_for_job_end(job["jobId"], 120)

    events = _received(ctx, queue_url, {good["jobId"], failing["jobId"], rejected["jobId"]})

    seen = sorted((e["detail"]["jobId"], e["detail-type"], e["detail"]["status"]) for e in events)
    assert seen == sorted(
        [
            (good["jobId"], "Job Succeeded", "SUCCEEDED"),
            (failing["jobId"], "Job Failed", "FAILED"),
            (rejected["jobId"], "Job Rejected", "REJECTED"),
        ]
    )
    assert {e["source"] for e in events} == {"browserjobs"}
    by_job = {e["detail"]["jobId"]: e["detail"] for e in events}
    succeeded, failed, refused = (by_job[job["jobId"]] for job in (good, failing, rejected))
    bucket = ctx.harness.outputs["ArtifactsBucketName"]
    assert succeeded["lockKey"] == good["lockKey"]
    assert succeeded["resultUri"] == f"s3://{bucket}/jobs/{good['jobId']}/result.json"
    assert (succeeded["error"], succeeded["cause"]) == ("", "")
    assert failed["lockKey"] == failing["lockKey"] and failed["error"] == ErrorName.STEP_TIMEOUT
    # A worker's failure names its result.json in its cause (the detail's resultUri is a success's).
    assert json.loads(failed["cause"])["resultUri"] == f"s3://{bucket}/jobs/{failing['jobId']}/result.json"
    assert refused["lockKey"] == rejected["lockKey"] and refused["error"] == "INVALID_PARAMS"
    assert refused["cause"] == refused["record"]["rejection"]["M"]["message"]["S"]
    assert all(detail["endedAt"].endswith("Z") for detail in by_job.values())
