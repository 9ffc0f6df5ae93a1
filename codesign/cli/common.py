"""Flags shared by subcommands: accelerator configuration and output files."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from codesign.sim.config import AcceleratorConfig

# flag -> AcceleratorConfig field (only flags the user gave override the YAML file)
CONFIG_FLAGS: dict[str, tuple[str, type, str]] = {
    "--rows": ("rows", int, "PE array rows"),
    "--cols": ("cols", int, "PE array columns"),
    "--dataflow": ("dataflow", str, "ws, os or is"),
    "--weight-bits": ("weight_bits", int, "weight bit-width"),
    "--act-bits": ("act_bits", int, "activation bit-width"),
    "--acc-bits": ("acc_bits", int, "accumulator bit-width"),
    "--zero-handling": ("zero_handling", str, "none, gate or skip"),
    "--clock-mhz": ("clock_mhz", float, "clock frequency in MHz"),
    "--dram-bytes-per-cycle": ("dram_bytes_per_cycle", float, "DRAM bandwidth in bytes per cycle"),
    "--energy-table": ("energy_table", str, "energy table name or YAML file"),
    "--fusion": ("fusion", str, "none, eltwise (default) or full: inter-layer dataflow (model-only)"),
    "--mapping": ("mapping", str, "fixed (default) or search: per-layer tiling"),
    "--objective": ("objective", str, "latency, energy or edp (default): what --mapping search minimizes"),
    "--depthwise": ("depthwise", str, "array (default) or engine: where depthwise convs run (engine: model-only)"),
    "--depthwise-lanes": ("depthwise_lanes", int, "channels the depthwise engine computes at once (0: cols)"),
}


def add_config_flags(parser: argparse.ArgumentParser, *, gating_flag: bool = False) -> None:
    g = parser.add_argument_group("accelerator")
    g.add_argument("--config", metavar="accel.yaml", help="YAML file with AcceleratorConfig fields")
    for flag, (field, typ, help_) in CONFIG_FLAGS.items():
        g.add_argument(flag, dest=f"cfg_{field}", type=_typed(flag, typ), default=None, help=help_)
    if gating_flag:
        g.add_argument("--gating", action="store_true", help="zero-gating (same as --zero-handling gate)")


def _typed(flag: str, typ: type) -> Any:
    def convert(text: str) -> Any:
        try:
            return typ(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{flag} must be {typ.__name__}, not {text!r}") from None

    convert.__name__ = typ.__name__
    return convert


def config_from_args(args: argparse.Namespace, **defaults: Any) -> AcceleratorConfig:
    """YAML file (if any) < explicit flags. ``defaults`` apply under both."""
    overrides = {f: getattr(args, f"cfg_{f}") for _, (f, _, _) in CONFIG_FLAGS.items()}
    overrides = {k: v for k, v in overrides.items() if v is not None}
    if getattr(args, "gating", False):
        overrides["zero_handling"] = "gate"
    if getattr(args, "config", None):
        base = AcceleratorConfig.from_yaml(args.config).to_dict()
    else:
        base = dict(defaults)
    return AcceleratorConfig.from_dict({**base, **overrides}, where=str(getattr(args, "config", None) or "config"))


def out_path(path: str | None) -> Path | None:
    return Path(path) if path else None
