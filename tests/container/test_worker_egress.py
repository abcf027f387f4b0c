"""The egress guard: link-local, private and loopback addresses are refused unless EGRESS_ALLOW says so."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from pathlib import Path

import pytest
from playwright.async_api import Error as PlaywrightError
from playwright.async_api import async_playwright

from browserjobs.emulator.settings import FULL_CHROMIUM, HEADLESS_SHELL
from browserjobs.worker import browser
from browserjobs.worker.browser import launch
from browserjobs.worker.egress import EgressPolicy
from browserjobs.worker.egress_proxy import EgressProxy
from browserjobs.worker.errors import ExitCode

pytestmark = pytest.mark.container


def test_a_name_is_refused_when_any_of_its_addresses_is_not_public():
    decision = asyncio.run(EgressPolicy().check_host("localhost"))
    assert decision.blocked and "resolves to" in decision.blocked and "loopback" in decision.blocked


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


# ---------------------------------------------------------------- hardening ("Works on AWS" issue)


STUN_PAGE = """<!doctype html><html><body><p id="state">gathering</p><script>
const pc = new RTCPeerConnection({iceServers: [{urls: 'stun:127.0.0.1:%d'}]});
pc.createDataChannel('probe');
pc.onicegatheringstatechange = () => {
  if (pc.iceGatheringState === 'complete') document.getElementById('state').textContent = 'complete';
};
pc.createOffer().then(offer => pc.setLocalDescription(offer));
</script></body></html>"""


@pytest.mark.parametrize("binary", [FULL_CHROMIUM, HEADLESS_SHELL], ids=["full", "headless-shell"])
def test_chromium_sends_no_stun_around_the_proxy(monkeypatch, binary):
    """WebRTC's STUN goes over UDP, which the proxy cannot carry: with the worker's flags, a STUN server
    on a loopback UDP port hears nothing from the full Chromium (the binary CHROMIUM_PATH may name)."""
    if not Path(binary).is_file():
        pytest.skip(f"no Chromium at {binary}")
    # mDNS host-candidate names are off for this test only: if the policy ever failed, the browser could
    # otherwise announce them by multicast, and the tests send nothing beyond loopback.
    monkeypatch.setattr(
        browser, "LAUNCH_ARGS", (*browser.LAUNCH_ARGS, "--disable-features=WebRtcHideLocalIpsWithMdns")
    )
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as stun:
        stun.bind(("127.0.0.1", 0))
        stun.settimeout(0.5)
        port = stun.getsockname()[1]

        async def scenario() -> str:
            async with EgressProxy(EgressPolicy()) as proxy, async_playwright() as playwright:
                chromium = await launch(playwright, executable_path=str(binary), proxy_url=proxy.url)
                try:
                    page = await chromium.new_page()
                    await page.set_content(STUN_PAGE % port)
                    with contextlib.suppress(PlaywrightError):  # gathering may never "complete"
                        await page.wait_for_selector("text=complete", timeout=4000)
                    return await page.inner_text("#state")
                finally:
                    await chromium.close()

        state = asyncio.run(scenario())
        received = []
        with contextlib.suppress(TimeoutError):
            received.append(stun.recvfrom(2048))
    assert state in {"gathering", "complete"}
    assert received == [], f"a STUN packet left Chromium outside the proxy: {received}"


def test_loopback_goes_through_the_guard_even_when_playwright_would_bypass_it(
    worker, stack, site, monkeypatch
):
    """Playwright's <-loopback> default can be turned off (PLAYWRIGHT_DISABLE_FORCED_CHROMIUM_PROXIED_
    LOOPBACK: playwright-core, server/chromium/crBrowser.ts, shouldProxyLoopback); the guard must not
    depend on it."""
    monkeypatch.setenv("PLAYWRIGHT_DISABLE_FORCED_CHROMIUM_PROXIED_LOOPBACK", "1")
    with socket.socket() as other:  # a loopback service EGRESS_ALLOW (127.0.0.1) does not name
        other.bind(("127.0.0.2", 0))
        other.listen()
        other.settimeout(0.2)
        target = f"http://127.0.0.2:{other.getsockname()[1]}/internal"
        job_id = stack.put_job(
            "browse", {"steps": [{"goto": {"url": site.url(f"/redirect?to={target}"), "timeoutMs": 10000}}]}
        )

        code, _ = worker.run(job_id)

        connections = []
        with contextlib.suppress(TimeoutError):
            connections.append(other.accept())
    assert connections == [], "Chromium reached a loopback service directly, past the proxy"
    assert code == ExitCode.BY_ERROR["Site.ClientError"]
    assert (
        f"navigation to {target} blocked by egress guard: 127.0.0.2 is loopback"
        in worker.failure()[1]["message"]
    )


def test_an_ambiguous_download_url_is_refused_before_any_request(worker, stack, site):
    url = f"http://127.0.0.2\\@127.0.0.1:{site.port}/file.csv?ambiguous"
    job_id = stack.put_job(
        "browse", {"steps": [{"goto": {"url": site.url("/page")}}, {"download": {"url": url}}]}
    )

    code, _ = worker.run(job_id)

    assert code == ExitCode.BY_ERROR["Site.ClientError"]
    _, cause = worker.failure()
    assert (
        cause["message"].startswith(f"download of {url} blocked by egress guard: ")
        and "ambiguous" in cause["message"]
    )
    assert cause["url"] == url
    assert {"target": url, "reason": cause["message"].split("egress guard: ", 1)[1]} in stack.result(job_id)[
        "blockedRequests"
    ]
    assert not any("ambiguous" in path for path in site.requests)


class _Resolver:
    """socket.getaddrinfo with scripted answers for some names (the rest resolve as usual)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, answers: dict[str, list[str]]) -> None:
        self.answers = answers
        self.asked: list[str] = []
        real = socket.getaddrinfo

        def getaddrinfo(host, port, *args, **kwargs):
            name = host.decode() if isinstance(host, bytes) else host
            if name in self.answers:
                self.asked.append(name)
                queue = self.answers[name]
                address = queue.pop(0) if len(queue) > 1 else queue[0]
                return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port or 0))]
            return real(host, port, *args, **kwargs)

        monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


async def _tunnel(proxy_url: str, target: str) -> bytes:
    host, port = proxy_url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n".encode())
    await writer.drain()
    answer = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    writer.close()
    return answer


@pytest.mark.parametrize(
    ("allow", "host"),
    [
        ("127.0.0.1", "127.0.0.1."),  # a literal the policy normalises; the raw text would go to DNS again
        ("rebind.test", "rebind.test"),  # an allow-listed name: resolved once, then pinned like any other
        ("127.0.0.1/32", "rebind.test"),  # a checked name: connected by the address that was checked
    ],
)
def test_the_proxy_connects_to_exactly_the_address_it_checked(monkeypatch, allow, host):
    """No second resolution or parse between check and connect: a later DNS answer (127.0.0.2, where
    nothing listens and which EGRESS_ALLOW does not name) is never used."""
    resolver = _Resolver(
        monkeypatch, {"rebind.test": ["127.0.0.1", "127.0.0.2"], "127.0.0.1.": ["127.0.0.2"]}
    )
    with socket.socket() as upstream:
        upstream.bind(("127.0.0.1", 0))
        upstream.listen(8)
        port = upstream.getsockname()[1]

        async def scenario() -> list[bytes]:
            async with EgressProxy(EgressPolicy([allow])) as proxy:
                return [await _tunnel(proxy.url, f"{host}:{port}") for _ in range(2)]

        answers = asyncio.run(scenario())
    assert all(a.startswith(b"HTTP/1.1 200") for a in answers), answers
    assert len(resolver.asked) <= 1
