"""One chaos run: a fresh local stack and sample site, every job delivered at once, faults injected while
they run, then everything read back from the stores and checked (audit.py).

    python -m tests.chaos --jobs 300          # or CHAOS_JOBS=300 pytest -m chaos tests/chaos
"""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from browserjobs.emulator.stack import LocalStack
from browserjobs.testing.harness import Deadline, Harness, poll
from browserjobs.testing.sample_site.server import SampleSite

from .audit import TERMINAL, Findings, Stores, audit, double_runs, job_timeline, worker_overlap_seconds
from .deliver import Deliverer
from .faults import FaultInjector
from .plan import AWS_FAULTS, PARAMETERS, PlannedJob, Role, make_plan, outage_site
from .processes import stack_processes, task_processes
from .records import read_jobs

CI_JOBS = 30
DEFAULT_SEED = 20_260_101
PROGRESS_SECONDS = 15
# Jobs in flight at once (delivered and not ended): all of a CI-size run. Far beyond it the local stack on
# 2 cores spends its time starting Lambda environments for the claims of the waiting jobs (275 cold starts
# of the claim function in 6 minutes with 200 at once) and claims overrun their 10 s timeout, so larger
# runs are fed at this depth (CHAOS_IN_FLIGHT; lower it on a loaded machine).
DEFAULT_IN_FLIGHT = 40
TASKS_STOP_SECONDS = 60
TEARDOWN_SECONDS = 30


def configured_size() -> int:
    return int(os.environ.get("CHAOS_JOBS", CI_JOBS))


def configured_seed() -> int:
    return int(os.environ.get("CHAOS_SEED", DEFAULT_SEED))


def configured_in_flight() -> int:
    return int(os.environ.get("CHAOS_IN_FLIGHT", DEFAULT_IN_FLIGHT))


def configured_aws_faults() -> str:
    """CHAOS_AWS_FAULTS (LOCAL_FAULTS' syntax), else the plan's modest AWS_FAULTS."""
    return os.environ.get("CHAOS_AWS_FAULTS", AWS_FAULTS)


def deadline_seconds(size: int) -> float:
    """How long the jobs may take: about 4 s each on 2 cores (four browsers at once, faults, waits)."""
    return 150 + 6 * size


@dataclass
class ChaosReport:
    size: int
    seed: int
    in_flight: int
    plan: list[PlannedJob]
    deliveries: int
    redelivered: Counter[str]
    injected: Counter[str]
    findings: Findings
    aws_faults: str = ""
    aws_injected: Counter[str] = field(default_factory=Counter)
    harness_problems: list[str] = field(default_factory=list)
    timeline: dict[str, dict[str, Any]] = field(default_factory=dict)
    processes_after_teardown: list[str] = field(default_factory=list)
    seconds: float = 0.0
    stack_start_seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not (self.findings.problems() or self.harness_problems or self.processes_after_teardown)


def _run_jobs(
    harness: Harness,
    deliverer: Deliverer,
    plan: list[PlannedJob],
    in_flight: int,
    timeout: float,
    say: Callable[[str], None],
) -> None:
    """Deliver the jobs `in_flight` at a time (all at once up to that size), then wait until all ended."""
    deadline = time.monotonic() + timeout
    next_report = time.monotonic() + PROGRESS_SECONDS
    pending = _outage_first(harness, deliverer, plan)
    delivered = [job for job in plan if job not in pending]
    while True:
        job_ids = [job.job_id for job in delivered if job.job_id]
        statuses = {job_id: r["status"] for job_id, r in read_jobs(harness, job_ids, "status").items()}
        open_jobs = [job_id for job_id in job_ids if statuses.get(job_id) not in TERMINAL]
        room = in_flight - len(open_jobs)
        if pending and room > 0:
            batch, pending = pending[:room], pending[room:]
            deliverer.deliver_all(batch)
            delivered += batch
            continue
        if not pending and not open_jobs:
            return
        if time.monotonic() >= deadline:
            raise Deadline(f"{len(open_jobs) + len(pending)} job(s) not ended within {timeout:.0f}s")
        if time.monotonic() >= next_report:
            counts = Counter(statuses.get(job_id, "no record") for job_id in job_ids)
            say(f"   {len(job_ids) - len(open_jobs)}/{len(plan)} ended: {dict(sorted(counts.items()))}")
            next_report += PROGRESS_SECONDS
        time.sleep(1.0)


def _outage_first(harness: Harness, deliverer: Deliverer, plan: list[PlannedJob]) -> list[PlannedJob]:
    """Deliver the outage's jobs and wait until each holds a slot (RUNNING) or ended; the rest is returned.
    Their loads together, not one job's retries alone, are to open the site's breaker: the other jobs,
    delivered at once, would take the capacity slots first now and then (Lambda's five intake pollers start
    their executions together)."""
    outage = [job for job in plan if job.role is Role.SITE_OUTAGE]
    if outage:
        deliverer.deliver_all(outage)
        ids = [job.job_id for job in outage if job.job_id]

        def claimed() -> bool | None:
            records = read_jobs(harness, ids, "status").values()
            done = [r for r in records if r["status"] == "RUNNING" or r["status"] in TERMINAL]
            return len(done) == len(ids) or None

        poll("the outage's jobs claiming their slots", claimed, 60)
    return [job for job in plan if job not in outage]


def _wait_for_tasks_to_stop(harness: Harness, endpoint_url: str) -> None:
    """Tasks end a moment after their job: the worker closes its browser and exits after its callback."""
    ecs, cluster = harness.client("ecs"), harness.outputs["ClusterArn"]
    poll(
        "every task STOPPED and no worker process left",
        lambda: (
            not ecs.list_tasks(cluster=cluster, desiredStatus="RUNNING")["taskArns"]
            and not task_processes(endpoint_url)
        ),
        TASKS_STOP_SECONDS,
        interval=0.5,
    )


def run(
    size: int,
    seed: int,
    log_dir: Path,
    in_flight: int = DEFAULT_IN_FLIGHT,
    say: Callable[[str], None] = print,
) -> ChaosReport:
    started = time.monotonic()
    problems: list[str] = []
    with (
        SampleSite() as site,
        LocalStack.start(
            port=0,
            parameter_overrides=PARAMETERS,
            log_dir=log_dir,
            say=lambda _: None,
            faults_spec=configured_aws_faults(),
            faults_seed=seed,
        ) as stack,
    ):
        endpoint = stack.endpoint_url
        harness = Harness.for_endpoint(stack.stack_name, endpoint)
        plan = make_plan(size, seed, site.url)
        started_in = stack.timings.total_seconds
        say(f"== chaos: {size} jobs, {in_flight} at a time (seed {seed}), stack up in {started_in:.1f}s")
        say(f"   AWS failures injected by the endpoint: {stack.faults.describe()}")
        injector = FaultInjector(stack, harness, plan, seed)
        injector.start()
        deliverer = Deliverer(harness, seed)
        try:
            _run_jobs(harness, deliverer, plan, in_flight, deadline_seconds(size), say)
        except Deadline as error:
            problems.append(str(error))
        injector.stop()
        try:
            _wait_for_tasks_to_stop(harness, endpoint)
        except Deadline as error:
            problems.append(str(error))
        stores = Stores.read(harness, endpoint)
        findings = audit(plan, stores)
        findings.double_runs = double_runs(plan, stores, site.loads)
        findings.figures["outage_site_loads"] = len(site.loads(outage_site(f"chaos{seed}")))
        findings.figures["worker_overlap_seconds"] = round(
            worker_overlap_seconds(stores.tasks, {job.job_id: job for job in plan if job.job_id}), 2
        )
        seconds = time.monotonic() - started
        stack_start = stack.timings.total_seconds
        aws_faults, aws_injected = stack.faults.describe(), Counter(stack.faults.injected)
    report = ChaosReport(
        size=size,
        seed=seed,
        in_flight=in_flight,
        plan=plan,
        deliveries=deliverer.deliveries,
        redelivered=deliverer.redelivered,
        injected=injector.injected,
        findings=findings,
        aws_faults=aws_faults,
        aws_injected=aws_injected,
        harness_problems=problems + deliverer.problems + injector.errors + injector.missed,
        seconds=round(seconds, 1),
        stack_start_seconds=round(stack_start, 1),
        timeline=job_timeline(stores),
    )
    try:
        poll("the stack's processes to end", lambda: not stack_processes(endpoint), TEARDOWN_SECONDS, 0.5)
    except Deadline:
        report.processes_after_teardown = [
            f"pid {p.pid}: {' '.join(p.command)[:120]}" for p in stack_processes(endpoint)
        ]
    return report
