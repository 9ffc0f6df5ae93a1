"""Issue 22 (slimmer control machinery): the smallest whole-layer designs through ``codesign synth``.

Three designs, 1 KiB buffers, INT8, every other field the config's default (requantizing write-back;
engines where the design builds them): 2x2 OS and 2x4 WS on the iCE40 UP5K, 4x4 WS on ECP5-25k.
Each runs ``codesign synth --config <cfg>.yaml --target <t> --json`` one at a time (add ``--pnr``
with ``--pnr``: only a design that fits is placed and routed) and prints a Markdown table row per
design; ``--out`` also writes the rows as JSON. Usage (from a checkout, its venv active)::

    AMARANTH_USE_YOSYS=builtin nice -n 10 python bench/fpga_slim.py --label after --pnr --out after.json

``bench/results/fpga_slim.md`` holds the table (before: the same command on the commit before).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from codesign.sim.config import AcceleratorConfig

KIB = 1024
DESIGNS = (("2x2 os", 2, 2, "os", "ice40-up5k"), ("2x4 ws", 2, 4, "ws", "ice40-up5k"),
           ("4x4 ws", 4, 4, "ws", "ecp5-25k"))


def run(label: str, pnr: bool) -> list[dict[str, object]]:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, r, c, df, target in DESIGNS:
            cfg = AcceleratorConfig(rows=r, cols=c, dataflow=df, weight_bits=8, act_bits=8, input_sram_bytes=KIB,
                                    weight_sram_bytes=KIB, output_sram_bytes=KIB)
            path = Path(tmp) / f"{r}x{c}_{df}.yaml"
            path.write_text(cfg.to_yaml())
            cmd = [sys.executable, "-m", "codesign", "synth", "--config", str(path), "--target", target, "--json",
                   "--no-progress"]
            out = json.loads(subprocess.run(cmd, capture_output=True, text=True, check=False).stdout)
            if pnr and out["fits"]:
                out = json.loads(subprocess.run([*cmd, "--pnr"], capture_output=True, text=True,
                                                check=False).stdout)
            rows.append({"label": label, "design": name, "target": target, "luts": out["luts"], "ffs": out["ffs"],
                         "dsps": out["dsps"], "brams": out["brams"], "carries": out["carries"], "fits": out["fits"],
                         "fit_message": out["fit_message"], "fmax_mhz": out["fmax_mhz"],
                         "synth_seconds": out["synth_seconds"], "pnr_seconds": out["pnr_seconds"]})
            row = rows[-1]
            fmax = f"{row['fmax_mhz']:.1f}" if row["fmax_mhz"] else "-"
            pnr_s = f"{row['pnr_seconds']:.0f}" if row["pnr_seconds"] else "-"
            print(f"| {label} | {name} | {target} | {row['luts']} | {row['ffs']} | {row['dsps']} | {row['brams']} | "
                  f"{fmax} | {pnr_s} | {'yes' if row['fits'] else row['fit_message']} |", flush=True)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--label", default="now")
    ap.add_argument("--pnr", action="store_true")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    print("| code | design | target | LUT | FF | DSP | BRAM | Fmax MHz | P&R s | fit |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    rows = run(args.label, args.pnr)
    if args.out:
        args.out.write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
