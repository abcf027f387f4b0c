"""The job's files in S3: jobs/<jobId>/artifacts/<name> and jobs/<jobId>/result.json, SSE-KMS."""

from __future__ import annotations

import json
import re
import threading
from enum import StrEnum
from pathlib import Path
from typing import Any

from browserjobs.core.schema import schema_errors, schemas_dir

RESULT_SCHEMA = "result.schema.json"
UNSAFE_NAME_CHARS = re.compile(r"[^A-Za-z0-9._-]+")
MAX_NAME_CHARS = 100


class ArtifactKind(StrEnum):
    """result.json's `kind` of each artifact (schemas/result.schema.json)."""

    SCREENSHOT = "screenshot"
    PDF = "pdf"
    DOWNLOAD = "download"
    FILE = "file"  # anything else an action saves
    TRACE = "trace"
    FAILURE_SCREENSHOT = "failure-screenshot"
    CONSOLE = "console"
    NETWORK = "network"


# The evidence of a job's run has fixed names: a step that saves a file of the same name gets "-2".
EVIDENCE_NAMES = {
    ArtifactKind.TRACE: "trace.zip",
    ArtifactKind.FAILURE_SCREENSHOT: "failure-screenshot.png",
    ArtifactKind.CONSOLE: "console.json",
    ArtifactKind.NETWORK: "network.json",
}


def safe_name(name: str, fallback: str) -> str:
    """A file name that is safe as an S3 key segment and on disk."""
    cleaned = UNSAFE_NAME_CHARS.sub("_", name).strip("._")[:MAX_NAME_CHARS]
    return cleaned or fallback


class ArtifactStore:
    def __init__(self, s3: Any, bucket: str, job_id: str, kms_key_id: str) -> None:
        self._s3 = s3
        self._bucket = bucket
        self._prefix = f"jobs/{job_id}/"
        self._encryption = {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": kms_key_id}
        self._lock = threading.Lock()  # puts run on worker threads
        self._taken: set[str] = set()
        self.saved: list[dict[str, Any]] = []

    def uri(self, key: str) -> str:
        return f"s3://{self._bucket}/{key}"

    @property
    def result_uri(self) -> str:
        return self.uri(self._prefix + "result.json")

    def put(self, name: str, body: bytes | Path, content_type: str, kind: ArtifactKind) -> dict[str, Any]:
        with self._lock:
            reserved = set() if kind in EVIDENCE_NAMES else set(EVIDENCE_NAMES.values())
            name = self._unique(safe_name(name, "artifact"), self._taken | reserved)
            self._taken.add(name)
        key = f"{self._prefix}artifacts/{name}"
        extra = {"ContentType": content_type, **self._encryption}
        if isinstance(body, Path):
            self._s3.upload_file(str(body), self._bucket, key, ExtraArgs=extra)
        else:
            self._s3.put_object(Bucket=self._bucket, Key=key, Body=body, **extra)
        entry = {
            "name": name,
            "uri": self.uri(key),
            "contentType": content_type,
            "bytes": body.stat().st_size if isinstance(body, Path) else len(body),
            "kind": kind,
        }
        with self._lock:
            self.saved.append(entry)
        return entry

    def write_result(self, result: dict[str, Any]) -> str:
        errors = schema_errors(result, schemas_dir() / RESULT_SCHEMA)
        if errors:
            raise ValueError(f"result.json does not match {RESULT_SCHEMA}: {errors}")
        self._s3.put_object(
            Bucket=self._bucket,
            Key=self._prefix + "result.json",
            Body=json.dumps(result, indent=2, default=str).encode(),
            ContentType="application/json",
            **self._encryption,
        )
        return self.result_uri

    @staticmethod
    def _unique(name: str, taken: set[str]) -> str:
        stem, dot, extension = name.rpartition(".") if "." in name else (name, "", "")
        candidate, n = name, 1
        while candidate in taken:
            n += 1
            candidate = f"{stem}-{n}{dot}{extension}"
        return candidate
