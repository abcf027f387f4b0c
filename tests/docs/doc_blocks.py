"""The shell blocks of the operations docs, as the tests read them.

A fenced block's info string says what it is: ` ```sh local` runs against the local stack (the tests
run it), ` ```sh local setup` also runs before every later block of its document (variables, the stack's
outputs), ` ```sh aws` needs a real AWS account and is only read.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from tests.conftest import ROOT

DOCS = (ROOT / "docs" / "RUNBOOK.md", ROOT / "docs" / "TROUBLESHOOTING.md")
SHELLS = {"sh", "bash", "shell", "console"}
FENCE = re.compile(r"^(?P<indent>\s*)```(?P<info>[^`]*)$")
HEADING = re.compile(r"^#{1,6}\s+(?P<title>.+?)\s*$")


@dataclass(frozen=True)
class Block:
    doc: str
    line: int  # of the opening fence, 1-based
    heading: str
    language: str
    marks: frozenset[str]
    text: str

    @property
    def name(self) -> str:
        return f"{self.doc}:{self.line} ({self.heading})"

    @property
    def runs_locally(self) -> bool:
        return "local" in self.marks

    @property
    def is_setup(self) -> bool:
        return "setup" in self.marks


def read_blocks(path: Path) -> tuple[list[Block], list[str]]:
    """(the fenced blocks, the headings) of a Markdown document, in order."""
    lines = path.read_text(encoding="utf-8").splitlines()
    blocks: list[Block] = []
    headings: list[str] = []
    index = 0
    while index < len(lines):
        fence = FENCE.match(lines[index])
        if fence is None:
            if heading := HEADING.match(lines[index]):
                headings.append(heading["title"])
            index += 1
            continue
        indent, words, opened = fence["indent"], fence["info"].split(), index
        body = []
        index += 1
        while index < len(lines) and lines[index].strip() != "```":
            body.append(lines[index].removeprefix(indent))
            index += 1
        index += 1  # the closing fence
        if words:
            heading = headings[-1] if headings else ""
            blocks.append(
                Block(path.name, opened + 1, heading, words[0], frozenset(words[1:]), "\n".join(body))
            )
    return blocks, headings


def anchor(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped, spaces as hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower().replace("`", ""))
    return text.replace(" ", "-")


def shell_blocks() -> list[Block]:
    return [block for doc in DOCS for block in read_blocks(doc)[0] if block.language in SHELLS]
