"""``codesign report``: plots and an HTML page from a sweep table or a simulate result."""

from __future__ import annotations

import argparse
import sys


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "report",
        help="PNG/SVG plots and index.html from sweep results or a simulate result",
        description="From a sweep table (.parquet/.csv): Pareto scatter, energy breakdown, Pareto table, and "
        "per-layer plots plus roofline of one design (re-simulated). From a simulate result (.json): the "
        "per-layer plots and roofline.",
    )
    p.add_argument("source", metavar="results.parquet|result.json", help="sweep table or simulate result")
    p.add_argument("-o", "--output", default="report", metavar="DIR", help="output directory (default: report)")
    p.add_argument("--point", type=int, default=None, metavar="ID",
                   help="design point for the per-layer plots (default: the Pareto point of least EDP; the front is "
                        "over buildable points unless --include-model-only)")
    p.add_argument("--workload", default=None, metavar="NAME",
                   help="workload of the per-layer plots (default: the first)")
    p.add_argument("--include-model-only", action="store_true",
                   help="rank every point on the Pareto front and choose the design among them, also those "
                        "codesign generate does not build (default: the sweep's front, over buildable points)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from codesign.report import report

    index = report(args.source, args.output, point=args.point, workload=args.workload,
                   progress=not args.no_progress, include_model_only=args.include_model_only)
    print(f"wrote {index}", file=sys.stderr)
    return 0
