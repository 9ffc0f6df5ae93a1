"""``codesign verify``: run a layer's quantized tensors through the RTL (cocotb on Verilator or Icarus) and compare."""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from codesign.cli.common import add_config_flags, config_from_args
from codesign.errors import ConfigError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "verify", help="verify the whole-layer RTL on a GEMM or workload layers against numpy and the simulator",
        description=(
            "Generate the whole-layer accelerator (AXI4-Lite registers, AXI4 DMA, tile sequencer, array), lay "
            "the layer's seeded quantized (sparse) tensors out in DRAM as the tiling plan says (im2col'd "
            "activations), run the whole layer from one start on an RTL simulator (Verilator, or Icarus Verilog) "
            "driven by cocotb, against an "
            "AXI memory model with the config's latency and bandwidth, and report per layer: outputs_match (C "
            "read back from DRAM, bit for bit against numpy), and rtl_* vs sim_* for cycles, stall cycles, DRAM "
            "bytes read and written (sim_* are exactly what `codesign simulate` reports for the layer) and "
            "enabled MACs. --stall P adds random wait cycles on every AXI channel (outputs must not change; "
            "cycles at least the ideal). Over several layers it prints an estimate of the RTL time before it "
            "starts and a line per finished layer on stderr. "
            "Exit status 0 when everything agrees, 1 on a mismatch, 2 on bad input."
        ),
    )
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--gemm", metavar="M,N,K", help="a bare GEMM [M,K] @ [K,N]")
    what.add_argument("--workload", metavar="NAME|FILE", help="zoo name, gemm:M,N,K, or a workload file")
    p.add_argument("--layer", metavar="NAME", help="layer of --workload to run (default: every layer with a GEMM)")
    p.add_argument("--network", action="store_true",
                   help="run --workload end to end (implies requantize). A trained network (digits_cnn): its "
                        "integer inference layer after layer on the RTL against the numpy integer reference: "
                        "predictions_match, outputs_match, rtl/sim cycles. Any other network: seeded integer "
                        "weights, the whole network from ONE start on the network top (a descriptor list in DRAM, "
                        "each layer reading its producer's output in place): outputs_match against the numpy "
                        "integer reference, every layer's counters against the simulator's, and the program's "
                        "cycles (rtl_cycles) against codesign simulate's program_cycles (sim_cycles); a layer that "
                        "needs the host between layers is refused in one line")
    p.add_argument("--images", type=int, default=8, help="with --network: test images to run (default: 8)")
    p.add_argument("--preset", metavar="P", help="with --network: quantization preset (int8, w4a8, ...)")
    p.add_argument("--sparsity", metavar="S", help="with --network: weight pruning (0.5, 2:4)")
    add_config_flags(p, gating_flag=True)
    p.add_argument("--density", metavar="D", help="weight density (0.5) or N:M pattern (2:4)")
    p.add_argument("--simulator", metavar="SIM",
                   help="RTL simulator: verilator or icarus (default: $CODESIGN_SIMULATOR, else verilator when "
                        "installed, else icarus)")
    p.add_argument("--seed", type=int, default=0,
                   help="seed of the tensors and of the memory's stall pattern (default: 0)")
    p.add_argument("--stall", type=float, default=0.0, metavar="P",
                   help="probability of a random wait cycle on every AXI channel (functional run; default: 0)")
    p.add_argument("--batch", type=int, default=1, help="batch size (default: 1)")
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


class _Progress:
    """The estimate before a multi-layer RTL run and a line per finished layer, on stderr."""

    def __init__(self) -> None:
        self.total = 0
        self.t0 = time.perf_counter()

    def start(self, est: Any) -> None:
        self.total = est.layers
        self.t0 = time.perf_counter()
        if est.layers > 1:
            what = "" if est.built else " (build included)"
            print(f"verify: {est.layers} layers, {est.sim_cycles:,} simulated cycles on {est.simulator} in "
                  f"{est.runs} run{'s' if est.runs > 1 else ''}: about {_duration(est.seconds)}{what}",
                  file=sys.stderr, flush=True)

    def layer(self, i: int, rec: dict[str, Any]) -> None:
        if self.total > 1:
            done = i + 1
            wall = time.perf_counter() - self.t0
            name = rec.get("layer", f"layer {done}")
            print(f"verify: [{done}/{self.total}] {name} done, {rec.get('cycles', 0):,} cycles, "
                  f"{_duration(wall)} elapsed", file=sys.stderr, flush=True)


def _duration(seconds: float) -> str:
    s = round(seconds)
    return f"{s // 3600} h {s % 3600 // 60} min" if s >= 3600 else f"{s // 60} min {s % 60} s" if s >= 60 else f"{s} s"


def run(args: argparse.Namespace) -> int:
    from codesign.hdl.bench.runner import check_simulator
    from codesign.hdl.verify import verify

    config = config_from_args(args)
    simulator = check_simulator(args.simulator)
    if args.batch < 1:
        raise ConfigError(f"--batch must be a positive integer, not {args.batch}")
    density: str | None = args.density
    if density is not None:
        from codesign.workloads.operand import parse_sparsity

        parse_sparsity(density)  # validate before building anything
    if not 0 <= args.stall < 1:
        raise ConfigError(f"--stall must be a probability from 0 to below 1, not {args.stall!r}")
    if args.network:
        return _network(args, config, simulator)
    for flag in ("preset", "sparsity"):
        if getattr(args, flag) is not None:
            raise ConfigError(f"--{flag} needs --network (for one layer use --density), not {getattr(args, flag)!r}")
    progress = _Progress()
    opts = {"density": density, "seed": args.seed, "batch": args.batch, "stall": args.stall, "simulator": simulator,
            "on_start": progress.start, "on_layer": progress.layer}
    if args.gemm is not None:
        results = verify(config, gemm=_gemm(args.gemm), **opts)
    else:
        results = verify(config, workload=args.workload, layer=args.layer, **opts)
    ok = all(r.ok for r in results)
    if args.json:
        print(json.dumps({"ok": ok, "simulator": simulator, "config": config.to_dict(),
                          "layers": [r.to_dict() for r in results]}, indent=2))
    else:
        print(f"{'layer':<24}{'M,N,K x groups':>20}{'tiles':>6}{'outputs':>8}{'rtl/sim cycles':>18}"
              f"{'rtl/sim stalls':>18}{'rtl/sim DRAM rd B':>20}{'rtl/sim wr B':>16}{'rtl/sim MACs':>18}  ok")
        for r in results:
            dims = f"{r.m},{r.n},{r.k} x{r.groups}"
            print(f"{r.layer:<24}{dims:>20}{r.tiles:>6}{'match' if r.outputs_match else 'DIFFER':>8}"
                  f"{f'{r.rtl_cycles}/{r.sim_cycles}':>18}{f'{r.rtl_stall_cycles}/{r.sim_stall_cycles}':>18}"
                  f"{f'{r.rtl_dram_read_bytes}/{r.sim_dram_read_bytes}':>20}"
                  f"{f'{r.rtl_dram_write_bytes}/{r.sim_dram_write_bytes}':>16}"
                  f"{f'{r.rtl_enabled_macs}/{r.ref_enabled_macs}':>18}  {'yes' if r.ok else 'NO'}")
    return 0 if ok else 1


def _network(args: argparse.Namespace, config, simulator: str) -> int:  # type: ignore[no-untyped-def]
    from codesign.network_verify import verify_network

    if args.workload is None:
        raise ConfigError("--network needs --workload NAME (a trained network, e.g. digits_cnn), not --gemm")
    if args.layer is not None or args.density is not None:
        raise ConfigError("--network runs every layer of the trained network; drop --layer/--density")
    if isinstance(args.images, bool) or args.images < 1:
        raise ConfigError(f"--images must be a positive integer, not {args.images}")
    if not config.requantize:
        config = config.replace(requantize=True)
    from codesign.workloads import trained

    if args.workload not in trained.names():  # seeded integer weights: the whole network from one start
        return _program(args, config, simulator)
    r = verify_network(args.workload, config, images=args.images, preset=args.preset, sparsity=args.sparsity,
                       seed=args.seed, stall=args.stall, simulator=simulator)
    d = r.to_dict()
    if args.json:
        print(json.dumps({**d, "config": config.to_dict()}, indent=2))
    else:
        print(f"{r.network}: {r.images} images, layer by layer on the RTL (requantized write-back)")
        for lr in r.layers:
            print(f"  {lr.layer:<12} outputs {'match' if lr.outputs_match else 'DIFFER':<7} cycles rtl/sim "
                  f"{lr.rtl_cycles}/{lr.sim_cycles}")
        print(f"predictions {'match' if r.predictions_match else 'DIFFER'}: rtl {list(r.predictions)} reference "
              f"{list(r.reference_predictions)} labels {list(r.labels)}; accuracy {d['accuracy']:.3f}")
        print(f"network cycles rtl/sim {r.rtl_cycles}/{r.sim_cycles}: {'ok' if r.ok else 'MISMATCH'}")
    return 0 if r.ok else 1


def _program(args: argparse.Namespace, config, simulator: str) -> int:  # type: ignore[no-untyped-def]
    from codesign.hdl.verify import verify_program

    for flag in ("preset", "sparsity"):
        if getattr(args, flag) is not None:
            raise ConfigError(f"--{flag} needs a trained --workload (digits_cnn), not {getattr(args, flag)!r}")
    if args.batch != 1:
        raise ConfigError(f"--batch must be 1 for a network from one start, not {args.batch}")
    progress = _Progress()
    r = verify_program(args.workload, config, seed=args.seed, stall=args.stall, simulator=simulator,
                       on_start=progress.start)
    if args.json:
        print(json.dumps({**r.to_dict(), "config": config.to_dict()}, indent=2))
    else:
        print(f"{r.network}: {r.records} layers from one start on the network top ({r.simulator})")
        for lr in r.layers:
            print(f"  {lr.layer:<24} outputs {'match' if lr.outputs_match else 'DIFFER':<7} cycles rtl/sim "
                  f"{lr.rtl_cycles}/{lr.sim_cycles}  {'ok' if lr.ok else 'MISMATCH'}")
        print(f"program cycles rtl/sim {r.rtl_cycles}/{r.sim_cycles}: {'ok' if r.ok else 'MISMATCH'}")
    return 0 if r.ok else 1
