"""``codesign simulate``: a network on an accelerator, per-layer table and totals."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from codesign.errors import CodesignError, ConfigError

TABLE_COLUMNS = ["layer", "type", "macs", "cycles", "compute_cycles", "stall_cycles", "utilization", "energy_pj",
                 "dram_read_bytes", "dram_write_bytes", "buildable"]


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
    p.add_argument("--engine", type=engine_arg, default=None, metavar="{simpy,closed_form}",
                   help="simpy (the reference, default) or its closed-form twin closed_form (alias analytic); "
                        "--timing native only")
    add_workload_flags(p)
    p.add_argument("--fpga", default=None, metavar="TARGET",
                   help="synthesize and place the design for this FPGA (ice40-up5k, ice40-hx8k, ecp5-25k, ecp5-85k, "
                        "xc7) and report latency at the Fmax reached (cached; minutes the first time)")
    p.add_argument("--fpga-place", action="store_true",
                   help="with --fpga: place without routing and take nextpnr's Fmax estimate after placement "
                        "(a fraction of the time; the output says which Fmax it is)")
    p.add_argument("--clip-bits", action="store_true",
                   help="run workload operands wider than the array's weight/act bits at the array's bits (a "
                        "note names the layers; recorded as clip_bits in the results) instead of an error")
    p.add_argument("--out", "-o", default=None, metavar="FILE",
                   help="write results: .json (summary with DRAM bytes, config, layers), .csv or .parquet (layers)")
    p.add_argument("--quiet", "-q", action="store_true", help="print totals only")
    p.set_defaults(func=run)


def engine_arg(text: str) -> str:
    from codesign.cli.sweep import engine_arg as sweep_engine_arg

    return sweep_engine_arg(text)


def check_out(path: str | None, suffixes: tuple[str, ...] = (".csv", ".json", ".parquet")) -> Path | None:
    """``--out``, checked before any work: its suffix, and a parent that is a writable directory."""
    if not path:
        return None
    out = Path(path)
    if out.suffix.lower() not in suffixes:
        raise ConfigError(f"--out must end in {', '.join(suffixes[:-1])} or {suffixes[-1]}, not {path!r}")
    if out.is_dir():
        raise ConfigError(f"--out {path!r} is a directory, not a file")
    parent = next((p for p in [out.parent, *out.parent.parents] if p.exists()), Path("."))
    if not parent.is_dir():
        raise ConfigError(f"--out {path!r}: {str(parent)!r} is a file, not a directory")
    if not os.access(parent, os.W_OK):
        raise ConfigError(f"--out {path!r}: directory {str(parent)!r} is not writable")
    if out.parent.exists():  # a directory that refuses new files (a read-only or virtual file system)
        probe = out.with_name(f".{out.name}.probe")
        try:
            probe.touch()
            probe.unlink()
        except OSError as e:
            raise ConfigError(f"--out {path!r} cannot be written: {e.strerror or e}") from None
    return out


def _preset_bits(args: argparse.Namespace) -> dict[str, int]:
    """The array bits a --preset asks for, where neither the --config file nor a flag sets them."""
    if not args.preset:
        return {}
    from codesign.cli.common import config_file_fields
    from codesign.workloads.presets import get_preset

    p = get_preset(args.preset)
    given = config_file_fields(args)
    bits = {"weight_bits": p.weight_bits, "act_bits": p.act_bits}
    return {k: v for k, v in bits.items() if v is not None and k not in given}


def _check_flags(args: argparse.Namespace, config) -> None:  # type: ignore[no-untyped-def]
    """Refuse flags that would change nothing, with the reason."""
    from codesign.sim.config import ZeroHandling

    if args.engine is not None and args.timing == "scalesim":
        raise ConfigError(f"--engine {args.engine} has no effect with --timing scalesim (SCALE-Sim's closed-form "
                          f"cycles use no engine); drop one of them")
    if config.zero_handling is ZeroHandling.NONE:
        preset_sparsity = None
        if args.preset:
            from codesign.workloads.presets import get_preset

            preset_sparsity = get_preset(args.preset).weight_sparsity
        for flag, value in (("--sparsity", args.sparsity), ("--act-density", args.act_density),
                            ("--preset", args.preset if preset_sparsity else None)):
            if value is not None:
                raise ConfigError(
                    f"{flag} {value} has no effect with zero_handling none (zeros are multiplied like any other "
                    f"value, so the result is the dense one): add --zero-handling gate (saves MAC energy) or "
                    f"skip (saves cycles and DRAM traffic)")


def workload_bits(net) -> str:  # type: ignore[no-untyped-def]
    """``W4A8`` when every GEMM layer of ``net`` has the same weight and input bits, else ``mixed``."""
    pairs = {(layer.weights.bits, layer.inputs.bits) for layer in net if layer.gemm(net.batch) is not None}
    if len(pairs) == 1:
        w, a = next(iter(pairs))
        return f"W{w}A{a}"
    return "mixed precision" if pairs else "no GEMM layers"


def run(args: argparse.Namespace) -> int:
    from codesign.cli.common import config_from_args
    from codesign.cli.workload import load
    from codesign.sim.engine import simulate_network

    out = check_out(args.out)
    if args.fpga_place and not args.fpga:
        raise ConfigError("--fpga-place needs --fpga TARGET")
    config = config_from_args(args, **_preset_bits(args))
    net = load(args)  # zoo name (with --arg), gemm:M,N,K or file; presets applied (and checked)
    _check_flags(args, config)
    from codesign.workloads.precision import fit_to_array

    bits = workload_bits(net)  # before clipping: what the workload is
    net, notes = fit_to_array(net, config.weight_bits, config.act_bits, clip=args.clip_bits)
    for note in notes:
        print(f"codesign simulate: note: {note}", file=sys.stderr)
    result = simulate_network(net, config, timing=args.timing, engine=args.engine or "simpy")
    result.meta["clip_bits"] = args.clip_bits
    result.meta["clipped"] = "; ".join(notes)
    from codesign.workloads import trained

    if trained.has_weights(net.name):  # a trained network: its accuracy at these bits and sparsity
        from codesign.accuracy import sweep_accuracy

        result.meta["accuracy"] = sweep_accuracy(net, config)
    if result.program_cycles:  # the sequencer's cost is modelled for any network: say whether this one runs on it
        from codesign.errors import CodesignError
        from codesign.hdl.verify import program_steps

        try:
            program_steps(net, config, net.batch)
        except CodesignError as e:
            result.meta["program_refused"] = str(e)
    fpga = None
    if args.fpga:
        from codesign.hdl.fpga import fpga_metrics

        fpga = fpga_metrics(config, args.fpga, pnr="place" if args.fpga_place else True)
    array_bits = f"W{config.weight_bits}A{config.act_bits}"
    if bits != array_bits and bits.startswith("W") and not notes:
        print(f"codesign simulate: note: the workload is {bits}, the array {array_bits}: operands narrower than "
              f"the array move and are stored at their own width", file=sys.stderr)
    print_result(result, quiet=args.quiet, fpga=fpga, workload_bits=bits)
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


def print_table(console, title: str, columns, rows, *, total=None,  # type: ignore[no-untyped-def]
                text_columns=("layer",)) -> None:
    """A rich table whose numbers are never cut or broken: numeric columns keep their full width,
    text columns (layer names) wrap; when even that does not fit the terminal, the numeric columns
    are split over several tables, each with the first column. Output that is not a terminal
    gets the table's full width."""
    from rich.table import Table

    cells = [*rows, *([total] if total else [])]
    widths = [max([len(str(c)), *(len(r[i]) for r in cells)]) for i, c in enumerate(columns)]
    if not console.is_terminal:
        console.width = max(sum(widths) + 3 * len(columns) + 1, len(title), 80)
    text_idx = [i for i, c in enumerate(columns) if c in text_columns]
    num_idx = [i for i, c in enumerate(columns) if c not in text_columns]
    key = text_idx[:1]
    # text columns may shrink to 12 characters; split the numeric ones into groups that fit
    base = sum(min(widths[i], 12) + 3 for i in text_idx) + 1
    groups: list[list[int]] = [[]]
    for i in num_idx:
        used = base + sum(widths[j] + 3 for j in groups[-1])
        if groups[-1] and used + widths[i] + 3 > console.width:
            groups.append([])
        groups[-1].append(i)
    for n, group in enumerate(groups):
        shown = sorted((text_idx if n == 0 else key) + group)
        part = f" ({n + 1}/{len(groups)})" if len(groups) > 1 else ""
        table = Table(title=title + part, show_lines=False)
        for i in shown:
            if i in text_idx:
                table.add_column(columns[i], justify="left", overflow="fold", min_width=min(widths[i], 12))
            else:
                table.add_column(columns[i], justify="right", no_wrap=True, min_width=widths[i])
        for r in rows:
            table.add_row(*(r[i] for i in shown))
        if total:
            table.add_section()
            table.add_row(*(total[i] for i in shown))
        console.print(table)


def _fmt(v: object) -> str:
    if hasattr(v, "item"):  # a numpy scalar from the layer table
        v = v.item()
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float) and v.is_integer() and abs(v) >= 1000:
        return f"{v:,.0f}"
    if isinstance(v, float):
        return f"{v:.3f}" if abs(v) < 1000 else f"{v:,.0f}"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)


def print_result(result, *, quiet: bool = False, fpga: dict | None = None,  # type: ignore[no-untyped-def]
                 workload_bits: str | None = None) -> None:
    from rich.console import Console

    console = Console(soft_wrap=True)
    cfg = result.config
    array_bits = f"W{cfg.weight_bits}A{cfg.act_bits}"
    shown = array_bits if workload_bits in (None, array_bits) else f"{array_bits} array, workload {workload_bits}"
    title = (f"{result.network} (batch {result.batch}) on {cfg.rows}x{cfg.cols} {cfg.dataflow.value.upper()}, "
             f"{shown}, {cfg.clock_mhz:g} MHz, timing {result.timing}")
    if not quiet:
        rows = [[_fmt(v) for v in row] for row in result.to_dataframe()[TABLE_COLUMNS].itertuples(index=False)]
        total = ["total", "", _fmt(result.macs), _fmt(result.cycles), _fmt(result.compute_cycles),
                 _fmt(result.stall_cycles), _fmt(result.utilization), _fmt(result.energy_pj),
                 _fmt(result.dram_read_bytes), _fmt(result.dram_write_bytes), _fmt(result.buildable)]
        print_table(console, title, TABLE_COLUMNS, rows, total=total, text_columns=("layer", "type"))
    else:
        console.print(title)
    b = result.energy_breakdown_pj
    console.print(
        f"cycles {result.cycles:,}  |  latency {result.latency_ms:.3f} ms at {cfg.clock_mhz:g} MHz  |  "
        f"energy {result.energy_uj:,.1f} uJ  |  utilization {result.utilization:.1%}  |  MACs {result.macs:,}"
    )
    console.print("energy breakdown (uJ): " + ", ".join(f"{k} {v * 1e-6:,.1f}" for k, v in b.items()))
    console.print(f"DRAM traffic {result.dram_bytes / 1e6:,.2f} MB: read {result.dram_read_bytes:,} bytes, written "
                  f"{result.dram_write_bytes:,} bytes (fusion {cfg.fusion.value}, mapping {cfg.mapping.value})")
    kept = [r.layer for r in result.layers if r.output_to == "onchip" and not r.model_only]
    if kept:
        console.print(f"on chip: {len(kept)} layer outputs kept in the input buffer for the next layer (residency; "
                      "--no-residency sends them to DRAM)")
    from codesign.sim.result import design_model_only

    reason = design_model_only(cfg)
    console.print("buildable: yes (codesign generate builds this design)" if not reason
                  else f"buildable: no ({reason})")
    if result.model_only:
        console.print(f"model-only: {result.model_only}")
    if result.meta.get("program_refused"):
        console.print(f"from one start: not on the network top ({result.meta['program_refused']})")
    elif result.program_cycles:
        records = sum(1 for r in result.layers if not r.fused_into)
        console.print(f"from one start (network top, {records} descriptor records): {result.program_cycles:,} cycles "
                      f"(+{result.program_cycles - sum(r.cycles for r in result.layers if not r.fused_into):,} "
                      "sequencer)")
    if "accuracy" in result.meta:
        console.print(f"accuracy (top-1, integer inference of the bundled test set): {result.meta['accuracy']:.4f}")
    if fpga:
        target = fpga["fpga_target"]
        fmax = fpga.get("fpga_fmax_mhz")
        res = (f"{fpga['fpga_luts']:,} LUTs, {fpga['fpga_ffs']:,} FFs, {fpga['fpga_dsps']} DSPs, "
               f"{fpga['fpga_brams']} BRAMs")
        if not fpga["fpga_fits"]:
            console.print(f"FPGA {target}: {fpga['fpga_fit_message']}")
        elif fmax:
            basis = fpga.get("fpga_fmax_basis") or "place and route"
            console.print(f"FPGA {target} ({fpga['fpga_part']}): {res}; Fmax {fmax:.1f} MHz ({basis}) -> latency "
                          f"{result.cycles / fmax:,.1f} us ({result.cycles / fmax / 1e3:,.3f} ms)")
        else:
            console.print(f"FPGA {target} ({fpga['fpga_part']}): {res}; no Fmax (synthesis only)")
