"""The retry policy is data: docs/CONTRACTS.md's "Retries by error class" table is what RunBrowserTask's
Retry does. Step Functions takes Retry's fields as literals only (ASL "Retry": IntervalSeconds, MaxAttempts,
BackoffRate, MaxDelaySeconds, JitterStrategy; https://states-language.net/#retrying-after-error), so the
numbers live in statemachines/job.asl.json and this test keeps the table and the workflow in step."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[3]
ASL = json.loads((ROOT / "statemachines" / "job.asl.json").read_text())
CONTRACTS = (ROOT / "docs" / "CONTRACTS.md").read_text()


def documented_rows() -> dict[frozenset[str], tuple[int, list[float]]]:
    """{error names: (retries, the delays' bounds in seconds)} from the table's rows."""
    section = CONTRACTS.split("### Retries by error class", 1)[1]
    table = section[section.index("\n|") + 1 :].split("\n\n", 1)[0].splitlines()[2:]  # no header, no rule
    rows: dict[frozenset[str], tuple[int, list[float]]] = {}
    for line in table:
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        names = frozenset(re.findall(r"`([A-Za-z.]+)`", cells[0]))
        retries = 0 if cells[1] == "never" else int(cells[1])
        delays = [float(d) for d in re.findall(r"\d+(?:\.\d+)?", cells[2])]
        rows[names] = (retries, delays)
    return rows


def workflow_rows() -> dict[frozenset[str], tuple[int, list[float]]]:
    rows = {}
    for rule in ASL["States"]["RunBrowserTask"]["Retry"]:
        interval, delays = rule.get("IntervalSeconds", 1), []
        for _ in range(rule.get("MaxAttempts", 3)):
            delays.append(min(interval, rule.get("MaxDelaySeconds", interval)))
            interval *= rule.get("BackoffRate", 2.0)
        rows[frozenset(rule["ErrorEquals"])] = (rule.get("MaxAttempts", 3), delays)
    return rows


def test_the_documented_retries_are_the_workflows():
    documented = documented_rows()
    retried = {names: row for names, row in documented.items() if row[0] > 0}
    assert retried == workflow_rows()


def test_errors_the_table_says_are_never_retried_are_not():
    never = [names for names, (retries, _) in documented_rows().items() if retries == 0]
    assert never, "the table lists no error that is never retried"
    retried = {name for rule in ASL["States"]["RunBrowserTask"]["Retry"] for name in rule["ErrorEquals"]}
    assert not set().union(*never) & retried
