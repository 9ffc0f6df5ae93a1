"""The mapping search (:mod:`codesign.sim.search`) on the sweep's fast path: numpy over the design
points and all their candidate plans at once.

For each point the candidates are those of :func:`codesign.sim.search.candidates`, in the same
order (the fixed plan first, then the sizes in ascending order with both loop orders, then the
packed groups); their energies and cycle bounds come from the search's own
:func:`~codesign.sim.search.dependent_energy` and :func:`~codesign.sim.search.cycle_bounds` (run on
arrays over the candidates of every point), and the branch and bound takes the same steps as
:func:`~codesign.sim.search.search`: round ``r`` evaluates, at every point still searching, its
``r``-th candidate by bound, exactly (the fast path's pipeline and counts), unless its bound is no
better than the best found, for at most :data:`~codesign.sim.search.MAX_EXACT` rounds. Ties keep
the earlier candidate, as there. Rounds are evaluated in batches (4, 8, 16, ... rounds in one
call, every candidate whose bound is below the best before the batch) and then replayed one by
one, so the steps and the result are those of the one-at-a-time search; a few candidates are
evaluated that it would have pruned, for far fewer calls.
"""

from __future__ import annotations

from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import numpy as np

from codesign.sim import search as S
from codesign.sim import vectorized as V
from codesign.sim.result import ENERGY_PARTS
from codesign.sim.tileplan import DMA_READ_OVERHEAD_CYCLES

I64 = np.int64
Arr = np.ndarray


def _values(d: int, q: Arr, fixed: Arr) -> tuple[Arr, Arr]:
    """``search._values(d, q, fixed)`` of every point: the sizes (ascending, padded with ``d + 1``)
    and how many there are."""
    cols = [np.full(q.size, d, I64), fixed]
    x = q.copy()
    while (x < d).any():
        cols.append(np.where(x < d, x, 0))
        x = x * 2
    for j in S._SPLITS:
        v = V.cdiv(V.cdiv(d, j), q) * q
        cols.append(np.where(v < d, v, 0))
    big = d + 1
    a = np.stack(cols, axis=1)
    a = np.where((a >= 1) & (a <= d), a, big)
    a.sort(axis=1)
    dup = np.zeros(a.shape, bool)
    dup[:, 1:] = a[:, 1:] == a[:, :-1]
    a = np.where(dup, big, a)
    a.sort(axis=1)
    return a, (a <= d).sum(axis=1)


def _fitting(df: Any, r: Arr, c: Arr, m_vals: tuple[Arr, Arr], n_vals: tuple[Arr, Arr], k_vals: tuple[Arr, Arr],
             fixed: dict[str, Arr]) -> tuple[Arr, Arr, Arr, Arr]:
    """``(owner, mt, nt, kt)`` of the sizes whose blocks fit the slots, point after point and in
    each point M, then N, then K ascending (the order of ``search.candidates``).

    A block's words are a product of one factor per dimension (``search._WORD_FACTORS``), each
    nondecreasing, so for a pair ``(mt, nt)`` the fitting ``kt`` are a prefix of the ascending K
    sizes: the smaller of the prefixes A's and B's slots allow. Only fitting plans are made."""
    (ms, cm), (ns, cn), (ks, ck) = m_vals, n_vals, k_vals
    rr, cc = r[:, None], c[:, None]

    def f(kind: str, v: Arr) -> Arr:
        return S.word_factor(kind, v, rr, cc)  # type: ignore[no-any-return]

    (_, am), (_, ak) = S._WORD_FACTORS[df][0]
    (_, bn), (_, bk) = S._WORD_FACTORS[df][1]
    (_, cmk), (_, cnk) = S._WORD_FACTORS[df][2]
    in_m = np.arange(ms.shape[1])[None, :] < cm[:, None]
    in_n = np.arange(ns.shape[1])[None, :] < cn[:, None]
    in_k = np.arange(ks.shape[1])[None, :] < ck[:, None]
    sa, sb, sc = fixed["sa"][:, None], fixed["sb"][:, None], fixed["sc"][:, None]
    ak_v, bk_v = np.where(in_k, f(ak, ks), np.iinfo(I64).max), np.where(in_k, f(bk, ks), np.iinfo(I64).max)
    # K sizes A's slot allows beside each M size, B's beside each N size (factors are >= 1)
    lim_a = sa // np.maximum(f(am, ms), 1)
    lim_b = sb // np.maximum(f(bn, ns), 1)
    k_for_m = (ak_v[:, None, :] <= lim_a[:, :, None]).sum(axis=2)
    k_for_n = (bk_v[:, None, :] <= lim_b[:, :, None]).sum(axis=2)
    n_k = np.minimum(k_for_m[:, :, None], k_for_n[:, None, :])  # (point, M size, N size)
    c_fits = f(cmk, ms)[:, :, None] * f(cnk, ns)[:, None, :] <= sc[:, :, None]
    ok = in_m[:, :, None] & in_n[:, None, :] & c_fits & (n_k > 0)
    pt, im, jn = np.nonzero(ok)  # point, then M, then N: row-major
    count = n_k[pt, im, jn]
    rep = np.repeat(np.arange(pt.size), count)
    kk = np.arange(rep.size) - np.repeat(np.cumsum(count) - count, count)
    owner = pt[rep]
    return owner, ms[owner, im[rep]], ns[owner, jn[rep]], ks[owner, kk]


def _candidates(g: Any, p: Any, fixed: dict[str, Arr]) -> dict[str, Arr]:
    """Every point's candidates, point after point, each point's in the order of
    ``search.candidates`` (``owner``: the point; ``first``: the fixed plan)."""
    npts = p.rows.size
    df, r, c = p.df, p.rows, p.cols
    one = np.ones_like(r)
    if df.value == "ws":
        qm, qn, qk = one, c, r
    elif df.value == "os":
        qm, qn, qk = r, c, one
    else:
        qm, qn, qk = c, one, r
    ms, cm = _values(g.m, qm, fixed["mt"])
    ns, cn = _values(g.n, qn, fixed["nt"])
    ks, ck = _values(g.k, qk, fixed["kt"])
    owner, mt, nt, kt = _fitting(df, r, c, (ms, cm), (ns, cn), (ks, ck), fixed)
    owner, mt, nt, kt = (np.repeat(a, 2) for a in (owner, mt, nt, kt))
    wo = np.tile(np.array([True, False]), owner.size // 2)
    gt = np.ones_like(mt)
    parts = [(np.arange(npts), fixed["gt"], fixed["mt"], fixed["nt"], fixed["kt"], fixed["wo"], 0),
             (owner, gt, mt, nt, kt, wo, 1)]
    if g.repeats > 1:
        wa, wb, wc = V.words_at(df, r, c, g.m, g.n, g.k)
        whole = (wa <= fixed["sa"]) & (wb <= fixed["sb"]) & (wc <= fixed["sc"])
        gmax = np.maximum(1, np.minimum(np.minimum(np.minimum(g.repeats, fixed["sa"] // np.maximum(1, wa)),
                                                   fixed["sb"] // np.maximum(1, wb)), fixed["sc"] // np.maximum(1, wc)))
        x = 2
        while x <= g.repeats:
            for w in (True, False):
                own = np.flatnonzero(whole & (x <= gmax))
                full = np.full(own.size, 1, I64)
                parts.append((own, full * x, full * g.m, full * g.n, full * g.k, np.full(own.size, w), 2))
            x *= 2
    cols = [np.concatenate([part[i] for part in parts]) for i in range(6)]
    section = np.concatenate([np.full(part[0].size, part[6]) for part in parts])
    own, gt, mt, nt, kt, wo = cols
    is_fixed = ((gt == fixed["gt"][own]) & (mt == fixed["mt"][own]) & (nt == fixed["nt"][own])
                & (kt == fixed["kt"][own]) & (wo == fixed["wo"][own]))
    keep = np.flatnonzero((section == 0) | ~is_fixed)  # the fixed plan once, first
    # by point; within a point by section, then position (the order they were made in: stable)
    idx = keep[np.argsort(own[keep], kind="stable")]
    out = {name: v[idx] for name, v in zip(("owner", "gt", "mt", "nt", "kt", "wo"), cols, strict=True)}
    out["first"] = section[idx] == 0
    return out


def _arrays(g: Any, p: Any, fixed: dict[str, Arr], cand: dict[str, Arr]) -> Any:
    """A :class:`codesign.sim.search._Arrays` over the candidates of all points (each with its
    point's array, buffers and DRAM)."""
    o = cand["owner"]
    cfg = SimpleNamespace(dataflow=p.df, rows=p.rows[o], cols=p.cols[o], dram_latency_cycles=p.lat[o],
                          dram_bytes_per_cycle=p.bw[o])
    x = object.__new__(S._Arrays)
    x.cfg = cfg
    x.geo = SimpleNamespace(dataflow=p.df, rows=cfg.rows, cols=cfg.cols)
    x.gemm = g
    x.gt, x.mt, x.nt, x.kt, x.wo = cand["gt"], cand["mt"], cand["nt"], cand["kt"], cand["wo"]
    x.word_bytes = (fixed["ba"][o], fixed["bb"][o], fixed["bc"][o])
    x.n_mt, x.n_nt, x.n_kt = V.cdiv(g.m, x.mt), V.cdiv(g.n, x.nt), V.cdiv(g.k, x.kt)
    prologue = fixed["prologue"][o]
    x.prologue = np.where(prologue > 0, DMA_READ_OVERHEAD_CYCLES + cfg.dram_latency_cycles
                          + np.ceil(prologue / cfg.dram_bytes_per_cycle).astype(I64), 0)
    x.write_overhead = p.write_overhead
    one_k = x.n_kt == 1
    x.a_reuse = np.where(x.wo, (x.n_mt == 1) & one_k, one_k)
    x.b_reuse = np.where(x.wo, one_k, (x.n_nt == 1) & one_k)
    return x


def _energy_pj(result: Any) -> Arr:
    return sum(result.energy[part] for part in ENERGY_PARTS)  # type: ignore[return-value]


Eval = Callable[[Any, Any, Any, dict[str, Arr]], Any]
Complete = Callable[..., dict[str, Arr]]


def search_plans(layer: Any, g: Any, p: Any, fixed: dict[str, Arr], fixed_result: Any, gemm_eval: Eval,
                 complete: Complete) -> dict[str, Arr]:
    """The searched plan of ``layer`` at every point (``mapping._search``), as plan arrays."""
    npts = p.rows.size
    obj = p.objective
    fixed_cycles, fixed_energy = fixed_result.cycles, _energy_pj(fixed_result)
    cand = _candidates(g, p, fixed)
    o = cand["owner"]
    x = _arrays(g, p, fixed, cand)
    ab = np.minimum(layer.inputs.bits, p.abits)[o]
    wb = np.minimum(layer.weights.bits, p.wbits)[o]
    ob = np.minimum(layer.outputs.bits, p.accb)[o]
    m, n, k, reps = g.m, g.n, g.k, g.repeats
    em: Any = S.EnergyModel(a_elems=m * k * reps, b_elems=k * n * reps, c_elems=m * n * reps, k=k, keff=k,
                            ab=ab, wb=wb, ob=ob, accb=p.accb[o], meta_bits=0,  # type: ignore[arg-type]
                            e_in=p.e_in[o], e_w=p.e_w[o], e_out=p.e_out[o], e_dram=p.e_dram[o],
                            leak_per_cycle=p.leak[o])
    dep = S.dependent_energy(x, em)
    first = np.flatnonzero(cand["first"])  # the fixed plan of each point (points in order)
    e_static = fixed_energy - fixed_cycles * p.leak - dep[first]
    e_dyn = e_static[o] + dep
    lb_cycles = S.cycle_bounds(x)
    lb_obj = np.asarray(S._objective(obj, e_dyn + em.leak_per_cycle * lb_cycles, lb_cycles), dtype=float)
    lb_obj *= 1 - 1e-9
    best = np.asarray(S._objective(obj, fixed_energy, fixed_cycles), dtype=float)
    best_i = first.copy()
    # each point's other candidates by bound (stable: ties in candidate order)
    # (candidates whose bound is no better than the fixed plan's value are never evaluated)
    rest = np.flatnonzero(~cand["first"] & (lb_obj < best[o]))
    ordered = rest[np.lexsort((lb_obj[rest], o[rest]))]  # stable: ties in candidate order
    seg_len = np.bincount(o[ordered], minlength=npts)
    seg_start = np.cumsum(seg_len) - seg_len
    alive = np.ones(npts, bool)
    rnd, batch = 0, 4
    while rnd < S.MAX_EXACT:
        # the next `batch` rounds at once: every candidate the rounds could evaluate (its bound below
        # the best so far) in one exact evaluation, then the rounds replayed in order on the values
        width = min(batch, S.MAX_EXACT - rnd)
        pts = np.flatnonzero(alive & (rnd < seg_len))
        if pts.size == 0:
            break
        j = np.arange(width)
        slot = rnd + j[None, :]
        valid = slot < seg_len[pts][:, None]
        ci = ordered[np.minimum(seg_start[pts][:, None] + slot, max(0, ordered.size - 1))]
        valid &= lb_obj[ci] < best[pts][:, None]
        sel_p, sel_j = np.nonzero(valid)
        val = np.full((pts.size, width), np.inf)
        if sel_p.size:
            pi, cj = pts[sel_p], ci[sel_p, sel_j]
            q = p.take(pi)
            sub = {name: fixed[name][pi] for name in ("sa", "sb", "sc")}
            sub.update(mt=cand["mt"][cj], nt=cand["nt"][cj], kt=cand["kt"][cj], gt=cand["gt"][cj])
            res = gemm_eval(layer, g, q, complete(g, q, sub, cand["wo"][cj]))
            val[sel_p, sel_j] = np.asarray(S._objective(obj, _energy_pj(res), res.cycles), dtype=float)
        live = np.ones(pts.size, bool)
        for col in range(width):  # the rounds, as the one-at-a-time search takes them
            live &= rnd + col < seg_len[pts]
            c = ci[:, col]
            go = live & (lb_obj[c] < best[pts])  # bounded: a bound no better than the best ends the search
            alive[pts[live & ~go]] = False
            live &= go
            better = live & (val[:, col] < best[pts])
            best[pts[better]] = val[better, col]
            best_i[pts[better]] = c[better]
        rnd += width
        batch *= 2
    plan = {name: fixed[name] for name in ("sa", "sb", "sc", "ok")}
    plan.update(mt=cand["mt"][best_i], nt=cand["nt"][best_i], kt=cand["kt"][best_i], gt=cand["gt"][best_i])
    return complete(g, p, plan, cand["wo"][best_i])
