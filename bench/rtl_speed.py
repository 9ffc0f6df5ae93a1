"""RTL simulation speed: cycles/s of the generated accelerator on Icarus (cocotb, no Python in the
loop while computing), for 8x8 and 16x16 arrays; whole MobileNetV2 1x1 layers from DRAM on the
whole-layer accelerator (8x8, through the AXI memory model); the wall time of the RTL test tier.

    .venv/bin/python bench/rtl_speed.py [--skip-tier] [--skip-gemm] [--out bench/results]

Writes ``rtl_speed.csv`` and ``rtl_speed.json`` (on-chip GEMM engine) and ``rtl_layer_speed.csv``
and ``rtl_layer_speed.json`` (whole layers) into the output folder.
"""

from __future__ import annotations

import argparse
import csv
import json
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from codesign.hdl.plan import HardwarePlan
from codesign.hdl.rtl_runner import build, run_job
from codesign.hdl.top import load_layout
from codesign.sim.config import AcceleratorConfig
from codesign.sim.timing import native_gemm_cycles

CASES = [  # (rows, cols, dataflow, M, N, K)
    (8, 8, "ws", 128, 32, 64),
    (8, 8, "os", 64, 32, 128),
    (16, 16, "ws", 128, 32, 64),
    (16, 16, "os", 64, 32, 128),
]


def measure(rows: int, cols: int, dataflow: str, m: int, n: int, k: int) -> dict[str, object]:
    from amaranth.hdl import Shape

    cfg = AcceleratorConfig(rows=rows, cols=cols, dataflow=dataflow, zero_handling="gate")
    plan = HardwarePlan(cfg)
    plan.check_fits(m, n, k)
    t0 = time.perf_counter()
    build(cfg)
    build_s = time.perf_counter() - t0
    rng = np.random.default_rng(0)
    a = rng.integers(-128, 128, (m, k))
    b = rng.integers(-128, 128, (k, n))
    act, wt = plan.pack_operands(a, b)
    lay = load_layout(plan)
    job = {
        "tiles": [{"m": m, "n": n, "k": k, "act": [f"{w:x}" for w in act], "weight": [f"{w:x}" for w in wt],
                   "out_words": plan.words(m, n, k)[2]}],
        "seed": 0, "idle": 0.0, "stall": 0.0,
        "load_layout": {"data": Shape.cast(lay["data"].shape).width, "addr": Shape.cast(lay["addr"].shape).width},
    }
    with tempfile.TemporaryDirectory() as tmp:
        t1 = time.perf_counter()
        res = run_job(cfg, job, Path(tmp))
        total_s = time.perf_counter() - t1
    tile = res["tiles"][0]
    c = plan.unpack_outputs([int(w, 16) for w in tile["out"]], m, n)
    assert np.array_equal(c, a @ b), "RTL outputs differ from numpy"
    assert tile["cycles"] == native_gemm_cycles(cfg, m, n, k)
    return {
        "array": f"{rows}x{cols}", "dataflow": dataflow, "m": m, "n": n, "k": k,
        "rtl_cycles": tile["cycles"],
        "run_wall_s": round(tile["run_wall_s"], 3),
        "rtl_cycles_per_s": round(tile["cycles"] / tile["run_wall_s"]),
        "load_words": tile["load_words"], "load_wall_s": round(tile["load_wall_s"], 3),
        "load_words_per_s": round(tile["load_words"] / tile["load_wall_s"]),
        "read_words": tile["out_words"], "read_wall_s": round(tile["read_wall_s"], 3),
        "build_s_incl_cache": round(build_s, 2), "job_wall_s": round(total_s, 2),
    }


LAYER_CASES = ("block6.project", "block3.project", "block13.project")  # MobileNetV2 1x1 layers, full size


def measure_layer(name: str) -> dict[str, object]:
    """A whole MobileNetV2 1x1 layer on the 8x8 WS whole-layer accelerator, 16 KiB buffers, through the
    AXI memory model (16 bytes/cycle, 100 cycles latency): outputs and cycles checked, wall time."""
    from codesign.hdl.rtl_runner import build_layer, depth_bucket
    from codesign.hdl.verify import verify

    cfg = AcceleratorConfig(rows=8, cols=8, dataflow="ws", input_sram_bytes=16384, weight_sram_bytes=16384,
                            output_sram_bytes=32768)
    t0 = time.perf_counter()
    build_layer(cfg, depth_bucket(1 << 16))  # the build is cached; time the run alone
    build_s = time.perf_counter() - t0
    t1 = time.perf_counter()
    (r,) = verify(cfg, workload="mobilenet_v2", layer=name)
    wall = time.perf_counter() - t1
    assert r.ok, r.to_dict()
    return {"layer": f"mobilenet_v2.{name}", "array": "8x8", "dataflow": "ws", "m": r.m, "n": r.n, "k": r.k,
            "tiles": r.tiles, "rtl_cycles": r.rtl_cycles, "sim_cycles": r.sim_cycles,
            "stall_cycles": r.rtl_stall_cycles, "dram_read_bytes": r.rtl_dram_read_bytes,
            "verify_wall_s": round(wall, 1), "rtl_cycles_per_s": round(r.rtl_cycles / wall),
            "build_s_incl_cache": round(build_s, 1)}


def tier_wall_s(markers: str) -> float:
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "pytest", "-q", "-n", "2", "-m", markers, "tests/rtl", "tests/hdl"],
                   check=True, stdout=subprocess.DEVNULL)
    return round(time.perf_counter() - t0, 1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(Path(__file__).parent / "results"))
    ap.add_argument("--skip-tier", action="store_true", help="do not time the RTL/HDL test tiers")
    ap.add_argument("--skip-gemm", action="store_true", help="only the whole-layer cases")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    layer_rows = []
    for name in LAYER_CASES:
        layer_rows.append(measure_layer(name))
        print(layer_rows[-1], flush=True)
    with open(out / "rtl_layer_speed.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(layer_rows[0]))
        w.writeheader()
        w.writerows(layer_rows)
    (out / "rtl_layer_speed.json").write_text(json.dumps(
        {"machine": {"python": platform.python_version(), "cpus": __import__("os").cpu_count(),
                     "load_1min": round(__import__("os").getloadavg()[0], 2)},
         "cases": layer_rows}, indent=2) + "\n")
    if args.skip_gemm:
        return
    rows = []
    for case in CASES:
        rows.append(measure(*case))
        print(rows[-1], flush=True)
    with open(out / "rtl_speed.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    summary: dict[str, object] = {
        "machine": {"python": platform.python_version(), "cpus": __import__("os").cpu_count()},
        "cases": rows,
    }
    if not args.skip_tier:
        summary["tier_wall_s"] = {"rtl+hdl, -m 'not slow', -n 2": tier_wall_s("not slow")}
        print(summary["tier_wall_s"])
    (out / "rtl_speed.json").write_text(json.dumps(summary, indent=2) + "\n")


if __name__ == "__main__":
    main()
