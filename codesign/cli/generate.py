"""``codesign generate``: write the accelerator's Verilog and a JSON with its parameters and timing."""

from __future__ import annotations

import argparse
import json

from codesign.cli.common import add_config_flags, config_from_args


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "generate", help="generate the accelerator's Verilog (Amaranth) and a JSON description",
        description=(
            "Build the whole-layer accelerator (WS, OS or IS systolic array of rows x cols PEs, IS as WS on the "
            "transposed GEMM; double-buffered "
            "on-chip buffers, tile sequencer, an AXI4 master DMA and AXI4-Lite registers) for the configuration "
            "and write into the output directory: <top>.v (one file, one named top module), <top>_regs.h and "
            "<top>_regs.py (the register map: layer descriptor, start/status, counters) and <top>.json "
            "(parameters, buffers, bus, ports, register map, closed-form timing)."
        ),
    )
    add_config_flags(p, gating_flag=True)
    p.add_argument("-o", "--out", required=True, metavar="DIR", help="output directory")
    p.add_argument("--network", action="store_true",
                   help="generate the network top: the same accelerator behind a network sequencer that runs a "
                        "descriptor list in DRAM from one start (its registers and record format in the map)")
    p.add_argument("--json", action="store_true", help="print the JSON description instead of a summary")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from codesign.hdl.export import generate

    config = config_from_args(args)
    g = generate(config, args.out, network=args.network)
    desc = json.loads(g.json_path.read_text())
    if args.json:
        print(json.dumps(desc, indent=2))
        return 0
    hw, t = desc["hardware"], desc["timing"]
    print(f"wrote {g.verilog_path} (top module {g.top}), {g.header_path}, {g.regs_path} and {g.json_path}")
    print(
        f"{hw['dataflow']} {hw['rows']}x{hw['cols']}, weights {hw['weight_bits']}b, activations "
        f"{hw['act_bits']}b, accumulator {hw['acc_bits']}b, zero-gating {'on' if hw['zero_gating'] else 'off'}"
        + (f", {hw['skip_pattern']} skipping (K counts weight slots)" if hw.get("skip_pattern") else "")
        + f"; max M,N,K {hw['m_max']},{hw['n_max']},{hw['k_max']}"
    )
    print(f"AXI4 master {hw['bus_bytes'] * 8} bits, AXI4-Lite registers: {len(desc['register_map']['registers'])}; "
          f"buffers double-buffered: {'yes' if hw['slots'] == 2 else 'no'}")
    print(f"on-chip GEMM cycles = {t['gemm_cycles']}, folds = {t['folds']}; a tile's compute = "
          f"{t['tile_compute_cycles']}; DMA read = {t['dma_read_cycles']}")
    return 0
