"""The demo's scenarios, also run as the end-to-end tests: real template, Lambdas, worker and Chromium.

Each scenario submits jobs against the sample site, waits (with deadlines) for what should happen and
returns its checks, the jobs it ran and what it measured. A scenario passes when every check holds.
"""

from __future__ import annotations

import datetime
import io
import json
import time
import urllib.request
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from browserjobs.core.contract import ErrorName
from browserjobs.emulator.stack import LocalStack
from browserjobs.ops.timeline import build_timeline
from browserjobs.testing.harness import Deadline, Harness, new_id, poll

BREAKER_OPEN_SECONDS = 4
# Deploy-time parameters the scenarios rely on: two tokens, then one every five seconds per rate key.
# Local tasks start in seconds (LOCAL_TASK_START_SECONDS), not Fargate's 30-60 s: a grace of 25 s covers the
# e2e suite's slowest start (20 s) and still notices a hung worker within half a minute.
PARAMETERS = {
    "RateBurst": "2",
    "RateLimitPerMinute": "12",
    "TaskStartGraceSeconds": "25",
    "BreakerOpenSeconds": str(BREAKER_OPEN_SECONDS),
}
SECONDS_PER_TOKEN = 5
JOB_SECONDS = 90


@dataclass
class Check:
    name: str
    ok: bool
    detail: str = ""


@dataclass
class JobRow:
    job_id: str
    role: str
    status: str
    seconds: float | None
    error: str = ""


@dataclass
class ScenarioResult:
    name: str
    title: str
    checks: list[Check] = field(default_factory=list)
    jobs: list[JobRow] = field(default_factory=list)
    measurements: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return bool(self.checks) and all(check.ok for check in self.checks)

    def check(self, name: str, ok: object, detail: Any = "") -> bool:
        self.checks.append(Check(name, bool(ok), str(detail)))
        return bool(ok)


@dataclass
class Context:
    stack: LocalStack
    harness: Harness
    site_url: str

    def job(self, role: str, steps: list[dict[str, Any]], **fields: Any) -> dict[str, Any]:
        return {
            "jobId": new_id(role),
            "lockKey": new_id("account"),
            "action": "browse",
            "params": {"steps": steps},
            "timeoutSeconds": 120,
            "heartbeatSeconds": 10,
            "meta": {"scenario": role},
            **fields,
        }

    def run(
        self, job: dict[str, Any], role: str, result: ScenarioResult, timeout: float = JOB_SECONDS
    ) -> dict:
        """Wait for a submitted job to end; record it in the result's table."""
        record, execution = self.harness.wait_for_job_end(job["jobId"], timeout)
        self._row(record, role, result)
        return {**record, "_execution": execution}

    def rejected(self, job: dict[str, Any], role: str, result: ScenarioResult, timeout: float = 30) -> dict:
        """Wait for intake to reject a job (no execution is started for it)."""
        record = self.harness.wait_for_status(job["jobId"], {"REJECTED"}, timeout)
        self._row(record, role, result)
        return record

    @staticmethod
    def _row(record: dict[str, Any], role: str, result: ScenarioResult) -> None:
        seconds = _seconds_between(record.get("createdAt"), record.get("endedAt") or record.get("updatedAt"))
        error = (record.get("error") or {}).get("Error", "") or (record.get("rejection") or {}).get(
            "code", ""
        )
        result.jobs.append(JobRow(record["jobId"], role, record["status"], seconds, error))

    def registered_task(self, job_id: str, lock_key: str) -> str:
        """The job's ECS task, once the worker has registered it on the lock (it is then really running)."""

        def registered() -> str | None:
            lock = self.harness.lock(lock_key)
            return lock.get("taskArn") if lock and lock.get("jobId") == job_id else None

        return poll(f"job {job_id} registering its task", registered, 60)


def _parse(moment: str | None) -> datetime.datetime | None:
    return datetime.datetime.fromisoformat(moment.replace("Z", "+00:00")) if moment else None


def _seconds_between(start: str | None, end: str | None) -> float | None:
    first, last = _parse(start), _parse(end)
    return round((last - first).total_seconds(), 2) if first and last else None


def _state_times(history: list[dict[str, Any]], name: str, kind: str) -> list[datetime.datetime]:
    key = "stateEnteredEventDetails" if kind == "entered" else "stateExitedEventDetails"
    return [event["timestamp"] for event in history if event.get(key, {}).get("name") == name]


# --- scenarios -------------------------------------------------------------------------------------------


def success(ctx: Context, result: ScenarioResult) -> None:
    steps: list[dict[str, Any]] = [
        {"goto": {"url": f"{ctx.site_url}/"}},
        {
            "extract": {
                "name": "shop",
                "fields": {"title": {"selector": "#title"}, "names": {"selector": ".name", "all": True}},
            }
        },
        {"screenshot": {"name": "shop", "fullPage": True}},
    ]
    job = ctx.job("extract", steps)
    started = time.monotonic()
    ctx.harness.submit(job)
    record = ctx.run(job, "extract", result)
    result.measurements["job_end_to_end_seconds"] = round(time.monotonic() - started, 2)
    summary = json.loads(record.get("summary") or "{}")
    result.check("job SUCCEEDED", record["status"] == "SUCCEEDED", record["status"])
    shop = summary.get("data", {}).get("shop", {})
    result.check("data extracted", shop.get("names") == ["Anvil", "Bellows", "Crucible"], shop)
    screenshots = [uri for uri in summary.get("artifacts", []) if uri.endswith("/shop.png")]
    result.check("screenshot stored", len(screenshots) == 1, summary.get("artifacts"))
    if screenshots:
        bucket, key = screenshots[0].removeprefix("s3://").split("/", 1)
        head = ctx.harness.client("s3").head_object(Bucket=bucket, Key=key)
        result.check("screenshot is a PNG in S3", head["ContentLength"] > 1000, head["ContentLength"])
    result.check("lock released", ctx.harness.lock(job["lockKey"]) is None)


def wait_for_lock(ctx: Context, result: ScenarioResult) -> None:
    lock_key = new_id("account")
    first = ctx.job(
        "holder", [{"goto": {"url": f"{ctx.site_url}/slow?seconds=6", "timeoutMs": 30000}}], lockKey=lock_key
    )
    second = ctx.job("waiter", [{"goto": {"url": f"{ctx.site_url}/"}}], lockKey=lock_key, onConflict="wait")
    ctx.harness.submit(first)
    ctx.registered_task(first["jobId"], lock_key)
    ctx.harness.submit(second)
    waiting = ctx.harness.wait_for_status(second["jobId"], {"WAITING"}, 30)
    result.check(
        "second job WAITING on the lock", waiting.get("waitReason") == "LOCKED", waiting.get("waitReason")
    )
    held = ctx.run(first, "holder", result)
    waited = ctx.run(second, "waiter", result)
    result.check("both SUCCEEDED", (held["status"], waited["status"]) == ("SUCCEEDED", "SUCCEEDED"))
    result.check(
        "the waiter ran only after the holder ended",
        (waited.get("claimedAt") or "") >= (held.get("endedAt") or "~"),
        f"claimed {waited.get('claimedAt')}, holder ended {held.get('endedAt')}",
    )


def interrupt(ctx: Context, result: ScenarioResult) -> None:
    lock_key = new_id("account")
    steps: list[dict[str, Any]] = [{"goto": {"url": f"{ctx.site_url}/"}}, {"wait_for": {"timeoutMs": 60000}}]
    running = ctx.job("superseded", steps, lockKey=lock_key)
    newer = ctx.job(
        "interrupter", [{"goto": {"url": f"{ctx.site_url}/"}}], lockKey=lock_key, onConflict="interrupt"
    )
    ctx.harness.submit(running)
    ctx.registered_task(running["jobId"], lock_key)
    asked = time.monotonic()
    ctx.harness.submit(newer)
    superseded = ctx.run(running, "superseded", result)
    result.measurements["interrupt_to_stop_seconds"] = round(time.monotonic() - asked, 2)
    result.check("running job INTERRUPTED", superseded["status"] == "INTERRUPTED", superseded["status"])
    result.check(
        "interruption names the newer job",
        superseded.get("error", {}).get("Error") == ErrorName.JOB_INTERRUPTED,
    )
    interrupter = ctx.run(newer, "interrupter", result)
    result.check("newer job SUCCEEDED", interrupter["status"] == "SUCCEEDED", interrupter["status"])


def burst(ctx: Context, result: ScenarioResult) -> None:
    rate_key = new_id("tenant")
    jobs = [ctx.job("burst", [{"goto": {"url": f"{ctx.site_url}/"}}], rateKey=rate_key) for _ in range(4)]
    for job in jobs:
        ctx.harness.submit(job)
    records = [ctx.run(job, "burst", result) for job in jobs]
    result.check(
        "all four SUCCEEDED", all(r["status"] == "SUCCEEDED" for r in records), [r["status"] for r in records]
    )
    throttled_waits, throttled_jobs = [], 0
    for job in jobs:
        history = ctx.harness.history(job["jobId"])
        claims = [
            json.loads(e["taskSucceededEventDetails"]["output"])["Payload"]
            for e in history
            if e.get("taskSucceededEventDetails", {}).get("resourceType") == "lambda"
        ]
        entered = _state_times(history, "WaitForCapacity", "entered")
        exited = _state_times(history, "WaitForCapacity", "exited")
        throttled_jobs += any(c["outcome"] == "THROTTLED" for c in claims)
        for claim, start, end in zip(
            (c for c in claims if c["outcome"] == "THROTTLED"), entered, exited, strict=False
        ):
            throttled_waits.append((claim["waitSeconds"], round((end - start).total_seconds(), 2)))
    result.check("a burst of 2 passed, the other 2 jobs were throttled", throttled_jobs == 2, throttled_waits)
    result.check(
        f"each throttled claim waited exactly what the bucket needed (at most {SECONDS_PER_TOKEN} s a token)",
        all(
            1 <= asked <= SECONDS_PER_TOKEN and asked <= waited < asked + 1
            for asked, waited in throttled_waits
        ),
        throttled_waits,
    )
    result.measurements["throttled_waits"] = len(throttled_waits)


def heartbeat_timeout(ctx: Context, result: ScenarioResult) -> None:
    job = ctx.job(
        "hung",
        [{"goto": {"url": f"{ctx.site_url}/hang", "timeoutMs": 120000}}],
        heartbeatSeconds=4,
        timeoutSeconds=300,
    )
    ctx.harness.submit(job)
    task_arn = ctx.registered_task(job["jobId"], job["lockKey"])
    ctx.stack.freeze_task(task_arn)  # the worker stops heartbeating
    frozen = time.monotonic()
    record = ctx.run(job, "hung", result)
    result.check("job TIMED_OUT", record["status"] == "TIMED_OUT", record["status"])
    result.check(
        "on a heartbeat timeout",
        record.get("error", {}).get("Error") == "States.HeartbeatTimeout",
        record.get("error"),
    )
    task = poll(
        "the hung task to stop",
        lambda: (t := ctx.harness.task(task_arn))["lastStatus"] == "STOPPED" and t,
        200,
    )
    result.check(
        "task stopped by the workflow", task.get("stopCode") == "UserInitiated", task.get("stoppedReason")
    )
    result.check("lock released", ctx.harness.lock(job["lockKey"]) is None)
    message = ctx.harness.dead_letters(job["jobId"], 15)
    result.measurements["hang_to_dlq_seconds"] = round(time.monotonic() - frozen, 2)
    result.check("job in the DLQ", message.get("status") == "TIMED_OUT", message)
    history = ctx.harness.history(job["jobId"])
    timed_out = next(e["timestamp"] for e in history if e["type"] == "TaskTimedOut")
    dead_lettered = _state_times(history, "SendToDeadLetterQueue", "exited")[0]
    result.measurements["timeout_to_dlq_seconds"] = round((dead_lettered - timed_out).total_seconds(), 2)


def crash(ctx: Context, result: ScenarioResult) -> None:
    job = ctx.job(
        "crashed",
        [{"goto": {"url": f"{ctx.site_url}/slow?seconds=60", "timeoutMs": 120000}}],
        heartbeatSeconds=60,
    )
    ctx.harness.submit(job)
    task_arn = ctx.registered_task(job["jobId"], job["lockKey"])
    ctx.stack.crash_task(task_arn)  # killed as by the OOM killer: no callback
    record = ctx.run(job, "crashed", result)
    result.check("job FAILED", record["status"] == "FAILED", record["status"])
    result.check(
        "as Worker.Crashed",
        record.get("error", {}).get("Error") == ErrorName.WORKER_CRASHED,
        record.get("error"),
    )
    task = ctx.harness.task(task_arn)
    stopped = task["stoppedAt"]
    failed = record["_execution"]["stopDate"]
    seconds = round((failed - stopped).total_seconds(), 2)
    result.measurements["crash_to_failure_seconds"] = seconds
    result.check("failed within seconds, not after the 60 s heartbeat", seconds < 15, f"{seconds}s")
    result.check("lock released", ctx.harness.lock(job["lockKey"]) is None)
    result.check("job in the DLQ", ctx.harness.dead_letters(job["jobId"], 15).get("status") == "FAILED")


def site_retry(ctx: Context, result: ScenarioResult) -> None:
    """A site that answers 503 twice is retried (Site.ServerError: up to 3 retries); a 404 never is."""
    name = new_id("flaky")
    flaky = ctx.job("flaky", [{"goto": {"url": f"{ctx.site_url}/flaky/{name}?fail=2&status=503"}}])
    missing = ctx.job("missing", [{"goto": {"url": f"{ctx.site_url}/status/404"}}])
    for job in (flaky, missing):
        ctx.harness.submit(job)
    record = ctx.run(flaky, "flaky", result)
    result.check("job SUCCEEDED after two 503s", record["status"] == "SUCCEEDED", record["status"])
    hits = _hits(ctx, name)
    result.check("the site saw three loads", len(hits) == 3, hits)
    retries = _browser_task_retries(ctx.harness.history(flaky["jobId"]))
    result.check("browserjobs history shows two retries", retries == 2, retries)
    if len(hits) == 3:
        result.measurements["retried_job_seconds"] = round(hits[-1] - hits[0], 2)
    record = ctx.run(missing, "missing", result)
    error = (record.get("error") or {}).get("Error")
    result.check(
        "a 404 fails at once", record["status"] == "FAILED" and error == ErrorName.SITE_CLIENT_ERROR, error
    )
    retries = _browser_task_retries(ctx.harness.history(missing["jobId"]))
    result.check("and is not retried", retries == 0, retries)


def site_rate_limit(ctx: Context, result: ScenarioResult) -> None:
    """A 429 with Retry-After: 3 sends the job back to its claim; it loads again no sooner than asked."""
    name = new_id("busy")
    job = ctx.job("busy", [{"goto": {"url": f"{ctx.site_url}/flaky/{name}?fail=1&status=429&retryAfter=3"}}])
    ctx.harness.submit(job)
    record = ctx.run(job, "busy", result)
    result.check("job SUCCEEDED after a 429", record["status"] == "SUCCEEDED", record["status"])
    hits = _hits(ctx, name)
    if result.check("the site saw two loads", len(hits) == 2, hits):
        gap = round(hits[1] - hits[0], 2)
        result.measurements["seconds_between_loads"] = gap
        result.check("the second came at least 3 s after the first", gap >= 3, gap)
    bucket = ctx.harness.bucket(job["lockKey"]) or {}
    result.check("the rate key was slowed to half", bucket.get("ratePercent") == 50, bucket)


def site_breaker(ctx: Context, result: ScenarioResult) -> None:
    """Eight jobs for a site that answers 503: its breaker opens, holds them (one probe per open period),
    and they all succeed once the site recovers."""
    name = new_id("down")
    url = f"{ctx.site_url}/flaky/{name}?fail=always&status=503"
    jobs = [ctx.job("down", [{"goto": {"url": url}}], siteKey=name) for _ in range(8)]
    for job in jobs:
        ctx.harness.submit(job)
    opened = poll("the breaker to open", lambda: _breaker(ctx, name, lambda b: b.get("state") == "OPEN"), 60)
    first_opened = int(opened["firstOpenedAtMs"]) / 1000
    # A probe that failed opened it again: the breaker has held the site through a whole open period.
    reopened = poll(
        "a probe to fail",
        lambda: _breaker(ctx, name, lambda b: int(b.get("openedAtMs", 0)) > int(b.get("firstOpenedAtMs", 0))),
        60,
    )
    with urllib.request.urlopen(f"{ctx.site_url}/recover/{name}", timeout=10):  # noqa: S310  # nosec B310
        recovered = time.time()
    records = [ctx.run(job, "down", result) for job in jobs]
    statuses = [r["status"] for r in records]
    result.check("all eight SUCCEEDED", statuses == ["SUCCEEDED"] * 8, statuses)
    hits = _hits(ctx, name)
    # Loads while open: only probes, one per open period (a task that passed its breaker check just before
    # the breaker opened may load a moment later: 1 s of slack).
    while_open = [t for t in hits if first_opened + 1 <= t < recovered]
    periods = (int(reopened["openedAtMs"]) / 1000 - first_opened) / BREAKER_OPEN_SECONDS
    probes_at_most = int(periods) + 2
    only_probes = len(while_open) <= probes_at_most
    result.check("while open, only probes reached the site", only_probes, (while_open, periods))
    result.measurements["loads_while_open"] = len(while_open)
    result.measurements["loads_before_opening"] = len([t for t in hits if t < first_opened + 1])
    result.measurements["recovered_to_all_done_seconds"] = round(time.time() - recovered, 2)
    closed = _breaker(ctx, name, lambda b: True) or {}
    result.check("the breaker closed again", closed.get("state") == "CLOSED", closed)


def _breaker(ctx: Context, site_key: str, wanted: Callable[[dict[str, Any]], bool]) -> dict[str, Any] | None:
    item = ctx.harness.breaker(site_key)
    return item if item and wanted(item) else None


def _hits(ctx: Context, name: str) -> list[float]:
    hits_url = f"{ctx.site_url}/hits/{name}"  # the sample site on loopback, http only
    with urllib.request.urlopen(hits_url, timeout=10) as answer:  # noqa: S310  # nosec B310
        return list(json.load(answer))


def _browser_task_retries(history: list[dict[str, Any]]) -> int:
    """The retries `browserjobs history` shows for RunBrowserTask."""
    return sum(run.retries for run in build_timeline(history).runs if run.name == "RunBrowserTask")


def pool_burst(ctx: Context, result: ScenarioResult) -> None:
    """Six pool jobs at once on a pool scaled to nothing: it scales out, warm browsers run them (four at a
    time: MaxConcurrentTasks), and it scales back in once the queue and the workers are idle."""
    cluster, service = _pool(ctx)
    name = new_id("pool")
    steps: list[dict[str, Any]] = [
        {"goto": {"url": f"{ctx.site_url}/slow?seconds=2&name={name}"}},
        {"extract": {"name": "shop", "fields": {"title": {"selector": "#title"}}}},
    ]
    jobs = [ctx.job("pool", steps, dispatch="pool") for _ in range(6)]
    started = time.monotonic()
    for job in jobs:
        ctx.harness.submit(job)
    records = [ctx.run(job, "pool", result) for job in jobs]
    result.measurements["six_jobs_seconds"] = round(time.monotonic() - started, 2)
    statuses = [r["status"] for r in records]
    result.check("all six SUCCEEDED", statuses == ["SUCCEEDED"] * 6, statuses)
    tasks = {r.get("taskArn") for r in records}
    groups = {ctx.harness.task(arn).get("group") for arn in tasks if arn}
    result.check("on the pool service's tasks", groups == {f"service:{service}"}, groups)
    result.check("by at most PoolMaxTasks (2) tasks", 1 <= len(tasks) <= 2, len(tasks))
    histories = [ctx.harness.history(job["jobId"]) for job in jobs]
    result.check(
        "dispatched by RunPoolJob, never RunBrowserTask",
        all(_entered(h, "RunPoolJob") and not _entered(h, "RunBrowserTask") for h in histories),
    )
    transitions = len([e for e in histories[0] if e["type"].endswith("StateEntered")])
    result.measurements["transitions"] = transitions
    result.check("the successful path takes at most 8 transitions", transitions <= 8, transitions)
    result.check(
        "each page loaded once (no job ran twice)", len(_hits(ctx, name)) == 6, len(_hits(ctx, name))
    )
    scaled = _scaling(ctx, cluster, service)
    result.check("scaled out", any("to 1" in a or "to 2" in a for a in scaled), scaled)
    idle = poll("the pool to scale back in", lambda: _desired(ctx, cluster, service) == 0 or None, 60)
    result.check("scaled back in to PoolMinTasks (0)", idle)


def pool_crash(ctx: Context, result: ScenarioResult) -> None:
    """A pool task is killed (as by the OOM killer) while its jobs load a page: the crash hook fails their
    tokens from the task's registry within seconds, and each is retried once on another task."""
    name = new_id("crash")
    url = f"{ctx.site_url}/slow?seconds=6&name={name}"
    jobs = [
        ctx.job("pool-crash", [{"goto": {"url": url, "timeoutMs": 60000}}], dispatch="pool") for _ in range(2)
    ]
    for job in jobs:
        ctx.harness.submit(job)
    victim = ctx.registered_task(jobs[0]["jobId"], jobs[0]["lockKey"])
    others = [ctx.registered_task(job["jobId"], job["lockKey"]) for job in jobs[1:]]
    on_victim = 1 + others.count(victim)
    poll("both pages to be loading", lambda: len(_hits(ctx, name)) >= 2 or None, 60)
    crashed = time.time()
    ctx.stack.crash_task(victim)
    records = [ctx.run(job, "pool-crash", result) for job in jobs]
    statuses = [r["status"] for r in records]
    result.check("both SUCCEEDED", statuses == ["SUCCEEDED"] * 2, statuses)
    failed_at = [
        e["timestamp"].timestamp()
        for e in ctx.harness.history(jobs[0]["jobId"])
        if e["type"] == "TaskFailed"
        and e["taskFailedEventDetails"].get("error") == ErrorName.WORKER_INTERRUPTED
    ]
    seconds = round(failed_at[0] - crashed, 2) if failed_at else None
    result.measurements["crash_to_retry_seconds"] = seconds or -1
    result.check(
        "its job failed over within seconds (crash hook)", seconds is not None and seconds < 10, seconds
    )
    result.check(
        "and ran again on another task", records[0].get("taskArn") != victim, records[0].get("taskArn")
    )
    loads = len(_hits(ctx, name))
    result.check(
        "each attempt loaded its page once", loads == 2 + on_victim, f"{loads} loads, {on_victim} retried"
    )
    registry = ctx.harness.client("dynamodb").get_item(
        TableName=ctx.harness.outputs["LocksTableName"], Key={"pk": {"S": f"worker#{victim}"}}
    )
    result.check("the dead task's registry is gone", "Item" not in registry)


def pool_spot(ctx: Context, result: ScenarioResult) -> None:
    """A Spot interruption (SIGTERM, then SIGKILL after 120 s) reaches a pool task running a short and a long
    job: the short one finishes within the drain (PoolDrainSeconds, 5 s locally), the long one reports
    Worker.Interrupted and is retried on another task."""
    short_name, long_name = new_id("short"), new_id("long")
    short = ctx.job(
        "spot-short", [{"goto": {"url": f"{ctx.site_url}/slow?seconds=3&name={short_name}"}}], dispatch="pool"
    )
    # Its first attempt outlasts any drain, however late the interruption comes (a 15 s page once ended
    # within the drain on a busy machine); its retry's page is quick.
    long = ctx.job(
        "spot-long",
        [
            {
                "goto": {
                    "url": f"{ctx.site_url}/slow?seconds=60&then=3&name={long_name}",
                    "timeoutMs": 90000,
                }
            }
        ],
        dispatch="pool",
    )
    for job in (short, long):
        ctx.harness.submit(job)
    victim = ctx.registered_task(long["jobId"], long["lockKey"])
    short_task = ctx.registered_task(short["jobId"], short["lockKey"])
    poll("both pages to be loading", lambda: (_hits(ctx, short_name) and _hits(ctx, long_name)) or None, 60)
    ctx.stack.interrupt_task(victim)
    result.measurements["long_page_loading_at_interruption_seconds"] = round(
        time.time() - _hits(ctx, long_name)[0], 2
    )
    long_record = ctx.run(long, "spot-long", result)
    short_record = ctx.run(short, "spot-short", result)
    result.check("the long job SUCCEEDED", long_record["status"] == "SUCCEEDED", long_record["status"])
    interrupted = [
        e["taskFailedEventDetails"] for e in ctx.harness.history(long["jobId"]) if e["type"] == "TaskFailed"
    ]
    result.check(
        "after one Worker.Interrupted from its draining worker",
        [d.get("error") for d in interrupted] == [ErrorName.WORKER_INTERRUPTED]
        and "SIGTERM" in interrupted[0].get("cause", ""),
        interrupted,
    )
    result.check("retried on another task", long_record.get("taskArn") != victim, long_record.get("taskArn"))
    result.check(
        "its page loaded once per attempt", len(_hits(ctx, long_name)) == 2, len(_hits(ctx, long_name))
    )
    result.check("the short job SUCCEEDED", short_record["status"] == "SUCCEEDED", short_record["status"])
    if short_task == victim:
        result.check(
            "within the drain, on the interrupted task, without a retry",
            not any(e["type"] == "TaskFailed" for e in ctx.harness.history(short["jobId"])),
        )
    stop_code = poll("the task to stop", lambda: ctx.harness.task(victim).get("stopCode"), 60)
    result.check("the task stopped as a Spot interruption", stop_code == "SpotInterruption", stop_code)


def pool_hang(ctx: Context, result: ScenarioResult) -> None:
    """A pool task hangs (SIGSTOP) with a job in flight: its container health check fails and ECS stops the
    task (the service replaces it) long before the job's heartbeat deadline; the job still SUCCEEDS."""
    name = new_id("hang")
    job = ctx.job(
        "pool-hang",
        [{"goto": {"url": f"{ctx.site_url}/slow?seconds=6&name={name}", "timeoutMs": 60000}}],
        dispatch="pool",
    )
    ctx.harness.submit(job)
    victim = ctx.registered_task(job["jobId"], job["lockKey"])
    poll("the page to be loading", lambda: _hits(ctx, name) or None, 60)
    frozen = time.time()
    ctx.stack.freeze_task(victim)
    record = ctx.run(job, "pool-hang", result)
    # The job may end within the stopping task's drain: the task itself stops a moment later.
    task = poll("the hung task to stop", lambda: (t := ctx.harness.task(victim)).get("stoppedAt") and t, 60)
    result.check(
        "the hung task failed its health check",
        task.get("healthStatus") == "UNHEALTHY",
        task.get("healthStatus"),
    )
    result.check(
        "and was stopped for it",
        task.get("stoppedReason") == "Task failed container health checks",
        task.get("stoppedReason"),
    )
    stopping = task.get("stoppingAt") or task["stoppedAt"]  # when ECS decided to stop it
    seconds = round(stopping.timestamp() - frozen, 2)
    result.measurements["hang_to_stop_seconds"] = seconds
    deadline = job["heartbeatSeconds"] + int(PARAMETERS["TaskStartGraceSeconds"])
    result.check(
        f"before the job's heartbeat deadline ({deadline} s)",
        seconds is not None and seconds < deadline,
        seconds,
    )
    # Stopping resumes the frozen worker to deliver SIGTERM (as stopping a paused container does): it may
    # finish the job within its drain, or report it interrupted for a retry on another task.
    result.check("the job SUCCEEDED", record["status"] == "SUCCEEDED", record["status"])


def _pool(ctx: Context) -> tuple[str, str]:
    outputs = ctx.harness.outputs
    return outputs["ClusterArn"], outputs["PoolServiceName"]


def _desired(ctx: Context, cluster: str, service: str) -> int:
    return ctx.harness.client("ecs").describe_services(cluster=cluster, services=[service])["services"][0][
        "desiredCount"
    ]


def _scaling(ctx: Context, cluster: str, service: str) -> list[str]:
    """The pool's scaling activities, as DescribeScalingActivities lists them."""
    resource = f"service/{cluster.rsplit('/', 1)[-1]}/{service}"
    activities = ctx.harness.client("application-autoscaling").describe_scaling_activities(
        ServiceNamespace="ecs", ResourceId=resource
    )["ScalingActivities"]
    return [activity["Description"] for activity in activities]


def _entered(history: list[dict[str, Any]], state: str) -> bool:
    return any(e.get("stateEnteredEventDetails", {}).get("name") == state for e in history)


def invalid_input(ctx: Context, result: ScenarioResult) -> None:
    job = ctx.job("invalid", [])  # a browse job needs at least one step
    ctx.harness.submit(job)
    record = ctx.rejected(job, "invalid", result)
    rejection = record.get("rejection") or {}
    result.check("job REJECTED at intake", record["status"] == "REJECTED", record["status"])
    result.check(
        "with a structured error",
        rejection.get("code") == "INVALID_PARAMS" and rejection.get("errors"),
        rejection,
    )
    raw = rejection.get("rawUri", "")
    if result.check("raw input kept in S3", raw.startswith("s3://"), raw):
        bucket, key = raw.removeprefix("s3://").split("/", 1)
        body = ctx.harness.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
        result.check("the raw input is the message sent", json.loads(body).get("jobId") == job["jobId"])
    result.check("no execution started", ctx.harness.execution(job["jobId"]) is None)


EVIDENCE_FILES = {
    "trace.zip": "trace",
    "failure-screenshot.png": "failure-screenshot",
    "console.json": "console",
    "network.json": "network",
}


def evidence(ctx: Context, result: ScenarioResult) -> None:
    """A click waits for a button the page never shows: the job FAILS with Job.StepTimeout, and its artifact
    prefix holds what the page looked like (trace, screenshot, console, network). Its completion event is
    checked on a stack of its own (tests/e2e/test_completion_events.py)."""
    steps: list[dict[str, Any]] = [
        {"goto": {"url": f"{ctx.site_url}/"}},
        {"click": {"selector": "#checkout", "timeoutMs": 2000}},
    ]
    job = ctx.job("evidence", steps)
    ctx.harness.submit(job)
    record = ctx.run(job, "evidence", result)
    error = record.get("error") or {}
    result.check("job FAILED", record["status"] == "FAILED", record["status"])
    result.check("with Job.StepTimeout", error.get("Error") == ErrorName.STEP_TIMEOUT, error.get("Error"))
    cause = json.loads(error.get("Cause") or "{}")
    listed = {entry["name"]: entry["kind"] for entry in cause.get("artifacts", [])}
    result.check("the cause lists the evidence", listed == EVIDENCE_FILES, listed)
    files = _artifacts(ctx, job["jobId"])
    result.check(
        "all four are in the job's artifact prefix", set(EVIDENCE_FILES) <= set(files), sorted(files)
    )
    if "trace.zip" in files:
        with zipfile.ZipFile(io.BytesIO(files["trace.zip"])) as trace:
            events = [json.loads(line) for line in trace.read("trace.trace").splitlines() if line]
        clicks = [
            e["params"].get("selector")
            for e in events
            if e.get("type") == "before" and e.get("method") == "click"
        ]
        result.check("the trace holds the click that waited", clicks == ["#checkout"], clicks)
    if "failure-screenshot.png" in files:
        shot = files["failure-screenshot.png"]
        result.check("the failure screenshot is a PNG", shot.startswith(b"\x89PNG"), len(shot))
    if "console.json" in files:
        texts = [m["text"] for m in json.loads(files["console.json"])["messages"]]
        result.check(
            "the console log holds the page's message", "sample shop ready: 3 products" in texts, texts
        )
    if "network.json" in files:
        requests = json.loads(files["network.json"])["requests"]
        page = [r for r in requests if r["url"] == f"{ctx.site_url}/"]
        result.check(
            "the network log holds the page load, no headers",
            page and page[0]["status"] == 200 and "headers" not in page[0],
            page,
        )


def _artifacts(ctx: Context, job_id: str) -> dict[str, bytes]:
    """The files under the job's artifact prefix, by name."""
    s3, bucket = ctx.harness.client("s3"), ctx.harness.outputs["ArtifactsBucketName"]
    prefix = f"jobs/{job_id}/artifacts/"
    listed = s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])
    return {
        item["Key"].removeprefix(prefix): s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read()
        for item in listed
    }


SCENARIOS: list[tuple[str, str, Callable[[Context, ScenarioResult], None]]] = [
    ("success", "a job extracts data and takes a screenshot", success),
    ("wait", "two jobs on one lockKey: the second waits", wait_for_lock),
    ("interrupt", "a job interrupts the one holding its lock", interrupt),
    ("burst", "a burst beyond the rate limit waits for tokens", burst),
    ("timeout", "a worker stops heartbeating: timeout, stop, release, DLQ", heartbeat_timeout),
    ("crash", "a worker crashes: failed within seconds", crash),
    ("retry", "a site answers 503 twice: retried, and it succeeds; a 404 is not retried", site_retry),
    ("ratelimit", "a site answers 429 with Retry-After: 3: the job waits, then succeeds", site_rate_limit),
    ("breaker", "a site is down: its breaker holds eight jobs, lets them go once it is back", site_breaker),
    ("invalid", "invalid input is rejected and recorded", invalid_input),
    (
        "evidence",
        "a click waits for a button that never appears: FAILED, with its trace and evidence",
        evidence,
    ),
    ("pool", "six pool jobs: the pool scales out, runs them in warm browsers, scales back in", pool_burst),
    ("pool-crash", "a pool task dies with jobs in flight: they fail over within seconds", pool_crash),
    ("pool-spot", "a Spot interruption: the short job finishes in the drain, the long one moves", pool_spot),
    ("pool-hang", "a pool task hangs: its health check fails, ECS replaces it, the job moves", pool_hang),
]


def run_scenario(name: str, ctx: Context) -> ScenarioResult:
    title, function = next((t, f) for n, t, f in SCENARIOS if n == name)
    result = ScenarioResult(name, title)
    started = time.monotonic()
    try:
        function(ctx, result)
    except (Deadline, AssertionError, KeyError) as error:
        result.check("completed", False, f"{type(error).__name__}: {error}")
    result.seconds = round(time.monotonic() - started, 2)
    return result
