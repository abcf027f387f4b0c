"""Reading and releasing the lock, bucket and slot items of LocksTable."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from browserjobs.core.ddb import attr, error_code, expression_values, from_item
from browserjobs.core.keys import (
    BREAKER_PREFIX,
    BUCKET_PREFIX,
    LOCK_PREFIX,
    SLOT_PREFIX,
    breaker_key,
    bucket_key,
    lock_key,
    slot_keys,
    slot_number,
)
from browserjobs.core.records import CONDITION_FAILED

logger = logging.getLogger(__name__)

BATCH_GET_LIMIT = 100
MAX_UNPROCESSED_ROUNDS = 5


@dataclass(frozen=True)
class Leases:
    """What LocksTable holds for one lockKey/rateKey: absent items are None / missing slots."""

    lock: dict[str, Any] | None = None
    bucket: dict[str, Any] | None = None
    slots: dict[int, dict[str, Any]] = field(default_factory=dict)
    breaker: dict[str, Any] | None = None


def is_expired(item: dict[str, Any], now_s: int) -> bool:
    return int(item["leaseExpiresAtEpoch"]) <= now_s


def read_leases(
    ddb: Any,
    table: str,
    max_slots: int,
    lock_key_value: str | None = None,
    rate_key: str | None = None,
    site_key: str | None = None,
) -> Leases:
    """One consistent read of the lock, the bucket, the site's breaker and every slot (BatchGetItem, 100
    keys a call)."""
    keys = slot_keys(max_slots)
    if lock_key_value is not None:
        keys.append(lock_key(lock_key_value))
    if rate_key is not None:
        keys.append(bucket_key(rate_key))
    if site_key:
        keys.append(breaker_key(site_key))
    items: dict[str, dict[str, Any]] = {}
    for start in range(0, len(keys), BATCH_GET_LIMIT):
        request = {
            table: {
                "Keys": [{"pk": attr(k)} for k in keys[start : start + BATCH_GET_LIMIT]],
                "ConsistentRead": True,
            }
        }
        for _ in range(MAX_UNPROCESSED_ROUNDS):
            response = ddb.batch_get_item(RequestItems=request)
            for raw in response.get("Responses", {}).get(table, []):
                item = from_item(raw) or {}
                items[item["pk"]] = item
            request = response.get("UnprocessedKeys") or {}
            if not request:
                break
        else:
            raise RuntimeError(f"BatchGetItem left keys unprocessed after {MAX_UNPROCESSED_ROUNDS} rounds")
    return Leases(
        lock=next((v for k, v in items.items() if k.startswith(LOCK_PREFIX)), None),
        bucket=next((v for k, v in items.items() if k.startswith(BUCKET_PREFIX)), None),
        slots={slot_number(k): v for k, v in items.items() if k.startswith(SLOT_PREFIX)},
        breaker=next((v for k, v in items.items() if k.startswith(BREAKER_PREFIX)), None),
    )


def release_if_owned(ddb: Any, table: str, pk: str, job_id: str) -> bool:
    """Delete a lock or slot item only while this job holds it; False when it does not (any more)."""
    try:
        ddb.delete_item(
            TableName=table,
            Key={"pk": attr(pk)},
            ConditionExpression="jobId = :jobId",
            ExpressionAttributeValues=expression_values(jobId=job_id),
        )
        return True
    except ClientError as exc:
        if error_code(exc) != CONDITION_FAILED:
            raise
        logger.info("%s is not held by %s; left alone", pk, job_id)
        return False
