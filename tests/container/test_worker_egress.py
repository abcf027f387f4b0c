"""The egress guard: link-local, private and loopback addresses are refused unless EGRESS_ALLOW says so."""

from __future__ import annotations

import asyncio
import ipaddress
import time

import pytest
from jobcore.config import ConfigError
from worker.egress import EgressPolicy, non_public_reason
from worker.egress_proxy import EgressProxy
from worker.errors import ExitCode

pytestmark = pytest.mark.container


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


def test_a_name_is_refused_when_any_of_its_addresses_is_not_public():
    decision = asyncio.run(EgressPolicy().check_host("localhost"))
    assert decision.blocked and "resolves to" in decision.blocked and "loopback" in decision.blocked


def test_urls_that_never_leave_the_browser_pass_and_other_schemes_do_not():
    policy = EgressPolicy()
    assert asyncio.run(policy.check_url("data:text/html,hi")) is None
    assert (
        asyncio.run(policy.check_url("file:///proc/self/environ")).blocked == "scheme 'file' is not allowed"
    )


def test_the_proxy_refuses_tunnels_and_requests_to_blocked_addresses():
    """What Chromium asks of the proxy for redirect hops and WebSockets, decided before any connection."""

    async def ask(proxy_url: str, request: bytes) -> bytes:
        host, port = proxy_url.removeprefix("http://").split(":")
        reader, writer = await asyncio.open_connection(host, int(port))
        writer.write(request)
        await writer.drain()
        answer = await asyncio.wait_for(reader.read(), 5)
        writer.close()
        return answer

    async def scenario() -> tuple[bytes, bytes, float, list]:
        policy = EgressPolicy()
        async with EgressProxy(policy) as proxy:
            started = time.monotonic()
            tunnel = await ask(proxy.url, b"CONNECT 169.254.169.254:443 HTTP/1.1\r\nHost: x\r\n\r\n")
            forward = await ask(proxy.url, b"GET http://10.1.2.3/latest HTTP/1.1\r\nHost: 10.1.2.3\r\n\r\n")
            return tunnel, forward, time.monotonic() - started, policy.blocks

    tunnel, forward, elapsed, blocks = asyncio.run(scenario())
    assert tunnel.startswith(b"HTTP/1.1 403") and b"169.254.169.254 is link-local" in tunnel
    assert forward.startswith(b"HTTP/1.1 403") and b"10.1.2.3 is private" in forward
    assert elapsed < 2  # decided from the address, no connection attempted
    assert [b["target"] for b in blocks] == ["169.254.169.254:443", "http://10.1.2.3/latest"]


def test_the_proxy_relays_allowed_requests(site):
    async def scenario() -> bytes:
        async with EgressProxy(EgressPolicy(["127.0.0.1"])) as proxy:
            host, port = proxy.url.removeprefix("http://").split(":")
            reader, writer = await asyncio.open_connection(host, int(port))
            writer.write(
                f"GET {site.url('/page')} HTTP/1.1\r\nHost: x\r\nProxy-Connection: close\r\n\r\n".encode()
            )
            answer = await asyncio.wait_for(reader.read(), 5)
            writer.close()
            return answer

    answer = asyncio.run(scenario())
    assert answer.startswith(b"HTTP/1.0 200") and b"Hello fixture" in answer


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://169.254.169.254/latest/meta-data/", "169.254.169.254 is link-local"),
        ("http://10.1.2.3/", "10.1.2.3 is private"),
    ],
)
def test_navigating_to_a_blocked_address_fails_at_once_as_a_client_error(worker, stack, url, reason):
    # 10.1.2.3 is unroutable here: without the guard deciding first, the step would wait out its 20 s.
    job_id = stack.put_job("browse", {"steps": [{"goto": {"url": url, "timeoutMs": 20000}}]})

    code, execution = worker.run(job_id)

    assert code == ExitCode.BY_ERROR["Site.ClientError"]
    assert execution["error"] == "Site.ClientError"
    _, cause = worker.failure()
    assert "blocked by egress guard" in cause["message"] and reason in cause["message"]
    result = stack.result(job_id)
    assert result["steps"][0]["durationMs"] < 3000
    assert {"target": url, "reason": reason} in result["blockedRequests"]


def test_a_redirect_to_a_private_address_is_refused_by_the_proxy(worker, stack, site):
    """Routing never sees redirect hops: the proxy refuses the hop, and the step says why."""
    job_id = stack.put_job(
        "browse",
        {"steps": [{"goto": {"url": site.url("/redirect?to=http://10.1.2.3/admin"), "timeoutMs": 20000}}]},
    )

    code, _ = worker.run(job_id)

    assert code == ExitCode.BY_ERROR["Site.ClientError"]
    _, cause = worker.failure()
    assert (
        "navigation to http://10.1.2.3/admin blocked by egress guard: 10.1.2.3 is private" in cause["message"]
    )
    assert stack.result(job_id)["steps"][0]["durationMs"] < 3000


def test_a_websocket_to_a_private_address_is_refused_by_the_proxy(worker, stack, site):
    job_id = stack.put_job(
        "browse",
        {
            "steps": [
                {"goto": {"url": site.url("/websocket")}},
                {"wait_for": {"selector": "text=failed", "timeoutMs": 5000}},
                {"extract": {"fields": {"state": {"selector": "#state"}}}},
            ]
        },
    )

    code, _ = worker.run(job_id)

    assert code == ExitCode.SUCCEEDED  # the page copes; the connection never happened
    result = stack.result(job_id)
    assert result["data"]["step-3"] == {"state": "failed"}
    assert {"target": "10.1.2.3:80", "reason": "10.1.2.3 is private"} in result["blockedRequests"]


def test_a_download_from_a_blocked_address_is_refused_before_any_request(worker, stack, site):
    job_id = stack.put_job(
        "browse",
        {
            "steps": [
                {"goto": {"url": site.url("/page")}},
                {"download": {"url": site.url("/redirect?to=http://169.254.170.2/v2/credentials")}},
            ]
        },
    )

    code, _ = worker.run(job_id)

    assert code == ExitCode.BY_ERROR["Site.ClientError"]
    _, cause = worker.failure()
    assert cause["message"] == (
        "download of http://169.254.170.2/v2/credentials blocked by egress guard: 169.254.170.2 is link-local"
    )


def test_without_an_allow_list_even_loopback_is_refused(worker, stack, site):
    job_id = stack.put_job("browse", {"steps": [{"goto": {"url": site.url("/page?never")}}]})

    code, _ = worker.run(job_id, EGRESS_ALLOW="")

    assert code == ExitCode.BY_ERROR["Site.ClientError"]
    assert "127.0.0.1 is loopback" in worker.failure()[1]["message"]
    assert "/page?never" not in site.requests
