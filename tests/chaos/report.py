"""The summary of a chaos run: one table for the terminal and the docs, and a JSON file with the details."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from .plan import OUTAGE_FAILED_LOADS, PARAMETERS, Role
from .run import ChaosReport


def rows(report: ChaosReport) -> list[tuple[str, str]]:
    findings = report.findings
    figures = findings.figures
    roles = Counter(job.role for job in report.plan)
    outcomes = ", ".join(f"{status} {count}" for status, count in sorted(findings.outcomes.items()))
    faults = ", ".join(f"{kind} {count}" for kind, count in sorted(report.injected.items()))
    duplicates = roles[Role.DUPLICATE_MESSAGE] + roles[Role.DUPLICATE_DERIVED] + roles[Role.DIRECT_AND_QUEUE]
    return [
        (
            "jobs",
            f"{len(report.plan)}, {report.in_flight} in flight at most "
            f"({report.deliveries} deliveries; seed {report.seed})",
        ),
        ("lockKeys / rateKeys that ran", f"{figures['lock_keys']} / {figures['rate_keys']}"),
        ("stack parameters", ", ".join(f"{k}={v}" for k, v in PARAMETERS.items())),
        (
            "duplicated deliveries",
            f"{duplicates} jobs delivered twice or more (SQS redeliveries: "
            + ", ".join(f"{when} {count}" for when, count in sorted(report.redelivered.items()))
            + ")",
        ),
        ("invalid inputs", str(roles[Role.INVALID])),
        ("faults injected", faults or "none"),
        (
            "AWS failures injected by the endpoint",
            f"{report.aws_faults}: "
            + (", ".join(f"{name} {count}" for name, count in sorted(report.aws_injected.items())) or "none"),
        ),
        ("outcomes", outcomes),
        (
            "executions / ECS tasks / DLQ messages",
            f"{figures['executions']} / {figures['tasks']} / {figures['dead_letters']}",
        ),
        (
            "claims / THROTTLED / AT_CAPACITY / lock waits",
            f"{figures['claims']} / {figures['throttled_claims']} / {figures['at_capacity_claims']} "
            f"/ {figures['locked_checks']}",
        ),
        (
            "claim latency (claim's read to CLAIMED), median / max",
            f"{figures['claim_latency_seconds']['median']} s / {figures['claim_latency_seconds']['max']} s",
        ),
        ("lost", str(len(findings.lost))),
        ("unexpected outcomes", str(len(findings.unexpected))),
        ("duplicated (executions, tasks, DLQ)", str(len(findings.duplicated))),
        ("not submitted (strays)", str(len(findings.strays))),
        ("double claims", str(len(findings.double_claims))),
        ("capacity violations", str(len(findings.capacity_violations))),
        ("rate violations", str(len(findings.rate_violations))),
        ("leaked locks / slots", str(len(findings.leaked_leases))),
        ("tasks not stopped", str(len(findings.tasks_not_stopped))),
        (
            "leaked processes (after the run / after teardown)",
            f"{len(findings.leaked_processes)} / {len(report.processes_after_teardown)}",
        ),
        (
            "longest overlap of two workers' processes on one lockKey",
            f"{figures['worker_overlap_seconds']} s",
        ),
        (
            "site outage: loads that reached it (failed, then one per job)",
            f"{figures['outage_site_loads']} ({OUTAGE_FAILED_LOADS} failed)",
        ),
        ("run problems (deliveries, missed faults, deadlines)", str(len(report.harness_problems))),
        ("duration", f"{report.seconds:.0f} s (stack start {report.stack_start_seconds:.1f} s)"),
    ]


def table(report: ChaosReport) -> str:
    lines = rows(report)
    width = max(len(name) for name, _ in lines)
    body = "\n".join(f"  {name:<{width}}  {value}" for name, value in lines)
    verdict = "PASSED" if report.ok else "FAILED"
    details = []
    for name, found in {
        **report.findings.problems(),
        "run problems": report.harness_problems,
        "processes after teardown": report.processes_after_teardown,
    }.items():
        if found:
            details.append(f"  {name}:")
            details += [f"    - {line}" for line in found[:20]]
            if len(found) > 20:
                details.append(f"    ... and {len(found) - 20} more")
    return "\n".join([f"chaos run {verdict}", body, *details])


def write_json(report: ChaosReport, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    document = {
        "ok": report.ok,
        "summary": dict(rows(report)),
        "problems": {
            **report.findings.problems(),
            "run": report.harness_problems,
            "processesAfterTeardown": report.processes_after_teardown,
        },
        "jobs": [
            {
                "jobId": job.job_id,
                "role": str(job.role),
                "delivery": str(job.delivery),
                "lockKey": job.lock_key,
                "rateKey": job.rate_key,
                "faults": job.faults,
            }
            for job in report.plan
        ],
        "timeline": report.timeline,
    }
    path.write_text(json.dumps(document, indent=2) + "\n")
