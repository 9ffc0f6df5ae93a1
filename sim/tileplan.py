"""The one tiling plan: what the simulator times, the hardware's sequencer runs and ``verify`` lays out.

A GEMM layer (``G`` groups of ``C[M, N] = A[M, K] @ B[K, N]``) is cut into tiles of ``GT`` groups x
``MT x NT x KT`` that fit one *slot* of each on-chip buffer (half a buffer when double-buffered).
A :class:`TilePlan` holds those sizes, the loop order and the reuse flags; :meth:`TilePlan.tiles`
lists the tiles in execution order, and :meth:`TilePlan.descriptor` gives the register values the
hardware's sequencer reads (``codesign.hdl.control.regs``). The simulator (``sim.mapping``/``sim.engine``),
the RTL and ``verify`` all use this object: there is one tiling, not three.

Memory layout (the host writes it; the DMA moves contiguous ranges)
--------------------------------------------------------------------
* **im2col laid out by the host** (this plan): A is the im2col matrix of a convolution, stored in
  DRAM as on-chip buffer words, so a 3x3 conv moves (up to) 9x its feature map. Convolutions where
  it is the better way read their feature map in place instead, the windows made on chip
  (:mod:`codesign.sim.convplan`, ``conv_windows: true``, the default); this plan remains for the
  others (a 3-channel stem, strided 1x1 convolutions, GEMMs) and for designs without windows.
* Operands are stored as **blocks**, one per tile position: ``A[g, mi, ki]``, ``B[g, ni, ki]``,
  ``C[g, mi, ni]`` at ``base + g * stride_g + i * stride_i + ...``; each block holds its buffer words
  in buffer order (``codesign.hdl.plan``'s layouts), one word per AXI beat when a word is narrower
  than the bus (the rest of the beat is padding), else ``ceil(word_bytes / bus_bytes)`` beats per
  word. Blocks of whole groups packed into one tile are contiguous.
* **The AXI bus** is ``bus_bytes`` wide: the power of two at or above ``dram_bytes_per_cycle``
  (at least 1). DRAM traffic is counted in bus beats, padding included: that is what moves.

Timing contract (the RTL meets it; ``tests/rtl`` check it cycle for cycle)
--------------------------------------------------------------------------
* Alone, a DMA read of ``b`` bytes (one or two contiguous ranges, bursts of at most 256 beats that do
  not cross 4 KiB, issued back to back) takes ``DMA_READ_OVERHEAD_CYCLES + latency + ceil(b / bw)``
  cycles with a memory whose first beat comes ``latency`` cycles after the address and whose
  channel moves ``bw = dram_bytes_per_cycle`` bytes a cycle; a write takes
  ``DMA_WRITE_OVERHEAD_CYCLES + latency + ceil(b / bw)`` (the last write response comes ``latency``
  cycles after the last data beat). Reads and writes run at once and share ``bw``: a write's data
  cycles are as alone, a read's data cycles are those no write data phase takes (writes have the
  bus first: ``codesign.sim.engine``; the AXI memory model).
* Loads overlap (``DMA_READ_SLOTS``): load ``k`` is decided once load ``k - 2`` has its data (and at
  least ``LOAD_ISSUE_GAP_CYCLES`` after load ``k - 1``'s decision ``d``); its data starts at the later of
  ``d + DMA_READ_OVERHEAD_CYCLES + latency`` (as alone) and the end of load ``k - 1``'s data, and takes
  its own ``ceil(b / bw)`` data cycles (the memory paces each command's data from its start).
* Computing a tile of ``gs`` groups takes
  ``gs * (native_gemm_cycles + GEMM_ISSUE_CYCLES) + TILE_ISSUE_CYCLES``.
* Each sequencer decides in the cycle its conditions hold and acts in the next; those decision
  cycles are the overheads above, so the engine's events (which take effect at once) reproduce
  the hardware's cycles exactly.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from typing import TYPE_CHECKING, overload

from codesign.errors import ConfigError
from codesign.sim.config import AcceleratorConfig, Dataflow
from codesign.sim.timing import ceil_div, native_gemm_cycles
from codesign.workloads.layers import GemmShape

if TYPE_CHECKING:
    from codesign.sim.dwfuse import DwStage
    from codesign.sim.poolfuse import PoolSpec

DMA_READ_OVERHEAD_CYCLES = 3  # the sequencer's decision, the DMA's command register (hdl.memory.dma), the first
# read address
#: read commands the DMA holds at once (hdl.memory.dma): a load is accepted once the load two before it has
#: all its data, its addresses go out while the one before it still moves data, and its data follows that
#: one's (the memory answers in order), so a load's latency hides behind the previous load's data (the DMA's
#: slot choice, the closed form's and the sweep fast path's state are written for two)
DMA_READ_SLOTS = 2
#: cycles between two load decisions: the layer's tile iterator registers a tile's fields a cycle after
#: its position moves (hdl.control.sequencer)
LOAD_ISSUE_GAP_CYCLES = 2
DMA_WRITE_OVERHEAD_CYCLES = 3  # the sequencer's decision, the DMA's command register (hdl.memory.dma), the
# buffer read, the response hand-over
#: register cuts of the requantizing write-back's arithmetic (``hdl.memory.dma.requantize_lane``: the sum,
#: the product, the shifted product, the clamped result), each a carry chain or a multiplier deep
REQUANT_STAGES = 4
#: with requantize: the cuts and the queue after them (``hdl.memory.dma.DmaEngine._queue``: a write and a read)
REQUANT_WRITE_CYCLES = REQUANT_STAGES + 2
# a built residual add or table activation in the write-back (codesign.sim.fusion): the vector unit's 7
# stages between the arithmetic and the queue, before a store's first data beat
WRITEBACK_ADD_CYCLES = 7
QUANT_ENTRY_BITS = 56  # per output channel: bias (32), mult (16, 15 used), shift (8, 6 used)
GEMM_ISSUE_CYCLES = 1  # the sequencer's start cycle of each on-chip GEMM of a tile
TILE_ISSUE_CYCLES = 1  # the compute sequencer's decision to take a loaded tile
MAX_BURST_BEATS = 256  # AXI4 INCR
BOUNDARY_BYTES = 4096  # AXI4: a burst does not cross a 4 KiB boundary
VEC_FIELDS = ("vec_b_stride_m", "vec_input1_offset", "vec_input2_offset", "vec_left_shift", "vec_input1_multiplier",
              "vec_input1_shift", "vec_input2_multiplier", "vec_input2_shift", "vec_output_multiplier",
              "vec_output_shift", "vec_output_offset", "vec_act_min", "vec_act_max")
RES_FIELDS = ("res_base",)  # a residual add in the write-back only (flags bit 7: codesign.sim.fusion)
#: a max pool in the write-back only (flags bit 11: codesign.sim.poolfuse)
POOL_FIELDS = ("pl_kernel", "pl_pad", "pl_conv", "pl_out", "pl_row_bytes", "pl_image_bytes")
#: a depthwise convolution in the write-back only (flags bit 15: codesign.sim.dwfuse): its output's zero point
#: and clamps (the 1x1 layer's are zero_point, clamp_lo, clamp_hi)
DWS_FIELDS = ("dws_zero_point", "dws_clamp_lo", "dws_clamp_hi")
CV_FIELDS = ("cv_out_w", "cv_dil", "cv_row_step", "cv_dil_step", "cv_lanes", "cv_a_block", "cv_c_block",
             "cv_top_words", "cv_a_tile_words")  # window mode only (codesign.sim.convplan)


def bus_bytes(config: AcceleratorConfig) -> int:
    """AXI data width in bytes: the power of two at or above ``dram_bytes_per_cycle`` (1..128)."""
    need = max(1.0, config.dram_bytes_per_cycle)
    width = 1 << max(0, math.ceil(math.log2(need)))
    return min(width, 128)


def dma_read_cycles(nbytes: int, config: AcceleratorConfig) -> int:
    """Cycles of one DMA read command moving ``nbytes`` (0 for nothing)."""
    return _dma(nbytes, config.dram_bytes_per_cycle, config.dram_latency_cycles, DMA_READ_OVERHEAD_CYCLES)


def dma_write_cycles(nbytes: int, config: AcceleratorConfig) -> int:
    """Cycles of one DMA write command moving ``nbytes`` (0 for nothing)."""
    extra = REQUANT_WRITE_CYCLES if config.requantize else 0
    return _dma(nbytes, config.dram_bytes_per_cycle, config.dram_latency_cycles, DMA_WRITE_OVERHEAD_CYCLES + extra)


def _dma(nbytes: int, bw: float, latency: int, overhead: int) -> int:
    if nbytes <= 0:
        return 0
    return overhead + latency + math.ceil(nbytes / bw)


def tile_compute_cycles(config: AcceleratorConfig, groups: int, m: int, n: int, k: int) -> int:
    """Cycles the sequencer spends computing one tile: ``groups`` on-chip GEMMs back to back."""
    return groups * (native_gemm_cycles(config, m, n, k) + GEMM_ISSUE_CYCLES) + TILE_ISSUE_CYCLES


# --------------------------------------------------------------------------------------------
# What the generated hardware builds
# --------------------------------------------------------------------------------------------
HW_MIN_BITS, HW_MAX_BITS, HW_MAX_DIM = 2, 16, 64


def model_only_reason(config: AcceleratorConfig) -> str:
    """Why the generated hardware cannot build ``config`` ('' when it can): such designs are
    simulated (and marked model-only in results) but ``generate``/``verify`` refuse them."""
    from codesign.sim.config import ZeroHandling

    c = config
    if c.zero_handling is ZeroHandling.SKIP:
        if c.skip_nm is None:
            return ("skip_pattern must be n:m (such as 2:4) for the generated hardware; bitmask skipping is "
                    "model-only")
        if c.dataflow is not Dataflow.WS:
            return (f"dataflow must be ws for zero_handling skip in the generated hardware (n:m skipping is "
                    f"built on the weight-stationary array), not {c.dataflow.value!r}")
        n, _m = c.skip_nm
        if c.rows % n:
            return (f"rows must be a multiple of {n} for {c.skip_pattern} skipping in the generated hardware, "
                    f"not {c.rows}")
    for f in ("weight_bits", "act_bits"):
        v = getattr(c, f)
        if not HW_MIN_BITS <= v <= HW_MAX_BITS:
            return f"{f} must be from {HW_MIN_BITS} to {HW_MAX_BITS} for the generated hardware, not {v!r}"
    for f in ("rows", "cols"):
        v = getattr(c, f)
        if v > HW_MAX_DIM:
            return f"{f} must be at most {HW_MAX_DIM} for the generated hardware, not {v!r}"
    need = accumulator_bits_needed(c, 2)
    if c.acc_bits < need or c.acc_bits > 48:
        return (f"acc_bits must be from {need} to 48 for {c.weight_bits}-bit weights and {c.act_bits}-bit "
                f"activations in the generated hardware, not {c.acc_bits!r}")
    return ""


def act_table_words(config: AcceleratorConfig) -> int:
    """Words of the requantization table buffer an activation table takes (flags bit 10): its
    ``2**act_bits`` entries of ``act_bits`` bits, packed from bit 0 of each table word (``cols``
    entries of ``QUANT_ENTRY_BITS`` on WS and OS, one on IS), read after the requantization table's
    words in the same read command."""
    q_word_bits = QUANT_ENTRY_BITS if config.dataflow is Dataflow.IS else config.cols * QUANT_ENTRY_BITS
    return table_words(q_word_bits, config.act_bits)


def table_words(q_word_bits: int, bits: int) -> int:
    """Table words of ``q_word_bits`` holding an activation table of ``2**bits`` entries of ``bits`` bits."""
    return ceil_div(1 << bits, q_word_bits // bits)


def act_table_load_cycles(config: AcceleratorConfig) -> int:
    """Cycles the whole-layer top spends writing an activation table into the vector unit, an entry a
    cycle, after the prologue's read and before the first tile's load."""
    return 1 << config.act_bits


def q_table_words(config: AcceleratorConfig) -> int:
    """Words of the hardware's requantization table buffer. WS and OS: one word (``cols`` entries)
    per output-buffer word; IS: one entry per word, ``cols`` times as many words (the same bits)."""
    depth = config.output_sram_bytes * 8 // (config.cols * config.acc_bits)
    return depth * config.cols if config.dataflow is Dataflow.IS else depth


TABLE_REASON = ("requantize: a layer's per-channel table must fit the hardware's table buffer (one word per "
                "group and chunk of output channels, output_sram_bytes * 8 / (cols * acc_bits) words), which "
                "the generated hardware loads once per layer")


def requant_table_reason(groups: int, n: int, config: AcceleratorConfig) -> str:
    """Why a requantized layer of ``groups`` GEMMs with ``n`` output channels each cannot run on the
    generated hardware ('' when its table fits :func:`q_table_words`): the table is loaded whole,
    ``groups * ceil(n / entries per word)`` words (``entries`` = ``cols`` on WS/OS, one on IS)."""
    if not config.requantize:
        return ""
    entries = 1 if config.dataflow is Dataflow.IS else config.cols
    return TABLE_REASON if groups * ceil_div(n, entries) > q_table_words(config) else ""


def accumulator_bits_needed(config: AcceleratorConfig, k: int) -> int:
    """Accumulator bits that hold a sum of ``k`` products of extreme operands exactly."""
    def rng(bits: int, signed: bool) -> tuple[int, int]:
        return (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)

    (alo, ahi), (wlo, whi) = rng(config.act_bits, config.act_signed), rng(config.weight_bits, config.weight_signed)
    prods = [alo * wlo, alo * whi, ahi * wlo, ahi * whi]
    lo, hi = min(0, min(prods) * k), max(prods) * k
    if lo >= 0:
        return max(1, hi.bit_length())
    return max((-lo - 1).bit_length(), hi.bit_length()) + 1


# --------------------------------------------------------------------------------------------
# Buffer words (the layouts of codesign.hdl.plan, for any dataflow)
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class WordGeometry:
    """Widths of the buffer words and how many words a block of ``m x n x k`` takes.

    WS and OS are the layouts of the generated array. IS is the WS machine on ``C^T = B^T A^T``:
    the input buffer holds ``A^T`` in the WS weight layout, the weight buffer ``B^T`` in the WS
    activation layout, the output buffer ``C^T``.
    """

    dataflow: Dataflow
    rows: int
    cols: int
    act_bits: int
    weight_bits: int
    acc_bits: int
    out_bits: int = 0  # bits of a written-back output lane (requantized); 0: accumulators
    skip_n: int = 0  # n:m skipping (ws): K counts weight slots; n rows share a group of m activations
    skip_m: int = 0

    @property
    def a_lanes(self) -> int:
        """Activations in an input-buffer word: a lane per array row (per column for IS); with
        n:m skipping the ``rows / n`` groups of ``m`` activations the rows select from."""
        if self.skip_n:
            return self.rows // self.skip_n * self.skip_m
        return self.cols if self.dataflow is Dataflow.IS else self.rows

    @property
    def index_bits(self) -> int:
        """Bits of a weight's position in its group of ``m`` (0 without skipping)."""
        return nm_index_bits(self.skip_m) if self.skip_n else 0

    @property
    def a_word_bits(self) -> int:
        return self.a_lanes * self.act_bits

    @property
    def b_word_bits(self) -> int:
        """A weight-buffer word: a weight per column (per row for IS); with skipping each carries
        its index bits above its value bits."""
        return (self.rows if self.dataflow is Dataflow.IS else self.cols) * (self.weight_bits + self.index_bits)

    @property
    def c_word_bits(self) -> int:
        """An output buffer word: ``cols`` accumulators."""
        return self.cols * self.acc_bits

    @property
    def c_dram_word_bits(self) -> int:
        """An output word as written to DRAM: requantized lanes, or the accumulators."""
        return self.cols * (self.out_bits or self.acc_bits)

    def words(self, m: int, n: int, k: int) -> tuple[int, int, int]:
        """Buffer words ``(A, B, C)`` of one ``[m, k] @ [k, n]`` GEMM."""
        r, c = self.rows, self.cols
        if self.dataflow is Dataflow.WS:
            kf = ceil_div(k, r)
            return kf * m, kf * ceil_div(n, c) * r, ceil_div(n, c) * m
        if self.dataflow is Dataflow.OS:
            mf, nf = ceil_div(m, r), ceil_div(n, c)
            return mf * k, nf * k, mf * nf * r
        kf = ceil_div(k, r)  # IS: WS on the transposed GEMM (M and N swap)
        return kf * ceil_div(m, c) * r, kf * n, ceil_div(m, c) * n


def nm_index_bits(m: int) -> int:
    """Bits that name one of ``m`` positions."""
    return max(1, (m - 1).bit_length())


def skip_hardware(config: AcceleratorConfig) -> tuple[int, int] | None:
    """``(n, m)`` when ``config`` is the n:m skipping hardware that the generator builds (ws,
    ``rows`` a multiple of ``n``): the simulator then models its layouts exactly; other skip
    configs keep the idealized model (compressed K, separate metadata) and are model-only."""
    nm = config.skip_nm
    if nm is None or config.dataflow is not Dataflow.WS or config.rows % nm[0]:
        return None
    return nm


def skip_slots(k: int, weights: object | None, nm: tuple[int, int]) -> tuple[int, bool]:
    """``(K', compressed)``: weight slots along K of a layer on n:m skipping hardware.

    Weights whose pattern fits the hardware's (``n_l:m_l`` with ``m_l`` dividing ``m`` and at most
    ``n`` non-zeros in each group of ``m``) are compressed: ``n`` slots per full group of ``m``
    (``min(n, rest)`` for a last, shorter group), each a value and its index in the group. Other
    weights (dense, unstructured, activations as the second operand) run in the dense layout: slot
    ``k`` is weight ``k``, groups of ``n`` with their own positions as indices, so ``K' = K`` and the
    activation words carry ``m / n`` times the activations (the unused lanes are zeros)."""
    n, m = nm
    pat = getattr(weights, "nm", None)
    if pat is not None:
        nl, ml = pat
        if m % ml == 0 and nl * (m // ml) <= n:
            full, rest = divmod(k, m)
            return full * n + min(n, rest), True
    return k, False


def beats_per_word(word_bits: int, bus: int) -> int:
    """AXI beats one buffer word occupies in DRAM (a narrower word fills one beat)."""
    return max(1, ceil_div(ceil_div(word_bits, 8), bus))


# --------------------------------------------------------------------------------------------
# The plan
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Tile:
    """One tile in execution order (sizes are the ragged ones at the edges)."""

    index: int
    g0: int
    gs: int
    m0: int
    ms: int
    n0: int
    ns: int
    k0: int
    ks: int
    load_a: bool
    load_b: bool
    a_slot: int
    b_slot: int
    c_slot: int

    @property
    def first_k(self) -> bool:
        return self.k0 == 0


class LoopNest:
    """What a plan over the G, M, N, K loop nest (:func:`nest_tiles`) derives from its tile counts
    (``n_gt``, ``n_mt``, ``n_nt``, ``n_kt``) and loop order (``weights_outer``)."""

    weights_outer: bool

    @property
    def n_gt(self) -> int:
        raise NotImplementedError

    @property
    def n_mt(self) -> int:
        raise NotImplementedError

    @property
    def n_nt(self) -> int:
        raise NotImplementedError

    @property
    def n_kt(self) -> int:
        raise NotImplementedError

    @property
    def tile_count(self) -> int:
        return self.n_gt * self.n_mt * self.n_nt * self.n_kt

    @property
    def a_reuse(self) -> bool:
        """A stays on chip across the tiles of the N loop (no reload while ``n0 > 0``)."""
        if self.weights_outer:
            return self.n_mt == 1 and self.n_kt == 1
        return self.n_kt == 1

    @property
    def b_reuse(self) -> bool:
        """B stays on chip across the tiles of the M loop (no reload while ``m0 > 0``)."""
        if self.weights_outer:
            return self.n_kt == 1
        return self.n_nt == 1 and self.n_kt == 1


@dataclass(frozen=True)
class TilePlan(LoopNest):
    """Tiling of one GEMM layer for one accelerator (see the module docstring)."""

    gemm: GemmShape
    geometry: WordGeometry
    bus_bytes: int
    slots: int  # 2 when double-buffered
    slot_words: tuple[int, int, int]  # words of one slot of the A, B, C buffers
    gt: int
    mt: int
    nt: int
    kt: int
    weights_outer: bool
    act_table: bool = field(default=False, kw_only=True)  # a table activation in the write-back (flags bit 10)
    # a max pool in the write-back (flags bit 11, codesign.sim.poolfuse.PoolSpec): tiles of one output row
    pool: PoolSpec | None = field(default=None, kw_only=True)
    # a depthwise convolution in the write-back (codesign.sim.dwfuse.DwStage): tiles of one row of one plane
    dw: DwStage | None = field(default=None, kw_only=True)

    # -- counts -----------------------------------------------------------------------------------
    @property
    def n_gt(self) -> int:
        return ceil_div(self.gemm.repeats, self.gt)

    @property
    def n_mt(self) -> int:
        return ceil_div(self.gemm.m, self.mt)

    @property
    def n_nt(self) -> int:
        return ceil_div(self.gemm.n, self.nt)

    @property
    def n_kt(self) -> int:
        return ceil_div(self.gemm.k, self.kt)

    # -- DRAM layout --------------------------------------------------------------------------------
    @cached_property
    def beats_per_word(self) -> tuple[int, int, int]:
        g, bus = self.geometry, self.bus_bytes
        return (beats_per_word(g.a_word_bits, bus), beats_per_word(g.b_word_bits, bus),
                beats_per_word(g.c_dram_word_bits, bus))

    # -- requantization parameters (one entry per output channel, ``cols`` to a word) -------------
    @property
    def requantized(self) -> bool:
        return self.geometry.out_bits > 0

    @property
    def q_entries_per_word(self) -> int:
        """Table entries (output channels) in one table word: ``cols`` for WS and OS, whose output
        words hold a channel per lane; one for IS, whose output words (rows of ``C^T``) hold one
        channel in every lane (``M`` lies along the array's columns), so the write-back reads the
        one entry of its word's channel and applies it to all lanes."""
        return 1 if self.geometry.dataflow is Dataflow.IS else self.geometry.cols

    @property
    def q_words(self) -> int:
        """Words of the per-channel requantization table (0 without requantization): one word per
        group and chunk of :attr:`q_entries_per_word` output channels."""
        if not self.requantized:
            return 0
        table = table_words(self.q_word_bits, self.geometry.out_bits) if self.act_table else 0
        if self.dw is not None:  # the depthwise layer's table and weights after the 1x1's (sim.dwfuse)
            from codesign.sim.dwfuse import q_stage_words

            table += q_stage_words(self)
        return self.gemm.repeats * ceil_div(self.gemm.n, self.q_entries_per_word) + table

    @property
    def q_word_bits(self) -> int:
        return self.q_entries_per_word * QUANT_ENTRY_BITS

    @property
    def prologue_bytes(self) -> int:
        """Bytes the DMA reads before the first tile: the requantization table."""
        return self.q_words * beats_per_word(self.q_word_bits, self.bus_bytes) * self.bus_bytes

    def block_words(self, ms: int, ns: int, ks: int) -> tuple[int, int, int]:
        return self.geometry.words(ms, ns, ks)

    def block_bytes(self, ms: int, ns: int, ks: int) -> tuple[int, int, int]:
        wa, wb, wc = self.block_words(ms, ns, ks)
        pa, pb, pc = self.beats_per_word
        bus = self.bus_bytes
        return wa * pa * bus, wb * pb * bus, wc * pc * bus

    @cached_property
    def strides_bytes(self) -> dict[str, int]:
        """Byte strides of the DRAM blocks, per tile step (a G step moves ``gt`` groups)."""
        fa, fb, fc = self.block_bytes(self.mt, self.nt, self.kt)
        return {
            "a_k": fa, "a_m": fa * self.n_kt, "a_g": fa * self.n_kt * self.n_mt * self.gt,
            "b_k": fb, "b_n": fb * self.n_kt, "b_g": fb * self.n_kt * self.n_nt * self.gt,
            "c_n": fc, "c_m": fc * self.n_nt, "c_g": fc * self.n_nt * self.n_mt * self.gt,
        }

    @property
    def dram_footprint_bytes(self) -> tuple[int, int, int]:
        """Bytes the A, B, C regions take in DRAM (C: the pooled map with a pool in the write-back)."""
        s = self.strides_bytes
        if self.pool is not None:
            return s["a_g"] * self.n_gt, s["b_g"] * self.n_gt, self.pooled_bytes
        if self.dw is not None:  # the depthwise layer's output planes (sim.dwfuse)
            from codesign.sim.dwfuse import out_row_bytes

            return (s["a_g"] * self.n_gt, s["b_g"] * self.n_gt,
                    ceil_div(self.gemm.n, self.geometry.cols) * self.dw.oh * out_row_bytes(self))
        return s["a_g"] * self.n_gt, s["b_g"] * self.n_gt, s["c_g"] * self.n_gt

    # -- a max pool in the write-back (codesign.sim.poolfuse) ------------------------------------
    @property
    def pooled_plane_bytes(self) -> int:
        """DRAM bytes of one plane of the pooled map (``PH * PW`` words)."""
        p = self.pool
        assert p is not None
        return p.ph * p.pw * self.beats_per_word[2] * self.bus_bytes

    @property
    def pooled_bytes(self) -> int:
        """DRAM bytes of the pooled map: ``batch`` images of ``ceil(N / cols)`` planes."""
        p = self.pool
        assert p is not None
        images = self.gemm.m // (p.oh * p.ow)
        return images * ceil_div(self.gemm.n, self.geometry.cols) * self.pooled_plane_bytes

    def pool_row(self, t: Tile) -> int:
        """The convolution row of tile ``t`` (a tile is one row with a pool in the write-back)."""
        p = self.pool
        assert p is not None
        return (t.m0 // p.ow) % p.oh

    # -- the tile program -----------------------------------------------------------------------
    def tiles(self) -> Iterator[Tile]:
        """The tiles in execution order: G blocks, then the outer loop (N when weights-outer, else
        M), the inner loop, and K innermost (partial sums stay on chip; the last K tile stores)."""
        g = self.gemm
        yield from nest_tiles((g.repeats, g.m, g.n, g.k), (self.gt, self.mt, self.nt, self.kt), self.weights_outer,
                              self.a_reuse, self.b_reuse, self.slots)

    def tile_transfers(self, t: Tile) -> tuple[int, int]:
        """``(load_bytes, store_bytes)`` of a tile: its A and B loads, its C store (last K tile)."""
        ba, bb, bc = self.block_bytes(t.ms, t.ns, t.ks)
        load = t.gs * ((ba if t.load_a else 0) + (bb if t.load_b else 0))
        store = t.gs * bc if t.k0 + t.ks >= self.gemm.k else 0
        if self.pool is not None and store:  # the pooled row the tile's row completes, if any
            from codesign.sim.poolfuse import pooled_row_bytes

            store = pooled_row_bytes(self) if self.pool.completes(self.pool_row(t)) else 0
        return load, store

    def passes(self, t: Tile) -> bool:
        """Whether tile ``t``'s store passes its output through a pool in the write-back (its last K tile)."""
        return self.pool is not None and t.k0 + t.ks >= self.gemm.k

    def tile_runs(self, config: AcceleratorConfig) -> tuple[tuple[int, int, int, int], ...]:
        """Run-length encoded ``(count, load_bytes, store_bytes, compute_cycles)`` in execution order."""
        return _tile_runs(self, config)

    # -- the descriptor ---------------------------------------------------------------------------
    def descriptor(self, a_base: int = 0, b_base: int = 0, c_base: int = 0, q_base: int = 0, *,
                   zero_point: int = 0, clamp_lo: int = 0, clamp_hi: int = 0) -> dict[str, int]:
        """Register values of the hardware's layer descriptor (names of ``codesign.hdl.control.regs``); the
        requantization fields (table address, zero point, clamps) matter with ``requantize`` only.
        Signed values are written as 32-bit two's complement."""
        s = self.strides_bytes
        g = self.gemm
        per = self.q_entries_per_word
        nf_total = ceil_div(g.n, per)
        d = {
            "a_base": a_base, "b_base": b_base, "c_base": c_base,
            "m": g.m, "n": g.n, "k": g.k, "groups": g.repeats,
            "mt": self.mt, "nt": self.nt, "kt": self.kt, "gt": self.gt,
            "flags": int(self.a_reuse) | int(self.b_reuse) << 1 | int(self.weights_outer) << 2
            | int(self.act_table and self.requantized) << 10 | int(self.pool is not None) << 11
            | int(self.dw is not None) << 15,
            "a_stride_g": s["a_g"], "a_stride_m": s["a_m"], "a_stride_k": s["a_k"],
            "b_stride_g": s["b_g"], "b_stride_n": s["b_n"], "b_stride_k": s["b_k"],
            "c_stride_g": s["c_g"], "c_stride_m": s["c_m"], "c_stride_n": s["c_n"],
            "q_base": q_base, "q_words": self.q_words, "q_nf": nf_total,
            "q_stride_n": ceil_div(self.nt, per) if self.n_nt > 1 else 0,
            "c_nf_0": ceil_div(self.nt, per), "c_nf_1": ceil_div(self.last(g.n, self.nt), per),
            "zero_point": zero_point & 0xFFFFFFFF, "clamp_lo": clamp_lo & 0xFFFFFFFF,
            "clamp_hi": clamp_hi & 0xFFFFFFFF,
            # depthwise mode only (codesign.sim.dwplan)
            "dw_skew": 0, "dw_in_w": 0, "dw_pad": 0, "dw_kernel": 0,
            "dw_rows_00": 0, "dw_rows_01": 0, "dw_rows_10": 0, "dw_rows_11": 0,
            **{f: 0 for f in VEC_FIELDS},  # vector mode only (codesign.sim.vecplan)
            **{f: 0 for f in CV_FIELDS}, **{f: 0 for f in RES_FIELDS}, **{f: 0 for f in POOL_FIELDS},
            **{f: 0 for f in DWS_FIELDS},
        }
        if self.pool is not None:
            from codesign.sim.poolfuse import pool_fields

            d.update(pool_fields(self, c_base))
        if self.dw is not None:
            from codesign.sim.dwfuse import descriptor_fields

            d.update(descriptor_fields(self))
        for lm in (0, 1):
            for lk in (0, 1):
                ms = self.last(g.m, self.mt) if lm else self.mt
                ks = self.last(g.k, self.kt) if lk else self.kt
                d[f"a_words_{lm}{lk}"] = self.block_words(ms, 1, ks)[0]
        for lk in (0, 1):
            for ln in (0, 1):
                ks = self.last(g.k, self.kt) if lk else self.kt
                ns = self.last(g.n, self.nt) if ln else self.nt
                d[f"b_words_{lk}{ln}"] = self.block_words(1, ns, ks)[1]
        for lm in (0, 1):
            for ln in (0, 1):
                ms = self.last(g.m, self.mt) if lm else self.mt
                ns = self.last(g.n, self.nt) if ln else self.nt
                d[f"c_words_{lm}{ln}"] = self.block_words(ms, ns, 1)[2]
        return d

    @staticmethod
    def last(total: int, tile: int) -> int:
        """Size of the last tile of ``total`` cut into ``tile``-sized pieces."""
        return total - (ceil_div(total, tile) - 1) * tile


def nest_tiles(sizes: tuple[int, int, int, int], tiles: tuple[int, int, int, int], weights_outer: bool,
               a_reuse: bool, b_reuse: bool, slots: int) -> Iterator[Tile]:
    """The loop nest of a tile program over G, M, N, K (``sizes``, cut into ``tiles``): G blocks, then
    the outer loop (N when weights-outer, else M), the inner loop, K innermost; a reused operand is
    not reloaded (A across N, B across M), and each load takes the next slot of its buffer."""
    g_, m_, n_, k_ = sizes
    gt, mt, nt, kt = tiles
    a_slot = b_slot = c_slot = slots - 1
    i = 0
    for g0 in range(0, g_, gt):
        outer = range(0, n_, nt) if weights_outer else range(0, m_, mt)
        inner = range(0, m_, mt) if weights_outer else range(0, n_, nt)
        for o in outer:
            for x in inner:
                m0, n0 = (x, o) if weights_outer else (o, x)
                for k0 in range(0, k_, kt):
                    load_a = not (a_reuse and n0 > 0)
                    load_b = not (b_reuse and m0 > 0)
                    if load_a:
                        a_slot = (a_slot + 1) % slots
                    if load_b:
                        b_slot = (b_slot + 1) % slots
                    if k0 == 0:
                        c_slot = (c_slot + 1) % slots
                    yield Tile(i, g0, min(gt, g_ - g0), m0, min(mt, m_ - m0), n0, min(nt, n_ - n0), k0,
                               min(kt, k_ - k0), load_a, load_b, a_slot, b_slot, c_slot)
                    i += 1


def tile_costs(plan: TilePlan, config: AcceleratorConfig) -> Iterator[tuple[Tile, int, int, int]]:
    """Each tile of ``plan`` in execution order with its ``(load_bytes, store_bytes, compute_cycles)``."""
    cycles: dict[tuple[int, int, int, int], int] = {}
    for tile in plan.tiles():
        load, store = plan.tile_transfers(tile)
        dims = (tile.gs, tile.ms, tile.ns, tile.ks)
        cyc = cycles.get(dims)
        if cyc is None:
            cyc = cycles[dims] = tile_compute_cycles(config, *dims)
        yield tile, load, store, cyc


@lru_cache(maxsize=65536)
def _tile_runs(plan: TilePlan, config: AcceleratorConfig) -> tuple[tuple[int, int, int, int], ...]:
    return run_lengths((load, store, cyc) for _t, load, store, cyc in tile_costs(plan, config))


@overload
def run_lengths(tiles: Iterable[tuple[int, int, int]]) -> tuple[tuple[int, int, int, int], ...]: ...


@overload
def run_lengths(tiles: Iterable[tuple[int, int, int, int]]) -> tuple[tuple[int, int, int, int, int], ...]: ...


def run_lengths(tiles: Iterable[tuple[int, ...]]) -> tuple[tuple[int, ...], ...]:
    """Consecutive equal ``(load_bytes, store_bytes, compute_cycles)`` tiles as runs
    ``(count, load_bytes, store_bytes, compute_cycles)``, in order (and so for tiles of more fields: a
    resident store's pass words, codesign.sim.residency)."""
    runs: list[list[int]] = []
    for tile in tiles:
        if runs and tuple(runs[-1][1:]) == tile:
            runs[-1][0] += 1
        else:
            runs.append([1, *tile])
    return tuple(tuple(r) for r in runs)


# --------------------------------------------------------------------------------------------
# Choosing the tiles
# --------------------------------------------------------------------------------------------
def _round_up(x: int, q: int) -> int:
    return ceil_div(x, q) * q


def _shrink(x: int, quantum: int) -> int:
    """About half of ``x``, kept a multiple of ``quantum`` while it is larger than one."""
    if x > quantum:
        return max(quantum, _round_up(ceil_div(x, 2), quantum))
    return max(1, ceil_div(x, 2)) if x > 1 else 1


def array_quanta(config: AcceleratorConfig) -> tuple[int, int, int]:
    """Quanta of M, N, K: the dimensions that lie on the array are kept multiples of its size."""
    r, c = config.rows, config.cols
    if config.dataflow is Dataflow.WS:
        return 1, c, r
    if config.dataflow is Dataflow.OS:
        return r, c, 1
    return c, 1, r


def plan_tiles(gemm: GemmShape, config: AcceleratorConfig, *, act_bits: int | None = None,
               weight_bits: int | None = None) -> TilePlan:
    """The fixed tiling heuristic: start from the whole GEMM and halve the dimension that
    overflows a slot (multiples of the array size kept), pack whole groups when a group is one
    tile, and pick the loop order (weights or inputs outer) with the lower DRAM traffic."""
    return _plan_tiles(gemm, config, act_bits or config.act_bits, weight_bits or config.weight_bits)


@lru_cache(maxsize=65536)
def _plan_tiles(gemm: GemmShape, config: AcceleratorConfig, act_bits: int, weight_bits: int) -> TilePlan:
    cfg = config
    nm = skip_hardware(cfg) or (0, 0)
    geo = WordGeometry(cfg.dataflow, cfg.rows, cfg.cols, act_bits, weight_bits, cfg.acc_bits,
                       cfg.act_bits if cfg.requantize else 0, *nm)
    slots = 2 if cfg.double_buffered else 1
    depth = (cfg.input_sram_bytes * 8 // geo.a_word_bits, cfg.weight_sram_bytes * 8 // geo.b_word_bits,
             cfg.output_sram_bytes * 8 // geo.c_word_bits)
    slot_words = tuple(d // slots for d in depth)
    least = geo.words(1, 1, 1)  # the smallest tile: one fold of the array
    widths = (geo.a_word_bits, geo.b_word_bits, geo.c_word_bits)
    for words, need, bits, name in zip(slot_words, least, widths, ("input_sram_bytes", "weight_sram_bytes",
                                                                   "output_sram_bytes"), strict=True):
        if words < need:
            least_bytes = ceil_div(need * bits * slots, 8)
            raise ConfigError(f"{name} must be at least {least_bytes} for a {cfg.rows}x{cfg.cols} "
                              f"{cfg.dataflow.value} array ({need} words of {bits} bits per slot), "
                              f"not {getattr(cfg, name)!r}")
    r, c = cfg.rows, cfg.cols
    qm, qn, qk = array_quanta(cfg)
    m, n, k = gemm.m, gemm.n, gemm.k
    mt, nt, kt = m, n, k
    sa, sb, sc = slot_words

    def over(mm: int, nn: int, kk: int) -> tuple[bool, bool, bool]:
        wa, wb, wc = geo.words(mm, nn, kk)
        return wa > sa, wb > sb, wc > sc

    for _ in range(256):
        oa, ob, oc = over(mt, nt, kt)
        if not (oa or ob or oc):
            break
        if oc:  # output: M or N
            if mt > qm and (mt >= nt or nt <= qn):
                mt = _shrink(mt, qm)
            elif nt > qn:
                nt = _shrink(nt, qn)
            elif mt > 1:
                mt = _shrink(mt, 1)
            else:
                nt = _shrink(nt, 1)
        elif ob:  # weights: N or K
            if nt > qn and nt >= kt:
                nt = _shrink(nt, qn)
            elif kt > qk:
                kt = _shrink(kt, qk)
            elif nt > 1:
                nt = _shrink(nt, 1 if nt <= qn else qn)
            else:
                kt = _shrink(kt, 1)
        else:  # inputs: M or K
            if mt > qm and mt >= kt:
                mt = _shrink(mt, qm)
            elif kt > qk:
                kt = _shrink(kt, qk)
            elif mt > 1:
                mt = _shrink(mt, 1 if mt <= qm else qm)
            else:
                kt = _shrink(kt, 1)
    else:  # pragma: no cover - every step shrinks a dimension
        raise ConfigError("internal error: the tiler did not converge")
    if any(over(mt, nt, kt)) or min(mt, nt, kt) < 1:
        raise ConfigError(f"no tile of gemm {m},{n},{k} fits the buffers of a {r}x{c} array")
    # pack whole groups into one tile when a group is a single tile; a power of two (the sequencer
    # checks the packed blocks against a slot with a shift, not a multiplier)
    gt = 1
    if (mt, nt, kt) == (m, n, k) and gemm.repeats > 1:
        wa, wb, wc = geo.words(m, n, k)
        most = max(1, min(gemm.repeats, sa // max(1, wa), sb // max(1, wb), sc // max(1, wc)))
        gt = 1 << (most.bit_length() - 1)
    bus = bus_bytes(cfg)
    candidates = [TilePlan(gemm, geo, bus, slots, slot_words, gt, mt, nt, kt, wo) for wo in (True, False)]
    return min(candidates, key=lambda p: (plan_dram_bytes(p), not p.weights_outer))


def plan_dram_bytes(plan: TilePlan) -> int:
    """DRAM bytes the plan moves (loads and stores), without enumerating the tiles."""
    return sum(plan_traffic_bytes(plan))


def plan_traffic_bytes(plan: TilePlan) -> tuple[int, int, int]:
    """DRAM bytes of A loads, B loads and C stores under the plan's loop order and reuse."""
    g = plan.gemm
    full_g, rest_g = divmod(g.repeats, plan.gt)
    per_group = _group_traffic(plan)
    groups = full_g * plan.gt + rest_g
    return per_group[0] * groups, per_group[1] * groups, per_group[2] * groups


def _group_traffic(plan: TilePlan) -> tuple[int, int, int]:
    g = plan.gemm

    def pieces(total: int, tile: int) -> list[tuple[int, int]]:
        full, rest = divmod(total, tile)
        return ([(tile, full)] if full else []) + ([(rest, 1)] if rest else [])

    mp, np_, kp = pieces(g.m, plan.mt), pieces(g.n, plan.nt), pieces(g.k, plan.kt)
    a = sum(plan.block_bytes(ms, 1, ks)[0] * cm * ck for ms, cm in mp for ks, ck in kp)
    b = sum(plan.block_bytes(1, ns, ks)[1] * cn * ck for ns, cn in np_ for ks, ck in kp)
    c = sum(plan.block_bytes(ms, ns, 1)[2] * cm * cn for ms, cm in mp for ns, cn in np_)
    if plan.pool is not None:  # the pooled map (one group)
        c = plan.pooled_bytes
    a_loads = 1 if plan.a_reuse else plan.n_nt
    b_loads = 1 if plan.b_reuse else plan.n_mt
    return a * a_loads, b * b_loads, c


# --------------------------------------------------------------------------------------------
# Plans of given sizes (the mapping search, codesign.sim.search)
# --------------------------------------------------------------------------------------------
def plan_with(gemm: GemmShape, config: AcceleratorConfig, gt: int, mt: int, nt: int, kt: int,
              weights_outer: bool) -> TilePlan:
    """The plan of ``gemm`` with the given tile sizes and loop order on ``config``'s buffers (the
    geometry, slots and bus of :func:`plan_tiles`); check :meth:`TilePlan.fits` before using it."""
    base = plan_tiles(gemm, config)
    return TilePlan(gemm, base.geometry, base.bus_bytes, base.slots, base.slot_words, gt, mt, nt, kt,
                    weights_outer)


def plan_fits(plan: TilePlan) -> bool:
    """Whether the plan is one the sequencer runs: sizes within the GEMM, the blocks of one tile
    within one slot of each buffer, and several groups per tile only when a group is one tile (the
    DRAM layout packs whole groups only, and a power of two of them: the sequencer shifts)."""
    g = plan.gemm
    if not (1 <= plan.mt <= g.m and 1 <= plan.nt <= g.n and 1 <= plan.kt <= g.k and 1 <= plan.gt <= g.repeats):
        return False
    if plan.gt > 1 and ((plan.mt, plan.nt, plan.kt) != (g.m, g.n, g.k) or plan.gt & (plan.gt - 1)):
        return False  # packed groups: whole groups, a power of two of them
    if plan.geometry.skip_n and plan.kt < g.k and plan.kt % plan.geometry.skip_n:
        return False  # a K tile of n:m slots starts at a group of activations
    words = plan.geometry.words(plan.mt, plan.nt, plan.kt)
    return all(plan.gt * w <= s for w, s in zip(words, plan.slot_words, strict=True))
