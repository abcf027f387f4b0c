"""The worker's browser: launch, per-job overhead with a warm browser, memory per context, launch per job.

Launch and the warm per-job overhead (with and without the egress guard) come from
bench/worker_overhead.py, the worker's own benchmark. Added here, in the same run: a job that launches
its own browser (what every Fargate task does today) against one that reuses a warm browser, and the
memory of Chromium's processes with 0, 1, 2, 4 and 8 contexts open, each on the trivial page. Each for
the headless shell (what the worker image runs; Debian's chromium-headless-shell) when it is installed,
and for the full Chromium the local stack uses by default.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from playwright.async_api import BrowserContext, async_playwright

from bench.common import Section, Spread, Table, Target, chromium_version, progress, say
from bench.worker_overhead import measure, serve_page
from browserjobs.emulator.settings import FULL_CHROMIUM, HEADLESS_SHELL
from browserjobs.worker.browser import launch, new_context
from browserjobs.worker.egress import EgressPolicy
from browserjobs.worker.egress_proxy import EgressProxy

CONTEXT_COUNTS = (0, 1, 2, 4, 8)
TARGET_WARM_JOB_MS = 150


def _descendants(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, queue = [], [root]
    while queue:
        for child in children.get(queue.pop(), []):
            found.append(child)
            queue.append(child)
    return found


def chromium_memory_mib() -> tuple[float, float, int]:
    """(RSS, PSS, processes) summed over this process's Chromium descendants. PSS shares shared pages."""
    rss = pss = 0
    count = 0
    for pid in _descendants(os.getpid()):
        try:
            if "chrom" not in Path(f"/proc/{pid}/comm").read_text():
                continue
            rollup = Path(f"/proc/{pid}/smaps_rollup").read_text()
        except OSError:
            continue
        values = {
            line.split(":")[0]: int(line.split()[1]) for line in rollup.splitlines()[1:] if "kB" in line
        }
        rss += values.get("Rss", 0)
        pss += values.get("Pss", 0)
        count += 1
    return rss / 1024, pss / 1024, count


async def _settled_memory(deadline_seconds: float = 5.0) -> tuple[float, float, int]:
    """Read until two readings 0.25 s apart agree within 1 MiB of PSS (Chromium allocates lazily)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + deadline_seconds
    previous = chromium_memory_mib()
    while True:
        await asyncio.sleep(0.25)
        current = chromium_memory_mib()
        if abs(current[1] - previous[1]) < 1.0 or loop.time() > deadline:
            return current
        previous = current


async def _launch_per_job(url: str, chromium: str | None, runs: int) -> list[float]:
    policy = EgressPolicy(["127.0.0.1"])
    samples = []
    loop = asyncio.get_running_loop()
    async with async_playwright() as playwright, EgressProxy(policy) as proxy:
        for _ in range(runs):
            started = loop.time()
            browser = await launch(playwright, executable_path=chromium, proxy_url=proxy.url)
            context = await new_context(browser, None, policy)
            page = await context.new_page()
            await page.goto(url)
            await context.close()
            await browser.close()
            samples.append((loop.time() - started) * 1000)
    return samples


async def _memory(url: str, chromium: str | None, rounds: int) -> dict[int, list[tuple[float, float, int]]]:
    policy = EgressPolicy(["127.0.0.1"])
    found: dict[int, list[tuple[float, float, int]]] = {count: [] for count in CONTEXT_COUNTS}
    async with async_playwright() as playwright, EgressProxy(policy) as proxy:
        for _ in range(rounds):
            browser = await launch(playwright, executable_path=chromium, proxy_url=proxy.url)
            contexts: list[BrowserContext] = []
            for count in CONTEXT_COUNTS:
                while len(contexts) < count:
                    context = await new_context(browser, None, policy)
                    page = await context.new_page()
                    await page.goto(url)
                    contexts.append(context)
                found[count].append(await _settled_memory())
            await browser.close()
    return found


def browsers() -> list[tuple[str, str]]:
    """(label, executable) for each browser to measure; the first one's numbers are judged."""
    found = []
    if HEADLESS_SHELL.is_file():
        label = "headless shell (what the worker image's Playwright and local workers run)"
        found.append((label, str(HEADLESS_SHELL)))
    found.append((f"full Chromium, new headless mode ({FULL_CHROMIUM})", str(FULL_CHROMIUM)))
    return found


def measure_browser(chromium: str, quick: bool) -> dict:
    launches, jobs, per_job_launches, rounds = (5, 20, 5, 1) if quick else (10, 40, 8, 2)
    say(f"   {chromium}: launch x{launches}, warm jobs x{jobs} (bench/worker_overhead.py) ...")
    overhead = asyncio.run(measure(launches, jobs, chromium))
    server, url = serve_page()
    try:
        progress("launch per job", 1, 2, f"x{per_job_launches}")
        per_job = Spread.of(asyncio.run(_launch_per_job(url, chromium, per_job_launches)))
        progress("memory per context", 2, 2, f"{rounds} round(s) of {CONTEXT_COUNTS} contexts")
        memory = asyncio.run(_memory(url, chromium, rounds))
    finally:
        server.shutdown()
    return {"overhead": overhead, "per_job": per_job, "memory": memory}


def _timing_rows(label: str, result: dict) -> list[list[str]]:
    rows = []
    for name, s in result["overhead"].items():
        rows.append(
            [
                label,
                name,
                f"**{s['median_ms']:.0f}**",
                f"{s['p90_ms']:.0f}",
                f"{s['min_ms']:.0f}",
                str(s["runs"]),
            ]
        )
    per_job = result["per_job"]
    rows.append(
        [
            label,
            "per job, launching its own browser (launch + context + page + close)",
            f"**{per_job.median:.0f}**",
            f"{per_job.p90:.0f}",
            f"{per_job.low:.0f}",
            str(per_job.runs),
        ]
    )
    return rows


def _memory_rows(label: str, memory: dict) -> tuple[list[list[str]], dict[int, float]]:
    rows, per_context = [], {}
    bare_pss = Spread.of([m[1] for m in memory[0]]).median
    for count in CONTEXT_COUNTS:
        rss = Spread.of([m[0] for m in memory[count]]).median
        pss = Spread.of([m[1] for m in memory[count]]).median
        procs = int(Spread.of([m[2] for m in memory[count]]).median)
        per_context[count] = (pss - bare_pss) / count if count else 0.0
        extra = f"{per_context[count]:.0f}" if count else "-"
        rows.append([label, str(count), str(procs), f"{rss:.0f}", f"{pss:.0f}", extra])
    return rows, per_context


def run(quick: bool) -> Section:
    section = Section(
        "browser",
        "Worker: Chromium launch, per-job overhead, memory per context",
        ".venv/bin/python -m bench --only browser"
        + (" --quick" if quick else "")
        + "  (its first rows per browser: bench/worker_overhead.py, the worker's own benchmark)",
    )
    timing = Table(
        "Milliseconds (worker flags, egress proxy; trivial page on 127.0.0.1)",
        ["browser", "measurement", "median", "p90", "min", "runs"],
    )
    memory = Table(
        "Chromium's processes with N contexts open, each on the trivial page (MiB; median of rounds)",
        ["browser", "contexts", "processes", "RSS sum", "PSS sum", "PSS per context over the bare browser"],
    )
    results = {}
    for label, chromium in browsers():
        results[label] = measure_browser(chromium, quick)
        timing.rows += _timing_rows(label.split(" (")[0], results[label])
        rows, per_context = _memory_rows(label.split(" (")[0], results[label]["memory"])
        memory.rows += rows
        results[label]["pss_per_context"] = per_context
    section.tables += [timing, memory]
    judged_label = next(iter(results))
    judged_name = judged_label.split(" (")[0]
    judged = results[judged_label]
    warm = judged["overhead"]["per job, warm browser, egress guard on"]
    launch_ms = judged["overhead"]["browser launch (worker flags, via proxy)"]["median_ms"]
    section.notes += [
        "Browsers: " + "; ".join(f"{label}: {chromium_version(path)}" for label, path in browsers()) + ".",
        "The worker image runs Playwright's Chromium, which in headless mode is the headless shell; "
        "Debian's chromium-headless-shell package is the same build, and local workers run it when it is "
        "installed. The full browser in new headless mode opens each page in a heavier tab.",
        "RSS double-counts pages Chromium's processes share; PSS divides them among the sharers, so PSS "
        "sums add up to what the task really uses.",
        f"Reusing a warm browser saves about {judged['per_job'].median - warm['median_ms']:.0f} ms per job "
        f"(launch ≈ {launch_ms:.0f} ms; {judged_name}); the worker runs one job per task, "
        "so every job pays the launch.",
    ]
    section.targets.append(
        Target(
            f"per-job overhead with a warm browser < {TARGET_WARM_JOB_MS} ms median ({judged_name})",
            f"{warm['median_ms']:.0f} ms (p90 {warm['p90_ms']:.0f})",
            warm["median_ms"] < TARGET_WARM_JOB_MS,
        )
    )
    section.data = {
        label: {
            "overhead": r["overhead"],
            "launch_per_job": r["per_job"].__dict__,
            "memory": {str(k): v for k, v in r["memory"].items()},
            "pss_per_context": r["pss_per_context"],
        }
        for label, r in results.items()
    }
    return section
