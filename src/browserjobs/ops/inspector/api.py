"""What the inspector's JSON API answers: plain dicts built from the stack's resources."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from functools import lru_cache
from typing import Any

from botocore.exceptions import ClientError

from browserjobs.ops import dlq, jobs, locks
from browserjobs.ops.asl_graph import END, START, layout
from browserjobs.ops.outputs import OperatorError, Target
from browserjobs.ops.timeline import build_timeline

MAX_RESULT_BYTES = 256 * 1024
INLINE_IMAGE_TYPES = {"image/png", "image/jpeg", "image/gif", "image/webp"}


class NotFound(OperatorError):
    def __init__(self, message: str):
        super().__init__(message, exit_code=3)


def to_json(value: Any) -> Any:
    """JSON-ready values: datetimes as ISO strings, streams dropped."""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: to_json(v) for k, v in value.items() if k != "ResponseMetadata"}
    if isinstance(value, (list, tuple)):
        return [to_json(v) for v in value]
    return value


@lru_cache(maxsize=16)
def _layout_of(definition_hash: str, definition: str) -> dict[str, Any]:
    return layout(json.loads(definition))


def graph_for(definition: str) -> dict[str, Any]:
    return _layout_of(hashlib.sha256(definition.encode()).hexdigest(), definition)


def executions(target: Target, status: str | None) -> list[dict[str, Any]]:
    return to_json(jobs.list_executions(target, status, limit=200))


def execution_detail(target: Target, job_or_arn: str) -> dict[str, Any]:
    try:
        _, arn = jobs.resolve_execution(target, job_or_arn)
    except OperatorError as error:
        if error.exit_code == 3:
            raise NotFound(str(error)) from error
        raise
    execution = jobs.describe_execution(target, arn)
    if execution is None:
        raise NotFound(f"no execution {arn}")
    try:
        machine = target.client("stepfunctions").describe_state_machine_for_execution(executionArn=arn)
    except ClientError as error:
        raise OperatorError(f"cannot read the state machine: {error.response['Error']['Message']}") from error
    timeline = build_timeline(jobs.execution_history(target, arn))
    statuses = timeline.state_status()
    if execution["status"] == "SUCCEEDED":
        statuses[END] = "SUCCEEDED"
    statuses[START] = "SUCCEEDED" if timeline.runs else "RUNNING"
    return {
        "execution": to_json(execution),
        "graph": graph_for(machine["definition"]),
        "stateStatus": statuses,
        "transitions": [list(pair) for pair in timeline.transitions],
        "states": [run.to_json() for run in timeline.runs],
        "events": to_json(timeline.events),
    }


def job_detail(target: Target, job_id: str) -> dict[str, Any]:
    record = jobs.get_job(target, job_id)
    bucket = target.outputs["ArtifactsBucketName"]
    artifacts = []
    result = None
    try:
        pages = (
            target.client("s3")
            .get_paginator("list_objects_v2")
            .paginate(Bucket=bucket, Prefix=f"jobs/{job_id}/")
        )
        objects = [obj for page in pages for obj in page.get("Contents", [])]
    except ClientError as error:
        raise OperatorError(f"cannot list artifacts: {error.response['Error']['Message']}") from error
    for obj in objects:
        name = obj["Key"].removeprefix(f"jobs/{job_id}/")
        artifacts.append(
            {
                "key": obj["Key"],
                "name": name,
                "size": obj["Size"],
                "image": name.lower().endswith((".png", ".jpg", ".jpeg", ".gif", ".webp")),
            }
        )
        if name == "result.json" and obj["Size"] <= MAX_RESULT_BYTES:
            body = target.client("s3").get_object(Bucket=bucket, Key=obj["Key"])["Body"].read()
            try:
                result = json.loads(body)
            except json.JSONDecodeError:
                result = {"unparsable": body.decode("utf-8", "replace")[:2000]}
    if record is None and not artifacts:
        raise NotFound(f"no job {job_id!r}")
    job = record or {}
    keys = locks.key_state(target, job.get("lockKey"), job.get("rateKey"), job.get("siteKey"))
    return {"job": record, "artifacts": artifacts, "result": result, **keys}


def artifact(target: Target, key: str) -> tuple[bytes, str]:
    """An artifact's bytes and the content type to serve it with (only under jobs/: never sessions)."""
    if not key.startswith("jobs/") or "/../" in key or key.endswith("/.."):
        raise NotFound("only job artifacts can be served")
    try:
        obj = target.client("s3").get_object(Bucket=target.outputs["ArtifactsBucketName"], Key=key)
    except ClientError as error:
        if error.response["Error"]["Code"] in ("NoSuchKey", "404"):
            raise NotFound(f"no artifact {key!r}") from error
        raise OperatorError(f"cannot read {key!r}: {error.response['Error']['Message']}") from error
    content_type = obj.get("ContentType", "")
    lowered = key.lower()
    for suffix, kind in (
        (".png", "image/png"),
        (".jpg", "image/jpeg"),
        (".jpeg", "image/jpeg"),
        (".gif", "image/gif"),
        (".webp", "image/webp"),
    ):
        if lowered.endswith(suffix):
            content_type = kind
    return obj["Body"].read(), content_type


def dead_letters(target: Target) -> list[dict[str, Any]]:
    return [letter.to_json() for letter in dlq.list_dead_letters(target)]


def redrive(target: Target, message_id: str) -> dict[str, Any]:
    results = dlq.redrive(target, message_id, start_deadline=30)
    return results[0].to_json()
