"""FPGA resources of the engines built on their own (not the whole-layer top): the depthwise engine
(:mod:`codesign.hdl.engines.depthwise`) at a few lane counts and kernel sizes and the vector unit
(:mod:`codesign.hdl.engines.vector`), through the project's
synthesis flow (:func:`codesign.hdl.fpga.synth_verilog`: Yosys from PyPI, behind the same narrow I/O
wrapper as the accelerator tops; synthesis estimate, or nextpnr with ``--pnr``).

    python bench/fpga_engines.py [--target ecp5-85k] [--pnr] [--cases 8:3 16:3 8:5] [--vector-lanes 4 8]
                                 [--pool 8:64 32:256] [--merge]

Writes ``bench/results/fpga_engines.csv``, ``.json`` and ``.md``; ``--merge`` replaces the rows it runs in
the existing results and keeps the others (``--cases`` with no value runs only the vector unit rows). On
ECP5 the depthwise engine's DSP count is one MULT18X18D per 8-bit multiplier (``lanes * K * K``): narrow
products are not packed yet. The vector unit's ``multipliers`` are its four multiplies a lane; three of them
are Q31 products 32 bits wide on one side, each several MULT18X18D.
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def depthwise_row(lanes: int, kmax: int, requant: bool, target: str, pnr: bool, width: int) -> dict[str, object]:
    from amaranth.back import verilog

    from codesign.hdl.engines.depthwise import DepthwiseEngine, DepthwiseSpec
    from codesign.hdl.fpga import synth_verilog

    spec = DepthwiseSpec(lanes=lanes, kmax=kmax, width_max=width, requantize=requant)
    top = f"codesign_dw_l{lanes}_k{kmax}{'_rq' if requant else ''}"
    text = verilog.convert(DepthwiseEngine(spec), name=top, emit_src=False)
    r = synth_verilog(top, text, target, pnr=pnr, target_mhz=100.0)
    return {"engine": "depthwise", "lanes": lanes, "kernel_max": kmax, "requantize": requant,
            "multipliers": lanes * kmax * kmax,
            "line_buffer_bits": (kmax - 1) * width * lanes * 8, "target": target, "luts": r.luts, "ffs": r.ffs,
            "dsps": r.dsps, "brams": r.brams, "fits": r.fits, "fit_basis": r.fit_basis,
            "fmax_mhz": r.fmax_mhz, "synth_seconds": round(r.synth_seconds, 1)}


def vector_row(lanes: int, target: str, pnr: bool) -> dict[str, object]:
    from amaranth.back import verilog

    from codesign.hdl.engines.vector import VectorSpec, VectorUnit
    from codesign.hdl.fpga import synth_verilog

    top = f"codesign_vector_l{lanes}"
    text = verilog.convert(VectorUnit(VectorSpec(lanes=lanes)), name=top, emit_src=False)
    r = synth_verilog(top, text, target, pnr=pnr, target_mhz=100.0)
    return {"engine": "vector (add, mul, table)", "lanes": lanes, "kernel_max": "", "requantize": "",
            "multipliers": 4 * lanes, "line_buffer_bits": 0, "target": target, "luts": r.luts, "ffs": r.ffs,
            "dsps": r.dsps, "brams": r.brams, "fits": r.fits, "fit_basis": r.fit_basis,
            "fmax_mhz": r.fmax_mhz, "synth_seconds": round(r.synth_seconds, 1)}


def pool_row(lanes: int, depth: int, target: str, pnr: bool) -> dict[str, object]:
    """The write-back's pool stage (``hdl.engines.pool``): ``lanes`` 8-bit lanes, two rows of ``depth`` words."""
    from amaranth.back import verilog

    from codesign.hdl.engines.pool import PoolStage
    from codesign.hdl.fpga import synth_verilog

    top = f"codesign_pool_l{lanes}_d{depth}"
    stage = PoolStage(lanes=lanes, bits=8, signed_values=True, depth=depth, addr_bits=32)  # 32-bit DRAM addresses
    text = verilog.convert(stage, name=top, emit_src=False)
    r = synth_verilog(top, text, target, pnr=pnr, target_mhz=100.0)
    return {"engine": f"pool stage (2 rows of {depth} words)", "lanes": lanes, "kernel_max": "", "requantize": "",
            "multipliers": 0, "line_buffer_bits": 2 * depth * lanes * 8, "target": target, "luts": r.luts,
            "ffs": r.ffs, "dsps": r.dsps, "brams": r.brams, "fits": r.fits, "fit_basis": r.fit_basis,
            "fmax_mhz": r.fmax_mhz, "synth_seconds": round(r.synth_seconds, 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--target", default="ecp5-85k")
    ap.add_argument("--pnr", action="store_true")
    ap.add_argument("--cases", nargs="*", default=["8:3", "8:3:rq", "16:3:rq", "8:5:rq"],
                    help="lanes:kernel_max[:rq] (rq: the requantizing write-back)")
    ap.add_argument("--width", type=int, default=128, help="padded input width the line buffers hold")
    ap.add_argument("--vector-lanes", type=int, nargs="*", default=[4, 8], help="vector unit rows")
    ap.add_argument("--pool", nargs="*", default=[], metavar="LANES:DEPTH",
                    help="pool stage rows (lanes:words a row; the 32x32 default design's is 32:256)")
    ap.add_argument("--out", default="fpga_engines", help="results name under bench/results")
    ap.add_argument("--merge", action="store_true", help="keep the other rows of the existing results")
    args = ap.parse_args()
    rows = []
    for case in args.cases:
        parts = case.split(":")
        rows.append(depthwise_row(int(parts[0]), int(parts[1]), parts[2:] == ["rq"], args.target, args.pnr,
                                  args.width))
        print(rows[-1], flush=True)
    for lanes in args.vector_lanes:
        rows.append(vector_row(lanes, args.target, args.pnr))
        print(rows[-1], flush=True)
    for case in args.pool:
        lanes, depth = (int(x) for x in case.split(":"))
        rows.append(pool_row(lanes, depth, args.target, args.pnr))
        print(rows[-1], flush=True)
    cmd = (f"`python bench/fpga_engines.py --target {args.target}{' --pnr' if args.pnr else ''} --cases"
           f"{''.join(' ' + c for c in args.cases)} --vector-lanes {' '.join(map(str, args.vector_lanes))} "
           f"{'--pool ' + ' '.join(args.pool) + ' ' if args.pool else ''}--out {args.out}"
           f"{' --merge' if args.merge else ''}`")
    cmds = [cmd]
    out = RESULTS / args.out
    if args.merge and out.with_suffix(".json").exists():
        def key(r: dict[str, object]) -> tuple[object, ...]:
            return tuple(str(r[k]) for k in ("engine", "lanes", "kernel_max", "requantize", "target"))
        new = {key(r): r for r in rows}
        old = json.loads(out.with_suffix(".json").read_text())
        rows = [new.pop(key(r), r) for r in old] + list(new.values())
        if out.with_suffix(".md").exists():
            prev = [ln for ln in out.with_suffix(".md").read_text().splitlines() if ln.startswith("`python ")]
            cmds = [c for c in prev if c != cmd] + [cmd]
    RESULTS.mkdir(exist_ok=True)
    with open(RESULTS / f"{args.out}.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    (RESULTS / f"{args.out}.json").write_text(json.dumps(rows, indent=2) + "\n")
    cols = list(rows[0])
    md = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    md += ["| " + " | ".join(str(r[c]) for c in cols) + " |" for r in rows]
    (RESULTS / f"{args.out}.md").write_text(
        "# FPGA resources of the engines (8-bit operands, 32-bit sums)\n\n"
        + "\n\n".join(cmds) + "\n\n" + "\n".join(md) + "\n")


if __name__ == "__main__":
    main()
