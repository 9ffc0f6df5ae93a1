"""Mapping search: per layer, the tiling plan that minimizes latency, energy or EDP.

Like Timeloop's mapper or ZigZag's LOMA, the search enumerates *mappings* of one GEMM layer and
keeps the best by the objective; here a mapping is a :class:`~codesign.sim.tileplan.TilePlan`
(tile sizes ``gt, mt, nt, kt`` and the loop order, weights or inputs outer), so the chosen
mapping is one the hardware's sequencer runs as is (``codesign verify`` checks it).

Candidates. Each of M, N, K takes the whole extent, the multiples ``q * 2**i`` of its array
quantum ``q`` (the array size along the dimension the dataflow puts on the array, 1 for the
streamed one) below it, the balanced splits ``round_up(ceil(d / j), q)`` for ``j = 2..8`` and
the fixed heuristic's size; groups per tile take ``1, 2, 4, ...`` up to what fits when a group is
one tile (powers of two: the sequencer checks packed blocks with a
shift); both loop orders. Only plans whose blocks fit one slot of each buffer
(:func:`~codesign.sim.tileplan.plan_fits`) are kept. The fixed plan is always a candidate, so the
result is never worse than the fixed mapping on the objective.

Search. Energy is exact for every candidate at once (numpy over candidates: the plan-dependent
action counts of :func:`codesign.sim.mapping._gemm_counts` - SRAM re-reads, partial sums, DRAM
and buffer fills - plus the plan-independent rest taken from the fixed plan). Cycles are bounded
below by ``max(DMA busy time, first load + all compute + last store)``; candidates are then
evaluated exactly (tile runs through the engine's closed-form twin) in order of their bound on
the objective, until the bound of the next one is no better than the best found (branch and
bound: the result is the best candidate, not an approximation), or after ``MAX_EXACT`` exact
evaluations (the fixed plan is always among them).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from codesign.sim import vectorized as V
from codesign.sim.config import AcceleratorConfig, Dataflow, Objective
from codesign.sim.tileplan import (
    DMA_READ_OVERHEAD_CYCLES,
    DMA_WRITE_OVERHEAD_CYCLES,
    REQUANT_WRITE_CYCLES,
    TilePlan,
    array_quanta,
    dma_read_cycles,
    plan_fits,
)
from codesign.sim.timing import ceil_div

MAX_EXACT = 48  # exact evaluations per layer at most (after the fixed plan)
_SPLITS = range(2, 9)

I64 = np.int64


@dataclass(frozen=True)
class EnergyModel:
    """What the vectorized energy of a candidate needs (see :func:`codesign.sim.mapping._gemm_counts`)."""

    a_elems: int
    b_elems: int
    c_elems: int
    k: int  # the layer's K (partial sums are counted over it)
    keff: int  # K after zero skipping
    ab: int
    wb: int
    ob: int
    accb: int
    meta_bits: int  # metadata of compressed weights (0 unless skipping)
    e_in: float  # pJ per bit of the input, weight and output SRAM and of DRAM
    e_w: float
    e_out: float
    e_dram: float
    leak_per_cycle: float


_cdiv = V.cdiv


def _values(d: int, q: int, fixed: int) -> list[int]:
    vals = {d, fixed}
    x = q
    while x < d:
        vals.add(x)
        x *= 2
    for j in _SPLITS:
        v = ceil_div(ceil_div(d, j), q) * q
        if v < d:
            vals.add(v)
    return sorted(v for v in vals if 1 <= v <= d)


def candidates(fixed: TilePlan, config: AcceleratorConfig) -> list[TilePlan]:
    """The plans the search considers (the fixed plan first), all of which fit the buffers."""
    g = fixed.gemm
    qm, qn, qk = array_quanta(config)
    out = [fixed]
    seen = {(fixed.gt, fixed.mt, fixed.nt, fixed.kt, fixed.weights_outer)}

    def add(gt: int, mt: int, nt: int, kt: int, wo: bool) -> None:
        key = (gt, mt, nt, kt, wo)
        if key in seen:
            return
        seen.add(key)
        p = TilePlan(g, fixed.geometry, fixed.bus_bytes, fixed.slots, fixed.slot_words, gt, mt, nt, kt, wo)
        if plan_fits(p):
            out.append(p)

    ms, ns, ks = _values(g.m, qm, fixed.mt), _values(g.n, qn, fixed.nt), _values(g.k, qk, fixed.kt)
    sa, sb, sc = fixed.slot_words
    for mt in ms:
        for nt in ns:
            for kt in ks:
                wa, wb, wc = fixed.geometry.words(mt, nt, kt)
                if wa > sa or wb > sb or wc > sc:
                    continue
                for wo in (True, False):
                    add(1, mt, nt, kt, wo)
    if g.repeats > 1:
        wa, wb, wc = fixed.geometry.words(g.m, g.n, g.k)
        if wa <= sa and wb <= sb and wc <= sc:
            gmax = max(1, min(g.repeats, sa // max(1, wa), sb // max(1, wb), sc // max(1, wc)))
            gts = {fixed.gt}
            x = 2
            while x <= gmax:  # powers of two (the sequencer checks packed blocks with a shift)
                gts.add(x)
                x *= 2
            for gt in sorted(gts):
                for wo in (True, False):
                    add(gt, g.m, g.n, g.k, wo)
    return out


class _Arrays:
    """The candidates' sizes as numpy arrays, with the per-dataflow words and timing."""

    def __init__(self, plans: list[TilePlan], config: AcceleratorConfig) -> None:
        p0 = plans[0]
        self.cfg = config
        self.geo = p0.geometry
        self.gemm = p0.gemm
        self.gt = np.array([p.gt for p in plans], I64)
        self.mt = np.array([p.mt for p in plans], I64)
        self.nt = np.array([p.nt for p in plans], I64)
        self.kt = np.array([p.kt for p in plans], I64)
        self.wo = np.array([p.weights_outer for p in plans], bool)
        bpw = p0.beats_per_word
        self.word_bytes = tuple(b * p0.bus_bytes for b in bpw)
        g = self.gemm
        self.n_mt, self.n_nt, self.n_kt = _cdiv(g.m, self.mt), _cdiv(g.n, self.nt), _cdiv(g.k, self.kt)
        # the requantization table read before the first tile; the write-back's extra cycle
        self.prologue = dma_read_cycles(p0.prologue_bytes, config)
        self.write_overhead = DMA_WRITE_OVERHEAD_CYCLES + (REQUANT_WRITE_CYCLES if config.requantize else 0)
        one_k = self.n_kt == 1
        self.a_reuse = np.where(self.wo, (self.n_mt == 1) & one_k, one_k)
        self.b_reuse = np.where(self.wo, one_k, (self.n_nt == 1) & one_k)

    def block_bytes(self, m: np.ndarray, n: np.ndarray, k: np.ndarray) -> tuple[np.ndarray, ...]:
        wa, wb, wc = V.words(self.geo, m, n, k)
        ba, bb, bc = self.word_bytes
        return wa * ba, wb * bb, wc * bc

    def native_cycles(self, m: np.ndarray, n: np.ndarray, k: np.ndarray) -> np.ndarray:
        return V.native_cycles(self.cfg, m, n, k)

    def dma(self, nbytes: np.ndarray, overhead: int) -> np.ndarray:
        return V.dma_cycles(self.cfg, nbytes, overhead)


def _pieces(total: int, tile: np.ndarray, n: np.ndarray) -> list[tuple[np.ndarray, np.ndarray, bool, np.ndarray]]:
    """(size, count, is_first, is_last) of the classes of positions of one loop: the first, the
    middle ones and the last (a single position is first and last)."""
    last = total - (n - 1) * tile
    single = n == 1
    return [
        (np.where(single, total, tile), np.ones_like(n), True, single),
        (tile, np.maximum(n - 2, 0), False, np.zeros_like(single)),
        (last, np.where(single, 0, 1), False, np.ones_like(single)),
    ]


def traffic_bytes(x: _Arrays) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """DRAM bytes of A loads, B loads and C stores (:func:`codesign.sim.tileplan.plan_traffic_bytes`)."""
    g = x.gemm
    full_m, full_n, full_k = g.m // x.mt, g.n // x.nt, g.k // x.kt
    rm, rn, rk = g.m - full_m * x.mt, g.n - full_n * x.nt, g.k - full_k * x.kt
    one = np.ones_like(x.mt)

    def a_of(ms: np.ndarray, ks: np.ndarray) -> np.ndarray:
        return x.block_bytes(ms, one, ks)[0]

    def b_of(ns: np.ndarray, ks: np.ndarray) -> np.ndarray:
        return x.block_bytes(one, ns, ks)[1]

    def c_of(ms: np.ndarray, ns: np.ndarray) -> np.ndarray:
        return x.block_bytes(ms, ns, one)[2]

    def pair(f: Callable[[np.ndarray, np.ndarray], np.ndarray], t1: np.ndarray, f1: np.ndarray, r1: np.ndarray,
             t2: np.ndarray, f2: np.ndarray, r2: np.ndarray) -> np.ndarray:
        tot = f(t1, t2) * f1 * f2
        tot += np.where(r2 > 0, f(t1, np.maximum(r2, 1)) * f1, 0)
        tot += np.where(r1 > 0, f(np.maximum(r1, 1), t2) * f2, 0)
        tot += np.where((r1 > 0) & (r2 > 0), f(np.maximum(r1, 1), np.maximum(r2, 1)), 0)
        return tot

    a = pair(a_of, x.mt, full_m, rm, x.kt, full_k, rk)
    b = pair(b_of, x.nt, full_n, rn, x.kt, full_k, rk)
    c = pair(c_of, x.mt, full_m, rm, x.nt, full_n, rn)
    a = a * np.where(x.a_reuse, 1, x.n_nt)
    b = b * np.where(x.b_reuse, 1, x.n_mt)
    return a * g.repeats, b * g.repeats, c * g.repeats


def cycle_bounds(x: _Arrays) -> np.ndarray:
    """A lower bound on each candidate's cycles: the DMA runs one command at a time, and the
    array cannot start before the first tile is loaded nor finish after the last store starts."""
    g = x.gemm
    full_g, rest_g = g.repeats // x.gt, g.repeats % x.gt
    gpieces = [(x.gt, full_g), (np.maximum(rest_g, 1), (rest_g > 0).astype(I64))]
    mp, np_, kp = _pieces(g.m, x.mt, x.n_mt), _pieces(g.n, x.nt, x.n_nt), _pieces(g.k, x.kt, x.n_kt)
    dma_total = np.zeros_like(x.mt)
    comp_total = np.zeros_like(x.mt)
    for gs, cg in gpieces:
        for ms, cm, m_first, _ in mp:
            for ns, cn, n_first, _ in np_:
                for ks, ck, _, k_last in kp:
                    _accumulate(x, gs, cg, ms, cm, m_first, ns, cn, n_first, ks, ck, k_last, dma_total, comp_total)
    return bound_from_totals(x, dma_total, comp_total)


def bound_from_totals(x: Any, dma_total: np.ndarray, comp_total: np.ndarray) -> np.ndarray:
    """``max(DMA busy time, first load + all compute + last store)`` from the summed DMA and compute
    cycles of each candidate (:func:`cycle_bounds`; ``codesign.sim.fastsearch`` sums them itself)."""
    g = x.gemm
    full_g, rest_g = g.repeats // x.gt, g.repeats % x.gt
    mp, np_, kp = _pieces(g.m, x.mt, x.n_mt), _pieces(g.n, x.nt, x.n_nt), _pieces(g.k, x.kt, x.n_kt)
    # first tile: the first group block, M, N and K positions; last tile: the last ones
    gs0 = np.where(full_g > 0, x.gt, rest_g)
    ms0, ns0, ks0 = mp[0][0], np_[0][0], kp[0][0]
    ba, bb, _ = x.block_bytes(ms0, ns0, ks0)
    first_load = x.dma(gs0 * (ba + bb), DMA_READ_OVERHEAD_CYCLES) + x.prologue
    gsl = np.where(rest_g > 0, rest_g, x.gt)
    msl = np.where(x.n_mt == 1, g.m, mp[2][0])
    nsl = np.where(x.n_nt == 1, g.n, np_[2][0])
    _, _, bc = x.block_bytes(msl, nsl, np.ones_like(msl))
    last_store = x.dma(gsl * bc, x.write_overhead)
    return np.maximum(dma_total + x.prologue, first_load + comp_total + last_store)


def _accumulate(x: _Arrays, gs: np.ndarray, cg: np.ndarray, ms: np.ndarray, cm: np.ndarray, m_first: bool,
                ns: np.ndarray, cn: np.ndarray, n_first: bool, ks: np.ndarray, ck: np.ndarray, k_last: np.ndarray,
                dma_total: np.ndarray, comp_total: np.ndarray) -> None:
    """Add the DMA and compute cycles of one class of tiles (``cg * cm * cn * ck`` equal tiles)."""
    count = cg * cm * cn * ck
    ba, bb, bc = x.block_bytes(ms, ns, ks)
    load_a = ~x.a_reuse | n_first
    load_b = ~x.b_reuse | m_first
    load = gs * (np.where(load_a, ba, 0) + np.where(load_b, bb, 0))
    store = np.where(k_last, gs * bc, 0)
    dma = x.dma(load, DMA_READ_OVERHEAD_CYCLES) + x.dma(store, x.write_overhead)
    comp = V.tile_compute(x.cfg, gs, ms, ns, ks)
    dma_total += count * dma
    comp_total += count * comp


def dependent_energy(x: _Arrays, em: EnergyModel) -> np.ndarray:
    """The plan-dependent part of a candidate's energy in pJ (SRAM re-reads, partial sums, buffer
    fills and DRAM), by the formulas of :func:`codesign.sim.mapping._gemm_counts`."""
    cfg = x.cfg
    g = x.gemm
    rows, cols = cfg.rows, cfg.cols
    n_kt = _cdiv(em.k, x.kt)
    cf = _cdiv(np.minimum(x.nt, g.n), cols)
    rf_os = _cdiv(np.minimum(x.mt, g.m), rows)
    kf = _cdiv(np.minimum(x.kt, em.keff), rows)
    mcf = _cdiv(np.minimum(x.mt, g.m), cols)
    if cfg.dataflow is Dataflow.WS:
        a_reads = em.a_elems * cf
        b_reads = np.full_like(x.mt, em.b_elems)
        psum_writes = em.c_elems * (kf * n_kt)
    elif cfg.dataflow is Dataflow.OS:
        a_reads = em.a_elems * cf
        b_reads = em.b_elems * rf_os
        psum_writes = em.c_elems * n_kt
    else:
        a_reads = np.full_like(x.mt, em.a_elems)
        b_reads = em.b_elems * mcf
        psum_writes = em.c_elems * (kf * n_kt)
    psum_reads = np.maximum(0, psum_writes - em.c_elems)
    b_sram = b_reads * em.wb
    if em.meta_bits:
        b_sram = b_sram + em.meta_bits * _cdiv(b_reads, max(1, em.b_elems))
    a_by, b_by, c_by = traffic_bytes(x)
    a_dram, b_dram = a_by * 8, b_by * 8
    return ((a_reads * em.ab + a_dram) * em.e_in + (b_sram + b_dram) * em.e_w
            + (psum_reads * em.accb + psum_writes * em.accb) * em.e_out
            + (a_dram + b_dram + c_by * 8) * em.e_dram)


def _objective(objective: Objective, energy: np.ndarray | float, cycles: np.ndarray | float) -> np.ndarray | float:
    if objective is Objective.LATENCY:
        return cycles
    if objective is Objective.ENERGY:
        return energy
    return energy * cycles


def search(fixed: TilePlan, config: AcceleratorConfig, em: EnergyModel,
           exact: Callable[[TilePlan], tuple[int, float]], *, bounded: bool = True) -> TilePlan:
    """The best candidate by ``config.objective``; ``exact(plan)`` gives its ``(cycles, energy_pj)``
    as the engine computes them. Ties keep the earlier candidate (the fixed plan first). With
    ``bounded`` false (operands resident on chip, whose DRAM bytes the bound counts), the first
    ``MAX_EXACT`` candidates by the estimate are evaluated exactly, without pruning."""
    plans = candidates(fixed, config)
    obj = config.objective
    fixed_cycles, fixed_energy = exact(fixed)
    if len(plans) == 1:
        return fixed
    x = _Arrays(plans, config)
    dep = dependent_energy(x, em)
    e_static = fixed_energy - fixed_cycles * em.leak_per_cycle - dep[0]  # plan-independent energy
    e_dyn = e_static + dep
    lb_cycles = cycle_bounds(x)
    lb_obj = np.asarray(_objective(obj, e_dyn + em.leak_per_cycle * lb_cycles, lb_cycles), dtype=float)
    lb_obj *= 1 - 1e-9  # a bound, whatever the rounding
    best_i, best = 0, float(_objective(obj, fixed_energy, fixed_cycles))
    order = np.argsort(lb_obj[1:], kind="stable") + 1
    for n_exact, i in enumerate(order):
        if (bounded and lb_obj[i] >= best) or n_exact >= MAX_EXACT:
            break
        cyc, energy = exact(plans[i])
        val = float(_objective(obj, energy, cyc))
        if val < best:
            best_i, best = int(i), val
    return plans[best_i]
