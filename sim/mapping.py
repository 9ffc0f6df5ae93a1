"""Mapping a layer onto the accelerator: SRAM tiling, loop order, DRAM traffic, action counts.

A GEMM layer (``repeats`` groups of ``M x K @ K x N``) is cut into *tiles* by the one tiling plan,
:mod:`codesign.sim.tileplan` (the object the hardware's sequencer runs and ``verify`` lays out).
Each tile is one on-chip GEMM per group: the DMA loads its A and B blocks, the array computes it
(``tileplan.tile_compute_cycles``), the DMA stores its outputs (accumulators) after the last K
tile. DRAM traffic is the plan's bus beats (im2col'd A, as the host lays it out).

The tile sequence is kept run-length encoded (``TileRun``): equal consecutive tiles form one
run, so the engine's cost does not grow with the number of identical tiles.

Bits. The array runs at the configuration's widths and its buffers and DRAM blocks hold words of
those widths (a W4 layer on an INT8 array moves 8-bit lanes); SRAM reads are counted at
``min(layer operand bits, hardware bits)``. Accumulators occupy ``acc_bits`` in the output SRAM
and are written back as accumulators.

Zero handling. ``gate``: a MAC with a zero operand is not enabled (expected counts
``MACs * d_w * d_a``). ``skip``: zero weights are compressed away along K before the array
(``K_eff = ceil(K * d_w)``; N:M keeps exactly n of every m), each kept weight carrying
``ceil(log2(m))`` index bits (N:M) or one bitmask bit per dense weight (unstructured); zero
activations are then gated.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from functools import lru_cache

from codesign.sim.config import AcceleratorConfig, Dataflow, Mapping, ZeroHandling
from codesign.sim.fusion import DEFAULT, DRAM, ONCHIP, LayerContext
from codesign.sim.result import Counts
from codesign.sim.tileplan import (
    WRITEBACK_ADD_CYCLES,
    TilePlan,
    act_table_load_cycles,
    plan_dram_bytes,
    plan_tiles,
    plan_traffic_bytes,
    skip_hardware,
    skip_slots,
)
from codesign.sim.timing import ceil_div, map_gemm
from codesign.workloads.layers import Conv2d, Eltwise, GemmShape, Layer, MatMul, Pool, gemm_layer
from codesign.workloads.operand import Operand, Pattern


@dataclass(frozen=True)
class TileRun:
    """``count`` consecutive identical tiles."""

    count: int
    load_bytes: int  # DRAM -> SRAM before compute (A and B blocks, in bus beats)
    store_bytes: int  # SRAM -> DRAM after compute (0 while partial sums stay on chip)
    compute_cycles: int
    passes: bool = False  # its store first passes the output through a pool in the write-back (sim.poolfuse)
    # a pass of this many words (their own cycles, besides the layer's store_pass_cycles): a resident store
    # (sim.residency), whose words go into the input buffer, not to DRAM
    pass_words: int = 0


@dataclass(frozen=True)
class LayerPlan:
    runs: tuple[TileRun, ...]
    counts: Counts
    folds: int
    tile_mnk: tuple[int, int, int, int]  # groups per tile, Mt, Nt, Kt
    tiling: TilePlan | None = None  # the plan the hardware runs (GEMM layers)
    store_extra_cycles: int = 0  # each store's write-back runs a built residual add (sim.fusion) or a table
    prologue_extra_cycles: int = 0  # after the prologue's read, before the first load: an activation table
    store_pass_cycles: int = 0  # a passing tile's pass before its store (a pool in the write-back: sim.poolfuse)

    @property
    def tiles(self) -> int:
        return sum(r.count for r in self.runs)


def effective_bits(op: Operand, hw_bits: int) -> int:
    return min(op.bits, hw_bits)


def kept_k(k: int, op: Operand) -> int:
    """Length of K after compressing zero weights away (skip)."""
    if op.pattern is Pattern.NM:
        full, rest = divmod(k, op.m)
        return full * op.n + min(op.n, rest)
    return max(1, math.ceil(k * op.density)) if op.density < 1.0 else k


def metadata_bits(k: int, n: int, op: Operand) -> int:
    """Index bits of a compressed ``k x n`` weight block."""
    if op.pattern is Pattern.NM:
        return kept_k(k, op) * n * max(1, math.ceil(math.log2(op.m)))
    if op.density < 1.0:
        return k * n  # bitmask
    return 0


def _sizes(total: int, tile: int) -> list[tuple[int, int]]:
    """[(size, how_many)] of the pieces of ``total`` cut into ``tile``-sized pieces."""
    full, rest = divmod(total, tile)
    out = [(tile, full)] if full else []
    if rest:
        out.append((rest, 1))
    return out


def plan_gemm(g: GemmShape, inputs: Operand, weights: Operand, outputs: Operand,
              config: AcceleratorConfig, *, weights_static: bool = True, a_inside: float = 1.0,
              context: LayerContext = DEFAULT, b_planes: bool = False) -> LayerPlan:
    """Tile a GEMM (the plan the hardware runs: :func:`codesign.sim.tileplan.plan_tiles`, or the
    best of a search over plans with ``mapping: search``, :mod:`codesign.sim.search`) and count
    its actions. With zero-skipping (model-only) the GEMM is planned on the compressed K.

    ``context`` (:mod:`codesign.sim.fusion`, model-only): an input resident on chip loads no A
    blocks; an output kept on chip stores nothing to DRAM (its bits go into the input SRAM);
    the write-back of fused layers reads their DRAM operands along with the stores (timed with
    them, counted on the fused layers' rows); the tiles fit the input SRAM left by resident
    tensors. ``a_inside``: the fraction of A's entries that are not convolution padding (padding
    zeros are gated like any zero). ``b_planes``: B is a feature map read as its producer's planes (a
    global average pool's, :func:`planes_b_tiling`)."""
    return _plan_gemm_cached(g, inputs, weights, outputs, config, weights_static, a_inside, context, b_planes)


def im2col_inside_fraction(layer: Layer) -> float:
    """Fraction of the im2col matrix of a convolution that reads the input, not its padding:
    ``(sum_ky rows in bounds) * (sum_kx columns in bounds) / (out_h * out_w * R * S)``."""
    from codesign.workloads.layers import Conv2d

    if not isinstance(layer, Conv2d):
        return 1.0
    pt, pl, _pb, _pr = layer.padding  # type: ignore[misc]
    sh, sw = layer.stride  # type: ignore[misc]
    dh, dw = layer.dilation  # type: ignore[misc]

    def inside(out: int, kernel: int, stride: int, dil: int, pad: int, size: int) -> int:
        return sum(1 for o in range(out) for kk in range(kernel) if 0 <= o * stride + kk * dil - pad < size)

    iy = inside(layer.out_h, layer.r, sh, dh, pt, layer.in_h)
    ix = inside(layer.out_w, layer.s, sw, dw, pl, layer.in_w)
    return iy * ix / (layer.out_h * layer.out_w * layer.r * layer.s)


@lru_cache(maxsize=65536)
def _plan_gemm_cached(g: GemmShape, inputs: Operand, weights: Operand, outputs: Operand,
                      config: AcceleratorConfig, weights_static: bool, a_inside: float, ctx: LayerContext,
                      b_planes: bool = False) -> LayerPlan:
    cfg = config
    tcfg = cfg.replace(input_sram_bytes=ctx.input_sram_bytes) if ctx.input_sram_bytes else cfg
    ab = effective_bits(inputs, cfg.act_bits)
    wb = effective_bits(weights, cfg.weight_bits)
    ob = min(outputs.bits, cfg.acc_bits)
    nm = skip_hardware(cfg)
    if nm is not None:  # the n:m skipping hardware: K counts weight slots (compressed or dense layout)
        keff, skip = skip_slots(g.k, weights if weights_static else None, nm)
    else:
        skip = cfg.zero_handling is ZeroHandling.SKIP and weights_static and weights.density < 1.0
        keff = kept_k(g.k, weights) if skip else g.k
    tiling = plan_tiles(GemmShape(g.m, g.n, keff, g.repeats), tcfg)
    if cfg.mapping is Mapping.SEARCH:
        tiling = _search(g, inputs, weights, cfg, ab, wb, ob, skip, keff, tiling, ctx, a_inside)
    if b_planes:
        tiling = planes_b_tiling(tiling, tcfg)
    return _gemm_plan(g, inputs, weights, cfg, ab, wb, ob, skip, keff, tiling, ctx, a_inside)


def map_is_b(layer: Layer, lowered: Layer | None) -> bool:
    """Whether ``layer`` lowers to a GEMM whose B is its input feature map (a global average pool,
    ``ones[1, HW] @ X[HW, C]``), read in place as its producer's planes (:func:`planes_b_tiling`)."""
    return isinstance(layer, Pool) and isinstance(lowered, MatMul)


def planes_b_tiling(plan: TilePlan, config: AcceleratorConfig) -> TilePlan:
    """``plan`` of a GEMM whose B is a feature map read in place as its producer's planes (a global average
    pool, ``ones[1, HW] @ X[HW, C]``: pixels along K, a plane of ``cols`` channels a column chunk), cut so
    its B blocks lie inside the planes. A B block holds its column chunks one after another, each its K
    tile's pixels padded to whole words of ``rows`` (the array's weight rows): with the whole K in one tile,
    ``K`` a multiple of ``rows``, a chunk is a whole plane and the block whole planes; with K tiles the
    chunks of a block are pieces of planes a plane apart, not one range. So where the tiler cut K and put
    several chunks in a tile, the plan takes the whole K with as many whole planes as the slots hold, or,
    where one plane does not fit, one chunk a tile (each block a piece of one plane) with the K tile the
    tiler gives a GEMM of ``cols`` columns; the loop order the one with the fewer DRAM bytes. On the
    weight-stationary array without skipping only (the others do not read planes).

    Planes are never padded: a producer writes its planes ``H * W`` words apart (the depthwise engine writes
    the planes of a tile as one range, and every other reader, a squeeze-excite scale, a convolution, reads
    them so), and a map of ``K`` pixels not a multiple of ``rows`` is read one chunk a B block (``nt = cols``),
    ``b_stride_n`` the producer's plane stride. Its block still moves ``ceil(K / rows) * rows`` words: the
    last word row runs on into the next plane's first pixels (or past the last plane, into the bytes after
    it), which meet A's zero lanes (``A = ones[1, K]``, zero from pixel ``K`` on): they add nothing and, zero
    A gating them, enable no MAC. So the DRAM bytes and cycles are those of the padded blocks, with no
    layout of its own and no hardware of its own (the alternatives, a producer padding its planes or a
    scale reading padded planes, need the depthwise engine to write one plane a tile, or another address
    walk in the vector unit's reads); the price is a tile a chunk where several whole planes would fit a
    slot."""
    g, geo = plan.gemm, plan.geometry
    rows, cols = geo.rows, geo.cols
    unpadded = g.k % rows != 0  # whole planes are not whole words: one a block
    if geo.dataflow is not Dataflow.WS or geo.skip_n or plan.nt <= cols or (plan.n_kt == 1 and not unpadded):
        return plan
    sa, sb, sc = plan.slot_words
    kf, chunks = ceil_div(g.k, rows), ceil_div(g.n, cols)
    most = 1 if unpadded else chunks
    nf = min(most, sb // (kf * rows), sc // g.m) if kf * g.m <= sa else 0
    if nf:  # the whole K: whole planes, as many as fit (one when they are not whole words)
        mt, nt, kt = g.m, g.n if nf == chunks else nf * cols, g.k
    else:  # pieces of one plane
        one = plan_tiles(GemmShape(g.m, cols, g.k, g.repeats), config)
        mt, nt, kt = one.mt, cols, one.kt
    plans = [replace(plan, gt=1, mt=mt, nt=nt, kt=kt, weights_outer=wo) for wo in (True, False)]
    return min(plans, key=lambda p: (plan_dram_bytes(p), not p.weights_outer))


def _context_runs(tiling: TilePlan, cfg: AcceleratorConfig, ctx: LayerContext) -> tuple[TileRun, ...]:
    """The tile runs of a plan (``TilePlan.tile_runs``, by its numpy twin); in a fusion context
    without the A loads of a resident input, without the stores of a resident output, with the
    fused layers' DRAM reads spread over the stores (``ceil`` of their share)."""
    from codesign.sim.vectorized import tile_runs

    if ctx.writeback_add:  # built: the residual's blocks ride on the loads of the tiles that store
        runs = tile_runs(tiling, cfg, residual=True)
    else:
        runs = tile_runs(tiling, cfg, a_onchip=ctx.input_from == ONCHIP, c_onchip=ctx.output_to == ONCHIP,
                         extra_store_bytes=ctx.writeback_read_bytes)
    return tuple(TileRun(c, ld, st, cy) for c, ld, st, cy in runs)


def _gemm_plan(g: GemmShape, inputs: Operand, weights: Operand, cfg: AcceleratorConfig, ab: int, wb: int,
               ob: int, skip: bool, keff: int, tiling: TilePlan, ctx: LayerContext = DEFAULT,
               a_inside: float = 1.0) -> LayerPlan:
    runs = _context_runs(tiling, cfg, ctx)
    a_bytes, b_bytes, c_bytes = plan_traffic_bytes(tiling)
    a_onchip, c_onchip = ctx.input_from == ONCHIP, ctx.output_to == ONCHIP
    load = ((0 if a_onchip else a_bytes) + b_bytes + tiling.prologue_bytes) * 8
    store = 0 if c_onchip else c_bytes * 8
    if skip and not tiling.geometry.skip_n:  # idealized skipping: the metadata rides along the weights
        load += metadata_bits(g.k, g.n, weights) * g.repeats
    counts = _gemm_counts(g, inputs, weights, cfg, ab, wb, ob, skip, tiling, load, store, a_inside)
    if a_onchip or ctx.resident_bits:  # the input SRAM is filled by the producer, not from DRAM
        counts = replace(counts, input_sram_write_bits=(0 if a_onchip else a_bytes * 8) + ctx.resident_bits)
    extra = 0
    if ctx.writeback_add:
        counts = residual_counts(counts, c_bytes)
        extra = WRITEBACK_ADD_CYCLES
    fm = map_gemm(cfg.dataflow, cfg.rows, cfg.cols, g.m, g.n, keff)
    return LayerPlan(runs=runs, counts=counts, folds=fm.folds * g.repeats,
                     tile_mnk=(tiling.gt, tiling.mt, tiling.nt, tiling.kt), tiling=tiling, store_extra_cycles=extra)


def gemm_plan_with(layer: Conv2d, batch: int, config: AcceleratorConfig, tiling: TilePlan) -> LayerPlan:
    """The plan of a convolution's GEMM (dense, alone) run with ``tiling``: a write-back fusion's own tiles."""
    g = layer.gemm(batch)
    assert g is not None
    ab = effective_bits(layer.inputs, config.act_bits)
    wb = effective_bits(layer.weights, config.weight_bits)
    ob = min(layer.outputs.bits, config.acc_bits)
    return _gemm_plan(g, layer.inputs, layer.weights, config, ab, wb, ob, False, g.k, tiling, DEFAULT, _inside(layer))


def plan_pooled(layer: Conv2d, pool: Layer, batch: int, config: AcceleratorConfig) -> LayerPlan:
    """The plan of a convolution with a max pool in its write-back (:mod:`codesign.sim.poolfuse`): the GEMM
    plan's counts with the pooled map's DRAM bytes, the stage's memory as output SRAM (a read and a write a
    pooled element and window row, the pooled rows' reads on their way out), the passes in its stores."""
    from codesign.sim.poolfuse import pass_cycles, plan_fused, pool_runs

    assert isinstance(pool, Pool)
    tiling = plan_fused(layer, pool, batch, config)
    assert tiling is not None  # (sim.fusion checked poolfuse.pair_reason)
    lp = gemm_plan_with(layer, batch, config, tiling)
    kh = pool.kernel[0]  # type: ignore[index]
    pooled = pool.output_elements(batch)
    stage_bits = pooled * kh * config.act_bits  # each pooled element: a read and a write per window row
    c = lp.counts
    counts = replace(c, output_sram_read_bits=c.output_sram_read_bits + stage_bits + pooled * config.act_bits,
                     output_sram_write_bits=c.output_sram_write_bits + stage_bits)
    runs = tuple(TileRun(n, ld, st, cy, ps) for n, ld, st, cy, ps in pool_runs(tiling, config))
    return replace(lp, runs=runs, counts=counts, store_pass_cycles=pass_cycles(tiling))


def residual_counts(counts: Counts, c_bytes: int) -> Counts:
    """A head's counts with its built residual add: the residual's DRAM bytes (the same blocks as the
    output's), written into the residual buffer and read once by the write-back."""
    return replace(counts, dram_read_bits=counts.dram_read_bits + c_bytes * 8,
                   input_sram_write_bits=counts.input_sram_write_bits + c_bytes * 8,
                   input_sram_read_bits=counts.input_sram_read_bits + c_bytes * 8)


def _search(g: GemmShape, inputs: Operand, weights: Operand, cfg: AcceleratorConfig, ab: int, wb: int, ob: int,
            skip: bool, keff: int, fixed: TilePlan, ctx: LayerContext, a_inside: float) -> TilePlan:
    """The searched plan of one GEMM layer (:func:`codesign.sim.search.search`)."""
    from codesign.sim.cost import layer_energy, leakage_pj_per_cycle, load_table
    from codesign.sim.engine import pipeline_closed_form
    from codesign.sim.search import EnergyModel, search

    def exact(plan: TilePlan) -> tuple[int, float]:
        lp = _gemm_plan(g, inputs, weights, cfg, ab, wb, ob, skip, keff, plan, ctx, a_inside)
        cycles = pipeline_closed_form(lp.runs, cfg, plan.prologue_bytes, lp.store_extra_cycles).cycles
        return cycles, sum(layer_energy(lp.counts, cycles, cfg).values())

    t = load_table(cfg.energy_table)
    geo = fixed.geometry
    a_elems = g.m * (ceil_div(keff, geo.skip_n) * geo.skip_m if geo.skip_n else g.k) * g.repeats
    em = EnergyModel(
        a_elems=a_elems, b_elems=keff * g.n * g.repeats, c_elems=g.m * g.n * g.repeats, k=g.k,
        keff=keff, ab=ab, wb=wb + geo.index_bits, ob=ob, accb=cfg.acc_bits,
        meta_bits=metadata_bits(g.k, g.n, weights) * g.repeats if skip and not fixed.geometry.skip_n else 0,
        e_in=t.sram_pj_per_bit_at(cfg.input_sram_bytes), e_w=t.sram_pj_per_bit_at(cfg.weight_sram_bytes),
        e_out=t.sram_pj_per_bit_at(cfg.output_sram_bytes), e_dram=t.dram_pj_per_bit,
        leak_per_cycle=leakage_pj_per_cycle(cfg))
    # resident operands move no DRAM bytes: the cycle bound (which counts them) is then no bound
    bounded = ctx.input_from != ONCHIP and ctx.output_to != ONCHIP
    return search(fixed, cfg, em, exact, bounded=bounded)


def _gemm_counts(g: GemmShape, inputs: Operand, weights: Operand, cfg: AcceleratorConfig,
                 ab: int, wb: int, ob: int, skip: bool, tp: TilePlan, load_bits: int, store_bits: int,
                 a_inside: float = 1.0) -> Counts:
    mt, nt, kt = tp.mt, tp.nt, tp.kt
    m, n, k, reps = g.m, g.n, g.k, g.repeats
    macs = m * n * k * reps
    dw = weights.density
    da = inputs.density * a_inside  # padding zeros are zeros of A
    geo = tp.geometry
    if geo.skip_n:  # the n:m skipping hardware: every weight slot issued, zero operands gated
        slots = m * n * tp.gemm.k * reps
        real = m * n * kept_k(k, weights) * reps if skip else round(macs * dw)
        active = round(real * da)
        gated = slots - active
        skipped = macs - slots
    elif cfg.zero_handling is ZeroHandling.NONE:
        active, gated, skipped = macs, 0, 0
    elif skip:
        keff = kept_k(k, weights)
        executed = m * n * keff * reps
        skipped = macs - executed
        active = round(executed * da)
        gated = executed - active
    else:
        active = round(macs * dw * da)
        gated = macs - active
        skipped = 0
    keff = tp.gemm.k if geo.skip_n else kept_k(k, weights) if skip else k
    accb = cfg.acc_bits
    rows, cols = cfg.rows, cfg.cols
    # number of (m, n, k) tiles of each operand block re-read by the array per tile
    n_kt = ceil_div(k, kt)
    # SRAM traffic of the array, per dataflow (all tiles together; edges approximated by totals)
    cf = ceil_div(min(nt, n), cols)  # column folds within a tile (WS / OS: N on columns)
    rf_os = ceil_div(min(mt, m), rows)  # row folds within a tile (OS: M on rows)
    kf = ceil_div(min(kt, keff), rows)  # row folds within a tile (WS / IS: K on rows)
    mcf = ceil_div(min(mt, m), cols)  # column folds within a tile (IS: M on columns)
    b_elems = keff * n * reps
    # with n:m skipping the activation words carry groups: m lanes per n slots
    a_elems = m * ceil_div(keff, geo.skip_n) * geo.skip_m * reps if geo.skip_n else m * k * reps
    c_elems = m * n * reps
    if cfg.dataflow is Dataflow.WS:
        a_reads = a_elems * cf
        b_reads = b_elems
        psum_writes = c_elems * (kf * n_kt)
        if geo.skip_n:  # each PE passes its row's group of m activations on
            pe_hops = m * n * keff * reps * (ab * geo.skip_m + accb)
        else:
            pe_hops = macs * (ab + accb) if not skip else m * n * keff * reps * (ab + accb)
        pe_hops += b_elems * (wb + geo.index_bits) * max(1, rows // 2)
    elif cfg.dataflow is Dataflow.OS:
        a_reads = a_elems * cf
        b_reads = b_elems * rf_os
        psum_writes = c_elems * n_kt
        pe_hops = m * n * keff * reps * (ab + wb) + c_elems * accb * max(1, rows // 2)
    else:  # IS
        a_reads = a_elems
        b_reads = b_elems * mcf
        psum_writes = c_elems * (kf * n_kt)
        pe_hops = m * n * keff * reps * (wb + accb) + a_elems * ab * max(1, rows // 2)
    psum_reads = max(0, psum_writes - c_elems)
    # per enabled MAC the PE reads its stationary operand (WS: weight, IS: input) or
    # reads and writes its accumulator (OS); moving operands are counted as PE-to-PE hops
    stationary_bits = {Dataflow.WS: wb + geo.index_bits, Dataflow.IS: ab, Dataflow.OS: 2 * accb}[cfg.dataflow]
    meta = metadata_bits(k, n, weights) * reps if skip and not geo.skip_n else 0
    b_sram_reads = b_reads * (wb + geo.index_bits) + (meta * ceil_div(b_reads, max(1, b_elems)) if meta else 0)
    a_bytes, b_bytes, _c_bytes = plan_traffic_bytes(tp)
    a_dram, b_dram = a_bytes * 8, b_bytes * 8
    return Counts(
        active_macs=active,
        gated_macs=gated,
        skipped_macs=skipped,
        register_bits=active * stationary_bits,
        pe_to_pe_bits=pe_hops,
        input_sram_read_bits=a_reads * ab,
        input_sram_write_bits=a_dram,
        weight_sram_read_bits=b_sram_reads,
        weight_sram_write_bits=b_dram,
        output_sram_read_bits=psum_reads * accb + c_elems * ob,
        output_sram_write_bits=psum_writes * accb,
        dram_read_bits=load_bits,
        dram_write_bits=store_bits,
        vector_ops=c_elems if tp.requantized else 0,  # one scale, shift and clamp per output
    )


def plan_vector(elements_in: int, elements_out: int, ops: int, inputs: Operand, outputs: Operand,
                config: AcceleratorConfig, *, dram_in_bits: int | None = None, store: bool = True,
                resident_bits: int = 0) -> LayerPlan:
    """Pool / Eltwise on the vector unit: ``ceil(ops / lanes)`` cycles, tiled by the SRAMs.

    ``dram_in_bits``: the input bits read from DRAM (all ``elements_in`` unless some are on chip
    or broadcast); ``store``: the output goes to DRAM (else ``resident_bits`` into the input SRAM).
    """
    ab = effective_bits(inputs, config.act_bits)
    ob = min(outputs.bits, config.acc_bits)
    div = 2 if config.double_buffered else 1
    cap_a = config.input_sram_bytes * 8 // div
    cap_c = config.output_sram_bytes * 8 // div
    # tile over output elements; each output element needs in/out input elements
    ratio_in = elements_in / elements_out
    per_out = max(1, math.ceil(ratio_in * ab))
    tile_out = max(1, min(elements_out, cap_a // per_out, cap_c // max(1, ob)))
    ops_per_out = ops / elements_out
    full_in = dram_in_bits is None or dram_in_bits == elements_in * ab
    runs: list[TileRun] = []
    for size, count in _sizes(elements_out, tile_out):
        if full_in:
            load_bytes = ceil_div(math.ceil(size * ratio_in) * ab, 8)
        else:
            load_bytes = ceil_div(size * (dram_in_bits or 0), elements_out * 8)
        runs.append(TileRun(
            count=count,
            load_bytes=load_bytes,
            store_bytes=ceil_div(size * ob, 8) if store else 0,
            compute_cycles=ceil_div(math.ceil(size * ops_per_out), config.lanes),
        ))
    load = sum(r.count * r.load_bytes for r in runs) * 8
    store_bits = sum(r.count * r.store_bytes for r in runs) * 8
    counts = Counts(
        input_sram_read_bits=elements_in * ab,
        input_sram_write_bits=load + resident_bits,
        output_sram_read_bits=store_bits,
        output_sram_write_bits=elements_out * ob,
        dram_read_bits=load,
        dram_write_bits=store_bits,
        vector_ops=ops,
    )
    return LayerPlan(runs=tuple(runs), counts=counts, folds=0, tile_mnk=(1, tile_out, 1, 1))


@lru_cache(maxsize=65536)
def _inside(layer: Layer) -> float:
    return im2col_inside_fraction(layer)


def plan_layer(layer: Layer, batch: int, config: AcceleratorConfig, context: LayerContext = DEFAULT) -> LayerPlan:
    """The plan of one layer (:func:`_plan_layer`), with its table activation (:func:`with_activation`) and its
    residency (:mod:`codesign.sim.residency`)."""
    if context.res_in or context.res_out:
        from codesign.sim.residency import resident_plan, single_win_plan

        alone = replace(context, res_in=False, res_out=False, in_slot=0, single_tile=False)
        base = single_win_plan(layer, batch, config) if context.single_tile else plan_layer(layer, batch, config, alone)
        assert base is not None  # (sim.residency chose the plan)
        return resident_plan(base, context, config)
    return with_activation(_plan_layer(layer, batch, config, context), layer, batch, config)


def with_activation(lp: LayerPlan, layer: Layer, batch: int, config: AcceleratorConfig) -> LayerPlan:
    """``lp`` with ``layer``'s table activation in its requantizing write-back (``flags`` bit 10, the
    vector unit's TABLE: :mod:`codesign.hdl.layer`): the table's words (``act_table_words``) are read
    after the requantization table in the prologue and written into the unit an entry a cycle
    (``act_table_load_cycles``) before the first tile's load; every output word goes through the unit on
    its way out (``WRITEBACK_ADD_CYCLES`` more before each store's data, as a residual add's), a lookup
    an element. Without a requantizing write-back (accumulator outputs), or a plan without one (the
    model-only engines), the plan is as without the activation."""
    tiling = lp.tiling
    if not layer.activation or tiling is None or not hasattr(tiling, "act_table") or not tiling.requantized:
        return lp
    table = replace(tiling, act_table=True)
    extra_bytes = table.prologue_bytes - tiling.prologue_bytes
    counts = replace(lp.counts, dram_read_bits=lp.counts.dram_read_bits + extra_bytes * 8,
                     vector_ops=lp.counts.vector_ops + layer.output_elements(batch))
    return replace(lp, tiling=table, counts=counts, store_extra_cycles=WRITEBACK_ADD_CYCLES,
                   prologue_extra_cycles=act_table_load_cycles(config))


def _plan_layer(layer: Layer, batch: int, config: AcceleratorConfig, context: LayerContext = DEFAULT) -> LayerPlan:
    """The plan of one layer without its activation: a GEMM on the array, a depthwise convolution on the
    depthwise engine (``depthwise: engine`` or ``auto``), an unpadded average pool as the GEMM it is
    (:meth:`~codesign.workloads.layers.Pool.as_gemm_layer`), other pooling and element-wise layers on the
    vector unit."""
    if context.pool is not None and isinstance(layer, Conv2d):
        return plan_pooled(layer, context.pool, batch, config)
    if context.dw is not None and isinstance(layer, Conv2d):  # a depthwise layer in its write-back (sim.dwfuse)
        from codesign.sim.dwfuse import plan_pair

        return plan_pair(layer, context.dw, batch, config)  # type: ignore[arg-type]
    lowered = gemm_layer(layer)
    b_planes = map_is_b(layer, lowered)
    if lowered is not None:
        layer = lowered
    elif isinstance(layer, Pool) and context.is_default and config.depthwise_on_engine:
        from codesign.sim import dwplan

        if not dwplan.pool_reason(layer, batch, config):  # a max pool on the built depthwise engine
            return dwplan.plan_layer_dw(layer, batch, config)
    elif isinstance(layer, Eltwise) and context.is_default:
        from codesign.sim import vecplan

        if not vecplan.layer_reason(layer, config):
            return vecplan.plan_layer_vec(layer, batch, config)
    if config.depthwise_on_engine and isinstance(layer, Conv2d) and layer.is_depthwise:
        from codesign.sim import dwplan

        if dwplan.design_reason(config) or not context.is_default:  # the model-only engine
            from codesign.sim.vector_engine import plan_depthwise

            return plan_depthwise(layer, batch, config, context)
        if not dwplan.layer_reason(layer, batch, config):
            return dwplan.plan_layer_dw(layer, batch, config)
        # a depthwise layer the built engine cannot run (kernel, width, buffers): on the array
    if isinstance(layer, Conv2d) and (context.is_default or context.plain_head):
        from codesign.sim import convplan  # (the mapping search tiles im2col'd GEMMs)

        if not convplan.layer_reason(layer, batch, config):
            return convplan.plan_layer_win(layer, batch, config, residual=context.writeback_add)
    g = layer.gemm(batch)
    if g is not None:
        return plan_gemm(g, layer.inputs, layer.weights, layer.outputs, config,
                         weights_static=layer.weight_elements > 0, a_inside=_inside(layer), context=context,
                         b_planes=b_planes)
    dram_in_bits = None
    if not context.is_default:
        ab = effective_bits(layer.inputs, config.act_bits)
        first = layer.operand_sizes(batch)[0] if isinstance(layer, Eltwise) else layer.input_elements(batch)
        dram_in_bits = (first * ab if context.input_from == DRAM else 0) + context.other_dram_bits
    return plan_vector(layer.input_elements(batch), layer.output_elements(batch), layer.vector_ops(batch),
                       layer.inputs, layer.outputs, config, dram_in_bits=dram_in_bits,
                       store=context.output_to != ONCHIP, resident_bits=context.resident_bits)
