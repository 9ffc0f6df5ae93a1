"""Sweep speed: design points per second for MobileNetV2 through ``codesign.sweep``.

The whole user-visible path is timed: space enumeration and sampling, process-pool start-up,
evaluation (analytic engine by default: the fast path of ``codesign.sim.fastpath``, numpy over
the points of a chunk, where it models the points; ``fast_path`` in the results says whether it
did), journaling every finished point, the Pareto front and the Parquet file. Goals (issue 11):
10,000 points in <= 10 s on a 2-core machine with the fixed mapping, <= 60 s with
``--mapping search``. With one worker the sweep runs in this process, so ``cpu_points_per_s``
(points per second of CPU time) does not depend on what else the machine runs.

    python bench/sweep.py [--points 10000] [--workers 1 2] [--engine analytic|simpy]
                          [--mapping fixed|search] [--check 20] [--out bench/results/sweep.csv]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

# 3 dataflows x 8 x 8 arrays x 3 x 2 bit-widths x 4 bandwidths x 2 SRAM sizes x 2 zero handlings = 18,432
SPACE = {
    "workloads": ["mobilenet_v2"],
    "axes": {
        "dataflow": ["ws", "os", "is"],
        "rows": {"start": 8, "stop": 64, "step": 8},
        "cols": {"start": 8, "stop": 64, "step": 8},
        "weight_bits": [2, 4, 8],
        "act_bits": [4, 8],
        "dram_bytes_per_cycle": [4, 8, 16, 32],
        "input_sram_bytes": [32768, 65536],
        "zero_handling": ["none", "gate"],
    },
    "clip_bits": True,  # INT8 MobileNetV2 on 2- and 4-bit arrays: clipped, and the rows say so
}


def check_rows(df: Any, space: Any, count: int, seed: int) -> int:
    """Compare ``count`` random points of the sweep's table with the point-by-point path's rows
    (``codesign.sweeps.evaluation._WorkerState.point_rows``: each layer through the engine's closed form),
    every column; returns how many were compared. Not timed."""
    import random

    from codesign.sweeps.evaluation import _WorkerState

    state = _WorkerState(space.to_dict())
    table = df.drop(columns=["pareto"]).set_index("point")
    for p in random.Random(seed).sample(sorted(table.index), min(count, len(table))):
        got = {k: (v.item() if hasattr(v, "item") else v) for k, v in table.loc[p].items()}
        want = {k: v for k, v in state.point_rows(int(p))[0].items() if k != "point"}
        if got != want:
            bad = {k: (got.get(k), want[k]) for k in want if got.get(k) != want[k]}
            raise SystemExit(f"point {p}: the sweep's row differs from the point-by-point path's: {bad}")
    return min(count, len(table))


def run(points: int, workers: int, engine: str, seed: int, mapping: str = "fixed", check: int = 0
        ) -> dict[str, object]:
    from codesign.sim.fastpath import declines
    from codesign.space import DesignSpace
    from codesign.sweeps import sweep

    space = DesignSpace.from_dict({**SPACE, "base": {"mapping": mapping}})
    fast = engine == "analytic" and not declines(space.config(0))
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "results.parquet"
        load = os.getloadavg()[0]
        t0, c0 = time.perf_counter(), time.process_time()
        df = sweep(space, workers=workers, output=out, sample=points, seed=seed, engine=engine)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        size_kb = out.stat().st_size / 1024
    n = df["point"].nunique()
    checked = check_rows(df, space.with_(sample=points, seed=seed, engine=engine), check, seed) if check else 0
    return {
        "network": "mobilenet_v2", "engine": engine, "mapping": mapping, "fast_path": fast, "workers": workers,
        "points": n,
        "wall_s": round(wall, 2), "points_per_s": round(n / wall, 1),
        "s_per_10k_points": round(wall / n * 10_000, 1), "pareto_points": int(df["pareto"].sum()),
        "parquet_kb": round(size_kb, 1),
        # with 1 worker the sweep runs in this process: its CPU time is the whole cost, which
        # does not depend on what else the machine runs
        "cpu_points_per_s": round(n / cpu, 1) if workers == 1 else None,
        "load_avg_before": round(load, 2),
        "rows_checked_equal_point_by_point": checked,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--points", type=int, default=10_000, help="sampled design points (default 10000)")
    ap.add_argument("--workers", type=int, nargs="+", default=[os.cpu_count() or 1])
    ap.add_argument("--engine", default="analytic", choices=["analytic", "simpy"])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--mapping", default="fixed", choices=["fixed", "search"])
    ap.add_argument("--check", type=int, default=20,
                    help="points compared, every column, with the point-by-point path after the timed run")
    ap.add_argument("--out", default="bench/results/sweep.csv")
    args = ap.parse_args()
    rows = []
    print(f"{'engine':9s} {'workers':>7s} {'points':>7s} {'wall_s':>8s} {'points/s':>9s} {'s/10k':>7s} "
          f"{'pareto':>6s} {'cpu pts/s':>9s} {'load':>5s}")
    for w in args.workers:
        row = run(args.points, w, args.engine, args.seed, args.mapping, args.check)
        rows.append(row)
        print(f"{row['engine']:9s} {w:7d} {row['points']:7d} {row['wall_s']:8.2f} {row['points_per_s']:9.1f} "
              f"{row['s_per_10k_points']:7.1f} {row['pareto_points']:6d} "
              f"{row['cpu_points_per_s'] or '-':>9} {row['load_avg_before']:5.2f}")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    import csv

    with open(out, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    meta = {"machine": platform.machine(), "cpus": os.cpu_count(), "python": platform.python_version(),
            "goal": "10,000 points <= 10 s (fixed), <= 60 s (search)",
            "load_note": "2 cores shared with other jobs", "space_axes": list(SPACE["axes"]), "rows": rows}
    out.with_suffix(".json").write_text(json.dumps(meta, indent=2) + "\n")
    print(f"wrote {out} and {out.with_suffix('.json')}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
