"""How a site's answers slow its work down: Retry-After and an adaptive rate on its rate key (429s), and a
circuit breaker per site (5xx, timeouts, no connection).

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

The breaker (`breaker#<siteKey>`, siteKey: browserjobs.core.sites) counts consecutive site failures
(SITE_FAILURES; client errors neither count nor reset). At `BREAKER_FAILURE_THRESHOLD` it opens for
`BREAKER_OPEN_SECONDS`: claims for the site answer BREAKER_OPEN and wait, and a task that starts while it is
open goes back to its claim without loading a page. Once the open time is over, one claim takes the probe
(`probeJobId`, in the claim's transaction, until that job's lease ends); the probe's success closes the
breaker, its failure opens it again. Any success on the site closes it.
"""

from __future__ import annotations

import logging
import math
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Any

from botocore.exceptions import ClientError

from browserjobs.core.contract import ErrorName
from browserjobs.core.ddb import attr, error_code, expression_values, from_item
from browserjobs.core.keys import breaker_key, bucket_key
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


# --- the circuit breaker ----------------------------------------------------------------------------------

BREAKER_OPEN = "OPEN"
BREAKER_CLOSED = "CLOSED"
SITE_FAILURES = frozenset({ErrorName.SITE_SERVER_ERROR, ErrorName.SITE_TIMEOUT, ErrorName.SITE_UNREACHABLE})
# While another job probes the site, the others look again this often (the probe may end any time).
PROBE_RECHECK_MS = 10_000
BREAKER_TTL_SECONDS = 86_400


def breaker_gate(breaker: dict[str, Any] | None, job_id: str, now_ms: int) -> tuple[str, int]:
    """What a claim does about the site's breaker: ("pass", 0), ("probe", 0) when this job may try the site
    after the open time, or ("wait", milliseconds)."""
    if not breaker or breaker.get("state") != BREAKER_OPEN:
        return "pass", 0
    open_until = int(breaker.get("openUntilMs", 0))
    if now_ms < open_until:
        return "wait", open_until - now_ms
    probe, probe_until = breaker.get("probeJobId"), int(breaker.get("probeUntilMs", 0))
    if probe and probe != job_id and now_ms < probe_until:
        return "wait", min(PROBE_RECHECK_MS, probe_until - now_ms)
    return "probe", 0


def breaker_blocks(breaker: dict[str, Any] | None, job_id: str) -> bool:
    """A task may load the site unless its breaker is open and the task's job is not the probe."""
    if not breaker:
        return False
    return breaker.get("state") == BREAKER_OPEN and breaker.get("probeJobId") != job_id


def read_breaker(ddb: Any, table: str, site_key: str) -> dict[str, Any] | None:
    if not site_key:
        return None
    key = {"pk": attr(breaker_key(site_key))}
    return from_item(ddb.get_item(TableName=table, Key=key, ConsistentRead=True).get("Item"))


def record_site_success(ddb: Any, table: str, site_key: str) -> bool:
    """The site answered: its breaker closes and forgets its failures. False when there was nothing to
    close (no failures counted)."""
    if not site_key:
        return False
    try:
        ddb.update_item(
            TableName=table,
            Key={"pk": attr(breaker_key(site_key))},
            UpdateExpression="SET #state = :closed, failures = :zero "
            "REMOVE probeJobId, probeUntilMs, openUntilMs, openedAtMs, firstOpenedAtMs",
            ConditionExpression="attribute_exists(pk) AND (failures > :zero OR #state = :open)",
            ExpressionAttributeNames={"#state": "state"},
            ExpressionAttributeValues=expression_values(closed=BREAKER_CLOSED, open=BREAKER_OPEN, zero=0),
        )
        return True
    except ClientError as exc:
        if error_code(exc) != CONDITION_FAILED:
            raise
        return False


def record_site_failure(
    ddb: Any, table: str, site_key: str, job_id: str, threshold: int, open_seconds: int, now_ms: int
) -> dict[str, Any] | None:
    """Count a site failure; at the threshold (or when the probe failed) open the breaker. The breaker's
    fields when this call opened it, else None."""
    if not site_key:
        return None
    key = {"pk": attr(breaker_key(site_key))}
    counted = ddb.update_item(
        TableName=table,
        Key=key,
        UpdateExpression="ADD failures :one SET lastFailureAtMs = :now, expiresAt = :ttl, "
        "#state = if_not_exists(#state, :closed)",
        ExpressionAttributeNames={"#state": "state"},
        ExpressionAttributeValues=expression_values(
            one=1, now=now_ms, ttl=now_ms // 1000 + BREAKER_TTL_SECONDS, closed=BREAKER_CLOSED
        ),
        ReturnValues="ALL_NEW",
    )
    breaker = from_item(counted["Attributes"]) or {}
    probe_failed = breaker.get("probeJobId") == job_id
    if int(breaker.get("failures", 0)) < threshold and not probe_failed:
        return None
    opened = {"openedAtMs": now_ms, "openUntilMs": now_ms + open_seconds * 1000}
    try:
        ddb.update_item(
            TableName=table,
            Key=key,
            UpdateExpression="SET #state = :open, openedAtMs = :openedAtMs, openUntilMs = :openUntilMs, "
            "firstOpenedAtMs = if_not_exists(firstOpenedAtMs, :openedAtMs) REMOVE probeJobId, probeUntilMs",
            ConditionExpression="#state <> :open OR probeJobId = :job",
            ExpressionAttributeNames={"#state": "state"},
            ExpressionAttributeValues=expression_values(open=BREAKER_OPEN, job=job_id, **opened),
        )
    except ClientError as exc:
        if error_code(exc) != CONDITION_FAILED:
            raise
        return None  # open already (another job's failure opened it)
    return {"state": BREAKER_OPEN, "failures": int(breaker["failures"]), **opened}
