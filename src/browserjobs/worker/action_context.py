"""What an action works with: the page, steps with timeouts and classified errors, artifacts, data."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from playwright.async_api import Page
from playwright.async_api import TimeoutError as PlaywrightTimeoutError

from browserjobs.worker.artifacts import ArtifactKind, ArtifactStore
from browserjobs.worker.browser import BrowserHealth
from browserjobs.worker.egress import EgressPolicy
from browserjobs.worker.errors import ErrorName, JobFailure
from browserjobs.worker.page_watch import MainFrameWatch

if TYPE_CHECKING:
    from browserjobs.worker.aws import Service

logger = logging.getLogger(__name__)

DEFAULT_STEP_TIMEOUT_MS = 30_000
MAX_STEP_TIMEOUT_MS = 300_000  # the schemas' maximum timeoutMs
# Steps that load a page: their failures are the site's (Site.Timeout, Site.Unreachable), and on a retry
# of the task they wait longer.
NAVIGATION_STEPS = frozenset({"goto"})
# Playwright's own timeout fires first and says more; this backstop covers calls that take none (pdf).
HARD_CAP_SLACK_SECONDS = 5.0
MAX_MESSAGE_CHARS = 4_000


class ActionContext:
    def __init__(
        self,
        *,
        page: Page,
        artifacts: ArtifactStore,
        policy: EgressPolicy,
        health: BrowserHealth,
        aws: Callable[[Service], Any],
        session_account: str | None,
        attempt: int = 0,
    ) -> None:
        self.page = page
        self.attempt = attempt  # the workflow's retry count for this task (STATE_RETRY_COUNT)
        self.policy = policy
        self.health = health
        self.aws = aws  # client factory, for actions that need more than the browser (e.g. Secrets Manager)
        self.session_account = session_account
        self.data: dict[str, Any] = {}
        self.steps: list[dict[str, Any]] = []
        self.current_step: dict[str, Any] | None = None
        self._artifacts = artifacts
        self._watch = MainFrameWatch(page, policy)
        self._secrets: set[str] = set()

    def redact(self, secret: str) -> None:
        """Never let this value reach an error message, a log line or result.json."""
        if secret:
            self._secrets.add(secret)

    @property
    def secrets(self) -> frozenset[str]:
        """What redact() was told: kept out of the job's evidence too (worker/evidence.py)."""
        return frozenset(self._secrets)

    async def save_artifact(
        self, name: str, body: bytes | Path, content_type: str, kind: ArtifactKind = ArtifactKind.FILE
    ) -> dict[str, Any]:
        return await asyncio.to_thread(self._artifacts.put, name, body, content_type, kind)

    def step_timeout_ms(self, kind: str, timeout_ms: int) -> int:
        """A navigation's timeout doubles with each retry of the task (a slow site gets more time), up to
        the schemas' maximum; the job's own deadline still bounds the whole run."""
        if kind not in NAVIGATION_STEPS or self.attempt == 0:
            return timeout_ms
        return max(timeout_ms, min(MAX_STEP_TIMEOUT_MS, timeout_ms * 2 ** min(self.attempt, 8)))

    async def step(
        self, kind: str, run: Callable[[], Awaitable[None]], timeout_ms: int, *, check_http: bool = True
    ) -> None:
        """Run one step: bounded by its timeout, its failures classified, its main frame checked after.

        check_http=False lets the main frame answer with an HTTP error status (e.g. a 401 that only says
        "not logged in"); a navigation refused by the egress guard still fails the step.
        """
        record: dict[str, Any] = {"index": len(self.steps) + 1, "type": kind, "status": "cancelled"}
        self.steps.append(record)
        self.current_step = record
        started = time.monotonic()
        try:
            await asyncio.wait_for(run(), timeout_ms / 1000 + HARD_CAP_SLACK_SECONDS)
            failure = self._watch.take(check_http)
        except JobFailure as raised:
            failure = raised
        except Exception as error:  # classified below; cancellation (BaseException) passes through
            failure = self._classify(error, record, timeout_ms, check_http)
        finally:
            record["durationMs"] = round((time.monotonic() - started) * 1000)
        record["status"] = "failed" if failure else "succeeded"
        if failure:
            raise failure.with_details(step={"index": record["index"], "type": kind}, url=self.page.url)

    def _classify(
        self, error: Exception, record: dict[str, Any], timeout_ms: int, check_http: bool
    ) -> JobFailure:
        known = self._watch.take(check_http) or self.health.failure
        if known is not None:
            return known
        where = f"step {record['index']} ({record['type']})"
        message = self.redacted(str(error))[:MAX_MESSAGE_CHARS]
        navigation = record["type"] in NAVIGATION_STEPS
        if isinstance(error, PlaywrightTimeoutError | TimeoutError):
            name = ErrorName.SITE_TIMEOUT if navigation else ErrorName.STEP_TIMEOUT
            return JobFailure(name, f"{where} did not finish within {timeout_ms} ms: {message}")
        if navigation and "net::ERR_" in message:  # Chromium's network errors: no answer from the site
            return JobFailure(ErrorName.SITE_UNREACHABLE, f"{where}: no answer from the site: {message}")
        if self._browser_gone():
            return JobFailure(ErrorName.BROWSER_CRASHED, f"{where}: the browser went away: {message}")
        logger.error("%s failed: %s: %s", where, type(error).__name__, message)
        return JobFailure(ErrorName.WORKER_ERROR, f"{where} failed: {type(error).__name__}: {message}")

    def finish(self) -> None:
        """After the last step: a navigation it started may have ended in an error status since."""
        failure = self._watch.take()
        if failure is not None:
            raise failure.with_details(url=self.page.url)

    def _browser_gone(self) -> bool:
        browser = self.page.context.browser
        return self.page.is_closed() or browser is None or not browser.is_connected()

    def redacted(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text
