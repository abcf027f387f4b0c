"""A job's files in the artifacts bucket: list them, presign them, download them (boto3 only).

The worker writes `jobs/<jobId>/result.json` and `jobs/<jobId>/artifacts/<name>`; result.json's `artifacts`
entries carry each file's `kind`. Objects result.json does not list (it is missing when the worker crashed)
are listed too, with a kind derived from the name and content type, as are results older than `kind`.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from browserjobs.ops import jobs
from browserjobs.ops.outputs import OperatorError, Target

KINDS = ("trace", "failure-screenshot", "console", "network", "screenshot", "pdf", "download", "file")
RESULT_KIND = "result"
MAX_RESULT_BYTES = 256 * 1024
DEFAULT_EXPIRES = 900
_JOB_ID = re.compile(r"[A-Za-z0-9_-]{1,200}")  # the job schema's, longer: each redrive adds "-r<n>"
_UNSAFE_FILE_CHARS = re.compile(r"[^A-Za-z0-9._-]+")
_DENIED = ("AccessDenied", "AccessDeniedException", "403", "KMS.AccessDeniedException")
OPERATOR_PERMISSIONS = "s3:ListBucket and s3:GetObject on jobs/<jobId>/*, kms:Decrypt on the stack's key"


@dataclass(frozen=True)
class Artifact:
    name: str  # relative to the job's prefix: "result.json" or "artifacts/<name>"
    key: str
    kind: str
    size: int
    content_type: str
    last_modified: str

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def prefix_of(job_id: str) -> str:
    """The job's prefix; anything but a jobId (which could leave the prefix: slashes, dots) is refused."""
    if not _JOB_ID.fullmatch(job_id):
        raise OperatorError(f"not a jobId: {job_id!r}", exit_code=2)
    return f"jobs/{job_id}/"


def derive_kind(name: str, content_type: str = "") -> str:
    """The kind of a file whose result entry has none (older results, unlisted objects)."""
    base = name.rsplit("/", 1)[-1].lower()
    known = {
        "trace.zip": "trace",
        "failure-screenshot.png": "failure-screenshot",
        "console.json": "console",
        "network.json": "network",
        "result.json": RESULT_KIND,
    }
    if base in known and (base != "result.json" or "/" not in name):
        return known[base]
    if base.endswith(".trace.zip"):
        return "trace"
    if content_type.startswith("image/") or base.endswith((".png", ".jpg", ".jpeg", ".webp", ".gif")):
        return "screenshot"
    if content_type == "application/pdf" or base.endswith(".pdf"):
        return "pdf"
    return "file"


def _error(error: ClientError, what: str) -> OperatorError:
    code = error.response["Error"].get("Code", "")
    if code in _DENIED:
        return OperatorError(f"access denied reading {what}: the operator needs {OPERATOR_PERMISSIONS}")
    return OperatorError(f"cannot read {what}: {error.response['Error'].get('Message') or code}")


def read_result(target: Target, job_id: str) -> dict[str, Any] | None:
    """result.json, parsed; None when it is missing, too large or not JSON."""
    bucket = target.outputs["ArtifactsBucketName"]
    try:
        obj = target.client("s3").get_object(Bucket=bucket, Key=prefix_of(job_id) + "result.json")
    except ClientError as error:
        if error.response["Error"].get("Code") in ("NoSuchKey", "404"):
            return None
        raise _error(error, f"s3://{bucket}/{prefix_of(job_id)}result.json") from error
    if obj.get("ContentLength", 0) > MAX_RESULT_BYTES:
        return None
    try:
        result = json.loads(obj["Body"].read())
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None
    return result if isinstance(result, dict) else None


def list_artifacts(target: Target, job_id: str, result: dict[str, Any] | None = None) -> list[Artifact]:
    """Every object under the job's prefix, with its kind (result.json's word for it when it has one)."""
    prefix = prefix_of(job_id)
    bucket = target.outputs["ArtifactsBucketName"]
    try:
        pages = target.client("s3").get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        objects = [obj for page in pages for obj in page.get("Contents", [])]
    except ClientError as error:
        raise _error(error, f"s3://{bucket}/{prefix}") from error
    declared = _declared(result, bucket, prefix) if objects else {}
    artifacts = []
    for obj in sorted(objects, key=lambda o: o["Key"]):
        name = obj["Key"].removeprefix(prefix)
        entry = declared.get(obj["Key"], {})
        content_type = str(entry.get("contentType") or _guess_type(name))
        kind = entry.get("kind")
        artifacts.append(
            Artifact(
                name=name,
                key=obj["Key"],
                kind=kind if kind in KINDS else derive_kind(name, content_type),
                size=int(obj.get("Size", 0)),
                content_type=content_type,
                last_modified=_iso(obj.get("LastModified")),
            )
        )
    return artifacts


def _declared(result: dict[str, Any] | None, bucket: str, prefix: str) -> dict[str, dict[str, Any]]:
    """result.json's artifact entries by key; entries pointing outside the job's prefix are ignored."""
    entries = (result or {}).get("artifacts")
    by_key: dict[str, dict[str, Any]] = {}
    for entry in entries if isinstance(entries, list) else []:
        uri = entry.get("uri") if isinstance(entry, dict) else None
        if isinstance(uri, str) and uri.startswith(f"s3://{bucket}/{prefix}"):
            by_key[uri.removeprefix(f"s3://{bucket}/")] = entry
    return by_key


def _guess_type(name: str) -> str:
    suffix = name.rsplit(".", 1)[-1].lower() if "." in name else ""
    return {
        "png": "image/png",
        "jpg": "image/jpeg",
        "jpeg": "image/jpeg",
        "json": "application/json",
        "pdf": "application/pdf",
        "zip": "application/zip",
        "html": "text/html",
        "txt": "text/plain",
    }.get(suffix, "application/octet-stream")


def _iso(value: Any) -> str:
    return value.isoformat() if isinstance(value, datetime) else str(value or "")


def job_artifacts(target: Target, job_id: str) -> list[Artifact]:
    """The job's artifacts, or a not-found error that tells an unknown job from one without files."""
    artifacts = list_artifacts(target, job_id, read_result(target, job_id))
    if not artifacts:
        if jobs.get_job(target, job_id) is None:
            raise OperatorError(f"job {job_id!r} not found (no record, no artifacts)", exit_code=3)
        raise OperatorError(f"job {job_id!r} has no artifacts under {prefix_of(job_id)}", exit_code=3)
    return artifacts


def presigned_url(target: Target, artifact: Artifact, expires: int = DEFAULT_EXPIRES) -> str:
    """A GET URL anyone holding it can use until it expires (SigV4: KMS-encrypted objects need it)."""
    return str(
        target.client("s3").generate_presigned_url(
            "get_object",
            Params={"Bucket": target.outputs["ArtifactsBucketName"], "Key": artifact.key},
            ExpiresIn=expires,
        )
    )


def safe_file_name(name: str) -> str:
    """A flat, harmless file name for an artifact: no folders, no dot-files, no odd characters."""
    flat = _UNSAFE_FILE_CHARS.sub("_", name.replace("/", "__")).lstrip(".")
    return flat[:200] or "artifact"


def download(target: Target, artifacts: list[Artifact], folder: Path, force: bool = False) -> list[Path]:
    """Write each artifact into folder; an existing file is refused (all checked first) unless force."""
    paths = [folder / safe_file_name(artifact.name) for artifact in artifacts]
    existing = [str(path) for path in paths if path.exists()]
    if existing and not force:
        raise OperatorError(f"would overwrite {', '.join(existing)} (pass --force)", exit_code=2)
    folder.mkdir(parents=True, exist_ok=True)
    bucket = target.outputs["ArtifactsBucketName"]
    for artifact, path in zip(artifacts, paths, strict=True):
        try:
            target.client("s3").download_file(bucket, artifact.key, str(path))
        except ClientError as error:
            raise _error(error, f"s3://{bucket}/{artifact.key}") from error
    return paths
