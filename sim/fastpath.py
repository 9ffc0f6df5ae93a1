"""The sweep's fast path: whole networks on many design points at once, numpy over the points.

Each unique layer shape of a network is evaluated once per chunk of design points, with numpy
arrays over the points for every step the point-by-point path takes:

* the fixed tiling heuristic (:func:`codesign.sim.tileplan.plan_tiles`: the shrink loop with its
  branches as masks, the packing of groups, the loop order with the lower DRAM traffic), or the
  mapping search over all the points' candidates at once (:mod:`codesign.sim.fastsearch`);
* the DRAM traffic, the action counts of :func:`codesign.sim.mapping._gemm_counts` and
  :func:`~codesign.sim.mapping.plan_vector`, and the energy of :func:`codesign.sim.cost.layer_energy`
  (the same float operations in the same order, so the numbers are bit for bit the same);
* the tile pipeline of :func:`codesign.sim.engine.pipeline_closed_form` over the tile program's
  loop nest (G blocks, outer, inner, K), never listing the tiles (see :class:`_Pipeline`);
* convolutions with on-chip windows (:mod:`codesign.sim.convplan`) where ``mapping.plan_layer`` takes
  them: the plan choice over all candidates of all points at once (:func:`_win_choose`), the tile
  program (images, outer, inner, K tiles) through the same pipeline, the counts of ``plan_layer_win``.

The pipeline is the engine's closed-form recurrence, stepped as ``[compute tile k - 1, store
tile k - 1, load tile k]`` (the read and write queues at once; a load's data cycles are those the
data phases of stores ``k - 2B + 1 .. k - 1`` leave), so a step depends on tile ``k`` and the tile
before it only (kept as history in the state). Every iteration of a loop after the
first few and before its last is then the same map ``F`` (same tiles, same history); ``F`` is
homogeneous (``F(x + c) = F(x) + c``: max, plus and the walk around the write phases all commute with
a shift of time), so once the state after an iteration is the state after the previous one shifted
by ``d`` in every time and equal in its history, each further middle iteration adds ``d`` again and
they are skipped at once. That is exact, the same argument as the closed form's jump over a run of
identical tiles, applied at every level of the nest. Points whose configuration the
fast path does not model (:func:`declines`: zero skipping, fusion, the depthwise engine; the sweep
sends SCALE-Sim timing and the SimPy engine the point-by-point way too) and points whose plan the
heuristic refuses (a buffer too small) are left to the point-by-point path, which raises its own
error. ``tests/sim/test_sweep_equals_engine.py`` holds every column
equal to that path on a random sample of design points.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from codesign.sim import vectorized as V
from codesign.sim.config import AcceleratorConfig, Dataflow, Depthwise, Fusion, Mapping, Objective, ZeroHandling
from codesign.sim.cost import load_table
from codesign.sim.result import ENERGY_PARTS
from codesign.sim.tileplan import (
    DMA_READ_OVERHEAD_CYCLES,
    DMA_WRITE_OVERHEAD_CYCLES,
    GEMM_ISSUE_CYCLES,
    LOAD_ISSUE_GAP_CYCLES,
    QUANT_ENTRY_BITS,
    REQUANT_WRITE_CYCLES,
    TILE_ISSUE_CYCLES,
    WRITEBACK_ADD_CYCLES,
    bus_bytes,
)
from codesign.workloads.layers import Layer, Network, Pool, PoolKind

I64 = np.int64
Arr = np.ndarray
Summary = dict[str, Any]


def declines(config: AcceleratorConfig) -> str:
    """Why the fast path leaves ``config`` to the point-by-point path ('' when it takes it)."""
    c = config
    if c.zero_handling is ZeroHandling.SKIP:
        return "zero_handling skip"
    if c.fusion is Fusion.FULL or (c.fusion is Fusion.ELTWISE and _fusion_reason(c)):
        return f"fusion {c.fusion.value} (model-only)"
    if c.depthwise_on_engine:
        from codesign.sim.dwplan import design_reason

        if design_reason(c):
            return "the model-only depthwise engine"
    if (c.dram_addr_bits, c.dim_bits) != (32, 24):  # the engine refuses a layer beyond them (sim.widths)
        return "narrow RTL widths (dram_addr_bits, dim_bits)"
    return ""


def _fusion_reason(c: AcceleratorConfig) -> str:
    from codesign.sim.fusion import writeback_add_reason

    return writeback_add_reason(c)


def _fuses(c: AcceleratorConfig) -> bool:
    """The point runs the built residual adds in its layers' write-backs (fusion auto or eltwise)."""
    return c.fusion in (Fusion.AUTO, Fusion.ELTWISE) and not _fusion_reason(c)


_cdiv = V.cdiv
_words = V.words_at
_native = V.native_at


# ---------------------------------------------------------------------------------------------
# design points as arrays (one dataflow at a time: the formulas depend on it)
# ---------------------------------------------------------------------------------------------
_UNIFORM = ("df", "slots", "requantize", "search", "objective", "dw_engine", "dw_kmax", "vec_unit",
            "conv_windows", "residual", "act")  # uniform


@dataclasses.dataclass
class _Points:
    df: Dataflow
    slots: int  # 2 when double-buffered
    requantize: bool
    search: bool  # mapping: search (the objective below), else the fixed heuristic
    objective: Objective
    dw_engine: bool  # depthwise layers on the built depthwise engine (codesign.sim.dwplan)
    dw_kmax: int  # its window (depthwise_kernel)
    vec_unit: bool  # vector_unit: residual adds on the built vector unit where the point builds it
    conv_windows: bool  # convolutions with on-chip windows where the point builds them (codesign.sim.convplan)
    rows: Arr
    cols: Arr
    wbits: Arr
    abits: Arr
    accb: Arr
    in_sram: Arr
    w_sram: Arr
    out_sram: Arr
    bw: Arr  # float
    lat: Arr
    bus: Arr
    lanes: Arr
    gate: Arr  # bool: zero_handling gate (else none)
    # energy per action (pJ), one per point, computed as sim.cost does
    e_mac: Arr
    gated_fraction: Arr
    e_reg: Arr
    e_pe: Arr
    e_in: Arr
    e_w: Arr
    e_out: Arr
    e_dram: Arr
    e_add: Arr
    leak: Arr
    # a layer whose write-back runs a built residual add (sim.fusion): the residual on its storing tiles'
    # loads, each store WRITEBACK_ADD_CYCLES later, the residual's bytes in its counts
    residual: bool = False
    # a layer with a table activation (mapping.with_activation): its table after the requantization table,
    # written into the vector unit before the first load, each store WRITEBACK_ADD_CYCLES later
    act: bool = False

    @property
    def table(self) -> bool:
        """The layer's write-back runs its activation table (a requantizing write-back)."""
        return self.act and self.requantize

    def table_bytes(self, q_word_bits: Arr) -> Arr:
        """The activation table's bytes in table words of ``q_word_bits`` (0 without one)."""
        if not self.table:
            return np.zeros_like(q_word_bits)
        per = q_word_bits // self.abits
        beats = np.maximum(1, _cdiv(_cdiv(q_word_bits, 8), self.bus))
        return _cdiv(np.left_shift(1, self.abits), per) * beats * self.bus

    @classmethod
    def of(cls, configs: Sequence[AcceleratorConfig]) -> _Points:
        def col(f: Callable[[AcceleratorConfig], Any], dtype: Any = I64) -> Arr:
            return np.array([f(c) for c in configs], dtype=dtype)

        energy = [_energy_constants(c) for c in configs]
        e = np.array(energy, dtype=np.float64).reshape(len(configs), 10)
        c0 = configs[0]
        return cls(
            df=c0.dataflow, slots=2 if c0.double_buffered else 1, requantize=c0.requantize,
            search=c0.mapping is Mapping.SEARCH, objective=c0.objective,
            dw_engine=c0.depthwise_on_engine, dw_kmax=c0.depthwise_kernel, vec_unit=c0.vector_unit,
            conv_windows=c0.conv_windows,
            rows=col(lambda c: c.rows), cols=col(lambda c: c.cols),
            wbits=col(lambda c: c.weight_bits), abits=col(lambda c: c.act_bits), accb=col(lambda c: c.acc_bits),
            in_sram=col(lambda c: c.input_sram_bytes), w_sram=col(lambda c: c.weight_sram_bytes),
            out_sram=col(lambda c: c.output_sram_bytes), bw=col(lambda c: c.dram_bytes_per_cycle, np.float64),
            lat=col(lambda c: c.dram_latency_cycles), bus=col(bus_bytes), lanes=col(lambda c: c.lanes),
            gate=col(lambda c: c.zero_handling is ZeroHandling.GATE, bool),
            e_mac=e[:, 0], gated_fraction=e[:, 1], e_reg=e[:, 2], e_pe=e[:, 3], e_in=e[:, 4], e_w=e[:, 5],
            e_out=e[:, 6], e_dram=e[:, 7], e_add=e[:, 8], leak=e[:, 9])

    def take(self, idx: Arr) -> _Points:
        return dataclasses.replace(self, **{f.name: getattr(self, f.name)[idx] for f in dataclasses.fields(self)
                                            if f.name not in _UNIFORM})

    @property
    def write_overhead(self) -> int:
        return (DMA_WRITE_OVERHEAD_CYCLES + (REQUANT_WRITE_CYCLES if self.requantize else 0)
                + (WRITEBACK_ADD_CYCLES if self.residual or self.table else 0))


def _energy_constants(c: AcceleratorConfig) -> tuple[float, ...]:
    from codesign.sim.cost import leakage_pj_per_cycle

    t = load_table(c.energy_table)
    return (t.mac_pj(c.weight_bits, c.act_bits, c.acc_bits), t.gated_fraction, t.register_pj_per_bit,
            t.pe_to_pe_pj_per_bit, t.sram_pj_per_bit_at(c.input_sram_bytes), t.sram_pj_per_bit_at(c.weight_sram_bytes),
            t.sram_pj_per_bit_at(c.output_sram_bytes), t.dram_pj_per_bit, t.add_pj(c.acc_bits),
            leakage_pj_per_cycle(c))


def _dma(nbytes: Arr, p: _Points, overhead: int) -> Arr:
    """``tileplan.dma_read_cycles`` / ``dma_write_cycles`` per point (0 for nothing)."""
    cyc = overhead + p.lat + np.ceil(nbytes / p.bw).astype(I64)
    return np.where(nbytes > 0, cyc, 0)


def _shrink(x: Arr, q: Arr) -> Arr:
    """``tileplan._shrink`` per point."""
    half = _cdiv(x, 2)
    big = np.maximum(q, _cdiv(half, q) * q)
    return np.where(x > q, big, np.where(x > 1, np.maximum(1, half), 1))


# ---------------------------------------------------------------------------------------------
# the pipeline over a loop nest
# ---------------------------------------------------------------------------------------------
def _data_end(t0: Arr, cycles: Arr, phases: Sequence[tuple[Arr, Arr]]) -> Arr:
    """:func:`codesign.sim.engine.data_end` per point: ``cycles`` free cycles from ``t0`` around
    the write data ``phases`` (``[start, end)``, ascending)."""
    pos, left = t0, cycles
    live = [(ps, pe) for ps, pe in phases if (pe > pos).any()]  # phases that end after t0 somewhere
    if not live:
        return pos + left
    out = np.zeros_like(t0)
    open_ = np.ones(t0.shape, bool)
    for ps, pe in live:
        gap = np.maximum(ps - pos, 0)
        here = open_ & (left <= gap)
        out = np.where(here, pos + left, out)
        open_ &= ~here
        left = np.where(open_, left - gap, left)
        pos = np.where(open_, np.maximum(pos, pe), pos)
    return np.where(open_, pos + left, out)


class _Pipeline:
    """The tile pipeline of a set of points (``B`` slots per buffer), stepped tile by tile.

    Step ``k`` is the engine's closed form (:func:`codesign.sim.engine._pipeline_closed_form`):
    compute tile ``k - 1`` and store it (write queue; its data phase as alone: writes have the bus
    first), load tile ``k`` (read queue; its data takes the cycles the data phases of stores
    ``k - 2B + 1 .. k - 1`` leave). State before step ``k``: the read and write queues' times, tile
    ``k - 2``'s compute end (all that later steps read of the computes), the slot-free times of tiles
    ``k - 1 - B .. k - 2``, the store data phases of tiles
    ``k - 2B + 1 .. k - 2`` (empty for tiles without a store), and as history tile ``k - 1``'s
    compute and store cycles. Times of tiles before the first are 0 (no wait)."""

    def __init__(self, prologue: Arr, slots: int, r_lead: Arr, w_lead: Arr, w_tail: Arr) -> None:
        b = self.b = slots
        self.r_lead, self.w_lead, self.w_tail = r_lead, w_lead, w_tail
        z = np.zeros_like(prologue)
        # times: t_r (the last load's data end), t_w, the load's before it (its DMA slot), the last load
        # decision, tile k-2's compute end, slot-free times x B, phases (start, end) x (2B - 2)
        self.times: tuple[Arr, ...] = (prologue.copy(), z, prologue.copy(), prologue - LOAD_ISSUE_GAP_CYCLES, z,
                                       *([z] * b), *([z] * (2 * (2 * b - 2))))
        self.hist: tuple[Arr, ...] = (z, z)  # tile k-1's compute and store cycles

    def state(self) -> tuple[tuple[Arr, ...], tuple[Arr, ...]]:
        return self.times, self.hist

    def step(self, ld: Arr, comp: Arr, st: Arr, mask: Arr | None) -> None:
        b = self.b
        t_r, t_w, t_r2, t_d, *rest = self.times
        ce2, se = rest[0], rest[1:b + 1]
        ph = [(rest[b + 1 + 2 * x], rest[b + 2 + 2 * x]) for x in range(2 * b - 2)]
        pc, ps = self.hist
        # compute tile k-1: loaded (t_r), the array free, its output slot free (tile k-1-B stored)
        c = np.maximum(np.maximum(t_r, ce2), se[0]) + pc
        # store tile k-1: after its compute and the previous store; its data as alone
        t0 = np.maximum(t_w, c) + self.w_lead
        data = t0 + ps - self.w_lead - self.w_tail
        has = ps > 0
        tw = np.where(has, data + self.w_tail, t_w)
        stored = np.where(has, tw, c)
        phase = (np.where(has, t0, c), np.where(has, data, c))  # empty without a store
        ph_all = [*ph, phase]
        # load tile k: after tile k-B's compute, a DMA slot (load k-2's data in) and the iterator's fields;
        # its data after load k-1's and around the stores' data
        d = np.maximum(np.maximum(t_r2, t_d + LOAD_ISSUE_GAP_CYCLES), c if b == 1 else ce2)
        has_ld = ld > 0
        tl = np.where(has_ld, _data_end(np.maximum(d + self.r_lead, t_r), ld - self.r_lead, ph_all), t_r)
        tr2, td = np.where(has_ld, t_r, t_r2), np.where(has_ld, d, t_d)
        # times no later step can tell from c (a queue idle since before tile k-1's compute end: every
        # later command waits for a compute at or after it) are c: the state then shifts with the
        # pipeline through loops of tiles that load or store nothing, and their iterations are jumped
        tl, tw = np.maximum(tl, c), np.maximum(tw, c)
        tr2, td = np.maximum(tr2, c), np.maximum(td, c - LOAD_ISSUE_GAP_CYCLES)
        # likewise the slot-free times (read with tile k-1's compute end or later) are at least c, and
        # of a store's data phase only what lies after the next load's earliest data (c + lead) matters
        lo = c + self.r_lead
        keep = [(np.where(pe > lo, np.maximum(ps, lo), c), np.where(pe > lo, pe, c)) for ps, pe in ph_all[1:]]
        new_times = (tl, tw, tr2, td, c, *(np.maximum(x, c) for x in (*se[1:], stored)),
                     *(x for pair in keep for x in pair))
        new_hist = (comp, st)
        if mask is None:
            self.times, self.hist = new_times, new_hist
        else:
            self.times = tuple(np.where(mask, a, o) for a, o in zip(new_times, self.times, strict=True))
            self.hist = tuple(np.where(mask, a, o) for a, o in zip(new_hist, self.hist, strict=True))

    def end(self) -> Arr:
        """Cycles of the whole program: a step without a tile computes and stores the last one."""
        saved = self.times, self.hist
        z = np.zeros_like(self.times[0])
        self.step(z, z, z, None)
        t_r, t_w, _r2, _d, *rest = self.times
        out = np.maximum(np.maximum(t_r, t_w), rest[0])
        self.times, self.hist = saved
        return out

    def jump(self, mask: Arr, times: Arr, prev: tuple[tuple[Arr, ...], tuple[Arr, ...]]) -> Arr:
        """Where ``mask``, the times are ``prev``'s shifted uniformly and the history is the same,
        add the shift ``times`` more times; returns where it did."""
        cur, hist = self.times, self.hist
        ptimes, phist = prev
        d = cur[0] - ptimes[0]
        same = mask.copy()
        for a, o in zip(cur[1:], ptimes[1:], strict=True):
            same &= (a - o) == d
        for a, o in zip(hist, phist, strict=True):
            same &= a == o
        add = np.where(same, d * times, 0)
        self.times = tuple(a + add for a in cur)
        return same


def _pipeline(q: _Points, prologue: Arr) -> _Pipeline:
    """``prologue``: the cycles of the prologue's read (and an activation table's load after it)."""
    if q.table:
        prologue = prologue + np.left_shift(1, q.abits)
    return _Pipeline(prologue, q.slots, DMA_READ_OVERHEAD_CYCLES + q.lat, np.full_like(q.lat, q.write_overhead - 1),
                     q.lat + 1)


Params = Callable[[tuple[tuple[bool, bool], ...]], tuple[Arr, Arr, Arr]]
Tile4 = Callable[[tuple[bool, bool, bool, bool, bool, bool]], tuple[Arr, Arr, Arr]]  # see _nest4_cycles


def _run_nest(pipe: _Pipeline, counts: Sequence[Arr], classes: Sequence[int], params: Params) -> None:
    """Step ``pipe`` through a loop nest: ``counts[l]`` iterations at level ``l`` (per point,
    ``min(count, 3) == classes[l]`` for every point); ``params(ctx)`` gives the (load, compute,
    store) cycles of the tile at ``ctx``, a (first, last) pair per level."""

    def level(lv: int, ctx: tuple[tuple[bool, bool], ...], mask: Arr | None) -> None:
        if lv == len(counts):
            ld, comp, st = params(ctx)
            pipe.step(ld, comp, st, mask)
            return
        cls, n = classes[lv], counts[lv]
        level(lv + 1, (*ctx, (True, cls == 1)), mask)
        if cls == 1:
            return
        level(lv + 1, (*ctx, (False, cls == 2)), mask)
        if cls == 2:
            return
        todo = n >= 4 if mask is None else (n >= 4) & mask
        left = np.where(todo, n - 3, 0)  # middle iterations 2 .. n-2 still to run
        before = None  # the state two iterations back
        while todo.any():  # the middle iterations: the same map each time
            prev = pipe.state()
            level(lv + 1, (*ctx, (False, False)), todo)
            left = np.where(todo, left - 1, left)
            done = pipe.jump(todo, left, prev)  # periodic with one iteration: the rest at once
            left = np.where(done, 0, left)
            if before is not None:  # or with two (the queues may take turns): the pairs at once
                pairs = pipe.jump(todo & ~done & (left >= 2), left // 2, before)
                left = np.where(pairs, left % 2, left)
            todo = todo & (left > 0)
            before = prev
        level(lv + 1, (*ctx, (False, True)), mask)

    level(0, (), None)


# ---------------------------------------------------------------------------------------------
# layers
# ---------------------------------------------------------------------------------------------
@dataclasses.dataclass
class _LayerArrays:
    """What the network totals need of one layer at each point."""

    ok: Arr  # bool: the fast path planned it (else the point goes the point-by-point way)
    cycles: Arr
    compute: Arr
    energy: dict[str, Arr]  # per part, in ENERGY_PARTS order
    dram_bits: Arr  # DRAM reads + writes
    # bool: the layer's plan may read its input as one tile (False where it surely does not: the plan the
    # fast path chose does not and the whole input does not fit a slot; a necessary condition of residency,
    # sim.residency; None: all may)
    single: Arr | None = None


def _pieces(total: int, tile: Arr) -> tuple[Arr, Arr, Arr, Arr]:
    """(full size, full count, rest size, rest count) of ``total`` cut into ``tile``-sized pieces."""
    full = total // tile
    rest = total - full * tile
    return tile, full, rest, (rest > 0).astype(I64)


def _plan(g: Any, p: _Points) -> dict[str, Arr]:
    """``tileplan.plan_tiles`` per point: tile sizes, groups per tile, loop order (``ok`` false
    where the scalar planner raises)."""
    df, r, c = p.df, p.rows, p.cols
    is_ = df is Dataflow.IS
    a_bits = (c if is_ else r) * p.abits
    b_bits = (r if is_ else c) * p.wbits
    c_bits = c * p.accb
    sl = p.slots
    sa, sb, sc = p.in_sram * 8 // a_bits // sl, p.w_sram * 8 // b_bits // sl, p.out_sram * 8 // c_bits // sl
    one = np.ones_like(r)
    la, lb, lc = _words(df, r, c, one, one, one)
    ok = (sa >= la) & (sb >= lb) & (sc >= lc)
    if df is Dataflow.WS:
        qm, qn, qk = one, c, r
    elif df is Dataflow.OS:
        qm, qn, qk = r, c, one
    else:
        qm, qn, qk = c, one, r
    m, n, k = g.m, g.n, g.k
    mt, nt, kt = np.full_like(r, m), np.full_like(r, n), np.full_like(r, k)
    for _ in range(256):
        wa, wb, wc = _words(df, r, c, mt, nt, kt)
        oc, ob, oa = wc > sc, wb > sb, wa > sa
        if not (oa | ob | oc).any():
            break
        c1 = oc & (mt > qm) & ((mt >= nt) | (nt <= qn))
        c2 = oc & ~c1 & (nt > qn)
        c3 = oc & ~c1 & ~c2 & (mt > 1)
        c4 = oc & ~c1 & ~c2 & ~c3
        bm = ob & ~oc
        b1 = bm & (nt > qn) & (nt >= kt)
        b2 = bm & ~b1 & (kt > qk)
        b3 = bm & ~b1 & ~b2 & (nt > 1)
        b4 = bm & ~b1 & ~b2 & ~b3
        am = oa & ~oc & ~ob
        a1 = am & (mt > qm) & (mt >= kt)
        a2 = am & ~a1 & (kt > qk)
        a3 = am & ~a1 & ~a2 & (mt > 1)
        a4 = am & ~a1 & ~a2 & ~a3
        mt = np.where(c1 | a1, _shrink(mt, qm), mt)
        mt = np.where(c3, _shrink(mt, one), mt)
        mt = np.where(a3, _shrink(mt, np.where(mt <= qm, 1, qm)), mt)
        nt = np.where(c2 | b1, _shrink(nt, qn), nt)
        nt = np.where(c4, _shrink(nt, one), nt)
        nt = np.where(b3, _shrink(nt, np.where(nt <= qn, 1, qn)), nt)
        kt = np.where(b2 | a2, _shrink(kt, qk), kt)
        kt = np.where(b4 | a4, _shrink(kt, one), kt)
    wa, wb, wc = _words(df, r, c, mt, nt, kt)
    ok &= (wa <= sa) & (wb <= sb) & (wc <= sc) & (np.minimum(np.minimum(mt, nt), kt) >= 1)
    gt = one.copy()
    if g.repeats > 1:
        whole = (mt == m) & (nt == n) & (kt == k)
        most = np.maximum(1, np.minimum(np.minimum(np.minimum(g.repeats, sa // np.maximum(1, wa)),
                                                   sb // np.maximum(1, wb)), sc // np.maximum(1, wc)))
        pow2 = np.left_shift(1, np.floor(np.log2(most)).astype(I64))  # 1 << (bit_length - 1)
        pow2 = np.where(pow2 * 2 <= most, pow2 * 2, pow2)  # guard the float log near powers of two
        pow2 = np.where(pow2 > most, pow2 // 2, pow2)
        gt = np.where(whole, pow2, 1)
    plan = {"ok": ok, "mt": mt, "nt": nt, "kt": kt, "gt": gt, "sa": sa, "sb": sb, "sc": sc}
    return _complete(g, p, plan)


def _planes_b(g: Any, p: _Points, plan: dict[str, Arr]) -> tuple[dict[str, Arr], Arr | None]:
    """``mapping.planes_b_tiling`` per point: where K is cut into tiles, or is not whole words of ``rows``
    pixels (planes unpadded: one a block), and an N tile holds several column chunks (weight-stationary),
    the whole K with as many whole planes as the slots hold (one when unpadded), else one chunk a tile with
    the K tile the tiler gives ``cols`` columns; the loop order of the fewer bytes. The plan and the points
    it cut (None: none)."""
    if p.df is not Dataflow.WS:
        return plan, None
    c = p.cols
    unpadded = g.k % p.rows != 0
    cut = ((plan["n_kt"] > 1) | unpadded) & (plan["nt"] > c)
    if not cut.any():
        return plan, None
    from codesign.workloads.layers import GemmShape

    kf, chunks = _cdiv(g.k, p.rows), _cdiv(g.n, c)
    most = np.where(unpadded, 1, chunks)
    nf = np.where(kf * g.m <= plan["sa"],
                  np.minimum(np.minimum(most, plan["sb"] // (kf * p.rows)), plan["sc"] // g.m), 0)
    whole = cut & (nf > 0)
    new = {name: plan[name].copy() for name in ("ok", "mt", "nt", "kt", "gt", "sa", "sb", "sc")}
    new["mt"][whole], new["kt"][whole], new["gt"][cut] = g.m, g.k, 1
    new["nt"][whole] = np.where(nf == chunks, g.n, nf * c)[whole]
    piece = cut & ~whole
    for cc in np.unique(c[piece]).tolist():
        idx = np.flatnonzero(piece & (c == cc))
        one = _plan(GemmShape(g.m, cc, g.k, g.repeats), p.take(idx))
        new["mt"][idx], new["kt"][idx], new["nt"][idx] = one["mt"], one["kt"], cc
    fewer_bytes = _complete(g, p, new)["wo"]
    return _complete(g, p, new, np.where(cut, fewer_bytes, plan["wo"])), cut


def _complete(g: Any, p: _Points, plan: dict[str, Arr], wo: Arr | None = None) -> dict[str, Arr]:
    """A plan's derived arrays (beats, the requantization table, loop counts, reuse, traffic); the
    loop order with the lower traffic unless ``wo`` gives it."""
    r, c = p.rows, p.cols
    is_ = p.df is Dataflow.IS
    a_bits, b_bits = (c if is_ else r) * p.abits, (r if is_ else c) * p.wbits
    m, n, k = g.m, g.n, g.k
    mt, nt, kt, gt = plan["mt"], plan["nt"], plan["kt"], plan["gt"]
    bus = p.bus
    out_bits = p.abits if p.requantize else p.accb  # a written-back lane: requantized or the accumulator
    per = np.ones_like(c) if is_ else c  # table entries a word (TilePlan.q_entries_per_word)
    beats = [np.maximum(1, _cdiv(_cdiv(bits, 8), bus)) * bus
             for bits in (a_bits, b_bits, c * out_bits, per * QUANT_ENTRY_BITS)]
    # the requantization table, read before the first tile: a word per group and ``per`` channels
    prologue = g.repeats * _cdiv(n, per) * beats[3] if p.requantize else np.zeros_like(r)
    plan = {**plan, "ba": beats[0], "bb": beats[1], "bc": beats[2], "prologue": prologue}
    n_mt, n_nt, n_kt = _cdiv(m, mt), _cdiv(n, nt), _cdiv(k, kt)
    plan.update(n_mt=n_mt, n_nt=n_nt, n_kt=n_kt, n_gt=_cdiv(g.repeats, gt))
    traffic = {}
    for outer_w in (True, False):
        a_reuse = (n_mt == 1) & (n_kt == 1) if outer_w else n_kt == 1
        b_reuse = n_kt == 1 if outer_w else (n_nt == 1) & (n_kt == 1)
        traffic[outer_w] = (_traffic(g, p, plan, a_reuse, b_reuse), a_reuse, b_reuse)
    (tw, arw, brw), (ti, ari, bri) = traffic[True], traffic[False]
    # ties: weights outer (``plan_tiles`` keys on ``not weights_outer``)
    wo = np.asarray(sum(tw) <= sum(ti) if wo is None else wo)
    plan.update(wo=wo, a_reuse=np.where(wo, arw, ari), b_reuse=np.where(wo, brw, bri),
                a_bytes=np.where(wo, tw[0], ti[0]), b_bytes=np.where(wo, tw[1], ti[1]),
                c_bytes=np.where(wo, tw[2], ti[2]))
    return plan


def _traffic(g: Any, p: _Points, plan: dict[str, Arr], a_reuse: Arr, b_reuse: Arr) -> tuple[Arr, Arr, Arr]:
    """``tileplan.plan_traffic_bytes`` per point."""
    df, r, c = p.df, p.rows, p.cols
    mp, np_, kp = _pieces(g.m, plan["mt"]), _pieces(g.n, plan["nt"]), _pieces(g.k, plan["kt"])
    a: Any = 0
    b: Any = 0
    cc: Any = 0
    for ms, cm in ((mp[0], mp[1]), (mp[2], mp[3])):
        for ks, ck in ((kp[0], kp[1]), (kp[2], kp[3])):
            a = a + _words(df, r, c, ms, 1, ks)[0] * plan["ba"] * cm * ck
    for ns, cn in ((np_[0], np_[1]), (np_[2], np_[3])):
        for ks, ck in ((kp[0], kp[1]), (kp[2], kp[3])):
            b = b + _words(df, r, c, 1, ns, ks)[1] * plan["bb"] * cn * ck
    for ms, cm in ((mp[0], mp[1]), (mp[2], mp[3])):
        for ns, cn in ((np_[0], np_[1]), (np_[2], np_[3])):
            cc = cc + _words(df, r, c, ms, ns, 1)[2] * plan["bc"] * cm * cn
    a = a * np.where(a_reuse, 1, plan["n_nt"])
    b = b * np.where(b_reuse, 1, plan["n_mt"])
    return a * g.repeats, b * g.repeats, cc * g.repeats


def _gemm_cycles(g: Any, p: _Points, plan: dict[str, Arr]) -> tuple[Arr, Arr]:
    """(cycles, compute cycles) of the plan's tile program through the pipeline."""
    npts = p.rows.size
    cycles = np.zeros(npts, I64)
    m, n, k, reps = g.m, g.n, g.k, g.repeats
    mt, nt, kt, gt = plan["mt"], plan["nt"], plan["kt"], plan["gt"]
    last = {"g": reps - (plan["n_gt"] - 1) * gt, "m": m - (plan["n_mt"] - 1) * mt,
            "n": n - (plan["n_nt"] - 1) * nt, "k": k - (plan["n_kt"] - 1) * kt}
    # compute cycles: every (g, m, n, k) piece class times its count
    compute = np.zeros(npts, I64)
    gp, mp, np_, kp = _pieces(reps, gt), _pieces(m, mt), _pieces(n, nt), _pieces(k, kt)
    for gs, cg in ((gp[0], gp[1]), (gp[2], gp[3])):
        for ms, cm in ((mp[0], mp[1]), (mp[2], mp[3])):
            for ns, cn in ((np_[0], np_[1]), (np_[2], np_[3])):
                for ks, ck in ((kp[0], kp[1]), (kp[2], kp[3])):
                    cnt = cg * cm * cn * ck
                    if not cnt.any():  # no such piece at any point (no ragged edge there)
                        continue
                    comp = gs * (_native(p.df, p.rows, p.cols, ms, ns, ks) + GEMM_ISSUE_CYCLES) + TILE_ISSUE_CYCLES
                    compute += np.where(cnt > 0, cnt * comp, 0)

    def per_class(idx: Arr, q: _Points) -> Tile4:
        sub = {name: v[idx] for name, v in plan.items()}
        lastq = {name: v[idx] for name, v in last.items()}

        def tile(place: tuple[bool, bool, bool, bool, bool, bool]) -> tuple[Arr, Arr, Arr]:
            gl, m_first, m_last, n_first, n_last, kl = place
            gs = lastq["g"] if gl else sub["gt"]
            ms = lastq["m"] if m_last else sub["mt"]
            ns = lastq["n"] if n_last else sub["nt"]
            ks = lastq["k"] if kl else sub["kt"]
            wa, wb, wc = _words(q.df, q.rows, q.cols, ms, ns, ks)
            load_a = ~sub["a_reuse"] | n_first
            load_b = ~sub["b_reuse"] | m_first
            load = gs * (np.where(load_a, wa * sub["ba"], 0) + np.where(load_b, wb * sub["bb"], 0))
            store = gs * wc * sub["bc"] if kl else np.zeros_like(gs)
            comp = gs * (_native(q.df, q.rows, q.cols, ms, ns, ks) + GEMM_ISSUE_CYCLES) + TILE_ISSUE_CYCLES
            return (load + store if q.residual else load), comp, store

        return tile

    cycles = _nest4_cycles(p, (plan["n_gt"], plan["n_mt"], plan["n_nt"], plan["n_kt"]), plan["wo"],
                           plan["prologue"] + _gemm_table_bytes(p), per_class)
    return cycles, compute


def _nest4_cycles(p: _Points, counts: tuple[Arr, Arr, Arr, Arr], wo: Arr, prologue: Arr,
                  per_class: Callable[[Arr, _Points], Tile4]) -> Arr:
    """Cycles of a G, M, N, K tile program through the pipeline, per point (``TilePlan.tiles``'s loop
    nest: ``counts`` = the G, M, N, K tile counts, ``wo`` weights outer, the ``prologue`` bytes read
    first). Points with the same loop order and the same class (1, 2, 3+ iterations) at every level
    step through the same control flow together; ``per_class(idx, q)`` gives, for those points, the
    function of a tile's place ``(last_g, first_m, last_m, first_n, last_n, last_k)`` to its
    (load bytes, compute cycles, store bytes)."""
    n_gt, n_mt, n_nt, n_kt = counts
    cycles = np.zeros(wo.size, I64)
    n_o, n_i = np.where(wo, n_nt, n_mt), np.where(wo, n_mt, n_nt)
    code = wo.astype(I64)
    for x in (n_gt, n_o, n_i, n_kt):
        code = code * 3 + np.minimum(x, 3) - 1
    for c in np.unique(code).tolist():
        idx = np.flatnonzero(code == c)
        key: list[int] = []
        rest = c
        for _ in range(4):
            rest, d = divmod(rest, 3)
            key.insert(0, d + 1)
        w = bool(rest)
        q = p.take(idx)
        tile = per_class(idx, q)
        cache: dict[tuple[bool, ...], tuple[Arr, Arr, Arr]] = {}

        def params(ctx: tuple[tuple[bool, bool], ...], w: bool = w, q: _Points = q, tile: Tile4 = tile,
                   cache: dict[tuple[bool, ...], tuple[Arr, Arr, Arr]] = cache) -> tuple[Arr, Arr, Arr]:
            (_, gl), (of, ol), (if_, il), (_, kl) = ctx
            ck = (gl, of, ol, if_, il, kl)
            hit = cache.get(ck)
            if hit is not None:
                return hit
            m_first, m_last, n_first, n_last = (if_, il, of, ol) if w else (of, ol, if_, il)
            load, comp, store = tile((gl, m_first, m_last, n_first, n_last, kl))
            out = (_dma(load, q, DMA_READ_OVERHEAD_CYCLES), comp, _dma(store, q, q.write_overhead))
            cache[ck] = out
            return out

        pipe = _pipeline(q, _dma(prologue[idx], q, DMA_READ_OVERHEAD_CYCLES))
        _run_nest(pipe, [n_gt[idx], n_o[idx], n_i[idx], n_kt[idx]], key, params)
        cycles[idx] = pipe.end()
    return cycles


def _energy(p: _Points, active: Arr, gated: Arr, register: Arr, pe: Arr, in_rw: Arr, w_rw: Arr, out_rw: Arr,
            dram: Arr, vector: Arr, cycles: Arr) -> dict[str, Arr]:
    """``cost.layer_energy`` per point (same operations, same order)."""
    return {
        "mac": active * p.e_mac + gated * p.e_mac * p.gated_fraction,
        "register": register * p.e_reg,
        "pe_to_pe": pe * p.e_pe,
        "input_sram": in_rw * p.e_in,
        "weight_sram": w_rw * p.e_w,
        "output_sram": out_rw * p.e_out,
        "dram": dram * p.e_dram,
        "vector": vector * p.e_add,
        "leakage": cycles * p.leak,
    }


def _gemm_layer(layer: Layer, batch: int, p: _Points, b_planes: bool = False) -> _LayerArrays:
    """A GEMM layer (``b_planes``: a global average pool's, its map B read as planes:
    ``mapping.planes_b_tiling``)."""
    g = layer.gemm(batch)
    assert g is not None
    plan = _plan(g, p)
    ok = plan["ok"]
    if not ok.all():  # evaluate the plannable points only (the others go the scalar way)
        safe = np.where(ok, np.arange(ok.size), int(np.flatnonzero(ok)[0]) if ok.any() else 0)
        if not ok.any():
            z = np.zeros(ok.size, I64)
            return _LayerArrays(ok, z, z, {part: z.astype(np.float64) for part in ENERGY_PARTS}, z)
        p, plan = p.take(safe), {name: v[safe] for name, v in plan.items()}
    # (the mapping search picks the layer without its activation table: mapping.with_activation)
    plain = dataclasses.replace(p, act=False)
    result = _gemm_eval(layer, g, plain, plan)
    if p.search:
        from codesign.sim.fastsearch import search_plans

        plan = search_plans(layer, g, plain, plan, result, _gemm_eval, _complete)
    cut = None
    if b_planes:
        plan, cut = _planes_b(g, p, plan)
    if p.search or cut is not None:
        result = _gemm_eval(layer, g, plain, plan)
    if p.table:
        result = _gemm_eval(layer, g, p, plan)
    result.ok = ok
    return result


def _gemm_eval(layer: Layer, g: Any, p: _Points, plan: dict[str, Arr]) -> _LayerArrays:
    """Cycles, counts and energy of a GEMM layer under ``plan`` at each point (``exact`` of the
    mapping search, ``_gemm_counts`` and ``layer_energy``)."""
    from codesign.sim.mapping import _inside

    cycles, compute = _gemm_cycles(g, p, plan)
    m, n, k, reps = g.m, g.n, g.k, g.repeats
    macs = m * n * k * reps
    dw = layer.weights.density
    da = layer.inputs.density * _inside(layer)
    gate_active = round(macs * dw * da)
    active = np.where(p.gate, gate_active, macs)
    gated = np.where(p.gate, macs - gate_active, 0)
    ab = np.minimum(layer.inputs.bits, p.abits)
    wb = np.minimum(layer.weights.bits, p.wbits)
    ob = np.minimum(layer.outputs.bits, p.accb)
    accb, rows, cols = p.accb, p.rows, p.cols
    mt, nt, kt = plan["mt"], plan["nt"], plan["kt"]
    n_kt = _cdiv(k, kt)
    cf = _cdiv(np.minimum(nt, n), cols)
    rf_os = _cdiv(np.minimum(mt, m), rows)
    kf = _cdiv(np.minimum(kt, k), rows)
    mcf = _cdiv(np.minimum(mt, m), cols)
    b_elems, a_elems, c_elems = k * n * reps, m * k * reps, m * n * reps
    half_rows = np.maximum(1, rows // 2)
    if p.df is Dataflow.WS:
        a_reads = a_elems * cf
        b_reads = np.full_like(rows, b_elems)
        psum_writes = c_elems * (kf * n_kt)
        pe_hops = macs * (ab + accb) + b_elems * wb * half_rows
        stationary = wb
    elif p.df is Dataflow.OS:
        a_reads = a_elems * cf
        b_reads = b_elems * rf_os
        psum_writes = c_elems * n_kt
        pe_hops = m * n * k * reps * (ab + wb) + c_elems * accb * half_rows
        stationary = 2 * accb
    else:
        a_reads = np.full_like(rows, a_elems)
        b_reads = b_elems * mcf
        psum_writes = c_elems * (kf * n_kt)
        pe_hops = m * n * k * reps * (wb + accb) + a_elems * ab * half_rows
        stationary = ab
    psum_reads = np.maximum(0, psum_writes - c_elems)
    a_dram, b_dram, c_dram = plan["a_bytes"] * 8, plan["b_bytes"] * 8, plan["c_bytes"] * 8
    load_bits = (plan["a_bytes"] + plan["b_bytes"] + plan["prologue"] + _gemm_table_bytes(p)) * 8
    in_rw = a_reads * ab + a_dram
    if p.residual:  # mapping.residual_counts: read from DRAM, into the residual buffer, out once
        load_bits = load_bits + c_dram
        in_rw = in_rw + 2 * c_dram
    energy = _energy(p, active, gated, active * stationary, pe_hops, in_rw, b_reads * wb + b_dram,
                     (psum_reads * accb + c_elems * ob) + psum_writes * accb, load_bits + c_dram,
                     np.full_like(rows, (c_elems if p.requantize else 0) + (c_elems if p.table else 0)), cycles)
    return _LayerArrays(np.ones(cycles.size, bool), cycles, compute, energy, load_bits + c_dram)


def _gemm_table_bytes(p: _Points) -> Arr:
    """A GEMM plan's activation table bytes (``TilePlan.q_word_bits``: one entry a word on IS)."""
    per = np.ones_like(p.cols) if p.df is Dataflow.IS else p.cols
    return p.table_bytes(per * QUANT_ENTRY_BITS)


def _vector_layer(layer: Layer, batch: int, p: _Points) -> _LayerArrays:
    """``mapping.plan_vector`` (a layer on its own) and its pipeline, per point."""
    ei, eo, ops = layer.input_elements(batch), layer.output_elements(batch), layer.vector_ops(batch)
    ab = np.minimum(layer.inputs.bits, p.abits)
    ob = np.minimum(layer.outputs.bits, p.accb)
    cap_a, cap_c = p.in_sram * 8 // p.slots, p.out_sram * 8 // p.slots
    ratio_in = ei / eo
    per_out = np.maximum(1, np.ceil(ratio_in * ab).astype(I64))
    tile = np.maximum(1, np.minimum(np.minimum(eo, cap_a // per_out), cap_c // np.maximum(1, ob)))
    ops_per_out = ops / eo
    n_tiles = _cdiv(eo, tile)
    last = eo - (n_tiles - 1) * tile

    def transfer(size: Arr) -> tuple[Arr, Arr, Arr]:
        load = _cdiv(np.ceil(size * ratio_in).astype(I64) * ab, 8)
        store = _cdiv(size * ob, 8)
        comp = _cdiv(np.ceil(size * ops_per_out).astype(I64), p.lanes)
        return load, store, comp

    full, rest = transfer(tile), transfer(last)
    load_bits = ((n_tiles - 1) * full[0] + rest[0]) * 8
    store_bits = ((n_tiles - 1) * full[1] + rest[1]) * 8
    compute = (n_tiles - 1) * full[2] + rest[2]
    cycles = np.zeros_like(tile)
    classes = np.minimum(n_tiles, 3)
    for cls in np.unique(classes).tolist():
        idx = np.flatnonzero(classes == cls)
        q = p.take(idx)
        tf = tuple(x[idx] for x in full)
        tr = tuple(x[idx] for x in rest)

        def params(ctx: tuple[tuple[bool, bool], ...], q: _Points = q, tf: tuple[Arr, ...] = tf,
                   tr: tuple[Arr, ...] = tr) -> tuple[Arr, Arr, Arr]:
            ld, st, comp = tr if ctx[0][1] else tf
            return _dma(ld, q, DMA_READ_OVERHEAD_CYCLES), comp, _dma(st, q, q.write_overhead)

        pipe = _pipeline(q, np.zeros(idx.size, I64))
        _run_nest(pipe, [n_tiles[idx]], [cls], params)
        cycles[idx] = pipe.end()
    z = np.zeros_like(tile)
    energy = _energy(p, z, z, z, z, ei * ab + load_bits, z, store_bits + eo * ob, load_bits + store_bits,
                     np.full_like(tile, ops), cycles)
    return _LayerArrays(np.ones(tile.size, bool), cycles, compute, energy, load_bits + store_bits)


def _layer(layer: Layer, batch: int, p: _Points) -> _LayerArrays:
    """One layer at every point: on the depthwise engine, the array (an average pool as its
    convolution: ``mapping.plan_layer``) or the vector unit."""
    from codesign.sim.mapping import map_is_b
    from codesign.workloads.layers import gemm_layer

    lowered = gemm_layer(layer)
    if lowered is None:
        if p.dw_engine and _is_max_pool(layer):  # on the built depthwise engine where its plan fits
            return _dw_layer(layer, batch, p, fallback=_vec_layer)
        return _vec_layer(layer, batch, p)
    if p.dw_engine and _is_depthwise(lowered):
        return _dw_layer(lowered, batch, p)
    if map_is_b(layer, lowered):  # a global pool: its map is B, as planes
        return _gemm_layer(lowered, batch, p, b_planes=True)
    return _win_layer(lowered, batch, p)


def _vec_layer(layer: Layer, batch: int, p: _Points) -> _LayerArrays:
    """An element-wise or max-pool layer: a residual add or a squeeze-excite scale on the built vector
    unit (``sim.vecplan``) at the points that build it, the model-only vector unit elsewhere."""
    from codesign.sim import vecplan as VP
    from codesign.workloads.layers import Eltwise

    model = _vector_layer(layer, batch, p)
    shape = VP._shape(layer) if isinstance(layer, Eltwise) else None
    if shape is None:
        return model
    built = np.full(p.rows.size, p.vec_unit and p.df is Dataflow.WS) & (p.rows == p.cols) & (p.wbits == p.abits)
    built &= (p.abits >= 2) & (p.abits <= 8) & (p.lanes == p.cols)
    if not built.any():
        return model
    op, size, pixels = shape
    mul = op == "mul"
    idx = np.flatnonzero(built)
    q = p.take(idx)
    n = idx.size
    lanes, bus = q.cols, q.bus
    groups = batch * _cdiv(size, lanes) if mul else np.ones(n, I64)
    words = np.full(n, pixels, I64) if mul else _cdiv(size * batch, lanes)
    a_bits, b_bits, c_bits = lanes * q.abits, lanes * q.wbits, lanes * q.accb
    c_dram = lanes * (q.abits if q.requantize else q.accb)
    sa = q.in_sram * 8 // a_bits // q.slots
    sb = q.w_sram * 8 // b_bits // q.slots
    sc = q.out_sram * 8 // c_bits // q.slots
    if mul:
        whole = words <= np.minimum(sa, sc)
        most = np.maximum(1, np.minimum(np.minimum(groups, sa // words), np.minimum(sb, sc // words)))
        gt = np.ones(n, I64)
        while ((gt * 2 <= most) & whole).any():
            gt = np.where((gt * 2 <= most) & whole, gt * 2, gt)
        mt = np.where(whole, words, np.maximum(1, np.minimum(sa, sc)))
    else:
        gt = np.ones(n, I64)
        mt = np.maximum(1, np.minimum(np.minimum(words, sa), np.minimum(sb, sc)))
    wa = np.maximum(1, _cdiv(_cdiv(a_bits, 8), bus)) * bus
    wb = np.maximum(1, _cdiv(_cdiv(b_bits, 8), bus)) * bus
    wc = np.maximum(1, _cdiv(_cdiv(c_dram, 8), bus)) * bus
    n_gt = _cdiv(groups, gt)
    gs_last = groups - (n_gt - 1) * gt
    n_mt = _cdiv(words, mt)
    last = words - (n_mt - 1) * mt
    prologue = (np.maximum(1, _cdiv(_cdiv(lanes * QUANT_ENTRY_BITS, 8), bus)) * bus if q.requantize
                else np.zeros(n, I64))
    def tile(sel: Arr, gs: Arr, first_m: bool, last_m: bool) -> tuple[Arr, Arr, Arr]:
        ms = last[sel] if last_m else mt[sel]
        b = (wb[sel] if first_m else 0) if mul else ms * wb[sel]
        return gs * (ms * wa[sel] + b), TILE_ISSUE_CYCLES + gs * (ms + VP.VEC_LATENCY_CYCLES), gs * ms * wc[sel]

    cycles = _nest_cycles(q, n_gt, n_mt, gt, gs_last, prologue, tile)
    total = groups * words  # words of X and of the output
    wy = groups if mul else total  # of the second operand
    compute = n_gt * n_mt * TILE_ISSUE_CYCLES + groups * (words + n_mt * VP.VEC_LATENCY_CYCLES)
    load = total * wa + wy * wb + prologue
    store = total * wc
    dram_bits = (load + store) * 8
    z = np.zeros(n, I64)
    energy = _energy(q, z, z, z, z, total * a_bits + total * a_bits, wy * b_bits + wy * b_bits,
                     total * c_bits + total * c_bits, dram_bits, np.full(n, layer.vector_ops(batch)), cycles)
    return _merged(model, idx, cycles, compute, energy, dram_bits)


def _nest_cycles(q: _Points, n_gt: Arr, n_mt: Arr, gt: Arr, gs_last: Arr, prologue: Arr,
                 tile: Callable[[Arr, Arr, bool, bool], tuple[Arr, Arr, Arr]]) -> Arr:
    """Cycles of a tile program of groups (``gt`` a tile, ``gs_last`` in the last) and, within them,
    chunks (``n_mt``) through the pipeline, per point: ``tile(sel, gs, first_chunk, last_chunk)``
    gives the (load bytes, compute cycles, store bytes) of a tile at the points ``sel``."""
    cycles = np.zeros(n_gt.size, I64)
    cls_g, cls_m = np.minimum(n_gt, 3), np.minimum(n_mt, 3)
    for cg, cm in sorted(set(zip(cls_g.tolist(), cls_m.tolist(), strict=True))):
        sel = np.flatnonzero((cls_g == cg) & (cls_m == cm))
        qs = q.take(sel)

        def params(ctx: tuple[tuple[bool, bool], ...], qs: _Points = qs, sel: Arr = sel) -> tuple[Arr, Arr, Arr]:
            (_, last_g), (first_m, last_m) = ctx
            ld, comp, st = tile(sel, gs_last[sel] if last_g else gt[sel], first_m, last_m)
            return _dma(ld, qs, DMA_READ_OVERHEAD_CYCLES), comp, _dma(st, qs, qs.write_overhead)

        pipe = _pipeline(qs, _dma(prologue[sel], qs, DMA_READ_OVERHEAD_CYCLES))
        _run_nest(pipe, [n_gt[sel], n_mt[sel]], [cg, cm], params)
        cycles[sel] = pipe.end()
    return cycles


def _merged(base: _LayerArrays, idx: Arr, cycles: Arr, compute: Arr, energy: dict[str, Arr],
            dram_bits: Arr) -> _LayerArrays:
    """``base`` (another unit's numbers at every point) with the points ``idx`` replaced by these."""

    def merge(values: Arr, others: Arr) -> Arr:
        out = np.array(others, copy=True)
        out[idx] = values
        return out

    return _LayerArrays(ok=merge(np.ones(idx.size, bool), base.ok), cycles=merge(cycles, base.cycles),
                        compute=merge(compute, base.compute),
                        energy={part: merge(energy[part], base.energy[part]) for part in ENERGY_PARTS},
                        dram_bits=merge(dram_bits, base.dram_bits))


def _spread(part: _LayerArrays, where: Arr) -> _LayerArrays:
    """``part`` (numbers at the points ``where`` is true) at every point (not ok elsewhere)."""
    def put(values: Arr) -> Arr:
        out = np.zeros(where.size, values.dtype)
        out[where] = values
        return out

    return _LayerArrays(ok=put(part.ok), cycles=put(part.cycles), compute=put(part.compute),
                        energy={k: put(v) for k, v in part.energy.items()}, dram_bits=put(part.dram_bits))


def _is_depthwise(layer: Layer) -> bool:
    from codesign.workloads.layers import Conv2d

    return isinstance(layer, Conv2d) and layer.is_depthwise


def _dw_multiplier(layer: Layer) -> int:
    """The channel multiplier of a depthwise layer (1 for any other layer)."""
    if not _is_depthwise(layer):
        return 1
    return layer.out_channels // layer.in_channels  # type: ignore[attr-defined]


def _is_max_pool(layer: Layer) -> bool:
    from codesign.workloads.layers import Pool, PoolKind

    return isinstance(layer, Pool) and layer.op is PoolKind.MAX


def _dw_layer(layer: Layer, batch: int, p: _Points,
              fallback: Callable[[Layer, int, _Points], _LayerArrays] | None = None) -> _LayerArrays:
    """A depthwise layer (or a max pool) on the built engine (``sim.dwplan``: its plan, tile program and
    counts), per point; at the points whose buffers the engine's plan does not fit, ``fallback``'s
    numbers (default the array's: the point-by-point path runs it there)."""
    from codesign.sim import dwplan as D
    from codesign.workloads.layers import Conv2d, Pool

    arr = (fallback or _gemm_layer)(layer, batch, p)
    assert isinstance(layer, Conv2d | Pool)
    probe = AcceleratorConfig(rows=8, cols=8, depthwise=Depthwise.ENGINE, input_sram_bytes=1 << 30,
                              weight_sram_bytes=1 << 30, output_sram_bytes=1 << 30, requantize=False,
                              depthwise_kernel=p.dw_kmax)
    # the layer itself (kernel, width, a max pool's padding): the array (the vector unit); a channel multiplier:
    # the point-by-point path (the caller)
    if (D.pool_reason(layer, batch, probe) if isinstance(layer, Pool) else D.layer_reason(layer, batch, probe)
            or _dw_multiplier(layer) > 1):
        return arr
    shape = D._Shape.of(layer)
    pooling = shape.mode == D.MODE_MAX
    lanes = p.cols
    h_, w_, r_, s_ = shape.in_h, shape.in_w, shape.r, shape.s
    sh = shape.stride[0]
    pt, pl, _pb, pr = shape.padding
    oh, ow = shape.out_h, shape.out_w
    w_pad = w_ + pl + pr
    planes = batch * _cdiv(shape.channels, lanes)
    a_bits, b_bits, c_bits = lanes * p.abits, lanes * p.wbits, p.cols * p.accb
    c_dram_bits = p.cols * (p.abits if p.requantize else p.accb)
    sa = p.in_sram * 8 // a_bits // p.slots
    sb = p.w_sram * 8 // b_bits // p.slots
    sc = p.out_sram * 8 // c_bits // p.slots
    slot = D.b_words(r_ * s_, shape.mode)  # a plane's weight block (a max pool's: its channel count)
    engine = sb >= slot
    if p.requantize:  # the table: one word per plane (sim.tileplan.q_table_words on WS)
        engine = engine & (planes <= p.out_sram * 8 // (p.cols * p.accb))

    def band4(m0: int, ms: int) -> tuple[int, int, int, int]:
        return D.band_rows(m0, ms, oh, h_, sh, pt, r_)  # DwPlan.band

    def band(m0: int, ms: int) -> tuple[int, int, int]:
        """(input rows, pad_top, pad_bottom) of a band."""
        return band4(m0, ms)[1:]

    def kinds(mt: int) -> dict[str, tuple[int, int, int]]:
        """The band kinds of ``mt`` output rows a band: ``{kind: (input rows, padded rows, output rows)}``."""
        n_mt = -(-oh // mt)
        if n_mt == 1:
            rows, a, b = band(0, oh)
            return {"single": (rows, a + rows + b, oh)}
        out = {}
        for kind, m0 in (("first", 0), ("middle", mt), ("last", (n_mt - 1) * mt)):
            ms = min(mt, oh - m0)
            rows, a, b = band(m0, ms)
            out[kind] = (rows, a + rows + b, ms)
        return out

    table = {m: kinds(m) for m in range(1, oh + 1) if D.bands_keep_padding_at_ends(band4, oh, m)}
    single_words = table[oh]["single"][0] * w_ if oh in table else 0
    whole = (oh in table) & (single_words <= sa) & (oh * ow <= sc)
    most = np.maximum(1, np.minimum(np.minimum(planes, sa // max(1, single_words)),
                                    np.minimum(sb // slot, sc // (oh * ow))))
    gt = np.ones_like(most)
    while ((gt * 2 <= most) & whole).any():
        gt = np.where((gt * 2 <= most) & whole, gt * 2, gt)
    mt = np.where(whole, oh, 0)
    for m in sorted(table, reverse=True):
        need_a = max(rows for rows, _, _ in table[m].values()) * w_
        mt = np.where((mt == 0) & (need_a <= sa) & (m * ow <= sc), m, mt)
    engine = engine & (mt > 0)
    if not engine.any():
        return arr
    idx_all = np.flatnonzero(engine)
    mt_e = mt[idx_all]
    q_all = p.take(idx_all)
    n = idx_all.size
    bus = q_all.bus
    wa = np.maximum(1, _cdiv(_cdiv(a_bits[idx_all], 8), bus)) * bus
    wb = np.maximum(1, _cdiv(_cdiv(b_bits[idx_all], 8), bus)) * bus
    wc = np.maximum(1, _cdiv(_cdiv(c_dram_bits[idx_all], 8), bus)) * bus
    planes_e = planes[idx_all]
    gt_e = gt[idx_all]
    n_gt = _cdiv(planes_e, gt_e)
    gs_last = planes_e - (n_gt - 1) * gt_e
    n_mt = _cdiv(oh, mt_e)

    def per_kind(kind: str, what: int) -> Arr:
        return np.array([table[m].get(kind, (0, 0, 0))[what] for m in mt_e.tolist()], dtype=I64)

    rows = {k: per_kind(k, 0) for k in ("single", "first", "middle", "last")}
    hpad = {k: per_kind(k, 1) for k in ("single", "first", "middle", "last")}
    outs = {k: per_kind(k, 2) for k in ("single", "first", "middle", "last")}
    one = n_mt == 1
    prologue = (planes_e * np.maximum(1, _cdiv(_cdiv(lanes[idx_all] * QUANT_ENTRY_BITS, 8), bus)) * bus
                if p.requantize else np.zeros(n, I64)) + q_all.table_bytes(lanes[idx_all] * QUANT_ENTRY_BITS)
    per_plane_group = slot + D.DW_GROUP_OVERHEAD_CYCLES + D.DW_LATENCY_CYCLES

    def kind_of(first: bool, last: bool) -> str:
        return "first" if first else "last" if last else "middle"

    def tile(sel: Arr, gs: Arr, first: bool, last: bool) -> tuple[Arr, Arr, Arr]:
        """(load bytes, compute cycles, store bytes) of a tile of ``gs`` planes (points ``sel``)."""
        k = kind_of(first, last)
        r = np.where(one[sel], rows["single"][sel], rows[k][sel])
        hp = np.where(one[sel], hpad["single"][sel], hpad[k][sel])
        ms = np.where(one[sel], outs["single"][sel], outs[k][sel])
        load = gs * (r * w_ * wa[sel] + (slot * wb[sel] if first else 0))
        comp = D.TILE_ISSUE_CYCLES + gs * (per_plane_group + hp * w_pad)
        return load, comp, gs * ms * ow * wc[sel]

    cycles = _nest_cycles(q_all, n_gt, n_mt, gt_e, gs_last, prologue, tile)
    # totals over every plane's bands
    mid = np.maximum(0, n_mt - 2)
    rows_sum = np.where(one, rows["single"], rows["first"] + mid * rows["middle"] + rows["last"])
    hp_sum = np.where(one, hpad["single"], hpad["first"] + mid * hpad["middle"] + hpad["last"])
    load_total = planes_e * rows_sum * w_ * wa + planes_e * slot * wb + prologue
    store_total = planes_e * oh * ow * wc
    compute = n_gt * n_mt * D.TILE_ISSUE_CYCLES + planes_e * (n_mt * per_plane_group + hp_sum * w_pad)
    ab = np.minimum(layer.inputs.bits, q_all.abits)
    wbit = np.minimum(layer.weights.bits, q_all.wbits)
    taps = np.full(n, batch * shape.channels * r_ * s_ * oh * ow, dtype=I64)
    z = np.zeros(n, I64)
    active, compares = (z, taps) if pooling else (taps, z)  # a max pool compares, multiplies nothing
    in_words = planes_e * rows_sum * w_
    dram_bits = (load_total + store_total) * 8
    a_e, b_e, c_e = a_bits[idx_all], b_bits[idx_all], c_bits[idx_all]
    energy = _energy(q_all, active, z, active * (ab + wbit) + compares * ab, z, in_words * a_e + in_words * a_e,
                     planes_e * slot * b_e + planes_e * slot * b_e,
                     planes_e * oh * ow * c_e + planes_e * oh * ow * c_e, dram_bits,
                     compares + (batch * shape.channels * oh * ow if q_all.table else 0), cycles)
    single = np.ones(p.rows.size, bool) if arr.single is None else arr.single.copy()
    single[idx_all] = (n_gt == 1) & (n_mt == 1)  # DwPlan: one tile of every plane's whole map
    return dataclasses.replace(_merged(arr, idx_all, cycles, compute, energy, dram_bits), single=single)


# ---------------------------------------------------------------------------------------------
# convolutions with on-chip windows (codesign.sim.convplan)
# ---------------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class _WinShape:
    """What :mod:`codesign.sim.convplan`'s plans need of a convolution's shape, per band height ``mt``
    (output rows a tile; arrays indexed by ``mt``, 0 unused): the band kinds' input rows, the shape
    conditions of ``WinPlan.fits`` and the pieces ``_estimate`` and ``traffic_bytes`` sum over."""

    n_mt: Arr
    allowed: Arr  # bool: every band reads a row, padding rows in the first and last bands only
    rows_max: Arr  # input rows of the tallest band kind
    rows_sum: Arr  # input rows of one image's bands
    rows_single: Arr  # input rows of the band kinds (single: one band; 0 where there is no such kind)
    rows_first: Arr
    rows_middle: Arr
    rows_last: Arr
    ms_last: Arr  # output rows of the last band
    pieces: tuple[tuple[Arr, Arr], ...]  # (output rows, count) of the first, last and middle bands
    table: Arr | None  # [x, y]: the largest allowed mt <= y whose tallest band has at most x rows (0: none)

    def tallest(self, ra: Arr, mc: Arr) -> Arr:
        """The largest allowed ``mt <= mc`` whose tallest band has at most ``ra`` input rows (0: none)."""
        x_max = int(self.rows_max.max())
        ra = np.minimum(ra, x_max)
        mc = np.minimum(mc, self.n_mt.size - 1)
        if self.table is not None:
            return self.table[ra, mc]
        # a map too tall for the table: the distinct queries, a block of them at a time
        pairs, inv = np.unique(np.stack([ra.ravel(), mc.ravel()], axis=1), axis=0, return_inverse=True)
        mts = np.arange(self.n_mt.size)
        out = np.zeros(len(pairs), I64)
        for i in range(0, len(pairs), 256):
            x, y = pairs[i:i + 256, :1], pairs[i:i + 256, 1:]
            fit = self.allowed[None, :] & (self.rows_max[None, :] <= x) & (mts[None, :] <= y)
            out[i:i + 256] = np.where(fit, mts[None, :], 0).max(axis=1)
        return out[inv.reshape(-1)].reshape(ra.shape)


_WIN_TABLE_MAX = 1 << 20  # entries of _WinShape.table (larger maps answer their queries without it)


@functools.lru_cache(maxsize=4096)
def _win_shape(layer: Any, batch: int) -> _WinShape:
    """:class:`_WinShape` of ``layer``."""
    return _make_win_shape(layer, batch)


def _make_win_shape(layer: Any, batch: int) -> _WinShape:
    from codesign.sim.convplan import WinPlan
    from codesign.sim.dwplan import bands_keep_padding_at_ends
    from codesign.sim.tileplan import WordGeometry

    oh = layer.out_h
    probe = WinPlan(batch=batch, in_channels=layer.in_channels, out_channels=layer.out_channels, in_h=layer.in_h,
                    in_w=layer.in_w, r=layer.r, s=layer.s, stride=tuple(layer.stride), dilation=tuple(layer.dilation),
                    padding=tuple(layer.padding), out_h=oh, out_w=layer.out_w,
                    geometry=WordGeometry(Dataflow.WS, 1, 1, 1, 1, 1), bus_bytes=1, slots=1, slot_words=(0, 0, 0),
                    mt=oh, nt=layer.out_channels, kt=1, weights_outer=True)
    cols: dict[str, list[int]] = {k: [0] * (oh + 1) for k in (
        "n_mt", "allowed", "rows_max", "rows_sum", "rows_single", "rows_first", "rows_middle", "rows_last", "ms_last",
        "ms0", "c0", "ms1", "c1", "ms2", "c2")}
    for mt in range(1, oh + 1):
        plan = dataclasses.replace(probe, mt=mt)
        n_mt = plan.n_mt
        kinds = plan.band_kinds()
        allowed = bands_keep_padding_at_ends(plan.band, oh, mt)  # WinPlan.fits's shape conditions
        rows_max = max(plan.band(m0, ms)[1] for m0, ms in kinds.values())
        pieces = plan._m_pieces()
        row = {"n_mt": n_mt, "allowed": int(allowed), "rows_max": rows_max,
               "rows_sum": sum(plan.band(m0, ms)[1] * count for m0, ms, count in pieces),
               "ms_last": oh - (n_mt - 1) * mt}
        if n_mt == 1:
            row["rows_single"] = plan.band(0, oh)[1]
        else:
            row["rows_first"] = plan.band(*kinds[(0, 1)])[1]
            row["rows_last"] = plan.band(*kinds[(1, 0)])[1]
            if (0, 0) in kinds:
                row["rows_middle"] = plan.band(*kinds[(0, 0)])[1]
        for j, (_, ms, count) in enumerate(pieces):
            row[f"ms{j}"], row[f"c{j}"] = ms, count
        for k, v in row.items():
            cols[k][mt] = v
    arr = {k: np.array(v, dtype=I64) for k, v in cols.items()}
    allowed_mt = arr["allowed"].astype(bool)
    x_max = int(arr["rows_max"].max())
    table = None
    if (x_max + 1) * (oh + 1) <= _WIN_TABLE_MAX:
        fit = allowed_mt[None, :] & (arr["rows_max"][None, :] <= np.arange(x_max + 1)[:, None])
        table = np.maximum.accumulate(np.where(fit, np.arange(oh + 1)[None, :], 0), axis=1)
    return _WinShape(n_mt=arr["n_mt"], allowed=allowed_mt, rows_max=arr["rows_max"], rows_sum=arr["rows_sum"],
                     rows_single=arr["rows_single"], rows_first=arr["rows_first"], rows_middle=arr["rows_middle"],
                     rows_last=arr["rows_last"], ms_last=arr["ms_last"],
                     pieces=tuple((arr[f"ms{j}"], arr[f"c{j}"]) for j in range(3)), table=table)


def _halvings(total: int) -> list[int]:
    """``convplan._choose_cached``'s K tiles: all planes, halves, ..., one."""
    out, x = [], total
    while True:
        out.append(x)
        if x == 1:
            return out
        x = -(-x // 2)


def _win_words(q: _Points) -> dict[str, Arr]:
    """The plan's buffer slots (words) and DRAM word bytes per point (``WordGeometry`` on a square WS
    array: ``rows`` lanes of activations, weights and accumulators)."""
    n, bus = q.rows, q.bus
    a_bits, b_bits, c_bits = n * q.abits, n * q.wbits, n * q.accb
    c_dram = n * (q.abits if q.requantize else q.accb)
    beats = [np.maximum(1, _cdiv(_cdiv(bits, 8), bus)) * bus for bits in (a_bits, b_bits, c_dram)]
    return {"sa": q.in_sram * 8 // a_bits // q.slots, "sb": q.w_sram * 8 // b_bits // q.slots,
            "sc": q.out_sram * 8 // c_bits // q.slots, "ba": beats[0], "bb": beats[1], "bc": beats[2],
            "a_bits": a_bits}


Pick = tuple[Arr, Arr, Arr, Arr]  # (kt, nf, weights outer, mt) per point


def _win_choose(layer: Any, batch: int, shape: _WinShape, n: int, w: dict[str, Arr], bw: Arr, lat: Arr
                ) -> tuple[Arr, Pick, Pick, Pick]:
    """``convplan._choose_cached`` at points of one array size ``n`` (``w``: :func:`_win_words`), all
    candidates at once: ``found`` and two picks ``(kt, nf, weights_outer, mt)`` per point. Candidates in
    the scalar loop's order (K tiles halving, N tiles of fewer chunks, weights outer first), each with its
    tallest fitting band; the first with the smallest (estimated cycles, DRAM bytes, tiles, inputs
    outer), the same with the edges no overlap hides added to the estimate, and the frugal one (the
    fewest DRAM bytes, then the estimate with the edges, tiles, inputs outer)."""

    cin, cout, oh, ow, in_w = layer.in_channels, layer.out_channels, layer.out_h, layer.out_w, layer.in_w
    taps = layer.r * layer.s
    planes, chunks = -(-cin // n), -(-cout // n)
    kts = _halvings(planes)
    kt_c = np.repeat(np.array(kts, dtype=I64), chunks * 2)
    nf_c = np.tile(np.repeat(np.arange(chunks, 0, -1, dtype=I64), 2), len(kts))
    wo_c = np.tile(np.array([True, False]), len(kts) * chunks)
    kt, nf, wo = kt_c[:, None], nf_c[:, None], wo_c[:, None]
    sa, sb, sc = w["sa"][None, :], w["sb"][None, :], w["sc"][None, :]
    mt = shape.tallest(sa // (kt * in_w), sc // (nf * ow))
    valid = (mt > 0) & (nf * kt * taps * n <= sb)
    mt = np.maximum(mt, 1)
    nt = np.where(nf == chunks, cout, nf * n)
    n_mt, n_nt, n_kt = shape.n_mt[mt], _cdiv(cout, nt), _cdiv(planes, kt)
    a_reuse = np.where(wo, (n_mt == 1) & (n_kt == 1), n_kt == 1)
    b_reuse = np.where(wo, n_kt == 1, (n_nt == 1) & (n_kt == 1))
    out_planes = chunks
    a = shape.rows_sum[mt] * in_w * planes * w["ba"][None, :] * np.where(a_reuse, 1, n_nt)
    b = out_planes * planes * taps * n * w["bb"][None, :] * np.where(b_reuse, 1, n_mt)
    c = out_planes * (oh * ow) * w["bc"][None, :]
    moved = a * batch + b * batch + c * batch
    folds = planes * taps * out_planes
    compute = np.zeros_like(mt)
    for ms, count in shape.pieces:
        px = ms[mt] * ow
        compute = compute + count[mt] * (folds * np.maximum(px, n) + n_nt * n_kt * (px + n + n + 3))
    tiles = n_mt * n_nt * n_kt
    dma = tiles * (lat[None, :] + 4) + (moved / bw[None, :] / batch).astype(I64)
    est = np.maximum(compute, dma)
    # convplan._edges: the first tile's load and the last tile's store
    first_rows = np.where(n_mt == 1, shape.rows_single[mt], shape.rows_first[mt])
    n_last = cout - (n_nt - 1) * nt
    edge_bytes = (kt * first_rows * in_w * w["ba"][None, :] + nf * kt * taps * n * w["bb"][None, :]
                  + _cdiv(n_last, n) * shape.ms_last[mt] * ow * w["bc"][None, :])
    edges = 2 * lat[None, :] + (edge_bytes / bw[None, :]).astype(I64)
    big = np.iinfo(I64).max
    found = valid.any(axis=0)
    cols = np.arange(mt.shape[1])
    picks = []
    inputs_outer = np.broadcast_to((~wo).astype(I64), mt.shape)
    for keys in ((est, moved, tiles, inputs_outer), (est + edges, moved, tiles, inputs_outer),
                 (moved, est + edges, tiles, inputs_outer)):
        best = valid
        for key in keys:
            v = np.where(best, key, big)
            best = best & (v == v.min(axis=0))
        pick = np.argmax(best, axis=0)
        picks.append((kt_c[pick], nf_c[pick], wo_c[pick], mt[pick, cols]))
    return found, picks[0], picks[1], picks[2]


def _win_points(layer: Any, batch: int, p: _Points) -> tuple[Arr, Pick, Pick, Pick]:
    """``convplan.layer_reason`` per point (``found``) and the three plans by estimate where it is ''
    (``convplan._choose_estimate``)."""
    from codesign.sim import convplan as CP

    npts = p.rows.size
    found = np.zeros(npts, bool)

    def empty() -> Pick:
        return np.zeros(npts, I64), np.zeros(npts, I64), np.zeros(npts, bool), np.zeros(npts, I64)

    picks = (empty(), empty(), empty())
    if not p.conv_windows or p.df is not Dataflow.WS or layer.groups != 1:
        return found, *picks
    if max(layer.in_h, layer.in_w, layer.out_h, layer.out_w) > CP.WIN_DIM_MAX:
        return found, *picks
    if max(layer.r, layer.s, *layer.stride, *layer.dilation, *layer.padding) > CP.WIN_FIELD_MAX:
        return found, *picks
    table_ok = None
    if p.requantize:  # the table (tileplan.q_table_words on WS)
        table_ok = _cdiv(layer.out_channels, p.cols) <= p.out_sram * 8 // (p.cols * p.accb)
    shape = None
    for n, idx, inv, wu, bw, lat in _win_groups(p):
        if CP.mode_reason(layer, n):
            continue
        if table_ok is not None and not table_ok[idx].any():
            continue
        shape = shape or _win_shape(layer, batch)
        f, *got = _win_choose(layer, batch, shape, n, wu, bw, lat)
        found[idx] = f[inv]
        for pick, g in zip(picks, got, strict=True):
            for dst, src in zip(pick, g, strict=True):
                dst[idx] = src[inv]
    if table_ok is not None:
        found &= table_ok
    return found, *picks


def _win_groups(p: _Points) -> list[tuple[int, Arr, Arr, dict[str, Arr], Arr, Arr]]:
    """The square arrays among ``p``, by size ``n``: ``(n, points, inverse, words, bw, lat)`` with the
    points' distinct (slots, word bytes, bandwidth, latency), on which alone the plan depends
    (``words``, ``bw``, ``lat`` of each distinct one, ``inverse`` each point's); memoized on ``p``
    (the same for every layer)."""
    memo = p.__dict__.get("_win_groups_memo")
    if memo is not None:
        return memo  # type: ignore[no-any-return]
    out = []
    square = p.rows == p.cols
    for n in np.unique(p.rows[square]).tolist():
        idx = np.flatnonzero(square & (p.rows == n))
        q = p.take(idx)
        w = _win_words(q)
        key = np.stack([w["sa"], w["sb"], w["sc"], w["ba"], w["bb"], w["bc"], q.bw.view(I64), q.lat], axis=1)
        _, first, inv = np.unique(key, axis=0, return_index=True, return_inverse=True)
        out.append((n, idx, inv.reshape(-1), {k: v[first] for k, v in w.items()}, q.bw[first], q.lat[first]))
    p.__dict__["_win_groups_memo"] = out
    return out


def _win_layer(layer: Layer, batch: int, p: _Points) -> _LayerArrays:
    """A layer on the array: a convolution with on-chip windows at the points where
    ``mapping.plan_layer`` runs it so (``convplan.plan_layer_win``: its plan, tile program and counts),
    the im2col GEMM elsewhere."""
    from codesign.sim.mapping import _inside
    from codesign.workloads.layers import Conv2d

    if not isinstance(layer, Conv2d):
        return _gemm_layer(layer, batch, p)
    found, *picks = _win_points(layer, batch, p)
    if not found.any():
        return _gemm_layer(layer, batch, p)
    idx = np.flatnonzero(found)
    z = np.zeros(0, I64)
    rest = (_gemm_layer(layer, batch, p.take(np.flatnonzero(~found))) if not found.all() else
            _LayerArrays(np.zeros(0, bool), z, z, {part: z.astype(np.float64) for part in ENERGY_PARTS}, z))
    arr = _spread(rest, ~found)
    q = p.take(idx)
    shape = _win_shape(layer, batch)
    npts = idx.size
    n = q.rows
    cin, cout, oh, ow, in_w = layer.in_channels, layer.out_channels, layer.out_h, layer.out_w, layer.in_w
    taps = layer.r * layer.s
    w = _win_words(q)
    ba, bb, bc = w["ba"], w["bb"], w["bc"]
    planes, out_planes = _cdiv(cin, n), _cdiv(cout, n)
    prologue = (out_planes * np.maximum(1, _cdiv(_cdiv(n * QUANT_ENTRY_BITS, 8), q.bus)) * q.bus if q.requantize
                else np.zeros(npts, I64))
    table = q.table_bytes(n * QUANT_ENTRY_BITS)  # the activation's, after the requantization table

    def comp_of(ms: Arr, ns: Arr, ks: Arr, sel: Arr | slice = slice(None)) -> Arr:
        r = n[sel]
        return _native(Dataflow.WS, r, r, ms * ow, ns, ks * taps * r) + GEMM_ISSUE_CYCLES + TILE_ISSUE_CYCLES

    def tiles_of(at: Arr, plan: tuple[Arr, Arr, Arr, Arr]) -> tuple[Arr, ...]:
        """``plan``'s ``(kt, nf, weights outer, mt)`` at the points ``at``, the array size, N tile, tile
        counts and reuse (WinPlan's)."""
        kt, nf, wo, mt = (x[at] for x in plan)
        nn = n[at]
        nt = np.where(nf == out_planes[at], cout, nf * nn)
        n_mt, n_nt, n_kt = shape.n_mt[mt], _cdiv(cout, nt), _cdiv(planes[at], kt)
        a_reuse = np.where(wo, (n_mt == 1) & (n_kt == 1), n_kt == 1)
        b_reuse = np.where(wo, n_kt == 1, (n_nt == 1) & (n_kt == 1))
        return kt, nf, wo, mt, nn, nt, n_mt, n_nt, n_kt, a_reuse, b_reuse

    def program(at: Arr, plan: tuple[Arr, Arr, Arr, Arr], qp: _Points) -> Arr:
        """Cycles of the tile program (images, outer, inner, K tiles: WinPlan.tiles) of ``plan``'s
        ``(kt, nf, weights outer, mt)`` at the points ``at`` (of ``q``), through the pipeline of ``qp``."""
        kt, _nf, wo, mt, nn, nt, n_mt, n_nt, n_kt, a_reuse, b_reuse = tiles_of(at, plan)
        last = {"m": shape.ms_last[mt], "n": cout - (n_nt - 1) * nt, "k": planes[at] - (n_kt - 1) * kt}
        rows_of = {(True, True): shape.rows_single[mt], (True, False): shape.rows_first[mt],
                   (False, False): shape.rows_middle[mt], (False, True): shape.rows_last[mt]}
        bas, bbs, bcs = ba[at], bb[at], bc[at]

        def per_class(sel: Arr, qs: _Points) -> Tile4:
            def tile(place: tuple[bool, bool, bool, bool, bool, bool]) -> tuple[Arr, Arr, Arr]:
                _, m_first, m_last, n_first, n_last, kl = place
                ms = last["m"][sel] if m_last else mt[sel]
                ns = last["n"][sel] if n_last else nt[sel]
                ks = last["k"][sel] if kl else kt[sel]
                r = nn[sel]
                nfs = _cdiv(ns, r)
                wa = ks * rows_of[(m_first, m_last)][sel] * in_w
                wb = nfs * ks * taps * r
                load = (np.where(~a_reuse[sel] | n_first, wa * bas[sel], 0)
                        + np.where(~b_reuse[sel] | m_first, wb * bbs[sel], 0))
                store = nfs * ms * ow * bcs[sel] if kl else np.zeros(sel.size, I64)
                comp = _native(Dataflow.WS, r, r, ms * ow, ns, ks * taps * r) + GEMM_ISSUE_CYCLES + TILE_ISSUE_CYCLES
                return (load + store if qs.residual else load), comp, store

            return tile

        pro = prologue[at] + table[at] if qp.table else prologue[at]
        return _nest4_cycles(qp, (np.full(at.size, batch, I64), n_mt, n_nt, n_kt), wo, pro, per_class)

    g = layer.gemm(batch)
    assert g is not None
    macs = g.m * g.n * g.k * g.repeats
    gate_active = round(macs * layer.weights.density * layer.inputs.density * _inside(layer))
    c_elems = batch * oh * ow * cout
    a_reads = batch * oh * ow * planes * taps * out_planes
    psum_writes = c_elems * (planes * taps)
    psum_reads = np.maximum(0, psum_writes - c_elems)
    b_elems = cout * planes * taps * n

    def tail(at: Arr, plan: tuple[Arr, Arr, Arr, Arr], cyc: Arr, qa: _Points) -> tuple[dict[str, Arr], Arr]:
        """Energy and DRAM bits of ``plan`` at the points ``at`` (WinPlan.traffic_bytes, the counts of
        convplan.plan_layer_win: only the DRAM traffic depends on the plan) with ``cyc`` cycles."""
        _kt, _nf, _wo, mt, nn, _nt, n_mt, n_nt, _n_kt, a_reuse, b_reuse = tiles_of(at, plan)
        a_bytes = shape.rows_sum[mt] * in_w * planes[at] * ba[at] * np.where(a_reuse, 1, n_nt) * batch
        b_bytes = out_planes[at] * planes[at] * taps * nn * bb[at] * np.where(b_reuse, 1, n_mt) * batch
        c_bytes = out_planes[at] * (oh * ow) * bc[at] * batch
        load_bits = (a_bytes + b_bytes + prologue[at] + (table[at] if qa.table else 0)) * 8
        in_res = 0
        if qa.residual:  # mapping.residual_counts
            load_bits = load_bits + c_bytes * 8
            in_res = 2 * c_bytes * 8
        dram_bits = load_bits + c_bytes * 8
        active = np.where(qa.gate, gate_active, macs)
        gated = np.where(qa.gate, macs - gate_active, 0)
        ab = np.minimum(layer.inputs.bits, qa.abits)
        wbit = np.minimum(layer.weights.bits, qa.wbits)
        ob = np.minimum(layer.outputs.bits, qa.accb)
        energy = _energy(qa, active, gated, active * wbit,
                         macs * (ab + qa.accb) + b_elems[at] * wbit * np.maximum(1, nn // 2) * batch,
                         a_reads[at] * w["a_bits"][at] + a_bytes * 8 + in_res, b_elems[at] * wbit * batch + b_bytes * 8,
                         (psum_reads[at] * qa.accb + c_elems * ob) + psum_writes[at] * qa.accb, dram_bits,
                         np.full(at.size, (c_elems if qa.requantize else 0) + (c_elems if qa.table else 0), I64), cyc)
        return energy, dram_bits

    # convplan._exact_pick: each estimate's plan and the same with even bands, the best by the objective
    # (the layer alone: the choice does not depend on a residual add in its write-back), the first on a tie
    cands: list[tuple[Arr, Arr, Arr, Arr]] = []
    valid: list[Arr] = []
    for kt_, nf_, wo_, mt_ in picks:
        base = (kt_[idx], nf_[idx], wo_[idx], mt_[idx])
        even = _cdiv(oh, shape.n_mt[base[3]])
        for cand, ok in ((base, np.ones(npts, bool)),
                         ((*base[:3], even), (even != base[3]) & shape.allowed[even])):
            for prev, prev_ok in zip(cands, valid, strict=True):  # the same plan as an earlier candidate
                ok = ok & ~(prev_ok & np.logical_and.reduce([a == b for a, b in zip(cand, prev, strict=True)]))
            cands.append(cand)
            valid.append(ok)
    plain = dataclasses.replace(q, residual=False, act=False)
    best_key = np.full(npts, np.inf)
    best_tie = np.full(npts, np.inf)
    choice = np.zeros(npts, I64)
    best_cycles = np.zeros(npts, I64)
    for j, (cand, ok) in enumerate(zip(cands, valid, strict=True)):
        at = np.flatnonzero(ok)
        if at.size == 0:
            continue
        qa = plain.take(at)
        cyc = program(at, cand, qa)
        total = _sum_parts(tail(at, cand, cyc, qa)[0])
        if q.objective is Objective.LATENCY:
            key, tie = cyc.astype(np.float64), total
        elif q.objective is Objective.ENERGY:
            key, tie = total, cyc.astype(np.float64)
        else:
            key, tie = cyc * total, cyc.astype(np.float64)
        better = (key < best_key[at]) | ((key == best_key[at]) & (tie < best_tie[at]))
        best_key[at[better]], best_tie[at[better]] = key[better], tie[better]
        choice[at[better]] = j
        best_cycles[at[better]] = cyc[better]
    kt, nf, wo, mt = (np.choose(choice, [c[i] for c in cands]) for i in range(4))
    nt = np.where(nf == out_planes, cout, nf * n)
    # its own plan reads the input as one tile, or the input fits one slot (sim.residency.single_win_plan may
    # plan it so); the im2col points: not known here
    single = np.ones(p.rows.size, bool)
    single[idx] = (batch == 1) & (((shape.n_mt[mt] == 1) & (_cdiv(planes, kt) == 1))
                                  | (planes * layer.in_h * in_w <= w["sa"]))
    # (the layer alone was timed above; a residual add in its write-back changes its loads and stores)
    cycles = program(np.arange(npts), (kt, nf, wo, mt), q) if q.residual or q.table else best_cycles
    energy, dram_bits = tail(np.arange(npts), (kt, nf, wo, mt), cycles, q)
    # compute cycles: every (m, n, k) piece class times its count, per image
    compute = np.zeros(npts, I64)
    mp, np_, kp = _pieces(oh, mt), _pieces(cout, nt), _pieces(planes, kt)
    for ms, cm in ((mp[0], mp[1]), (mp[2], mp[3])):
        for ns, cn in ((np_[0], np_[1]), (np_[2], np_[3])):
            for ks, ck in ((kp[0], kp[1]), (kp[2], kp[3])):
                cnt = cm * cn * ck
                if cnt.any():
                    compute += np.where(cnt > 0, batch * cnt * comp_of(ms, ns, ks), 0)
    return dataclasses.replace(_merged(arr, idx, cycles, compute, energy, dram_bits), single=single)


# ---------------------------------------------------------------------------------------------
# networks
# ---------------------------------------------------------------------------------------------
def evaluate_network(network: Network, configs: Sequence[AcceleratorConfig]) -> list[Summary | None]:
    """``simulate_network(network, config, engine="closed_form").summary()`` of each config (the
    keys a sweep row takes), or None where the fast path declines the point."""
    out: list[Summary | None] = [None] * len(configs)
    # write-back fusions decided point by point: a max pool (sim.poolfuse), a depthwise layer (sim.dwfuse)
    has_pair = any((isinstance(ly, Pool) and ly.op is PoolKind.MAX) or _is_depthwise(ly) for ly in network.layers)
    by_df: dict[tuple[Any, ...], list[int]] = {}  # the formulas depend on these
    for i, c in enumerate(configs):
        if not declines(c):
            key = (c.dataflow, c.double_buffered, c.requantize, c.mapping, c.objective, c.depthwise_on_engine,
                   c.depthwise_kernel, c.vector_unit, c.conv_windows, _fuses(c))
            by_df.setdefault(key, []).append(i)
    for ids in by_df.values():
        cfgs = [configs[i] for i in ids]
        # the layers' fusion contexts (the same at every point of the group: sim.fusion.plan_network)
        roles = ["alone"] * len(network.layers)
        if _fuses(cfgs[0]):
            from codesign.sim.fusion import plan_network

            for i, ctx in enumerate(plan_network(network, cfgs[0], lambda _i: False)):  # (no residency)
                if ctx.writeback_add:
                    roles[i] = "fused" if ctx.fused else "head"
        # max pools in their convolutions' write-backs (sim.poolfuse): whether a pair fuses depends on each
        # point's buffers and array, so those layers are their own entries, evaluated the point-by-point way
        # (the closed form) at the points where they fuse
        special = [_special_contexts(network, c) if has_pair else None for c in cfgs]
        pooled = [{i: ctx for i, ctx in (ctxs or {}).items() if ctx.pool is not None or ctx.dw is not None}
                  for ctxs in special]
        for i in sorted({i for ctxs in pooled for i in ctxs}):
            roles[i] = f"pool{i}"
        # depthwise layers with a channel multiplier (sim.dwplan's N loop): evaluated the point-by-point way
        mults = [i for i, ly in enumerate(network.layers) if roles[i] == "alone" and _dw_multiplier(ly) > 1]
        for i in mults:
            roles[i] = f"mult{i}"
        shapes: dict[tuple[Layer, str], int] = {}
        order = []
        for layer, role in zip(network.layers, roles, strict=True):
            order.append(shapes.setdefault((dataclasses.replace(layer, name="layer"), role), len(shapes)))
        unique = list(shapes)
        p = _Points.of(cfgs)
        results = [_fused_layer(lay, network.batch, p) if role == "fused"
                   else _layer(lay, network.batch, dataclasses.replace(p, residual=role == "head",
                                                                       act=bool(lay.activation)))
                   for lay, role in unique]
        for i, role in enumerate(roles):
            if role.startswith("pool"):
                u = order[i]
                results[u] = _with_points(results[u], network.layers[i], network.batch, cfgs,
                                          {j: ctxs[i] for j, ctxs in enumerate(pooled) if i in ctxs})
        if mults:
            from codesign.sim.fusion import DEFAULT

            for i in mults:
                u = order[i]
                results[u] = _with_points(results[u], network.layers[i], network.batch, cfgs,
                                          dict.fromkeys(range(len(cfgs)), DEFAULT))
        # outputs kept in the input buffer for the next layer (sim.residency): the contexts at the points where
        # some edge may be resident (the plans the fast path chose say which layers may read their input as one
        # tile), each such layer a new entry, evaluated the point-by-point way where it is resident
        layers_u = [lay for lay, _ in unique]
        fused_u = [role == "fused" for _, role in unique]
        singles = [results[order[i]].single if role == "alone" else np.zeros(p.rows.size, bool)
                   for i, role in enumerate(roles)]
        for pt in np.flatnonzero(_maybe_resident(network, cfgs, p, singles)).tolist():
            if special[pt] is None:
                special[pt] = _special_contexts(network, cfgs[pt], functools.partial(_may_be_single, singles, pt))
        resident: dict[int, dict[int, Any]] = {}
        for j, ctxs in enumerate(special):
            for i, ctx in (ctxs or {}).items():
                if ctx.res_in or ctx.res_out or ctx.in_slot:
                    resident.setdefault(i, {})[j] = ctx
        for i, at in sorted(resident.items()):
            results.append(_with_points(results[order[i]], network.layers[i], network.batch, cfgs, at))
            layers_u.append(layers_u[order[i]])
            fused_u.append(fused_u[order[i]])
            order[i] = len(results) - 1
        for j, s in enumerate(_summaries(network, cfgs, p, results, order, layers_u, fused_u,
                                         [frozenset(order[i] for i in ctxs) for ctxs in pooled])):
            out[ids[j]] = s
    return out


def _special_contexts(network: Network, config: AcceleratorConfig,
                      maybe_single: Callable[[int], bool] | None = None) -> dict[int, Any]:
    """The layers of ``network`` in a built max-pool or depthwise fusion (sim.poolfuse, sim.dwfuse) or with a
    resident input or output
    (sim.residency) on ``config``, with their contexts."""
    from codesign.sim.residency import any_candidate

    pools = (config.pool_writeback or config.dw_writeback) and config.fusion is not Fusion.FULL
    if not (pools or any_candidate(list(network.layers), network.batch, config)):
        return {}
    from codesign.sim.fusion import plan_network

    return {i: ctx for i, ctx in enumerate(plan_network(network, config, maybe_single))
            if ctx.pool is not None or ctx.dw is not None or ctx.res_in or ctx.res_out or ctx.in_slot}


def _may_be_single(singles: list[Arr | None], point: int, layer: int) -> bool:
    """Whether layer ``layer``'s plan may read its input as one tile at ``point`` (``_LayerArrays.single``)."""
    s = singles[layer]
    return s is None or bool(s[point])


def _maybe_resident(network: Network, configs: Sequence[AcceleratorConfig], p: _Points,
                    single: list[Arr | None]) -> Arr:
    """Points where some layer's output may stay in the input buffer for the next (sim.residency's necessary
    conditions: the design builds it, the next layer its only reader, the output fits a slot, both layers run
    alone and their plans may read their input as one tile); ``single``: each layer's
    :attr:`_LayerArrays.single` (all False for a layer in a fusion)."""
    from codesign.sim.residency import in_use, structural_edges

    n = p.rows.size
    built = np.array([in_use(c) for c in configs], bool)
    out = np.zeros(n, bool)
    if not built.any():
        return out
    ones = np.ones(n, bool)
    layers = network.layers
    for i in structural_edges(network):
        ly = layers[i]
        fits = ly.output_elements(network.batch) * np.minimum(ly.outputs.bits, p.abits) <= p.in_sram * 4  # fits_a_slot
        a, b = single[i], single[i + 1]
        out |= fits & (ones if a is None else a) & (ones if b is None else b)
    return out & built


def _with_points(arr: _LayerArrays, layer: Layer, batch: int, configs: Sequence[AcceleratorConfig],
                 contexts: dict[int, Any]) -> _LayerArrays:
    """``arr`` with the point-by-point (closed-form) result of ``layer`` at the points ``contexts`` names."""
    from codesign.sim.engine import simulate_layer

    ok, cycles, compute, dram = arr.ok.copy(), arr.cycles.copy(), arr.compute.copy(), arr.dram_bits.copy()
    energy = {part: v.copy() for part, v in arr.energy.items()}
    for j, ctx in contexts.items():
        r = simulate_layer(layer, batch, configs[j], "native", "closed_form", ctx)
        ok[j], cycles[j], compute[j] = True, r.cycles, r.compute_cycles
        dram[j] = r.counts.dram_read_bits + r.counts.dram_write_bits
        for part in energy:
            energy[part][j] = r.energy_breakdown_pj[part]
    return _LayerArrays(ok, cycles, compute, energy, dram)


def _sum_parts(energy: dict[str, Arr]) -> Arr:
    """``sum(layer_energy(...).values())`` per point (the parts in the same order)."""
    total: Arr = sum(energy[part] for part in ENERGY_PARTS)  # type: ignore[assignment]
    return total


def _fused_layer(layer: Layer, batch: int, p: _Points) -> _LayerArrays:
    """A residual add built into its producer's write-back (``engine._fused_result``): its vector ops'
    energy, no cycles, no DRAM bytes of its own (the producer's DMA reads the residual)."""
    z = np.zeros(p.rows.size, I64)
    energy = _energy(p, z, z, z, z, z, z, z, z, np.full(p.rows.size, layer.vector_ops(batch), I64), z)
    return _LayerArrays(np.ones(p.rows.size, bool), z, z, energy, z)


def _summaries(network: Network, configs: Sequence[AcceleratorConfig], p: _Points, results: list[_LayerArrays],
               order: list[int], unique: list[Layer], fused: list[bool],
               pooled: list[frozenset[int]]) -> list[Summary | None]:
    from codesign.sim.engine import unfused_reasons
    from codesign.sim.tileplan import model_only_reason

    ok = np.logical_and.reduce([results[u].ok for u in order])
    cycles: Arr = sum((results[u].cycles for u in order), np.zeros(p.rows.size, I64))
    compute: Arr = sum((results[u].compute for u in order), np.zeros(p.rows.size, I64))
    # sums in the order of the point-by-point path (floats: the same roundings)
    layer_energy = [sum(results[u].energy[part] for part in ENERGY_PARTS) for u in range(len(unique))]
    energy: Arr = sum(layer_energy[u] for u in order)  # type: ignore[assignment,misc]
    parts: dict[str, Arr] = {part: sum(results[u].energy[part] for u in order)  # type: ignore[misc]
                             for part in ENERGY_PARTS}
    peak = np.zeros(cycles.size)
    for u in order:
        r = results[u]
        rate = np.where(r.cycles > 0, (r.dram_bits / 8) / np.maximum(r.cycles, 1), 0.0)
        peak = np.maximum(peak, rate)
    macs = sum(network.layers[i].macs(network.batch) for i in range(len(order)))
    reasons: dict[tuple[Any, ...], str] = {}
    cols = {
        "cycles": cycles.tolist(), "compute": compute.tolist(), "energy": energy.tolist(),
        **{part: v.tolist() for part, v in parts.items()}, "peak": peak.tolist(), "ok": ok.tolist(),
    }
    out: list[Summary | None] = []
    for i, cfg in enumerate(configs):
        if not cols["ok"][i]:
            out.append(None)
            continue
        key = (cfg.rows, cfg.cols, cfg.weight_bits, cfg.act_bits, cfg.acc_bits, cfg.dataflow, cfg.zero_handling,
               cfg.requantize, cfg.weight_signed, cfg.act_signed, cfg.output_sram_bytes, cfg.depthwise,
               cfg.depthwise_lanes, cfg.input_sram_bytes, cfg.weight_sram_bytes, cfg.double_buffered,
               cfg.depthwise_kernel, cfg.vector_unit, cfg.vector_lanes, pooled[i])
        mo = reasons.get(key)
        if mo is None:  # the engine's network label: each layer's distinct reasons, in layer order
            design = model_only_reason(cfg)
            # (a max pool in its convolution's write-back: the fused layer's label, sim.engine.layer_model_only)
            per_layer = [design if f or (u in pooled[i] and isinstance(lay, Pool))
                         else "; ".join(unfused_reasons(lay, cfg, design))
                         for u, (lay, f) in enumerate(zip(unique, fused, strict=True))]
            seen: dict[str, None] = {}
            for u in order:
                for part in per_layer[u].split("; "):
                    if part:
                        seen.setdefault(part)
            mo = reasons[key] = "; ".join(seen)
        cyc = cols["cycles"][i]
        e = cols["energy"][i]
        s: Summary = {
            "macs": macs, "cycles": cyc, "compute_cycles": cols["compute"][i], "stall_cycles": cyc - cols["compute"][i],
            "latency_ms": cyc / (cfg.clock_mhz * 1e3), "energy_pj": e, "energy_uj": e * 1e-6, "edp": e * cyc,
            "utilization": macs / (cyc * cfg.pes) if cyc else 0.0, "peak_dram_bytes_per_cycle": cols["peak"][i],
            "model_only": mo,
        }
        for part in ENERGY_PARTS:
            s[f"energy_{part}_pj"] = cols[part][i]
        out.append(s)
    return out
