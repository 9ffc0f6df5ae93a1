"""The depthwise engine's tiling plan: what the simulator times, the whole-layer top runs and ``verify`` lays out.

A depthwise convolution (``groups == in_channels == out_channels``) runs on the depthwise engine
(:mod:`codesign.hdl.engines.depthwise`) beside the array when the config builds it
(``depthwise: engine``, a weight-stationary array with ``rows == cols``): ``lanes = cols`` channels
at a time, each with a ``K x K`` window of multipliers (``K = depthwise_kernel``) fed by line buffers; the
layer's padding is made on chip (never stored).

Memory layout (the host writes the input and the weights; the engine writes the output)
--------------------------------------------------------------------------------------
* **Feature maps as channel surfaces** (NVDLA's feature-data layout, NCHW/``lanes``): the map is cut
  into *planes* of ``lanes`` channels, ``[batch][C / lanes][H][W]``, each pixel of a plane one word of
  ``lanes`` values (channel ``plane * lanes + lane``; the last plane's missing channels are zero),
  stored in raster order, one word per bus beat (or ``ceil(word / bus)`` beats) like every buffer
  word. A plane is channels-last within its ``lanes`` channels, and a band of rows of a plane is
  one contiguous range: the DMA moves it with one command. This is also the layout the array's
  weight-stationary write-back gives a ``1 x 1`` convolution's output when its tile holds all
  output channels, so the pointwise layers around a depthwise one need no reshuffle.
* **Weights**: per plane, the kernel's ``R * S`` words of ``lanes`` weights, row by row, then one word
  holding the plane's number of channels (its low 16 bits: ``lanes``, or fewer in a last plane), which
  the MAC counter uses. The layer clears the engine's ``K x K`` slots and writes each tap into the
  bottom-right ``R x S`` corner of the window (:func:`codesign.hdl.engines.depthwise.weight_slots`), so a
  3x3 kernel on the 5x5 engine moves 10 words, not 26.
* **Requantization table**: one word per plane (``lanes`` entries), as the array's.

Tiles
-----
A tile is ``gt`` whole planes (when a plane's input and output fit a slot) or a *band* of ``mt``
output rows of one plane: its input rows (with the ``R - stride`` rows of halo, clipped to the
image: padding rows are made on chip) are read, the engine scans the band's padded rows once, and
the band's outputs (accumulators in the output buffer) are written back requantized by the DMA,
as the array's are. The weights are loaded once per plane (``B`` reused across its bands). The
DMA program, double buffering and the overlapping read and write queues are the array's
(:mod:`codesign.sim.tileplan`): only the compute of a tile differs.

A **channel multiplier** ``M`` (``out_channels = M * in_channels``, output channel ``c * M + j``) is the
descriptor's N loop (``n = M``, ``nt = 1``), innermost: a band's input is loaded with its first multiplier
and reused for the others (``flags`` bit 0), each tile loads its multiplier's weight blocks (``b_stride_n``
apart; bit 1 off) and writes its own output planes, multiplier ``j``'s at ``j * planes`` (``c_stride_n``;
its table words ``q_stride_n = planes`` on). No hardware of its own: the tile iterator's N loop and A reuse
are the array's.

Timing contract (the RTL meets it; ``tests/rtl`` check it cycle for cycle)
--------------------------------------------------------------------------
A tile of ``gs`` planes over a band of ``h_pad`` padded input rows takes
``TILE_ISSUE_CYCLES + gs * (R * S + 1 + DW_GROUP_OVERHEAD_CYCLES + h_pad * w_pad + LATENCY)``
cycles: per plane, ``R * S + 2`` cycles move the weight block from the weight buffer into the
engine's slots (the first also clears them; the channel count into the MAC counter), one starts the engine,
its scan takes
one padded position a cycle and the pipeline drains (:func:`codesign.hdl.engines.depthwise.pass_cycles`),
and one more sees ``done``.

Counts: the enabled MACs are the layer's, ``batch * C * R * S * out_h * out_w`` (each output word
adds ``R * S`` times its plane's channels; a last plane's empty lanes compute zeros and are not
counted); the engine does not gate zero operands.

Max pooling (:func:`pool_reason`, :func:`plan_pool`)
---------------------------------------------------
A max pool (``Pool`` with op ``max``: any kernel up to ``depthwise_kernel``, strides, asymmetric
padding smaller than the kernel, any channels and batch) is the same plan with the engine in MAX mode
(``flags`` bits 9..8 = 1): the same planes, bands, tile program and scan; each output is the largest
activation of its window inside the image (padding never wins). Its block in the weight buffer is one
word, the plane's channel count (the DMA program loads a B block with every plane's first band; a max
pool has no weights), so a plane costs ``1 + DW_GROUP_OVERHEAD_CYCLES + h_pad * w_pad +
DW_LATENCY_CYCLES`` cycles. The maxima go to the output buffer as accumulators and through the
write-back with an identity table (one word a plane, as a convolution's: TFLite's MAX_POOL_2D keeps
its input's scale and zero point). Counts: no MACs; ``batch * C * R * S * out_h * out_w`` comparisons
(``vector_ops``, each reading the window register). Padding of a kernel's size or more (a window
wholly in the padding, no maximum) is refused; such a pool stays on the model-only vector unit.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import lru_cache

from codesign.sim.config import AcceleratorConfig, Dataflow
from codesign.sim.tileplan import (
    CV_FIELDS,
    DWS_FIELDS,
    POOL_FIELDS,
    RES_FIELDS,
    TILE_ISSUE_CYCLES,
    VEC_FIELDS,
    Tile,
    WordGeometry,
    beats_per_word,
    bus_bytes,
    run_lengths,
    skip_hardware,
)
from codesign.sim.timing import ceil_div
from codesign.workloads.layers import Conv2d, Pool, PoolKind

DW_WIDTH_MAX = 128  # padded input width the line buffers hold (224-pixel networks: 114 at 112 x 112)
DW_DIM_BITS = 10  # heights, widths and paddings the engine's counters hold
DW_LATENCY_CYCLES = 5  # codesign.hdl.engines.depthwise.LATENCY_CYCLES (accumulators out: no requantize stage)
DW_GROUP_OVERHEAD_CYCLES = 3  # per plane: the weight read's latency, the start, the done cycle


MODE_MAC, MODE_MAX = 0, 1  # the engine's mode in the descriptor's flags bits 9..8 (hdl.engines.depthwise)
MODE_SHIFT = 8  # flags bit of the mode's low bit
POOL_B_WORDS = 1  # a max pool's block in the weight buffer: the plane's channel count alone


def b_words(taps: int, mode: int = MODE_MAC) -> int:
    """Words of a plane's block in the weight buffer: its kernel's ``taps = R * S`` words (row by row), then
    its channel count; a max pool (``mode`` MAX) has no weights, its block is the channel count alone."""
    return POOL_B_WORDS if mode == MODE_MAX else taps + 1


def dw_group_cycles(h_pad: int, w_pad: int, taps: int, mode: int = MODE_MAC) -> int:
    """Cycles of one plane of a tile: weight block, start, scan of ``h_pad x w_pad``, drain, done."""
    return b_words(taps, mode) + DW_GROUP_OVERHEAD_CYCLES + h_pad * w_pad + DW_LATENCY_CYCLES


def dw_tile_compute_cycles(gs: int, h_pad: int, w_pad: int, taps: int, mode: int = MODE_MAC) -> int:
    return TILE_ISSUE_CYCLES + gs * dw_group_cycles(h_pad, w_pad, taps, mode)


def design_reason(config: AcceleratorConfig) -> str:
    """Why ``config`` does not build the depthwise engine ('' when it does)."""
    if config.dataflow is not Dataflow.WS:
        return f"the depthwise engine is built beside a weight-stationary array, not {config.dataflow.value!r}"
    if config.rows != config.cols:
        return f"the depthwise engine needs a square array (lanes = rows = cols), not {config.rows}x{config.cols}"
    if skip_hardware(config) is not None:
        return "the depthwise engine is not built beside the n:m skipping array"
    if config.depthwise_lanes not in (0, config.cols):
        return (f"depthwise_lanes must be the array's cols ({config.cols}) for the built engine, "
                f"not {config.depthwise_lanes}")
    return ""


def layer_reason(layer: Conv2d, batch: int, config: AcceleratorConfig) -> str:
    """Why the built engine cannot run this depthwise layer ('' when it can; then :func:`plan_dw` works)."""
    reason = design_reason(config)
    if reason:
        return reason
    if tuple(layer.dilation) != (1, 1):  # type: ignore[arg-type]
        return f"the depthwise engine runs dilation 1, not {tuple(layer.dilation)}"  # type: ignore[arg-type]
    return _shape_reason(_Shape.of(layer), batch, config)


def pool_reason(layer: Pool, batch: int, config: AcceleratorConfig) -> str:
    """Why the built engine cannot run this pooling layer as a max pool ('' when it can; then
    :func:`plan_pool` works). Average pools run as their convolution (``Pool.as_gemm_layer``)."""
    reason = design_reason(config)
    if reason:
        return reason
    if layer.op is not PoolKind.MAX:
        return "the depthwise engine pools max; an average pool runs as its convolution"
    r, s = layer.kernel  # type: ignore[misc]
    pt, pl, pb, pr = layer.padding  # type: ignore[misc]
    if max(pt, pb) >= r or max(pl, pr) >= s:
        return (f"a max pool's padding must be smaller than its kernel (a window wholly in the padding has no "
                f"maximum), not {(pt, pl, pb, pr)} for {r}x{s}")
    return _shape_reason(_Shape.of(layer), batch, config)


def _shape_reason(sh: _Shape, batch: int, config: AcceleratorConfig) -> str:
    k = config.depthwise_kernel
    if max(sh.r, sh.s) > k:
        return f"the depthwise engine runs kernels up to {k}x{k} (depthwise_kernel), not {sh.r}x{sh.s}"
    pt, pl, pb, pr = sh.padding
    w_pad, h_pad = sh.in_w + pl + pr, sh.in_h + pt + pb
    if w_pad > DW_WIDTH_MAX:
        return f"the depthwise engine's line buffers hold {DW_WIDTH_MAX} padded columns, not {w_pad}"
    if max(h_pad, w_pad, pt, pl, pb, pr, *sh.stride) >= 1 << DW_DIM_BITS:
        return f"the depthwise engine's counters hold {DW_DIM_BITS} bits, not a {h_pad}x{w_pad} padded input"
    if max(pt, pl, pb, pr) >= 256 or max(sh.r, sh.s, *sh.stride) >= 256:
        return "the depthwise descriptor holds paddings, kernels and strides below 256"
    if config.requantize:
        from codesign.sim.tileplan import TABLE_REASON, q_table_words

        if batch * ceil_div(sh.channels, config.cols) * sh.mult > q_table_words(config):
            return TABLE_REASON
    if _choose_cached(batch, *sh.key(), config) is None:
        return (f"the depthwise engine needs a band of {sh.r} input rows of {sh.in_w} pixels in a slot of "
                f"the input buffer and a row of outputs in a slot of the output buffer")
    return ""


@dataclass(frozen=True)
class _Shape:
    """What the engine's plan needs of a depthwise convolution or a max pool."""

    channels: int
    in_h: int
    in_w: int
    r: int
    s: int
    stride: tuple[int, int]
    padding: tuple[int, int, int, int]
    out_h: int
    out_w: int
    mode: int
    mult: int = 1  # the channel multiplier (out_channels / in_channels)

    @classmethod
    def of(cls, layer: Conv2d | Pool) -> _Shape:
        if isinstance(layer, Pool):
            r, s = layer.kernel  # type: ignore[misc]
            return cls(layer.channels, layer.in_h, layer.in_w, r, s, tuple(layer.stride),  # type: ignore[arg-type]
                       tuple(layer.padding), layer.out_h, layer.out_w, MODE_MAX)  # type: ignore[arg-type]
        return cls(layer.in_channels, layer.in_h, layer.in_w, layer.r, layer.s, tuple(layer.stride),  # type: ignore[arg-type]
                   tuple(layer.padding), layer.out_h, layer.out_w, MODE_MAC,  # type: ignore[arg-type]
                   layer.out_channels // layer.in_channels)

    def key(self) -> tuple:
        return (self.channels, self.in_h, self.in_w, self.r, self.s, self.stride, self.padding, self.out_h,
                self.out_w, self.mode, self.mult)


class LanePlan:
    """What the depthwise engine's and the vector unit's plans share: words of ``lanes = cols`` values
    in each buffer (stored at whole bus beats), a requantization table of ``lanes`` entries a word.
    A subclass has ``geometry``, ``bus_bytes`` and ``q_words``."""

    geometry: WordGeometry
    bus_bytes: int

    @property
    def lanes(self) -> int:
        return self.geometry.cols

    def word_bytes(self) -> tuple[int, int, int]:
        """Bytes of an A, B, C word in DRAM (whole beats)."""
        g, bus = self.geometry, self.bus_bytes
        return (beats_per_word(g.a_word_bits, bus) * bus, beats_per_word(g.b_word_bits, bus) * bus,
                beats_per_word(g.c_dram_word_bits, bus) * bus)

    @property
    def requantized(self) -> bool:
        return self.geometry.out_bits > 0

    @property
    def q_words(self) -> int:
        raise NotImplementedError

    @property
    def groups(self) -> int:
        """Groups of the tile program (``gt`` a tile)."""
        raise NotImplementedError

    @property
    def m_size(self) -> int:
        """A group's M, cut into ``mt``-sized tiles."""
        raise NotImplementedError

    @property
    def n_gt(self) -> int:
        return ceil_div(self.groups, self.gt)  # type: ignore[attr-defined]

    @property
    def n_mt(self) -> int:
        return ceil_div(self.m_size, self.mt)  # type: ignore[attr-defined]

    @property
    def tile_count(self) -> int:
        return self.n_gt * self.n_mt

    @property
    def q_word_bits(self) -> int:
        from codesign.sim.tileplan import QUANT_ENTRY_BITS

        return self.lanes * QUANT_ENTRY_BITS

    @property
    def prologue_bytes(self) -> int:
        """Bytes the DMA reads before the first tile: the requantization table."""
        return self.q_words * beats_per_word(self.q_word_bits, self.bus_bytes) * self.bus_bytes

    def tiles(self) -> Iterator[Tile]:
        raise NotImplementedError

    def tile_transfers(self, t: Tile) -> tuple[int, int]:
        raise NotImplementedError

    def tile_compute_cycles(self, t: Tile) -> int:
        raise NotImplementedError

    def tile_runs(self) -> tuple[tuple[int, int, int, int], ...]:
        """Run-length encoded ``(count, load_bytes, store_bytes, compute_cycles)`` in execution order."""
        return run_lengths((*self.tile_transfers(t), self.tile_compute_cycles(t)) for t in self.tiles())


@dataclass(frozen=True)
class DwPlan(LanePlan):
    """Tiling of one depthwise layer on the engine (see the module docstring)."""

    batch: int
    channels: int
    in_h: int
    in_w: int
    r: int
    s: int
    stride: tuple[int, int]
    padding: tuple[int, int, int, int]  # top, left, bottom, right
    out_h: int
    out_w: int
    geometry: WordGeometry
    bus_bytes: int
    slots: int
    slot_words: tuple[int, int, int]
    gt: int  # planes per tile (a power of two; > 1 only with whole planes)
    mt: int  # output rows per band
    kmax: int = 3  # the engine's window (depthwise_kernel)
    mode: int = MODE_MAC  # MODE_MAX: a max pool (no weights; the maxima through the identity table)
    mult: int = 1  # the channel multiplier: output planes j * planes + p, j < mult (the descriptor's N loop)
    act_table: bool = field(default=False, kw_only=True)  # a table activation in the write-back (flags bit 10)

    # -- sizes ------------------------------------------------------------------------------------
    nt = 1  # one N and one K tile (TilePlan's names, for the result's plan column)
    kt = 1
    weights_outer = False

    @property
    def pooling(self) -> bool:
        return self.mode == MODE_MAX

    @property
    def b_block(self) -> int:
        """Words of a plane's block in the weight buffer (:func:`b_words`)."""
        return b_words(self.r * self.s, self.mode)

    @property
    def planes(self) -> int:
        """Planes of the layer, all images: ``batch * ceil(C / lanes)`` (each its own group)."""
        return self.batch * ceil_div(self.channels, self.lanes)

    @property
    def w_pad(self) -> int:
        return self.in_w + self.padding[1] + self.padding[3]

    @property
    def out_planes(self) -> int:
        """Planes of the output, all images: ``mult * planes`` (multiplier ``j``'s are ``j * planes ..``)."""
        return self.planes * self.mult

    @property
    def groups(self) -> int:
        return self.planes

    @property
    def m_size(self) -> int:
        """Output rows of a plane."""
        return self.out_h

    @property
    def tile_count(self) -> int:
        return self.n_gt * self.n_mt * self.mult

    def band(self, m0: int, ms: int) -> tuple[int, int, int, int]:
        """``(first input row, input rows, pad_top, pad_bottom)`` of the band of outputs ``m0 .. m0+ms-1``:
        the rows its windows read, clipped to the image (the clipped rows are padding the engine makes);
        the last band reads to the image's end (a whole plane when it is the only band, so planes packed
        in one tile are one contiguous range). The plan keeps padding rows in the first and the last
        band only."""
        return band_rows(m0, ms, self.out_h, self.in_h, self.stride[0], self.padding[0], self.r)

    def band_words(self, m0: int, ms: int) -> tuple[int, int, int]:
        """Buffer words ``(A, B, C)`` of one plane's band."""
        _, rows, _, _ = self.band(m0, ms)
        return rows * self.in_w, self.b_block, ms * self.out_w

    def band_h_pad(self, m0: int, ms: int) -> int:
        _, rows, pt, pb = self.band(m0, ms)
        return pt + rows + pb

    @property
    def q_words(self) -> int:
        """The requantization table: one word (lanes entries) per plane (and the activation's table)."""
        if not self.requantized:
            return 0
        from codesign.sim.tileplan import table_words

        return self.out_planes + (table_words(self.q_word_bits, self.geometry.out_bits) if self.act_table else 0)

    # -- DRAM regions ------------------------------------------------------------------------------
    @property
    def plane_bytes(self) -> tuple[int, int, int]:
        """Bytes of one plane of the input, of the weights, of the output."""
        wa, wb, wc = self.word_bytes()
        return self.in_h * self.in_w * wa, self.b_block * wb, self.out_h * self.out_w * wc

    @property
    def dram_footprint_bytes(self) -> tuple[int, int, int]:
        a, b, c = self.plane_bytes
        return a * self.planes, b * self.out_planes, c * self.out_planes

    # -- the tile program -----------------------------------------------------------------------------
    def tiles(self) -> Iterator[Tile]:
        """Tiles in execution order: planes (``gt`` at a time), then bands, then the multiplier ``j`` (the
        N loop: ``n0 = j``); a band's input loads with its first ``j`` (reused for the others), the weights
        with a plane's first band (multiplier 1), or with every tile (each ``j`` has its own)."""
        a_slot = b_slot = c_slot = self.slots - 1
        i = 0
        for g0 in range(0, self.planes, self.gt):
            for m0 in range(0, self.out_h, self.mt):
                for j in range(self.mult):
                    load_a = j == 0
                    load_b = m0 == 0 or self.mult > 1
                    if load_a:
                        a_slot = (a_slot + 1) % self.slots
                    if load_b:
                        b_slot = (b_slot + 1) % self.slots
                    c_slot = (c_slot + 1) % self.slots
                    yield Tile(i, g0, min(self.gt, self.planes - g0), m0, min(self.mt, self.out_h - m0), j, 1, 0, 1,
                               load_a, load_b, a_slot, b_slot, c_slot)
                    i += 1

    def tile_transfers(self, t: Tile) -> tuple[int, int]:
        wa, wb, wc = self.band_words(t.m0, t.ms)
        ba, bb, bc = self.word_bytes()
        return t.gs * ((wa * ba if t.load_a else 0) + (wb * bb if t.load_b else 0)), t.gs * wc * bc

    def tile_compute_cycles(self, t: Tile) -> int:
        return dw_tile_compute_cycles(t.gs, self.band_h_pad(t.m0, t.ms), self.w_pad, self.r * self.s, self.mode)

    def taps(self) -> int:
        """Window taps of the layer's channels, ``batch * C * R * S * out_h * out_w`` (a last plane's
        empty lanes are not counted): a convolution's MACs, a max pool's comparisons."""
        return self.batch * self.channels * self.mult * self.r * self.s * self.out_h * self.out_w

    def enabled_macs(self) -> int:
        """MACs of the layer's channels (a last plane's empty lanes compute zeros, not counted); a max
        pool multiplies nothing (its taps are comparisons: :meth:`taps`)."""
        return 0 if self.pooling else self.taps()

    def scan_positions(self) -> int:
        """Padded positions the engine scans (each reads one input word when inside the image)."""
        return sum(t.gs * self.band_h_pad(t.m0, t.ms) * self.w_pad for t in self.tiles())

    def input_words_loaded(self) -> int:
        """Input-buffer words the DMA writes (each band once)."""
        return sum(t.gs * self.band(t.m0, t.ms)[1] * self.in_w for t in self.tiles() if t.load_a)

    def input_words_read(self) -> int:
        """Input-buffer words the engine reads (inside-image positions of every band, once per multiplier)."""
        return self.mult * self.input_words_loaded()

    def weight_words_loaded(self) -> int:
        """Weight-buffer words the DMA writes (a plane's block with its first band; every tile's with a
        multiplier)."""
        return sum(t.gs * self.b_block for t in self.tiles() if t.load_b)

    # -- the descriptor -------------------------------------------------------------------------------
    def descriptor(self, a_base: int = 0, b_base: int = 0, c_base: int = 0, q_base: int = 0, *,
                   zero_point: int = 0, clamp_lo: int = 0, clamp_hi: int = 0) -> dict[str, int]:
        """Register values of the layer descriptor in depthwise mode (``flags`` bit 3, the engine's mode in
        bits 9..8: 0 a convolution, 1 a max pool): the GEMM fields reused (M = output rows, groups = input
        planes, K one tile, N the channel multiplier in tiles of 1: A reused across it, flags bit 0, its
        weights, table words and output planes ``planes`` apart), and the ``dw_*`` fields."""
        wa, wb, wc = self.word_bytes()
        pa, _pb, pc = self.plane_bytes
        pt, pl, _, pr = self.padding
        sh, sw = self.stride
        last_ms = self.out_h - (self.n_mt - 1) * self.mt
        d = {
            "a_base": a_base, "b_base": b_base, "c_base": c_base,
            "m": self.out_h, "n": self.mult, "k": 1, "groups": self.planes,
            "mt": self.mt, "nt": 1, "kt": 1, "gt": self.gt,
            # A reused across the multiplier (a plane's band: one load), B across the bands (multiplier 1);
            # depthwise mode; a table activation in the write-back
            "flags": int(self.mult > 1) | int(self.mult == 1) << 1 | 1 << 3 | self.mode << MODE_SHIFT
            | int(self.act_table and self.requantized) << 10,
            "a_stride_g": pa * self.gt, "a_stride_m": self.mt * sh * self.in_w * wa, "a_stride_k": 0,
            "b_stride_g": self.b_block * wb * self.gt, "b_stride_n": self.b_block * wb * self.planes, "b_stride_k": 0,
            "c_stride_g": pc * self.gt, "c_stride_m": self.mt * self.out_w * wc, "c_stride_n": pc * self.planes,
            "q_base": q_base, "q_words": self.q_words, "q_nf": 1, "q_stride_n": self.planes if self.mult > 1 else 0,
            "c_nf_0": 1, "c_nf_1": 1,
            "zero_point": zero_point & 0xFFFFFFFF, "clamp_lo": clamp_lo & 0xFFFFFFFF,
            "clamp_hi": clamp_hi & 0xFFFFFFFF,
            "dw_skew": pt * self.in_w * wa, "dw_in_w": self.in_w,
            "dw_pad": pt | pl << 8 | self.band((self.n_mt - 1) * self.mt, last_ms)[3] << 16 | pr << 24,
            **{f: 0 for f in VEC_FIELDS}, **{f: 0 for f in CV_FIELDS}, **{f: 0 for f in RES_FIELDS},
            **{f: 0 for f in POOL_FIELDS},
            **{f: 0 for f in DWS_FIELDS},
            "dw_kernel": self.r | self.s << 8 | sh << 16 | sw << 24,
        }
        kinds = {(0, 1): (0, self.mt), (1, 0): ((self.n_mt - 1) * self.mt, last_ms)}  # first, last band
        if self.n_mt == 1:
            kinds = {(1, 1): (0, self.out_h)}
        elif self.n_mt > 2:
            kinds[(0, 0)] = (self.mt, self.mt)  # the middle bands (all alike)
        if self.n_mt == 1:  # one band: every kind is it (the hardware checks gt x a_words_00 against a slot)
            kinds = {(lm, fm): (0, self.out_h) for lm in (0, 1) for fm in (0, 1)}
        for lm in (0, 1):  # A words and input rows per band kind (last band, first band); 0: no such band
            for fm in (0, 1):
                rows = self.band(*kinds[lm, fm])[1] if (lm, fm) in kinds else 0
                d[f"a_words_{lm}{fm}"] = rows * self.in_w
                d[f"dw_rows_{lm}{fm}"] = rows
        for i in (0, 1):
            for j in (0, 1):
                d[f"b_words_{i}{j}"] = self.b_block
                d[f"c_words_{i}{j}"] = (last_ms if i else self.mt) * self.out_w
        return d


def plan_dw(layer: Conv2d | Pool, batch: int, config: AcceleratorConfig) -> DwPlan:
    """The engine's plan of ``layer``, a depthwise convolution or a max pool (check :func:`layer_reason`
    or :func:`pool_reason` first)."""
    plan = _choose_cached(batch, *_Shape.of(layer).key(), config)
    if plan is None:  # pragma: no cover - callers check layer_reason
        raise ValueError(f"layer {layer.name!r} does not fit the depthwise engine")
    return plan


plan_pool = plan_dw


@lru_cache(maxsize=65536)
def _choose_cached(batch: int, channels: int, in_h: int, in_w: int, r: int, s: int, stride: tuple[int, int],
                   padding: tuple[int, int, int, int], out_h: int, out_w: int, mode: int, mult: int,
                   config: AcceleratorConfig) -> DwPlan | None:
    """The fixed heuristic: whole planes (as many per tile as fit, a power of two) when a plane fits
    a slot, else the tallest band of output rows that fits."""
    cfg = config
    geo = WordGeometry(Dataflow.WS, cfg.rows, cfg.cols, cfg.act_bits, cfg.weight_bits, cfg.acc_bits,
                       cfg.act_bits if cfg.requantize else 0)
    slots = 2 if cfg.double_buffered else 1
    depth = (cfg.input_sram_bytes * 8 // geo.a_word_bits, cfg.weight_sram_bytes * 8 // geo.b_word_bits,
             cfg.output_sram_bytes * 8 // geo.c_word_bits)
    slot_words = (depth[0] // slots, depth[1] // slots, depth[2] // slots)
    sa, sb, sc = slot_words
    b_block = b_words(r * s, mode)
    if sb < b_block:
        return None
    bus = bus_bytes(cfg)

    def make(gt: int, mt: int) -> DwPlan:
        return DwPlan(batch, channels, in_h, in_w, r, s, stride, padding, out_h, out_w, geo, bus, slots,
                      slot_words, gt, mt, cfg.depthwise_kernel, mode, mult)

    whole = make(1, out_h)
    if _fits(whole, sa, sc):
        wa, _, wc = whole.band_words(0, out_h)
        most = max(1, min(whole.planes, sa // wa, sb // b_block, sc // wc))
        return make(1 << (most.bit_length() - 1), out_h)
    for mt in range(min(out_h, sc // max(1, out_w)), 0, -1):
        plan = make(1, mt)
        if _fits(plan, sa, sc):
            return plan
    return None


def _fits(plan: DwPlan, sa: int, sc: int) -> bool:
    """Every band kind (first, middle, last) of a one-plane-per-tile plan fits its slots, reads at
    least one input row, and keeps padding rows in the first and last bands only."""
    for m0 in band_starts(plan.out_h, plan.mt):
        wa, _, wc = plan.band_words(m0, min(plan.mt, plan.out_h - m0))
        if wa > sa or wc > sc:
            return False
    return bands_keep_padding_at_ends(plan.band, plan.out_h, plan.mt)


def band_rows(m0: int, ms: int, out_h: int, in_h: int, stride_h: int, pad_top: int,
              kernel_h: int) -> tuple[int, int, int, int]:
    """``(first input row, input rows, pad_top, pad_bottom)`` of the band of output rows ``m0 .. m0+ms-1``
    of a map ``in_h`` rows high read by a ``kernel_h``-row window (dilated: its extent) at ``stride_h``:
    the rows its windows read, clipped to the image (the clipped rows are padding made on chip); the
    last band reads to the image's end."""
    lo = m0 * stride_h - pad_top
    hi = (m0 + ms - 1) * stride_h - pad_top + kernel_h
    last = m0 + ms >= out_h
    first_row = max(0, lo)
    end = in_h if last else min(in_h, hi)
    return first_row, end - first_row, first_row - lo, max(0, hi - in_h) if last else hi - end


def band_starts(out_h: int, mt: int) -> list[int]:
    """First output rows of the band kinds of ``mt``-row bands: the first, the second (all the middle
    ones are alike), the last."""
    n_mt = ceil_div(out_h, mt)
    return sorted({0, min(mt, (n_mt - 1) * mt), (n_mt - 1) * mt})


def bands_keep_padding_at_ends(band: Callable[[int, int], tuple[int, int, int, int]], out_h: int, mt: int) -> bool:
    """Every band (``band(m0, ms)``: :func:`band_rows`) of ``mt`` output rows reads at least one input
    row, and only the first and the last have padding rows (the hardware makes a band's top padding in
    the first band and its bottom padding in the last)."""
    for m0 in band_starts(out_h, mt):
        ms = min(mt, out_h - m0)
        _, rows, pad_t, pad_b = band(m0, ms)
        if rows < 1 or (pad_t and m0 != 0) or (pad_b and m0 + ms < out_h):
            return False
    n_mt = ceil_div(out_h, mt)
    # the band before the last (its bottom may be the last one to touch padding)
    return not (n_mt > 2 and band((n_mt - 2) * mt, mt)[3])


def plan_layer_dw(layer: Conv2d | Pool, batch: int, config: AcceleratorConfig):  # type: ignore[no-untyped-def]
    """The :class:`codesign.sim.mapping.LayerPlan` of a depthwise layer (or a max pool) on the built engine.

    A max pool multiplies nothing: its taps are comparisons (``vector_ops``, as the vector unit's), each
    reading the window's activation register, and its weight-buffer block is one word a plane."""
    from codesign.sim.mapping import LayerPlan, TileRun
    from codesign.sim.result import Counts

    plan = plan_dw(layer, batch, config)
    geo = plan.geometry
    runs = tuple(TileRun(c, ld, st, cy) for c, ld, st, cy in plan.tile_runs())
    load = sum(r.count * r.load_bytes for r in runs) + plan.prologue_bytes
    store = sum(r.count * r.store_bytes for r in runs)
    active = plan.enabled_macs()
    ab, wb = min(layer.inputs.bits, config.act_bits), min(layer.weights.bits, config.weight_bits)
    in_words, in_loaded = plan.input_words_read(), plan.input_words_loaded()
    w_words = plan.weight_words_loaded()
    out_words = plan.out_planes * plan.out_h * plan.out_w
    compares = plan.taps() if plan.pooling else 0
    counts = Counts(
        active_macs=active,
        register_bits=active * (ab + wb) + compares * ab,  # window and weight registers per MAC (a max: window)
        vector_ops=compares,
        input_sram_read_bits=in_words * geo.a_word_bits,
        input_sram_write_bits=in_loaded * geo.a_word_bits,
        weight_sram_read_bits=w_words * geo.b_word_bits,
        weight_sram_write_bits=w_words * geo.b_word_bits,
        output_sram_read_bits=out_words * geo.c_word_bits,
        output_sram_write_bits=out_words * geo.c_word_bits,
        dram_read_bits=load * 8,
        dram_write_bits=store * 8,
    )
    return LayerPlan(runs=runs, counts=counts, folds=0, tile_mnk=(plan.gt, plan.mt, 1, 1), tiling=plan)
