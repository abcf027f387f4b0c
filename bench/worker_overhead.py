"""What the browser costs the worker: Chromium launch, and the per-job overhead with a warm browser.

    python bench/worker_overhead.py [--launches 20] [--jobs 50]

Launch: the worker's own launch (its flags, through the egress proxy) until the browser answers.
Per job: new context (egress routing installed) + new page + a trivial page served on 127.0.0.1 + close,
with the guard (as the worker runs) and without it (no proxy, no routing), to show what the guard costs.
Medians (and p90) of the runs; the browser is the local workers' (CHROMIUM_PATH, else the headless shell).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import threading
import time
from collections.abc import Awaitable, Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from playwright.async_api import Browser, async_playwright

from browserjobs.emulator.settings import worker_chromium
from browserjobs.worker.browser import LAUNCH_ARGS, launch, new_context
from browserjobs.worker.egress import EgressPolicy
from browserjobs.worker.egress_proxy import EgressProxy

PAGE = b"<!doctype html><html><body><h1>bench</h1></body></html>"


def serve_page() -> tuple[ThreadingHTTPServer, str]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(PAGE)))
            self.end_headers()
            with contextlib.suppress(ConnectionError):  # a context closed before it read the page
                self.wfile.write(PAGE)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/"


async def timed(runs: int, once: Callable[[], Awaitable[None]]) -> list[float]:
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        await once()
        samples.append((time.perf_counter() - started) * 1000)
    return samples


def summary(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "runs": len(samples),
        "median_ms": round(statistics.median(ordered), 1),
        "p90_ms": round(ordered[int(0.9 * (len(ordered) - 1))], 1),
        "min_ms": round(ordered[0], 1),
    }


async def measure(launches: int, jobs: int, chromium: str | None) -> dict[str, dict[str, float]]:
    server, url = serve_page()
    policy = EgressPolicy(["127.0.0.1"])
    try:
        async with async_playwright() as playwright, EgressProxy(policy) as proxy:

            async def launch_and_close() -> None:
                browser = await launch(playwright, executable_path=chromium, proxy_url=proxy.url)
                await browser.close()

            async def job(browser: Browser, guarded: bool) -> None:
                context = await new_context(browser, None, policy) if guarded else await browser.new_context()
                page = await context.new_page()
                await page.goto(url)
                await context.close()

            results = {
                "browser launch (worker flags, via proxy)": summary(await timed(launches, launch_and_close))
            }
            guarded = await launch(playwright, executable_path=chromium, proxy_url=proxy.url)
            await job(guarded, True)  # warm-up
            results["per job, warm browser, egress guard on"] = summary(
                await timed(jobs, lambda: job(guarded, True))
            )
            await guarded.close()
            plain = await playwright.chromium.launch(executable_path=chromium, args=list(LAUNCH_ARGS))
            await job(plain, False)
            results["per job, warm browser, no guard"] = summary(await timed(jobs, lambda: job(plain, False)))
            await plain.close()
            return results
    finally:
        server.shutdown()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--launches", type=int, default=20)
    parser.add_argument("--jobs", type=int, default=50)
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args()
    chromium = worker_chromium()
    results = asyncio.run(measure(args.launches, args.jobs, chromium))
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    print(f"| measurement ({os.cpu_count()} CPUs, {chromium}) | runs | median ms | p90 ms | min ms |")
    print("|---|---|---|---|---|")
    for name, s in results.items():
        print(f"| {name} | {s['runs']} | {s['median_ms']} | {s['p90_ms']} | {s['min_ms']} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
