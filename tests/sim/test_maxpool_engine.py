"""Max pooling on the built depthwise engine (``sim.dwplan`` in MAX mode): routing, plan, closed-form
numbers, the layers it refuses, and the sweep's fast path held equal to the engine."""

from __future__ import annotations

import random

import pytest

from codesign.errors import ConfigError
from codesign.sim import fastpath
from codesign.sim.config import AcceleratorConfig
from codesign.sim.dwplan import DwPlan, plan_dw, pool_reason
from codesign.sim.engine import VECTOR_REASON, simulate_layer, simulate_network
from codesign.sim.mapping import plan_layer
from codesign.workloads import zoo
from codesign.workloads.layers import Conv2d, Network, Pool

RESNET_MAXPOOL = Pool("maxpool", channels=64, in_h=112, in_w=112, kernel=3, stride=2, padding=1)


def test_resnet18_maxpool_on_the_engine_closed_form() -> None:
    """ResNet-18's max pool (64 x 112 x 112, 3x3 s2 p1) on 32x32 WS, 64 KiB buffers: 2 planes of 32
    channels. An output-buffer slot holds 32 KiB / 128 B = 256 accumulator words, 4 rows of 56 outputs;
    an input slot 1,024 words of 32 B, the 9 input rows (2 * 4 + 1) of a 4-row band. So 14 bands a plane,
    28 tiles, each scanning 9 padded rows (the first: 1 padding row + 8) of 114 columns:
    1 (issue) + 1 (the one-word block) + 3 + 9 * 114 + 5 = 1,036 cycles a tile, 29,008 in all.
    DRAM reads: input rows 8 + 13 * 9 = 125 a plane (the bands' halos re-read), 125 * 112 * 32 B a plane,
    plus a 32-byte block a plane, plus the identity table (2 words of 32 x 56 bits = 224 B): 896,512 B.
    Writes: 2 * 56 * 56 * 32 B = 200,704 B (int8 lanes after the write-back). No MACs; 64 * 9 * 56 * 56
    comparisons."""
    cfg = AcceleratorConfig(rows=32, cols=32)
    plan = plan_layer(RESNET_MAXPOOL, 1, cfg).tiling
    assert isinstance(plan, DwPlan) and plan.pooling and (plan.gt, plan.mt, plan.tile_count) == (1, 4, 28)
    r = simulate_layer(RESNET_MAXPOOL, 1, cfg)
    assert r.model_only == "" and r.tiles == 28
    assert r.compute_cycles == 28 * (1 + 1 + 3 + 9 * 114 + 5) == 29_008
    assert r.counts.dram_read_bits // 8 == 2 * 125 * 112 * 32 + 2 * 32 + 2 * 224 == 896_512
    assert r.counts.dram_write_bits // 8 == 2 * 56 * 56 * 32 == 200_704
    assert r.counts.active_macs == 0 and r.counts.vector_ops == 64 * 9 * 56 * 56 == RESNET_MAXPOOL.vector_ops()
    assert r.cycles == simulate_layer(RESNET_MAXPOOL, 1, cfg, engine="closed_form").cycles
    # memory-bound at 16 B/cycle: never faster than its bytes over the bus
    assert r.cycles >= (896_512 + 200_704) // 16


def test_resnet18_is_buildable_on_32x32() -> None:
    """Every ResNet-18 layer on 32x32 runs on built hardware: the max pool in the stem's write-back
    (``sim.poolfuse``), or with ``pool_writeback: false`` on the depthwise engine; without either
    (``depthwise: array``) the max pool is the model-only vector unit's again."""
    net = zoo.get("resnet18")
    r = simulate_network(net, AcceleratorConfig(rows=32, cols=32), engine="closed_form")
    assert r.model_only == "" and all(lr.model_only == "" for lr in r.layers)
    mp = next(lr for lr in r.layers if lr.layer == "maxpool")
    assert (mp.fused_into, mp.cycles, mp.counts.vector_ops) == ("conv1", 0, RESNET_MAXPOOL.vector_ops())
    alone = simulate_network(net, AcceleratorConfig(rows=32, cols=32, pool_writeback=False), engine="closed_form")
    assert alone.model_only == ""
    mp = next(lr for lr in alone.layers if lr.layer == "maxpool")
    assert mp.compute_cycles == 29_008
    array = simulate_network(net, AcceleratorConfig(rows=32, cols=32, depthwise="array", pool_writeback=False),
                             engine="closed_form")
    assert array.model_only == VECTOR_REASON


def test_descriptor_of_a_max_pool() -> None:
    """Depthwise mode (bit 3) with the engine's mode 1 in bits 9..8; a one-word block a plane."""
    cfg = AcceleratorConfig(rows=4, cols=4, input_sram_bytes=1024, weight_sram_bytes=1024, output_sram_bytes=1024,
                            depthwise_kernel=3)
    plan = plan_dw(Pool("p", channels=6, in_h=12, in_w=12, kernel=3, stride=2, padding=1), 2, cfg)
    d = plan.descriptor()
    assert d["flags"] == 1 << 1 | 1 << 3 | 1 << 8
    assert {d[f"b_words_{i}{j}"] for i in (0, 1) for j in (0, 1)} == {1}
    assert plan.planes == 2 * 2 and d["groups"] == 4  # batch 2, 2 planes of 4 lanes an image
    assert d["dw_kernel"] == 3 | 3 << 8 | 2 << 16 | 2 << 24 and d["dw_pad"] & 0xFF == 1
    conv = plan_dw(Conv2d("dw", in_channels=6, out_channels=6, in_h=12, in_w=12, kernel=3, stride=2, padding=1,
                          groups=6), 2, cfg)
    assert conv.descriptor()["flags"] == 1 << 1 | 1 << 3 and conv.b_block == 10


@pytest.mark.parametrize(("pool", "reason"), [
    (Pool("avg", channels=8, in_h=8, in_w=8, kernel=3, stride=1, padding=1, op="avg"),
     "the depthwise engine pools max; an average pool runs as its convolution"),
    (Pool("big", channels=8, in_h=16, in_w=16, kernel=7, stride=2),
     "the depthwise engine runs kernels up to 5x5 (depthwise_kernel), not 7x7"),
    (Pool("wide", channels=8, in_h=4, in_w=130, kernel=2, stride=2),
     "the depthwise engine's line buffers hold 128 padded columns, not 130"),
    (Pool("pads", channels=8, in_h=8, in_w=8, kernel=2, stride=2, padding=(2, 0, 0, 0)),
     "a max pool's padding must be smaller than its kernel (a window wholly in the padding has no maximum), "
     "not (2, 0, 0, 0) for 2x2"),
])
def test_max_pools_the_engine_refuses_stay_model_only(pool: Pool, reason: str) -> None:
    cfg = AcceleratorConfig(rows=8, cols=8)
    assert pool_reason(pool, 1, cfg) == reason
    if pool.op.value == "max":
        assert simulate_layer(pool, 1, cfg).model_only == VECTOR_REASON
    # the design without the engine (not square): its reason
    assert pool_reason(pool, 1, cfg.replace(cols=4)).startswith("the depthwise engine needs a square array")


def test_batch_and_partial_planes() -> None:
    """Batch 3 of 10 channels on 4 lanes: 3 planes an image (the last with 2 channels), 9 planes; the
    counts are the layer's channels, not the lanes'."""
    cfg = AcceleratorConfig(rows=4, cols=4, input_sram_bytes=4096, weight_sram_bytes=1024, output_sram_bytes=4096,
                            depthwise_kernel=3, requantize=False)
    pool = Pool("p", channels=10, in_h=9, in_w=7, kernel=(3, 2), stride=(2, 1), padding=(1, 0, 1, 1))
    plan = plan_dw(pool, 3, cfg)
    assert plan.planes == 9 and (pool.out_h, pool.out_w) == (5, 7)
    r = simulate_layer(pool, 3, cfg)
    assert r.counts.vector_ops == 3 * 10 * 3 * 2 * 5 * 7 == pool.vector_ops(3) and r.counts.active_macs == 0
    # accumulators written back (no requantize): 4 lanes of 32 bits a word
    assert r.counts.dram_write_bits // 8 == 9 * 5 * 7 * 16


def test_fast_path_equals_the_engine_on_max_pools() -> None:
    """Max pools of every kind the engine runs (kernels 2 to 5, strides 1 to 3, asymmetric padding,
    partial planes, batch 2) and two it refuses (kernel 7; padding of its kernel's size), in a network with
    ResNet-18: 20 random square WS points with the engine (buffers that force bands, single buffering,
    requantize, 3x3 and 5x5 windows), every summary column of the fast path equal to the engine's."""
    pools = [
        Pool("mp3s2p1", channels=24, in_h=30, in_w=30, kernel=3, stride=2, padding=1),
        Pool("mp2s2", channels=13, in_h=16, in_w=20, kernel=2, stride=2),
        Pool("mp3s1same", channels=7, in_h=11, in_w=9, kernel=3, stride=1, padding=(1, 1, 1, 1)),
        Pool("mp3s2tf", channels=40, in_h=17, in_w=17, kernel=3, stride=2, padding=(0, 0, 1, 1)),
        Pool("mp5s3", channels=9, in_h=20, in_w=14, kernel=5, stride=3, padding=(2, 1, 0, 2)),
        Pool("mp2x3", channels=5, in_h=10, in_w=12, kernel=(2, 3), stride=(1, 2), padding=(0, 1, 1, 0)),
        Pool("mp7", channels=8, in_h=14, in_w=14, kernel=7, stride=7),
        Pool("mp_pad_kernel", channels=8, in_h=8, in_w=8, kernel=2, stride=2, padding=(0, 2, 0, 0)),
    ]
    rnd = random.Random(11)
    configs = []
    for _ in range(20):
        n = rnd.choice([4, 8, 16, 32])
        configs.append(AcceleratorConfig(
            rows=n, cols=n, depthwise="engine", act_bits=rnd.choice([4, 8]), weight_bits=rnd.choice([4, 8]),
            input_sram_bytes=rnd.choice([2048, 4096, 65536]), weight_sram_bytes=rnd.choice([2048, 65536]),
            output_sram_bytes=rnd.choice([2048, 8192, 65536]), dram_bytes_per_cycle=rnd.choice([3, 8, 16]),
            double_buffered=rnd.random() < 0.7, requantize=rnd.random() < 0.7, depthwise_kernel=rnd.choice([3, 5])))
    nets = [Network("pools", tuple(pools), batch=2), zoo.get("resnet18")]
    compared = on_engine = 0
    for net in nets:
        fast = fastpath.evaluate_network(net, configs)
        for cfg, f in zip(configs, fast, strict=True):
            try:
                ref = simulate_network(net, cfg, engine="closed_form")
            except ConfigError:
                assert f is None
                continue
            assert f is not None
            summary = ref.summary()
            assert {k: f[k] for k in f} == {k: summary[k] for k in f}, (net.name, cfg)
            compared += 1
            on_engine += sum(isinstance(plan_layer(ly, net.batch, cfg).tiling, DwPlan)
                             for ly in net.layers if isinstance(ly, Pool))
    assert compared >= 30 and on_engine >= 60
