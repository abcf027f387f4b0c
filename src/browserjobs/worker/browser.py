"""Chromium for a Fargate task: launch flags, a fresh context per job, and crash detection."""

from __future__ import annotations

import logging
from typing import Any, cast

from playwright.async_api import Browser, BrowserContext, Error, Playwright, Route, StorageState

from browserjobs.worker.egress import EgressPolicy
from browserjobs.worker.errors import ErrorName, JobFailure

logger = logging.getLogger(__name__)

LAUNCH_TIMEOUT_MS = 60_000
LAUNCH_ARGS = (
    "--disable-dev-shm-usage",  # Fargate cannot size /dev/shm: use /tmp for shared memory
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-extensions",
    "--no-first-run",
    "--no-default-browser-check",
    "--mute-audio",
    # WebRTC must not open UDP paths around the egress proxy. The headless shell reads the first switch
    # (headless' content switch); the full Chromium, which CHROMIUM_PATH may name, ignores it and reads the
    # second (chrome/common/chrome_switches.cc kWebRtcIPHandlingPolicy, which overrides the
    # webrtc.ip_handling_policy pref): verified by a STUN server on loopback (tests/container).
    "--force-webrtc-ip-handling-policy=disable_non_proxied_udp",
    "--webrtc-ip-handling-policy=disable_non_proxied_udp",
)
# Chromium sends loopback and link-local hosts (169.254/16: the metadata endpoints) straight past any
# proxy unless the bypass list says <-loopback> (net/docs/proxy.md, "Implicit bypass rules"). Playwright
# adds it on its own unless PLAYWRIGHT_DISABLE_FORCED_CHROMIUM_PROXIED_LOOPBACK is set (playwright-core
# server/chromium/crBrowser.ts, shouldProxyLoopback): the guard says it itself rather than rely on that.
PROXY_BYPASS = "<-loopback>"


async def launch(playwright: Playwright, *, executable_path: str | None, proxy_url: str) -> Browser:
    """Headless Chromium whose every connection goes through the egress proxy.

    Chromium's own sandbox stays off (Playwright passes --no-sandbox): Fargate's seccomp profile cannot be
    changed and blocks the namespaces the sandbox needs, and as root Chromium refuses to sandbox anyway.
    The egress guard, the non-root user and the least-privilege task role compensate.
    """
    return await playwright.chromium.launch(
        executable_path=executable_path,
        headless=True,
        chromium_sandbox=False,
        args=list(LAUNCH_ARGS),
        proxy={"server": proxy_url, "bypass": PROXY_BYPASS},
        # SIGTERM belongs to the worker: it reports the interruption, then closes the browser itself.
        handle_sigint=False,
        handle_sigterm=False,
        handle_sighup=False,
        timeout=LAUNCH_TIMEOUT_MS,
    )


async def new_context(
    browser: Browser, storage_state: dict[str, Any] | None, policy: EgressPolicy, proxy_url: str | None = None
) -> BrowserContext:
    """A fresh context (nothing from an earlier job but the account's stored session), egress-guarded.

    `proxy_url`: the job's own egress proxy, for a browser shared by several jobs (a pool worker's), whose
    launch proxy guards only what no context opens: each job's blocked requests are its own.
    """
    context = await browser.new_context(
        proxy={"server": proxy_url, "bypass": PROXY_BYPASS} if proxy_url else None,
        # what context.storage_state() returned when the session was saved, read back from its JSON
        storage_state=cast("StorageState | None", storage_state),
        accept_downloads=True,
        service_workers="block",  # a service worker's fetches would bypass context routing
    )

    async def guard(route: Route) -> None:
        url = route.request.url
        decision = await policy.check_url(url)
        try:
            if decision is None or decision.allowed:
                await route.fallback()
            elif decision.unresolved:
                await route.abort("namenotresolved")
            else:
                policy.record(decision, url)
                await route.abort("blockedbyclient")
        except Error as error:  # the page went away while the decision was made
            logger.debug("route for %s not completed: %s", url, error)

    await context.route("**/*", guard)
    return context


class BrowserHealth:
    """Whether Chromium (or the page's renderer) died under the job."""

    def __init__(self, browser: Browser) -> None:
        self.failure: JobFailure | None = None
        self._closing = False
        browser.on("disconnected", lambda _: self._crashed("the browser process exited or disconnected"))

    def watch_page(self, page: Any) -> None:
        page.on("crash", lambda _: self._crashed("the page's renderer crashed (often: out of memory)"))

    def closing(self) -> None:
        """The worker is closing the browser itself: disconnecting from now on is expected."""
        self._closing = True

    def _crashed(self, message: str) -> None:
        if not self._closing and self.failure is None:
            logger.error("Chromium failure: %s", message)
            self.failure = JobFailure(ErrorName.BROWSER_CRASHED, message)
