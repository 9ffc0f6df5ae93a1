"""``codesign sweep space.yaml``: evaluate a design space, write one row per (point, workload)."""

from __future__ import annotations

import argparse
import signal
import sys


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
    p.add_argument("--scheduler", default=None, metavar="tcp://host:port|local",
                   help="run on a Dask cluster: the address of a running `dask scheduler`, or local to start "
                        "a LocalCluster of --workers processes")
    p.add_argument("--pareto", default=None, metavar="M1,M2[,M3]",
                   help="metrics of the Pareto front, minimized (default latency_ms,energy_pj)")
    p.add_argument("--engine", type=engine_arg, default=None, metavar="{closed_form,simpy}",
                   help="simulator: closed_form (the SimPy engine's closed-form twin; alias analytic; default "
                        "unless the space names one) or simpy (the reference)")
    p.add_argument("--include-model-only", action="store_true",
                   help="rank every point on the Pareto front, also those codesign generate does not build "
                        "(buildable false; default: the front is over buildable points only)")
    p.add_argument("--clip-bits", action="store_true",
                   help="run workload operands wider than a point's weight_bits/act_bits at the array's bits "
                        "(column clipped) instead of refusing the sweep; same as clip_bits: true in the space")
    p.add_argument("--chunk", type=_positive, default=None, metavar="N", help="points per task")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def engine_arg(text: str) -> str:
    """``closed_form`` or ``simpy``; ``analytic`` is another name of ``closed_form``."""
    from codesign.space import ENGINE_ALIASES, ENGINES

    name = ENGINE_ALIASES.get(text, text)
    if name not in ENGINES:
        raise argparse.ArgumentTypeError(f"must be closed_form (alias analytic) or simpy, not {text!r}")
    return name


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
    from codesign.errors import ConfigError
    from codesign.space import DesignSpace
    from codesign.sweeps import check_output, parse_scheduler, run_sweep

    out = check_output(args.output)  # before the space is read or anything evaluated
    if args.scheduler is not None:
        address = parse_scheduler(args.scheduler)
        if address is not None and args.workers is not None:
            raise ConfigError(f"--workers {args.workers} has no effect with --scheduler {args.scheduler}: the "
                              f"cluster's workers run the sweep; drop one of them")
    space = DesignSpace.from_yaml(args.space)
    if args.seed is not None and args.sample is None and space.sample is None:
        raise ConfigError(f"--seed {args.seed} has no effect without --sample (or a sample section): every "
                          f"feasible point is evaluated")
    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        run = run_sweep(space, workers=args.workers, output=out, resume=args.resume, sample=args.sample,
                        seed=args.seed, scheduler=args.scheduler, engine=args.engine, pareto=args.pareto,
                        chunk_size=args.chunk, progress=not args.no_progress,
                        clip_bits=args.clip_bits or None, include_model_only=args.include_model_only or None)
    finally:
        signal.signal(signal.SIGTERM, previous)
    resumed = f" ({run.resumed_points} resumed, {run.evaluated_points} evaluated)" if args.resume else ""
    over = "all points" if run.meta.get("space", {}).get("include_model_only") else "buildable points"
    print(f"{run.points} points x {len(run.workloads)} workloads -> {run.rows} rows{resumed}, "
          f"{run.front} on the Pareto front ({','.join(run.pareto)}, over {over}); wrote {out}", file=sys.stderr)
    return 0


def _terminate(signum: int, frame: object) -> None:
    """SIGTERM: unwind (the pool's workers are killed on the way out, the journal kept), exit 143."""
    raise SystemExit(128 + signum)
