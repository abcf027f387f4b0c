"""The chaos run: CHAOS_JOBS jobs (30 by default, the size `make test` runs) with duplicate deliveries,
invalid input, killed, hung, aborted and Spot-interrupted workers, a site that goes down and comes back, all
at once on one local stack; then
every invariant is checked from the real stores (audit.py).

    CHAOS_JOBS=200 CHAOS_IN_FLIGHT=20 .venv/bin/python -m pytest -m chaos tests/chaos   # larger, by hand
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import ROOT

from .plan import FAULTS, OUTAGE_FAILED_LOADS, Role
from .report import table, write_json
from .run import configured_in_flight, configured_seed, configured_size, deadline_seconds, run

SIZE = configured_size()
# The jobs' own deadline, plus the stack, the audit and the teardown.
TEST_TIMEOUT_SECONDS = deadline_seconds(SIZE) + 240

pytestmark = [pytest.mark.chaos, pytest.mark.timeout(TEST_TIMEOUT_SECONDS)]


def test_every_job_is_accounted_for_once_and_no_invariant_breaks(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report = run(SIZE, configured_seed(), tmp_path / "logs", configured_in_flight(), say=lambda line: None)
    write_json(report, ROOT / "out" / "chaos" / f"chaos-{SIZE}.json")
    with capsys.disabled():
        print("\n" + table(report))

    assert report.findings.problems() == {}
    assert report.harness_problems == []
    assert report.processes_after_teardown == []
    # The run proves something only if every fault really happened and every kind of end was reached.
    faulted = {job.role for job in report.plan if job.faults}
    assert faulted == set(FAULTS), f"faults that never landed: {set(FAULTS) - faulted}"
    roles = [job.role for job in report.plan]
    assert report.injected["SIGTERM (Spot notice)"] == roles.count(Role.SPOT_ONCE) + 2 * roles.count(
        Role.SPOT_TWICE
    )
    assert {"SUCCEEDED", "FAILED", "TIMED_OUT", "REJECTED"} <= set(report.findings.outcomes)
    assert report.findings.figures["throttled_claims"] > 0, "no claim was ever throttled: rates untested"
    assert report.findings.figures["at_capacity_claims"] > 0, "never at capacity: the cap is untested"
    # Pool jobs ran on the pool service's tasks, which scaled back in (no task left RUNNING: audited).
    assert report.findings.figures["pool_tasks"] > 0, "no pool task ran: the pool is untested"
    assert roles.count(Role.INVALID) >= 4
    # The site that went down: its failed loads, then exactly one good load per job (the audit saw them all
    # SUCCEEDED); while its breaker was open, no other load reached it.
    outage_jobs = roles.count(Role.SITE_OUTAGE)
    assert report.findings.figures["outage_site_loads"] == OUTAGE_FAILED_LOADS + outage_jobs
    # The endpoint's AWS failures (CHAOS_AWS_FAULTS) really happened, and the run still lost nothing.
    if report.aws_faults != "no faults":
        assert sum(report.aws_injected.values()) > 0, f"no AWS failure was injected ({report.aws_faults})"
    assert report.findings.lost == []
