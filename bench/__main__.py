"""python -m bench [--quick] [--only a,b] [--output FILE]: run the benchmarks and write bench/RESULTS.md.

Sections: browser (Chromium launch, per-job overhead, memory), tracing (what the Playwright trace costs a
trivial job: off, on-failure, always), coldstart (Lambda handlers, package size),
orchestration (transitions and Lambda calls per job, and the monthly cost model built on them), failure
(crash and hang detection), pipeline (end-to-end latency and throughput), dispatch (task mode and pool
mode side by side). The last five share one local stack. Raw numbers go to out/bench/results.json.
"""

from __future__ import annotations

import argparse
import datetime
import json
import sys
import time
from dataclasses import asdict
from pathlib import Path

from bench import browser, coldstart, cost, dispatch, failure, orchestration, pipeline, tracing
from bench.common import OUT, ROOT, Section, load_average, machine, say
from bench.report import markdown

STACK_SECTIONS = {
    "coldstart": coldstart.run,
    "orchestration": orchestration.run,
    "failure": failure.run,
    "pipeline": pipeline.run,
    "dispatch": dispatch.run,
}
ORDER = ["browser", "tracing", *STACK_SECTIONS]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer runs (a few minutes); for a check")
    parser.add_argument("--only", default=",".join(ORDER), help=f"comma-separated, from: {', '.join(ORDER)}")
    parser.add_argument("--output", type=Path, default=ROOT / "bench" / "RESULTS.md")
    args = parser.parse_args(argv)
    chosen = [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = sorted(set(chosen) - set(ORDER))
    if unknown:
        parser.error(f"unknown sections: {', '.join(unknown)}")
    command = "python -m bench " + " ".join(argv if argv is not None else sys.argv[1:])
    started_at = datetime.datetime.now(datetime.UTC)
    load_before = load_average()
    say(f"== bench: {', '.join(chosen)}{' (quick)' if args.quick else ''}; load average {load_before}")
    sections: list[Section] = []
    started = time.monotonic()

    def timed_section(name: str, call) -> None:
        say(f"== {name}")
        began = time.monotonic()
        load_at_start = load_average()
        section = call()
        section.seconds = time.monotonic() - began
        section.notes.append(
            f"Load average (1/5/15 min) at the start of this section: {load_at_start}; "
            f"at its end: {load_average()}."
        )
        say(f"   {name} done in {section.seconds:.0f}s")
        sections.append(section)

    if "browser" in chosen:
        timed_section("browser", lambda: browser.run(args.quick))
    if "tracing" in chosen:
        timed_section("tracing", lambda: tracing.run(args.quick))
    if any(name in STACK_SECTIONS for name in chosen):
        from bench.stack import running

        with running() as bs:
            for name, run in STACK_SECTIONS.items():
                if name in chosen:
                    timed_section(name, lambda run=run: run(bs, args.quick))
    counted = next((s for s in sections if s.name == "orchestration"), None)
    if counted is not None:
        sections.append(cost.run(counted.data))
    report = {
        "command": command.strip(),
        "quick": args.quick,
        "started": started_at.isoformat(timespec="seconds"),
        "seconds": round(time.monotonic() - started),
        "load_before": load_before,
        "load_after": load_average(),
        "machine": machine(),
        "sections": sections,
    }
    args.output.write_text(markdown(report))
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "results.json").write_text(
        json.dumps({**report, "sections": [asdict(s) for s in sections]}, indent=2, default=str)
    )
    say(f"== done in {report['seconds']}s; wrote {args.output} and {OUT / 'results.json'}")
    for section in sections:
        for target in section.targets:
            say(f"   [{'met' if target.met else 'MISSED'}] {target.name}: {target.measured}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
