"""The accelerator configuration: one frozen, validated dataclass read by the simulator and the HDL."""

from __future__ import annotations

import dataclasses
import enum
import functools
import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from codesign.errors import ConfigError


class Dataflow(str, enum.Enum):
    """Which GEMM dimension is held stationary in the PEs (SCALE-Sim's names)."""

    WS = "ws"  # weight stationary: K on rows, N on columns, M streams
    OS = "os"  # output stationary: M on rows, N on columns, K streams
    IS = "is"  # input stationary:  K on rows, M on columns, N streams

    def __str__(self) -> str:
        return self.value


class ZeroHandling(str, enum.Enum):
    """What the PEs do with zero operands."""

    NONE = "none"  # compute them like any value
    GATE = "gate"  # a MAC with a zero operand is not enabled: saves energy, not cycles
    SKIP = "skip"  # zero weights are compressed away (with metadata): saves cycles and energy

    def __str__(self) -> str:
        return self.value


class Fusion(str, enum.Enum):
    """What crosses layer boundaries on chip (:mod:`codesign.sim.fusion`).

    * ``auto`` (the default): what the generated hardware does. A residual add runs in the
      requantized write-back of the convolution or linear layer before it, on the built vector unit
      (its other operand read with that layer's loads), where the design builds the vector unit;
      every other layer reads its operands from DRAM and writes its output to DRAM. ``codesign
      simulate``'s rows are then what ``codesign verify`` checks on the RTL.
    * ``none``: every layer alone, through DRAM (also built).
    * ``eltwise``: activation, BN, scalar and per-channel ops and residual adds run in the
      producer's write-back on the vector unit, as edge accelerators do (NVDLA's SDP, Arm
      Ethos-U's output stage, Gemmini's mvout path): no DRAM round trip of their own. Built for
      the residual adds ``auto`` fuses; the other fused layers are model-only.
    * ``full``: also keep a layer's output on chip (in the input SRAM) for its consumers when it
      fits next to what else is resident there (model-only).
    """

    AUTO = "auto"
    NONE = "none"
    ELTWISE = "eltwise"
    FULL = "full"

    def __str__(self) -> str:
        return self.value


class Mapping(str, enum.Enum):
    """How each layer's tiling plan is chosen: the fixed heuristic or a search per layer."""

    FIXED = "fixed"
    SEARCH = "search"

    def __str__(self) -> str:
        return self.value


class Objective(str, enum.Enum):
    """What the mapping search minimizes per layer (and the pick among a convolution's window plans:
    :func:`codesign.sim.convplan._exact_pick`)."""

    LATENCY = "latency"
    ENERGY = "energy"
    EDP = "edp"

    def __str__(self) -> str:
        return self.value


class Depthwise(str, enum.Enum):
    """Where depthwise convolutions run: on the PE array (one group per on-chip GEMM), on the
    channel-parallel depthwise engine beside it (built beside a square weight-stationary array,
    :mod:`codesign.sim.dwplan`; elsewhere model-only, :mod:`codesign.sim.vector_engine`), or ``auto``
    (the default): on the engine when the design builds it, else on the array."""

    ARRAY = "array"
    ENGINE = "engine"
    AUTO = "auto"

    def __str__(self) -> str:
        return self.value


def _enum(cls: type[enum.Enum], field: str, value: object) -> Any:
    if isinstance(value, cls):
        return value
    text = value.lower() if isinstance(value, str) else value
    try:
        return cls(text)
    except ValueError:
        choices = ", ".join(m.value for m in cls)  # type: ignore[attr-defined]
        raise ConfigError(f"{field} must be one of {choices}, not {value!r}") from None


def _positive_int(field: str, value: object, minimum: int = 1, maximum: int | None = None) -> int:
    ok = not isinstance(value, bool) and isinstance(value, int) and value >= minimum
    if ok and maximum is not None:
        ok = value <= maximum  # type: ignore[operator]
    if not ok:
        if maximum is not None:
            raise ConfigError(f"{field} must be an integer from {minimum} to {maximum}, not {value!r}")
        what = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
        raise ConfigError(f"{field} must be {what}, not {value!r}")
    return value  # type: ignore[return-value]


def _skip_pattern(value: object) -> str:
    """``"n:m"`` with 1 <= n < m <= 16, or ``"bitmask"``."""
    text = value.strip().lower() if isinstance(value, str) else None
    if text == "bitmask":
        return text
    parts = text.split(":") if text else []
    if len(parts) == 2 and all(p.isdigit() for p in parts):
        n, m = int(parts[0]), int(parts[1])
        if 1 <= n < m <= 16:
            return f"{n}:{m}"
    raise ConfigError(f"skip_pattern must be 'n:m' with 1 <= n < m <= 16 (such as '2:4') or 'bitmask', "
                      f"not {value!r}")


#: values beyond these are unit mistakes, not designs: a clock in Hz or kHz given as MHz, a bandwidth
#: in bytes per second or per kilocycle given per cycle
MAX_CLOCK_MHZ = 10_000.0  # 10 GHz
MIN_DRAM_BYTES_PER_CYCLE = 1e-3
#: the narrowest DRAM address the RTL builds: 64 KiB (its burst walk cuts at 4 KiB pages: 12 bits and more)
MIN_DRAM_ADDR_BITS = 16
#: the narrowest GEMM dimension the RTL builds: 255 (a tile of the largest built array, 64, with room)
MIN_DIM_BITS = 8


def min_buffer_bytes(config: AcceleratorConfig) -> dict[str, int]:
    """The smallest size of each buffer that holds one array word, twice that when double-buffered:
    the larger of the ``rows x cols`` operands the array holds in one fold (inputs, weights; one row of
    ``cols`` accumulators for the output buffer) and the tile planner's smallest tile, one fold in the
    array's word geometry (:func:`codesign.sim.tileplan.plan_tiles` refuses less). A smaller buffer is
    a unit slip (bytes for KiB), refused when the config is made, so that every config plans."""
    from codesign.sim.tileplan import WordGeometry, skip_hardware

    slots = 2 if config.double_buffered else 1
    pes = config.rows * config.cols
    fold = (-(-pes * config.act_bits // 8), -(-pes * config.weight_bits // 8), -(-config.cols * config.acc_bits // 8))
    nm = skip_hardware(config) or (0, 0)
    geo = WordGeometry(config.dataflow, config.rows, config.cols, config.act_bits, config.weight_bits,
                       config.acc_bits, config.act_bits if config.requantize else 0, *nm)
    widths = (geo.a_word_bits, geo.b_word_bits, geo.c_word_bits)
    plan = tuple(-(-words * bits // 8) for words, bits in zip(geo.words(1, 1, 1), widths, strict=True))
    names = ("input_sram_bytes", "weight_sram_bytes", "output_sram_bytes")
    return {n: slots * max(f, p) for n, f, p in zip(names, fold, plan, strict=True)}


def _check_plausible(config: AcceleratorConfig) -> None:
    """Refuse values outside any plausible range, naming the field, the value and the likely unit slip."""
    if config.clock_mhz > MAX_CLOCK_MHZ:
        raise ConfigError(f"clock_mhz must be at most {MAX_CLOCK_MHZ:g} (10 GHz), not {config.clock_mhz!r}: "
                          f"clock_mhz is in MHz (200 MHz is clock_mhz: 200)")
    if config.dram_bytes_per_cycle < MIN_DRAM_BYTES_PER_CYCLE:
        raise ConfigError(f"dram_bytes_per_cycle must be at least {MIN_DRAM_BYTES_PER_CYCLE:g}, not "
                          f"{config.dram_bytes_per_cycle!r}: it is in bytes per clock cycle (a 64-bit bus is 8)")
    bits = {"input_sram_bytes": f"{config.act_bits}-bit inputs",
            "weight_sram_bytes": f"{config.weight_bits}-bit weights",
            "output_sram_bytes": f"{config.acc_bits}-bit accumulators"}
    for f, need in min_buffer_bytes(config).items():
        have = getattr(config, f)
        if have < need:
            twice = ", twice for double buffering" if config.double_buffered else ""
            raise ConfigError(f"{f} must hold one array word ({bits[f]} of one fold{twice}: {need} bytes) for a "
                              f"{config.rows}x{config.cols} {config.dataflow.value} array, not {have}: it is in bytes "
                              f"(64 KiB is 65536)")


#: the numbers of an energy table (codesign.sim.cost.load_table reads them), by section
ENERGY_TABLE_NUMBERS = {
    "": ("node_nm", "voltage_v", "register_pj_per_bit", "pe_to_pe_pj_per_bit", "dram_pj_per_bit"),
    "mac": ("ref_weight_bits", "ref_act_bits", "mult_pj", "ref_acc_bits", "add_pj", "gated_fraction"),
    "sram": ("ref_kib", "pj_per_bit", "capacity_exponent"),
    "leakage": ("pe_pj_per_cycle", "sram_pj_per_kib_per_cycle"),
    "area": ("mult_um2", "add_um2", "register_um2_per_bit", "sram_um2_per_kib"),
}


def check_energy_table_file(name: str) -> None:
    """An energy table given as a YAML file: each number it has must be a finite number >= 0, named
    (``mac.mult_pj``) when it is not; missing fields are left to the table's loader, which names them."""
    p = Path(name)
    if p.suffix not in (".yaml", ".yml") or not p.is_file():
        return
    _check_energy_table(str(p.resolve()), p.stat().st_mtime_ns)


@functools.lru_cache(maxsize=32)
def _check_energy_table(path: str, mtime_ns: int) -> None:
    p = Path(path)
    data = load_yaml_mapping(p)
    for section, keys in ENERGY_TABLE_NUMBERS.items():
        where = data.get(section, {}) if section else data
        if not isinstance(where, dict):
            raise ConfigError(f"energy table {p.name}: {section} must be a mapping of numbers, not {where!r}")
        for key in keys:
            if key not in where:
                continue
            v = where[key]
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
                field = f"{section}.{key}" if section else key
                raise ConfigError(f"energy table {p.name}: {field} must be a number >= 0, not {v!r}")


def _positive_number(field: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0 or math.isinf(value):
        raise ConfigError(f"{field} must be a positive number, not {value!r}")
    return float(value)


@dataclass(frozen=True)
class AcceleratorConfig:
    """A systolic accelerator: PE array, dataflow, precisions, buffers, DRAM, clock, zero handling.

    Sizes carry their unit in the name. Derived values are properties; make variants with
    :func:`dataclasses.replace` (or :meth:`replace`).
    """

    rows: int = 16
    cols: int = 16
    dataflow: Dataflow = Dataflow.WS
    weight_bits: int = 8
    act_bits: int = 8
    acc_bits: int = 32
    weight_signed: bool = True
    act_signed: bool = True
    input_sram_bytes: int = 64 * 1024
    weight_sram_bytes: int = 64 * 1024
    output_sram_bytes: int = 64 * 1024
    double_buffered: bool = True
    dram_bytes_per_cycle: float = 16.0
    dram_latency_cycles: int = 100
    # the whole-layer RTL's widths (codesign.hdl.control.regs.field_bits): DRAM byte addresses and strides
    # (2**dram_addr_bits bytes reachable: its descriptor fields, tile iterator and DMA) and GEMM dimensions and
    # tile counts (up to 2**dim_bits - 1); narrower registers and adders for small FPGA parts. A layer or
    # network that does not fit is refused (codesign.sim.widths), not wrapped
    dram_addr_bits: int = 32
    dim_bits: int = 24
    clock_mhz: float = 200.0
    zero_handling: ZeroHandling = ZeroHandling.NONE
    energy_table: str = "horowitz45"
    vector_lanes: int = 0  # 0: one lane per array column
    # the write-back requantizes accumulators to act_bits (per-channel bias, scale, zero point, clamp),
    # as an edge accelerator's next layer reads them; false writes the acc_bits accumulators
    requantize: bool = True
    fusion: Fusion = Fusion.AUTO
    mapping: Mapping = Mapping.FIXED
    objective: Objective = Objective.EDP
    depthwise: Depthwise = Depthwise.AUTO
    depthwise_lanes: int = 0  # channels the depthwise engine computes at once; 0: one per array column
    # the depthwise engine's window (kernels up to this, square): 5 holds EfficientNet's and MobileNetV3's
    # 5x5 layers as well as the 3x3 ones, at 25 multipliers a lane; 3 (9 a lane) suits small FPGA parts,
    # whose 5x5 depthwise layers then run on the array
    depthwise_kernel: int = 5
    # the vector unit beside a square WS array with equal weight and activation bits: residual adds
    # built (codesign.sim.vecplan); false leaves them model-only (and the unit out of the hardware)
    vector_unit: bool = True
    # convolutions read their feature map in place and the fold controller makes the windows on chip
    # (codesign.sim.convplan: beside a square WS array, where it beats im2col); false: im2col laid out
    # by the host for every convolution
    conv_windows: bool = True
    # a max pool right after a convolution runs in that convolution's write-back (codesign.sim.poolfuse: a
    # pool stage and two rows of pooled maxima beside the requantization), so the convolution's full-size
    # output never goes to DRAM and back; false leaves the pool a layer of its own (and the stage out of the
    # hardware)
    pool_writeback: bool = True
    # a depthwise convolution right after a 1x1 convolution runs in that convolution's write-back
    # (codesign.sim.dwfuse: the depthwise engine fed by the write-back's pass, a row of one plane a tile), so
    # the expanded map of an inverted residual block never goes to DRAM and back, where that is faster
    dw_writeback: bool = True
    # a layer's output stays in the input buffer for the next layer when both run from one input tile
    # (codesign.sim.residency: the write-back writes it into the slot the consumer reads, so it never goes
    # to DRAM and back); false sends every output to DRAM (and leaves the buffer's second writer out)
    residency: bool = True
    # two narrow products per multiplier (hdl.engines.array.WSPairElement): on a WS array without n:m
    # skipping, each pair of neighbouring PEs in a row shares one multiply of their common activation by
    # both weights side by side, where that multiply fits an 18x18 DSP block (2 * weight_bits + act_bits
    # + 1 <= 18: INT4, or 4-bit weights with 8-bit activations), so an INT4 array needs half the DSP
    # blocks. Cycles and results are the same as two multipliers'; false builds one multiplier a PE
    pack_products: bool = True
    # with zero_handling skip: the weight pattern the PEs decode. "n:m" (2:4 as in sparse tensor
    # cores: each PE selects its activation among m with the weight's index bits; built for ws) or
    # "bitmask" (any zeros skipped, with a bitmask: model-only)
    skip_pattern: str = "2:4"

    def __post_init__(self) -> None:
        _positive_int("rows", self.rows)
        _positive_int("cols", self.cols)
        object.__setattr__(self, "dataflow", _enum(Dataflow, "dataflow", self.dataflow))
        object.__setattr__(self, "zero_handling", _enum(ZeroHandling, "zero_handling", self.zero_handling))
        _positive_int("weight_bits", self.weight_bits, 1, 32)
        _positive_int("act_bits", self.act_bits, 1, 32)
        _positive_int("acc_bits", self.acc_bits, 1, 64)
        for f in ("weight_signed", "act_signed", "double_buffered", "requantize", "vector_unit", "conv_windows",
                  "pool_writeback", "dw_writeback", "residency", "pack_products"):
            if not isinstance(getattr(self, f), bool):
                raise ConfigError(f"{f} must be true or false, not {getattr(self, f)!r}")
        for f in ("input_sram_bytes", "weight_sram_bytes", "output_sram_bytes"):
            _positive_int(f, getattr(self, f), 1)
        bw = _positive_number("dram_bytes_per_cycle", self.dram_bytes_per_cycle)
        object.__setattr__(self, "dram_bytes_per_cycle", bw)
        _positive_int("dram_latency_cycles", self.dram_latency_cycles, 0)
        _positive_int("dram_addr_bits", self.dram_addr_bits, MIN_DRAM_ADDR_BITS, 32)
        _positive_int("dim_bits", self.dim_bits, MIN_DIM_BITS, 32)
        object.__setattr__(self, "clock_mhz", _positive_number("clock_mhz", self.clock_mhz))
        if not isinstance(self.energy_table, str) or not self.energy_table:
            raise ConfigError(f"energy_table must be a table name or file, not {self.energy_table!r}")
        check_energy_table_file(self.energy_table)
        _positive_int("vector_lanes", self.vector_lanes, 0)
        for f, cls in (("fusion", Fusion), ("mapping", Mapping), ("objective", Objective), ("depthwise", Depthwise)):
            object.__setattr__(self, f, _enum(cls, f, getattr(self, f)))
        _positive_int("depthwise_lanes", self.depthwise_lanes, 0)
        _positive_int("depthwise_kernel", self.depthwise_kernel, 1, 7)
        object.__setattr__(self, "skip_pattern", _skip_pattern(self.skip_pattern))
        _check_plausible(self)

    # -- derived ---------------------------------------------------------------------------
    @property
    def skip_nm(self) -> tuple[int, int] | None:
        """``(n, m)`` of the N:M pattern the skipping PEs decode (None: not skipping, or bitmask)."""
        if self.zero_handling is not ZeroHandling.SKIP or self.skip_pattern == "bitmask":
            return None
        n, m = self.skip_pattern.split(":")
        return int(n), int(m)

    @property
    def pes(self) -> int:
        return self.rows * self.cols

    @property
    def lanes(self) -> int:
        return self.vector_lanes or self.cols

    @property
    def depthwise_on_engine(self) -> bool:
        """Whether depthwise layers run on the depthwise engine: ``engine``, or ``auto`` when the design
        builds the engine (:func:`codesign.sim.dwplan.design_reason`)."""
        if self.depthwise is Depthwise.AUTO:
            from codesign.sim.dwplan import design_reason

            return not design_reason(self)
        return self.depthwise is Depthwise.ENGINE

    @property
    def dw_lanes(self) -> int:
        """Channels the depthwise engine computes in parallel (one per array column unless given);
        each lane does one R x S window (R * S MACs) a cycle."""
        return self.depthwise_lanes or self.cols

    @property
    def sram_bytes(self) -> int:
        return self.input_sram_bytes + self.weight_sram_bytes + self.output_sram_bytes

    @property
    def cycle_ns(self) -> float:
        return 1e3 / self.clock_mhz

    def replace(self, **changes: Any) -> AcceleratorConfig:
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            out[f.name] = v.value if isinstance(v, enum.Enum) else v
        return out

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in dataclasses.fields(cls))

    @classmethod
    def from_dict(cls, data: Any, *, where: str = "config") -> AcceleratorConfig:
        if not isinstance(data, dict):
            raise ConfigError(f"{where} must be a mapping of AcceleratorConfig fields, not {type(data).__name__}")
        names = cls.field_names()
        for key in data:
            if key not in names:
                raise ConfigError(f"{where}: unknown field {key!r} (fields: {', '.join(names)})")
        try:
            return cls(**data)
        except TypeError as e:  # pragma: no cover - guarded above
            raise ConfigError(f"{where}: {e}") from e

    @classmethod
    def from_yaml(cls, path: str | Path, **overrides: Any) -> AcceleratorConfig:
        data = load_yaml_mapping(path)
        # allow a top-level "accelerator:" section
        if set(data) == {"accelerator"}:
            data = data["accelerator"]
        merged = {**data, **{k: v for k, v in overrides.items() if v is not None}}
        return cls.from_dict(merged, where=str(Path(path).name))

    def to_yaml(self) -> str:
        import yaml

        return yaml.safe_dump(self.to_dict(), sort_keys=False)


def load_yaml_mapping(path: str | Path) -> dict[str, Any]:
    """Read a YAML file that must hold a mapping; errors name the file and the problem (binary or
    non-UTF-8 text, malformed YAML, duplicate keys, alias bombs: see :mod:`codesign.safe_yaml`)."""
    from codesign.safe_yaml import load_yaml_file

    p = Path(path)
    data = load_yaml_file(p, what="YAML file", error=ConfigError)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{p.name}: must hold a mapping of fields, not {type(data).__name__}")
    return data
