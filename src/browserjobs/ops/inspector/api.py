"""What the inspector's JSON API answers: plain dicts built from the stack's resources."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import mimetypes
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import quote

from botocore.exceptions import ClientError

from browserjobs.ops import artifacts as artifact_store
from browserjobs.ops import dlq, jobs, locks
from browserjobs.ops.asl_graph import END, START, graph
from browserjobs.ops.outputs import OperatorError, Target
from browserjobs.ops.timeline import build_timeline

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
def _graph_of(definition_hash: str, definition: str) -> dict[str, Any]:
    return graph(json.loads(definition))


def graph_for(definition: str) -> dict[str, Any]:
    return _graph_of(hashlib.sha256(definition.encode()).hexdigest(), definition)


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
    """The job record, its result.json and what it holds or waits for (its files: job_artifacts)."""
    if not _valid(job_id):
        raise NotFound(f"not a jobId: {job_id!r}")
    record = jobs.get_job(target, job_id)
    result = artifact_store.read_result(target, job_id)
    if record is None and result is None and not artifact_store.list_artifacts(target, job_id):
        raise NotFound(f"no job {job_id!r}")
    job = record or {}
    keys = locks.key_state(target, job.get("lockKey"), job.get("rateKey"), job.get("siteKey"))
    return {"job": record, "result": result, **keys}


def _valid(job_id: str) -> bool:
    try:
        artifact_store.prefix_of(job_id)
    except OperatorError:
        return False
    return True


def job_artifacts(target: Target, job_id: str) -> list[dict[str, Any]]:
    """The job's artifacts, each with the same-origin URL that serves its bytes (the page needs no AWS)."""
    if not _valid(job_id):
        raise NotFound(f"not a jobId: {job_id!r}")
    result = artifact_store.read_result(target, job_id)
    return [
        {**artifact.to_json(), "url": f"/api/jobs/{quote(job_id, safe='')}/files/{quote(artifact.name)}"}
        for artifact in artifact_store.list_artifacts(target, job_id, result)
    ]


def trace_viewer() -> dict[str, Any]:
    """Whether Playwright's trace viewer can be served here, or how to view a trace without it."""
    return {
        "available": trace_viewer_root() is not None,
        "howTo": "download trace.zip, then run `playwright show-trace trace.zip` "
        "(pip install playwright), or open https://trace.playwright.dev and drop the file there",
    }


def trace_viewer_root() -> Path | None:
    """The trace viewer that ships inside the playwright package, found without importing Playwright."""
    try:
        spec = importlib.util.find_spec("playwright")
    except (ImportError, ValueError):
        return None
    if spec is None or spec.origin is None:
        return None
    root = Path(spec.origin).parent / "driver" / "package" / "lib" / "vite" / "traceViewer"
    return root if (root / "index.html").is_file() else None


def open_artifact(target: Target, job_id: str, name: str) -> tuple[Any, int, str]:
    """An artifact's body (a stream), length and content type; only keys inside the job's prefix."""
    if not _valid(job_id) or not name or any(part in ("", ".", "..") for part in name.split("/")):
        raise NotFound("no such artifact")
    if "\\" in name or any(ord(char) < 32 for char in name):
        raise NotFound("no such artifact")
    key = artifact_store.prefix_of(job_id) + name
    try:
        obj = target.client("s3").get_object(Bucket=target.outputs["ArtifactsBucketName"], Key=key)
    except ClientError as error:
        if error.response["Error"]["Code"] in ("NoSuchKey", "404"):
            raise NotFound(f"no artifact {name!r} for job {job_id!r}") from error
        raise OperatorError(f"cannot read {key!r}: {error.response['Error']['Message']}") from error
    content_type = mimetypes.guess_type(name)[0] or ""
    return obj["Body"], int(obj["ContentLength"]), content_type


def dead_letters(target: Target) -> list[dict[str, Any]]:
    return [letter.to_json() for letter in dlq.list_dead_letters(target)]


def redrive(target: Target, message_id: str) -> dict[str, Any]:
    results = dlq.redrive(target, message_id, start_deadline=30)
    return results[0].to_json()
