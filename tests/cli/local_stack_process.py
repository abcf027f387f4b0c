"""The embedded local stack (template, state machine, handlers, worker) in a process of its own.

Its own process keeps its moto state and runtime hooks apart from the operator stack's in the tests.
"""

from __future__ import annotations

import select
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SERVE = """
import sys
from browserjobs.emulator.stack import LocalStack
with LocalStack.start(port=0) as stack:
    print(stack.endpoint_url, stack.stack_name, flush=True)
    sys.stdin.read()  # serve until the test closes stdin
"""


@dataclass(frozen=True)
class RunningStack:
    url: str
    name: str


@contextmanager
def local_stack_process(log: Path, start_deadline: float = 120) -> Iterator[RunningStack]:
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("wb") as errors:
        process = subprocess.Popen(
            [sys.executable, "-c", SERVE],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=errors,
        )
        try:
            ready, _, _ = select.select([process.stdout], [], [], start_deadline)
            line = process.stdout.readline().decode().split() if ready else []
            if len(line) != 2:
                raise RuntimeError(f"the local stack did not start within {start_deadline}s; see {log}")
            yield RunningStack(url=line[0], name=line[1])
        finally:
            process.stdin.close()
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
