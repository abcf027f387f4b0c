"""What every benchmark shares: summaries of repeated runs, result tables, progress lines, the machine."""

from __future__ import annotations

import os
import platform
import re
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from browserjobs.emulator.settings import worker_chromium

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "out" / "bench"


def say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def progress(label: str, index: int, total: int, detail: str = "") -> None:
    say(f"   [{index}/{total}] {label}" + (f": {detail}" if detail else ""))


@dataclass(frozen=True)
class Spread:
    """A median with its spread over repeated runs."""

    runs: int
    median: float
    p10: float
    p90: float
    low: float
    high: float

    @classmethod
    def of(cls, samples: list[float]) -> Spread:
        if not samples:
            raise ValueError("no samples")
        ordered = sorted(samples)
        if len(ordered) == 1:
            p10 = p90 = ordered[0]
        else:
            deciles = statistics.quantiles(ordered, n=10, method="inclusive")
            p10, p90 = deciles[0], deciles[-1]
        return cls(len(ordered), statistics.median(ordered), p10, p90, ordered[0], ordered[-1])

    def cells(self, digits: int = 0) -> list[str]:
        """median, p10-p90, min-max, runs: the columns every timing table uses."""
        fmt = f"{{:.{digits}f}}"
        return [
            f"**{fmt.format(self.median)}**",
            f"{fmt.format(self.p10)}-{fmt.format(self.p90)}",
            f"{fmt.format(self.low)}-{fmt.format(self.high)}",
            str(self.runs),
        ]


SPREAD_COLUMNS = ["median", "p10-p90", "min-max", "runs"]


@dataclass
class Table:
    title: str
    columns: list[str]
    rows: list[list[str]] = field(default_factory=list)

    def markdown(self) -> str:
        lines = [f"**{self.title}**", "", "| " + " | ".join(self.columns) + " |"]
        lines.append("|" + "---|" * len(self.columns))
        lines += ["| " + " | ".join(row) + " |" for row in self.rows]
        return "\n".join(lines)


@dataclass(frozen=True)
class Target:
    name: str
    measured: str
    met: bool


@dataclass
class Section:
    name: str
    title: str
    command: str
    tables: list[Table] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    targets: list[Target] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0


def timed_ms(call: Callable[[], Any]) -> float:
    started = time.perf_counter()
    call()
    return (time.perf_counter() - started) * 1000


def _cpu_model() -> str:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or platform.machine()
    match = re.search(r"^model name\s*:\s*(.+)$", text, re.MULTILINE)
    return match.group(1).strip() if match else platform.machine()


def _memory_gib() -> str:
    try:
        text = Path("/proc/meminfo").read_text()
    except OSError:
        return "?"
    match = re.search(r"^MemTotal:\s*(\d+) kB", text, re.MULTILINE)
    return f"{int(match.group(1)) / 1024 / 1024:.1f} GiB" if match else "?"


def chromium_version(path: str) -> str:
    try:
        out = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.TimeoutExpired) as error:
        return f"unavailable ({error})"
    return out.strip() or "unknown"


def _version(package: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(package)
    except PackageNotFoundError:
        return "not installed"


def load_average() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} / {five:.2f} / {fifteen:.2f}"


def machine() -> dict[str, str]:
    chromium = worker_chromium()
    return {
        "CPU": f"{_cpu_model()} ({platform.machine()})",
        "cores": str(os.cpu_count()),
        "memory": _memory_gib(),
        "OS": f"{platform.system()} {platform.release()}",
        "Python": f"{platform.python_version()} ({sys.executable})",
        "Chromium": f"{chromium_version(chromium)} ({chromium})",
        "Playwright": _version("playwright"),
        "moto": _version("moto"),
        "boto3 / botocore": f"{_version('boto3')} / {_version('botocore')}",
    }
