"""The generic declarative action: params.steps is a list of one-key step objects, run in order.

Steps: goto, click, fill, press, wait_for, extract, screenshot, pdf, download; each takes an optional
timeoutMs (default 30 s, at most 300 s). See schemas/actions/browse.schema.json and container/README.md.
"""

from __future__ import annotations

import asyncio
import mimetypes
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

from browserjobs.worker.action_context import DEFAULT_STEP_TIMEOUT_MS, ActionContext
from browserjobs.worker.artifacts import ArtifactKind
from browserjobs.worker.errors import ErrorName, JobFailure
from browserjobs.worker.page_watch import http_failure

MAX_DOWNLOAD_BYTES = 100 * 1024 * 1024
MAX_REDIRECTS = 10
EXTRACT_JS = """(elements, attr) => elements.map(e => attr ? e.getAttribute(attr)
    : (e.innerText ?? e.textContent ?? "").trim())"""


async def run(ctx: ActionContext, params: dict[str, Any]) -> None:
    await run_steps(ctx, params["steps"])


async def run_steps(ctx: ActionContext, steps: list[dict[str, Any]]) -> None:
    for step in steps:
        ((kind, args),) = step.items()
        timeout_ms = ctx.step_timeout_ms(kind, int(args.get("timeoutMs", DEFAULT_STEP_TIMEOUT_MS)))
        await ctx.step(kind, partial(STEPS[kind], ctx, args, timeout_ms), timeout_ms)


def _default_name(ctx: ActionContext, extension: str, name: str | None = None) -> str:
    assert ctx.current_step is not None
    name = name or f"step-{ctx.current_step['index']}"
    return name if name.lower().endswith(extension) else name + extension


async def goto(ctx: ActionContext, args: dict[str, Any], timeout_ms: int) -> None:
    await ctx.page.goto(args["url"], wait_until=args.get("waitUntil", "load"), timeout=timeout_ms)


async def click(ctx: ActionContext, args: dict[str, Any], timeout_ms: int) -> None:
    await ctx.page.click(args["selector"], timeout=timeout_ms)


async def fill(ctx: ActionContext, args: dict[str, Any], timeout_ms: int) -> None:
    await ctx.page.fill(args["selector"], args["value"], timeout=timeout_ms)


async def press(ctx: ActionContext, args: dict[str, Any], timeout_ms: int) -> None:
    await ctx.page.press(args["selector"], args["key"], timeout=timeout_ms)


async def wait_for(ctx: ActionContext, args: dict[str, Any], timeout_ms: int) -> None:
    """For a visible element, for a load state, or (timeoutMs alone) for that long."""
    if "selector" in args:
        await ctx.page.wait_for_selector(args["selector"], state="visible", timeout=timeout_ms)
    elif "state" in args:
        await ctx.page.wait_for_load_state(args["state"], timeout=timeout_ms)
    else:
        await asyncio.sleep(timeout_ms / 1000)


async def extract(ctx: ActionContext, args: dict[str, Any], timeout_ms: int) -> None:
    """Text (default) or an attribute of the first match, or of every match with all: true. Never waits."""
    values: dict[str, Any] = {}
    for field, spec in args["fields"].items():
        found = await ctx.page.locator(spec["selector"]).evaluate_all(EXTRACT_JS, spec.get("attr"))
        values[field] = found if spec.get("all") else (found[0] if found else None)
    assert ctx.current_step is not None
    ctx.data[args.get("name") or f"step-{ctx.current_step['index']}"] = values


async def screenshot(ctx: ActionContext, args: dict[str, Any], timeout_ms: int) -> None:
    if "selector" in args:
        image = await ctx.page.locator(args["selector"]).first.screenshot(timeout=timeout_ms)
    else:
        image = await ctx.page.screenshot(full_page=args.get("fullPage", False), timeout=timeout_ms)
    await ctx.save_artifact(
        _default_name(ctx, ".png", args.get("name")), image, "image/png", ArtifactKind.SCREENSHOT
    )


async def pdf(ctx: ActionContext, args: dict[str, Any], timeout_ms: int) -> None:
    document = await ctx.page.pdf()
    name = _default_name(ctx, ".pdf", args.get("name"))
    await ctx.save_artifact(name, document, "application/pdf", ArtifactKind.PDF)


async def download(ctx: ActionContext, args: dict[str, Any], timeout_ms: int) -> None:
    if "url" in args:
        await _download_url(ctx, args["url"], args.get("name"), timeout_ms)
        return
    async with ctx.page.expect_download(timeout=timeout_ms) as started:
        await ctx.page.click(args["selector"], timeout=timeout_ms)
    item = await started.value
    failure = await item.failure()
    if failure:
        raise JobFailure(ErrorName.WORKER_ERROR, f"download of {item.url} failed: {failure}", url=item.url)
    path = Path(await item.path())
    _check_size(path.stat().st_size, item.url)
    name = args.get("name") or item.suggested_filename
    content_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
    await ctx.save_artifact(name, path, content_type, ArtifactKind.DOWNLOAD)


async def _download_url(ctx: ActionContext, url: str, name: str | None, timeout_ms: int) -> None:
    """Fetched with the context's cookies; every redirect hop is checked by the egress guard first."""
    for _ in range(MAX_REDIRECTS + 1):
        decision = await ctx.policy.check_url(url)
        if decision is not None and decision.blocked:
            ctx.policy.record(decision, url)
            raise JobFailure(
                ErrorName.SITE_CLIENT_ERROR,
                f"download of {url} blocked by egress guard: {decision.blocked}",
                url=url,
            )
        response = await ctx.page.context.request.get(
            url, timeout=timeout_ms, max_redirects=0, fail_on_status_code=False
        )
        location = response.headers.get("location")
        if 300 <= response.status < 400 and location:
            await response.dispose()
            url = urljoin(url, location)
            continue
        failure = http_failure(response.status, url)
        if failure is not None:
            raise failure
        _check_size(int(response.headers.get("content-length") or 0), url)
        body = await response.body()
        _check_size(len(body), url)
        content_type = response.headers.get("content-type", "application/octet-stream").split(";")[0].strip()
        name = name or Path(urlsplit(url).path).name or "download"
        await ctx.save_artifact(name, body, content_type, ArtifactKind.DOWNLOAD)
        return
    raise JobFailure(ErrorName.SITE_CLIENT_ERROR, f"more than {MAX_REDIRECTS} redirects from {url}", url=url)


def _check_size(size: int, url: str) -> None:
    if size > MAX_DOWNLOAD_BYTES:
        raise JobFailure(
            ErrorName.WORKER_ERROR,
            f"download of {url} is {size} bytes; the limit is {MAX_DOWNLOAD_BYTES}",
            url=url,
        )


STEPS = {
    "goto": goto,
    "click": click,
    "fill": fill,
    "press": press,
    "wait_for": wait_for,
    "extract": extract,
    "screenshot": screenshot,
    "pdf": pdf,
    "download": download,
}
