"""Lock, slot and token-bucket items of LocksTable, as the operator needs them."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError

from browserjobs.core.cleanup import expired_lease_holders as _expired_lease_holders
from browserjobs.core.config import Settings
from browserjobs.core.ddb import plain
from browserjobs.core.keys import breaker_key, bucket_key, lock_key
from browserjobs.ops.breakers import describe as describe_breaker
from browserjobs.ops.outputs import OperatorError, Target


def key_state(
    target: Target, lock_key_value: str | None, rate_key: str | None, site_key: str | None = None
) -> dict[str, Any]:
    """The lock held for lockKey, the token bucket of rateKey and the breaker of siteKey, as stored (None
    when absent): what a waiting job waits for."""
    table = target.table(target.outputs["LocksTableName"])
    state: dict[str, Any] = {"lock": None, "bucket": None, "breaker": None}
    try:
        if lock_key_value:
            item = table.get_item(Key={"pk": lock_key(lock_key_value)}, ConsistentRead=True).get("Item")
            state["lock"] = plain(item) if item else None
        if rate_key:
            item = table.get_item(Key={"pk": bucket_key(rate_key)}, ConsistentRead=True).get("Item")
            state["bucket"] = plain(item) if item else None
        if site_key:
            item = table.get_item(Key={"pk": breaker_key(site_key)}, ConsistentRead=True).get("Item")
            state["breaker"] = describe_breaker(plain(item), time.time_ns() // 1_000_000) if item else None
    except ClientError as error:
        raise OperatorError(f"cannot read LocksTable: {error.response['Error']['Message']}") from error
    if state["lock"]:
        expires = state["lock"].get("leaseExpiresAtEpoch")
        state["lock"]["expired"] = expires is not None and expires < time.time()
    return state


def expired_lease_holders(target: Target) -> dict[str, str | None]:
    """jobId -> lockKey of every job holding a lock or slot whose lease has expired (read only)."""
    settings = Settings(locks_table=target.outputs["LocksTableName"])
    try:
        return _expired_lease_holders(target.client("dynamodb"), settings, int(time.time()))
    except ClientError as error:
        raise OperatorError(f"cannot read LocksTable: {error.response['Error']['Message']}") from error


def sweep(target: Target) -> list[dict[str, Any]]:
    """Run the cleanup function's scheduled sweep now, with its own permissions and logic."""
    function = target.outputs["CleanupFunctionName"]
    event = {
        "version": "0",
        "id": f"cli-{time.time_ns()}",
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": "",
        "region": target.session.region_name or "",
        "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "resources": ["browserjobs-cli:locks-purge-expired"],
        "detail": {},
    }
    try:
        response = target.client("lambda").invoke(FunctionName=function, Payload=json.dumps(event).encode())
    except ClientError as error:
        raise OperatorError(f"cannot invoke {function}: {error.response['Error']['Message']}") from error
    answer = json.loads(response["Payload"].read() or b"null")
    if response.get("FunctionError"):
        raise OperatorError(f"the sweep failed: {json.dumps(answer)}")
    return answer["swept"]
