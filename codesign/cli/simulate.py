"""``codesign simulate``: a network on an accelerator, per-layer table and totals."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from codesign.errors import CodesignError, ConfigError

TABLE_COLUMNS = ["layer", "type", "macs", "cycles", "compute_cycles", "stall_cycles", "utilization", "energy_pj"]


def register(sub: argparse._SubParsersAction) -> None:
    from codesign.cli.common import add_config_flags
    from codesign.cli.workload import add_workload_flags

    p = sub.add_parser("simulate", help="simulate a network on an accelerator",
                       description="Simulate a network (zoo name, gemm:M,N,K, SCALE-Sim .csv, .yaml or .onnx) "
                                   "on a systolic accelerator: per-layer cycles, stalls, utilization, energy.")
    p.add_argument("--workload", "-w", required=True, metavar="NAME|FILE", help="zoo name, gemm:M,N,K or a file")
    add_config_flags(p)
    p.add_argument("--timing", choices=["native", "scalesim"], default="native",
                   help="native: SimPy engine with the RTL's timing; scalesim: SCALE-Sim CALC-mode cycles")
    p.add_argument("--engine", choices=["simpy", "closed_form"], default="simpy",
                   help="simpy (reference) or its closed-form twin")
    add_workload_flags(p)
    p.add_argument("--fpga", default=None, metavar="TARGET",
                   help="synthesize and place the design for this FPGA (ice40-up5k, ice40-hx8k, ecp5-25k, ecp5-85k, "
                        "xc7) and report latency at the Fmax reached (cached; minutes the first time)")
    p.add_argument("--out", "-o", default=None, metavar="FILE", help="write results (.csv, .json or .parquet)")
    p.add_argument("--quiet", "-q", action="store_true", help="print totals only")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from codesign.cli.common import config_from_args
    from codesign.cli.workload import load
    from codesign.sim.engine import simulate_network

    out = Path(args.out) if args.out else None
    if out is not None and out.suffix.lower() not in (".csv", ".json", ".parquet"):
        raise ConfigError(f"--out must end in .csv, .json or .parquet, not {args.out!r}")
    config = config_from_args(args)
    net = load(args)  # zoo name (with --arg), gemm:M,N,K or file; presets applied
    result = simulate_network(net, config, timing=args.timing, engine=args.engine)
    fpga = None
    if args.fpga:
        from codesign.hdl.fpga import fpga_metrics

        fpga = fpga_metrics(config, args.fpga)
    print_result(result, quiet=args.quiet, fpga=fpga)
    if out is not None:
        write_result(result, out)
        print(f"wrote {out}", file=sys.stderr)
    return 0


def write_result(result, out: Path) -> None:  # type: ignore[no-untyped-def]
    suffix = out.suffix.lower()
    tmp = out.with_name(out.name + ".tmp")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        if suffix == ".json":
            tmp.write_text(result.to_json())
        elif suffix == ".csv":
            result.to_dataframe().to_csv(tmp, index=False)
        else:
            result.to_dataframe().to_parquet(tmp, index=False)
        tmp.replace(out)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise CodesignError(f"cannot write {str(out)!r}: {e.strerror or e}") from e


def _fmt(v: object) -> str:
    if isinstance(v, float):
        return f"{v:.3f}" if abs(v) < 1000 else f"{v:,.0f}"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)


def print_result(result, *, quiet: bool = False, fpga: dict | None = None) -> None:  # type: ignore[no-untyped-def]
    from rich.console import Console
    from rich.table import Table

    console = Console(width=max(120, Console().width), soft_wrap=False)
    cfg = result.config
    title = (f"{result.network} (batch {result.batch}) on {cfg.rows}x{cfg.cols} {cfg.dataflow.value.upper()}, "
             f"W{cfg.weight_bits}A{cfg.act_bits}, {cfg.clock_mhz:g} MHz, timing {result.timing}")
    if not quiet:
        table = Table(title=title, show_lines=False)
        for col in TABLE_COLUMNS:
            table.add_column(col, justify="left" if col in ("layer", "type") else "right")
        for row in result.to_dataframe()[TABLE_COLUMNS].itertuples(index=False):
            table.add_row(*(_fmt(v) for v in row))
        table.add_section()
        table.add_row("total", "", _fmt(result.macs), _fmt(result.cycles), _fmt(result.compute_cycles),
                      _fmt(result.stall_cycles), _fmt(result.utilization), _fmt(result.energy_pj))
        console.print(table)
    else:
        console.print(title)
    b = result.energy_breakdown_pj
    console.print(
        f"cycles {result.cycles:,}  |  latency {result.latency_ms:.3f} ms at {cfg.clock_mhz:g} MHz  |  "
        f"energy {result.energy_uj:,.1f} uJ  |  utilization {result.utilization:.1%}  |  MACs {result.macs:,}"
    )
    console.print("energy breakdown (uJ): " + ", ".join(f"{k} {v * 1e-6:,.1f}" for k, v in b.items()))
    dram_mb = sum(r.dram_bytes for r in result.layers) / 1e6
    console.print(f"DRAM traffic {dram_mb:,.2f} MB (fusion {cfg.fusion.value}, mapping {cfg.mapping.value})")
    if result.model_only:
        console.print(f"model-only: {result.model_only}")
    if fpga:
        target = fpga["fpga_target"]
        fmax = fpga.get("fpga_fmax_mhz")
        res = (f"{fpga['fpga_luts']:,} LUTs, {fpga['fpga_ffs']:,} FFs, {fpga['fpga_dsps']} DSPs, "
               f"{fpga['fpga_brams']} BRAMs")
        if not fpga["fpga_fits"]:
            console.print(f"FPGA {target}: {fpga['fpga_fit_message']}")
        elif fmax:
            console.print(f"FPGA {target} ({fpga['fpga_part']}): {res}; Fmax {fmax:.1f} MHz -> latency "
                          f"{result.cycles / fmax:,.1f} us ({result.cycles / fmax / 1e3:,.3f} ms)")
        else:
            console.print(f"FPGA {target} ({fpga['fpga_part']}): {res}; no Fmax (synthesis only)")
