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
    GEMM_ISSUE_CYCLES,
    REQUANT_WRITE_CYCLES,
    TILE_ISSUE_CYCLES,
    TilePlan,
    array_quanta,
    dma_read_cycles,
    plan_fits,
)
from codesign.sim.timing import PE_PRODUCT_CYCLES, ceil_div

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

    def dma(self, nbytes: np.ndarray, overhead: int) -> np.ndarray:
        return V.dma_cycles(self.cfg, nbytes, overhead)


#: the words of each operand's ``[m, k] @ [k, n]`` block (:func:`codesign.sim.vectorized.words_at`)
#: as a product of one factor per dimension, ``(dim, kind)`` with kind ``v`` (the size), ``r``
#: (``ceil(v / rows)``), ``c`` (``ceil(v / cols)``) or ``cr`` (``ceil(v / cols) * rows``):
#: ``{dataflow: (A's (m, k) factors, B's (n, k), C's (m, n))}``; every factor is 0 at 0
_WORD_FACTORS = {
    Dataflow.WS: ((("m", "v"), ("k", "r")), (("n", "cr"), ("k", "r")), (("m", "v"), ("n", "c"))),
    Dataflow.OS: ((("m", "r"), ("k", "v")), (("n", "c"), ("k", "v")), (("m", "r"), ("n", "cr"))),
    Dataflow.IS: ((("m", "cr"), ("k", "r")), (("n", "v"), ("k", "r")), (("m", "c"), ("n", "v"))),
}


def word_factor(kind: str, v: Any, r: Any, c: Any) -> Any:
    """The factor ``kind`` of :data:`_WORD_FACTORS` at sizes ``v`` on a ``r x c`` array."""
    if kind == "v":
        return v
    if kind == "r":
        return _cdiv(v, r)
    return _cdiv(v, c) * (r if kind == "cr" else 1)


def _dim(x: _Arrays, dim: str, kind: str) -> tuple[Any, Any, Any]:
    """A function ``kind`` (see :data:`_WORD_FACTORS`; ``period`` too) of loop ``dim``'s sizes:
    ``(at the tile size, at the last position, summed over the positions)``, memoized on ``x``."""
    memo = x.__dict__.setdefault("_dims", {})
    got = memo.get((dim, kind))
    if got is not None:
        return got  # type: ignore[no-any-return]
    g = x.gemm
    d, tile, n = {"m": (g.m, x.mt, x.n_mt), "n": (g.n, x.nt, x.n_nt), "k": (g.k, x.kt, x.n_kt)}[dim]
    last = memo.get((dim, "last"))
    if last is None:
        last = memo[(dim, "last")] = d - (n - 1) * tile  # n - 1 positions of the tile, then the last
    r, c = x.cfg.rows, x.cfg.cols
    if kind == "cr":
        ct, cl, _ = _dim(x, dim, "c")
        ft, fl = ct * r, cl * r
    elif kind == "period":
        top = np.maximum(r, c) if x.geo.dataflow is Dataflow.OS else r
        ft, fl = np.maximum(tile, top), np.maximum(last, top)
    else:
        ft, fl = word_factor(kind, tile, r, c), word_factor(kind, last, r, c)
    got = memo[(dim, kind)] = (ft, fl, (n - 1) * ft + fl)
    return got


def traffic_bytes(x: _Arrays) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """DRAM bytes of A loads, B loads and C stores (:func:`codesign.sim.tileplan.plan_traffic_bytes`).

    A block's words are a product of one factor per dimension (:data:`_WORD_FACTORS`), so the sum
    over the tiles of two loops is the product of two sums. Computed once per ``x`` (the bound and
    the energy both use it)."""
    cached = x.__dict__.get("_traffic")
    if cached is not None:
        return cached  # type: ignore[no-any-return]
    g = x.gemm
    (fa1, fa2), (fb1, fb2), (fc1, fc2) = _WORD_FACTORS[x.geo.dataflow]
    ba, bb, bc = x.word_bytes
    a = _dim(x, *fa1)[2] * _dim(x, *fa2)[2] * ba * np.where(x.a_reuse, 1, x.n_nt)
    b = _dim(x, *fb1)[2] * _dim(x, *fb2)[2] * bb * np.where(x.b_reuse, 1, x.n_mt)
    c = _dim(x, *fc1)[2] * _dim(x, *fc2)[2] * bc
    out = (a * g.repeats, b * g.repeats, c * g.repeats)
    x.__dict__["_traffic"] = out
    return out


def cycle_bounds(x: _Arrays) -> np.ndarray:
    """A lower bound on each candidate's cycles: the DMA's read queue runs one load at a time, its
    write queue one store at a time, all data crosses one bus of ``dram_bytes_per_cycle``, and the
    array cannot start before the first tile is loaded nor finish after the last store starts.

    In closed form, a few operations per candidate whatever its number of tiles. Compute is the
    exact sum of the tiles' compute cycles: a tile's on-chip GEMM cycles are
    ``1 + r + c + pe + folds * period + (t - period)`` (``t - period`` and ``pe``, the PEs' product
    register, are 0 for OS), and ``folds`` is a
    product of one factor per spatial dimension, so the sum over the ``first, middle, last``
    classes of M, N and K positions factors into one sum per dimension. DMA busy time is the
    commands' fixed cycles (overhead and latency) plus the bytes over the bandwidth, rounded down
    once for the whole layer instead of up per command (so at most one cycle per command below the
    engine's sum)."""
    g = x.gemm
    cfg = x.cfg
    r, c = cfg.rows, cfg.cols
    full_g, rest_g = g.repeats // x.gt, g.repeats % x.gt
    n_g = full_g + (rest_g > 0)
    loops = {"m": x.n_mt, "n": x.n_nt, "k": x.n_kt}
    per_g = x.n_mt * x.n_nt * x.n_kt  # tiles of one group block
    df = x.geo.dataflow
    # the two folded dimensions (array rows, array columns) and the streamed one
    da, db, dt = {Dataflow.WS: ("k", "n", "m"), Dataflow.OS: ("m", "n", "k"), Dataflow.IS: ("k", "m", "n")}[df]
    folds = _dim(x, da, "r")[2] * _dim(x, db, "c")[2]
    periods = _dim(x, dt, "period")[2]
    # t - period(t) summed over the streamed loop (0 for OS, whose tail holds a period)
    rest: Any = 0 if df is Dataflow.OS else loops[da] * loops[db] * (_dim(x, dt, "v")[2] - periods)
    pe = 0 if df is Dataflow.OS else PE_PRODUCT_CYCLES
    gemm_sum = per_g * (1 + r + c + pe + GEMM_ISSUE_CYCLES) + folds * periods + rest
    comp_total = g.repeats * gemm_sum + n_g * per_g * TILE_ISSUE_CYCLES
    # DMA: every tile loads unless both of its blocks are reused (then only first rows/columns do)
    both = x.a_reuse & x.b_reuse
    loads = n_g * (per_g - np.where(both, (x.n_mt - 1) * (x.n_nt - 1) * x.n_kt, 0))
    stores = n_g * x.n_mt * x.n_nt
    ta, tb, tc = traffic_bytes(x)
    lat, bw = cfg.dram_latency_cycles, cfg.dram_bytes_per_cycle
    def down(nbytes: Any) -> Any:  # rounded down, whatever the float error
        return np.floor(nbytes / bw * (1 - 1e-12)).astype(I64)

    # the write queue's commands run one after the other; the read queue's data phases do (a load's
    # address and latency hide behind the previous load's data: tileplan.DMA_READ_SLOTS), after the
    # first load's; all their data shares the memory's bus
    reads_total = np.where(loads > 0, DMA_READ_OVERHEAD_CYCLES + lat, 0) + down(ta + tb) + x.prologue
    writes_total = stores * (x.write_overhead + lat) + down(tc)
    dma_total = np.maximum(np.maximum(reads_total, writes_total), down(ta + tb + tc))
    # the array waits for the first tile's load (first group block, M, N, K positions) and the
    # layer ends after the last tile's store (last block, M and N positions)
    def first(dim: str, kind: str) -> Any:
        ft, fl, _ = _dim(x, dim, kind)
        return np.where(loops[dim] == 1, fl, ft)

    (fa1, fa2), (fb1, fb2), (fc1, fc2) = _WORD_FACTORS[df]
    wa_b, wb_b, wc_b = x.word_bytes
    gs0 = np.where(full_g > 0, x.gt, rest_g)
    first_bytes = gs0 * (first(*fa1) * first(*fa2) * wa_b + first(*fb1) * first(*fb2) * wb_b)
    first_load = x.dma(first_bytes, DMA_READ_OVERHEAD_CYCLES) + x.prologue
    gsl = np.where(rest_g > 0, rest_g, x.gt)
    last_store = x.dma(gsl * _dim(x, *fc1)[1] * _dim(x, *fc2)[1] * wc_b, x.write_overhead)
    return np.maximum(dma_total, first_load + comp_total + last_store)


def dependent_energy(x: _Arrays, em: EnergyModel) -> np.ndarray:
    """The plan-dependent part of a candidate's energy in pJ (SRAM re-reads, partial sums, buffer
    fills and DRAM), by the formulas of :func:`codesign.sim.mapping._gemm_counts`."""
    cfg = x.cfg
    g = x.gemm
    rows, cols = cfg.rows, cfg.cols
    n_kt = x.n_kt if em.k == g.k else _cdiv(em.k, x.kt)
    if cfg.dataflow is not Dataflow.OS:
        kf = _cdiv(np.minimum(x.kt, em.keff), rows)
    if cfg.dataflow is Dataflow.WS:
        a_reads = em.a_elems * _cdiv(np.minimum(x.nt, g.n), cols)
        b_reads: Any = em.b_elems
        psum_writes = em.c_elems * (kf * n_kt)
    elif cfg.dataflow is Dataflow.OS:
        a_reads = em.a_elems * _cdiv(np.minimum(x.nt, g.n), cols)
        b_reads = em.b_elems * _cdiv(np.minimum(x.mt, g.m), rows)
        psum_writes = em.c_elems * n_kt
    else:
        a_reads = em.a_elems
        b_reads = em.b_elems * _cdiv(np.minimum(x.mt, g.m), cols)
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
