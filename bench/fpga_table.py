"""FPGA table: configs x targets with LUT/FF/DSP/BRAM and Fmax, measured through ``codesign synth``.

Runs ``python -m codesign synth --config <cfg>.yaml --target <t> --json [--pnr]`` for every pair
(place-and-route on iCE40 and ECP5; xc7 is synthesis only) and writes
``bench/results/fpga_table.csv`` and ``.json``. Results are cached by the synth flow, so a rerun only
runs the pairs that changed. Usage::

    python bench/fpga_table.py                      # 2x2, 4x4, 8x8 INT8 WS/OS x all targets, with P&R
    python bench/fpga_table.py --sizes 2 4 --no-pnr --jobs 2

Engine rows (issue 22, item 5): the whole-layer accelerator with one built engine at a time, per target
(iCE40 UP5K 2x2, ECP5-25k 4x4, ECP5-85k 8x8 by default), each row its LUT/FF/DSP/BRAM, its Fmax (nextpnr's
estimate after placement, or routed with ``--pnr``; the row says which) and DS-CNN's and MobileNetV1-0.25
VWW's cycles and latency at that Fmax (``codesign simulate``'s cycles of the same config)::

    python bench/fpga_table.py --engines [--engine-targets ecp5-25k] [--pnr] [--out bench/results/fpga_table_engines]
"""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from codesign.hdl.fpga import DEVICES, TARGETS
from codesign.sim.config import AcceleratorConfig

RESULTS = Path(__file__).resolve().parent / "results"

COLUMNS = ["config", "rows", "cols", "dataflow", "bits", "sram_bytes", "target", "part", "pnr", "fits",
           "limiting_resource", "luts", "ffs", "dsps", "brams", "carries", "lut_util", "dsp_util", "bram_util",
           "fmax_mhz", "target_mhz", "synth_seconds", "pnr_seconds", "cached", "exit_status", "message",
           "tool_versions"]


def configs(sizes: list[int], dataflows: list[str], sram_bytes: int, clock_mhz: float) -> list[AcceleratorConfig]:
    return [AcceleratorConfig(rows=n, cols=n, dataflow=df, weight_bits=8, act_bits=8, input_sram_bytes=sram_bytes,
                              weight_sram_bytes=sram_bytes, output_sram_bytes=sram_bytes, clock_mhz=clock_mhz)
            for n in sizes for df in dataflows]


def run_one(cfg: AcceleratorConfig, target: str, pnr: bool, workdir: Path,
            multipliers: str = "auto", router: str = "router1") -> dict[str, object]:
    name = f"{cfg.rows}x{cfg.cols} {cfg.dataflow.value} int{cfg.weight_bits}" + (
        "" if multipliers == "auto" else f" {multipliers} multipliers")
    yaml_path = workdir / f"{cfg.rows}x{cfg.cols}_{cfg.dataflow.value}.yaml"
    yaml_path.write_text(cfg.to_yaml())
    cmd = [sys.executable, "-m", "codesign", "synth", "--config", str(yaml_path), "--target", target, "--json"]
    if pnr and DEVICES[target].nextpnr:
        cmd.append("--pnr")
    cmd += ["--multipliers", multipliers]
    if router != "router1":
        cmd += ["--router", router]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    row: dict[str, object] = {"config": name, "rows": cfg.rows, "cols": cfg.cols, "dataflow": cfg.dataflow.value,
                              "bits": cfg.weight_bits, "sram_bytes": cfg.input_sram_bytes, "target": target,
                              "exit_status": proc.returncode}
    err = proc.stderr.strip().splitlines()
    try:
        data = json.loads(proc.stdout)
    except ValueError:
        row["message"] = err[-1] if err else f"exit status {proc.returncode}"
        print(f"{name:>14} {target:<11} FAILED: {row['message']}", file=sys.stderr, flush=True)
        return row
    util = data["utilization"]
    row.update({
        "part": data["part"], "pnr": data["pnr"], "fits": data["fits"], "limiting_resource": data["limiting_resource"],
        "luts": data["luts"], "ffs": data["ffs"], "dsps": data["dsps"], "brams": data["brams"],
        "carries": data["carries"],
        "lut_util": util["lut"]["fraction"], "dsp_util": util["dsp"]["fraction"], "bram_util": util["bram"]["fraction"],
        "fmax_mhz": data["fmax_mhz"], "target_mhz": data["target_mhz"], "synth_seconds": data["synth_seconds"],
        "pnr_seconds": data["pnr_seconds"], "cached": data["cached"],
        "message": err[-1] if proc.returncode else data["fit_message"],
        "tool_versions": " ".join(f"{k}={v}" for k, v in data["tool_versions"].items()),
    })
    print(f"{name:>14} {target:<11} LUT {data['luts']:>6} FF {data['ffs']:>6} DSP {data['dsps']:>3} "
          f"BRAM {data['brams']:>3} Fmax {data['fmax_mhz'] or '-':>7}  {row['message']} "
          f"[{time.perf_counter() - t0:.0f} s]", flush=True)
    return row


#: the engines of the whole-layer top, each built alone beside the array (the rest left out, as ``LEAN``):
#: (name, dataflow, config fields). "address generation" is the fold controller's on-chip convolution
#: windows (``conv_windows``: the feature map read in place, the windows' addresses made on chip).
LEAN = {"vector_unit": False, "depthwise": "array", "pool_writeback": False, "residency": False,
        "conv_windows": False}
ENGINES: tuple[tuple[str, str, dict[str, object]], ...] = (
    ("array ws", "ws", LEAN), ("array os", "os", LEAN),
    ("ws + address generation", "ws", {**LEAN, "conv_windows": True}),
    ("ws + vector unit", "ws", {**LEAN, "vector_unit": True}),
    ("ws + depthwise engine", "ws", {**LEAN, "depthwise": "engine"}),
    ("ws + depthwise engine 3x3", "ws", {**LEAN, "depthwise": "engine", "depthwise_kernel": 3}),
    ("ws, every engine", "ws", {}),
)
ENGINE_SIZES = {"ice40-up5k": 2, "ice40-hx8k": 2, "ecp5-25k": 4, "ecp5-85k": 8, "xc7": 8}
ENGINE_NETWORKS = ("ds_cnn_kws", "mobilenet_v1_vww")
ENGINE_COLUMNS = ["engine", "rows", "cols", "dataflow", "target", "fits", "message", "luts", "ffs", "dsps", "brams",
                  "fmax_mhz", "fmax_basis", *[f"{n}_{c}" for n in ENGINE_NETWORKS for c in ("cycles", "latency_us")],
                  "synth_seconds", "pnr_seconds"]


def engine_rows(targets: list[str], pnr: bool, sram_bytes: int, clock_mhz: float,
                done: Callable[[list[dict[str, object]]], None] = lambda rows: None) -> list[dict[str, object]]:
    """The engine rows; ``done(rows so far)`` after each (the files are written as the rows come)."""
    from codesign.errors import CodesignError
    from codesign.hdl.fpga import synth
    from codesign.sim.engine import simulate_network
    from codesign.workloads.zoo import get as get_network

    rows = []
    for target in targets:
        n = ENGINE_SIZES[target]
        for name, df, fields in ENGINES:
            cfg = AcceleratorConfig(rows=n, cols=n, dataflow=df, input_sram_bytes=sram_bytes,  # type: ignore[arg-type]
                                    weight_sram_bytes=sram_bytes, output_sram_bytes=sram_bytes, clock_mhz=clock_mhz,
                                    **fields)  # type: ignore[arg-type]
            row: dict[str, object] = {"engine": name, "rows": n, "cols": n, "dataflow": df, "target": target}
            t0 = time.perf_counter()
            try:
                r = synth(cfg, target, pnr=True, place_only=not pnr)  # a part without nextpnr: synthesis
            except CodesignError as e:
                row.update(fits=False, message=str(e))
                rows.append(row)
                done(rows)
                print(f"{name:>26} {target:<11} {e}", flush=True)
                continue
            row.update(fits=r.fits, message=r.fit_message, luts=r.luts, ffs=r.ffs, dsps=r.dsps, brams=r.brams,
                       fmax_mhz=r.fmax_mhz, fmax_basis=r.fmax_basis, synth_seconds=r.synth_seconds,
                       pnr_seconds=r.pnr_seconds)
            for net_name in ENGINE_NETWORKS:
                cycles = simulate_network(get_network(net_name), cfg).cycles
                row[f"{net_name}_cycles"] = cycles
                row[f"{net_name}_latency_us"] = round(cycles / r.fmax_mhz, 1) if r.fmax_mhz else None
            rows.append(row)
            done(rows)
            print(f"{name:>26} {target:<11} LUT {r.luts:>6} FF {r.ffs:>6} DSP {r.dsps:>3} BRAM {r.brams:>3} "
                  f"Fmax {r.fmax_mhz or '-'} ({r.fmax_basis or 'none'})  {r.fit_message} "
                  f"[{time.perf_counter() - t0:.0f} s]", flush=True)
    return rows


def engine_markdown(rows: list[dict[str, object]]) -> str:
    head = ("| engine | array | target | LUT | FF | DSP | BRAM | Fmax MHz | DS-CNN cycles | DS-CNN us at Fmax | "
            "VWW cycles | VWW us at Fmax | fit |")
    lines = [head, "|" + "---|" * 13]
    for r in rows:
        fmax = r.get("fmax_mhz")
        fmax_s = f"{fmax:.1f} ({r.get('fmax_basis')})" if isinstance(fmax, float) else "-"
        fit = "yes" if r.get("fits") else str(r.get("message", ""))
        cells = [str(r[c]) if r.get(c) is not None else "-" for c in ("luts", "ffs", "dsps", "brams")]
        nets = []
        for n in ENGINE_NETWORKS:
            cyc, lat = r.get(f"{n}_cycles"), r.get(f"{n}_latency_us")
            nets += [f"{cyc:,}" if isinstance(cyc, int) else "-", f"{lat:,.1f}" if isinstance(lat, float) else "-"]
        lines.append(f"| {r['engine']} | {r['rows']}x{r['cols']} {r['dataflow']} | {r['target']} | "
                     + " | ".join(cells) + f" | {fmax_s} | " + " | ".join(nets) + f" | {fit} |")
    return "\n".join(lines)


def markdown(rows: list[dict[str, object]]) -> str:
    head = "| config | target | LUT | FF | DSP | BRAM | carry | Fmax MHz | fit |"
    lines = [head, "|" + "---|" * 9]
    for r in rows:
        fmax = r.get("fmax_mhz")
        if isinstance(fmax, float):
            fmax_s = f"{fmax:.1f}"
        elif r["target"] == "xc7":
            fmax_s = "synth only"
        else:
            fmax_s = "P&R not run" if r.get("fits") else "-"
        fit = "yes" if r.get("fits") else str(r.get("message", "")).replace("codesign synth: error: ", "")
        lines.append(f"| {r['config']} | {r['target']} | {r.get('luts', '')} | {r.get('ffs', '')} | "
                     f"{r.get('dsps', '')} | {r.get('brams', '')} | {r.get('carries', '')} | {fmax_s} | {fit} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[2, 4, 8], help="square array sizes")
    ap.add_argument("--dataflows", nargs="+", default=["ws", "os"])
    ap.add_argument("--targets", nargs="+", default=list(TARGETS), choices=TARGETS)
    ap.add_argument("--sram-bytes", type=int, default=1024, help="each of the three buffers, bytes")
    ap.add_argument("--clock-mhz", type=float, default=100.0, help="place-and-route target clock")
    ap.add_argument("--no-pnr", action="store_true", help="synthesis only")
    ap.add_argument("--pnr-targets", nargs="+", choices=TARGETS, default=None,
                    help="place and route only on these targets (default: every iCE40/ECP5 target)")
    ap.add_argument("--synth-only", nargs="+", default=[], metavar="RxC_DF:TARGET",
                    help="pairs to report without place and route, e.g. 8x8_ws:ecp5-85k")
    ap.add_argument("--multipliers", default="auto", choices=["auto", "dsp", "lut", "fast"],
                    help="auto (codesign synth's default): DSP blocks, the narrowest products in LUTs when the part "
                         "has too few; dsp: every product in DSP blocks; lut: every one in LUTs (Yosys -nodsp)")
    ap.add_argument("--router", default="router1", choices=["router1", "router2"], help="nextpnr's router")
    ap.add_argument("--jobs", type=int, default=1, help="pairs run at once")
    ap.add_argument("--out", default=None, help="output path without suffix (default bench/results/fpga_table, "
                                                "with --engines fpga_table_engines)")
    ap.add_argument("--engines", action="store_true",
                    help="engine rows: each built engine alone beside the array, per target (see the docstring)")
    ap.add_argument("--engine-targets", nargs="+", choices=TARGETS, default=["ice40-up5k", "ecp5-25k", "ecp5-85k"])
    ap.add_argument("--pnr", action="store_true", help="with --engines: route (default: placement estimate)")
    args = ap.parse_args(argv)
    if args.engines:
        t0 = time.perf_counter()
        out = Path(args.out or RESULTS / "fpga_table_engines")
        out.parent.mkdir(parents=True, exist_ok=True)

        def write(rows: list[dict[str, object]]) -> None:
            with out.with_suffix(".csv").open("w", newline="") as f:
                w = csv.DictWriter(f, fieldnames=ENGINE_COLUMNS)
                w.writeheader()
                w.writerows(rows)
            meta = {"command": "python bench/fpga_table.py --engines --engine-targets "
                               + " ".join(args.engine_targets) + (" --pnr" if args.pnr else ""),
                    "sram_bytes_each": args.sram_bytes, "clock_mhz_target": args.clock_mhz,
                    "wall_seconds": round(time.perf_counter() - t0, 1), "rows": rows}
            out.with_suffix(".json").write_text(json.dumps(meta, indent=1) + "\n")
            head = (f"# Engine rows: the whole-layer top with one engine at a time\n\n`{meta['command']}` "
                    f"({args.sram_bytes} B buffers each, INT8, {args.clock_mhz:g} MHz asked; Fmax "
                    f"{'after place and route' if args.pnr else 'estimated by nextpnr after placement'}; DS-CNN "
                    f"and VWW cycles are `codesign simulate`'s for the same config, latency at that Fmax)\n\n")
            out.with_suffix(".md").write_text(head + engine_markdown(rows) + "\n")

        rows = engine_rows(args.engine_targets, args.pnr, args.sram_bytes, args.clock_mhz, write)
        print(engine_markdown(rows))
        return 0
    args.out = args.out or str(RESULTS / "fpga_table")

    pairs = [(c, t) for c in configs(args.sizes, args.dataflows, args.sram_bytes, args.clock_mhz)
             for t in args.targets]
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp, ThreadPoolExecutor(args.jobs) as pool:
        # largest arrays first (longest place-and-route), reported in table order
        order = sorted(range(len(pairs)), key=lambda i: -pairs[i][0].pes)
        def pnr_for(cfg: AcceleratorConfig, target: str) -> bool:
            if f"{cfg.rows}x{cfg.cols}_{cfg.dataflow.value}:{target}" in args.synth_only:
                return False
            return not args.no_pnr and (args.pnr_targets is None or target in args.pnr_targets)

        def one(i: int) -> dict[str, object]:
            return run_one(*pairs[i], pnr_for(*pairs[i]), Path(tmp), args.multipliers, args.router)

        done = dict(zip(order, pool.map(one, order), strict=True))
        rows = [done[i] for i in range(len(pairs))]
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.with_suffix(".csv").open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=COLUMNS)
        w.writeheader()
        w.writerows(rows)
    meta = {"command": "codesign synth --config <cfg> --target <t> --json" + ("" if args.no_pnr else " --pnr")
            + f" --multipliers {args.multipliers}"
            + ("" if args.router == "router1" else f" --router {args.router}"),
            "pnr_targets": [] if args.no_pnr else (args.pnr_targets or [t for t in TARGETS if DEVICES[t].nextpnr]),
            "synth_only": args.synth_only,
            "sram_bytes_each": args.sram_bytes, "clock_mhz_target": args.clock_mhz,
            "wall_seconds": round(time.perf_counter() - t0, 1), "rows": rows}
    out.with_suffix(".json").write_text(json.dumps(meta, indent=1) + "\n")
    out.with_suffix(".md").write_text(markdown(rows) + "\n")
    print(markdown(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
