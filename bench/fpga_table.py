"""FPGA table: configs x targets with LUT/FF/DSP/BRAM and Fmax, measured through ``codesign synth``.

Runs ``python -m codesign synth --config <cfg>.yaml --target <t> --json [--pnr]`` for every pair
(place-and-route on iCE40 and ECP5; xc7 is synthesis only) and writes
``bench/results/fpga_table.csv`` and ``.json``. Results are cached by the synth flow, so a rerun only
runs the pairs that changed. Usage::

    python bench/fpga_table.py                      # 2x2, 4x4, 8x8 INT8 WS/OS x all targets, with P&R
    python bench/fpga_table.py --sizes 2 4 --no-pnr --jobs 2
"""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
import tempfile
import time
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
    ap.add_argument("--out", default=str(RESULTS / "fpga_table"), help="output path without suffix")
    args = ap.parse_args(argv)

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
