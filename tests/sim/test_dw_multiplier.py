"""Depthwise convolutions with a channel multiplier on the built depthwise engine (``sim.dwplan``).

A multiplier ``m`` (``out_channels = m * in_channels``, ``groups = in_channels``) is the descriptor's N loop:
each band of each input plane is loaded once and scanned ``m`` times, each time with multiplier ``j``'s
weights, into output plane ``j * planes + p`` (output channel ``c * m + j`` in lane ``c % lanes``). The RTL
runs it unchanged (``tests/rtl/test_depthwise_layer_rtl.py`` checks it cycle for cycle).
"""

from __future__ import annotations

import random

from codesign.sim.config import AcceleratorConfig
from codesign.sim.dwplan import layer_reason, plan_dw
from codesign.sim.engine import simulate_layer
from codesign.workloads.layers import Conv2d, Network

from .conftest import fast_equals_engine

CFG = AcceleratorConfig(rows=4, cols=4, depthwise="engine", dram_bytes_per_cycle=4, input_sram_bytes=65536,
                        weight_sram_bytes=65536, output_sram_bytes=65536)


def dw(c: int, m: int, h: int, k: int = 3, s: int = 1) -> Conv2d:
    return Conv2d(f"dw{c}x{m}", in_channels=c, out_channels=c * m, in_h=h, in_w=h, kernel=k, stride=s,
                  padding=k // 2, groups=c)


def test_a_multiplier_reads_the_input_once_and_writes_each_multiplier_planes() -> None:
    """8 channels on 4 lanes (2 planes), 6x6, 3x3, multiplier 3, buffers that hold whole planes (both in one
    tile): 3 tiles (one a multiplier), the input read once, each tile its 2 planes' weight blocks of 10
    words and its 2 output planes; every word one 4-byte beat (4 lanes of 8 bits on a 4-byte bus)."""
    one, three = dw(8, 1, 6), dw(8, 3, 6)
    p = plan_dw(three, 1, CFG)
    assert (p.gt, p.n_mt, p.mult, p.tile_count, p.out_planes) == (2, 1, 3, 3, 6)
    r1, r3 = simulate_layer(one, 1, CFG), simulate_layer(three, 1, CFG)
    # a table word: 4 lanes of 56-bit entries (bias 32, multiplier 16, shift 8) = 28 bytes, one per plane
    a_bytes, w_bytes, c_bytes, q_bytes = 2 * 36 * 4, 2 * 10 * 4, 2 * 36 * 4, 2 * 28
    assert r1.counts.dram_read_bits // 8 == a_bytes + w_bytes + q_bytes
    assert r3.counts.dram_read_bits // 8 == a_bytes + 3 * w_bytes + 3 * q_bytes
    assert r3.counts.dram_write_bits // 8 == 3 * c_bytes
    assert r3.counts.active_macs == 8 * 3 * 9 * 36 == 3 * r1.counts.active_macs
    assert r3.cycles == simulate_layer(three, 1, CFG, engine="closed_form").cycles
    d = p.descriptor()
    assert (d["n"], d["nt"], d["flags"] & 0b11) == (3, 1, 0b01)  # the N loop, A reused across it, B reloaded
    assert (d["b_stride_n"], d["c_stride_n"], d["q_stride_n"]) == (2 * 10 * 4, 2 * 36 * 4, 2)


def test_bands_reload_each_multiplier_weights() -> None:
    """A map whose plane does not fit a slot is cut into bands; each band's input is loaded once for its
    multipliers, the weights with every tile (multiplier 1 loads them with a plane's first band)."""
    cfg = AcceleratorConfig(rows=4, cols=4, depthwise="engine", dram_bytes_per_cycle=4, input_sram_bytes=1024,
                            weight_sram_bytes=1024, output_sram_bytes=2048)
    one, two = dw(4, 1, 20), dw(4, 2, 20)
    p1, p2 = plan_dw(one, 1, cfg), plan_dw(two, 1, cfg)
    assert p1.n_mt > 1 and (p2.mt, p2.n_mt) == (p1.mt, p1.n_mt)
    assert p2.tile_count == 2 * p1.tile_count
    loads_a = [t for t in p2.tiles() if t.load_a]
    assert len(loads_a) == p1.tile_count and all(t.load_b for t in p2.tiles())
    r1, r2 = simulate_layer(one, 1, cfg), simulate_layer(two, 1, cfg)
    weights = 10 * 4  # one plane's block: 9 taps and its channel count, 4-byte words
    table = 28  # one plane's table word: 4 lanes of 56-bit entries
    assert r2.counts.dram_read_bits // 8 == (r1.counts.dram_read_bits // 8 - weights - table
                                             + p2.tile_count * weights + 2 * table)
    assert r2.counts.dram_write_bits == 2 * r1.counts.dram_write_bits


def test_multiplier_layers_run_on_the_engine_not_the_array() -> None:
    """A multiplier no longer sends a layer to the array (a GEMM per channel, one useful column): the
    engine's plan, far fewer cycles."""
    layer = dw(16, 2, 28)
    assert layer_reason(layer, 1, CFG) == ""
    on_engine = simulate_layer(layer, 1, CFG)
    on_array = simulate_layer(layer, 1, AcceleratorConfig(**{**CFG.__dict__, "depthwise": "array"}))
    assert on_engine.model_only == "" and on_array.model_only == ""
    assert on_engine.cycles * 2 < on_array.cycles


def test_fast_path_equals_the_engine_with_multipliers() -> None:
    """A network with depthwise layers of multipliers 1, 2 and 4 on random square WS points: the sweep fast
    path (which evaluates a multiplier layer point by point) equals the engine on every column."""
    net = Network("mult", (
        Conv2d("pw0", in_channels=3, out_channels=8, in_h=16, in_w=16),
        Conv2d("dw1", in_channels=8, out_channels=16, in_h=16, in_w=16, kernel=3, padding=1, groups=8,
               sources=("pw0",)),
        Conv2d("dw2", in_channels=16, out_channels=16, in_h=16, in_w=16, kernel=5, stride=2, padding=2, groups=16,
               sources=("dw1",)),
        Conv2d("dw3", in_channels=16, out_channels=64, in_h=8, in_w=8, kernel=3, padding=1, groups=16,
               sources=("dw2",)),
        Conv2d("pw4", in_channels=64, out_channels=8, in_h=8, in_w=8, sources=("dw3",)),
    ))
    rnd = random.Random(9)
    configs = []
    for _ in range(16):
        n = rnd.choice([4, 8, 16])
        configs.append(AcceleratorConfig(
            rows=n, cols=n, depthwise=rnd.choice(["engine", "engine", "array"]), act_bits=rnd.choice([4, 8]),
            input_sram_bytes=rnd.choice([2048, 65536]), output_sram_bytes=rnd.choice([2048, 65536]),
            dram_bytes_per_cycle=rnd.choice([3, 16]), double_buffered=rnd.random() < 0.7,
            requantize=rnd.random() < 0.7))
    assert len(fast_equals_engine(net, configs)) >= 12
