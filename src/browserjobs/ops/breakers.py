"""Sites' circuit breakers (`breaker#<siteKey>` in LocksTable), as the operator sees and resets them."""

from __future__ import annotations

import time
from typing import Any

from boto3.dynamodb.conditions import Attr
from botocore.exceptions import ClientError

from browserjobs.core.clock import iso_ms
from browserjobs.core.ddb import plain
from browserjobs.core.keys import BREAKER_PREFIX, breaker_key
from browserjobs.core.site_health import BREAKER_OPEN
from browserjobs.ops.outputs import OperatorError, Target


def describe(item: dict[str, Any], now_ms: int) -> dict[str, Any]:
    """A breaker as the CLI shows it: OPEN (holding jobs), HALF_OPEN (its open time is over: the next claim,
    or the probe named, tries the site) or CLOSED, with its failures and times."""
    state = item.get("state", "CLOSED")
    open_until = item.get("openUntilMs")
    if state == BREAKER_OPEN and open_until is not None and now_ms >= int(open_until):
        state = "HALF_OPEN"
    return {
        "siteKey": item["pk"].removeprefix(BREAKER_PREFIX),
        "state": state,
        "failures": int(item.get("failures", 0)),
        "openSince": _time(item.get("firstOpenedAtMs")),  # re-opened after each failed probe
        "openedAt": _time(item.get("openedAtMs")),
        "openUntil": _time(open_until),
        "probeJobId": item.get("probeJobId"),
        "lastFailureAt": _time(item.get("lastFailureAtMs")),
    }


def _time(epoch_ms: Any) -> str | None:
    return None if epoch_ms is None else iso_ms(int(epoch_ms))


def list_breakers(target: Target) -> list[dict[str, Any]]:
    """Every breaker item (a scan of LocksTable filtered on the prefix), open ones first."""
    table = target.table(target.outputs["LocksTableName"])
    scan: dict[str, Any] = {"FilterExpression": Attr("pk").begins_with(BREAKER_PREFIX)}
    scan["ConsistentRead"] = True
    items: list[dict[str, Any]] = []
    try:
        while True:
            page = table.scan(**scan)
            items.extend(plain(item) for item in page.get("Items", []))
            if "LastEvaluatedKey" not in page:
                break
            scan["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    except ClientError as error:
        raise OperatorError(f"cannot read LocksTable: {error.response['Error']['Message']}") from error
    now_ms = time.time_ns() // 1_000_000
    order = {"OPEN": 0, "HALF_OPEN": 1, "CLOSED": 2}
    return sorted((describe(item, now_ms) for item in items), key=lambda b: (order[b["state"]], b["siteKey"]))


def reset(target: Target, site_key: str) -> bool:
    """Forget a site's breaker (closed, no failures): its waiting jobs claim on their next look. False when
    there was none."""
    table = target.table(target.outputs["LocksTableName"])
    try:
        gone = table.delete_item(Key={"pk": breaker_key(site_key)}, ReturnValues="ALL_OLD")
    except ClientError as error:
        raise OperatorError(f"cannot write LocksTable: {error.response['Error']['Message']}") from error
    return "Attributes" in gone
