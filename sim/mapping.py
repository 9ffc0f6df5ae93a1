"""Mapping a layer onto the accelerator: SRAM tiling, loop order, DRAM traffic, action counts.

A GEMM layer (``repeats`` groups of ``M x K @ K x N``) is cut into *tiles* that fit the SRAMs
(half of each SRAM when double-buffered). Each tile is one on-chip GEMM: the DMA loads its A and
B operands, the array computes it (``timing.native_gemm_cycles``), the DMA stores its outputs.
Tiles of small groups (depthwise convolutions) are packed several groups to a tile.

The tile sequence is kept run-length encoded (``TileRun``): equal consecutive tiles form one
run, so the engine's cost does not grow with the number of identical tiles.

Bits. The array runs at the configuration's widths; data is stored and moved at
``min(layer operand bits, hardware bits)`` (a W4 layer on an INT8 array moves packed 4-bit
weights). Accumulators occupy ``acc_bits`` in the output SRAM; outputs are written back at
``min(output operand bits, acc_bits)``.

Zero handling. ``gate``: a MAC with a zero operand is not enabled (expected counts
``MACs * d_w * d_a``). ``skip``: zero weights are compressed away along K before the array
(``K_eff = ceil(K * d_w)``; N:M keeps exactly n of every m), each kept weight carrying
``ceil(log2(m))`` index bits (N:M) or one bitmask bit per dense weight (unstructured); zero
activations are then gated.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

from codesign.errors import ConfigError
from codesign.sim.config import AcceleratorConfig, Dataflow, ZeroHandling
from codesign.sim.result import Counts
from codesign.sim.timing import ceil_div, map_gemm, native_gemm_cycles
from codesign.workloads.layers import GemmShape, Layer
from codesign.workloads.operand import Operand, Pattern


@dataclass(frozen=True)
class TileRun:
    """``count`` consecutive identical tiles."""

    count: int
    load_bits: int  # DRAM -> SRAM before compute (A and B, including sparsity metadata)
    store_bits: int  # SRAM -> DRAM after compute (0 while partial sums stay on chip)
    compute_cycles: int


@dataclass(frozen=True)
class LayerPlan:
    runs: tuple[TileRun, ...]
    counts: Counts
    folds: int
    tile_mnk: tuple[int, int, int, int]  # groups per tile, Mt, Nt, Kt

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


def _halve(x: int) -> int:
    return ceil_div(x, 2)


def _sizes(total: int, tile: int) -> list[tuple[int, int]]:
    """[(size, how_many)] of the pieces of ``total`` cut into ``tile``-sized pieces."""
    full, rest = divmod(total, tile)
    out = [(tile, full)] if full else []
    if rest:
        out.append((rest, 1))
    return out


def plan_gemm(g: GemmShape, inputs: Operand, weights: Operand, outputs: Operand,
              config: AcceleratorConfig, *, weights_static: bool = True, a_ratio: float = 1.0) -> LayerPlan:
    """Tile a GEMM. ``a_ratio`` = distinct input elements / elements of the im2col matrix A
    (1 for Linear/MatMul, about 1/9 for a 3x3 stride-1 conv): activations are stored in DRAM and
    SRAM as feature maps and expanded to A rows on chip, so an A tile occupies and moves
    ``ceil(Mt * Kt * a_ratio)`` elements."""
    return _plan_gemm_cached(g, inputs, weights, outputs, config, weights_static, min(1.0, a_ratio))


@lru_cache(maxsize=65536)
def _plan_gemm_cached(g: GemmShape, inputs: Operand, weights: Operand, outputs: Operand,
                      config: AcceleratorConfig, weights_static: bool, a_ratio: float) -> LayerPlan:
    cfg = config
    ab = effective_bits(inputs, cfg.act_bits)
    wb = effective_bits(weights, cfg.weight_bits)
    accb = cfg.acc_bits
    ob = min(outputs.bits, accb)
    skip = cfg.zero_handling is ZeroHandling.SKIP and weights_static and weights.density < 1.0
    div = 2 if cfg.double_buffered else 1
    caps = (cfg.input_sram_bytes * 8 // div, cfg.weight_sram_bytes * 8 // div, cfg.output_sram_bytes * 8 // div)
    if ab > caps[0]:
        raise ConfigError(f"input_sram_bytes must hold at least one activation, not {cfg.input_sram_bytes!r}")
    if (kept_k(1, weights) * wb + metadata_bits(1, 1, weights) if skip else wb) > caps[1]:
        raise ConfigError(f"weight_sram_bytes must hold at least one weight, not {cfg.weight_sram_bytes!r}")
    if accb > caps[2]:
        raise ConfigError(f"output_sram_bytes must hold at least one accumulator, not {cfg.output_sram_bytes!r}")
    tp = _tile_plan(g, weights if skip else None, a_ratio, ab, wb, accb, ob, caps)
    runs = _timed_runs(tp, cfg.rows, cfg.cols, cfg.dataflow)
    counts = _gemm_counts(g, inputs, weights, config, ab, wb, ob, skip, tp)
    fm = map_gemm(cfg.dataflow, cfg.rows, cfg.cols, g.m, g.n, kept_k(g.k, weights) if skip else g.k)
    return LayerPlan(runs=runs, counts=counts, folds=fm.folds * g.repeats, tile_mnk=tp.tile)


@dataclass(frozen=True)
class TilePlan:
    """The tiles of a GEMM, independent of the array: run-length encoded
    ``(count, load_bits, store_bits, (groups, Mt, Nt, K_eff))`` in execution order."""

    parts: tuple[tuple[int, int, int, tuple[int, int, int, int]], ...]
    a_bits: int
    b_bits: int
    store_bits: int
    tile: tuple[int, int, int, int]  # groups per tile, Mt, Nt, Kt


@lru_cache(maxsize=65536)
def _tile_plan(g: GemmShape, skip_weights: Operand | None, a_ratio: float, ab: int, wb: int, accb: int, ob: int,
               caps: tuple[int, int, int]) -> TilePlan:
    """Cut a GEMM into SRAM-sized tiles and order them (what the array size does not change).

    ``skip_weights`` is the weight operand when zero weights are compressed away, else None.
    """
    cap_a, cap_b, cap_c = caps

    def b_bits(k: int, n: int) -> int:
        if skip_weights is not None:
            return kept_k(k, skip_weights) * n * wb + metadata_bits(k, n, skip_weights)
        return k * n * wb

    def a_bits(mm: int, kk: int) -> int:
        return math.ceil(mm * kk * a_ratio) * ab

    m, n, k = g.m, g.n, g.k
    mt, nt, kt = m, n, k
    while True:
        if mt * nt * accb > cap_c:
            if mt >= nt:
                mt = _halve(mt)
            else:
                nt = _halve(nt)
        elif b_bits(kt, nt) > cap_b:
            if nt > 1 and nt >= kt:
                nt = _halve(nt)
            elif kt > 1:
                kt = _halve(kt)
            else:
                nt = _halve(nt)
        elif a_bits(mt, kt) > cap_a:
            if mt > 1 and mt >= kt:
                mt = _halve(mt)
            elif kt > 1:
                kt = _halve(kt)
            else:
                mt = _halve(mt)
        else:
            break

    # pack whole groups into a tile when one group is a single tile
    gt = 1
    if (mt, nt, kt) == (m, n, k) and g.repeats > 1:
        gt = max(1, min(g.repeats, cap_a // max(1, a_bits(m, k)), cap_b // max(1, b_bits(k, n)),
                        cap_c // max(1, m * n * accb)))

    m_pieces, n_pieces, k_pieces = _sizes(m, mt), _sizes(n, nt), _sizes(k, kt)
    n_mt, n_nt, n_kt = ceil_div(m, mt), ceil_div(n, nt), ceil_div(k, kt)

    # loop order: weights outer (n, m, k) or inputs outer (m, n, k); pick the lower DRAM traffic
    a_total = a_bits(m, k)
    b_total = sum(b_bits(ks, n) * c for ks, c in k_pieces)
    a_wo = a_total * (1 if (n_mt == 1 and n_kt == 1) else n_nt)
    b_wo = b_total * (1 if n_kt == 1 else n_mt)
    a_io = a_total * (1 if n_kt == 1 else n_nt)
    b_io = b_total * (1 if (n_nt == 1 and n_kt == 1) else n_mt)
    weights_outer = a_wo + b_wo <= a_io + b_io

    def keff(ks: int) -> int:
        return kept_k(ks, skip_weights) if skip_weights is not None else ks

    parts: list[list] = []
    totals = [0, 0, 0]

    def push(count: int, a: int, b: int, store: int, dims: tuple[int, int, int, int]) -> None:
        totals[0] += a * count
        totals[1] += b * count
        totals[2] += store * count
        load = a + b
        if parts and parts[-1][1] == load and parts[-1][2] == store and parts[-1][3] == dims:
            parts[-1][0] += count
        else:
            parts.append([count, load, store, dims])

    outer, inner = (n_pieces, m_pieces) if weights_outer else (m_pieces, n_pieces)
    a_reuse = (n_mt == 1 and n_kt == 1) if weights_outer else n_kt == 1
    b_reuse = n_kt == 1 if weights_outer else (n_nt == 1 and n_kt == 1)
    def k_sequence(gs: int, ms: int, ns: int, first_outer: bool, first_inner: bool) -> list[tuple]:
        """The tiles along K for one (m, n) output tile: partial sums stay on chip, the last stores."""
        seq = []
        for ki, (ks, kcount) in enumerate(k_pieces):
            a_load = gs * a_bits(ms, ks)
            b_load = gs * b_bits(ks, ns)
            # the operand of the outer loop stays on chip across the inner loop when K is whole;
            # the other one only when it is a single tile
            if weights_outer:
                b_load = 0 if (b_reuse and not first_inner) else b_load
                a_load = 0 if (a_reuse and not first_outer) else a_load
            else:
                a_load = 0 if (a_reuse and not first_inner) else a_load
                b_load = 0 if (b_reuse and not first_outer) else b_load
            dims = (gs, ms, ns, keff(ks))
            if kcount > 1:
                seq.append((kcount - 1, a_load, b_load, 0, dims))
            store = gs * ms * ns * ob if ki == len(k_pieces) - 1 else 0
            seq.append((1, a_load, b_load, store, dims))
        return seq

    for gs, gcount in _sizes(g.repeats, gt):
        block: list[tuple] = []
        first_outer = True
        for osz, ocount in outer:
            for _o in range(ocount):
                first_inner = True
                for isz, icount in inner:
                    ms, ns = (isz, osz) if weights_outer else (osz, isz)
                    reps = icount
                    if first_inner:
                        block.extend(k_sequence(gs, ms, ns, first_outer, True))
                        first_inner = False
                        reps -= 1
                    if reps:
                        seq = k_sequence(gs, ms, ns, first_outer, False)
                        if len(seq) == 1:  # identical single tiles: one part
                            c, a_l, b_l, st, d = seq[0]
                            block.append((c * reps, a_l, b_l, st, d))
                        else:
                            block.extend(seq * reps)
                first_outer = False
        if len(block) == 1:
            c, a_l, b_l, st, d = block[0]
            push(c * gcount, a_l, b_l, st, d)
        else:
            for _ in range(gcount):
                for part in block:
                    push(*part)
    return TilePlan(parts=tuple((c, ld, st, d) for c, ld, st, d in parts), a_bits=totals[0], b_bits=totals[1],
                    store_bits=totals[2], tile=(gt, mt, nt, kt))


@lru_cache(maxsize=4096)
def _array_config(rows: int, cols: int, dataflow: Dataflow) -> AcceleratorConfig:
    return AcceleratorConfig(rows=rows, cols=cols, dataflow=dataflow)


@lru_cache(maxsize=65536)
def _timed_runs(tp: TilePlan, rows: int, cols: int, dataflow: Dataflow) -> tuple[TileRun, ...]:
    """The tiles with the array's compute cycles (``native_gemm_cycles`` per tile)."""
    probe = _array_config(rows, cols, dataflow)
    cycles: dict[tuple[int, int, int, int], int] = {}
    runs: list[TileRun] = []
    for count, load, store, dims in tp.parts:
        cyc = cycles.get(dims)
        if cyc is None:
            gs, ms, ns, ks = dims
            cyc = cycles[dims] = gs * native_gemm_cycles(probe, ms, ns, ks)
        if runs and runs[-1].load_bits == load and runs[-1].store_bits == store and runs[-1].compute_cycles == cyc:
            runs[-1] = TileRun(runs[-1].count + count, load, store, cyc)
        else:
            runs.append(TileRun(count, load, store, cyc))
    return tuple(runs)


def _gemm_counts(g: GemmShape, inputs: Operand, weights: Operand, cfg: AcceleratorConfig,
                 ab: int, wb: int, ob: int, skip: bool, tp: TilePlan) -> Counts:
    _gt, mt, nt, kt = tp.tile
    m, n, k, reps = g.m, g.n, g.k, g.repeats
    macs = m * n * k * reps
    dw = weights.density
    da = inputs.density
    if cfg.zero_handling is ZeroHandling.NONE:
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
    keff = kept_k(k, weights) if skip else k
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
    a_elems = m * k * reps
    c_elems = m * n * reps
    if cfg.dataflow is Dataflow.WS:
        a_reads = a_elems * cf
        b_reads = b_elems
        psum_writes = c_elems * (kf * n_kt)
        pe_hops = macs * (ab + accb) if not skip else m * n * keff * reps * (ab + accb)
        pe_hops += b_elems * wb * max(1, rows // 2)
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
    stationary_bits = {Dataflow.WS: wb, Dataflow.IS: ab, Dataflow.OS: 2 * accb}[cfg.dataflow]
    load_bits = tp.a_bits + tp.b_bits
    store_bits = tp.store_bits
    meta = metadata_bits(k, n, weights) * reps if skip else 0
    b_sram_reads = b_reads * wb + (meta * ceil_div(b_reads, max(1, b_elems)) if skip else 0)
    a_dram, b_dram = tp.a_bits, tp.b_bits
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
    )


def plan_vector(elements_in: int, elements_out: int, ops: int, inputs: Operand, outputs: Operand,
                config: AcceleratorConfig) -> LayerPlan:
    """Pool / Eltwise on the vector unit: ``ceil(ops / lanes)`` cycles, tiled by the SRAMs."""
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
    runs: list[TileRun] = []
    for size, count in _sizes(elements_out, tile_out):
        runs.append(TileRun(
            count=count,
            load_bits=math.ceil(size * ratio_in) * ab,
            store_bits=size * ob,
            compute_cycles=ceil_div(math.ceil(size * ops_per_out), config.lanes),
        ))
    load = sum(r.count * r.load_bits for r in runs)
    store = sum(r.count * r.store_bits for r in runs)
    counts = Counts(
        input_sram_read_bits=elements_in * ab,
        input_sram_write_bits=load,
        output_sram_read_bits=store,
        output_sram_write_bits=elements_out * ob,
        dram_read_bits=load,
        dram_write_bits=store,
        vector_ops=ops,
    )
    return LayerPlan(runs=tuple(runs), counts=counts, folds=0, tile_mnk=(1, tile_out, 1, 1))


def a_footprint_ratio(layer: Layer, batch: int) -> float:
    """Distinct input elements per element of the im2col matrix A (at most 1)."""
    g = layer.gemm(batch)
    if g is None or layer.weight_elements == 0:
        return 1.0
    return min(1.0, layer.input_elements(batch) / (g.m * g.k * g.repeats))


def plan_layer(layer: Layer, batch: int, config: AcceleratorConfig) -> LayerPlan:
    g = layer.gemm(batch)
    if g is not None:
        return plan_gemm(g, layer.inputs, layer.weights, layer.outputs, config,
                         weights_static=layer.weight_elements > 0, a_ratio=a_footprint_ratio(layer, batch))
    return plan_vector(layer.input_elements(batch), layer.output_elements(batch), layer.vector_ops(batch),
                       layer.inputs, layer.outputs, config)
