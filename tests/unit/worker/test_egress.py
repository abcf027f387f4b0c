"""The egress guard's policy: which addresses, names and URLs it refuses, and how the browser is told to
keep to the proxy, without a browser or a connection (tests/container/test_worker_egress.py has the rest)."""

from __future__ import annotations

import asyncio
import ipaddress
import socket

import pytest

from browserjobs.core.config import ConfigError
from browserjobs.worker.browser import launch
from browserjobs.worker.egress import EgressPolicy, non_public_reason

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("169.254.169.254", "link-local"),  # instance metadata
        ("169.254.170.2", "link-local"),  # ECS task metadata and credentials
        ("10.1.2.3", "private"),
        ("172.16.0.1", "private"),
        ("192.168.1.1", "private"),
        ("127.0.0.1", "loopback"),
        ("0.0.0.0", "unspecified"),
        ("100.64.0.1", "not globally routable"),  # carrier-grade NAT
        ("224.0.0.1", "multicast"),
        ("::1", "loopback"),
        ("fe80::1", "link-local"),
        ("fd00::1", "private"),
        ("::ffff:169.254.169.254", "link-local"),  # IPv4-mapped
        ("64:ff9b::a01:203", "private"),  # NAT64 of 10.1.2.3
        ("2002:a01:203::1", "private"),  # 6to4 of 10.1.2.3
        ("93.184.215.14", None),
        ("2606:4700::1111", None),
    ],
)
def test_addresses_are_judged_by_where_they_lead(address, reason):
    assert non_public_reason(ipaddress.ip_address(address)) == reason


def test_the_allow_list_takes_cidrs_addresses_and_host_names():
    policy = EgressPolicy(["10.0.0.0/8", "127.0.0.1", "Internal.Example.com"])

    async def decide(host):
        return await policy.check_host(host)

    assert asyncio.run(decide("10.9.8.7")).allowed
    assert asyncio.run(decide("127.0.0.1")).allowed
    assert not asyncio.run(decide("127.0.0.2")).allowed
    assert asyncio.run(decide("internal.example.COM.")).allowed  # named: allowed without resolving
    assert asyncio.run(decide("192.168.0.1")).blocked == "192.168.0.1 is private"
    with pytest.raises(ConfigError, match="neither a CIDR nor a host name"):
        EgressPolicy(["http://10.0.0.0/8"])


def test_urls_that_never_leave_the_browser_pass_and_other_schemes_do_not():
    policy = EgressPolicy()
    assert asyncio.run(policy.check_url("data:text/html,hi")) is None
    assert (
        asyncio.run(policy.check_url("file:///proc/self/environ")).blocked == "scheme 'file' is not allowed"
    )


class _FakeChromium:
    """Records what browser.launch asks Playwright for, without starting anything."""

    def __init__(self) -> None:
        self.kwargs: dict = {}
        self.chromium = self

    async def launch(self, **kwargs):
        self.kwargs = kwargs
        return object()


def test_launch_holds_webrtc_to_the_proxy_in_both_chromiums_and_proxies_loopback_itself():
    fake = _FakeChromium()
    asyncio.run(launch(fake, executable_path=None, proxy_url="http://127.0.0.1:1"))
    args = fake.kwargs["args"]
    # The headless shell reads --force-webrtc-ip-handling-policy; the full Chromium (CHROMIUM_PATH) reads
    # --webrtc-ip-handling-policy (chrome/common/chrome_switches.cc): both, so either binary is held.
    assert "--force-webrtc-ip-handling-policy=disable_non_proxied_udp" in args
    assert "--webrtc-ip-handling-policy=disable_non_proxied_udp" in args
    # Loopback and link-local go through the proxy by our own bypass rule, not by Playwright's default.
    assert fake.kwargs["proxy"] == {"server": "http://127.0.0.1:1", "bypass": "<-loopback>"}


@pytest.fixture
def no_dns(monkeypatch: pytest.MonkeyPatch) -> None:
    """A judgement that needs no answer asks for none (and the tests never query a real resolver)."""

    def refuse(host, *args, **kwargs):
        raise AssertionError(f"resolved {host!r}")

    monkeypatch.setattr(socket, "getaddrinfo", refuse)


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://127.0.0.2\\@127.0.0.1:1/", "backslash"),  # Python: host 127.0.0.1; WHATWG: 127.0.0.2
        ("http://127.0.0.1:1\\@169.254.169.254/", "backslash"),  # Python: 169.254.169.254; WHATWG: 127.0.0.1
        ("http://%31%32%37.0.0.2/", "percent"),  # WHATWG decodes the host; Python does not
        ("http://0x7f.1/", "IPv4"),  # WHATWG reads 127.0.0.1; Python sees a name
        ("http://2130706433/", "IPv4"),
        ("http://127.1/", "IPv4"),
        ("http://exa\tmple.com/", "control"),
        ("http://faß.de/", "non-ASCII"),  # IDNA 2003 (Python) and UTS 46 (browsers) encode it differently
        ("http://a.com:8o/", "port"),
    ],
)
def test_urls_that_parsers_read_differently_are_refused(no_dns, url, why):
    decision = asyncio.run(EgressPolicy(["127.0.0.1"]).check_url(url))
    assert decision is not None and decision.blocked and "ambiguous" in decision.blocked
    assert why in decision.blocked


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/a\\b?x=\\",
        "https://Example.COM./x",
        "http://[::1]:80/",
        "http://u:p@127.0.0.1/",
    ],
)
def test_canonical_urls_are_not_ambiguous(no_dns, url):
    decision = asyncio.run(EgressPolicy(["127.0.0.1", "::1", "example.com"]).check_url(url))
    assert decision is not None and decision.allowed, decision
