"""A site's 429 slows its rate key down (Retry-After, a halved rate) and successes bring it back; the claim
waits accordingly. Retry-After follows RFC 9110 section 10.2.3 (delay-seconds or an HTTP date)."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from browserjobs.core import site_health
from browserjobs.core.claim import claim
from browserjobs.core.config import Settings
from browserjobs.core.keys import bucket_key
from browserjobs.core.ratelimit import Bucket, BucketPolicy, take
from tests.clocks import FixedClock
from tests.unit.core.test_claim import T0, submitted

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

    class PenaltyDuringClaim:
        def __init__(self, ddb: Any) -> None:
            self._ddb, self._done = ddb, False

        def __getattr__(self, name: str) -> Any:
            return getattr(self._ddb, name)

        def transact_write_items(self, **kwargs: Any) -> Any:
            if not self._done:
                self._done = True
                site_health.record_rate_limited(self._ddb, config.locks_table, "racy", 30, T0)
            return self._ddb.transact_write_items(**kwargs)

    result = claim(PenaltyDuringClaim(stack.ddb), config, request, FixedClock(T0))
    assert result["outcome"] == "THROTTLED" and result["waitSeconds"] >= 30
    assert stack.lease(bucket_key("racy"))["tokens"] == Decimal(0)
