"""Partition keys of the items in LocksTable."""

from __future__ import annotations

LOCK_PREFIX = "lock#"
BUCKET_PREFIX = "bucket#"
SLOT_PREFIX = "slot#"
BREAKER_PREFIX = "breaker#"


def lock_key(lock_key_value: str) -> str:
    return f"{LOCK_PREFIX}{lock_key_value}"


def bucket_key(rate_key: str) -> str:
    return f"{BUCKET_PREFIX}{rate_key}"


def breaker_key(site_key: str) -> str:
    return f"{BREAKER_PREFIX}{site_key}"


def slot_key(slot: int) -> str:
    return f"{SLOT_PREFIX}{slot}"


def slot_keys(max_concurrent_tasks: int) -> list[str]:
    return [slot_key(n) for n in range(max_concurrent_tasks)]


def slot_number(pk: str) -> int:
    if not pk.startswith(SLOT_PREFIX):
        raise ValueError(f"not a slot key: {pk!r}")
    return int(pk[len(SLOT_PREFIX) :])
