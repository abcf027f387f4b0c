"""One job's time in the browser: proxy, Chromium, a fresh context with the account's session, the action.

Where the Chromium comes from is a BrowserSource: a task of its own launches one per job (LaunchedBrowser);
a pool worker lends its warm one (worker/pool_browser.py), with the job's own egress proxy on its context.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from playwright.async_api import Browser, BrowserContext, Error, async_playwright

from browserjobs.core.sessions import SessionStore
from browserjobs.worker.action_context import ActionContext
from browserjobs.worker.actions import Action
from browserjobs.worker.artifacts import ArtifactStore
from browserjobs.worker.browser import BrowserHealth, launch, new_context
from browserjobs.worker.egress import EgressPolicy
from browserjobs.worker.egress_proxy import EgressProxy
from browserjobs.worker.errors import ErrorName, JobFailure
from browserjobs.worker.evidence import JobTrace, PageLog, save_evidence
from browserjobs.worker.jobs import Job
from browserjobs.worker.stop import StopFlag
from browserjobs.worker.supervisor import supervise

if TYPE_CHECKING:
    from browserjobs.worker.aws import Service

logger = logging.getLogger(__name__)
T = TypeVar("T")

CLOSE_TIMEOUT_SECONDS = 10.0
SETUP_TIMEOUT_SECONDS = 30.0
# Evidence (worker/evidence.py) takes at most this long in all, and ends this long after the job's deadline
# at the latest: the rest of the reserve the deadline keeps (lifecycle.FINISH_RESERVE_SECONDS, 5 s) is for
# closing the browser, result.json and the callback.
EVIDENCE_SECONDS = 8.0
EVIDENCE_PAST_DEADLINE_SECONDS = 3.0


@dataclass
class RunOutcome:
    data: dict[str, Any] = field(default_factory=dict)
    steps: list[dict[str, Any]] = field(default_factory=list)
    blocked: list[dict[str, str]] = field(default_factory=list)
    session: dict[str, Any] | None = None
    failure: JobFailure | None = None


@dataclass(frozen=True)
class OpenBrowser:
    browser: Browser
    context_proxy: str | None  # the job's own egress proxy, where the browser's is shared with other jobs
    owned: bool  # closed when the job ends (a browser of its own), else only the job's context is


class BrowserSource(Protocol):
    def open(self, policy: EgressPolicy) -> AbstractAsyncContextManager[OpenBrowser]: ...


@dataclass(frozen=True)
class LaunchedBrowser:
    """A Chromium of the job's own, every connection through the job's egress proxy."""

    chromium_path: str | None

    @contextlib.asynccontextmanager
    async def open(self, policy: EgressPolicy) -> AsyncIterator[OpenBrowser]:
        async with async_playwright() as playwright, EgressProxy(policy) as proxy:
            try:
                browser = await launch(playwright, executable_path=self.chromium_path, proxy_url=proxy.url)
            except Error as error:
                raise JobFailure(ErrorName.BROWSER_CRASHED, f"Chromium did not start: {error}") from error
            yield OpenBrowser(browser, context_proxy=None, owned=True)


@dataclass(frozen=True)
class RunSettings:
    policy: EgressPolicy
    browsers: BrowserSource
    deadline: float  # time.monotonic() value
    aws: Callable[[Service], Any]
    attempt: int = 0  # the workflow's retry count for this task (STATE_RETRY_COUNT)


async def run_in_browser(
    job: Job,
    action: Action,
    *,
    settings: RunSettings,
    artifacts: ArtifactStore,
    sessions: SessionStore,
    stop: StopFlag,
) -> RunOutcome:
    outcome = RunOutcome(
        session={"account": job.session, "loaded": False, "saved": False} if job.session else None
    )
    async with settings.browsers.open(settings.policy) as opened:
        run = _BrowserRun(job, settings, opened, BrowserHealth(opened.browser), outcome)
        try:
            await run.act(action, artifacts, sessions, stop)
        except Exception as error:
            await run.failed(error)
        finally:
            await run.close()
    return outcome


@dataclass
class _BrowserRun:
    """The job in a launched Chromium: what it opens is kept, to be reported and closed however it ends."""

    job: Job
    settings: RunSettings
    opened: OpenBrowser
    health: BrowserHealth
    outcome: RunOutcome
    context: BrowserContext | None = None
    ctx: ActionContext | None = None
    log: PageLog | None = None
    trace: JobTrace | None = None
    evidence: list[dict[str, Any]] = field(default_factory=list)  # the artifacts evidence.py saved

    async def act(
        self, action: Action, artifacts: ArtifactStore, sessions: SessionStore, stop: StopFlag
    ) -> None:
        """A fresh context with the account's stored session, the action supervised, the session saved."""
        job, outcome, health = self.job, self.outcome, self.health
        state = await asyncio.to_thread(sessions.load, job.session) if job.session else None
        if outcome.session is not None:
            outcome.session["loaded"] = state is not None
        self.context = context = await _responsive(
            new_context(
                self.opened.browser, state, self.settings.policy, proxy_url=self.opened.context_proxy
            ),
            "open a context",
        )
        self.log = PageLog(context)
        self.trace = JobTrace(context, job.trace)
        await _responsive(self.trace.start(), "start the trace")
        page = await _responsive(context.new_page(), "open a page")
        health.watch_page(page)
        self.ctx = ctx = ActionContext(
            page=page,
            artifacts=artifacts,
            policy=self.settings.policy,
            health=health,
            aws=self.settings.aws,
            session_account=job.session,
            attempt=self.settings.attempt,
        )
        await supervise(
            action(ctx, job.params),
            stop=stop,
            crashed=lambda: health.failure,
            deadline=self.settings.deadline,
            timeout_seconds=job.timeout_seconds,
        )
        ctx.finish()
        if job.session:
            await _save_session(context, sessions, job, outcome)

    async def failed(self, error: Exception) -> None:
        """The failure, with the step it happened in, and the evidence of what the page did."""
        failure = error if isinstance(error, JobFailure) else _unexpected(error)
        self.outcome.failure = failure.with_details(step=_step_details(self.ctx))
        browser_alive = failure.error != ErrorName.BROWSER_CRASHED and self.health.failure is None
        await self._evidence(failed=True, page_alive=browser_alive)
        # Names and kinds only (the cause is capped); result.json has their URIs and sizes.
        evidence = [{"name": e["name"], "kind": e["kind"]} for e in self.evidence]
        failure.with_details(artifacts=evidence or None)

    async def close(self) -> None:
        if self.trace is not None and self.trace.running:  # the job succeeded: its trace, by policy
            await self._evidence(failed=False, page_alive=True)
        if self.ctx is not None:
            self.outcome.data, self.outcome.steps = self.ctx.data, self.ctx.steps
        self.outcome.blocked = self.settings.policy.blocks
        self.health.closing()
        await _close(self.opened.browser if self.opened.owned else None, self.context)

    async def _evidence(self, *, failed: bool, page_alive: bool) -> None:
        if self.ctx is None or self.log is None or self.trace is None:
            return  # no page was opened: nothing to show
        until = min(
            time.monotonic() + EVIDENCE_SECONDS, self.settings.deadline + EVIDENCE_PAST_DEADLINE_SECONDS
        )
        self.evidence += await save_evidence(
            self.ctx, self.log, self.trace, failed=failed, page_alive=page_alive, until=until
        )


async def _responsive(call: Awaitable[T], what: str) -> T:
    """Calls Playwright gives no timeout: a Chromium that does not answer counts as crashed."""
    try:
        return await asyncio.wait_for(call, SETUP_TIMEOUT_SECONDS)
    except TimeoutError:
        raise JobFailure(
            ErrorName.BROWSER_CRASHED, f"Chromium did not {what} within {SETUP_TIMEOUT_SECONDS} s"
        ) from None


def _unexpected(error: Exception) -> JobFailure:
    """A fault outside any step (an action's own code, the session store): reported with what ran so far."""
    logger.error("the job failed unexpectedly", exc_info=error)
    return JobFailure(ErrorName.WORKER_ERROR, f"{type(error).__name__}: {error}")


def _step_details(ctx: ActionContext | None) -> dict[str, Any] | None:
    step = ctx.current_step if ctx else None
    return {"index": step["index"], "type": step["type"]} if step else None


async def _save_session(
    context: BrowserContext, sessions: SessionStore, job: Job, outcome: RunOutcome
) -> None:
    """A session that cannot be saved costs a login next time, not this job's result: logged, and shown."""
    assert job.session is not None and outcome.session is not None
    try:
        state = await asyncio.wait_for(context.storage_state(), SETUP_TIMEOUT_SECONDS)
        await asyncio.to_thread(sessions.save, job.session, state, job.job_id)
        outcome.session["saved"] = True
    except Exception as error:  # reported in result.json and the log, job result stands
        logger.error("the session of %s was not saved: %s", job.session, error)
        outcome.session["error"] = str(error)[:1000]


async def _close(browser: Browser | None, context: BrowserContext | None) -> None:
    """Bounded: a hung Chromium is killed with the Playwright driver when the `async with` ends."""
    with contextlib.suppress(Error, TimeoutError):
        if context is not None:
            await asyncio.wait_for(context.close(), CLOSE_TIMEOUT_SECONDS)
        if browser is not None:
            await asyncio.wait_for(browser.close(), CLOSE_TIMEOUT_SECONDS)
