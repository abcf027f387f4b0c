"""The token bucket: exact integer arithmetic, never more tokens than time allows, minimal waits."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from browserjobs.core.ratelimit import (
    UNITS_PER_TOKEN,
    Bucket,
    BucketPolicy,
    decimal_to_units,
    full_bucket,
    refill,
    take,
    tokens_to_decimal,
)

pytestmark = pytest.mark.unit


def test_a_new_bucket_allows_a_burst_then_waits_one_refill_period():
    policy = BucketPolicy(rate_per_minute=10, burst=3)
    bucket = full_bucket(policy, 0)
    for _ in range(3):
        result = take(bucket, policy, 0)
        assert result.taken
        bucket = result.bucket

    refused = take(bucket, policy, 0)

    assert not refused.taken and refused.wait_seconds == 6
    assert take(bucket, policy, 5_999).wait_seconds == 1
    assert take(bucket, policy, 6_000).taken


def test_refill_never_exceeds_the_burst():
    policy = BucketPolicy(rate_per_minute=60, burst=2)

    assert refill(Bucket(0, 0), policy, 10 * 60_000).units == 2 * UNITS_PER_TOKEN


def test_a_clock_behind_the_bucket_adds_nothing_and_keeps_its_time():
    policy = BucketPolicy(rate_per_minute=60, burst=5)

    assert refill(Bucket(UNITS_PER_TOKEN, 10_000), policy, 9_000) == Bucket(UNITS_PER_TOKEN, 10_000)


@pytest.mark.parametrize(("rate", "expected"), [(1, 60), (7, 9), (10, 6), (60, 1), (61, 1), (600, 1)])
def test_the_wait_for_an_empty_bucket_is_the_ceiling_of_sixty_over_rate(rate, expected):
    policy = BucketPolicy(rate_per_minute=rate, burst=1)

    assert take(Bucket(0, 0), policy, 0).wait_seconds == expected


def test_policy_rejects_a_zero_rate_or_burst():
    with pytest.raises(ValueError, match="rate_per_minute and burst"):
        BucketPolicy(rate_per_minute=0, burst=1)


@given(units=st.integers(min_value=0, max_value=10**9))
def test_stored_tokens_round_trip_exactly(units):
    assert decimal_to_units(tokens_to_decimal(units)) == units
    assert isinstance(tokens_to_decimal(units), Decimal)


@given(
    rate=st.integers(min_value=1, max_value=600),
    burst=st.integers(min_value=1, max_value=20),
    steps=st.lists(st.integers(min_value=0, max_value=20_000), min_size=1, max_size=60),
)
def test_tokens_taken_never_exceed_burst_plus_refill(rate, burst, steps):
    policy = BucketPolicy(rate_per_minute=rate, burst=burst)
    bucket = full_bucket(policy, 0)
    now = taken = 0
    for step in steps:
        now += step
        result = take(bucket, policy, now)
        bucket = result.bucket
        taken += result.taken
    assert taken * UNITS_PER_TOKEN <= burst * UNITS_PER_TOKEN + now * rate


@given(
    rate=st.integers(min_value=1, max_value=600),
    units=st.integers(min_value=0, max_value=UNITS_PER_TOKEN - 1),
    now=st.integers(min_value=0, max_value=10**12),
)
def test_the_wait_is_exactly_enough_and_one_second_less_is_not(rate, units, now):
    policy = BucketPolicy(rate_per_minute=rate, burst=1)
    bucket = Bucket(units, now)

    wait = take(bucket, policy, now).wait_seconds

    assert wait >= 1
    assert take(bucket, policy, now + wait * 1000).taken
    if wait > 1:
        assert not take(bucket, policy, now + (wait - 1) * 1000).taken
