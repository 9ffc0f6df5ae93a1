"""A max pool in its convolution's write-back (``sim.poolfuse``): the plan, its bytes and its timing.

Expected numbers from the layer shapes: ResNet-18's stem on 32x32 (7x7/2 convolution, 3 -> 64 channels,
112 x 112 output, then a 3x3/2 max pool with padding 1 to 56 x 56) runs in 112 tiles of one output row
and all 64 channels; every second row (1, 3, ..., 111) ends a pooled row's window and writes it: 2 planes x
56 words of 32 bytes = 3,584 bytes, 56 of them = 200,704 bytes (the pooled map), instead of the 802,816 of
the convolution's output and the pool's 896,512 read and 200,704 written again.
"""

from __future__ import annotations

import random
from dataclasses import replace

import pytest

from codesign.sim.config import AcceleratorConfig
from codesign.sim.engine import pipeline_closed_form, pipeline_simpy, simulate_layer, simulate_network
from codesign.sim.fusion import DEFAULT, plan_network
from codesign.sim.mapping import plan_layer
from codesign.sim.poolfuse import POOL_PASS_OVERHEAD_CYCLES, PoolSpec, pair_reason
from codesign.workloads import zoo
from codesign.workloads.layers import Conv2d, Pool, PoolKind


def stem() -> tuple[Conv2d, Pool]:
    net = zoo.get("resnet18")
    return net.layer("conv1"), net.layer("maxpool")  # type: ignore[return-value]


def test_resnet18_stem_plan_and_bytes() -> None:
    conv, pool = stem()
    cfg = AcceleratorConfig(rows=32, cols=32)
    assert pair_reason(conv, pool, 1, cfg) == ""
    ctx = replace(DEFAULT, pool=pool)
    lp = plan_layer(conv, 1, cfg, ctx)
    plan = lp.tiling
    assert (plan.mt, plan.nt, plan.kt, plan.tile_count) == (112, 64, 147, 112)
    assert lp.store_pass_cycles == POOL_PASS_OVERHEAD_CYCLES + 2 * 112
    stores = [r.store_bytes for r in lp.runs for _ in range(r.count)]
    assert stores == [0, 3_584] * 56 and sum(stores) == 200_704 == plan.pooled_bytes
    assert all(r.passes for r in lp.runs)
    r = simulate_layer(conv, 1, cfg, context=ctx)
    assert r.counts.dram_write_bits // 8 == 200_704
    assert r.counts.dram_read_bits // 8 == 2_017_728  # the host's im2col (112 * 112 pixels x 5 words of 32 B), B, table
    assert r.cycles == simulate_layer(conv, 1, cfg, "native", "closed_form", ctx).cycles
    # never faster than its compute or its bytes over the 16 B/cycle bus
    assert r.cycles >= max(r.compute_cycles, (2_017_728 + 200_704) // 16)
    fused = simulate_layer(pool, 1, cfg, context=plan_network(zoo.get("resnet18"), cfg)[1])
    assert (fused.cycles, fused.counts.dram_read_bits, fused.fused_into) == (0, 0, "conv1")


def test_resnet18_network_fuses_the_stem_pool() -> None:
    """On 32x32 the network is faster by the pool's bus time and the stem's output round trip."""
    net = zoo.get("resnet18")
    cfg = AcceleratorConfig(rows=32, cols=32)
    fused = simulate_network(net, cfg, engine="closed_form")
    alone = simulate_network(net, cfg.replace(pool_writeback=False), engine="closed_form")
    assert fused.model_only == alone.model_only == ""
    saved = alone.dram_write_bytes - fused.dram_write_bytes
    assert saved == 802_816  # the stem's output: its pooled map is what both write
    assert alone.dram_read_bytes - fused.dram_read_bytes == 896_512  # the pool's reads
    assert fused.cycles < alone.cycles - 90_000


@pytest.mark.parametrize("k,s,p,size", [((3, 3), (2, 2), (1, 1), (9, 7)), ((2, 2), (2, 2), (0, 0), (7, 9)),
                                       ((3, 2), (2, 2), (1, 0), (8, 8)), ((2, 3), (1, 2), (0, 1), (5, 6))])
def test_completes_is_the_last_row_of_a_window(k, s, p, size) -> None:
    """A row ends a pooled row when it is the last row of some window, clipped to the map (brute force)."""
    oh, ow = size
    ph, pw = (oh + 2 * p[0] - k[0]) // s[0] + 1, (ow + 2 * p[1] - k[1]) // s[1] + 1
    spec = PoolSpec(k[0], k[1], s[0], s[1], p[0], p[1], oh, ow, ph, pw)
    ends = {min(py * s[0] - p[0] + k[0] - 1, oh - 1) for py in range(ph)}
    assert [spec.completes(r) for r in range(oh)] == [r in ends for r in range(oh)]
    assert spec.reason() == ""


def test_pairs_the_stage_does_not_run_are_refused() -> None:
    conv, pool = stem()
    cfg = AcceleratorConfig(rows=32, cols=32)
    assert "stride <= kernel" in pair_reason(conv, replace(pool, stride=(1, 1)), 1, cfg)  # 3x3/1: three rows
    assert "padding under the kernel" in pair_reason(conv, replace(pool, kernel=(2, 2), padding=(2, 2, 2, 2)), 1, cfg)
    assert "max pool" in pair_reason(conv, replace(pool, op=PoolKind.AVG), 1, cfg)
    assert "pool_writeback is false" in pair_reason(conv, pool, 1, cfg.replace(pool_writeback=False))
    assert "requantize" in pair_reason(conv, pool, 1, cfg.replace(requantize=False))
    assert "on-chip windows" in pair_reason(conv, pool, 1, AcceleratorConfig(rows=4, cols=4))  # a 4x4 stem: windows
    assert "table activation" in pair_reason(replace(conv, activation="hard_swish"), pool, 1, cfg)
    assert "no tile" in pair_reason(conv, pool, 1, cfg.replace(output_sram_bytes=8192))  # 112 x 2 words of 128 B
    # fusion none keeps the pool a layer of its own
    net = zoo.get("resnet18")
    assert all(c.pool is None for c in plan_network(net, cfg.replace(fusion="none")))


def test_engine_equals_closed_form_on_random_pairs() -> None:
    """Random stems and pools on random designs: the SimPy engine and the closed form agree on every pair the
    stage runs (K tiles, single buffering, narrow buses, long latencies)."""
    rnd = random.Random(5)
    checked = 0
    for i in range(60):
        n = rnd.choice([8, 16, 32])
        cfg = AcceleratorConfig(rows=n, cols=n, input_sram_bytes=rnd.choice([4096, 16384, 65536]),
                                output_sram_bytes=rnd.choice([8192, 65536]), double_buffered=rnd.random() < 0.7,
                                dram_bytes_per_cycle=rnd.choice([2, 4.5, 16]),
                                dram_latency_cycles=rnd.choice([0, 30, 100]))
        k = rnd.choice([3, 5, 7])
        conv = Conv2d(f"c{i}", in_channels=3, out_channels=rnd.choice([8, 20, 64]), in_h=rnd.randint(12, 40),
                      in_w=rnd.randint(12, 40), kernel=k, stride=rnd.choice([1, 2]), padding=k // 2)
        pk = rnd.choice([2, 3])
        pool = Pool(f"p{i}", channels=conv.out_channels, in_h=conv.out_h, in_w=conv.out_w, kernel=pk, stride=2,
                    padding=rnd.choice([0, 1]) if pk == 3 else 0)
        if pair_reason(conv, pool, 1, cfg):
            continue
        lp = plan_layer(conv, 1, cfg, replace(DEFAULT, pool=pool))
        args = (lp.runs, cfg, lp.tiling.prologue_bytes, lp.store_extra_cycles, lp.prologue_extra_cycles,
                lp.store_pass_cycles)
        assert pipeline_simpy(*args) == pipeline_closed_form(*args), (conv, pool, cfg)
        checked += 1
    assert checked >= 20
