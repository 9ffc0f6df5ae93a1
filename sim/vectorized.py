"""Numpy twins of the tiling plan's per-tile arithmetic (over arrays of tiles or of plans).

* :func:`words`, :func:`native_cycles`, :func:`dma_cycles`: ``WordGeometry.words``,
  ``timing.native_gemm_cycles`` and ``tileplan.dma_read_cycles``/``dma_write_cycles`` element-wise.
* :func:`tile_runs`: ``TilePlan.tile_runs`` without a Python loop over the tiles: the tile program
  (G blocks, outer, inner and K loops) as a broadcast array, run-length encoded with numpy.

Tests hold each equal to the scalar original (``tests/sim/test_vectorized.py``).
"""

from __future__ import annotations

import numpy as np

from codesign.sim.config import AcceleratorConfig, Dataflow
from codesign.sim.tileplan import GEMM_ISSUE_CYCLES, TILE_ISSUE_CYCLES, TilePlan, WordGeometry
from codesign.sim.timing import PE_PRODUCT_CYCLES

I64 = np.int64


def cdiv(a: np.ndarray | int, b: np.ndarray | int) -> np.ndarray:
    """``ceil(a / b)`` of integers, ``b > 0``."""
    return np.asarray(-(-a // b))


def words(geo: WordGeometry, m: np.ndarray, n: np.ndarray, k: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Buffer words (A, B, C) of ``[m, k] @ [k, n]`` blocks (``WordGeometry.words``)."""
    return words_at(geo.dataflow, geo.rows, geo.cols, m, n, k)


def words_at(df: Dataflow, r: np.ndarray | int, c: np.ndarray | int, m: np.ndarray | int, n: np.ndarray | int,
             k: np.ndarray | int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`words` on arrays of ``rows x cols`` too (one design point per element)."""
    if df is Dataflow.WS:
        kf = cdiv(k, r)
        return kf * m, kf * cdiv(n, c) * r, cdiv(n, c) * m
    if df is Dataflow.OS:
        mf, nf = cdiv(m, r), cdiv(n, c)
        return mf * k, nf * k, mf * nf * r
    kf = cdiv(k, r)
    return kf * cdiv(m, c) * r, kf * n, cdiv(m, c) * n


def block_bytes(plan: TilePlan, m: np.ndarray, n: np.ndarray, k: np.ndarray) -> tuple[np.ndarray, ...]:
    """DRAM bytes (bus beats) of the A, B, C blocks (``TilePlan.block_bytes``)."""
    wa, wb, wc = words(plan.geometry, m, n, k)
    pa, pb, pc = plan.beats_per_word
    bus = plan.bus_bytes
    return wa * (pa * bus), wb * (pb * bus), wc * (pc * bus)


def native_cycles(config: AcceleratorConfig, m: np.ndarray, n: np.ndarray, k: np.ndarray) -> np.ndarray:
    """``timing.native_gemm_cycles`` element-wise."""
    return native_at(config.dataflow, config.rows, config.cols, m, n, k)


def native_at(df: Dataflow, r: np.ndarray | int, c: np.ndarray | int, m: np.ndarray, n: np.ndarray,
              k: np.ndarray) -> np.ndarray:
    """:func:`native_cycles` on arrays of ``rows x cols`` too (one design point per element)."""
    if df is Dataflow.WS:
        sr, sc, t = k, n, m
    elif df is Dataflow.OS:
        sr, sc, t = m, n, k
    else:
        sr, sc, t = k, m, n
    folds = cdiv(sr, r) * cdiv(sc, c)
    if df is Dataflow.OS:
        period = np.maximum(t, np.maximum(r, c))
        tail = period + r + c
    else:
        period = np.maximum(t, r)
        tail = t + r + c + PE_PRODUCT_CYCLES
    return 1 + (folds - 1) * period + tail


def tile_compute(config: AcceleratorConfig, gs: np.ndarray, m: np.ndarray, n: np.ndarray, k: np.ndarray) -> np.ndarray:
    """``tileplan.tile_compute_cycles`` element-wise."""
    return gs * (native_cycles(config, m, n, k) + GEMM_ISSUE_CYCLES) + TILE_ISSUE_CYCLES


def dma_cycles(config: AcceleratorConfig, nbytes: np.ndarray, overhead: int) -> np.ndarray:
    """``tileplan.dma_read_cycles`` / ``dma_write_cycles`` element-wise (0 for nothing)."""
    cyc = overhead + config.dram_latency_cycles + np.ceil(nbytes / config.dram_bytes_per_cycle).astype(I64)
    return np.where(nbytes > 0, cyc, 0)


def tile_arrays(plan: TilePlan, config: AcceleratorConfig, *, a_onchip: bool = False,
                c_onchip: bool = False, extra_store_bytes: int = 0,
                residual: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(load_bytes, store_bytes, compute_cycles)`` of every tile in execution order; with a
    resident input no A loads, with a resident output no stores, ``extra_store_bytes`` spread over
    the stores in proportion (``ceil``), as :func:`codesign.sim.mapping._context_runs` does; with a
    built residual add (``residual``) a storing tile's load also reads the residual's blocks, as many
    bytes as its store."""
    g = plan.gemm

    def sizes(total: int, tile: int) -> np.ndarray:
        idx = np.arange(-(-total // tile), dtype=I64)
        return np.minimum(tile, total - idx * tile)

    gs, ms, ns, ks = sizes(g.repeats, plan.gt), sizes(g.m, plan.mt), sizes(g.n, plan.nt), sizes(g.k, plan.kt)
    n_first = np.arange(ns.size) == 0
    m_first = np.arange(ms.size) == 0
    k_last = np.arange(ks.size) == ks.size - 1
    # axes: (G, outer, inner, K)
    if plan.weights_outer:
        M = ms[None, None, :, None]
        N = ns[None, :, None, None]
        mf, nf = m_first[None, None, :, None], n_first[None, :, None, None]
    else:
        M = ms[None, :, None, None]
        N = ns[None, None, :, None]
        mf, nf = m_first[None, :, None, None], n_first[None, None, :, None]
    G = gs[:, None, None, None]
    K = ks[None, None, None, :]
    kl = k_last[None, None, None, :]
    ba, bb, bc = block_bytes(plan, M, N, K)
    load_a = (not plan.a_reuse) | nf
    load_b = (not plan.b_reuse) | mf
    shape = np.broadcast_shapes(G.shape, M.shape, N.shape, K.shape)
    load = G * (np.where(load_a & (not a_onchip), ba, 0) + np.where(load_b, bb, 0))
    store = np.where(kl, G * bc, 0)
    if residual:
        load = load + store
    comp = tile_compute(config, G, M, N, K)
    load, store, comp = (np.broadcast_to(x, shape).ravel() for x in (load, store, comp))
    out = np.zeros_like(store) if c_onchip else store
    if extra_store_bytes:
        total = int(store.sum())
        out = out + np.where(store > 0, -(-(store * extra_store_bytes) // max(1, total)), 0)
    return load, out, comp


def rle(load: np.ndarray, store: np.ndarray, comp: np.ndarray) -> tuple[tuple[int, int, int, int], ...]:
    """Run-length encoding ``(count, load, store, compute)`` of equal consecutive tiles."""
    n = load.size
    if n == 0:
        return ()
    change = np.empty(n, bool)
    change[0] = True
    change[1:] = (load[1:] != load[:-1]) | (store[1:] != store[:-1]) | (comp[1:] != comp[:-1])
    starts = np.flatnonzero(change)
    counts = np.diff(np.append(starts, n))
    return tuple(zip(counts.tolist(), load[starts].tolist(), store[starts].tolist(), comp[starts].tolist(),
                     strict=True))


def tile_runs(plan: TilePlan, config: AcceleratorConfig, **context: object) -> tuple[tuple[int, int, int, int], ...]:
    """``TilePlan.tile_runs`` (with the fusion context of :func:`tile_arrays`), vectorized."""
    return rle(*tile_arrays(plan, config, **context))  # type: ignore[arg-type]
