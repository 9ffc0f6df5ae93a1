"""The SimPy tile pipeline: closed-form known answers, and its closed-form twin held equal."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from codesign.sim.config import AcceleratorConfig
from codesign.sim.engine import (
    data_end,
    load_cycles,
    pipeline_closed_form,
    pipeline_simpy,
    simulate_gemm_on_chip,
    simulate_layer,
    store_cycles,
)
from codesign.sim.mapping import TileRun
from codesign.sim.timing import native_gemm_cycles
from codesign.workloads.layers import Conv2d, Linear

# accumulator write-back (requantize false): a store's fixed cycles are 3 + latency, like a load's
CFG = AcceleratorConfig(rows=16, cols=16, dram_bytes_per_cycle=16.0, dram_latency_cycles=100, requantize=False)
BOTH = (pipeline_simpy, pipeline_closed_form)


def test_transfer_cycles() -> None:
    # the DMA's published cost: 3 (decision, command register, read address) or 3 (decision, command
    # register, response) + latency + ceil(bytes / bandwidth); nothing to move takes no time
    assert load_cycles(512, CFG) == 3 + 100 + 32
    assert load_cycles(17, CFG) == 3 + 100 + 2
    assert store_cycles(512, CFG) == 3 + 100 + 32
    assert load_cycles(0, CFG) == 0 and store_cycles(0, CFG) == 0
    assert load_cycles(10, CFG.replace(dram_bytes_per_cycle=1.5, dram_latency_cycles=3)) == 3 + 3 + 7


@pytest.mark.parametrize("pipeline", BOTH)
def test_single_tile_is_load_compute_store(pipeline) -> None:
    pt = pipeline([TileRun(1, load_bytes=512, store_bytes=256, compute_cycles=77)], CFG)
    assert pt.cycles == (3 + 100 + 32) + 77 + (3 + 100 + 16)
    assert pt.compute_cycles == 77 and pt.stall_cycles == 135 + 119


@pytest.mark.parametrize("pipeline", BOTH)
def test_compute_bound_double_buffered(pipeline) -> None:
    # c >= l + s: the array never waits after the first load: l + n*c + s
    n, l_bytes, s_bytes, c = 40, 160, 80, 500
    l, s = load_cycles(l_bytes, CFG), store_cycles(s_bytes, CFG)
    assert c >= l + s
    assert pipeline([TileRun(n, l_bytes, s_bytes, c)], CFG).cycles == l + n * c + s


@pytest.mark.parametrize("pipeline", BOTH)
def test_memory_bound_double_buffered(pipeline) -> None:
    # reads and writes at once, and a load's address and latency hidden behind the previous load's data
    # (two read commands in the DMA): after the first load and compute (l + c), the stores run back to
    # back, each s = 3 + 100 + 50 cycles (the write response's latency is not hidden), while the loads need
    # only their 100 data cycles plus the 50 a store's data takes from the bus: n * s + l + c (one command
    # at a time took n * (l + s) = 8900; reads one at a time beside the writes n * l + c + s = 5278)
    n, l_bytes, s_bytes, c = 25, 1600, 800, 50
    l, s = load_cycles(l_bytes, CFG), store_cycles(s_bytes, CFG)
    assert c <= min(l, s) and l_bytes // 16 + s_bytes // 16 < s
    assert pipeline([TileRun(n, l_bytes, s_bytes, c)], CFG).cycles == n * s + l + c == 4078


@pytest.mark.parametrize("pipeline", BOTH)
def test_single_buffered_store_overlaps_next_load(pipeline) -> None:
    # one slot: tile k+1 loads once tile k is computed, while tile k is stored (its 4 data cycles come
    # before the load's data phase); tile k+1 computes once both are done: l >= s, so n * (l + c) + s
    cfg = CFG.replace(double_buffered=False)
    n, l_bytes, s_bytes, c = 7, 320, 64, 90
    l, s = load_cycles(l_bytes, cfg), store_cycles(s_bytes, cfg)
    assert l >= s
    assert pipeline([TileRun(n, l_bytes, s_bytes, c)], cfg).cycles == n * (l + c) + s


def test_read_data_takes_the_cycles_writes_leave() -> None:
    # the write channel has the bus first: a read needing 30 data cycles from cycle 10 uses 10..19,
    # waits out the write data phase 20..24, uses 25..39, waits 40..49, and its last 5 cycles end at 55
    assert data_end(10, 30, [(20, 25), (40, 50)]) == 55
    assert data_end(0, 5, [(5, 9)]) == 5  # done as the write data starts
    assert data_end(3, 4, [(0, 6)]) == 10  # starts inside a write data phase
    assert data_end(3, 4, [(7, 7)]) == 7  # an empty phase (a tile without a store) is no phase


@pytest.mark.parametrize("pipeline", BOTH)
def test_load_data_waits_for_a_store_data_phase(pipeline) -> None:
    # single-buffered, 2 tiles, no latency: tile 0 loads 0..102 (1600 B: 3 cycles, then 100 of data) and
    # computes 103..112; then the store of tile 0 (two cycles' lead, data 115..314, the response: ends at
    # 316) and the load of tile 1 (its data due from 116, it waits for the store's and takes 315..414) run at
    # once; tile 1 computes 415..424 and stores 425..627 (203 cycles alone): 628 cycles, against
    # 2 * (103 + 10 + 203) = 632 with one command at a time
    cfg = CFG.replace(double_buffered=False, dram_latency_cycles=0)
    pt = pipeline([TileRun(2, 1600, 3200, 10)], cfg)
    assert (load_cycles(1600, cfg), store_cycles(3200, cfg)) == (103, 203)
    assert pt.cycles == 628


runs_strategy = st.lists(
    st.builds(
        TileRun,
        count=st.integers(1, 40),
        load_bytes=st.sampled_from([0, 1, 100, 1000, 8000]),
        store_bytes=st.sampled_from([0, 1, 200, 3000]),
        compute_cycles=st.integers(0, 3000),
    ),
    min_size=1,
    max_size=8,
)


@settings(max_examples=300, deadline=None)
@given(runs=runs_strategy, double=st.booleans(), bw=st.sampled_from([1.0, 1.5, 4.0, 16.0, 64.0]),
       lat=st.sampled_from([0, 1, 100]))
def test_closed_form_twin_equals_simpy(runs, double, bw, lat) -> None:
    cfg = CFG.replace(double_buffered=double, dram_bytes_per_cycle=bw, dram_latency_cycles=lat)
    assert pipeline_closed_form(runs, cfg) == pipeline_simpy(runs, cfg)


@settings(max_examples=200, deadline=None)
@given(runs=runs_strategy, double=st.booleans(), bw=st.sampled_from([1.0, 1.5, 4.0, 16.0]),
       lat=st.sampled_from([0, 1, 100]))
def test_reads_and_writes_share_the_bandwidth(runs, double, bw, lat) -> None:
    # the data bus moves dram_bytes_per_cycle in all: a layer takes at least every transfer's data
    # cycles, ceil(bytes / bw) each, one after the other; the overlap hides latency only
    cfg = CFG.replace(double_buffered=double, dram_bytes_per_cycle=bw, dram_latency_cycles=lat)
    data = sum(r.count * (math.ceil(r.load_bytes / bw) + math.ceil(r.store_bytes / bw)) for r in runs)
    assert pipeline_closed_form(runs, cfg).cycles >= data


LAYERS = [
    Conv2d("c3", in_channels=64, out_channels=128, in_h=28, in_w=28, kernel=3, padding=1),
    Conv2d("dw", in_channels=144, out_channels=144, in_h=56, in_w=56, kernel=3, stride=2, padding=1, groups=144),
    Conv2d("pw", in_channels=320, out_channels=1280, in_h=7, in_w=7, kernel=1),
    Linear("fc", in_features=4096, out_features=1000, tokens=3),
]


@pytest.mark.parametrize("layer", LAYERS, ids=lambda x: x.name)
@pytest.mark.parametrize("df", ["ws", "os", "is"])
@pytest.mark.parametrize(("bw", "sram"), [(1.0, 8 * 1024), (16.0, 64 * 1024), (256.0, 512 * 1024)],
                         ids=["memory-bound", "balanced", "compute-bound"])
def test_engines_agree_on_layers(layer, df, bw, sram) -> None:
    cfg = AcceleratorConfig(rows=8, cols=8, dataflow=df, dram_bytes_per_cycle=bw, input_sram_bytes=sram,
                            weight_sram_bytes=sram, output_sram_bytes=sram)
    a = simulate_layer(layer, 1, cfg, "native", "simpy")
    b = simulate_layer(layer, 1, cfg, "native", "closed_form")
    assert (a.cycles, a.compute_cycles) == (b.cycles, b.compute_cycles)
    assert a.energy_pj == b.energy_pj


def test_compute_bound_layer_is_its_on_chip_gemm_plus_first_load_and_last_store() -> None:
    # everything fits on chip: one tile -> load(A, B) + native_gemm_cycles + 1 + 1 + store(C).
    # 8x8 WS INT8, 16-byte bus: A = ceil(64/8)*16 = 128 words of 8 bytes, one beat each (2048 B);
    # B = 8 K chunks * 4 N chunks * 8 rows = 256 words (4096 B); C = 4 * 16 = 64 words of 8 x 32-bit
    # accumulators = 2 beats each (2048 B): the accumulator write-back (requantize false, no table read)
    cfg = AcceleratorConfig(rows=8, cols=8, dataflow="ws", requantize=False)
    layer = Linear("fc", in_features=64, out_features=32, tokens=16, bias=False)
    r = simulate_layer(layer, 1, cfg)
    assert r.tiles == 1
    assert r.counts.dram_read_bits == (2048 + 4096) * 8 and r.counts.dram_write_bits == 2048 * 8
    assert r.compute_cycles == native_gemm_cycles(cfg, 16, 32, 64) + 1 + 1
    assert r.cycles == (3 + 100 + 6144 // 16) + r.compute_cycles + (3 + 100 + 2048 // 16)


def test_on_chip_gemm_counts_enabled_macs() -> None:
    import numpy as np

    a = np.array([[1, 0, 2], [0, 0, 3]])
    b = np.array([[1, 1], [5, 0], [0, 2]])
    cfg = AcceleratorConfig(rows=4, cols=4, zero_handling="gate")
    r = simulate_gemm_on_chip(cfg, 2, 2, 3, a=a, b=b)
    # k=0: 1 nz in A col x 2 nz in B row; k=1: 0 x 1; k=2: 2 x 1 -> 2 + 0 + 2
    assert r.active_macs == 4 and r.macs == 12
    assert simulate_gemm_on_chip(cfg.replace(zero_handling="none"), 2, 2, 3, a=a, b=b).active_macs == 12
