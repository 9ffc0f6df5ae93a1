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
    "--fusion": ("fusion", str, "auto (default: residual adds in the producer's write-back where the vector "
                                "unit is built), none, eltwise or full: inter-layer dataflow (the other fused "
                                "layers of eltwise, and full: model-only)"),
    "--mapping": ("mapping", str, "fixed (default) or search: per-layer tiling"),
    "--objective": ("objective", str, "latency, energy or edp (default): what --mapping search minimizes, "
                                      "and the pick among a convolution's window plans (sim.convplan)"),
    "--depthwise": ("depthwise", str, "auto (default: the depthwise engine where the design builds it, a square WS "
                                      "array), engine or array: where depthwise convs run"),
    "--depthwise-lanes": ("depthwise_lanes", int, "channels the depthwise engine computes at once (0: cols)"),
    "--depthwise-kernel": ("depthwise_kernel", int, "the depthwise engine's window, 5 (default), 3 for small "
                                                    "parts, up to 7: kernels up to it run on the engine"),
    "--skip-pattern": ("skip_pattern", str, "with --zero-handling skip: the weight pattern the PEs decode, "
                                            "n:m such as 2:4 (built for ws) or bitmask (model-only)"),
}


class DefaultsHelpFormatter(argparse.HelpFormatter):
    """``--help`` shows each option's default (``(default: 16)``) unless the help already says it
    or there is none to show (``None``, ``False``, an empty list)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        if ("default" in text or default is None or default is False or default == []
                or default is argparse.SUPPRESS or not action.option_strings):
            return text
        return f"{text} (default: {default})"


def _config_default(field: str) -> str:
    value = getattr(AcceleratorConfig(), field)
    return str(getattr(value, "value", value))


def add_config_flags(parser: argparse.ArgumentParser, *, gating_flag: bool = False) -> None:
    g = parser.add_argument_group("accelerator (flags override the --config file)")
    g.add_argument("--config", metavar="accel.yaml", default=argparse.SUPPRESS,
                   help="YAML file with AcceleratorConfig fields (default: none, the defaults below)")
    for flag, (field, typ, help_) in CONFIG_FLAGS.items():
        # SUPPRESS: an unset flag leaves no attribute (read with getattr(..., None)), and no formatter
        # appends a second "(default: None)" to the help, which states the config's own default
        g.add_argument(flag, dest=f"cfg_{field}", type=_typed(flag, typ), default=argparse.SUPPRESS,
                       metavar=flag[2:].upper().replace("-", "_"), help=f"{help_} (default: {_config_default(field)})")
    if gating_flag:
        g.add_argument("--gating", action="store_true", help="zero-gating (same as --zero-handling gate)")
    g.add_argument("--requantize", action="store_true", default=None,
                   help="the write-back requantizes outputs to act_bits (per-channel scale, zero point, clamp); "
                        "same as requantize: true in the config (the default)")
    g.add_argument("--no-requantize", dest="requantize", action="store_false", default=None,
                   help="the write-back writes the int32 accumulators; same as requantize: false in the config")
    g.add_argument("--no-conv-windows", dest="conv_windows", action="store_false", default=None,
                   help="convolutions read im2col laid out by the host (default: feature maps read in place, "
                        "windows made on chip where the design builds them; conv_windows: false in the config)")
    g.add_argument("--no-pool-writeback", dest="pool_writeback", action="store_false", default=None,
                   help="a max pool after a stem runs as a layer of its own (default: in the stem's write-back, "
                        "where the design builds the pool stage; pool_writeback: false in the config)")
    g.add_argument("--no-dw-writeback", dest="dw_writeback", action="store_false", default=None,
                   help="a depthwise layer after a 1x1 convolution runs as a layer of its own (default: in the 1x1's "
                        "write-back where that is faster and the design builds the depthwise engine; dw_writeback: "
                        "false in the config)")
    g.add_argument("--no-pack-products", dest="pack_products", action="store_false", default=None,
                   help="one multiplier a PE (default: neighbouring WS PEs share one multiply of their activation by "
                        "both weights where it fits an 18x18 DSP block, e.g. INT4; pack_products: false in the config)")
    g.add_argument("--no-residency", dest="residency", action="store_false", default=None,
                   help="every layer's output goes to DRAM (default: kept in the input buffer for the next layer "
                        "where both run from one input tile; residency: false in the config)")


def _typed(flag: str, typ: type) -> Any:
    def convert(text: str) -> Any:
        try:
            return typ(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{flag} must be {typ.__name__}, not {text!r}") from None

    convert.__name__ = typ.__name__
    return convert


def config_from_args(args: argparse.Namespace, **defaults: Any) -> AcceleratorConfig:
    """``defaults`` < YAML file (if any) < explicit flags."""
    from codesign.errors import ConfigError
    from codesign.sim.config import load_yaml_mapping

    overrides = {f: getattr(args, f"cfg_{f}", None) for _, (f, _, _) in CONFIG_FLAGS.items()}
    overrides = {k: v for k, v in overrides.items() if v is not None}
    if getattr(args, "gating", False):
        given = overrides.get("zero_handling")
        if given is not None and str(given).lower() != "gate":
            raise ConfigError(f"--gating conflicts with --zero-handling {given}: --gating means "
                              f"--zero-handling gate; give one of them")
        overrides["zero_handling"] = "gate"
    if getattr(args, "requantize", None) is not None:
        overrides["requantize"] = bool(args.requantize)
    if getattr(args, "conv_windows", None) is not None:
        overrides["conv_windows"] = bool(args.conv_windows)
    if getattr(args, "pool_writeback", None) is not None:
        overrides["pool_writeback"] = bool(args.pool_writeback)
    if getattr(args, "dw_writeback", None) is not None:
        overrides["dw_writeback"] = bool(args.dw_writeback)
    if getattr(args, "pack_products", None) is not None:
        overrides["pack_products"] = bool(args.pack_products)
    if getattr(args, "residency", None) is not None:
        overrides["residency"] = bool(args.residency)
    where = "config"
    base = dict(defaults)
    if getattr(args, "config", None):
        where = Path(args.config).name
        data = load_yaml_mapping(args.config)
        if set(data) == {"accelerator"}:  # a top-level "accelerator:" section
            data = data["accelerator"]
        if not isinstance(data, dict):
            raise ConfigError(f"{where}: accelerator must be a mapping of AcceleratorConfig fields, "
                              f"not {type(data).__name__}")
        base.update(data)
    return AcceleratorConfig.from_dict({**base, **overrides}, where=where)


def config_file_fields(args: argparse.Namespace) -> set[str]:
    """The AcceleratorConfig fields that the --config file or a flag sets explicitly."""
    from codesign.sim.config import load_yaml_mapping

    given = {f for _, (f, _, _) in CONFIG_FLAGS.items() if getattr(args, f"cfg_{f}", None) is not None}
    if getattr(args, "config", None):
        data = load_yaml_mapping(args.config)
        data = data.get("accelerator", data) if set(data) == {"accelerator"} else data
        given |= set(data) if isinstance(data, dict) else set()
    return given


def out_path(path: str | None) -> Path | None:
    return Path(path) if path else None
