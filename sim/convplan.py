"""Convolutions on the array with their windows made on chip: what the simulator times, the whole-layer
top runs and ``verify`` lays out.

Why. With im2col laid out by the host, a ``R x S`` convolution's A operand is ``R * S`` times its
feature map in DRAM and moves as such (ResNet-18's 3x3 layers: about 3x their compulsory bytes). Here
the DMA reads a band of the feature map's rows (with the halo the windows need) and the fold
controller makes each window word from it on chip (:mod:`codesign.hdl.control.fold`): Gemmini's
shifted reads over a channels-last tile, not a line buffer, because the weight-stationary array
already streams one input word a cycle per fold and a read address per cycle is all a window needs
(a line buffer would hold the same band twice). Zero padding is made on chip (a word outside the
image is a zero, never stored), strides and dilations are address steps.

Built beside a square weight-stationary array (``rows == cols``: a word of a feature-map plane is a
word of the array's input and of its output) for convolutions with one group, when it is the better
way (``conv_windows: true``, the default; :func:`layer_reason`): it must not multiply the folds by
more than two against im2col (a 3-channel stem packs ``3 * R * S`` values into few words of im2col,
one plane of ``rows`` lanes per tap here) nor move more A bytes (a strided ``1 x 1`` convolution reads
only every other row and column of its map through im2col). That choice is the network input's only
(the host writes it, im2col or planes): a convolution reading another layer's output reads its planes
whenever windows run it (:func:`mode_reason`), since an im2col matrix of it is host work between the
layers that no plan times.

Memory layout
-------------
* **Feature maps as planes** (:mod:`codesign.sim.dwplan`'s layout, NVDLA's surfaces): the input is
  ``[batch][C / rows][H][W]`` words of ``rows`` channels (the last plane's missing channels zero), the
  output ``[batch][N / cols][OH][OW]`` words of ``cols`` channels, at whole bus beats a word. The
  write-back writes the output in the layout the next convolution (or the depthwise engine) reads.
* **Weights** in the array's weight-stationary buffer layout, per tile block ``B[ni, ki]`` (as
  :class:`codesign.sim.tileplan.TilePlan`'s, shared by the images): fold ``kf = (plane * R + ky) * S + kx``
  of the K tile's planes, row ``lane`` of a fold is input channel ``plane * rows + lane`` at tap
  ``(ky, kx)`` (zero for a last plane's missing channels).
* **Requantization table**: one word (``cols`` entries) per plane of output channels, shared by the images.

Tiles
-----
``gt = 1`` image, ``mt`` whole output rows (``mt * OW`` pixels: the GEMM's M), ``nt`` output channels,
``kt`` input planes; loop order and reuse as the GEMM plan's (weights or inputs outer, K innermost
with partial sums on chip). A tile's A is ``ks`` blocks (its planes, one DMA range with a plane's
stride between blocks), each the band of input rows its output rows read, clipped to the image (the
clipped rows are padding made on chip); padding rows stay in the first and last bands. Its C is
``ceil(ns / cols)`` blocks of ``ms`` pixels written at a plane's stride.

Timing contract: a tile is one on-chip GEMM of ``ms`` pixels, ``ns`` columns and
``ks * R * S`` folds of ``rows`` lanes, ``native_gemm_cycles(ms, ns, ks * R * S * rows) +
GEMM_ISSUE_CYCLES + TILE_ISSUE_CYCLES`` cycles; the DMA program and its timing are the GEMM plan's.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from functools import cached_property, lru_cache

from codesign.sim.config import AcceleratorConfig, Dataflow, ZeroHandling
from codesign.sim.dwplan import band_rows, bands_keep_padding_at_ends
from codesign.sim.tileplan import (
    DWS_FIELDS,
    POOL_FIELDS,
    RES_FIELDS,
    VEC_FIELDS,
    LoopNest,
    Tile,
    WordGeometry,
    beats_per_word,
    bus_bytes,
    nest_tiles,
    q_table_words,
    run_lengths,
    skip_hardware,
    table_words,
    tile_compute_cycles,
)
from codesign.sim.timing import ceil_div
from codesign.workloads.layers import Conv2d

WIN_DIM_MAX = 4095  # widths, heights (12-bit counters of the window address generator)
WIN_FIELD_MAX = 255  # kernels, strides, dilations, paddings (8-bit descriptor fields)


def design_reason(config: AcceleratorConfig) -> str:
    """Why ``config`` does not build on-chip convolution windows ('' when it does)."""
    c = config
    if not c.conv_windows:
        return "conv_windows is false"
    if c.dataflow is not Dataflow.WS:
        return f"convolution windows are built on the weight-stationary array, not {c.dataflow.value!r}"
    if c.rows != c.cols:
        return f"convolution windows need a square array (planes of rows = cols channels), not {c.rows}x{c.cols}"
    if skip_hardware(c) is not None:  # (its activation words carry groups of m, not planes)
        return "convolution windows are not built on the n:m skipping array"
    return ""


def reads_producer(layer: Conv2d) -> bool:
    """Whether ``layer``'s input is another layer's output (its first source names a layer), not the
    network's input, which the host writes."""
    from codesign.workloads.layers import NETWORK_INPUT

    return bool(layer.sources) and layer.sources[0] != NETWORK_INPUT


def mode_reason(layer: Conv2d, rows: int) -> str:
    """Why ``layer`` on ``rows`` lanes runs as im2col rather than with on-chip windows ('' when windows):
    the cheaper of the two for the network's input (:func:`_mode_reason`), always windows for a layer
    reading another layer's output. Its im2col matrix would be host work between the layers, which no
    plan times (and a program from one start cannot do): such a layer reads the producer's planes,
    whatever the folds and bytes (a strided ``1 x 1`` convolution reads the whole band of its rows)."""
    return "" if reads_producer(layer) else _mode_reason(layer, rows)


def _mode_reason(layer: Conv2d, rows: int) -> str:
    """Why on-chip windows are not the better way for ``layer`` on ``rows`` lanes ('' when they are)."""
    k = layer.r * layer.s
    planes = ceil_div(layer.in_channels, rows)
    if planes * k > 2 * ceil_div(layer.in_channels * k, rows):
        return (f"{layer.in_channels} input channels fill {layer.in_channels * 100 // (planes * rows)} % of a plane: "
                f"im2col packs the taps")
    # A words: im2col M x ceil(K / rows); windows: every plane's rows the output rows reach, whole rows
    eff = (layer.r - 1) * layer.dilation[0] + 1  # type: ignore[index]
    top = layer.padding[0]  # type: ignore[index]
    last = (layer.out_h - 1) * layer.stride[0] - top + eff  # type: ignore[index]
    rows_read = min(layer.in_h, last) - max(0, -top)
    if planes * rows_read * layer.in_w > layer.out_h * layer.out_w * ceil_div(layer.in_channels * k, rows):
        return "the windows' rows move more bytes than im2col (a strided kernel skips rows and columns)"
    return ""


def layer_reason(layer: Conv2d, batch: int, config: AcceleratorConfig) -> str:
    """Why ``layer`` does not run with on-chip windows on ``config`` ('' when it does)."""
    reason = design_reason(config)
    if reason:
        return reason
    if not isinstance(layer, Conv2d) or layer.groups != 1:
        return "on-chip windows run convolutions of one group"
    if config.zero_handling is ZeroHandling.SKIP and layer.weights.density < 1.0:
        # idealized skipping (model-only) compresses im2col's K; the engine weighs it against the gated
        # layer, which has the windows (sim.engine.simulate_layer)
        return "zero skipping compresses the layer's im2col K"
    if max(layer.in_h, layer.in_w, layer.out_h, layer.out_w) > WIN_DIM_MAX:
        return f"on-chip windows hold maps up to {WIN_DIM_MAX} pixels a side"
    if max(layer.r, layer.s, *layer.stride, *layer.dilation, *layer.padding) > WIN_FIELD_MAX:  # type: ignore[misc]
        return f"on-chip windows hold kernels, strides, dilations and paddings up to {WIN_FIELD_MAX}"
    reason = mode_reason(layer, config.rows)
    if reason:
        return reason
    if config.requantize and ceil_div(layer.out_channels, config.cols) > q_table_words(config):
        from codesign.sim.tileplan import TABLE_REASON

        return TABLE_REASON
    if _choose(layer, batch, config) is None:
        return "no band of the convolution's rows fits the buffers' slots"
    return ""


@dataclass(frozen=True)
class WinPlan(LoopNest):
    """Tiling of one convolution with on-chip windows (see the module docstring)."""

    batch: int
    in_channels: int
    out_channels: int
    in_h: int
    in_w: int
    r: int
    s: int
    stride: tuple[int, int]
    dilation: tuple[int, int]
    padding: tuple[int, int, int, int]  # top, left, bottom, right
    out_h: int
    out_w: int
    geometry: WordGeometry
    bus_bytes: int
    slots: int
    slot_words: tuple[int, int, int]
    mt: int  # output rows a tile
    nt: int  # output channels a tile (a multiple of cols, or all)
    kt: int  # input planes a tile
    weights_outer: bool
    act_table: bool = field(default=False, kw_only=True)  # a table activation in the write-back (flags bit 10)
    gt = 1

    # -- sizes -----------------------------------------------------------------------------------
    @property
    def lanes(self) -> int:
        return self.geometry.rows

    @property
    def planes(self) -> int:
        """Input planes of one image."""
        return ceil_div(self.in_channels, self.lanes)

    @property
    def out_planes(self) -> int:
        return ceil_div(self.out_channels, self.geometry.cols)

    @property
    def taps(self) -> int:
        return self.r * self.s

    @property
    def m_pixels(self) -> int:
        return self.out_h * self.out_w

    @property
    def n_gt(self) -> int:
        return self.batch

    @property
    def n_mt(self) -> int:
        return ceil_div(self.out_h, self.mt)

    @property
    def n_nt(self) -> int:
        return ceil_div(self.out_channels, self.nt)

    @property
    def n_kt(self) -> int:
        return ceil_div(self.planes, self.kt)

    @property
    def requantized(self) -> bool:
        return self.geometry.out_bits > 0

    @property
    def q_words(self) -> int:
        if not self.requantized:
            return 0
        return self.out_planes + (table_words(self.q_word_bits, self.geometry.out_bits) if self.act_table else 0)

    @property
    def q_word_bits(self) -> int:
        from codesign.sim.tileplan import QUANT_ENTRY_BITS

        return self.geometry.cols * QUANT_ENTRY_BITS

    @property
    def prologue_bytes(self) -> int:
        return self.q_words * beats_per_word(self.q_word_bits, self.bus_bytes) * self.bus_bytes

    def word_bytes(self) -> tuple[int, int, int]:
        g, bus = self.geometry, self.bus_bytes
        return (beats_per_word(g.a_word_bits, bus) * bus, beats_per_word(g.b_word_bits, bus) * bus,
                beats_per_word(g.c_dram_word_bits, bus) * bus)

    # -- bands ----------------------------------------------------------------------------------
    def band(self, m0: int, ms: int) -> tuple[int, int, int, int]:
        """``(first input row, input rows, pad_top, pad_bottom)`` of the output rows ``m0 .. m0+ms-1``
        (:meth:`codesign.sim.dwplan.DwPlan.band` with the dilated kernel height)."""
        eff = (self.r - 1) * self.dilation[0] + 1
        return band_rows(m0, ms, self.out_h, self.in_h, self.stride[0], self.padding[0], eff)

    def band_kinds(self) -> dict[tuple[int, int], tuple[int, int]]:
        """``{(last, first): (m0, ms)}`` of the band kinds (in output rows); one band is every kind."""
        n_mt, mt = self.n_mt, self.mt
        if n_mt == 1:
            return {(lm, fm): (0, self.out_h) for lm in (0, 1) for fm in (0, 1)}
        last0 = (n_mt - 1) * mt
        kinds = {(0, 1): (0, mt), (1, 0): (last0, self.out_h - last0)}
        if n_mt > 2:
            kinds[(0, 0)] = (mt, mt)
        return kinds

    def block_words(self, m0: int, ms: int, ns: int, ks: int) -> tuple[int, int, int]:
        """Buffer words ``(A, B, C)`` of a tile of output rows ``m0 .. m0+ms-1``, ``ns`` channels and
        ``ks`` planes."""
        rows = self.band(m0, ms)[1]
        nf = ceil_div(ns, self.geometry.cols)
        return ks * rows * self.in_w, nf * ks * self.taps * self.lanes, nf * ms * self.out_w

    def fits(self) -> bool:
        """Every band kind fits its slots, reads a row, and keeps padding rows in the first and last
        bands only (:func:`codesign.sim.dwplan.bands_keep_padding_at_ends`)."""
        sa, sb, sc = self.slot_words
        if self.block_words(0, 1, self.nt, self.kt)[1] > sb:
            return False
        for m0, ms in self.band_kinds().values():
            wa, _, wc = self.block_words(m0, ms, self.nt, self.kt)
            if wa > sa or wc > sc:
                return False
        return bands_keep_padding_at_ends(self.band, self.out_h, self.mt)

    # -- DRAM -------------------------------------------------------------------------------------
    @cached_property
    def strides_bytes(self) -> dict[str, int]:
        wa, wb, wc = self.word_bytes()
        plane_a = self.in_h * self.in_w * wa
        plane_c = self.out_h * self.out_w * wc
        fb = self.block_words(0, 1, self.nt, self.kt)[1] * wb
        return {
            "plane_a": plane_a, "plane_c": plane_c,
            "a_g": plane_a * self.planes, "a_m": self.mt * self.stride[0] * self.in_w * wa, "a_k": plane_a * self.kt,
            "b_g": 0, "b_k": fb, "b_n": fb * self.n_kt,
            "c_g": plane_c * self.out_planes, "c_m": self.mt * self.out_w * wc,
            "c_n": plane_c * ceil_div(self.nt, self.geometry.cols),
        }

    @property
    def dram_footprint_bytes(self) -> tuple[int, int, int]:
        s = self.strides_bytes
        return s["a_g"] * self.batch, s["b_n"] * self.n_nt, s["c_g"] * self.batch

    # -- the tile program ---------------------------------------------------------------------------
    def tiles(self) -> Iterator[Tile]:
        """Tiles in execution order (the GEMM plan's loop nest); ``m0``/``ms`` in output rows."""
        yield from nest_tiles((self.batch, self.out_h, self.out_channels, self.planes), (1, self.mt, self.nt, self.kt),
                              self.weights_outer, self.a_reuse, self.b_reuse, self.slots)

    def tile_transfers(self, t: Tile) -> tuple[int, int]:
        wa, wb, wc = self.block_words(t.m0, t.ms, t.ns, t.ks)
        ba, bb, bc = self.word_bytes()
        load = (wa * ba if t.load_a else 0) + (wb * bb if t.load_b else 0)
        store = wc * bc if t.k0 + t.ks >= self.planes else 0
        return load, store

    def gemm_dims(self, t: Tile) -> tuple[int, int, int]:
        """The tile's on-chip GEMM: pixels, channels, and K as ``folds * rows``."""
        return t.ms * self.out_w, t.ns, t.ks * self.taps * self.lanes

    def tile_runs(self, config: AcceleratorConfig, residual: bool = False) -> tuple[tuple[int, int, int, int], ...]:
        """Run-length encoded ``(count, load_bytes, store_bytes, compute_cycles)`` in execution order;
        with a built residual add (:mod:`codesign.sim.fusion`) a storing tile's load also reads the
        residual's blocks (as many bytes as the store)."""
        return _runs(self, config, residual)

    def traffic_bytes(self) -> tuple[int, int, int]:
        """DRAM bytes of the A loads, B loads and C stores (the tile program's, in closed form)."""
        wa, wb, wc = self.word_bytes()
        kinds = self._m_pieces()
        rows = sum(self.band(m0, ms)[1] * count for m0, ms, count in kinds)
        a = rows * self.in_w * self.planes * wa * (1 if self.a_reuse else self.n_nt)
        b = self.out_planes * self.planes * self.taps * self.lanes * wb * (1 if self.b_reuse else self.n_mt)
        c = self.out_planes * self.m_pixels * wc
        return a * self.batch, b * self.batch, c * self.batch

    def _m_pieces(self) -> list[tuple[int, int, int]]:
        """``(m0, ms, count)`` of the bands of one image: first, the middle ones (alike), last."""
        kinds = self.band_kinds()
        if self.n_mt == 1:
            return [(0, self.out_h, 1)]
        out = [(*kinds[(0, 1)], 1), (*kinds[(1, 0)], 1)]
        if self.n_mt > 2:
            out.append((*kinds[(0, 0)], self.n_mt - 2))
        return out

    def input_words_read(self) -> int:
        """Input-buffer words the fold controller reads: every pixel's every fold, per column chunk."""
        return self.batch * self.m_pixels * self.planes * self.taps * self.out_planes

    # -- the descriptor ---------------------------------------------------------------------------------
    def descriptor(self, a_base: int = 0, b_base: int = 0, c_base: int = 0, q_base: int = 0, *,
                   zero_point: int = 0, clamp_lo: int = 0, clamp_hi: int = 0) -> dict[str, int]:
        """Register values in window mode (``flags`` bit 6): the GEMM fields with M in pixels (tiles of
        whole output rows), N in channels, K in input planes, groups the images; the band and window
        fields (``dw_*``, ``cv_*``)."""
        s = self.strides_bytes
        cols = self.geometry.cols
        wa = self.word_bytes()[0]
        pt, pl, pb, pr = self.padding
        sh, sw = self.stride
        dh, dw = self.dilation
        last_n = self.out_channels - (self.n_nt - 1) * self.nt
        d = {
            "a_base": a_base, "b_base": b_base, "c_base": c_base,
            "m": self.m_pixels, "n": self.out_channels, "k": self.planes, "groups": self.batch,
            "mt": self.mt * self.out_w, "nt": self.nt, "kt": self.kt, "gt": 1,
            "flags": int(self.a_reuse) | int(self.b_reuse) << 1 | int(self.weights_outer) << 2 | 1 << 6
            | int(self.act_table and self.requantized) << 10,
            "a_stride_g": s["a_g"], "a_stride_m": s["a_m"], "a_stride_k": s["a_k"],
            "b_stride_g": 0, "b_stride_n": s["b_n"], "b_stride_k": s["b_k"],
            "c_stride_g": s["c_g"], "c_stride_m": s["c_m"], "c_stride_n": s["c_n"],
            "q_base": q_base, "q_words": self.q_words, "q_nf": 1,
            "q_stride_n": ceil_div(self.nt, cols) if self.n_nt > 1 else 0,
            "c_nf_0": ceil_div(self.nt, cols), "c_nf_1": ceil_div(last_n, cols),
            "zero_point": zero_point & 0xFFFFFFFF, "clamp_lo": clamp_lo & 0xFFFFFFFF,
            "clamp_hi": clamp_hi & 0xFFFFFFFF,
            "dw_skew": pt * self.in_w * wa, "dw_in_w": self.in_w,
            "dw_pad": pt | pl << 8 | pb << 16 | pr << 24,
            "dw_kernel": self.r | self.s << 8 | sh << 16 | sw << 24,
            **{f: 0 for f in VEC_FIELDS}, **{f: 0 for f in RES_FIELDS}, **{f: 0 for f in POOL_FIELDS},
            **{f: 0 for f in DWS_FIELDS},
            "cv_out_w": self.out_w, "cv_dil": dh | dw << 8, "cv_row_step": sh * self.in_w,
            "cv_dil_step": dh * self.in_w, "cv_lanes": self.in_channels - (self.planes - 1) * self.lanes,
            "cv_a_block": s["plane_a"], "cv_c_block": s["plane_c"], "cv_top_words": pt * self.in_w,
            "cv_a_tile_words": self.kt * max(self.band(m0, ms)[1] for m0, ms in self.band_kinds().values()) * self.in_w,
        }
        kinds = self.band_kinds()
        for lm in (0, 1):
            for fm in (0, 1):
                if (lm, fm) in kinds:
                    m0, ms = kinds[lm, fm]
                    rows = self.band(m0, ms)[1]
                else:
                    rows = 0
                d[f"dw_rows_{lm}{fm}"] = rows
                d[f"a_words_{lm}{fm}"] = rows * self.in_w  # a block: one plane's band
        last_k = self.planes - (self.n_kt - 1) * self.kt
        for lk in (0, 1):
            for ln in (0, 1):
                ks = last_k if lk else self.kt
                ns = last_n if ln else self.nt
                d[f"b_words_{lk}{ln}"] = self.block_words(0, 1, ns, ks)[1]
        last_m = self.out_h - (self.n_mt - 1) * self.mt
        for lm in (0, 1):
            for ln in (0, 1):
                ms = last_m if lm else self.mt
                d[f"c_words_{lm}{ln}"] = ms * self.out_w  # a block: one plane of output channels
        return d


@lru_cache(maxsize=65536)
def _runs(plan: WinPlan, config: AcceleratorConfig, residual: bool) -> tuple[tuple[int, int, int, int], ...]:
    def run(t: Tile) -> tuple[int, int, int]:
        load, store = plan.tile_transfers(t)
        return load + store if residual else load, store, tile_compute_cycles(config, 1, *plan.gemm_dims(t))

    return run_lengths(run(t) for t in plan.tiles())


def plan_win(layer: Conv2d, batch: int, config: AcceleratorConfig) -> WinPlan:
    """The plan of ``layer`` (check :func:`layer_reason` first)."""
    plan = _choose(layer, batch, config)
    if plan is None:  # pragma: no cover - callers check layer_reason
        raise ValueError(f"layer {layer.name!r} does not fit on-chip windows")
    return plan


def _choose(layer: Conv2d, batch: int, config: AcceleratorConfig) -> WinPlan | None:
    plans = _choose_estimate(layer, batch, config)
    return None if plans is None else _exact_pick(layer, batch, plans, config)


def _choose_estimate(layer: Conv2d, batch: int, config: AcceleratorConfig) -> tuple[WinPlan, ...] | None:
    """The plans by estimate (:func:`_choose_cached`: overlapped, with the edges no overlap hides, and the
    frugal one), before :func:`_exact_pick`."""
    c = config
    key = (c.rows, c.cols, c.act_bits, c.weight_bits, c.acc_bits, c.requantize, c.double_buffered,
           c.input_sram_bytes, c.weight_sram_bytes, c.output_sram_bytes, bus_bytes(c), c.dram_bytes_per_cycle,
           c.dram_latency_cycles)
    return _choose_cached(batch, layer.in_channels, layer.out_channels, layer.in_h, layer.in_w, layer.r, layer.s,
                          tuple(layer.stride), tuple(layer.dilation), tuple(layer.padding),  # type: ignore[arg-type]
                          layer.out_h, layer.out_w, key)


def even_band(plan: WinPlan) -> int:
    """The band height with as many bands as ``plan``'s, as even as they go (0: ``plan``'s own, or its
    padding rows would leave the first and last bands)."""
    even = ceil_div(plan.out_h, plan.n_mt)
    if even == plan.mt or not bands_keep_padding_at_ends(plan.band, plan.out_h, even):
        return 0
    return even


def candidates(plans: tuple[WinPlan, ...]) -> list[WinPlan]:
    """The plans :func:`_exact_pick` times, in its order of preference on a tie: each estimate's plan,
    then the same with even bands (:func:`even_band`)."""
    out: list[WinPlan] = []
    for plan in plans:
        for p in (plan, replace(plan, mt=even_band(plan)) if even_band(plan) else None):
            if p is not None and p not in out:
                out.append(p)
    return out


@lru_cache(maxsize=65536)
def _exact_pick(layer: Conv2d, batch: int, plans: tuple[WinPlan, ...], config: AcceleratorConfig) -> WinPlan:
    """Of the :func:`candidates` the one with the best ``config.objective`` (edp, the default: cycles x
    energy; latency: cycles, then energy; energy: energy, then cycles), each timed exactly (the
    closed-form pipeline of its tile program, the layer alone) and its energy from its counts; the first
    on a tie. Each estimate misses cases the other gets: the overlapped one favours the fewest tiles, so
    a small layer of one tile loads, computes and stores in turn (DS-CNN's 1x1 layers on 8x8: 10,870
    cycles in one tile, 10,154 in four that read the input twice: the lower EDP is the first); a ragged
    last band of a few rows reloads the weights for little compute (ResNet-18's 28-row 3x3 layers on
    32x32 in bands of 9, 9, 9 and 1 rows: 128,655 cycles; in even bands of 7 rows 117,851); both take the
    fewest cycles over the DRAM bytes, which the frugal plan puts first (ResNet-18's ``layer2.1.conv2`` on
    16x16: 1,224,704 bytes in 30 tiles by the overlapped estimate, 812,032 bytes in 32 tiles of all 8
    input planes for 0.4 % more estimated cycles; MobileNetV1-0.25's 6x6 1x1 layers on 8x8: one tile of
    12,806 cycles, or 51,200 bytes in 16 tiles of 8 output channels that overlap their loads, 10,631)."""
    from codesign.sim.config import Objective
    from codesign.sim.cost import layer_energy
    from codesign.sim.engine import pipeline_closed_form

    best: tuple[float, float] | None = None
    chosen = plans[0]
    for p in candidates(plans):
        lp = _layer_plan(layer, batch, config, p, residual=False)
        cycles = pipeline_closed_form(lp.runs, config, p.prologue_bytes).cycles
        energy = sum(layer_energy(lp.counts, cycles, config).values())
        if config.objective is Objective.LATENCY:
            key: tuple[float, float] = (cycles, energy)
        elif config.objective is Objective.ENERGY:
            key = (energy, cycles)
        else:
            key = (cycles * energy, cycles)
        if best is None or key < best:
            best, chosen = key, p
    return chosen


@lru_cache(maxsize=65536)
def _choose_cached(batch: int, cin: int, cout: int, in_h: int, in_w: int, r: int, s: int, stride: tuple[int, int],
                   dilation: tuple[int, int], padding: tuple[int, int, int, int], out_h: int, out_w: int,
                   key: tuple) -> tuple[WinPlan, WinPlan, WinPlan] | None:
    """The fixed heuristic: over K tiles of whole planes (all, halves, ..., one) and N tiles of any
    number of whole column chunks, the tallest band that fits, both loop orders; the plan
    with the fewest estimated cycles (:func:`_estimate`), then DRAM bytes, then tiles, then weights outer;
    the same with the edges no overlap hides added to the estimate (:func:`_edges`); and the frugal plan:
    the fewest DRAM bytes, then the fewest estimated cycles with the edges, tiles, weights outer."""
    rows, cols, ab, wbits, accb, requant, double, in_b, w_b, out_b, bus, bw, lat = key
    geo = WordGeometry(Dataflow.WS, rows, cols, ab, wbits, accb, ab if requant else 0)
    slots = 2 if double else 1
    depth = (in_b * 8 // geo.a_word_bits, w_b * 8 // geo.b_word_bits, out_b * 8 // geo.c_word_bits)
    slot_words = (depth[0] // slots, depth[1] // slots, depth[2] // slots)
    planes = ceil_div(cin, rows)
    chunks = ceil_div(cout, cols)

    def halvings(total: int) -> list[int]:
        out, x = [], total
        while True:
            out.append(x)
            if x == 1:
                return out
            x = ceil_div(x, 2)

    best: tuple[tuple[int, int, int, bool], WinPlan] | None = None
    best_e: tuple[tuple[int, int, int, bool], WinPlan] | None = None
    scored: list[tuple[int, int, int, bool, WinPlan]] = []  # (moved, est + edges, tiles, not wo, plan), in order
    for kt in halvings(planes):
        for nf in range(chunks, 0, -1):
            nt = cout if nf == chunks else nf * cols
            for wo in (True, False):
                for mt in range(out_h, 0, -1):
                    plan = WinPlan(batch, cin, cout, in_h, in_w, r, s, stride, dilation, padding, out_h, out_w,
                                   geo, bus, slots, slot_words, mt, nt, kt, wo)
                    if plan.fits():
                        moved = sum(plan.traffic_bytes())
                        est = _estimate(plan, moved, bw, lat)
                        score = (est, moved, plan.tile_count, not wo)
                        if best is None or score < best[0]:
                            best = (score, plan)
                        score = (est + _edges(plan, bw, lat), moved, plan.tile_count, not wo)
                        scored.append((moved, score[0], plan.tile_count, not wo, plan))
                        if best_e is None or score < best_e[0]:
                            best_e = (score, plan)
                        break
    if best is None or best_e is None:
        return None
    frugal = min(scored, key=lambda s: s[:4])
    return best[1], best_e[1], frugal[4]


def _estimate(plan: WinPlan, moved_bytes: int, bw: float, latency: int) -> int:
    """Cycles the plan takes about: the larger of its compute (every tile's GEMM: the array's folds
    at ``max(pixels, rows)`` cycles and a fill and drain) and its DMA time (the bytes at the bandwidth
    and a command's latency per tile)."""
    r, c = plan.geometry.rows, plan.geometry.cols
    compute = 0
    for _m0, ms, count in plan._m_pieces():
        px = ms * plan.out_w
        folds = plan.planes * plan.taps * plan.out_planes  # over the tiles of one band of one image
        compute += count * (folds * max(px, r) + plan.n_nt * plan.n_kt * (px + r + c + 3))
    dma = plan.tile_count // plan.batch * (latency + 4) + int(moved_bytes / bw / plan.batch)
    return max(compute, dma)


def _edges(plan: WinPlan, bw: float, latency: int) -> int:
    """Cycles no overlap hides: the first tile's load before any compute, the last tile's store after
    it (small layers of few tiles are mostly these: DS-CNN's and MobileNetV1-0.25's 1x1 layers)."""
    ba, bb, bc = plan.word_bytes()
    m_last = plan.out_h - (plan.n_mt - 1) * plan.mt
    n_last = plan.out_channels - (plan.n_nt - 1) * plan.nt
    first = plan.block_words(0, plan.mt, plan.nt, plan.kt)
    last_store = ceil_div(n_last, plan.geometry.cols) * m_last * plan.out_w * bc
    return 2 * latency + int((first[0] * ba + first[1] * bb + last_store) / bw)


def plan_layer_win(layer: Conv2d, batch: int, config: AcceleratorConfig,  # type: ignore[no-untyped-def]
                   residual: bool = False):
    """The :class:`codesign.sim.mapping.LayerPlan` of a convolution with on-chip windows (``residual``:
    with a built residual add in its write-back, :mod:`codesign.sim.fusion`)."""
    return _layer_plan(layer, batch, config, plan_win(layer, batch, config), residual)


def _layer_plan(layer: Conv2d, batch: int, config: AcceleratorConfig, plan: WinPlan,  # type: ignore[no-untyped-def]
                residual: bool):
    """:func:`plan_layer_win` for ``plan``."""
    from codesign.sim.mapping import LayerPlan, TileRun, effective_bits, residual_counts
    from codesign.sim.result import Counts
    from codesign.sim.tileplan import WRITEBACK_ADD_CYCLES
    from codesign.sim.timing import map_gemm

    geo = plan.geometry
    runs = tuple(TileRun(c, ld, st, cy) for c, ld, st, cy in plan.tile_runs(config, residual))
    a_bytes, b_bytes, c_bytes = plan.traffic_bytes()
    load = a_bytes + b_bytes + plan.prologue_bytes
    ab = effective_bits(layer.inputs, config.act_bits)
    wb = effective_bits(layer.weights, config.weight_bits)
    ob = min(layer.outputs.bits, config.acc_bits)
    g = layer.gemm(batch)
    assert g is not None
    macs = g.m * g.n * g.k * g.repeats
    from codesign.sim.mapping import _inside

    if config.zero_handling is ZeroHandling.NONE:
        active, gated = macs, 0
    else:  # gating: zero operands (padding made on chip included) do not switch the MAC
        active = round(macs * layer.weights.density * layer.inputs.density * _inside(layer))
        gated = macs - active
    pixels = batch * plan.m_pixels
    folds_per_chunk = plan.planes * plan.taps
    c_elems = pixels * layer.out_channels
    a_reads = plan.input_words_read()
    psum_writes = c_elems * folds_per_chunk  # one write per fold (read-modify-write after the first)
    psum_reads = max(0, psum_writes - c_elems)
    b_elems = layer.out_channels * plan.planes * plan.taps * plan.lanes
    counts = Counts(
        active_macs=active,
        gated_macs=gated,
        register_bits=active * wb,
        pe_to_pe_bits=macs * (ab + config.acc_bits) + b_elems * wb * max(1, config.rows // 2) * batch,
        input_sram_read_bits=a_reads * geo.a_word_bits,
        input_sram_write_bits=a_bytes * 8,
        weight_sram_read_bits=b_elems * wb * batch,
        weight_sram_write_bits=b_bytes * 8,
        output_sram_read_bits=psum_reads * config.acc_bits + c_elems * ob,
        output_sram_write_bits=psum_writes * config.acc_bits,
        dram_read_bits=load * 8,
        dram_write_bits=c_bytes * 8,
        vector_ops=c_elems if plan.requantized else 0,
    )
    if residual:
        counts = residual_counts(counts, c_bytes)
    fm = map_gemm(config.dataflow, config.rows, config.cols, plan.m_pixels, layer.out_channels,
                  folds_per_chunk * plan.lanes)
    return LayerPlan(runs=runs, counts=counts, folds=fm.folds * batch,
                     tile_mnk=(1, plan.mt * plan.out_w, plan.nt, plan.kt), tiling=plan,
                     store_extra_cycles=WRITEBACK_ADD_CYCLES if residual else 0)
