"""Deterministic jobIds: the same source message always names the same job (and execution)."""

from __future__ import annotations

import hashlib
import json
from typing import Any

_DIGEST_CHARS = 40


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def derived_job_id(source: str, *parts: str) -> str:
    digest = hashlib.sha256("/".join(parts).encode("utf-8")).hexdigest()[:_DIGEST_CHARS]
    return f"{source}-{digest}"


def sqs_job_id(message_id: str) -> str:
    return derived_job_id("sqs", message_id)


def s3_job_id(bucket: str, key: str, etag: str) -> str:
    return derived_job_id("s3", bucket, key, etag)


def email_job_id(message_id: str) -> str:
    return derived_job_id("email", message_id.strip())


def schedule_job_id(rule_arn: str, event_time: str) -> str:
    return derived_job_id("sched", rule_arn, event_time)


def direct_job_id(body: Any) -> str:
    return derived_job_id("direct", canonical_json(body))
