"""The pool worker's warm Chromium: launched once, lent to every job, relaunched by policy.

Each job gets a fresh context on it with the job's own egress proxy (the context's proxy: what the job's
pages load is checked and recorded as that job's). The launch proxy, one for the worker, guards what no
context opens. The browser is relaunched after POOL_RECYCLE_AFTER_JOBS jobs, when the worker's processes
use more than POOL_MEMORY_CEILING_MB, or when it died: new jobs get the new one at once, the old one is
closed when its last job ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from playwright.async_api import Browser, Error, Playwright, async_playwright

from browserjobs.worker.browser import launch
from browserjobs.worker.egress import EgressPolicy
from browserjobs.worker.egress_proxy import EgressProxy
from browserjobs.worker.errors import ErrorName, JobFailure
from browserjobs.worker.run import OpenBrowser

logger = logging.getLogger(__name__)

CLOSE_TIMEOUT_SECONDS = 10.0


@dataclass
class _Generation:
    browser: Browser
    jobs: int = 0  # jobs lent this browser so far
    leases: int = 0  # jobs using it now
    retired: bool = False


@dataclass
class WarmBrowser:
    chromium_path: str | None
    egress_allow: tuple[str, ...]
    recycle_after_jobs: int
    memory_ceiling_mb: int = 0  # 0: no ceiling
    launches: int = 0
    _playwright: Playwright | None = None
    _guard: EgressProxy | None = None
    _current: _Generation | None = None
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    _closing: set[asyncio.Task[None]] = field(default_factory=set)

    async def start(self) -> None:
        """Chromium up before the first message is taken: a job never waits for the launch."""
        self._playwright = await async_playwright().start()
        self._guard = EgressProxy(EgressPolicy(self.egress_allow))
        await self._guard.__aenter__()
        async with self._lock:
            self._current = await self._launch()

    async def close(self) -> None:
        if self._current is not None:
            await _close(self._current.browser)
        if self._guard is not None:
            await self._guard.__aexit__(None, None, None)
        if self._playwright is not None:
            await self._playwright.stop()

    @contextlib.asynccontextmanager
    async def open(self, policy: EgressPolicy) -> AsyncIterator[OpenBrowser]:
        generation = await self._lease()
        try:
            async with EgressProxy(policy) as proxy:
                yield OpenBrowser(generation.browser, context_proxy=proxy.url, owned=False)
        finally:
            generation.leases -= 1
            if generation.retired and generation.leases == 0:
                await _close(generation.browser)

    async def _lease(self) -> _Generation:
        async with self._lock:
            current = self._current
            if current is None or not current.browser.is_connected():
                if current is not None:
                    logger.warning("the warm browser is gone (crashed?): launching another")
                    self._retire(current)
                current = self._current = await self._launch()
            current.jobs += 1
            current.leases += 1
            reason = self._recycle_reason(current)
            if reason:
                logger.info("the warm browser will be relaunched: %s", reason)
                self._retire(current)
                self._current = None  # the next job launches the next browser
            return current

    def _recycle_reason(self, generation: _Generation) -> str | None:
        if generation.jobs >= self.recycle_after_jobs:
            return f"{generation.jobs} jobs (POOL_RECYCLE_AFTER_JOBS={self.recycle_after_jobs})"
        if self.memory_ceiling_mb:
            used = process_tree_rss_mb(os.getpid())
            if used > self.memory_ceiling_mb:
                return f"{used} MB in use (POOL_MEMORY_CEILING_MB={self.memory_ceiling_mb})"
        return None

    def _retire(self, generation: _Generation) -> None:
        generation.retired = True
        if generation.leases == 0:
            # The loop keeps only a weak reference to a task: hold it until the browser is closed.
            closing = asyncio.get_running_loop().create_task(_close(generation.browser))
            self._closing.add(closing)
            closing.add_done_callback(self._closing.discard)

    async def _launch(self) -> _Generation:
        assert self._playwright is not None and self._guard is not None
        try:
            browser = await launch(
                self._playwright, executable_path=self.chromium_path, proxy_url=self._guard.url
            )
        except Error as error:
            raise JobFailure(ErrorName.BROWSER_CRASHED, f"Chromium did not start: {error}") from error
        self.launches += 1
        return _Generation(browser)


async def _close(browser: Browser) -> None:
    with contextlib.suppress(Error, TimeoutError):
        await asyncio.wait_for(browser.close(), CLOSE_TIMEOUT_SECONDS)


def process_tree_rss_mb(root: int) -> int:
    """Resident memory of a process and its descendants (Chromium's), in MB, from /proc."""
    children: dict[int, list[int]] = {}
    rss_kb: dict[int, int] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/status", encoding="ascii", errors="replace") as status:
                fields = dict(line.split(":", 1) for line in status if ":" in line)
        except OSError:  # the process ended meanwhile
            continue
        pid = int(entry.name)
        children.setdefault(int(fields.get("PPid", "0").strip() or 0), []).append(pid)
        rss_kb[pid] = int((fields.get("VmRSS", "0 kB").split() or ["0"])[0])
    total, pending = 0, [root]
    while pending:
        pid = pending.pop()
        total += rss_kb.get(pid, 0)
        pending.extend(children.get(pid, []))
    return total // 1024
