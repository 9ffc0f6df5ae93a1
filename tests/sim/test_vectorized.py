"""The numpy twins equal the scalar tiling plan: tile runs (with and without a fusion context),
block words, native cycles and DMA cycles."""

from __future__ import annotations

import numpy as np
import pytest

from codesign.sim import vectorized as V
from codesign.sim.config import AcceleratorConfig
from codesign.sim.search import candidates
from codesign.sim.tileplan import (
    DMA_READ_OVERHEAD_CYCLES,
    _tile_runs,
    dma_read_cycles,
    plan_tiles,
    tile_compute_cycles,
)
from codesign.sim.timing import ceil_div
from codesign.workloads import zoo

CONFIGS = [AcceleratorConfig(rows=r, cols=c, dataflow=df, input_sram_bytes=8192, dram_bytes_per_cycle=bw)
           for df in ("ws", "os", "is") for r, c, bw in ((8, 8, 8.0), (16, 4, 3.0))]


def _reference_context_runs(plan, cfg, a_onchip, c_onchip, extra):
    """The tile program walked in Python with the fusion context applied tile by tile."""
    total = sum(plan.tile_transfers(t)[1] for t in plan.tiles())
    runs: list[list[int]] = []
    for t in plan.tiles():
        ba, bb, bc = plan.block_bytes(t.ms, t.ns, t.ks)
        load = t.gs * ((ba if t.load_a and not a_onchip else 0) + (bb if t.load_b else 0))
        store = t.gs * bc if t.k0 + t.ks >= plan.gemm.k else 0
        add = ceil_div(store * extra, total) if store and extra else 0
        store = (0 if c_onchip else store) + add
        cyc = tile_compute_cycles(cfg, t.gs, t.ms, t.ns, t.ks)
        if runs and runs[-1][1:] == [load, store, cyc]:
            runs[-1][0] += 1
        else:
            runs.append([1, load, store, cyc])
    return tuple(tuple(r) for r in runs)


@pytest.mark.parametrize("cfg", CONFIGS, ids=lambda c: f"{c.dataflow}-{c.rows}x{c.cols}")
def test_tile_runs_equal_the_plan(cfg) -> None:
    """Every GEMM layer of MobileNetV2's first blocks and DeiT's first block, the fixed plan and
    six searched candidates each (both loop orders, ragged edges, packed groups)."""
    layers = zoo.get("mobilenet_v2").layers[:14] + zoo.get("deit_tiny").layers[:7]
    checked = 0
    for layer in layers:
        g = layer.gemm(1)
        if g is None:
            continue
        for plan in candidates(plan_tiles(g, cfg), cfg)[:7]:
            if plan.tile_count > 2000:
                continue
            assert V.tile_runs(plan, cfg) == _tile_runs.__wrapped__(plan, cfg)
            checked += 1
    assert checked > 12


@pytest.mark.parametrize(("a_onchip", "c_onchip", "extra"), [(True, False, 0), (False, True, 0), (False, False, 777),
                                                              (True, True, 100)])
def test_tile_runs_in_a_fusion_context(a_onchip, c_onchip, extra) -> None:
    cfg = CONFIGS[0]
    for layer in zoo.get("mobilenet_v2").layers[4:10]:
        g = layer.gemm(1)
        if g is None:
            continue
        for plan in candidates(plan_tiles(g, cfg), cfg)[:6]:
            if plan.tile_count > 3000:
                continue
            got = V.tile_runs(plan, cfg, a_onchip=a_onchip, c_onchip=c_onchip, extra_store_bytes=extra)
            assert got == _reference_context_runs(plan, cfg, a_onchip, c_onchip, extra)


def test_elementwise_helpers() -> None:
    cfg = AcceleratorConfig(rows=4, cols=8, dataflow="os", dram_bytes_per_cycle=3.0, dram_latency_cycles=7)
    m, n, k = np.array([1, 5, 33]), np.array([9, 1, 64]), np.array([2, 17, 5])
    geo = plan_tiles(zoo.get("resnet18").layers[0].gemm(1), cfg).geometry
    assert [tuple(int(x[i]) for x in V.words(geo, m, n, k)) for i in range(3)] == [
        geo.words(int(m[i]), int(n[i]), int(k[i])) for i in range(3)]
    assert V.tile_compute(cfg, np.array([1, 2, 3]), m, n, k).tolist() == [
        tile_compute_cycles(cfg, gs, int(m[i]), int(n[i]), int(k[i])) for i, gs in enumerate((1, 2, 3))]
    b = np.array([0, 1, 47, 4096])
    assert V.dma_cycles(cfg, b, DMA_READ_OVERHEAD_CYCLES).tolist() == [dma_read_cycles(int(x), cfg) for x in b]


def test_twins_over_design_points() -> None:
    """``words_at`` / ``native_at`` with one array size per element (the fast path's design points)
    equal the scalar geometry and timing of each point's own config."""
    from codesign.sim.timing import native_gemm_cycles

    rows, cols = np.array([4, 8, 12, 64]), np.array([16, 8, 3, 64])
    m, n, k = np.array([1, 100, 37, 4096]), np.array([9, 1, 64, 33]), np.array([2, 17, 5, 1000])
    for df in ("ws", "os", "is"):
        cfgs = [AcceleratorConfig(rows=int(r), cols=int(c), dataflow=df) for r, c in zip(rows, cols, strict=True)]
        got = V.words_at(cfgs[0].dataflow, rows, cols, m, n, k)
        for i, cfg in enumerate(cfgs):
            geo = plan_tiles(zoo.get("resnet18").layers[0].gemm(1), cfg).geometry
            assert tuple(int(x[i]) for x in got) == geo.words(int(m[i]), int(n[i]), int(k[i]))
        assert V.native_at(cfgs[0].dataflow, rows, cols, m, n, k).tolist() == [
            native_gemm_cycles(cfg, int(m[i]), int(n[i]), int(k[i])) for i, cfg in enumerate(cfgs)]
