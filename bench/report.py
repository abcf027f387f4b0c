"""bench/RESULTS.md from one run: the machine, the targets, then every section's tables and notes."""

from __future__ import annotations

from typing import Any


def markdown(report: dict[str, Any]) -> str:
    lines = [
        "# Benchmark results",
        "",
        "Written by `make bench` (`.venv/bin/python -m bench`; `--quick` for fewer runs, `--only` for some "
        "sections). Medians with their spread over repeated runs; raw numbers in out/bench/results.json. "
        "What was changed to improve these numbers, with before and after, is in bench/OPTIMIZATIONS.md; "
        "the monthly cost model is explained in docs/COST.md.",
        "",
        f"- command: `{report['command']}`{' (quick: fewer runs)' if report['quick'] else ''}",
        f"- run: {report['started']}, {report['seconds']} s",
        f"- load average (1/5/15 min) before: {report['load_before']}; after: {report['load_after']}",
        "",
        "| machine | |",
        "|---|---|",
        *[f"| {key} | {value} |" for key, value in report["machine"].items()],
        "",
        "## Targets",
        "",
        "| target | measured | met |",
        "|---|---|---|",
    ]
    for section in report["sections"]:
        for target in section.targets:
            lines.append(f"| {target.name} | {target.measured} | {'yes' if target.met else '**no**'} |")
    for section in report["sections"]:
        lines += ["", f"## {section.title}", "", f"`{section.command}` ({section.seconds:.0f} s)", ""]
        for table in section.tables:
            lines += [table.markdown(), ""]
        lines += [f"- {note}" for note in section.notes]
    return "\n".join(lines) + "\n"
