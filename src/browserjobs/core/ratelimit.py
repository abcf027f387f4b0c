"""Token-bucket arithmetic, exact: no floating point anywhere.

Tokens are counted in units of 1/60000 token (a token per minute per unit of rate, at millisecond
resolution), so refilling `elapsed_ms * rate_per_minute` units is an integer and the wait for the
next token is an exact ceiling. DynamoDB stores `tokens` as a decimal with enough digits for the
units to round-trip (see `tokens_to_decimal` / `decimal_to_units`).

A site that answers 429 empties its rate key's bucket until the time its Retry-After names: the bucket's
`refilled_at_ms` is then in the future, and nothing refills before it (browserjobs.core.site_health).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal

UNITS_PER_TOKEN = 60_000  # milliseconds per minute
_STORED_PLACES = Decimal("1e-12")


@dataclass(frozen=True)
class BucketPolicy:
    rate_per_minute: int
    burst: int

    def __post_init__(self) -> None:
        if self.rate_per_minute < 1 or self.burst < 1:
            raise ValueError("rate_per_minute and burst must be >= 1")

    @property
    def capacity_units(self) -> int:
        return self.burst * UNITS_PER_TOKEN


@dataclass(frozen=True)
class Bucket:
    units: int
    refilled_at_ms: int


@dataclass(frozen=True)
class Take:
    """The outcome of taking one token: the bucket to write, or how long to wait."""

    taken: bool
    bucket: Bucket
    wait_seconds: int = 0


def full_bucket(policy: BucketPolicy, now_ms: int) -> Bucket:
    return Bucket(units=policy.capacity_units, refilled_at_ms=now_ms)


def refill(bucket: Bucket, policy: BucketPolicy, now_ms: int) -> Bucket:
    elapsed_ms = max(0, now_ms - bucket.refilled_at_ms)
    units = min(policy.capacity_units, bucket.units + elapsed_ms * policy.rate_per_minute)
    return Bucket(units=units, refilled_at_ms=max(now_ms, bucket.refilled_at_ms))


def take(bucket: Bucket, policy: BucketPolicy, now_ms: int) -> Take:
    """Refill to now, then take one token, or say how long until one is there."""
    current = refill(bucket, policy, now_ms)
    if current.units >= UNITS_PER_TOKEN:
        return Take(taken=True, bucket=Bucket(current.units - UNITS_PER_TOKEN, current.refilled_at_ms))
    return Take(taken=False, bucket=current, wait_seconds=wait_seconds(current, policy, now_ms))


def wait_seconds(bucket: Bucket, policy: BucketPolicy, now_ms: int) -> int:
    """Whole seconds until a bucket refilled to now holds one token (at least 1); a bucket that refills
    only from a time still to come waits for that time first."""
    missing_ms = -(-(UNITS_PER_TOKEN - bucket.units) // policy.rate_per_minute)
    until_ms = max(0, bucket.refilled_at_ms - now_ms) + missing_ms
    return max(1, -(-until_ms // 1000))


def tokens_to_decimal(units: int) -> Decimal:
    return (Decimal(units) / UNITS_PER_TOKEN).quantize(_STORED_PLACES, rounding=ROUND_HALF_EVEN)


def decimal_to_units(tokens: Decimal) -> int:
    return int((tokens * UNITS_PER_TOKEN).to_integral_value(rounding=ROUND_HALF_EVEN))
