"""A depthwise convolution in its pointwise convolution's write-back: what the simulator times, the whole-layer
top runs and ``verify`` lays out.

Why. In an inverted residual block (MobileNetV2, EfficientNet, MCUNet) the 1x1 *expand* convolution writes the
block's largest map, six times its input, and the depthwise convolution after it reads it straight back: on
MobileNetV2 (32x32 array) ``block1.expand`` writes 1.2 MB and ``block1.dw`` reads 1.35 MB, 2.5 MB of the bus
for two layers whose own input and output are 0.4 MB and 0.3 MB. Here the depthwise engine is a stage of the
expand's write-back (as the pool stage is for a max pool, :mod:`codesign.sim.poolfuse`; depth-first execution of
the pair as Stream and MCUNetV2 schedule it): the expanded map never leaves the chip, only the depthwise output
goes to DRAM.

The machine (:mod:`codesign.hdl.engines.depthwise` in stream mode, :mod:`codesign.hdl.memory.dma`)
--------------------------------------------------------------------------------------------------
The 1x1 convolution runs as its GEMM on the weight-stationary array in tiles of **one output row of one
plane** (``mt = W`` pixels, ``nt = cols`` channels), planes outer and rows inner (weights outer: the plane's
weights load once, the block input's row is read once per plane), K innermost. Each tile's store (after its
last K tile) is

1. at a plane's first row: the engine's weight slots loaded from the table buffer (the depthwise plane's
   ``R * S`` taps and its channel count, packed ``56 // weight_bits`` to a table word) and the engine started;
2. a *pass*: the write-back reads the tile's ``W`` output words, requantizes them with the 1x1 layer's table and
   hands them to the depthwise engine instead of the bus, one padded position a cycle: ``pad_l`` padding
   positions, the row's ``W`` words, ``pad_r`` padding positions; the plane's first row is preceded by its
   ``pad_t`` padding rows, its last followed by its ``pad_b`` rows. The engine's scan runs on these positions
   (its line buffers hold the plane's rows above), so each output of the depthwise layer is made exactly once;
   its accumulators go into a rows buffer of their own (``row_words``: the array writes the output buffer
   meanwhile);
3. when the pass completes output rows (those whose windows end on the padded rows it scanned), a *store* of
   them from the rows buffer, requantized with the depthwise layer's table and zero point and clamps (``dws_*``),
   to the depthwise output's planes in DRAM (the layout of :mod:`codesign.sim.dwplan`, the next layer's), the
   rows in order, so one running address serves every plane.

The tables are read in the prologue: the 1x1's, the depthwise layer's (a word a plane), then each plane's
depthwise weights.

Pairs (:func:`pair_reason`): a 1x1 convolution (stride 1, no padding, one group) whose only reader is the
depthwise convolution after it (one channel a group, no channel multiplier, the engine's kernels and widths),
neither with a table activation, on a design that builds the depthwise engine and ``dw_writeback``. The pair
fuses where it takes fewer cycles than the two layers alone (:func:`fuses`): the block input is read once a
plane, so a narrow map with many planes (MobileNetV2's 14x14 and 7x7 blocks) runs faster alone.

Timing contract
---------------
A passing tile's store takes ``DW_PASS_OVERHEAD_CYCLES`` and one cycle a padded position (plus
:func:`plane_load_cycles`, ``R * S + 3``, at a plane's first row: the weight slots and the engine's start) from its
decision to the decision of its rows' store, holding no bus; then, when it completes output rows, their store as any
store of their bytes (:func:`codesign.sim.tileplan.dma_write_cycles`); a pass that completes none ends there.
Counts: the 1x1 layer's GEMM (its output words read once by the pass), the depthwise layer's MACs and window
registers on its own row, its accumulators written and read once in the rows buffer (output SRAM), no input
buffer traffic of its own.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import lru_cache
from typing import TYPE_CHECKING

from codesign.sim.config import AcceleratorConfig, Dataflow
from codesign.sim.dwplan import DW_LATENCY_CYCLES, b_words
from codesign.sim.timing import ceil_div
from codesign.workloads.layers import Conv2d, Layer

if TYPE_CHECKING:
    from codesign.sim.mapping import LayerPlan
    from codesign.sim.result import Counts
    from codesign.sim.tileplan import TilePlan

#: from a store's decision to the decision of the rows' store (or the store's end) besides one cycle a padded
#: position: the step into the positions before the row, the pass's command, the DMA's pass (its command register,
#: the buffer read, the requantization's cuts, the stage's cycles: the pool pass's), the step after the positions
#: behind the row, the engine's pipeline (DWS_DRAIN_CYCLES and a cycle) and the rows' command. Measured on the RTL's
#: write FSM (hdl.layer: DWS_PRE .. DWS_ROWS); tests/rtl/test_dw_writeback_rtl.py holds every layer to it
DW_PASS_OVERHEAD_CYCLES = 17
#: cycles the stage waits after its last padding position before it decides the rows' store: the engine's
#: pipeline (hdl.engines.depthwise.LATENCY_CYCLES after a position its output is written)
DWS_DRAIN_CYCLES = DW_LATENCY_CYCLES


def plane_load_cycles(taps: int) -> int:
    """Cycles at a plane's first row before its pass: the weight slots from the table buffer (a read a tap,
    the clear and the channel count) and the engine's start."""
    return taps + 3


def row_words(config: AcceleratorConfig) -> int:
    """Words of the depthwise rows buffer (accumulators of the output rows one pass completes): two rows of
    the engine's widest line, or the output buffer's depth if smaller (``hdl.layer``)."""
    from codesign.sim.dwplan import DW_WIDTH_MAX

    depth = config.output_sram_bytes * 8 // (config.cols * config.acc_bits)
    return max(1, min(2 * DW_WIDTH_MAX, depth))


def weight_entries_per_word(weight_bits: int) -> int:
    """Taps (words of ``cols`` weights) a table word holds: ``cols * 56`` bits over ``cols * weight_bits``."""
    return max(1, 56 // weight_bits)


def weight_words(taps: int, weight_bits: int) -> int:
    """Table words of one plane's depthwise weights: its taps and its channel count, from a fresh word."""
    return ceil_div(taps + 1, weight_entries_per_word(weight_bits))


@dataclass(frozen=True)
class DwStage:
    """The depthwise layer's geometry over the map the 1x1 convolution writes (``h x w``)."""

    r: int
    s: int
    sh: int
    sw: int
    pt: int
    pl: int
    pb: int
    pr: int
    h: int
    w: int
    oh: int
    ow: int

    @classmethod
    def of(cls, dw: Conv2d) -> DwStage:
        r, s = dw.kernel  # type: ignore[misc]
        sh, sw = dw.stride  # type: ignore[misc]
        pt, pl, pb, pr = dw.padding  # type: ignore[misc]
        return cls(r, s, sh, sw, pt, pl, pb, pr, dw.in_h, dw.in_w, dw.out_h, dw.out_w)

    @property
    def taps(self) -> int:
        return self.r * self.s

    @property
    def w_pad(self) -> int:
        return self.pl + self.w + self.pr

    def positions(self, row: int) -> int:
        """Padded positions the pass of image row ``row`` scans (the padding rows at the plane's ends)."""
        rows = 1 + (self.pt if row == 0 else 0) + (self.pb if row == self.h - 1 else 0)
        return rows * self.w_pad

    def out_rows(self, row: int) -> tuple[int, int]:
        """``(first, count)`` of the output rows whose windows end on the padded rows the pass of ``row`` scans."""
        lo = 0 if row == 0 else row + self.pt
        hi = row + self.pt + (self.pb if row == self.h - 1 else 0)
        # output oy's window ends on padded row oy * sh + r - 1
        first = max(0, ceil_div(lo - self.r + 1, self.sh))
        last = min(self.oh - 1, (hi - self.r + 1) // self.sh) if hi >= self.r - 1 else -1
        return first, max(0, last - first + 1)

    @property
    def max_rows(self) -> int:
        """The most output rows one pass completes."""
        return max(self.out_rows(r)[1] for r in range(self.h))


def design_reason(config: AcceleratorConfig) -> str:
    """Why ``config`` does not build the depthwise stage in the write-back ('' when it does)."""
    from codesign.sim import dwplan

    if not config.dw_writeback:
        return "dw_writeback is false"
    if not config.depthwise_on_engine:
        return "the depthwise stage is the depthwise engine (depthwise: engine or auto)"
    if not config.requantize:
        return "the depthwise stage takes requantized outputs (requantize: true)"
    return dwplan.design_reason(config)


def _pointwise(layer: Layer) -> bool:
    return (isinstance(layer, Conv2d) and layer.groups == 1 and tuple(layer.kernel) == (1, 1)  # type: ignore[arg-type]
            and tuple(layer.stride) == (1, 1) and not any(layer.padding)  # type: ignore[arg-type]
            and tuple(layer.dilation) == (1, 1))  # type: ignore[arg-type]


def pair_reason(pw: Layer, dw: Layer, batch: int, config: AcceleratorConfig) -> str:
    """Why ``dw`` does not run in ``pw``'s write-back ('' when it does)."""
    from codesign.sim import dwplan

    if not isinstance(dw, Conv2d) or not dw.is_depthwise or dw.out_channels != dw.in_channels:
        return "the write-back runs a depthwise convolution without a channel multiplier"
    if not _pointwise(pw):
        return "the depthwise stage follows a 1x1 convolution (stride 1, no padding, one group)"
    assert isinstance(pw, Conv2d)
    if batch != 1:
        return "the depthwise stage runs a batch of one"
    if pw.in_channels > config.rows:
        return f"the depthwise stage follows a 1x1 convolution of at most {config.rows} input channels (one plane)"
    if (pw.out_channels, pw.out_h, pw.out_w) != (dw.in_channels, dw.in_h, dw.in_w):
        return "the depthwise layer reads the 1x1 convolution's whole output"
    reason = design_reason(config)
    if reason:
        return reason
    for ly in (pw, dw):
        if ly.activation:
            return f"the depthwise stage runs no table activation, and {ly.name!r} has {ly.activation}"
    reason = dwplan.layer_reason(dw, batch, config)
    if reason:
        return reason
    if plan_fused(pw, dw, batch, config) is None:
        return "no tile of one row of one plane with its depthwise rows fits the buffers"
    return ""


@lru_cache(maxsize=4096)
def plan_fused(pw: Conv2d, dw: Conv2d, batch: int, config: AcceleratorConfig) -> TilePlan | None:
    """The GEMM plan of ``pw`` with ``dw`` in its write-back (tiles of one row of one plane, weights outer, all of
    K: one input plane), or None when it does not fit the buffers, the rows buffer or the table buffer."""
    from codesign.sim.tileplan import plan_fits, plan_with, q_table_words

    g = pw.gemm(batch)
    assert g is not None
    if config.dataflow is not Dataflow.WS or g.repeats != 1:
        return None
    stage = DwStage.of(dw)
    plan = replace(plan_with(g, config, 1, pw.out_w, min(config.cols, g.n), g.k, True), dw=stage)
    if plan_fits(plan) and stage.max_rows * stage.ow <= row_words(config) and plan.q_words <= q_table_words(config):
        return plan
    return None


def out_row_bytes(plan: TilePlan) -> int:
    """DRAM bytes of one output row of one plane of the depthwise layer."""
    assert plan.dw is not None
    return plan.dw.ow * plan.beats_per_word[2] * plan.bus_bytes


def dw_runs(plan: TilePlan, config: AcceleratorConfig) -> tuple[tuple[int, int, int, int, bool, int], ...]:
    """Run-length encoded ``(count, load_bytes, store_bytes, compute_cycles, passes, pass_cycles)`` in
    execution order (``pass_cycles``: the pass's positions and a plane's weight slots, without the overhead)."""
    from codesign.sim.tileplan import tile_costs

    st = plan.dw
    assert st is not None
    row_b = out_row_bytes(plan)
    runs: list[list[int]] = []
    for t, load, _store, cyc in tile_costs(plan, config):
        last_k = t.k0 + t.ks >= plan.gemm.k
        row = (t.m0 // st.w) % st.h
        stb, passes, pc = 0, 0, 0
        if last_k:
            passes = 1
            pc = st.positions(row) + (plane_load_cycles(st.taps) if row == 0 else 0)
            stb = st.out_rows(row)[1] * row_b
        key = [load, stb, cyc, passes, pc]
        if runs and runs[-1][1:] == key:
            runs[-1][0] += 1
        else:
            runs.append([1, *key])
    return tuple((c, ld, sb, cy, bool(ps), pc) for c, ld, sb, cy, ps, pc in runs)


def plan_pair(pw: Conv2d, dw: Conv2d, batch: int, config: AcceleratorConfig) -> LayerPlan:
    """The plan of the 1x1 convolution with ``dw`` in its write-back: its GEMM's counts with the depthwise
    output's DRAM bytes and the depthwise weights and table, the passes in its stores."""
    from codesign.sim.mapping import TileRun, gemm_plan_with

    tiling = plan_fused(pw, dw, batch, config)
    assert tiling is not None  # (checked by pair_reason)
    lp = gemm_plan_with(pw, batch, config, tiling)
    raw = dw_runs(tiling, config)
    runs = tuple(TileRun(n, ld, st, cy, ps, pc) for n, ld, st, cy, ps, pc in raw)
    load = sum(n * ld for n, ld, *_ in raw) + tiling.prologue_bytes
    store = sum(n * st for n, _ld, st, *_ in raw)
    counts = replace(lp.counts, dram_read_bits=load * 8, dram_write_bits=store * 8)
    return replace(lp, runs=runs, counts=counts, store_pass_cycles=DW_PASS_OVERHEAD_CYCLES)


def stage_counts(dw: Conv2d, batch: int, config: AcceleratorConfig) -> Counts:
    """The depthwise layer's own counts in the write-back: its MACs and window registers, its weight slots
    read from the weight buffer, its accumulators written into the output buffer and read by their store."""
    from codesign.sim.result import Counts

    lanes = config.cols
    planes = ceil_div(dw.out_channels, lanes)
    ab, wb = min(dw.inputs.bits, config.act_bits), min(dw.weights.bits, config.weight_bits)
    macs = dw.macs(batch)
    out_words = batch * planes * dw.out_h * dw.out_w
    c_bits = lanes * config.acc_bits
    st = DwStage.of(dw)
    return Counts(active_macs=macs, register_bits=macs * (ab + wb),
                  weight_sram_read_bits=batch * planes * b_words(st.taps) * lanes * config.weight_bits,
                  output_sram_write_bits=out_words * c_bits, output_sram_read_bits=out_words * c_bits)


def fuses(pw: Layer, dw: Layer, batch: int, config: AcceleratorConfig) -> bool:
    """Whether ``dw`` runs in ``pw``'s write-back: the pair is built and takes fewer cycles than the two
    layers alone (closed-form timing, the engine's)."""
    if pair_reason(pw, dw, batch, config):
        return False
    return _faster(pw, dw, batch, config)  # type: ignore[arg-type]


@lru_cache(maxsize=4096)
def _faster(pw: Conv2d, dw: Conv2d, batch: int, config: AcceleratorConfig) -> bool:
    from codesign.sim.engine import pipeline_closed_form
    from codesign.sim.mapping import plan_layer

    def cycles(lp: LayerPlan) -> int:
        return pipeline_closed_form(lp.runs, config, lp.tiling.prologue_bytes if lp.tiling else 0,
                                    lp.store_extra_cycles, lp.prologue_extra_cycles, lp.store_pass_cycles).cycles

    alone = cycles(plan_layer(pw, batch, config)) + cycles(plan_layer(dw, batch, config))
    return cycles(plan_pair(pw, dw, batch, config)) < alone


def q_stage_words(plan: TilePlan) -> int:
    """Table words of the depthwise layer after the 1x1 layer's: its requantization table (a word a plane),
    then each plane's weights (:func:`weight_words`)."""
    assert plan.dw is not None
    planes = ceil_div(plan.gemm.n, plan.geometry.cols)
    return planes * (1 + weight_words(plan.dw.taps, plan.geometry.weight_bits))


def descriptor_fields(plan: TilePlan) -> dict[str, int]:
    """The descriptor's fields of the depthwise stage (flags bit 15): the depthwise geometry in the dw_*
    fields, the map's height in dw_rows_00 (c_base is the depthwise output's planes)."""
    st = plan.dw
    assert st is not None
    return {"dw_kernel": st.r | st.s << 8 | st.sh << 16 | st.sw << 24,
            "dw_pad": st.pt | st.pl << 8 | st.pb << 16 | st.pr << 24, "dw_in_w": st.w, "dw_rows_00": st.h}
