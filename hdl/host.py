"""The host side of the whole-layer accelerator: descriptor checks, DRAM layout, results back.

A host (a test bench, a soft CPU, a driver) runs a layer in three steps:

1. :func:`place_layer` lays the layer's operands out in DRAM as the tiling plan says (A as
   im2col'd buffer words, B, room for C) and returns the descriptor (register values);
2. it writes the descriptor and ``CTRL.start`` (:mod:`codesign.hdl.control.regs`), waits for ``done``;
3. :func:`read_outputs` reads C back from DRAM and undoes the layout.

:func:`check_descriptor` refuses what the hardware would flag (its ERROR bits), in one line.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from codesign.errors import ConfigError
from codesign.hdl.control.regs import DESCRIPTOR_FIELDS, SIGNED_FIELDS, field_bits
from codesign.hdl.plan import HardwarePlan
from codesign.sim.config import Dataflow
from codesign.sim.tileplan import QUANT_ENTRY_BITS, TilePlan, beats_per_word, q_table_words, table_words
from codesign.sim.timing import ceil_div
from codesign.sim.widths import LAYOUT_ALIGN_BYTES, layer_regions

ALIGN_BYTES = LAYOUT_ALIGN_BYTES


def _round_up(x: int, q: int) -> int:
    return ceil_div(x, q) * q


def check_descriptor(desc: dict[str, int], hw: HardwarePlan, plan: TilePlan, *, layer: str | None = None) -> None:
    """One-line ConfigError for a descriptor the hardware would refuse (see ``regs.ERROR_BITS``), naming
    ``layer`` when given."""
    if layer is None:
        _check_descriptor(desc, hw, plan)
        return
    try:
        _check_descriptor(desc, hw, plan)
    except ConfigError as e:
        raise ConfigError(f"layer {layer!r}: {e}") from None


def _check_descriptor(desc: dict[str, int], hw: HardwarePlan, plan: TilePlan) -> None:
    for name, _ in DESCRIPTOR_FIELDS:
        v = desc.get(name)
        if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v < 1 << 32:
            raise ConfigError(f"descriptor {name} must be an integer from 0 to 2**32-1, not {v!r}")
    for name in ("m", "n", "k", "groups", "mt", "nt", "kt", "gt"):
        if desc[name] == 0:
            raise ConfigError(f"descriptor {name} must be a positive integer, not 0")
    for tile, total in (("mt", "m"), ("nt", "n"), ("kt", "k"), ("gt", "groups")):
        if desc[tile] > desc[total]:
            raise ConfigError(f"descriptor {tile} must be at most {total}={desc[total]}, not {desc[tile]}")
    if desc["gt"] & (desc["gt"] - 1):
        raise ConfigError(f"descriptor gt must be a power of two, not {desc['gt']}")
    if plan.requantized and desc["q_words"] > q_table_words(hw.config):
        raise ConfigError(f"descriptor q_words must be at most the {q_table_words(hw.config)}-word requantization "
                          f"table, not {desc['q_words']}")
    bus = plan.bus_bytes
    res_out = bool(desc["flags"] >> 14 & 1)  # a resident output's C fields are input-buffer words
    for name in ("a_base", "b_base", "c_base", "a_stride_g", "a_stride_m", "a_stride_k", "b_stride_g",
                 "b_stride_n", "b_stride_k", "c_stride_g", "c_stride_m", "c_stride_n"):
        if desc[name] % bus and not (res_out and name.startswith("c_")):
            raise ConfigError(f"descriptor {name} must be a multiple of the {bus}-byte bus width, not {desc[name]}")
    for op, slot, field in zip("abc", plan.slot_words, ("input_sram_bytes", "weight_sram_bytes",
                                                        "output_sram_bytes"), strict=True):
        worst = max(desc[f"{op}_words_{i}{j}"] for i in (0, 1) for j in (0, 1))
        need = max(worst, desc["gt"] * desc[f"{op}_words_00"])
        if need > slot:
            raise ConfigError(f"descriptor {op}_words_00 x gt = {need} words do not fit a {slot}-word slot of "
                              f"the {field.replace('_bytes', '')} buffer")
    _check_dw_descriptor(desc, hw)
    if desc["flags"] >> 15 & 1:  # a depthwise convolution in the write-back
        _check_dws_descriptor(desc, hw)
    if desc["flags"] >> 6 & 1:  # window mode: a tile's A is kt planes' bands
        if desc["cv_a_tile_words"] > plan.slot_words[0]:
            raise ConfigError(f"descriptor cv_a_tile_words must fit a {plan.slot_words[0]}-word slot of the input "
                              f"buffer, not {desc['cv_a_tile_words']}")
        if desc["gt"] != 1:
            raise ConfigError(f"descriptor gt must be 1 in window mode, not {desc['gt']}")
        for name in ("cv_a_block",) + (() if res_out else ("cv_c_block",)):
            if desc[name] % bus:
                raise ConfigError(f"descriptor {name} must be a multiple of the {bus}-byte bus width, not {desc[name]}")
    if desc["cv_c_block"] and not desc["flags"] >> 6 & 1:  # a GEMM's planes out (restride_output)
        if desc["gt"] != 1 or desc["flags"] >> 3 & 0b11:
            raise ConfigError(f"descriptor cv_c_block (planes out) needs gt 1 and neither depthwise nor vector mode, "
                              f"not gt={desc['gt']}, flags={desc['flags']:#x}")
        if desc["cv_c_block"] % bus and not res_out:
            raise ConfigError(f"descriptor cv_c_block must be a multiple of the {bus}-byte bus width, not "
                              f"{desc['cv_c_block']}")
    if desc["flags"] >> 7 & 1:  # a residual add in the write-back
        from codesign.hdl.layer import has_vector_unit

        if not (has_vector_unit(hw.config) and hw.config.requantize):
            raise ConfigError("descriptor flags bit 7 (residual add) needs the vector unit and requantize: true in "
                              "this design")
        if desc["flags"] >> 3 & 0b11:
            raise ConfigError(f"descriptor flags bit 7 (residual add) cannot go with depthwise or vector mode, "
                              f"not flags={desc['flags']:#x}")
        if desc["res_base"] % bus:
            raise ConfigError(f"descriptor res_base must be a multiple of the {bus}-byte bus width, "
                              f"not {desc['res_base']}")
    if desc["flags"] >> 10 & 1:  # a table activation in the write-back
        _check_act_descriptor(desc, hw)
    if desc["flags"] >> 11 & 1:  # a max pool in the write-back
        _check_pool_descriptor(desc, hw)
    if desc["flags"] >> 12 & 0b111:  # residency
        _check_resident_descriptor(desc, hw, plan)
    for name, bits in field_bits(hw.config).items():  # the rest of what the registers cannot hold (too_wide)
        if name in SIGNED_FIELDS and 0 < bits < 32:
            v = desc[name] & 0xFFFFFFFF
            v -= (v >> 31) << 32  # the 32-bit word as two's complement
            if not -(1 << (bits - 1)) <= v < 1 << (bits - 1):
                raise ConfigError(f"descriptor {name} must be from {-(1 << (bits - 1))} to {(1 << (bits - 1)) - 1} "
                                  f"(its {bits}-bit two's complement register in this design), not {v}")
        elif 0 < bits < 32 and desc[name] >> bits:
            raise ConfigError(f"descriptor {name} must be below 2**{bits} (its {bits}-bit register in this "
                              f"design), not {desc[name]}")


def _check_resident_descriptor(desc: dict[str, int], hw: HardwarePlan, plan: Any) -> None:
    """ERROR ``resident_unsupported``'s conditions (and a resident output inside the input buffer), each as a
    one-line ConfigError."""
    from codesign.hdl.layer import has_residency

    flags = desc["flags"]
    if not has_residency(hw.config):
        raise ConfigError("descriptor flags bits 12..14 (residency) need a design that builds it (residency, "
                          "double_buffered, requantize, a square weight-stationary array)")
    if flags >> 14 & 1 and flags & (1 << 4 | 1 << 7 | 1 << 11):
        raise ConfigError(f"descriptor flags bit 14 (resident output) cannot go with bits 4, 7 or 11, not "
                          f"flags={flags:#x}")
    if flags >> 12 & 1 and flags >> 4 & 1:
        raise ConfigError(f"descriptor flags bit 12 (resident input) cannot go with bit 4, not flags={flags:#x}")
    slot = plan.slot_words[0]
    if flags >> 14 & 1 and desc["c_base"] not in (0, slot):
        raise ConfigError(f"descriptor c_base of a resident output must be an input slot's first word (0 or "
                          f"{slot}), not {desc['c_base']}")


def _check_pool_descriptor(desc: dict[str, int], hw: HardwarePlan) -> None:
    """ERROR ``pool_unsupported``'s conditions, each as a one-line ConfigError."""
    from codesign.hdl.layer import has_pool_stage, pool_stage_words

    if not has_pool_stage(hw.config):
        raise ConfigError("descriptor flags bit 11 (max pool in the write-back) needs the pool stage, which this "
                          "design does not build (pool_writeback, requantize and convolution windows)")
    if desc["flags"] & (1 << 3 | 1 << 4 | 1 << 6 | 1 << 7 | 1 << 10):
        raise ConfigError(f"descriptor flags bit 11 (max pool in the write-back) cannot go with bits 3, 4, 6, 7 or "
                          f"10, not flags={desc['flags']:#x}")
    ow, pw = desc["pl_conv"] >> 16, desc["pl_out"] >> 16
    if desc["mt"] != ow or desc["nt"] != desc["n"] or desc["groups"] != 1 or desc["gt"] != 1:
        raise ConfigError(f"descriptor of a max pool in the write-back needs tiles of one output row of every channel "
                          f"(mt = {ow}, nt = n = {desc['n']}, groups 1), not mt={desc['mt']}, nt={desc['nt']}, "
                          f"groups={desc['groups']}")
    if not desc["cv_c_block"]:
        raise ConfigError("descriptor of a max pool in the write-back needs cv_c_block, the pooled planes' stride")
    if pw * desc["c_nf_0"] > pool_stage_words(hw.config):
        raise ConfigError(f"descriptor pooled row of {pw} x {desc['c_nf_0']} words does not fit the pool stage's "
                          f"{pool_stage_words(hw.config)}-word rows")


def _check_dws_descriptor(desc: dict[str, int], hw: HardwarePlan) -> None:
    """The depthwise stage (flags bit 15, ``sim.dwfuse``): what the hardware's ``dw_unsupported`` flags for it."""
    from codesign.hdl.layer import has_dw_stage
    from codesign.sim.dwplan import DW_WIDTH_MAX

    cfg = hw.config
    if not has_dw_stage(cfg):
        raise ConfigError("descriptor flags bit 15 (depthwise stage in the write-back) needs dw_writeback: true and "
                          "the depthwise engine in this design")
    if desc["flags"] & 0b111_1111_1111_1000 & ~(1 << 15) or not desc["flags"] >> 2 & 1:
        raise ConfigError(f"descriptor flags bit 15 (depthwise stage) goes with weights outer (bit 2) and no other "
                          f"mode, not flags={desc['flags']:#x}")
    kh, kw, sh, sw = (desc["dw_kernel"] >> s & 0xFF for s in (0, 8, 16, 24))
    pl, pr = desc["dw_pad"] >> 8 & 0xFF, desc["dw_pad"] >> 24 & 0xFF
    nt = min(desc["n"], cfg.cols)
    for bad, what in ((desc["mt"] != desc["dw_in_w"], f"mt = dw_in_w ({desc['dw_in_w']}), not {desc['mt']}"),
                      (desc["nt"] != nt, f"nt = {nt} (one plane), not {desc['nt']}"),
                      (desc["kt"] != desc["k"] or desc["k"] > cfg.rows,
                       f"kt = k <= {cfg.rows} (one input plane), not kt={desc['kt']}, k={desc['k']}"),
                      (desc["groups"] != 1 or desc["gt"] != 1, "one group"),
                      (not (0 < kh <= cfg.depthwise_kernel and 0 < kw <= cfg.depthwise_kernel and sh and sw),
                       f"a kernel of 1 to {cfg.depthwise_kernel} and strides of 1 or more, not dw_kernel="
                       f"{desc['dw_kernel']:#x}"),
                      (desc["dw_in_w"] + pl + pr > DW_WIDTH_MAX,
                       f"a padded width of at most {DW_WIDTH_MAX}, not {desc['dw_in_w'] + pl + pr}")):
        if bad:
            raise ConfigError(f"descriptor of the depthwise stage (flags bit 15) needs {what}")


def _check_act_descriptor(desc: dict[str, int], hw: HardwarePlan) -> None:
    """A table activation's checks (its ``act_unsupported`` error bit)."""
    from codesign.hdl.layer import has_vector_unit
    from codesign.sim.tileplan import act_table_words

    if not (has_vector_unit(hw.config) and hw.config.requantize):
        raise ConfigError("descriptor flags bit 10 (table activation) needs the vector unit and requantize: true in "
                          "this design")
    if desc["flags"] >> 7 & 1 or desc["flags"] >> 4 & 1:
        raise ConfigError(f"descriptor flags bit 10 (table activation) cannot go with a residual add (bit 7) or "
                          f"vector mode (bit 4), not flags={desc['flags']:#x}")
    if desc["q_words"] < act_table_words(hw.config):
        raise ConfigError(f"descriptor q_words must hold the {act_table_words(hw.config)}-word activation table "
                          f"after the requantization table, not {desc['q_words']}")


def place_act_table(image: bytearray, placed: PlacedLayer, table: np.ndarray) -> PlacedLayer:
    """Write a layer's activation table (``2**bits`` entries, two's complement index: ``eltwise_arith``'s
    ``activation_table``) into the last words of its requantization table region (flags bit 10)."""
    plan = placed.plan
    if not getattr(plan, "act_table", False) or not plan.requantized:
        raise ConfigError(f"layer plan has no table activation in its write-back "
                          f"(flags {placed.descriptor['flags']:#x})")
    bits = plan.geometry.out_bits
    table = np.asarray(table, dtype=np.int64)
    if table.shape != (1 << bits,):
        raise ConfigError(f"an activation table of {bits}-bit outputs has {1 << bits} entries, not {table.shape}")
    tw, per = table_words(plan.q_word_bits, bits), plan.q_word_bits // bits
    qwb = beats_per_word(plan.q_word_bits, plan.bus_bytes) * plan.bus_bytes
    mask = (1 << bits) - 1
    for w in range(tw):
        word = 0
        for j, e in enumerate(range(w * per, min((w + 1) * per, 1 << bits))):
            word |= (int(table[e]) & mask) << (j * bits)
        at = placed.q_base + (plan.q_words - tw + w) * qwb
        image[at:at + qwb] = word.to_bytes(qwb, "little")
    return placed


def _check_dw_descriptor(desc: dict[str, int], hw: HardwarePlan) -> None:
    """The depthwise engine's checks (its ``dw_unsupported`` error bit): the design builds the engine,
    the kernel fits its window, the padded width its line buffers, the mode is a convolution or a max pool."""
    from codesign.hdl.layer import has_depthwise_engine
    from codesign.sim.dwplan import DW_WIDTH_MAX, MODE_MAX, MODE_SHIFT

    flags = desc["flags"]
    mode = flags >> MODE_SHIFT & 3
    if not flags >> 3 & 1:
        if mode:
            raise ConfigError(f"descriptor flags bits 9..8 (the depthwise engine's mode) need bit 3 (depthwise "
                              f"mode), not mode {mode} in flags {flags:#x}")
        return
    config = hw.config
    if not has_depthwise_engine(config):
        raise ConfigError(f"descriptor flags bit 3 (depthwise mode) needs a design that builds the depthwise "
                          f"engine, not flags {flags:#x}")
    if mode > MODE_MAX:
        raise ConfigError(f"descriptor flags bits 9..8 (the depthwise engine's mode) must be 0 (convolution) or "
                          f"1 (max pool), not {mode}")
    kernel = desc["dw_kernel"]
    kmax = config.depthwise_kernel
    for name, shift, limit in (("kernel height", 0, kmax), ("kernel width", 8, kmax), ("stride height", 16, 255),
                               ("stride width", 24, 255)):
        v = kernel >> shift & 0xFF
        if not 1 <= v <= limit:
            raise ConfigError(f"descriptor dw_kernel {name} must be from 1 to {limit}"
                              f"{' (depthwise_kernel)' if limit == kmax else ''}, not {v}")
    pad = desc["dw_pad"]
    w_pad = desc["dw_in_w"] + (pad >> 8 & 0xFF) + (pad >> 24 & 0xFF)
    if w_pad > DW_WIDTH_MAX:
        raise ConfigError(f"descriptor dw_in_w plus the left and right padding must be at most {DW_WIDTH_MAX} "
                          f"(the line buffers), not {w_pad}")


@dataclass(frozen=True)
class Requant:
    """Write-back requantization of one layer (``codesign.workloads.intarith.requantize``):
    per output channel ``bias`` (int32, added to the sums), ``mult`` and ``shift``, each
    ``[groups, N]``; per layer the zero point and the clamps."""

    bias: np.ndarray
    mult: np.ndarray
    shift: np.ndarray
    zero_point: int
    clamp_lo: int
    clamp_hi: int

    def __post_init__(self) -> None:
        from codesign.hdl.memory.dma import SHIFT_BITS

        for name, bits in (("mult", 16), ("shift", SHIFT_BITS)):
            v = np.asarray(getattr(self, name))
            if v.size and (v.min() < 0 or v.max() >= 1 << bits):
                bad = int(v.flat[int(np.argmax((v < 0) | (v >= 1 << bits)))])
                raise ConfigError(f"requantization {name} must be from 0 to {(1 << bits) - 1} (the write-back's "
                                  f"{bits} bits), not {bad}")

    def entry(self, g: int, n: int) -> int:
        """The table entry of channel ``n`` of group ``g``: bias (bits 31..0), mult (47..32), shift (55..48)."""
        return (int(self.bias[g, n]) & 0xFFFFFFFF) | int(self.mult[g, n]) << 32 | int(self.shift[g, n]) << 48

    def apply(self, acc: np.ndarray) -> np.ndarray:
        """``acc[G, M, N]`` -> requantized outputs."""
        from codesign.workloads.intarith import requantize

        return requantize(acc + self.bias[:, None, :], self.mult[:, None, :], self.shift[:, None, :],
                          self.zero_point, self.clamp_lo, self.clamp_hi)


def identity_requant(channels: int, out_bits: int, out_signed: bool) -> Requant:
    """The write-back's identity table (``bias 0``, ``mult 2**14``, ``shift 14``: ``(x * 2**14 + 2**13) >> 14
    = x``) for ``channels`` channels of one group, clamped to the activations' range: what a max pool's
    maxima go through (TFLite's MAX_POOL_2D keeps its input's scale and zero point)."""
    from codesign.sim.vecplan import IDENTITY_MULT, IDENTITY_SHIFT

    lo, hi = (-(1 << (out_bits - 1)), (1 << (out_bits - 1)) - 1) if out_signed else (0, (1 << out_bits) - 1)
    return Requant(np.zeros((channels, 1), dtype=np.int64), np.full((channels, 1), IDENTITY_MULT, dtype=np.int64),
                   np.full((channels, 1), IDENTITY_SHIFT, dtype=np.int64), 0, lo, hi)


def random_requant(acc: np.ndarray, out_bits: int, out_signed: bool, rng: np.random.Generator) -> Requant:
    """Seeded parameters that spread ``acc[G, M, N]`` over the output range (for verifying)."""
    g, _m, n = acc.shape
    top = max(1, int(np.abs(acc).max()))
    bias = rng.integers(-(top // 4) - 1, top // 4 + 1, size=(g, n))
    mult = rng.integers(1 << 14, 1 << 15, size=(g, n))
    span = (top + top // 4 + 1).bit_length()
    shift = np.clip(span + 15 - out_bits + rng.integers(-1, 2, size=(g, n)), 0, 40)
    lo_q, hi_q = ((-(1 << (out_bits - 1)), (1 << (out_bits - 1)) - 1) if out_signed else (0, (1 << out_bits) - 1))
    zp = int(rng.integers(lo_q // 4, hi_q // 4 + 1))
    relu = bool(rng.integers(0, 2))
    return Requant(bias, mult, shift, zp, max(lo_q, zp) if relu else lo_q, hi_q)


@dataclass(frozen=True)
class PlacedLayer:
    """Where a layer lives in DRAM."""

    plan: TilePlan
    descriptor: dict[str, int]
    a_base: int
    b_base: int
    c_base: int
    end: int  # first byte after the layer's regions (4 KiB aligned)
    q_base: int = 0


def _word_bytes(bits: int, bpw: int, bus: int) -> int:
    return bpw * bus


def _words_to_bytes(words: list[int], nbytes: int) -> bytes:
    return b"".join(w.to_bytes(nbytes, "little") for w in words)


def skip_operands(a: np.ndarray, b: np.ndarray, nm: tuple[int, int], compressed: bool,
                  what: str = "layer") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The operands of n:m skipping hardware (``sim.tileplan.skip_slots``): ``a[G, M, K]`` and
    ``b[G, K, N]`` -> ``(a_groups[G, M, ceil(K'/n) * m], values[G, K', N], indices[G, K', N])``.

    Compressed: each group of ``m`` weights (along K, per output channel) keeps its non-zeros in
    ``n`` slots (fewer in a last, shorter group), each with its position; the activation groups
    are A itself, zero-padded to whole groups. Dense layout: slot ``k`` is weight ``k``; group ``j``
    holds activations ``j*n .. j*n+n-1`` in its first ``n`` lanes (the others are zeros)."""
    n, m = nm
    g_, m_, k_ = a.shape
    n_ = b.shape[2]
    if not compressed:
        kg = ceil_div(k_, n)
        ap = np.zeros((g_, m_, kg, m), dtype=np.int64)
        flat = np.zeros((g_, m_, kg * n), dtype=np.int64)
        flat[:, :, :k_] = a
        ap[:, :, :, :n] = flat.reshape(g_, m_, kg, n)
        idx = np.broadcast_to((np.arange(k_) % n)[None, :, None], b.shape)
        return ap.reshape(g_, m_, kg * m), np.asarray(b, dtype=np.int64), np.ascontiguousarray(idx)
    kg = ceil_div(k_, m)
    full, rest = divmod(k_, m)
    slots = full * n + min(n, rest)
    ap = np.zeros((g_, m_, kg * m), dtype=np.int64)
    ap[:, :, :k_] = a
    bp = np.zeros((g_, kg * m, n_), dtype=np.int64)
    bp[:, :k_] = b
    groups = bp.reshape(g_, kg, m, n_)
    nz = groups != 0
    count = nz.sum(axis=2)  # [G, kg, N]
    if (count > n).any():
        gi, ji, ci = (int(x[0]) for x in np.nonzero(count > n))
        raise ConfigError(f"{what}: weights must be {n}:{m} sparse along K for skip_pattern {n}:{m}; output "
                          f"channel {ci} of group {gi} has {int(count[gi, ji, ci])} non-zeros in K "
                          f"{ji * m}..{ji * m + m - 1}")
    order = np.argsort(~nz, axis=2, kind="stable")[:, :, :n]  # the non-zeros first, in K order
    vals = np.take_along_axis(groups, order, axis=2)
    return (ap, vals.reshape(g_, kg * n, n_)[:, :slots].copy(),
            order.reshape(g_, kg * n, n_)[:, :slots].astype(np.int64))


def skip_enabled_macs(a_groups: np.ndarray, values: np.ndarray, indices: np.ndarray, nm: tuple[int, int]) -> int:
    """MACs the skipping PEs enable: per weight slot with a non-zero value, the rows of M whose
    selected activation is non-zero (``sum nnz(A_groups[:, col]) * (value != 0)``)."""
    n, m = nm
    total = 0
    for g in range(values.shape[0]):
        nnz_a = (a_groups[g] != 0).sum(axis=0)  # [columns]
        col = (np.arange(values.shape[1]) // n * m)[:, None] + indices[g]
        total += int((nnz_a[col] * (values[g] != 0)).sum())
    return total


def _regions(image: bytearray, plan: Any, base: int, requant: Requant | None) -> tuple[int, int, int, int, int]:
    """``(a_base, b_base, c_base, q_base, end)`` of a layer's DRAM regions from ``base`` (each 4 KiB
    aligned); ``image`` grows to ``end`` and the C region is zeroed."""
    foot_c = plan.dram_footprint_bytes[2]
    a_base, b_base, c_base, q_base, end = layer_regions(plan, base)
    if plan.requantized and requant is None:
        raise ConfigError("requantize needs the layer's requantization parameters")
    if len(image) < end:
        image.extend(bytes(end - len(image)))
    image[c_base:c_base + foot_c] = bytes(foot_c)
    return a_base, b_base, c_base, q_base, end


def place_layer(image: bytearray, plan: TilePlan, hw: HardwarePlan, a: np.ndarray, b: np.ndarray,
                base: int, requant: Requant | None = None, b_index: np.ndarray | None = None) -> PlacedLayer:
    """Write the blocks of ``a[G, M, K]`` and ``b[G, K, N]`` into ``image`` from ``base`` and zero C's.
    ``hw`` is the core's plan (``HardwarePlan(core_config(config))``). With n:m skipping the
    operands are those of :func:`skip_operands` (``b`` the weight slots, ``b_index`` their indices,
    ``a`` the activation groups) and K counts slots."""
    g_, m_ = a.shape[:2]
    k_, n_ = b.shape[1:]
    nm = hw.skip_nm
    fa, fb, _fc = plan.block_bytes(plan.mt, plan.nt, plan.kt)
    a_base, b_base, c_base, q_base, end = _regions(image, plan, base, requant)
    q_word_bytes = beats_per_word(plan.q_word_bits, plan.bus_bytes) * plan.bus_bytes
    pa, pb, _pc = plan.beats_per_word
    bus = plan.bus_bytes
    per_g_a = fa * plan.n_kt * plan.n_mt
    per_g_b = fb * plan.n_kt * plan.n_nt
    is_ = plan.geometry.dataflow is Dataflow.IS
    for g in range(g_):
        for mi, m0 in enumerate(range(0, m_, plan.mt)):
            for ki, k0 in enumerate(range(0, k_, plan.kt)):
                if nm is not None:  # the activation groups of slots k0 .. k0+kt (k0 starts a group)
                    ks = min(plan.kt, k_ - k0)
                    blk = a[g, m0:m0 + plan.mt, k0 // nm[0] * nm[1]:ceil_div(k0 + ks, nm[0]) * nm[1]]
                    z = np.zeros((ks, 1), dtype=np.int64)
                    act, _ = hw.pack_operands(blk, z, z)
                elif is_:  # A^T is the WS core's stationary operand
                    blk = a[g, m0:m0 + plan.mt, k0:k0 + plan.kt]
                    _, act = hw.pack_operands(np.zeros((1, blk.shape[1]), dtype=np.int64), blk.T)
                else:
                    blk = a[g, m0:m0 + plan.mt, k0:k0 + plan.kt]
                    act, _ = hw.pack_operands(blk, np.zeros((blk.shape[1], 1), dtype=np.int64))
                data = _words_to_bytes(act, pa * bus)
                at = a_base + g * per_g_a + mi * fa * plan.n_kt + ki * fa
                image[at:at + len(data)] = data
        for ni, n0 in enumerate(range(0, n_, plan.nt)):
            for ki, k0 in enumerate(range(0, k_, plan.kt)):
                blk = b[g, k0:k0 + plan.kt, n0:n0 + plan.nt]
                if nm is not None:
                    assert b_index is not None, "n:m skipping needs the weights' indices"
                    cols_a = ceil_div(blk.shape[0], nm[0]) * nm[1]
                    _, wt = hw.pack_operands(np.zeros((1, cols_a), dtype=np.int64), blk,
                                             b_index[g, k0:k0 + plan.kt, n0:n0 + plan.nt])
                elif is_:  # B^T streams through the WS core
                    wt, _ = hw.pack_operands(blk.T, np.zeros((blk.shape[0], 1), dtype=np.int64))
                else:
                    _, wt = hw.pack_operands(np.zeros((1, blk.shape[0]), dtype=np.int64), blk)
                data = _words_to_bytes(wt, pb * bus)
                at = b_base + g * per_g_b + ni * fb * plan.n_kt + ki * fb
                image[at:at + len(data)] = data
    if plan.requantized and requant is not None:
        per = plan.q_entries_per_word  # cols entries a word (ws, os); one (is: see TilePlan)
        nf = ceil_div(n_, per)
        for g in range(g_):
            for f in range(nf):
                word = 0
                for lane in range(per):
                    ch = f * per + lane
                    if ch < n_:
                        word |= requant.entry(g, ch) << (lane * QUANT_ENTRY_BITS)
                at = q_base + (g * nf + f) * q_word_bytes
                image[at:at + q_word_bytes] = word.to_bytes(q_word_bytes, "little")
        desc = plan.descriptor(a_base, b_base, c_base, q_base, zero_point=requant.zero_point,
                               clamp_lo=requant.clamp_lo, clamp_hi=requant.clamp_hi)
    else:
        desc = plan.descriptor(a_base, b_base, c_base)
    return PlacedLayer(plan, desc, a_base, b_base, c_base, end, q_base)


def read_outputs(image: bytes, placed: PlacedLayer, hw: HardwarePlan) -> np.ndarray:
    """``C[G, M, N]`` (int64) from the C blocks in ``image``."""
    plan = placed.plan
    g_, m_, n_ = plan.gemm.repeats, plan.gemm.m, plan.gemm.n
    _fa, _fb, fc = plan.block_bytes(plan.mt, plan.nt, plan.kt)
    pc = plan.beats_per_word[2]
    wbytes = pc * plan.bus_bytes
    per_g = fc * plan.n_nt * plan.n_mt
    c = np.zeros((g_, m_, n_), dtype=np.int64)
    for g in range(g_):
        for mi, m0 in enumerate(range(0, m_, plan.mt)):
            ms = min(plan.mt, m_ - m0)
            for ni, n0 in enumerate(range(0, n_, plan.nt)):
                ns = min(plan.nt, n_ - n0)
                nwords = plan.block_words(ms, ns, 1)[2]
                at = placed.c_base + g * per_g + mi * fc * plan.n_nt + ni * fc
                raw = image[at:at + nwords * wbytes]
                words = [int.from_bytes(raw[i * wbytes:(i + 1) * wbytes], "little") for i in range(nwords)]
                if plan.geometry.dataflow is Dataflow.IS:  # hw is the WS core: its weights are the activations
                    bits = plan.geometry.out_bits or None
                    signed = hw.config.weight_signed if plan.requantized else None
                    c[g, m0:m0 + ms, n0:n0 + ns] = hw.unpack_outputs(words, ns, ms, bits, signed).T
                elif plan.requantized:
                    c[g, m0:m0 + ms, n0:n0 + ns] = hw.unpack_outputs(words, ms, ns, plan.geometry.out_bits,
                                                                     hw.config.act_signed)
                else:
                    c[g, m0:m0 + ms, n0:n0 + ns] = hw.unpack_outputs(words, ms, ns)
    return c


def image_hex(image: bytes, bus: int) -> str:
    """``$readmemh`` text: one bus beat a line, most significant byte first."""
    pad = (-len(image)) % bus
    data = bytes(image) + bytes(pad)
    return "\n".join(data[i:i + bus][::-1].hex() for i in range(0, len(data), bus)) + "\n"


def hex_image(text: str, bus: int, start_beat: int = 0) -> bytes:
    """Bytes of a ``$writememh`` dump (lines of beats; ``@addr`` lines and comments skipped)."""
    out = bytearray()
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith(("@", "//")):
            continue
        out += bytes.fromhex(line.replace("x", "0").replace("X", "0").rjust(bus * 2, "0"))[::-1]
    return bytes(start_beat * bus) + bytes(out)


# --------------------------------------------------------------------------------------------
# Depthwise layers on the depthwise engine (codesign.sim.dwplan: planes of ``lanes`` channels)
# --------------------------------------------------------------------------------------------
def _pack_lanes(values: np.ndarray, bits: int) -> list[int]:
    """Words of ``values[words, lanes]``: lane ``l`` in bits ``l*bits ..`` (two's complement)."""
    mask = (1 << bits) - 1
    v = (values.astype(np.int64) & mask).astype(object)
    out = []
    for row in v:
        word = 0
        for lane, x in enumerate(row):
            word |= int(x) << (lane * bits)
        out.append(word)
    return out


def _write_planes(image: bytearray, at: int, x: np.ndarray, lanes: int, bits: int, word_bytes: int,
                  plane_bytes: int) -> None:
    """A feature map ``x[batch, C, H, W]`` as planes of ``lanes`` channels (the last plane's missing
    channels zero), ``[batch][C / lanes][H][W]`` words of ``word_bytes``, a plane every ``plane_bytes``
    from ``at``."""
    batch, c_, h_, w_ = x.shape
    per_image = ceil_div(c_, lanes)
    for b in range(batch):
        for p in range(per_image):
            plane = np.zeros((h_ * w_, lanes), dtype=np.int64)
            width = min(c_, (p + 1) * lanes) - p * lanes
            plane[:, :width] = x[b, p * lanes:p * lanes + width].reshape(width, h_ * w_).T
            data = _words_to_bytes(_pack_lanes(plane, bits), word_bytes)
            start = at + (b * per_image + p) * plane_bytes
            image[start:start + len(data)] = data


def _read_plane(image: bytes, at: int, words: int, plan: Any, hw: HardwarePlan) -> np.ndarray:
    """``words`` output words of a plan whose words hold ``cols`` lanes (requantized, or accumulators)
    from ``at``: ``[words, cols]`` values."""
    wc = plan.word_bytes()[2]
    raw = image[at:at + words * wc]
    values = [int.from_bytes(raw[i * wc:(i + 1) * wc], "little") for i in range(words)]
    bits = plan.geometry.out_bits or None
    signed = hw.config.act_signed if plan.requantized else None
    return hw.unpack_outputs(values, words, plan.geometry.cols, bits, signed)


def place_dw_layer(image: bytearray, plan: Any, x: np.ndarray, w: np.ndarray | None, base: int,
                   requant: Requant | None = None) -> PlacedLayer:
    """Write a depthwise layer's input ``x[batch, C, H, W]`` as planes of ``lanes`` channels, its weights
    ``w[C * mult, R, S]`` in the engine's slot order (output channel ``c * mult + j``: multiplier ``j``'s
    blocks, table words and output planes ``planes`` after ``j - 1``'s), its requantization table, and zero
    its output planes.

    A max pool (``plan.pooling``; ``w`` None) has a one-word block a plane, its channel count, and with
    ``requantize`` ``requant`` is the identity table (:func:`identity_requant`)."""

    lanes, bus = plan.lanes, plan.bus_bytes
    geo = plan.geometry
    wa, wb, _wc = plan.word_bytes()
    pa, pb, _ = plan.plane_bytes
    a_base, b_base, c_base, q_base, end = _regions(image, plan, base, requant)
    q_word_bytes = beats_per_word(plan.q_word_bits, bus) * bus
    batch, c_ = x.shape[:2]
    per_image = ceil_div(c_, lanes)
    mult = plan.mult
    _write_planes(image, a_base, x, lanes, geo.act_bits, wa, pa)
    for j, b, g in ((j, b, g) for j in range(mult) for b in range(batch) for g in range(per_image)):
        chans = slice(g * lanes, min(c_, (g + 1) * lanes))
        width = chans.stop - chans.start
        plane = j * plan.planes + b * per_image + g
        at = b_base + plane * pb
        if plan.pooling:  # no weights: the channel count alone
            data = _words_to_bytes([width], wb)
        else:
            assert w is not None
            kern = np.zeros((plan.r, plan.s, lanes), dtype=np.int64)
            kern[:, :, :width] = w[chans.start * mult + j:chans.stop * mult:mult].transpose(1, 2, 0)
            taps = kern.reshape(plan.r * plan.s, lanes)  # row by row (the layer writes them into the
            data = _words_to_bytes([*_pack_lanes(taps, geo.weight_bits), width], wb)  # slots), the channel count
        image[at:at + len(data)] = data
        if plan.requantized and requant is not None:
            word = 0
            for lane in range(width):
                word |= requant.entry(g * lanes + lane, j) << (lane * QUANT_ENTRY_BITS)
            at = q_base + plane * q_word_bytes
            image[at:at + q_word_bytes] = word.to_bytes(q_word_bytes, "little")
    if plan.requantized and requant is not None:
        desc = plan.descriptor(a_base, b_base, c_base, q_base, zero_point=requant.zero_point,
                               clamp_lo=requant.clamp_lo, clamp_hi=requant.clamp_hi)
    else:
        desc = plan.descriptor(a_base, b_base, c_base)
    return PlacedLayer(plan, desc, a_base, b_base, c_base, end, q_base)


def read_dw_outputs(image: bytes, placed: PlacedLayer, hw: HardwarePlan) -> np.ndarray:
    """The depthwise layer's outputs as the GEMM view ``C[channels, batch * out_h * out_w, mult]`` (int64:
    output channel ``c * mult + j`` at ``[c, :, j]``)."""
    plan = placed.plan
    lanes = plan.lanes
    _, _, pc = plan.plane_bytes
    per_image = ceil_div(plan.channels, lanes)
    pixels = plan.out_h * plan.out_w
    out = np.zeros((plan.channels, plan.batch * pixels, plan.mult), dtype=np.int64)
    for j, b, g in ((j, b, g) for j in range(plan.mult) for b in range(plan.batch) for g in range(per_image)):
        at = placed.c_base + (j * plan.planes + b * per_image + g) * pc
        vals = _read_plane(image, at, pixels, plan, hw)  # [pixels, lanes]
        width = min(plan.channels, (g + 1) * lanes) - g * lanes
        out[g * lanes:g * lanes + width, b * pixels:(b + 1) * pixels, j] = vals[:, :width].T
    return out


# --------------------------------------------------------------------------------------------
# Convolutions with on-chip windows (codesign.sim.convplan: planes in, planes out)
# --------------------------------------------------------------------------------------------
def place_win_layer(image: bytearray, plan: Any, hw: HardwarePlan, x: np.ndarray, w: np.ndarray, base: int,
                    requant: Requant | None = None) -> PlacedLayer:
    """Write a convolution's input ``x[batch, C, H, W]`` as planes of ``rows`` channels, its weights
    ``w[N, C, R, S]`` as the array's weight blocks (fold ``(plane, ky, kx)``, lane = channel in the
    plane), its requantization table (one word a plane of output channels), and zero its output planes."""
    lanes, bus = plan.lanes, plan.bus_bytes
    geo = plan.geometry
    wa, wb, _wc = plan.word_bytes()
    st = plan.strides_bytes
    a_base, b_base, c_base, q_base, end = _regions(image, plan, base, requant)
    q_word_bytes = beats_per_word(plan.q_word_bits, bus) * bus
    c_ = x.shape[1]
    n_ = w.shape[0]
    planes = plan.planes
    _write_planes(image, a_base, x, lanes, geo.act_bits, wa, st["plane_a"])
    # the weights as a K x N matrix in fold order: row (plane * R * S + ky * S + kx) * lanes + lane
    r_, s_ = plan.r, plan.s
    wk = np.zeros((planes, lanes, r_, s_, n_), dtype=np.int64)
    for p in range(planes):
        width = min(c_, (p + 1) * lanes) - p * lanes
        wk[p, :width] = w[:, p * lanes:p * lanes + width].transpose(1, 2, 3, 0)
    bk = wk.transpose(0, 2, 3, 1, 4).reshape(planes * r_ * s_ * lanes, n_)
    rows_per_plane = r_ * s_ * lanes
    for ni, n0 in enumerate(range(0, n_, plan.nt)):
        for ki, k0 in enumerate(range(0, planes, plan.kt)):
            ks = min(plan.kt, planes - k0)
            blk = bk[k0 * rows_per_plane:(k0 + ks) * rows_per_plane, n0:n0 + plan.nt]
            _, wt = hw.pack_operands(np.zeros((1, blk.shape[0]), dtype=np.int64), blk)
            data = _words_to_bytes(wt, wb)
            at = b_base + ni * st["b_n"] + ki * st["b_k"]
            image[at:at + len(data)] = data
    if plan.requantized and requant is not None:
        cols = geo.cols
        for f in range(plan.out_planes):
            word = 0
            for lane in range(cols):
                ch = f * cols + lane
                if ch < n_:
                    word |= requant.entry(0, ch) << (lane * QUANT_ENTRY_BITS)
            at = q_base + f * q_word_bytes
            image[at:at + q_word_bytes] = word.to_bytes(q_word_bytes, "little")
        desc = plan.descriptor(a_base, b_base, c_base, q_base, zero_point=requant.zero_point,
                               clamp_lo=requant.clamp_lo, clamp_hi=requant.clamp_hi)
    else:
        desc = plan.descriptor(a_base, b_base, c_base)
    return PlacedLayer(plan, desc, a_base, b_base, c_base, end, q_base)


def read_win_outputs(image: bytes, placed: PlacedLayer, hw: HardwarePlan) -> np.ndarray:
    """A convolution's output planes as the GEMM view ``C[1, batch * out_h * out_w, N]`` (int64)."""
    plan = placed.plan
    cols = plan.geometry.cols
    st = plan.strides_bytes
    pixels = plan.m_pixels
    n_ = plan.out_channels
    out = np.zeros((1, plan.batch * pixels, n_), dtype=np.int64)
    for b in range(plan.batch):
        for f in range(plan.out_planes):
            vals = _read_plane(image, placed.c_base + b * st["c_g"] + f * st["plane_c"], pixels, plan, hw)
            width = min(n_, (f + 1) * cols) - f * cols
            out[0, b * pixels:(b + 1) * pixels, f * cols:f * cols + width] = vals[:, :width]
    return out


def read_pooled_outputs(image: bytes, placed: PlacedLayer, hw: HardwarePlan) -> np.ndarray:
    """The pooled map a convolution with a max pool in its write-back wrote (``sim.poolfuse``), as
    ``[batch, N, PH, PW]`` (int64)."""
    plan = placed.plan
    pool = plan.pool
    images = plan.gemm.m // (pool.oh * pool.ow)
    return _read_out_planes(image, placed, hw, images, pool.ph, pool.pw, plan.pooled_plane_bytes)


def _read_out_planes(image: bytes, placed: PlacedLayer, hw: HardwarePlan, images: int, h: int, w: int,
                     plane_bytes: int) -> np.ndarray:
    """A GEMM's requantized output written as ``images`` x ``ceil(N / cols)`` planes of ``h x w`` words,
    ``plane_bytes`` apart from ``c_base`` (a write-back stage's: the pooled map, the depthwise output), as
    ``[images, N, h, w]`` (int64)."""
    plan = placed.plan
    cols, n_ = plan.geometry.cols, plan.gemm.n
    planes = ceil_div(n_, cols)
    words = h * w
    wc = plan.beats_per_word[2] * plan.bus_bytes
    out = np.zeros((images, n_, h, w), dtype=np.int64)
    for b in range(images):
        for f in range(planes):
            at = placed.c_base + (b * planes + f) * plane_bytes
            raw = image[at:at + words * wc]
            vals = hw.unpack_outputs([int.from_bytes(raw[i * wc:(i + 1) * wc], "little") for i in range(words)],
                                     words, cols, plan.geometry.out_bits, hw.config.act_signed)
            width = min(n_, (f + 1) * cols) - f * cols
            out[b, f * cols:f * cols + width] = vals[:, :width].T.reshape(width, h, w)
    return out


def place_residual(image: bytearray, placed: PlacedLayer, hw: HardwarePlan, y: np.ndarray,
                   params: Any) -> PlacedLayer:
    """Add a residual to a placed convolution or linear layer (``codesign.sim.fusion``'s built add):
    ``y`` (the GEMM view ``[G, M, N]`` of the residual, at the activations' bits) written after the
    layer's regions in exactly its output's layout (the write-back reads it block for block as it
    writes C), and the descriptor's residual fields: flags bit 7, ``res_base`` and the add's TFLite
    parameters ``params`` (``workloads.eltwise_arith.EltwiseParams``, the layer's output as input 1)."""
    from codesign.sim.convplan import WinPlan
    from codesign.sim.vecplan import param_fields

    plan = placed.plan
    geo = plan.geometry
    foot_c = plan.dram_footprint_bytes[2]
    res_base = _round_up(placed.end, ALIGN_BYTES)
    end = _round_up(res_base + foot_c, ALIGN_BYTES)
    if len(image) < end:
        image.extend(bytes(end - len(image)))
    bits = geo.out_bits
    if isinstance(plan, WinPlan):
        st = plan.strides_bytes
        x4 = y[0].reshape(plan.batch, plan.out_h, plan.out_w, plan.out_channels).transpose(0, 3, 1, 2)
        _write_planes(image, res_base, x4, geo.cols, bits, plan.word_bytes()[2], st["plane_c"])
    else:  # the blocks of read_outputs, packed as the WS write-back writes them (column chunks of M words)
        cols = geo.cols
        g_, m_, n_ = plan.gemm.repeats, plan.gemm.m, plan.gemm.n
        fc = plan.block_bytes(plan.mt, plan.nt, plan.kt)[2]
        wbytes = plan.beats_per_word[2] * plan.bus_bytes
        per_g = fc * plan.n_nt * plan.n_mt
        for g in range(g_):
            for mi, m0 in enumerate(range(0, m_, plan.mt)):
                ms = min(plan.mt, m_ - m0)
                for ni, n0 in enumerate(range(0, n_, plan.nt)):
                    ns = min(plan.nt, n_ - n0)
                    nf = ceil_div(ns, cols)
                    blk = np.zeros((ms, nf * cols), dtype=np.int64)
                    blk[:, :ns] = y[g, m0:m0 + ms, n0:n0 + ns]
                    words = blk.reshape(ms, nf, cols).transpose(1, 0, 2).reshape(nf * ms, cols)
                    data = _words_to_bytes(_pack_lanes(words, bits), wbytes)
                    at = res_base + g * per_g + mi * fc * plan.n_nt + ni * fc
                    image[at:at + len(data)] = data
    desc = dict(placed.descriptor)
    desc["flags"] |= 1 << 7
    desc["res_base"] = res_base
    desc.update(param_fields(params))
    return replace(placed, descriptor=desc, end=end)


# --------------------------------------------------------------------------------------------
# Residual adds on the vector unit (codesign.sim.vecplan: flat words of ``lanes`` elements)
# --------------------------------------------------------------------------------------------
def place_vec_layer(image: bytearray, plan: Any, x: np.ndarray, y: np.ndarray, params: Any, base: int,
                    requant: bool) -> PlacedLayer:
    """Write an element-wise layer's inputs: an add's ``x`` and ``y`` (flat, ``plan.elements`` each) as
    words of ``lanes`` elements; a scale's map ``x[batch, C, pixels]`` as planes of ``lanes`` channels and
    its scale ``y[batch, C]`` as one word a plane. Then the write-back's identity table (when
    ``requant``); the output is zeroed and the descriptor carries the op's parameters
    (``workloads.eltwise_arith.EltwiseParams``)."""
    from codesign.sim.vecplan import IDENTITY_MULT, IDENTITY_SHIFT

    lanes, bus = plan.lanes, plan.bus_bytes
    geo = plan.geometry
    wa, wb, _ = plan.word_bytes()
    identity = Requant(np.zeros((1, lanes), dtype=np.int64), np.full((1, lanes), IDENTITY_MULT),
                       np.full((1, lanes), IDENTITY_SHIFT), 0, -(1 << 31), (1 << 31) - 1)
    a_base, b_base, c_base, q_base, end = _regions(image, plan, base, identity if requant else None)
    if plan.broadcast:
        batch, c_, pixels = x.shape
        per = ceil_div(c_, lanes)
        planes = np.zeros((batch, per * lanes, pixels), dtype=np.int64)
        planes[:, :c_] = x
        a_words = planes.reshape(batch, per, lanes, pixels).transpose(0, 1, 3, 2).reshape(-1, lanes)
        scales = np.zeros((batch, per * lanes), dtype=np.int64)
        scales[:, :c_] = y
        b_words = scales.reshape(-1, lanes)
    else:
        flat_x, flat_y = (np.zeros(plan.words * lanes, dtype=np.int64) for _ in range(2))
        flat_x[:x.size], flat_y[:y.size] = x.reshape(-1), y.reshape(-1)
        a_words, b_words = flat_x.reshape(-1, lanes), flat_y.reshape(-1, lanes)
    for region, values, bits, wbytes in ((a_base, a_words, geo.act_bits, wa),
                                         (b_base, b_words, geo.weight_bits, wb)):
        data = _words_to_bytes(_pack_lanes(values, bits), wbytes)
        image[region:region + len(data)] = data
    lo, hi = ((-(1 << (geo.act_bits - 1)), (1 << (geo.act_bits - 1)) - 1) if requant else (0, 0))
    if requant:
        q_word_bytes = beats_per_word(plan.q_word_bits, bus) * bus
        word = 0
        for lane in range(lanes):
            word |= identity.entry(0, lane) << (lane * QUANT_ENTRY_BITS)
        image[q_base:q_base + q_word_bytes] = word.to_bytes(q_word_bytes, "little")
    desc = plan.descriptor(a_base, b_base, c_base, q_base, params=params, zero_point=0, clamp_lo=lo, clamp_hi=hi)
    return PlacedLayer(plan, desc, a_base, b_base, c_base, end, q_base)


def read_vec_outputs(image: bytes, placed: PlacedLayer, hw: HardwarePlan) -> np.ndarray:
    """The output: an add's flat (``plan.elements``), a scale's ``[batch, C, pixels]`` (int64)."""
    plan = placed.plan
    vals = _read_plane(image, placed.c_base, plan.words * plan.groups, plan, hw)  # [words, lanes]
    if not plan.broadcast:
        return vals.reshape(-1)[:plan.elements]
    per = ceil_div(plan.size, plan.lanes)
    planes = vals.reshape(plan.batch, per, plan.pixels, plan.lanes).transpose(0, 1, 3, 2)
    return planes.reshape(plan.batch, per * plan.lanes, plan.pixels)[:, :plan.size]


# --------------------------------------------------------------------------------------------
# A network from one start (codesign.hdl.control.network, codesign.sim.program): the descriptor list,
# and every layer reading its producer's output where the producer wrote it
# --------------------------------------------------------------------------------------------
def place_program(image: bytearray, descriptors: list[dict[str, int]], bus: int) -> int:
    """Append the descriptor list of ``descriptors`` (one record per layer, in run order:
    :func:`codesign.sim.program.record_layout`) to ``image``; returns its byte address (``prog_base``).
    Each descriptor is checked to hold 32-bit values; the counters' room is zeroed."""
    from codesign.sim.program import record_layout

    lay = record_layout(bus)
    base = _round_up(len(image), max(ALIGN_BYTES, lay.record_bytes))
    end = base + len(descriptors) * lay.record_bytes
    image.extend(bytes(end - len(image)))
    for i, desc in enumerate(descriptors):
        at = base + i * lay.record_bytes
        for j, (name, _) in enumerate(DESCRIPTOR_FIELDS):
            v = desc.get(name, 0)
            if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v < 1 << 32:
                raise ConfigError(f"descriptor {name} of record {i} must be an integer from 0 to 2**32-1, not {v!r}")
            image[at + 4 * j:at + 4 * j + 4] = v.to_bytes(4, "little")
    return base


def read_program_counters(image: bytes, prog_base: int, layers: int, bus: int) -> list[dict[str, int]]:
    """The counters the sequencer wrote into each of the ``layers`` records (``regs.COUNTERS`` names)."""
    from codesign.hdl.control.regs import COUNTERS
    from codesign.sim.program import record_layout

    lay = record_layout(bus)
    out = []
    for i in range(layers):
        at = prog_base + i * lay.record_bytes + lay.counters_offset
        out.append({name: int.from_bytes(image[at + 8 * j:at + 8 * j + 8], "little")
                    for j, (name, _) in enumerate(COUNTERS)})
    return out


def input_planes_reason(layer: Any, plan: Any, config: Any) -> str:
    """Why ``layer`` with ``plan`` cannot read its producer's output planes in place ('' when it can), and
    so cannot run in a program after another layer: its input then needs the host between layers."""
    from codesign.sim.convplan import WinPlan
    from codesign.sim.dwplan import DwPlan
    from codesign.workloads.layers import Conv2d, Linear, Pool

    if isinstance(plan, (DwPlan, WinPlan)):
        return "" if not (isinstance(plan, DwPlan) and plan.pooling and plan.batch != 1) else "batch must be 1"
    if isinstance(plan, TilePlan):
        if plan.dw is not None:  # the depthwise stage's 1x1 convolution: one input plane, a row a tile
            return ""
        if plan.geometry.dataflow is not Dataflow.WS or skip_hardware_of(config):
            return "a GEMM plan reads the producer's planes only on a weight-stationary array without skipping"
        if isinstance(layer, Pool) and layer.global_:  # its B blocks: whole planes, or pieces of one plane
            rows, cols = plan.geometry.rows, plan.geometry.cols
            if plan.n_kt != 1 and ceil_div(plan.nt, cols) != 1:
                return (f"its pixels (K {plan.gemm.k}) are cut into {plan.n_kt} K tiles of {ceil_div(plan.nt, cols)} "
                        "column chunks each, not pieces of one plane")
            if plan.n_kt != 1 and plan.kt % rows:
                return f"its K tiles of {plan.kt} pixels do not start at whole words of {rows} pixels"
            return ""
        one_by_one = isinstance(layer, Linear) or (isinstance(layer, Conv2d) and layer.r == layer.s == 1
                                                   and tuple(layer.stride) == (1, 1) and not any(layer.padding)
                                                   and layer.groups == 1)
        if not one_by_one:
            what = (f"a {layer.r}x{layer.s} convolution, stride {layer.stride[0]}x{layer.stride[1]}"
                    if isinstance(layer, Conv2d) else type(layer).__name__)
            return f"its plan reads im2col ({what}), which the host lays out from the producer's output"
        if plan.n_mt != 1:
            return f"its M ({plan.gemm.m}) is cut into {plan.n_mt} tiles, not whole planes"
        return ""
    return f"its plan ({type(plan).__name__}) does not read a feature map as planes"


def skip_hardware_of(config: Any) -> bool:
    from codesign.sim.tileplan import skip_hardware

    return skip_hardware(config) is not None


def output_planes_reason(plan: Any, config: Any) -> str:
    """Why ``plan`` cannot write its output as planes of ``cols`` channels on ``config``'s design ('' when it
    can: a depthwise or window layer does; a weight-stationary GEMM of one group does when its tiles are whole
    planes, or with :func:`restride_output`'s planes out where the design builds conv windows)."""
    from codesign.hdl.layer import has_conv_windows
    from codesign.sim.convplan import WinPlan
    from codesign.sim.dwplan import DwPlan
    from codesign.sim.vecplan import VecPlan

    if isinstance(plan, (DwPlan, WinPlan)) or (isinstance(plan, VecPlan) and plan.broadcast):
        return ""
    if isinstance(plan, TilePlan):
        if plan.dw is not None:  # the depthwise stage writes the depthwise output's planes
            return ""
        if plan.geometry.dataflow is not Dataflow.WS:
            return "only a weight-stationary GEMM writes its output as planes"
        if plan.gemm.repeats != 1:
            return f"its {plan.gemm.repeats} groups are not one feature map"
        chunks = ceil_div(plan.gemm.n, plan.geometry.cols)
        if plan.n_mt != 1 and chunks != 1 and not has_conv_windows(config):
            return (f"its output tiles ({plan.n_mt} M tiles of {chunks} column chunks each) are not whole planes, "
                    "and the design builds no conv windows (whose plane writes would place them)")
        return ""
    return f"its plan ({type(plan).__name__}) does not write a feature map as planes"


def output_plane_bytes(placed: PlacedLayer) -> int:
    """Bytes from one output plane (``cols`` channels) of ``placed`` to the next, as its descriptor writes them."""
    from codesign.sim.convplan import WinPlan
    from codesign.sim.dwplan import DwPlan
    from codesign.sim.vecplan import VecPlan

    plan = placed.plan
    if isinstance(plan, WinPlan):
        return placed.descriptor["cv_c_block"]
    if isinstance(plan, DwPlan):
        return plan.plane_bytes[2]
    if isinstance(plan, VecPlan):  # a scale's planes of its map's pixels
        return plan.words * plan.word_bytes()[2]
    if plan.dw is not None:  # the depthwise stage: the depthwise output's planes, in order
        from codesign.sim.dwfuse import out_row_bytes

        return plan.dw.oh * out_row_bytes(plan)
    if placed.descriptor.get("cv_c_block"):  # a GEMM's planes out (restride_output)
        return placed.descriptor["cv_c_block"]
    return plan.gemm.m * plan.beats_per_word[2] * plan.bus_bytes


def writes_planes(placed: PlacedLayer) -> bool:
    """Whether ``placed`` (as its descriptor stands) writes its output as planes of ``cols`` channels."""
    plan = placed.plan
    if not isinstance(plan, TilePlan) or plan.dw is not None:
        return True  # depthwise, window layers, the depthwise stage write planes (output_planes_reason: the rest)
    return bool(placed.descriptor.get("cv_c_block")) or plan.n_mt == 1 or ceil_div(plan.gemm.n,
                                                                                   plan.geometry.cols) == 1


def read_gemm_planes(image: bytes, placed: PlacedLayer, hw: HardwarePlan) -> np.ndarray:
    """A weight-stationary GEMM's output written as planes (:func:`restride_output`) as ``C[1, M, N]``."""
    plan = placed.plan
    cols, m_, n_ = plan.geometry.cols, plan.gemm.m, plan.gemm.n
    stride = output_plane_bytes(placed)
    wc = plan.beats_per_word[2] * plan.bus_bytes
    out = np.zeros((1, m_, n_), dtype=np.int64)
    for f in range(ceil_div(n_, cols)):
        at = placed.c_base + f * stride
        words = [int.from_bytes(image[at + i * wc:at + (i + 1) * wc], "little") for i in range(m_)]
        vals = hw.unpack_outputs(words, m_, cols, plan.geometry.out_bits or None,
                                 hw.config.act_signed if plan.requantized else None)
        width = min(n_, (f + 1) * cols) - f * cols
        out[0, :, f * cols:f * cols + width] = vals[:, :width]
    return out


def input_plane_bytes(placed: PlacedLayer, operand: str) -> int:
    """Bytes from one input plane to the next that ``placed`` reads (``operand`` ``"a"``, or ``"b"`` for a
    global average pool, whose feature map is its B: a column chunk's ``K`` words, planes unpadded as every
    other reader reads them (``sim.mapping.planes_b_tiling``: a map not in whole words of ``rows`` pixels is
    read one plane a B block), or for a squeeze-excite scale, whose per-channel scale is its B: one word a
    plane)."""
    from codesign.sim.convplan import WinPlan
    from codesign.sim.dwplan import DwPlan
    from codesign.sim.vecplan import VecPlan

    plan = placed.plan
    if isinstance(plan, WinPlan):
        return plan.strides_bytes["plane_a"]
    if isinstance(plan, DwPlan):
        return plan.plane_bytes[0]
    if isinstance(plan, VecPlan):  # a scale: its map's planes (a), its scale one word a plane (b)
        return plan.words * plan.word_bytes()[0] if operand == "a" else plan.word_bytes()[1]
    if operand == "b":
        return plan.gemm.k * plan.beats_per_word[1] * plan.bus_bytes
    return plan.gemm.m * plan.beats_per_word[0] * plan.bus_bytes


def restride_output(placed: PlacedLayer, plane_bytes: int, config: Any,
                    image: bytearray | None = None) -> PlacedLayer:
    """``placed`` writing its output planes (``cols`` channels each) ``plane_bytes`` apart: the layout its
    consumer reads (a convolution's or depthwise layer's planes of ``out_h * out_w`` words, a global
    average pool's column chunks of ``K`` words). The writes move the same bytes in the
    same order, so the timing is the same.

    A convolution with on-chip windows moves its planes (``cv_c_block``). A weight-stationary GEMM of one
    group, whose C blocks are its tiles' column chunks of M-tile words one after another, writes them as
    planes ("planes out": ``cv_c_block`` non-zero outside window mode, on a design that builds conv
    windows), each chunk of a tile at its plane; its requantization table then advances a word a block
    (``q_nf`` 1).

    Planes further apart than the output region holds move the output to a new zeroed region at the end of
    ``image`` (required then): the words between a plane's pixels and the next plane stay zero."""
    from codesign.hdl.layer import has_conv_windows
    from codesign.sim.convplan import WinPlan

    plan = placed.plan
    desc = dict(placed.descriptor)
    cols = plan.geometry.cols
    if isinstance(plan, WinPlan):
        natural = plan.strides_bytes["plane_c"]
        planes = plan.out_planes
    elif isinstance(plan, TilePlan) and plan.dw is not None:
        raise ConfigError(f"the depthwise stage writes its output planes {output_plane_bytes(placed)} bytes apart, "
                          f"not {plane_bytes}")
    elif isinstance(plan, TilePlan) and plan.geometry.dataflow is Dataflow.WS and plan.gemm.repeats == 1:
        if not has_conv_windows(config):
            raise ConfigError("a GEMM's output planes need a design that builds conv windows (conv_windows: true, "
                              "a square weight-stationary array)")
        natural = plan.gemm.m * plan.beats_per_word[2] * plan.bus_bytes
        planes = ceil_div(plan.gemm.n, cols)
        wc = plan.beats_per_word[2] * plan.bus_bytes
        desc.update(c_stride_m=plan.mt * wc, q_nf=1 if plan.requantized else desc["q_nf"])
    else:
        raise ConfigError(f"output planes {plane_bytes} bytes apart need a convolution with on-chip windows or a "
                          f"weight-stationary GEMM of one group, not a {type(plan).__name__}")
    if plane_bytes < natural or plane_bytes % plan.bus_bytes:
        raise ConfigError(f"output plane stride must be a multiple of the {plan.bus_bytes}-byte bus of at least "
                          f"{natural} bytes, not {plane_bytes}")
    if desc["flags"] >> 7 & 1:
        raise ConfigError("output planes of a layer with a residual add cannot move: its residual is read as them")
    desc["cv_c_block"] = plane_bytes
    desc["c_stride_n"] = plane_bytes * ceil_div(plan.nt, cols)
    desc["c_stride_g"] = plane_bytes * planes
    need = plane_bytes * planes * getattr(plan, "batch", 1)
    if need <= plan.dram_footprint_bytes[2]:
        return replace(placed, descriptor=desc)
    if image is None:
        raise ConfigError(f"output planes {plane_bytes} bytes apart need {need} bytes, more than the output region's "
                          f"{plan.dram_footprint_bytes[2]}: pass the image to move the output")
    c_base = _round_up(len(image), ALIGN_BYTES)
    image.extend(bytes(_round_up(c_base + need, ALIGN_BYTES) - len(image)))
    desc["c_base"] = c_base
    return replace(placed, descriptor=desc, c_base=c_base)


def feed(consumer: PlacedLayer, operand: str, producer: PlacedLayer) -> PlacedLayer:
    """``consumer`` reading ``operand`` (``"a"``, ``"b"``: a global average pool's map, or ``"res"``: its
    fused residual add's) from where ``producer`` wrote its output, instead of its own region (which the
    host leaves zero). One-line ConfigError when the layouts differ (word size or plane stride). A global
    pool's B blocks are addressed inside the planes: an N tile's chunks a plane each (``b_stride_n``: its
    chunks' planes), a K tile's at ``kt`` pixels into them (``b_stride_k``, whole words of ``rows`` pixels:
    :func:`input_planes_reason`)."""
    wc = producer.plan.word_bytes()[2] if hasattr(producer.plan, "word_bytes") else (
        producer.plan.beats_per_word[2] * producer.plan.bus_bytes)
    cplan = consumer.plan
    words = cplan.word_bytes() if hasattr(cplan, "word_bytes") else tuple(
        p * cplan.bus_bytes for p in cplan.beats_per_word)
    want_word = words[2] if operand == "res" else words[0 if operand == "a" else 1]
    if want_word != wc:
        raise ConfigError(f"operand {operand} reads {want_word}-byte words, not the producer's {wc}-byte output words")
    have = output_plane_bytes(producer)
    want = output_plane_bytes(consumer) if operand == "res" else input_plane_bytes(consumer, operand)
    if have != want:
        raise ConfigError(f"operand {operand} reads planes {want} bytes apart, not the producer's {have}")
    field = {"a": "a_base", "b": "b_base", "res": "res_base"}[operand]
    desc = dict(consumer.descriptor)
    desc[field] = producer.c_base
    if operand == "b" and isinstance(cplan, TilePlan):  # a global pool's B blocks inside the planes
        desc["b_stride_n"] = have * ceil_div(cplan.nt, cplan.geometry.cols)
    return replace(consumer, descriptor=desc, **({field: producer.c_base} if field != "res_base" else {}))


# --------------------------------------------------------------------------------------------
# A depthwise convolution in its 1x1 convolution's write-back (codesign.sim.dwfuse: flags bit 15)
# --------------------------------------------------------------------------------------------
def place_dws_pair(image: bytearray, plan: TilePlan, hw: HardwarePlan, a: np.ndarray, b: np.ndarray,
                   w_dw: np.ndarray, base: int, requant: Requant, dw_requant: Requant) -> PlacedLayer:
    """Write a 1x1 convolution's operands (``a[1, M, K]`` the block input's pixels, ``b[1, K, N]``), its table,
    the depthwise layer's table (``dw_requant`` per channel: ``[N, 1]``) and weights ``w_dw[N, R, S]`` after it
    in the table region (:func:`codesign.sim.dwfuse.q_stage_words`), and zero the depthwise output planes."""
    from codesign.sim.dwfuse import weight_entries_per_word, weight_words

    st = plan.dw
    assert st is not None
    placed = place_layer(image, plan, hw, a, b, base, requant)
    cols, wb = plan.geometry.cols, plan.geometry.weight_bits
    n_ = plan.gemm.n
    planes = ceil_div(n_, cols)
    qwb = beats_per_word(plan.q_word_bits, plan.bus_bytes) * plan.bus_bytes
    per, wpp = weight_entries_per_word(wb), weight_words(st.taps, wb)
    for f in range(planes):
        width = min(n_, (f + 1) * cols) - f * cols
        word = 0
        for lane in range(width):
            word |= dw_requant.entry(f * cols + lane, 0) << (lane * QUANT_ENTRY_BITS)
        at = placed.q_base + (planes + f) * qwb
        image[at:at + qwb] = word.to_bytes(qwb, "little")
        kern = np.zeros((st.r * st.s, cols), dtype=np.int64)
        kern[:, :width] = w_dw[f * cols:f * cols + width].reshape(width, st.r * st.s).T
        entries = [*_pack_lanes(kern, wb), width]  # the taps row by row, then the plane's channel count
        for wi in range(wpp):
            word = 0
            for pos, e in enumerate(entries[wi * per:(wi + 1) * per]):
                word |= e << (pos * cols * wb)
            at = placed.q_base + (2 * planes + f * wpp + wi) * qwb
            image[at:at + qwb] = word.to_bytes(qwb, "little")
    desc = dict(placed.descriptor)
    desc.update({"dws_zero_point": dw_requant.zero_point & 0xFFFFFFFF, "dws_clamp_lo": dw_requant.clamp_lo & 0xFFFFFFFF,
                 "dws_clamp_hi": dw_requant.clamp_hi & 0xFFFFFFFF})
    return replace(placed, descriptor=desc)


def read_dws_outputs(image: bytes, placed: PlacedLayer, hw: HardwarePlan) -> np.ndarray:
    """The depthwise output a 1x1 convolution with the depthwise stage wrote (``sim.dwfuse``), as
    ``[1, N, OH, OW]`` (int64)."""
    st = placed.plan.dw
    return _read_out_planes(image, placed, hw, 1, st.oh, st.ow, output_plane_bytes(placed))
