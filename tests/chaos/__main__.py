"""python -m tests.chaos [--jobs N] [--seed S]: a chaos run outside pytest, with its summary table.

Exits 0 when every job is accounted for and no invariant broke; the details go to out/chaos/.
"""

from __future__ import annotations

import argparse
import shutil
import sys

from tests.conftest import ROOT

from .report import table, write_json
from .run import CI_JOBS, DEFAULT_IN_FLIGHT, configured_in_flight, configured_seed, configured_size, run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.chaos", description=__doc__)
    parser.add_argument(
        "--jobs", type=int, default=configured_size(), help=f"default: $CHAOS_JOBS or {CI_JOBS}"
    )
    parser.add_argument("--seed", type=int, default=configured_seed(), help="default: $CHAOS_SEED or fixed")
    parser.add_argument(
        "--in-flight",
        type=int,
        default=configured_in_flight(),
        help=f"jobs delivered and not ended at once (default: $CHAOS_IN_FLIGHT or {DEFAULT_IN_FLIGHT})",
    )
    args = parser.parse_args(argv)
    out = ROOT / "out" / "chaos"
    logs = out / f"logs-{args.jobs}"
    shutil.rmtree(logs, ignore_errors=True)
    report = run(args.jobs, args.seed, logs, args.in_flight, say=lambda line: print(line, flush=True))
    print(table(report), flush=True)
    write_json(report, out / f"chaos-{args.jobs}.json")
    print(f"details: {out / f'chaos-{args.jobs}.json'}; logs of functions and workers: {logs}/")
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
