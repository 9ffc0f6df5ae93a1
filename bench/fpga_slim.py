"""Issue 22 (slimmer control machinery): the smallest whole-layer designs through ``codesign synth``.

Designs with 1 KiB buffers, every other field the config's default (requantizing write-back; engines
where the design builds them) unless named "lean" (no vector unit, depthwise layers on the array): 2x2 OS
and 2x4 WS INT8 on the iCE40 UP5K, 4x4 WS INT8 on ECP5-25k (also lean), 8x8 WS INT8 lean on ECP5-85k,
16x16 WS INT4 lean on ECP5-85k.
Each runs ``codesign synth --config <cfg>.yaml --target <t> --json`` one at a time (add ``--pnr``
with ``--pnr``: only a design that fits is placed and routed) and prints a Markdown table row per
design; ``--out`` also writes the rows as JSON. Usage (from a checkout, its venv active)::

    AMARANTH_USE_YOSYS=builtin nice -n 10 python bench/fpga_slim.py --label after --pnr --out after.json

``bench/results/fpga_slim.md`` holds the table (before: the same command on the commit before).
``--widths 24 16`` sets every config's ``dram_addr_bits`` and ``dim_bits`` (``bench/results/fpga_narrow.md``).
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
#: the engines a GEMM-only part builds: no vector unit, depthwise layers on the array, no pool stage (the ECP5 points)
LEAN = {"vector_unit": False, "depthwise": "array", "pool_writeback": False, "residency": False}
#: (name, rows, cols, dataflow, bits, target, other config fields)
DESIGNS: tuple[tuple[str, int, int, str, int, str, dict[str, object]], ...] = (
    ("2x2 os", 2, 2, "os", 8, "ice40-up5k", {}), ("2x4 ws", 2, 4, "ws", 8, "ice40-up5k", {}),
    ("4x4 ws", 4, 4, "ws", 8, "ecp5-25k", {}),
    ("4x4 ws lean", 4, 4, "ws", 8, "ecp5-25k", LEAN), ("8x8 ws lean", 8, 8, "ws", 8, "ecp5-85k", LEAN),
    ("16x16 ws int4 lean", 16, 16, "ws", 4, "ecp5-85k", LEAN),
)


def run(label: str, pnr: bool, only: list[str] | None = None, clock_mhz: float = 200.0,
        widths: tuple[int, int] = (32, 24)) -> list[dict[str, object]]:
    """``widths``: the configs' ``(dram_addr_bits, dim_bits)`` (the defaults: 32, 24)."""
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, r, c, df, bits, target, extra in DESIGNS:
            if only and name not in only:
                continue
            cfg = AcceleratorConfig(rows=r, cols=c, dataflow=df, weight_bits=bits, act_bits=bits,
                                    input_sram_bytes=KIB, weight_sram_bytes=KIB, output_sram_bytes=KIB,
                                    clock_mhz=clock_mhz, dram_addr_bits=widths[0], dim_bits=widths[1],
                                    **extra)  # type: ignore[arg-type]
            path = Path(tmp) / f"{name.replace(' ', '_')}.yaml"
            path.write_text(cfg.to_yaml())
            cmd = [sys.executable, "-m", "codesign", "synth", "--config", str(path), "--target", target, "--json",
                   "--no-progress"]
            out = json.loads(subprocess.run(cmd, capture_output=True, text=True, check=False).stdout)
            if pnr and out["fits"]:
                out = json.loads(subprocess.run([*cmd, "--pnr"], capture_output=True, text=True,
                                                check=False).stdout)
            rows.append({"label": label, "design": name, "target": target, "dram_addr_bits": widths[0],
                         "dim_bits": widths[1], "luts": out["luts"], "ffs": out["ffs"],
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
    ap.add_argument("--designs", nargs="+", metavar="NAME", help=f"only these of: {', '.join(d[0] for d in DESIGNS)}")
    ap.add_argument("--clock-mhz", type=float, default=200.0, help="the config's clock: what P&R is asked for")
    ap.add_argument("--widths", type=int, nargs=2, default=(32, 24), metavar=("ADDR_BITS", "DIM_BITS"),
                    help="the configs' dram_addr_bits and dim_bits (default: 32 24)")
    args = ap.parse_args()
    print("| code | design | target | LUT | FF | DSP | BRAM | Fmax MHz | P&R s | fit |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    rows = run(args.label, args.pnr, args.designs, args.clock_mhz, tuple(args.widths))
    if args.out:
        args.out.write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
