"""A site's 429 slows its rate key down (Retry-After, a halved rate) and successes bring it back; the claim
waits accordingly. Retry-After follows RFC 9110 section 10.2.3 (delay-seconds or an HTTP date)."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from browserjobs.core import site_health
from browserjobs.core.claim import SiteUnavailable, claim
from browserjobs.core.config import Settings
from browserjobs.core.keys import bucket_key
from browserjobs.core.ratelimit import Bucket, BucketPolicy, take
from browserjobs.core.sites import site_key_of
from tests.clocks import FixedClock
from tests.unit.core.test_claim import T0, Interfering, submitted

pytestmark = pytest.mark.unit

NOW = datetime(2026, 12, 4, 9, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("3", 3),
        (" 120 ", 120),
        ("0", 0),
        ("999999", site_health.MAX_RETRY_AFTER_SECONDS),  # capped
        ("Fri, 04 Dec 2026 09:30:42 GMT", 42),
        ("Fri, 04 Dec 2026 09:29:00 GMT", 0),  # a date already past: no wait
        ("soon", None),
        ("-5", None),
        ("", None),
        (None, None),
    ],
)
def test_retry_after_is_seconds_or_an_http_date(header, seconds):
    assert site_health.retry_after_seconds(header, NOW) == seconds


def test_the_rate_halves_on_each_429_and_comes_back_step_by_step():
    assert site_health.effective_rate_percent(None) == 100
    first = site_health.penalty(None, 3, T0)
    assert first["ratePercent"] == 50 and first["refilledAtMs"] == T0 + 3_000 and first["tokens"] == 0
    second = site_health.penalty(first, 1, T0 + 1_000)
    assert second["ratePercent"] == 25
    assert second["refilledAtMs"] == T0 + 3_000  # the earlier, later Retry-After still stands
    assert site_health.effective_rate_percent({"ratePercent": 25, "successes": 3}) == 55
    assert site_health.effective_rate_percent({"ratePercent": 25, "successes": 30}) == 100  # never above
    floor = {"ratePercent": site_health.MIN_RATE_PERCENT}
    assert site_health.penalty(floor, None, T0)["ratePercent"] == site_health.MIN_RATE_PERCENT
    assert site_health.effective_rate_per_minute(12, {"ratePercent": 50}) == 6
    assert site_health.effective_rate_per_minute(1, {"ratePercent": 10}) == 1  # at least one a minute


def test_a_bucket_refilling_from_a_later_time_waits_for_it_first():
    policy = BucketPolicy(rate_per_minute=60, burst=2)
    result = take(Bucket(units=0, refilled_at_ms=T0 + 3_000), policy, T0)
    assert not result.taken and result.wait_seconds == 4  # 3 s until the refill starts, then 1 s a token
    assert take(Bucket(units=0, refilled_at_ms=T0 + 3_000), policy, T0 + 4_000).taken


def settings(**overrides: Any) -> Settings:
    return dataclasses.replace(Settings.from_env(), **overrides)


def test_a_429_makes_the_next_claim_wait_for_the_site_then_at_half_the_rate(stack):
    config = settings(rate_limit_per_minute=12, rate_burst=2)
    table = config.locks_table
    recorded = site_health.record_rate_limited(stack.ddb, table, "shop", 3, T0)
    assert recorded is not None and recorded["ratePercent"] == 50

    request = submitted(stack, "job-after-429", "acct#1", rate="shop")
    # 3 s for the site, then one token at 6 a minute: 10 s
    assert claim(stack.ddb, config, request, FixedClock(T0)) == {"outcome": "THROTTLED", "waitSeconds": 13}
    assert claim(stack.ddb, config, request, FixedClock(T0 + 13_000))["outcome"] == "CLAIMED"
    bucket = stack.lease(bucket_key("shop"))
    assert bucket["ratePercent"] == 50 and bucket["successes"] == 0  # kept by the claim's write


def test_successes_raise_the_rate_until_the_claim_drops_the_penalty(stack):
    config = settings(rate_limit_per_minute=12, rate_burst=2)
    table = config.locks_table
    assert site_health.record_success(stack.ddb, table, "calm") is False  # never slowed: nothing written
    assert stack.lease(bucket_key("calm")) is None

    site_health.record_rate_limited(stack.ddb, table, "busy", None, T0)
    for _ in range(5):
        assert site_health.record_success(stack.ddb, table, "busy") is True
    assert site_health.effective_rate_percent(stack.lease(bucket_key("busy"))) == 100

    request = submitted(stack, "job-recovered", "acct#2", rate="busy")
    assert claim(stack.ddb, config, request, FixedClock(T0 + 60_000))["outcome"] == "CLAIMED"
    bucket = stack.lease(bucket_key("busy"))
    assert "ratePercent" not in bucket and "successes" not in bucket


def test_a_penalty_written_while_a_claim_runs_is_not_lost(stack):
    """The penalty changes the bucket's version (refilledAtMs, tokens): the claim's conditional write fails
    and it reads again, instead of putting back the bucket it read before the 429."""
    config = settings(rate_limit_per_minute=12, rate_burst=2)
    request = submitted(stack, "job-racing", "acct#3", rate="racy")
    claim(stack.ddb, config, submitted(stack, "job-first", "acct#4", rate="racy"), FixedClock(T0))

    def penalty() -> None:
        site_health.record_rate_limited(stack.ddb, config.locks_table, "racy", 30, T0)

    result = claim(Interfering(stack.ddb, penalty), config, request, FixedClock(T0))
    assert result["outcome"] == "THROTTLED" and result["waitSeconds"] >= 30
    assert stack.lease(bucket_key("racy"))["tokens"] == Decimal(0)


# --- the circuit breaker ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "key"),
    [
        (
            {"steps": [{"wait_for": {"timeoutMs": 5}}, {"goto": {"url": "https://Shop.Example:8443/a?b"}}]},
            "shop.example:8443",
        ),
        ({"steps": [{"goto": {"url": "https://user:pw@shop.example/"}}]}, "shop.example"),
        ({"loginUrl": "http://login.example/x", "checkUrl": "http://other.example/"}, "login.example"),
        ({"steps": [{"wait_for": {"timeoutMs": 5}}]}, ""),
        ({"steps": [{"goto": {"url": "not a url"}}]}, ""),
    ],
)
def test_a_jobs_site_is_the_host_of_its_first_url(params, key):
    assert site_key_of(params) == key


def test_an_open_breaker_holds_claims_then_lets_one_probe_through():
    assert site_health.breaker_gate(None, "a", T0) == ("pass", 0)
    breaker = {"state": "OPEN", "openUntilMs": T0 + 4_000}
    assert site_health.breaker_gate(breaker, "a", T0) == ("wait", 4_000)
    assert site_health.breaker_gate(breaker, "a", T0 + 4_000) == ("probe", 0)
    probing = {**breaker, "probeJobId": "a", "probeUntilMs": T0 + 60_000}
    assert site_health.breaker_gate(probing, "a", T0 + 5_000) == ("probe", 0)  # the probe's own claim again
    assert site_health.breaker_gate(probing, "b", T0 + 5_000) == ("wait", site_health.PROBE_RECHECK_MS)
    assert site_health.breaker_gate(probing, "b", T0 + 60_000) == ("probe", 0)  # the probe's lease ran out
    assert site_health.breaker_blocks(probing, "b") and not site_health.breaker_blocks(probing, "a")
    assert not site_health.breaker_blocks({"state": "CLOSED", "failures": 3}, "b")


def test_failures_open_the_breaker_a_failed_probe_reopens_it_a_success_closes_it(stack):
    table, site = settings().locks_table, "down.example"

    def fail(job_id: str, at_ms: int) -> dict[str, Any] | None:
        return site_health.record_site_failure(stack.ddb, table, site, job_id, 3, 60, at_ms)

    assert fail("a", T0) is None and fail("b", T0) is None
    opened = fail("c", T0 + 1_000)
    assert opened == {"state": "OPEN", "failures": 3, "openedAtMs": T0 + 1_000, "openUntilMs": T0 + 61_000}
    assert fail("d", T0 + 2_000) is None  # open already: counted, not reopened
    stack.ddb.update_item(  # a claim took the probe for job p
        TableName=table,
        Key={"pk": {"S": f"breaker#{site}"}},
        UpdateExpression="SET probeJobId = :p",
        ExpressionAttributeValues={":p": {"S": "p"}},
    )
    reopened = fail("p", T0 + 70_000)
    assert reopened is not None and reopened["openUntilMs"] == T0 + 130_000
    item = stack.lease(f"breaker#{site}")
    assert "probeJobId" not in item and item["firstOpenedAtMs"] == T0 + 1_000

    assert site_health.record_site_success(stack.ddb, table, site) is True
    item = stack.lease(f"breaker#{site}")
    assert item["state"] == "CLOSED" and item["failures"] == 0 and "openUntilMs" not in item
    assert site_health.record_site_success(stack.ddb, table, site) is False  # nothing left to close
    assert site_health.record_site_success(stack.ddb, table, "never.failed") is False
    assert stack.lease("breaker#never.failed") is None


def open_breaker(stack, site: str, until_ms: int) -> None:
    stack.ddb.put_item(
        TableName=settings().locks_table,
        Item={
            "pk": {"S": f"breaker#{site}"},
            "state": {"S": "OPEN"},
            "failures": {"N": "5"},
            "openUntilMs": {"N": str(until_ms)},
        },
    )


def test_a_claim_waits_for_an_open_breaker_and_one_job_takes_the_probe(stack):
    config = settings()
    open_breaker(stack, "down.example", T0 + 4_000)
    first = dataclasses.replace(submitted(stack, "job-1", "acct#b1"), site_key="down.example")
    second = dataclasses.replace(submitted(stack, "job-2", "acct#b2"), site_key="down.example")

    held = claim(stack.ddb, config, first, FixedClock(T0))
    assert held == {"outcome": "BREAKER_OPEN", "waitSeconds": 4, "siteKey": "down.example"}
    assert stack.job("job-1")["waitReason"] == "BREAKER_OPEN"

    assert claim(stack.ddb, config, first, FixedClock(T0 + 4_000))["outcome"] == "CLAIMED"
    assert stack.lease("breaker#down.example")["probeJobId"] == "job-1"
    assert claim(stack.ddb, config, second, FixedClock(T0 + 4_500)) == {
        "outcome": "BREAKER_OPEN",
        "waitSeconds": site_health.PROBE_RECHECK_MS // 1000,
        "siteKey": "down.example",
    }


def test_a_probe_taken_by_another_job_during_the_claim_makes_it_wait(stack):
    config = settings()
    open_breaker(stack, "racy.example", T0)
    mine = dataclasses.replace(submitted(stack, "job-mine", "acct#r1"), site_key="racy.example")
    rival = dataclasses.replace(submitted(stack, "job-rival", "acct#r2"), site_key="racy.example")

    def rival_probes() -> None:
        assert claim(stack.ddb, config, rival, FixedClock(T0 + 1_000))["outcome"] == "CLAIMED"

    result = claim(Interfering(stack.ddb, rival_probes), config, mine, FixedClock(T0 + 1_000))
    assert result["outcome"] == "BREAKER_OPEN"
    assert stack.lease("breaker#racy.example")["probeJobId"] == "job-rival"


def test_a_job_that_waited_its_whole_timeout_for_a_breaker_fails(stack):
    open_breaker(stack, "gone.example", T0 + 3_600_000)
    waiting = submitted(stack, "job-patient", "acct#g1", timeout=300)
    request = dataclasses.replace(waiting, site_key="gone.example", execution_started_ms=T0)
    assert claim(stack.ddb, settings(), request, FixedClock(T0 + 299_000))["outcome"] == "BREAKER_OPEN"
    with pytest.raises(SiteUnavailable, match="stayed open for the job's whole timeoutSeconds"):
        claim(stack.ddb, settings(), request, FixedClock(T0 + 300_000))
