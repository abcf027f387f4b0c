"""`make demo`: a fresh local stack, the sample site, every scenario, a table and a report under out/.

Exits 0 only if every scenario behaved as expected; the stack and every process it started are stopped
either way.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from browserjobs.core.project import project_dir
from browserjobs.emulator.stack import LocalStack
from browserjobs.testing.harness import Harness
from browserjobs.testing.sample_site.server import SampleSite
from browserjobs.testing.scenarios import PARAMETERS, SCENARIOS, Context, ScenarioResult, run_scenario


def say(line: str) -> None:
    print(line, flush=True)


def table(results: list[ScenarioResult]) -> str:
    rows = [("scenario", "job", "role", "status", "seconds", "error")]
    for result in results:
        for job in result.jobs:
            seconds = f"{job.seconds:.1f}" if job.seconds is not None else "-"
            rows.append((result.name, job.job_id, job.role, job.status, seconds, job.error))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)) for row in rows]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)


def markdown(report: dict) -> str:
    lines = [
        "# Demo report",
        "",
        f"Result: **{'all scenarios passed' if report['ok'] else 'FAILED'}** in {report['seconds']:.0f}s "
        f"(stack started in {report['measurements']['stack_start_seconds']:.1f}s).",
        "",
        "| scenario | result | seconds | checks |",
        "|---|---|---|---|",
    ]
    for scenario in report["scenarios"]:
        failed = [
            c["name"] + (f" ({c['detail']})" if c["detail"] else "")
            for c in scenario["checks"]
            if not c["ok"]
        ]
        checks = "; ".join(failed) if failed else f"{len(scenario['checks'])} passed"
        verdict = "ok" if scenario["ok"] else "FAILED"
        lines.append(
            f"| {scenario['name']}: {scenario['title']} | {verdict} | {scenario['seconds']:.1f} | {checks} |"
        )
    lines += ["", "## Measurements", ""]
    lines += [f"- {key}: {value}" for key, value in report["measurements"].items()]
    lines += ["", "## Jobs", "", "```", report["table"], "```", ""]
    return "\n".join(lines)


def run(port: int = 0, out: Path | None = None, parameters: dict[str, str] | None = None) -> int:
    """The demo on a fresh stack; `parameters` (LOCAL_PARAMETERS) override the scenarios' own."""
    out = out or project_dir() / "out"
    started = time.monotonic()
    results: list[ScenarioResult] = []
    say("== starting the local stack (template, state machine, functions, worker) ...")
    overrides = {**PARAMETERS, **(parameters or {})}
    with SampleSite() as site, LocalStack.start(port=port, parameter_overrides=overrides, say=say) as stack:
        assert stack.timings is not None  # LocalStack.start has brought the stack up
        stack_start = stack.timings.total_seconds
        say(f"   up at {stack.endpoint_url} in {stack_start:.1f}s; sample site at {site.url}")
        say(f"   tasks start in {stack.task_start_seconds:g}s; AWS faults: {stack.faults.describe()}")
        ctx = Context(stack, Harness.for_endpoint(stack.stack_name, stack.endpoint_url), site.url)
        for name, title, _ in SCENARIOS:
            say(f"== {name}: {title}")
            result = run_scenario(name, ctx)
            for check in result.checks:
                mark = "ok " if check.ok else "FAIL"
                say(f"   [{mark}] {check.name}" + ("" if check.ok else f": {check.detail}"))
            say(f"   {'passed' if result.ok else 'FAILED'} in {result.seconds:.1f}s")
            results.append(result)
    measurements = {"stack_start_seconds": round(stack_start, 2)}
    for result in results:
        measurements.update(result.measurements)
    report: dict[str, Any] = {
        "ok": all(result.ok for result in results),
        "seconds": round(time.monotonic() - started, 1),
        "measurements": measurements,
        "scenarios": [{**asdict(result), "ok": result.ok} for result in results],
        "table": table(results),
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / "demo-report.json").write_text(json.dumps(report, indent=2, default=str) + "\n")
    (out / "demo-report.md").write_text(markdown(report))
    say("")
    say(report["table"])
    say("")
    for key, value in measurements.items():
        say(f"{key}: {value}")
    verdict = "all scenarios passed" if report["ok"] else "SOME SCENARIOS FAILED"
    say(f"\n{verdict} in {report['seconds']:.0f}s; report: {out / 'demo-report.md'}")
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(run())
