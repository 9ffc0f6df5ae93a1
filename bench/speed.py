"""Simulator speed: wall time and peak RSS of ``codesign.simulate`` per network, array and dataflow.

Each measurement runs in a fresh process (cold caches), so the time includes mapping, the SimPy
engine and the cost model, but not the Python imports. Goals (issue 2): ResNet-50 at 32x32
<= 1 s, MobileNetV2 <= 0.2 s, peak RSS <= 300 MB.

    python bench/speed.py [--engine simpy|closed_form] [--mapping fixed|search] [--networks resnet50 ...]
                          [--arrays 8 32 128] [--out bench/results/speed.csv]

With ``--mapping search`` every GEMM layer's tiling is searched (objective EDP); goal (issue 11):
ResNet-50 at 32x32 <= 1 s.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import resource
import sys
import time
from pathlib import Path

NETWORKS = ("resnet50", "mobilenet_v2")
ARRAYS = (8, 32, 128)
DATAFLOWS = ("ws", "os", "is")


def _measure(args: tuple[str, int, str, str, str], queue: mp.Queue) -> None:
    name, size, df, engine, mapping = args
    import codesign
    from codesign.sim.engine import simulate_network
    from codesign.workloads import zoo

    net = zoo.get(name)
    cfg = codesign.AcceleratorConfig(rows=size, cols=size, dataflow=df, mapping=mapping)
    t0 = time.perf_counter()
    try:
        r = simulate_network(net, cfg, engine=engine)
    except codesign.ConfigError as e:  # e.g. default buffers too small for a slot of a large array
        queue.put({"network": name, "array": f"{size}x{size}", "dataflow": df, "engine": engine,
                   "mapping": mapping, "error": str(e)})
        return
    wall = time.perf_counter() - t0
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    queue.put({"network": name, "array": f"{size}x{size}", "dataflow": df, "engine": engine, "mapping": mapping,
               "wall_s": round(wall, 4), "peak_rss_mb": round(rss_mb, 1), "cycles": r.cycles,
               "tiles": sum(layer.tiles for layer in r.layers), "utilization": round(r.utilization, 4)})


def _result(q: mp.Queue, p: mp.process.BaseProcess) -> dict:
    """The measuring process's row; a process that dies without one is an error, not a hang."""
    import queue

    while True:
        try:
            return q.get(timeout=1.0)
        except queue.Empty:
            if not p.is_alive():
                raise SystemExit(f"speed.py: the measuring process exited with status {p.exitcode}") from None


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--engine", default="simpy", choices=["simpy", "closed_form"])
    ap.add_argument("--mapping", default="fixed", choices=["fixed", "search"])
    ap.add_argument("--networks", nargs="+", default=list(NETWORKS))
    ap.add_argument("--arrays", nargs="+", type=int, default=list(ARRAYS))
    ap.add_argument("--out", default="bench/results/speed.csv")
    args = ap.parse_args()
    ctx = mp.get_context("spawn")
    rows = []
    print(f"{'network':14s} {'array':8s} {'df':3s} {'wall_s':>8s} {'rss_MB':>7s} {'cycles':>12s} {'util':>6s}")
    for name in args.networks:
        for size in args.arrays:
            for df in DATAFLOWS:
                q: mp.Queue = ctx.Queue()
                p = ctx.Process(target=_measure, args=((name, size, df, args.engine, args.mapping), q))
                p.start()
                row = _result(q, p)
                p.join()
                if "error" in row:
                    print(f"{name:14s} {row['array']:8s} {df:3s} skipped: {row['error']}")
                    continue
                rows.append(row)
                print(f"{name:14s} {row['array']:8s} {df:3s} {row['wall_s']:8.3f} {row['peak_rss_mb']:7.1f} "
                      f"{row['cycles']:12,d} {row['utilization']:6.3f}")
    import pandas as pd

    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    df = pd.DataFrame(rows)
    df.to_csv(out, index=False)
    out.with_suffix(".json").write_text(json.dumps(rows, indent=2))
    goals = {
        "resnet50_32x32_max_wall_s": float(df[(df.network == "resnet50") & (df.array == "32x32")].wall_s.max()),
        "mobilenet_v2_max_wall_s": float(df[df.network == "mobilenet_v2"].wall_s.max()),
        "max_peak_rss_mb": float(df.peak_rss_mb.max()),
    } if {"resnet50", "mobilenet_v2"} <= set(df.network) and "32x32" in set(df.array) else {}
    print(json.dumps(goals))
    print(f"wrote {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
