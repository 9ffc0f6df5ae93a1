"""FPGA resources of the whole-layer accelerator's modes: dataflow (WS, OS, IS) x zero handling
(none, gate; 2:4 skip on WS) x requantizing write-back, measured through ``codesign synth`` (Yosys,
synthesis only).

    python bench/fpga_modes.py [--size 4] [--target ecp5-25k] [--sram-bytes 1024]
                               [--modes ws:skip os:none:rq ...] [--merge]

Writes ``bench/results/fpga_modes.csv``, ``.json`` and ``.md``. ``--modes`` runs only the given
``dataflow:zero_handling[:rq]`` rows; ``--merge`` replaces those rows in the existing results and
keeps the others (results are also cached by the synth flow).
"""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
import tempfile
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def run(size: int, dataflow: str, zero: str, requant: bool, target: str, sram: int) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as tmp:
        cfg = Path(tmp) / "accel.yaml"
        cfg.write_text(f"rows: {size}\ncols: {size}\ndataflow: {dataflow}\nzero_handling: {zero}\n"
                       f"requantize: {'true' if requant else 'false'}\ninput_sram_bytes: {sram}\n"
                       f"weight_sram_bytes: {sram}\noutput_sram_bytes: {sram}\nclock_mhz: 100\n")
        p = subprocess.run([sys.executable, "-m", "codesign", "synth", "--config", str(cfg), "--target", target,
                            "--json"], capture_output=True, text=True)
    row: dict[str, object] = {"array": f"{size}x{size}", "dataflow": dataflow, "zero_handling": zero,
                              "requantize": requant, "target": target, "exit_status": p.returncode}
    if p.stdout.strip().startswith("{"):
        r = json.loads(p.stdout)
        row.update({k: r[k] for k in ("luts", "ffs", "dsps", "brams", "carries", "fits")})
        row["message"] = r["fit_message"]
    else:
        row["message"] = p.stderr.strip().splitlines()[-1] if p.stderr.strip() else ""
    return row


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=4)
    ap.add_argument("--target", default="ecp5-25k")
    ap.add_argument("--sram-bytes", type=int, default=1024)
    ap.add_argument("--out", default=str(RESULTS / "fpga_modes"))
    ap.add_argument("--modes", nargs="+", default=None, metavar="DF:ZERO[:rq]")
    ap.add_argument("--merge", action="store_true", help="keep the other rows of the existing results")
    args = ap.parse_args(argv)
    modes = [(df, z, False) for df in ("ws", "os", "is") for z in ("none", "gate")]
    modes += [("ws", "none", True), ("os", "none", True), ("ws", "skip", False)]
    if args.modes:
        modes = [(m.split(":")[0], m.split(":")[1], m.endswith(":rq")) for m in args.modes]
    out = Path(args.out)
    old: list[dict[str, object]] = []
    if args.merge and out.with_suffix(".json").exists():
        old = json.loads(out.with_suffix(".json").read_text())
    new = {}
    for df, z, rq in modes:
        new[df, z, rq] = run(args.size, df, z, rq, args.target, args.sram_bytes)
        print(new[df, z, rq], flush=True)
    rows = [new.pop((r["dataflow"], r["zero_handling"], r["requantize"]), r) for r in old]  # type: ignore[call-overload]
    rows += list(new.values())
    out.parent.mkdir(parents=True, exist_ok=True)
    cols = sorted({k for r in rows for k in r}, key=lambda k: list(rows[0]).index(k) if k in rows[0] else 99)
    with open(out.with_suffix(".csv"), "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=cols)
        w.writeheader()
        w.writerows(rows)
    out.with_suffix(".json").write_text(json.dumps(rows, indent=2) + "\n")
    lines = [f"# Whole-layer accelerator modes, {args.size}x{args.size} INT8, {args.sram_bytes}-byte buffers, "
             f"{args.target}, synthesis only", "",
             "| dataflow | zero handling | requantize | LUT | FF | DSP | BRAM | note |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['dataflow']} | {r['zero_handling']} | {r['requantize']} | {r.get('luts', '-')} | "
                     f"{r.get('ffs', '-')} | {r.get('dsps', '-')} | {r.get('brams', '-')} | {r['message']} |")
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
