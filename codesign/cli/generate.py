"""``codesign generate``: write the accelerator's Verilog and a JSON with its parameters and timing."""

from __future__ import annotations

import argparse
import json

from codesign.cli.common import add_config_flags, config_from_args


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "generate", help="generate the accelerator's Verilog (Amaranth) and a JSON description",
        description=(
            "Build the systolic accelerator (WS or OS dataflow, rows x cols PEs, on-chip buffers and the "
            "fold controller) for the configuration and write <top>.v (one file, one named top module, ports "
            "from the component signature) and <top>.json (parameters, buffer sizes, ports, closed-form "
            "timing) into the output directory."
        ),
    )
    add_config_flags(p, gating_flag=True)
    p.add_argument("-o", "--out", required=True, metavar="DIR", help="output directory")
    p.add_argument("--json", action="store_true", help="print the JSON description instead of a summary")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from codesign.hdl.export import generate

    config = config_from_args(args)
    g = generate(config, args.out)
    desc = json.loads(g.json_path.read_text())
    if args.json:
        print(json.dumps(desc, indent=2))
        return 0
    hw, t = desc["hardware"], desc["timing"]
    print(f"wrote {g.verilog_path} (top module {g.top}) and {g.json_path}")
    print(
        f"{hw['dataflow']} {hw['rows']}x{hw['cols']}, weights {hw['weight_bits']}b, activations "
        f"{hw['act_bits']}b, accumulator {hw['acc_bits']}b, zero-gating {'on' if hw['zero_gating'] else 'off'}; "
        f"max M,N,K {hw['m_max']},{hw['n_max']},{hw['k_max']}"
    )
    print(f"cycles start->done = {t['gemm_cycles']}, folds = {t['folds']}")
    return 0
