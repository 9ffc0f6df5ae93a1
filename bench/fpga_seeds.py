"""Issue 22: how much of a design's Fmax is the placement's luck. One netlist, nextpnr's placement seed 1..N.

A change for Fmax is believed only when it moves the Fmax further than the seeds do: one P&R run each of two
netlists that differ by a few hundred LUTs measured 57.5 and 62.9 MHz (``bench/results/fpga_slim.md``), within what
seeds alone move. This places (``--place``: nextpnr's estimate after placement, minutes a seed) or places and
routes (``--pnr``) one config at each seed through ``codesign.hdl.fpga.synth`` (each seed cached apart) and prints
a Markdown table: each seed's Fmax, then the least, the median and the largest. Usage (from a checkout, its venv
active)::

    AMARANTH_USE_YOSYS=builtin nice -n 10 python bench/fpga_seeds.py --config lean44.yaml --target ecp5-25k \\
        --seeds 5 --out bench/results/fpga_seeds.json

``--config`` is a YAML file of AcceleratorConfig fields (default: the 4x4 WS INT8 "lean" config of
``bench/fpga_slim.py`` at 100 MHz with 1 KiB buffers). Bad arguments get a one-line error and exit status 2.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

LEAN44 = {"rows": 4, "cols": 4, "dataflow": "ws", "input_sram_bytes": 1024, "weight_sram_bytes": 1024,
          "output_sram_bytes": 1024, "clock_mhz": 100, "vector_unit": False, "depthwise": "array",
          "pool_writeback": False, "dw_writeback": False, "residency": False}


def main(argv: list[str] | None = None) -> int:
    from codesign.errors import CodesignError
    from codesign.hdl.fpga import synth
    from codesign.sim.config import AcceleratorConfig, load_yaml_mapping

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", type=Path, help="YAML file of AcceleratorConfig fields (default: 4x4 WS lean)")
    ap.add_argument("--target", default="ecp5-25k")
    ap.add_argument("--seeds", type=int, default=3, help="seeds 1..N (default 3)")
    ap.add_argument("--pnr", action="store_true", help="place and route (default: place only, the estimate)")
    ap.add_argument("--router", default="router1")
    ap.add_argument("--out", type=Path, help="also write the rows as JSON")
    args = ap.parse_args(argv)
    try:
        if args.seeds < 1:
            raise CodesignError(f"--seeds must be at least 1, not {args.seeds}")
        fields = load_yaml_mapping(args.config) if args.config else dict(LEAN44)
        config = AcceleratorConfig(**fields)
        rows = []
        print("| seed | Fmax MHz | basis | LUT | FF | P&R s |")
        print("|---|---|---|---|---|---|")
        for seed in range(1, args.seeds + 1):
            r = synth(config, args.target, pnr=True, place_only=not args.pnr, router=args.router, seed=seed)
            rows.append({"seed": seed, "fmax_mhz": r.fmax_mhz, "fmax_basis": r.fmax_basis, "luts": r.luts,
                         "ffs": r.ffs, "pnr_seconds": r.pnr_seconds, "fits": r.fits})
            fmax = "-" if r.fmax_mhz is None else f"{r.fmax_mhz:.2f}"
            print(f"| {seed} | {fmax} | {r.fmax_basis or r.fit_message} | {r.luts:,} | {r.ffs:,} | "
                  f"{r.pnr_seconds or 0:,.0f} |", flush=True)
    except CodesignError as e:
        print(f"fpga_seeds: error: {e}", file=sys.stderr)
        return 2
    got = [x["fmax_mhz"] for x in rows if x["fmax_mhz"] is not None]
    if got:
        print(f"\nFmax over {len(got)} seeds: least {min(got):.2f}, median {statistics.median(got):.2f}, "
              f"largest {max(got):.2f} MHz (spread {max(got) - min(got):.2f})")
    if args.out:
        args.out.write_text(json.dumps({"config": fields, "target": args.target, "rows": rows}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
