"""``codesign sweep space.yaml``: evaluate a design space, write one row per (point, workload)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "sweep",
        help="sweep a design space (YAML) and mark the Pareto front",
        description="Evaluate every point of a design space on every workload (local process pool, or a "
        "Dask cluster with --scheduler). Finished points are journaled next to the output, so an "
        "interrupted sweep continues with --resume.",
    )
    p.add_argument("space", metavar="space.yaml", help="design space: workloads, axes, constraints")
    p.add_argument("-o", "--output", default="results.parquet", metavar="results.parquet",
                   help="results table, .parquet or .csv (default: results.parquet)")
    p.add_argument("--workers", type=_positive, default=None, metavar="N",
                   help="local worker processes (default: CPU count; 1 runs in this process)")
    p.add_argument("--sample", type=_positive, default=None, metavar="N",
                   help="evaluate a seeded random subset of N feasible points")
    p.add_argument("--seed", type=_natural, default=None, metavar="S", help="seed of --sample (default 0)")
    p.add_argument("--resume", action="store_true", help="continue an interrupted sweep into the same output")
    p.add_argument("--scheduler", default=None, metavar="tcp://host:port",
                   help="run on an existing Dask distributed scheduler")
    p.add_argument("--pareto", default=None, metavar="M1,M2[,M3]",
                   help="metrics of the Pareto front, minimized (default latency_ms,energy_pj)")
    p.add_argument("--engine", choices=("analytic", "simpy"), default=None,
                   help="simulator: analytic (closed-form twin, default) or simpy (reference)")
    p.add_argument("--chunk", type=_positive, default=None, metavar="N", help="points per task")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def _positive(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        v = 0
    if v < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, not {text!r}")
    return v


def _natural(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        v = -1
    if v < 0:
        raise argparse.ArgumentTypeError(f"must be a non-negative integer, not {text!r}")
    return v


def run(args: argparse.Namespace) -> int:
    from codesign.space import DesignSpace
    from codesign.sweep import sweep

    space = DesignSpace.from_yaml(args.space)
    out = Path(args.output)
    df = sweep(space, workers=args.workers, output=out, resume=args.resume, sample=args.sample,
               seed=args.seed, scheduler=args.scheduler, engine=args.engine, pareto=args.pareto,
               chunk_size=args.chunk, progress=not args.no_progress)
    front = int(df["pareto"].sum())
    metrics = ",".join(df.attrs["codesign"]["pareto"])
    points = df["point"].nunique()
    info = df.attrs["codesign"]
    resumed = f" ({info['resumed_points']} resumed, {info['evaluated_points']} evaluated)" if args.resume else ""
    print(f"{points} points x {df['workload'].nunique()} workloads -> {len(df)} rows{resumed}, "
          f"{front} on the Pareto front ({metrics}); wrote {out}", file=sys.stderr)
    return 0
