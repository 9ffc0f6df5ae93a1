"""FPGA cost of the whole-layer top's optional features: the convolution address generator (the on-chip
windows of :mod:`codesign.hdl.control.fold`, ``conv_windows``) and the vector unit with the residual-add
write-back path it brings (``vector_unit``: the unit, the residual buffer and its queue), each measured as
the difference between the same whole-layer top with and without it, through ``codesign synth`` (Yosys;
nextpnr with ``--pnr``).

    python bench/fpga_features.py [--size 4] [--target ecp5-25k] [--sram-bytes 1024] [--pnr]

Variants (``depthwise: array`` in all, so the depthwise engine is never built; requantize on, which the
residual path needs): ``all`` (windows and vector unit), ``no_windows``, ``no_vector`` and ``neither``, all without
residency; ``no_vector_resident`` (``--variants no_vector no_vector_resident``) adds residency to ``no_vector``.
Writes ``bench/results/fpga_features.csv``, ``.json`` and ``.md`` (``--out`` to rename); the synth flow
caches its results, so a rerun of the same design is instant.
"""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
ROOT = Path(__file__).resolve().parent.parent

#: name -> (conv_windows, vector_unit, residency)
VARIANTS = {"all": (True, True, False), "no_windows": (False, True, False), "no_vector": (True, False, False),
            "neither": (False, False, False), "no_vector_resident": (True, False, True)}
#: the cost of a feature: (feature, with it, without it)
DELTAS = [("address generator (conv windows)", "all", "no_windows"),
          ("address generator, without the vector unit", "no_vector", "neither"),
          ("vector unit + residual write-back", "all", "no_vector"),
          ("vector unit + residual write-back, without windows", "no_windows", "neither"),
          ("residency (the write-back into the input buffer), without the vector unit", "no_vector_resident",
           "no_vector")]
METRICS = ["luts", "carries", "lutram", "lut_sites", "ffs", "dsps", "brams"]


def config(size: int, sram: int, windows: bool, vector: bool, clock_mhz: float,
           residency: bool = False):  # -> AcceleratorConfig
    from codesign.sim.config import AcceleratorConfig

    return AcceleratorConfig(rows=size, cols=size, dataflow="ws", weight_bits=8, act_bits=8, requantize=True,
                             input_sram_bytes=sram, weight_sram_bytes=sram, output_sram_bytes=sram,
                             depthwise="array", conv_windows=windows, vector_unit=vector, pool_writeback=False,
                             residency=residency,
                             clock_mhz=clock_mhz)


def run(name: str, size: int, sram: int, target: str, pnr: bool, clock_mhz: float) -> dict[str, object]:
    from codesign.hdl.layer import has_conv_windows, has_depthwise_engine, has_residency, has_vector_unit

    windows, vector, resident = VARIANTS[name]
    cfg = config(size, sram, windows, vector, clock_mhz, resident)
    row: dict[str, object] = {"variant": name, "array": f"{size}x{size}", "sram_bytes": sram, "target": target,
                              "conv_windows": has_conv_windows(cfg), "vector_unit": has_vector_unit(cfg),
                              "depthwise_engine": has_depthwise_engine(cfg), "residency": has_residency(cfg)}
    assert (row["conv_windows"], row["vector_unit"], row["depthwise_engine"], row["residency"]) == (
        windows, vector, False, resident), row
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "accel.yaml"
        path.write_text(cfg.to_yaml())
        p = subprocess.run([sys.executable, "-m", "codesign", "synth", "--config", str(path), "--target", target,
                            "--json", "--no-progress", *(["--pnr"] if pnr else [])],
                           capture_output=True, text=True, check=False)
    row["exit_status"] = p.returncode
    if not p.stdout.strip().startswith("{"):
        row["message"] = p.stderr.strip().splitlines()[-1] if p.stderr.strip() else f"exit status {p.returncode}"
        return row
    r = json.loads(p.stdout)
    cells = r["cells"]
    row.update({"luts": r["luts"], "carries": r["carries"], "lutram": cells.get("TRELLIS_DPR16X4", 0),
                "lut_sites": r["utilization"]["lut"]["used"], "ffs": r["ffs"], "dsps": r["dsps"],
                "brams": r["brams"], "fits": r["fits"], "fit_basis": r["fit_basis"], "fmax_mhz": r["fmax_mhz"],
                "synth_seconds": r["synth_seconds"], "pnr_seconds": r["pnr_seconds"], "cached": r["cached"],
                "message": r["fit_message"], "cells": cells})
    print(f"{name:>11}: LUT {r['luts']:>6} CCU2C {r['carries']:>5} FF {r['ffs']:>6} DSP {r['dsps']:>3} "
          f"BRAM {r['brams']:>3}  {r['fit_message']} [{time.perf_counter() - t0:.0f} s]", flush=True)
    return row


def _git(*args: str) -> str:
    p = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=False)
    return p.stdout.strip()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=4)
    ap.add_argument("--target", default="ecp5-25k")
    ap.add_argument("--sram-bytes", type=int, default=1024)
    ap.add_argument("--clock-mhz", type=float, default=100.0, help="the P&R target clock (with --pnr)")
    ap.add_argument("--pnr", action="store_true", help="place and route with nextpnr (default: synthesis only)")
    ap.add_argument("--variants", nargs="+", default=list(VARIANTS)[:4], choices=list(VARIANTS))
    ap.add_argument("--out", default="fpga_features", help="results name under bench/results")
    args = ap.parse_args(argv)
    commit = _git("rev-parse", "--short", "HEAD")
    hdl_tree = _git("rev-parse", "HEAD:hdl")
    dirty = bool(_git("status", "--porcelain", "--", "hdl"))
    rows = {v: run(v, args.size, args.sram_bytes, args.target, args.pnr, args.clock_mhz) for v in args.variants}
    if _git("rev-parse", "HEAD:hdl") != hdl_tree or bool(_git("status", "--porcelain", "--", "hdl")) != dirty:
        print("warning: hdl/ changed during the run; the variants may come from different code", file=sys.stderr)
        dirty = True
    for r in rows.values():
        r["commit"] = commit + ("+hdl-changes" if dirty else "")

    deltas = []
    for what, a, b in DELTAS:
        if a in rows and b in rows and "luts" in rows[a] and "luts" in rows[b]:
            d: dict[str, object] = {"feature": what, "with": a, "without": b}
            d.update({k: rows[a][k] - rows[b][k] for k in METRICS})  # type: ignore[operator]
            deltas.append(d)

    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / args.out
    flat = [{k: v for k, v in r.items() if k != "cells"} for r in rows.values()]
    cols = list(dict.fromkeys(k for r in flat for k in r))
    with open(out.with_suffix(".csv"), "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=cols)
        w.writeheader()
        w.writerows(flat)
    out.with_suffix(".json").write_text(json.dumps({"variants": list(rows.values()), "deltas": deltas}, indent=2)
                                        + "\n")
    basis = "place and route" if args.pnr else "synthesis estimate (Yosys, no P&R)"
    cmd = (f"python bench/fpga_features.py --size {args.size} --target {args.target} --sram-bytes {args.sram_bytes}"
           + (f" --pnr --clock-mhz {args.clock_mhz:g}" if args.pnr else "")
           + ("" if args.variants == list(VARIANTS)[:4] else f" --variants {' '.join(args.variants)}")
           + ("" if args.out == "fpga_features" else f" --out {args.out}"))
    lines = [f"# Whole-layer top with and without the address generator and the vector unit: {args.size}x{args.size} "
             f"INT8 WS, {args.sram_bytes}-byte buffers, {args.target}, {basis}", "",
             f"`{cmd}` (commit {rows[args.variants[0]]['commit']})", "",
             "Requantizing write-back on, `depthwise: array` (no depthwise engine) in every variant. LUT counts the "
             "LUT4 cells; CCU2C are carry cells (two LUT4 sites each), DPR16X4 LUT-RAM cells (about four); "
             "LUT sites = LUT + 2 CCU2C + 4 DPR16X4, what the fit check uses. The vector unit's variant also "
             "builds the residual-add write-back (the residual buffer and its queue).", "",
             "| variant | windows | vector unit | LUT | CCU2C | DPR16X4 | LUT sites | FF | DSP | BRAM | "
             + ("Fmax MHz | " if args.pnr else "") + "note |",
             "|---|---|---|---|---|---|---|---|---|---|" + ("---|" if args.pnr else "") + "---|"]
    for r in rows.values():
        vals = [r.get(k, "-") for k in METRICS]
        lines.append(f"| {r['variant']} | {r['conv_windows']} | {r['vector_unit']} | "
                     + " | ".join(str(v) for v in vals) + " | "
                     + (f"{r.get('fmax_mhz') or '-'} | " if args.pnr else "") + f"{r.get('message', '')} |")
    if deltas:
        lines += ["", "Cost of each feature (the difference between the two variants):", "",
                  "| feature | with − without | LUT | CCU2C | DPR16X4 | LUT sites | FF | DSP | BRAM |",
                  "|---|---|---|---|---|---|---|---|---|"]
        for d in deltas:
            lines.append(f"| {d['feature']} | {d['with']} − {d['without']} | "
                         + " | ".join(f"{d[k]:+d}" for k in METRICS) + " |")  # type: ignore[str-format]
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
