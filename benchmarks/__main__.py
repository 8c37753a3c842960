"""``python -m benchmarks run [--quick | --size 100k | --size 1m] [--cases a,b,...]``."""

from __future__ import annotations

import os

# One BLAS thread: numpy's exact search is timed per query like one PostgreSQL backend, and on a
# small shared machine OpenBLAS threads spinning against each other distort it. Set before numpy loads.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse
import asyncio
import sys
from pathlib import Path

from benchmarks.common import Sizes
from benchmarks.runner import ALL_CASES, run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("run", help="run the benchmarks, write results/<date>-<size>.json and RESULTS.md")
    group = p.add_mutually_exclusive_group()
    group.add_argument("--quick", action="store_true", help="20k rows, small samples: under five minutes")
    group.add_argument("--size", default=None, help="rows in the shared table: 2k, 100k (default), 1m")
    p.add_argument("--cases", default=",".join(ALL_CASES), help=f"comma-separated subset of {','.join(ALL_CASES)}")
    p.add_argument("--ingest", type=int, default=None, help="insights written in case c (default 10,000; quick 500)")
    p.add_argument("--out", type=Path, default=None, help="folder for the JSON (default benchmarks/results)")
    p.add_argument("--results-md", type=Path, default=None, help="RESULTS.md to update (default benchmarks/RESULTS.md)")
    p.add_argument("--no-results-md", action="store_true", help="write the JSON only")
    args = parser.parse_args(argv)

    cases = [c.strip() for c in args.cases.split(",") if c.strip()]
    unknown = sorted(set(cases) - set(ALL_CASES))
    if unknown:
        parser.error(f"unknown case(s) {', '.join(unknown)}; known: {', '.join(ALL_CASES)}")
    sizes = Sizes.parse(args.size, args.quick, args.ingest)
    md = None if args.no_results_md else (args.results_md or Path(__file__).parent / "RESULTS.md")
    asyncio.run(run(sizes, cases, out_dir=args.out, results_md=md))
    return 0


if __name__ == "__main__":
    sys.exit(main())
