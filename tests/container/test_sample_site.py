"""The sample site's slow page: a first attempt that cannot end early, and quick retries."""

from __future__ import annotations

import time
import urllib.request

from browserjobs.testing.sample_site.server import SampleSite


def _get_seconds(url: str) -> float:
    started = time.monotonic()
    with urllib.request.urlopen(url, timeout=10) as answer:  # noqa: S310  # nosec B310  (loopback)
        answer.read()
    return time.monotonic() - started


def test_then_makes_a_named_slow_page_quick_after_its_first_request() -> None:
    with SampleSite() as site:
        url = f"{site.url}/slow?seconds=1.5&then=0&name=first-slow"
        first, second = _get_seconds(url), _get_seconds(url)
        assert first >= 1.5
        assert second < 1.0
        assert len(site.loads("first-slow")) == 2


def test_without_then_every_request_waits() -> None:
    with SampleSite() as site:
        url = f"{site.url}/slow?seconds=0.6&name=always-slow"
        assert min(_get_seconds(url), _get_seconds(url)) >= 0.6
