"""`browserjobs breakers list` and `breakers reset` on a deployed stack's LocksTable."""

from __future__ import annotations

import json
import time

from tests.cli.test_cli import run


def _put_breaker(stack, site: str, **fields: str) -> None:
    item = {
        "pk": {"S": f"breaker#{site}"},
        **{k: ({"S": v} if k in ("state", "probeJobId") else {"N": v}) for k, v in fields.items()},
    }
    stack.client("dynamodb").put_item(TableName=stack.outputs["LocksTableName"], Item=item)


def test_breakers_are_listed_open_first_and_reset_by_site(stack):
    now_ms = time.time_ns() // 1_000_000
    _put_breaker(
        stack,
        "down.example",
        state="OPEN",
        failures="5",
        openUntilMs=str(now_ms + 600_000),
        firstOpenedAtMs=str(now_ms - 1_000),
        openedAtMs=str(now_ms - 1_000),
    )
    _put_breaker(
        stack,
        "probing.example",
        state="OPEN",
        failures="6",
        openUntilMs=str(now_ms - 1_000),
        probeJobId="job-probe",
        probeUntilMs=str(now_ms + 60_000),
    )
    _put_breaker(stack, "calm.example", state="CLOSED", failures="2")

    listed = run(stack, "breakers", "list", "--json")

    assert listed.exit_code == 0, listed.output
    found = {b["siteKey"]: b for b in json.loads(listed.stdout)}
    assert [b["siteKey"] for b in json.loads(listed.stdout)] == [
        "down.example",
        "probing.example",
        "calm.example",
    ]
    assert found["down.example"]["state"] == "OPEN" and found["down.example"]["openSince"].endswith("Z")
    assert found["probing.example"]["state"] == "HALF_OPEN"  # its open time is over: a probe job is trying
    assert found["probing.example"]["probeJobId"] == "job-probe"
    assert found["calm.example"] == {
        **found["calm.example"],
        "state": "CLOSED",
        "failures": 2,
        "openUntil": None,
    }
    table = run(stack, "breakers", "list")
    assert "down.example" in table.stdout and "2 open of 3" in table.stdout

    reset = run(stack, "breakers", "reset", "down.example")
    assert reset.exit_code == 0 and "breaker of down.example reset" in reset.stdout
    assert "down.example" not in [
        b["siteKey"] for b in json.loads(run(stack, "breakers", "list", "--json").stdout)
    ]
    missing = run(stack, "breakers", "reset", "never.example")
    assert missing.exit_code == 3 and "no breaker for 'never.example'" in missing.output
