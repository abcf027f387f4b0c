"""What the Playwright trace costs a trivial job: trace off, on-failure (the default; a succeeding job's trace
is discarded) and always, on the worker's own path.

Each job is run by run_in_browser (worker/run.py), as both worker modes run it: the job's context with its
egress proxy, its trace and page log (worker/evidence.py), the browse action (goto the sample site's page,
one extract), the kept trace redacted and uploaded through ArtifactStore (S3 in moto, in process), the
context closed. The browser is a warm one (worker/pool_browser.py, the pool's: the job's own cost, nothing
to dilute it) and, in fewer runs, one launched per job (a task of its own). The three policies take turns,
run by run, so that a change of the machine's load falls on all of them alike. A failing job (its click
finds nothing within 500 ms) is timed too: its evidence is what a failure costs, trace or not.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import boto3
from moto import mock_aws
from playwright.async_api import async_playwright

from bench.common import SPREAD_COLUMNS, Section, Spread, Table, Target, progress, say
from browserjobs.core.contract import TRACE_POLICIES
from browserjobs.core.sessions import SessionStore
from browserjobs.emulator.settings import worker_chromium
from browserjobs.testing.sample_site.server import SampleSite
from browserjobs.worker.actions import browse
from browserjobs.worker.artifacts import ArtifactKind, ArtifactStore
from browserjobs.worker.egress import EgressPolicy
from browserjobs.worker.jobs import Job
from browserjobs.worker.pool_browser import WarmBrowser
from browserjobs.worker.run import BrowserSource, LaunchedBrowser, RunSettings, run_in_browser
from browserjobs.worker.stop import StopFlag

REGION = "us-east-1"
BUCKET = "bench-artifacts"
ALLOW = ("127.0.0.1",)
ON_FAILURE, ALWAYS, OFF = TRACE_POLICIES
# A succeeding job pays for on-failure's trace though it is discarded: this much over trace off at most.
TARGET_ON_FAILURE_RATIO = 1.10


@dataclass
class Samples:
    ms: list[float] = field(default_factory=list)
    trace_bytes: list[int] = field(default_factory=list)
    evidence_bytes: list[int] = field(default_factory=list)


class _Runner:
    def __init__(self, page: str, s3: Any, kms_key: str) -> None:
        self.page, self.s3, self.kms_key = page, s3, kms_key
        self.sessions = SessionStore(
            s3=s3,
            ddb=boto3.client("dynamodb", region_name=REGION),
            bucket=BUCKET,
            table="unused",
            kms_key_id=kms_key,
        )

    async def job(self, browsers: BrowserSource, policy: str, fails: bool, into: Samples) -> None:
        steps: list[dict[str, Any]] = [{"goto": {"url": self.page}}]
        steps.append(
            {"click": {"selector": "#missing", "timeoutMs": 500}}
            if fails
            else {"extract": {"fields": {"title": {"selector": "#title"}}}}
        )
        job = Job(
            job_id=f"bench-{uuid.uuid4().hex[:12]}",
            lock_key="bench",
            rate_key="bench",
            action="browse",
            params={"steps": steps},
            timeout_seconds=60,
            session=None,
            trace=policy,
        )
        artifacts = ArtifactStore(self.s3, BUCKET, job.job_id, self.kms_key)
        settings = RunSettings(
            policy=EgressPolicy(ALLOW),
            browsers=browsers,
            deadline=time.monotonic() + 60,
            aws=lambda service: boto3.client(service, region_name=REGION),
        )
        started = time.perf_counter()
        outcome = await run_in_browser(
            job, browse.run, settings=settings, artifacts=artifacts, sessions=self.sessions, stop=StopFlag()
        )
        elapsed = (time.perf_counter() - started) * 1000
        if (outcome.failure is not None) != fails:
            raise RuntimeError(f"the bench job ended unexpectedly: {outcome.failure}")
        into.ms.append(elapsed)
        into.trace_bytes += [a["bytes"] for a in artifacts.saved if a["kind"] == ArtifactKind.TRACE]
        into.evidence_bytes.append(
            sum(a["bytes"] for a in artifacts.saved if a["kind"] != ArtifactKind.TRACE)
        )


async def _measure(runner: _Runner, chromium: str, runs: dict[str, int]) -> dict[tuple[str, str], Samples]:
    found: dict[tuple[str, str], Samples] = {}
    warm = WarmBrowser(chromium, ALLOW, recycle_after_jobs=1_000_000)
    await warm.start()
    try:
        cases: list[tuple[str, BrowserSource, str, bool]] = [
            *[("warm browser", warm, policy, False) for policy in (OFF, ON_FAILURE, ALWAYS)],
            *[("warm browser, failing", warm, policy, True) for policy in (OFF, ON_FAILURE)],
            *[
                ("browser per job", LaunchedBrowser(chromium), policy, False)
                for policy in (OFF, ON_FAILURE, ALWAYS)
            ],
        ]
        for _, browsers, policy, fails in cases:  # once each, not counted: warm caches and imports
            await runner.job(browsers, policy, fails, Samples())
        for source, total in runs.items():
            mine = [case for case in cases if case[0] == source]
            for index in range(total):
                progress(source, index + 1, total, ", ".join(policy for _, _, policy, _ in mine))
                for _, browsers, policy, fails in mine:
                    await runner.job(browsers, policy, fails, found.setdefault((source, policy), Samples()))
    finally:
        await warm.close()
    return found


# What each of the trace's options adds, without the worker around it: (screenshots, snapshots).
OPTIONS = {
    "no trace": None,
    "screenshots": (True, False),
    "snapshots": (False, True),
    "both (the worker's)": (True, True),
}


async def _options(page: str, chromium: str, rounds: int) -> dict[str, list[float]]:
    """A context per job on one browser: tracing.start, goto + extract, tracing.stop() (discarded), close."""
    found: dict[str, list[float]] = {name: [] for name in OPTIONS}
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=chromium)
        for index in range(rounds + 1):  # the first round is not counted
            for name, options in OPTIONS.items():
                started = time.perf_counter()
                context = await browser.new_context()
                if options is not None:
                    await context.tracing.start(screenshots=options[0], snapshots=options[1], sources=False)
                tab = await context.new_page()
                await tab.goto(page)
                await tab.locator("#title").all_inner_texts()
                if options is not None:
                    await context.tracing.stop()
                await context.close()
                if index:
                    found[name].append((time.perf_counter() - started) * 1000)
        await browser.close()
    return found


def run(quick: bool) -> Section:
    runs = (
        {"warm browser": 8, "warm browser, failing": 3, "browser per job": 3}
        if quick
        else {"warm browser": 30, "warm browser, failing": 8, "browser per job": 8}
    )
    chromium = worker_chromium()
    section = Section(
        "tracing",
        "Worker: what the Playwright trace costs a trivial job (trace off, on-failure, always)",
        ".venv/bin/python -m bench --only tracing" + (" --quick" if quick else ""),
    )
    say(f"   {chromium}: {runs}")
    with SampleSite() as site, mock_aws():
        s3 = boto3.client("s3", region_name=REGION)
        s3.create_bucket(Bucket=BUCKET)
        kms_key = boto3.client("kms", region_name=REGION).create_key()["KeyMetadata"]["Arn"]
        found = asyncio.run(_measure(_Runner(f"{site.url}/index.html", s3, kms_key), chromium, runs))
        progress("trace options", 1, 1, "raw Playwright")
        options = asyncio.run(_options(f"{site.url}/index.html", chromium, runs["warm browser"]))
    table = Table(
        "Per-job wall time of run_in_browser, milliseconds (goto the sample site's page + one extract; "
        "failing: goto + a click that finds nothing within 500 ms)",
        [
            "browser",
            "trace",
            *SPREAD_COLUMNS,
            "median vs off",
            "trace.zip bytes (median)",
            "other evidence bytes",
        ],
    )
    spreads = {key: Spread.of(samples.ms) for key, samples in found.items()}
    for (source, policy), samples in found.items():
        spread, off = spreads[(source, policy)], spreads[(source, OFF)]
        trace = (
            f"{Spread.of([float(b) for b in samples.trace_bytes]).median:.0f}" if samples.trace_bytes else "-"
        )
        evidence = f"{Spread.of([float(b) for b in samples.evidence_bytes]).median:.0f}"
        table.rows.append(
            [
                source,
                policy,
                *spread.cells(),
                f"{spread.median / off.median:.2f}x",
                trace,
                evidence if evidence != "0" else "-",
            ]
        )
    section.tables.append(table)
    bare = Spread.of(options["no trace"]).median
    breakdown = Table(
        "What each trace option adds, raw Playwright (context, tracing.start, goto + extract, "
        "tracing.stop() discarding the trace, close; no proxy, no worker), milliseconds",
        ["trace", *SPREAD_COLUMNS, "median over no trace"],
    )
    for name, timings in options.items():
        spread = Spread.of(timings)
        breakdown.rows.append([name, *spread.cells(), f"{spread.median - bare:+.0f} ms"])
    section.tables.append(breakdown)
    on_failure = spreads[("warm browser", ON_FAILURE)].median / spreads[("warm browser", OFF)].median
    always = spreads[("warm browser", ALWAYS)].median / spreads[("warm browser", OFF)].median
    extra_ms = spreads[("warm browser", ON_FAILURE)].median - spreads[("warm browser", OFF)].median
    section.notes += [
        f"A succeeding job with trace on-failure (the default) took {on_failure:.2f}x the time of trace off "
        f"({extra_ms:+.0f} ms, warm browser): the trace is recorded (screenshots and DOM snapshots, no "
        f"sources) and thrown away. Keeping it (always) took {always:.2f}x: writing the zip, redacting and "
        "uploading it.",
        "With a browser launched per job (every task of its own), the launch dilutes the same cost.",
        "A failing job keeps its failure screenshot, console.json and network.json whatever the policy; "
        "the failing rows show what that, and the trace on top with on-failure, adds to a failure.",
    ]
    section.targets.append(
        Target(
            f"trace on-failure: a succeeding trivial job ≤ {TARGET_ON_FAILURE_RATIO:.2f}x trace off's time "
            "(warm browser)",
            f"{on_failure:.2f}x ({extra_ms:+.0f} ms)",
            on_failure <= TARGET_ON_FAILURE_RATIO,
        )
    )
    section.data = {
        f"{source} / {policy}": {
            "ms": spreads[(source, policy)].__dict__,
            "trace_bytes": samples.trace_bytes,
            "evidence_bytes": samples.evidence_bytes,
        }
        for (source, policy), samples in found.items()
    }
    return section
