"""Evidence of a job's run, next to its result: the Playwright trace, kept by the job's `trace` policy, and
when the job fails, what the page showed (failure-screenshot.png), logged (console.json) and loaded
(network.json).

None of it may hide or hold up the job's own outcome: each step is bounded by its own timeout and by the
time the job has left, and one that fails is logged and skipped. Nothing secret is kept: no headers, no
bodies, no URL userinfo, sensitive query values masked; what the action redacted (ActionContext.redact) is
masked everywhere, and the trace is redacted before upload (worker/trace_redaction.py).
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import shutil
import tempfile
import time
from collections import deque
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from playwright.async_api import BrowserContext, ConsoleMessage, Page, Request, Response, WebError

from browserjobs.core.clock import iso_ms
from browserjobs.core.contract import TRACE_POLICIES
from browserjobs.worker.action_context import ActionContext
from browserjobs.worker.artifacts import EVIDENCE_NAMES, ArtifactKind
from browserjobs.worker.trace_redaction import SECRET_MASK, redact_trace

logger = logging.getLogger(__name__)
T = TypeVar("T")

ON_FAILURE, ALWAYS, OFF = TRACE_POLICIES
MAX_CONSOLE_MESSAGES = 500  # the latest are kept: the failure is at the end
MAX_REQUESTS = 1_000
MAX_TEXT_CHARS = 2_000
SCREENSHOT_TIMEOUT_MS = 2_000
TRACE_STOP_SECONDS = 5.0
STEP_SECONDS = 3.0  # anything else: the context's cookies, an upload
# Query parameters whose values are masked in console.json and network.json.
SENSITIVE_QUERY = re.compile(r"token|key|secret|passw|pwd|auth|sig|session|code|credential", re.IGNORECASE)
# Cookie values shorter than this (flags such as "1" or "en") are no credential; masking them everywhere in
# the trace would blur it. The Cookie and Set-Cookie headers are redacted whatever their values.
MIN_COOKIE_SECRET_CHARS = 6


def safe_url(url: str, redact: Callable[[str], str]) -> str:
    """The URL without userinfo (user:password@) and with sensitive query values masked."""
    try:
        parts = urlsplit(url)
        parts = parts._replace(netloc=parts.netloc.rpartition("@")[2])
        pairs = parse_qsl(parts.query, keep_blank_values=True)
        if any(SENSITIVE_QUERY.search(name) for name, _ in pairs):  # else the query stays as it was
            masked = [(name, SECRET_MASK if SENSITIVE_QUERY.search(name) else value) for name, value in pairs]
            parts = parts._replace(query=urlencode(masked, safe="*"))
        url = urlunsplit(parts)
    except ValueError:  # not a URL we can take apart: masked as text only
        pass
    return redact(url)


class PageLog:
    """The console messages and requests of the job's context (all its pages), as they happen.

    BrowserContext's console, weberror, request, response, requestfinished and requestfailed events
    (https://playwright.dev/python/docs/api/class-browsercontext); request timings from Request.timing
    (https://playwright.dev/python/docs/api/class-request#request-timing): responseEnd, in ms after
    startTime, once the request has finished, else -1.
    """

    def __init__(self, context: BrowserContext) -> None:
        self.console: deque[dict[str, Any]] = deque(maxlen=MAX_CONSOLE_MESSAGES)
        self.requests: deque[dict[str, Any]] = deque(maxlen=MAX_REQUESTS)
        self.console_seen = self.requests_seen = 0
        self._open: dict[Request, dict[str, Any]] = {}
        context.on("console", self._on_console)
        context.on("weberror", self._on_web_error)
        context.on("request", self._on_request)
        context.on("response", self._on_response)
        context.on("requestfinished", lambda request: self._ended(request, "finished"))
        context.on("requestfailed", lambda request: self._ended(request, "failed"))

    def console_json(self, redact: Callable[[str], str]) -> bytes:
        messages = [
            {
                **m,
                "text": redact(m["text"])[:MAX_TEXT_CHARS],
                "location": {**m["location"], "url": safe_url(m["location"].get("url", ""), redact)},
            }
            for m in self.console
        ]
        omitted = self.console_seen - len(messages)
        return _json({"messages": messages, "omitted": omitted})

    def network_json(self, redact: Callable[[str], str]) -> bytes:
        requests = []
        for r in self.requests:
            entry = {**r, "url": safe_url(r["url"], redact)}
            if r.get("failure"):
                entry["failure"] = redact(r["failure"])[:MAX_TEXT_CHARS]
            requests.append(entry)
        return _json({"requests": requests, "omitted": self.requests_seen - len(requests)})

    def _on_console(self, message: ConsoleMessage) -> None:
        self.console_seen += 1
        self.console.append(
            {
                "type": message.type,
                "text": message.text[: MAX_TEXT_CHARS * 2],  # cut again after redaction
                "location": dict(message.location),
                "time": iso_ms(int(message.timestamp)),
            }
        )

    def _on_web_error(self, error: WebError) -> None:
        """An uncaught exception in a page: what the console shows in red."""
        self.console_seen += 1
        self.console.append(
            {
                "type": "pageerror",
                "text": str(error.error)[: MAX_TEXT_CHARS * 2],
                "location": {"url": error.page.url if error.page else ""},
                "time": iso_ms(time.time_ns() // 1_000_000),
            }
        )

    def _on_request(self, request: Request) -> None:
        self.requests_seen += 1
        entry = {
            "url": request.url,
            "method": request.method,
            "resourceType": request.resource_type,
            "status": None,
            "state": "pending",
            "startedAt": iso_ms(time.time_ns() // 1_000_000),
            "durationMs": None,
            "failure": None,
        }
        self.requests.append(entry)
        self._open[request] = entry

    def _on_response(self, response: Response) -> None:
        entry = self._open.get(response.request)
        if entry is not None:
            entry["status"] = response.status

    def _ended(self, request: Request, state: str) -> None:
        entry = self._open.pop(request, None)
        if entry is None:
            return
        entry["state"] = state
        end = request.timing.get("responseEnd", -1)
        if end >= 0:
            entry["durationMs"] = round(end)
        if state == "failed":
            entry["failure"] = request.failure


class JobTrace:
    """The context's Playwright trace (https://playwright.dev/python/docs/api/class-tracing): screenshots
    and DOM snapshots (which also record the network), no sources. Stopped without a path, the trace is
    discarded without writing a zip (tracingStopChunk mode "discard": playwright/_impl/tracing.py,
    _do_stop_chunk): writing, redacting and uploading are paid only for a trace that is kept."""

    def __init__(self, context: BrowserContext, policy: str) -> None:
        self._context = context
        self.policy = policy
        self.running = False

    async def start(self) -> None:
        if self.policy != OFF:
            await self._context.tracing.start(screenshots=True, snapshots=True, sources=False)
            self.running = True

    def keeps(self, failed: bool) -> bool:
        return self.running and (self.policy == ALWAYS or (self.policy == ON_FAILURE and failed))

    async def stop(self, path: Path | None = None) -> None:
        self.running = False
        await self._context.tracing.stop(path=path)


class _Budget:
    """Each evidence step, bounded by its own timeout and by the time left; a failure logged, not raised."""

    def __init__(self, until: float) -> None:
        self.until = until  # time.monotonic()

    async def run(self, what: str, call: Callable[[], Awaitable[T]], cap: float) -> T | None:
        left = min(cap, self.until - time.monotonic())
        if left <= 0:
            logger.warning("no %s: no time left", what)
            return None
        try:
            return await asyncio.wait_for(call(), left)
        except Exception as error:  # best effort: the job's own outcome is what gets reported
            logger.warning("no %s: %r", what, error)
            return None


async def save_evidence(
    ctx: ActionContext,
    log: PageLog,
    trace: JobTrace,
    *,
    failed: bool,
    page_alive: bool,
    until: float,
) -> list[dict[str, Any]]:
    """What the job's policy and outcome call for, saved as artifacts; returns their entries."""
    budget, saved = _Budget(until), []

    async def save(kind: ArtifactKind, body: bytes | Path | None, content_type: str) -> None:
        if body is not None:
            entry = await budget.run(
                f"upload of {EVIDENCE_NAMES[kind]}",
                lambda: ctx.save_artifact(EVIDENCE_NAMES[kind], body, content_type, kind),
                STEP_SECONDS,
            )
            if entry is not None:
                saved.append(entry)

    if failed and page_alive:
        image = await budget.run(
            "failure screenshot", lambda: _screenshot(ctx.page), SCREENSHOT_TIMEOUT_MS / 1000 + 1
        )
        await save(ArtifactKind.FAILURE_SCREENSHOT, image, "image/png")
    if failed:
        await save(ArtifactKind.CONSOLE, log.console_json(ctx.redacted), "application/json")
        await save(ArtifactKind.NETWORK, log.network_json(ctx.redacted), "application/json")
    if trace.keeps(failed):
        folder = Path(tempfile.mkdtemp(prefix="trace-"))
        try:
            cookies = await budget.run("cookie list", ctx.page.context.cookies, STEP_SECONDS) or []
            secrets = ctx.secrets | {
                c["value"] for c in cookies if len(c["value"]) >= MIN_COOKIE_SECRET_CHARS
            }
            raw, kept = folder / "raw.zip", folder / EVIDENCE_NAMES[ArtifactKind.TRACE]
            await budget.run("trace", lambda: trace.stop(raw), TRACE_STOP_SECONDS)
            if raw.is_file():
                await budget.run(
                    "trace redaction",
                    lambda: asyncio.to_thread(redact_trace, raw, kept, secrets),
                    STEP_SECONDS,
                )
            await save(ArtifactKind.TRACE, kept if kept.is_file() else None, "application/zip")
        finally:
            shutil.rmtree(folder, ignore_errors=True)
    elif trace.running:
        await budget.run("end of the trace", trace.stop, TRACE_STOP_SECONDS)
    return saved


async def _screenshot(page: Page) -> bytes:
    """The whole page as it was. A navigation still pending (e.g. the one that timed out) would hold the
    screenshot until it ends: it is stopped first, over CDP, which does not wait for the page."""
    cdp = await page.context.new_cdp_session(page)
    await cdp.send("Page.stopLoading")
    await cdp.detach()
    return await page.screenshot(full_page=True, timeout=SCREENSHOT_TIMEOUT_MS)


def _json(document: dict[str, Any]) -> bytes:
    return json.dumps(document, indent=1, default=str).encode()
