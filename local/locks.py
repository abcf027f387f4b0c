"""Lock, slot and token-bucket items of LocksTable, as the operator needs them."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from boto3.dynamodb.conditions import Attr
from botocore.exceptions import ClientError
from jobcore.ddb import plain
from jobcore.keys import LOCK_PREFIX, SLOT_PREFIX, bucket_key, lock_key

from local.outputs import OperatorError, Target


def _table(target: Target) -> Any:
    return target.table(target.outputs["LocksTableName"])


def key_state(target: Target, lock_key_value: str | None, rate_key: str | None) -> dict[str, Any]:
    """The lock held for lockKey and the token bucket of rateKey, as stored (None when absent)."""
    table = _table(target)
    state: dict[str, Any] = {"lock": None, "bucket": None}
    try:
        if lock_key_value:
            item = table.get_item(Key={"pk": lock_key(lock_key_value)}, ConsistentRead=True).get("Item")
            state["lock"] = plain(item) if item else None
        if rate_key:
            item = table.get_item(Key={"pk": bucket_key(rate_key)}, ConsistentRead=True).get("Item")
            state["bucket"] = plain(item) if item else None
    except ClientError as error:
        raise OperatorError(f"cannot read LocksTable: {error.response['Error']['Message']}") from error
    if state["lock"]:
        expires = state["lock"].get("leaseExpiresAtEpoch")
        state["lock"]["expired"] = expires is not None and expires < time.time()
    return state


@dataclass
class Purged:
    pk: str
    job_id: str | None
    lease_expired_at: int


def purge_expired(target: Target, now: float | None = None, dry_run: bool = False) -> list[Purged]:
    """Delete lock# and slot# leases whose lease has expired.

    Each delete is conditional on the lease still being the expired one, so a claim that takes the
    lock over between the scan and the delete is never undone.
    """
    now = time.time() if now is None else now
    table = _table(target)
    expired = (Attr("pk").begins_with(LOCK_PREFIX) | Attr("pk").begins_with(SLOT_PREFIX)) & Attr(
        "leaseExpiresAtEpoch"
    ).lt(int(now))
    purged: list[Purged] = []
    kwargs: dict[str, Any] = {"FilterExpression": expired}
    try:
        while True:
            page = table.scan(**kwargs)
            for item in page.get("Items", []):
                lease = item["leaseExpiresAtEpoch"]
                if not dry_run:
                    try:
                        table.delete_item(
                            Key={"pk": item["pk"]},
                            ConditionExpression=Attr("leaseExpiresAtEpoch").eq(lease),
                        )
                    except ClientError as error:
                        if error.response["Error"]["Code"] == "ConditionalCheckFailedException":
                            continue  # taken over meanwhile: it is a live lease now
                        raise
                purged.append(Purged(item["pk"], item.get("jobId"), int(lease)))
            if "LastEvaluatedKey" not in page:
                return purged
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    except ClientError as error:
        raise OperatorError(f"cannot purge LocksTable: {error.response['Error']['Message']}") from error
