"""The runbook and troubleshooting pages against the template and themselves: every alarm has its
section, every link inside the docs lands on a heading, every shell block says where it runs."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.conftest import ROOT, template

from .doc_blocks import DOCS, anchor, read_blocks, shell_blocks

pytestmark = pytest.mark.unit

RUNBOOK_LINK = re.compile(r"docs/RUNBOOK\.md#(?P<anchor>[\w-]+)")
MARKDOWN_LINK = re.compile(r"\]\((?P<file>[\w./-]*?)(?:#(?P<anchor>[\w-]+))?\)")
ALARM_SECTIONS = {
    "the-composite-alarm",
    "intake-partial-failures",
    "job-dlq-not-empty",
    "intake-dlq-not-empty",
    "intake-backlog",
    "executions-failing",
    "heartbeat-timeouts",
    "function-errors",
    "a-breaker-is-open",
}


def anchors_of(path: Path) -> set[str]:
    return {anchor(heading) for heading in read_blocks(path)[1]}


def test_every_alarm_links_to_a_runbook_section_that_exists() -> None:
    alarms = {
        name: resource["Properties"]["AlarmDescription"]
        for name, resource in template()["Resources"].items()
        if resource["Type"] in ("AWS::CloudWatch::Alarm", "AWS::CloudWatch::CompositeAlarm")
    }
    linked = {name: RUNBOOK_LINK.search(description) for name, description in alarms.items()}
    assert all(linked.values()), f"alarms without a runbook link: {[n for n, m in linked.items() if not m]}"
    sections = anchors_of(ROOT / "docs" / "RUNBOOK.md")
    assert {match["anchor"] for match in linked.values() if match} <= sections
    assert sections >= ALARM_SECTIONS


@pytest.mark.parametrize("doc", DOCS, ids=lambda path: path.name)
def test_every_link_between_the_docs_lands_on_a_heading(doc: Path) -> None:
    broken = []
    for match in MARKDOWN_LINK.finditer(doc.read_text(encoding="utf-8")):
        target = (doc.parent / match["file"]) if match["file"] else doc
        if match["file"].startswith("http") or target.suffix != ".md":
            continue
        if not target.is_file():
            broken.append(f"{match['file']} does not exist")
        elif match["anchor"] and match["anchor"] not in anchors_of(target):
            broken.append(f"{match['file'] or doc.name}#{match['anchor']}")
    assert broken == []


def test_every_shell_block_says_where_it_runs() -> None:
    blocks = shell_blocks()
    assert len(blocks) > 20
    unmarked = [block.name for block in blocks if not block.marks & {"local", "aws"}]
    assert unmarked == []
    assert [block.doc for block in blocks if block.is_setup] == ["RUNBOOK.md", "TROUBLESHOOTING.md"]
    assert all(block.runs_locally for block in blocks if block.is_setup)


def test_a_block_inside_a_list_item_is_read_without_its_indent(tmp_path: Path) -> None:
    doc = tmp_path / "doc.md"
    doc.write_text("# Title\n\n- item:\n\n  ```sh local\n  echo one\n    echo two\n  ```\n\n## Next\n")
    blocks, headings = read_blocks(doc)
    assert headings == ["Title", "Next"]
    assert [(b.heading, b.marks, b.text, b.line) for b in blocks] == [
        ("Title", frozenset({"local"}), "echo one\n  echo two", 5)
    ]


def test_comments_inside_blocks_are_not_headings(tmp_path: Path) -> None:
    doc = tmp_path / "doc.md"
    doc.write_text("# Real\n\n```sh aws\n# a comment\n```\n")
    assert read_blocks(doc)[1] == ["Real"]


@pytest.mark.parametrize(
    ("heading", "expected"),
    [
        ("Job DLQ not empty", "job-dlq-not-empty"),
        ("The egress guard blocks a site", "the-egress-guard-blocks-a-site"),
    ],
)
def test_anchors_are_the_ones_github_makes(heading: str, expected: str) -> None:
    assert anchor(heading) == expected
