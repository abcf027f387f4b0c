"""How a site's answers slow its rate key down: Retry-After, and an adaptive rate that halves on 429.

The state lives on the rate key's token bucket (LocksTable, `bucket#<rateKey>`), next to what the claim
reads anyway:

- A 429 empties the bucket and moves its refill time to when the site said to come back (`Retry-After`,
  seconds or an HTTP date, at most MAX_RETRY_AFTER_SECONDS; without one, now): the claim then waits at
  least that long, then a token's time at the lowered rate.
- It also halves the bucket's `ratePercent` (the share of RateLimitPerMinute it refills at, never below
  MIN_RATE_PERCENT); each success since adds RECOVERY_STEP_PERCENT back (`successes`), up to the
  configured rate, where the claim drops both fields again.

The worker records both (it has the response's headers and the job's outcome) before its callback; a
penalty is a conditional write on the bucket's version (refilledAtMs, tokens), the same version the claim's
transaction checks, so neither overwrites the other.
"""

from __future__ import annotations

import logging
import math
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Any

from botocore.exceptions import ClientError

from browserjobs.core.ddb import attr, error_code, expression_values, from_item
from browserjobs.core.keys import bucket_key
from browserjobs.core.ratelimit import tokens_to_decimal
from browserjobs.core.records import CONDITION_FAILED

logger = logging.getLogger(__name__)

MAX_RETRY_AFTER_SECONDS = 600
MIN_RATE_PERCENT = 10
RECOVERY_STEP_PERCENT = 10
FULL_RATE_PERCENT = 100
PENALTY_ATTEMPTS = 5
# A penalized bucket outlives its refill time by this much (TTL), so that a lowered rate is remembered.
PENALTY_TTL_SECONDS = 3_600


def retry_after_seconds(value: str | None, now: datetime) -> int | None:
    """Retry-After as whole seconds from `now` (RFC 9110 10.2.3: delay-seconds or an HTTP date), at most
    MAX_RETRY_AFTER_SECONDS; None when absent or unreadable."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    if text.isdigit():
        seconds = int(text)
    else:
        try:
            moment = parsedate_to_datetime(text)
        except (TypeError, ValueError):
            return None
        if moment.tzinfo is None:  # RFC 9110 dates are GMT
            return None
        seconds = math.ceil((moment - now).total_seconds())
    return max(0, min(MAX_RETRY_AFTER_SECONDS, seconds))


def effective_rate_percent(bucket: dict[str, Any] | None) -> int:
    """The share of the configured rate a bucket refills at now: lowered by 429s, raised by successes."""
    if not bucket or "ratePercent" not in bucket:
        return FULL_RATE_PERCENT
    raised = int(bucket["ratePercent"]) + int(bucket.get("successes", 0)) * RECOVERY_STEP_PERCENT
    return max(MIN_RATE_PERCENT, min(FULL_RATE_PERCENT, raised))


def effective_rate_per_minute(rate_per_minute: int, bucket: dict[str, Any] | None) -> int:
    return max(1, rate_per_minute * effective_rate_percent(bucket) // FULL_RATE_PERCENT)


def penalty(bucket: dict[str, Any] | None, retry_after_s: int | None, now_ms: int) -> dict[str, Any]:
    """The bucket's fields after a 429: empty, refilling from the site's time, at half the rate."""
    refill_from = now_ms + (retry_after_s or 0) * 1000
    if bucket and "refilledAtMs" in bucket:
        refill_from = max(refill_from, int(bucket["refilledAtMs"]))  # an earlier, longer Retry-After stands
    return {
        "tokens": tokens_to_decimal(0),
        "refilledAtMs": refill_from,
        "ratePercent": max(MIN_RATE_PERCENT, effective_rate_percent(bucket) // 2),
        "successes": 0,
        "expiresAt": refill_from // 1000 + PENALTY_TTL_SECONDS,
    }


def record_rate_limited(
    ddb: Any, table: str, rate_key: str, retry_after_s: int | None, now_ms: int
) -> dict[str, Any] | None:
    """Slow the rate key down after a 429; the fields written, or None if the bucket kept changing."""
    key = {"pk": attr(bucket_key(rate_key))}
    for _ in range(PENALTY_ATTEMPTS):
        bucket = from_item(ddb.get_item(TableName=table, Key=key, ConsistentRead=True).get("Item"))
        fields = penalty(bucket, retry_after_s, now_ms)
        if bucket is None or "tokens" not in bucket:
            condition, version = "attribute_not_exists(tokens)", {}
        else:
            condition = "refilledAtMs = :seenRefilledAtMs AND tokens = :seenTokens"
            version = {"seenRefilledAtMs": bucket["refilledAtMs"], "seenTokens": bucket["tokens"]}
        try:
            ddb.update_item(
                TableName=table,
                Key=key,
                UpdateExpression="SET " + ", ".join(f"{name} = :{name}" for name in fields),
                ConditionExpression=condition,
                ExpressionAttributeValues=expression_values(**fields, **version),
            )
            return fields
        except ClientError as exc:
            if error_code(exc) != CONDITION_FAILED:
                raise
    logger.warning("the bucket of %s kept changing: its 429 was not recorded", rate_key)
    return None


def record_success(ddb: Any, table: str, rate_key: str) -> bool:
    """A success on a slowed-down rate key counts towards its recovery; False when it was not slowed."""
    try:
        ddb.update_item(
            TableName=table,
            Key={"pk": attr(bucket_key(rate_key))},
            UpdateExpression="ADD successes :one",
            ConditionExpression="ratePercent < :full",
            ExpressionAttributeValues=expression_values(one=1, full=FULL_RATE_PERCENT),
        )
        return True
    except ClientError as exc:
        if error_code(exc) != CONDITION_FAILED:
            raise
        return False
