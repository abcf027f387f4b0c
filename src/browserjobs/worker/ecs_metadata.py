"""This task's ARN and start time, from the ECS task metadata endpoint v4."""

from __future__ import annotations

import json
import logging
import re
import time
import urllib.request
from dataclasses import dataclass
from datetime import datetime

logger = logging.getLogger(__name__)

ATTEMPTS = 3
TIMEOUT_SECONDS = 2.0


@dataclass(frozen=True)
class TaskIdentity:
    task_arn: str | None
    started_at: float | None  # epoch seconds: when ECS began this task (image pull), else None
    memory_limit_mb: int | None = None  # the task's memory (Limits.Memory), where the endpoint gives it


def task_identity(metadata_uri: str | None, fallback_arn: str | None) -> TaskIdentity:
    """The endpoint's answer, or the fallback ARN where there is no endpoint (a local run)."""
    if not metadata_uri:
        return TaskIdentity(fallback_arn, None)
    document = _fetch(metadata_uri.rstrip("/") + "/task")
    pulled = document.get("PullStartedAt")
    started_at = epoch_seconds(pulled) if pulled else None
    if pulled and started_at is None:
        logger.warning("unreadable PullStartedAt %r", pulled)
    memory = (document.get("Limits") or {}).get("Memory")
    return TaskIdentity(
        document.get("TaskARN") or fallback_arn,
        started_at,
        int(memory) if isinstance(memory, int | float) else None,
    )


def _fetch(url: str) -> dict:
    for attempt in range(1, ATTEMPTS + 1):
        try:
            # The URL is the link-local endpoint ECS injects into the container: http by design.
            with urllib.request.urlopen(url, timeout=TIMEOUT_SECONDS) as response:  # noqa: S310  # nosec B310
                return json.load(response)
        except (OSError, ValueError) as error:
            logger.warning("task metadata attempt %d of %d failed: %s", attempt, ATTEMPTS, error)
            if attempt < ATTEMPTS:
                time.sleep(0.2 * attempt)  # backoff between attempts, not a wait for a condition
    return {}


def epoch_seconds(timestamp: str) -> float | None:
    """An ISO 8601 UTC timestamp as epoch seconds, or None when unreadable. ECS writes nanoseconds
    ("…06.202617438Z"), Step Functions milliseconds ("…24.123Z"); datetime takes at most microseconds."""
    trimmed = re.sub(r"(\.\d{6})\d+", r"\1", timestamp.strip()).replace("Z", "+00:00")
    try:
        parsed = datetime.fromisoformat(trimmed)
    except ValueError:
        return None
    return parsed.timestamp() if parsed.tzinfo is not None else None
