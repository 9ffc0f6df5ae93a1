"""RTL simulation speed, Verilator beside Icarus: the same whole layers through the whole-layer
accelerator and the AXI memory model (no Python in the loop while a layer runs) on both simulators.

    .venv/bin/python bench/rtl_speed.py [--sizes 4 8 16 32] [--simulators verilator icarus]
                                        [--cli] [--network mobilenet_v2 --network-size 16] [--out bench/results]

Per array size (WS, INT8, default 64 KiB buffers, 16 B/cycle, latency 100) and simulator: the cold
build time (a fresh cache folder), simulated cycles/s of the run alone (the bench's own clock around
the layer), the verify call's wall time, and Verilator's speed-up over Icarus. The layer is MobileNetV2
``block11.project`` at full size (M=196, N=96, K=576: 176 k cycles on 8x8). Both simulators must give
the same counters and outputs, and equal the simulator's (asserted).

``--cli`` times the acceptance command end to end (a fresh process, build cached):
``codesign verify --workload mobilenet_v2 --layer block11.project --rows 8 --cols 8 --simulator S --json``.
``--network NET`` verifies every layer of NET at full size on ``--network-size`` (Verilator), once.

Writes ``rtl_speed.csv``/``rtl_speed.json`` (and ``rtl_network.json`` with ``--network``) into ``--out``.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from codesign.sim.config import AcceleratorConfig

LAYER = ("mobilenet_v2", "block11.project")


def _config(size: int) -> AcceleratorConfig:
    return AcceleratorConfig(rows=size, cols=size, dataflow="ws")


def measure(size: int, simulator: str, cache: Path) -> dict[str, object]:
    from codesign.hdl.bench import runner
    from codesign.hdl.verify import verify

    os.environ["CODESIGN_CACHE_DIR"] = str(cache)
    cfg = _config(size)
    t0 = time.perf_counter()
    (first,) = verify(cfg, workload=LAYER[0], layer=LAYER[1], simulator=simulator)  # builds (cold), then runs
    cold_s = time.perf_counter() - t0
    key = runner.design_key(cfg, runner._LAYER_SOURCES)
    bdirs = sorted((cache / "rtl").glob(f"layer-{key}-d*-{runner.toolchain_tag(simulator)}"))
    build_s = runner.build_seconds(bdirs[-1]) if bdirs else None
    if simulator == "icarus":  # its build takes about a second: one run measures it (slow at 16x16 and up)
        r, warm_s = first, cold_s - (build_s or 0.0)
    else:
        t1 = time.perf_counter()
        (r,) = verify(cfg, workload=LAYER[0], layer=LAYER[1], simulator=simulator)  # build cached
        warm_s = time.perf_counter() - t1
    assert r.ok and first.to_dict() | {"wall_s": 0} == r.to_dict() | {"wall_s": 0}, r.to_dict()
    return {"array": f"{size}x{size}", "simulator": simulator, "layer": ".".join(LAYER), "rtl_cycles": r.rtl_cycles,
            "build_s": build_s, "verify_cold_s": round(cold_s, 2), "verify_warm_s": round(warm_s, 2),
            "rtl_cycles_per_s_end_to_end": round(r.rtl_cycles / warm_s),
            "counters": {k: v for k, v in r.to_dict().items() if k.startswith(("rtl_", "outputs_match"))}}


def cli_seconds(simulator: str, cache: Path) -> tuple[float, dict[str, object]]:
    exe = Path(sys.executable).parent / "codesign"
    cmd = [str(exe), "verify", "--workload", LAYER[0], "--layer", LAYER[1], "--rows", "8", "--cols", "8",
           "--simulator", simulator, "--json"]
    env = {**os.environ, "CODESIGN_CACHE_DIR": str(cache)}
    subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL)  # build (cached afterwards)
    t0 = time.perf_counter()
    out = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True).stdout
    return round(time.perf_counter() - t0, 2), json.loads(out)


def network(net: str, size: int, cache: Path) -> dict[str, object]:
    from codesign.hdl.verify import verify

    os.environ["CODESIGN_CACHE_DIR"] = str(cache)
    t0 = time.perf_counter()
    results = verify(_config(size), workload=net, simulator="verilator",
                     on_layer=lambda i, rec: print(f"  layer {i + 1}: {rec['cycles']} cycles", flush=True))
    wall = time.perf_counter() - t0
    return {"network": net, "array": f"{size}x{size}", "simulator": "verilator", "layers": len(results),
            "all_ok": all(r.ok for r in results), "outputs_match": all(r.outputs_match for r in results),
            "rtl_cycles": sum(r.rtl_cycles for r in results), "sim_cycles": sum(r.sim_cycles for r in results),
            "wall_s": round(wall, 1), "machine_cpus": os.cpu_count(), "load_1min": round(os.getloadavg()[0], 2)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[4, 8, 16, 32])
    ap.add_argument("--simulators", nargs="+", default=["verilator", "icarus"])
    ap.add_argument("--cli", action="store_true", help="time the acceptance CLI command on both simulators")
    ap.add_argument("--network", help="verify every layer of this network at full size (Verilator)")
    ap.add_argument("--network-size", type=int, default=16)
    ap.add_argument("--out", default=str(Path(__file__).parent / "results"))
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    machine = {"python": platform.python_version(), "cpus": os.cpu_count(), "load_1min": round(os.getloadavg()[0], 2)}
    with tempfile.TemporaryDirectory(prefix="codesign-rtl-speed-") as tmp:
        cache = Path(tmp)
        if args.network:
            res = network(args.network, args.network_size, cache)
            print(res)
            (out / "rtl_network.json").write_text(json.dumps({"machine": machine, **res}, indent=2) + "\n")
            return
        rows = []
        for size in args.sizes:
            by_sim = {}
            for sim in args.simulators:
                row = measure(size, sim, cache)
                by_sim[sim] = row
                rows.append(row)
                print({k: v for k, v in row.items() if k != "counters"}, flush=True)
            if {"verilator", "icarus"} <= set(by_sim):
                assert by_sim["verilator"]["counters"] == by_sim["icarus"]["counters"], "simulators disagree"
                ratio = round(float(by_sim["icarus"]["verify_warm_s"]) / float(by_sim["verilator"]["verify_warm_s"]),
                              1)
                for row in by_sim.values():
                    row["icarus_over_verilator"] = ratio
        summary: dict[str, object] = {"machine": machine, "cases": rows}
        if args.cli:
            cli = {}
            for sim in args.simulators:
                secs, res = cli_seconds(sim, cache)
                cli[sim] = {"wall_s": secs, "ok": res["ok"],
                            "counters": {k: v for k, v in res["layers"][0].items() if k.startswith("rtl_")}}
                print(sim, cli[sim], flush=True)
            if {"verilator", "icarus"} <= set(cli):
                assert cli["verilator"]["counters"] == cli["icarus"]["counters"]
                cli["icarus_over_verilator"] = round(cli["icarus"]["wall_s"] / cli["verilator"]["wall_s"], 1)
            summary["cli_8x8_block11_project"] = cli
    flat = [{k: v for k, v in r.items() if k != "counters"} for r in rows]
    with open(out / "rtl_speed.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(flat[0]))
        w.writeheader()
        w.writerows(flat)
    (out / "rtl_speed.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(f"wrote {out / 'rtl_speed.csv'}")


if __name__ == "__main__":
    main()
