"""``codesign verify``: run a layer's quantized tensors through the RTL (Icarus + cocotb) and compare."""

from __future__ import annotations

import argparse
import json

from codesign.cli.common import add_config_flags, config_from_args
from codesign.errors import ConfigError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "verify", help="verify the generated RTL on a GEMM or a workload layer against numpy and the simulator",
        description=(
            "Generate the accelerator, simulate it with Icarus Verilog driven by cocotb on the layer's seeded "
            "quantized (sparse) tensors (im2col for convolutions, cut into tiles that fit the buffers) and "
            "report per layer: outputs_match (bit for bit against numpy), rtl_cycles vs sim_cycles (start to "
            "done, operands on chip) and rtl_enabled_macs vs sim_active_macs. Exit status 0 when everything "
            "agrees, 1 on a mismatch, 2 on bad input."
        ),
    )
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--gemm", metavar="M,N,K", help="a bare GEMM [M,K] @ [K,N]")
    what.add_argument("--workload", metavar="NAME|FILE", help="zoo name, gemm:M,N,K, or a workload file")
    p.add_argument("--layer", metavar="NAME", help="layer of --workload to run (required with --workload)")
    add_config_flags(p, gating_flag=True)
    p.add_argument("--density", metavar="D", help="weight density (0.5) or N:M pattern (2:4)")
    p.add_argument("--seed", type=int, default=0, help="seed of the tensors and of the stream idle pattern")
    p.add_argument("--batch", type=int, default=1, help="batch size")
    p.add_argument("--json", action="store_true", help="print results as JSON")
    p.set_defaults(func=run)


def _gemm(text: str) -> tuple[int, int, int]:
    try:
        m, n, k = (int(x) for x in text.split(","))
    except ValueError:
        raise ConfigError(f"--gemm must be M,N,K (three positive integers), not {text!r}") from None
    for name, v in (("M", m), ("N", n), ("K", k)):
        if v < 1:
            raise ConfigError(f"--gemm {name} must be a positive integer, not {v}")
    return m, n, k


def run(args: argparse.Namespace) -> int:
    from codesign.hdl.verify import verify

    config = config_from_args(args)
    if args.batch < 1:
        raise ConfigError(f"--batch must be a positive integer, not {args.batch}")
    density: str | None = args.density
    if density is not None:
        from codesign.workloads.operand import parse_sparsity

        parse_sparsity(density)  # validate before building anything
    if args.gemm is not None:
        results = verify(config, gemm=_gemm(args.gemm), density=density, seed=args.seed, batch=args.batch)
    else:
        if not args.layer:
            raise ConfigError("--layer is required with --workload")
        results = verify(config, workload=args.workload, layer=args.layer, density=density, seed=args.seed,
                         batch=args.batch)
    if args.json:
        print(json.dumps([r.to_dict() for r in results], indent=2))
    else:
        print(f"{'layer':<24}{'M,N,K x groups':>22}{'tiles':>7}{'outputs':>9}{'rtl_cycles':>12}"
              f"{'sim_cycles':>12}{'rtl_en_macs':>13}{'sim_act_macs':>14}  ok")
        for r in results:
            dims = f"{r.m},{r.n},{r.k} x{r.groups}"
            print(f"{r.layer:<24}{dims:>22}{r.tiles:>7}{'match' if r.outputs_match else 'DIFFER':>9}"
                  f"{r.rtl_cycles:>12}{r.sim_cycles:>12}{r.rtl_enabled_macs:>13}{r.sim_active_macs:>14}"
                  f"  {'yes' if r.ok else 'NO'}")
    return 0 if all(r.ok for r in results) else 1
