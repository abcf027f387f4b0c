"""Test doubles for browserjobs.core.clock."""

from __future__ import annotations


class FixedClock:
    """A clock that only moves when told to."""

    def __init__(self, now_ms: int) -> None:
        self._now_ms = now_ms

    def now_ms(self) -> int:
        return self._now_ms

    def advance(self, seconds: float) -> None:
        self._now_ms += round(seconds * 1000)
