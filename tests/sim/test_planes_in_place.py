"""Layers reading another layer's output read its planes, in ``simulate`` as in a program from one start:
a convolution reading a producer runs with on-chip windows whenever they run it (``convplan.mode_reason``:
im2col of a producer's output would be host work between the layers), and a global average pool whose
map (its B) is cut into K tiles takes B blocks that lie inside the planes (``mapping.planes_b_tiling``).
The sweep's fast path (:mod:`codesign.sim.fastpath`) takes the same plans."""

from __future__ import annotations

import dataclasses
import random

import pytest

from codesign.sim import convplan as CP
from codesign.sim.config import AcceleratorConfig
from codesign.sim.engine import simulate_network
from codesign.sim.mapping import plan_layer, planes_b_tiling
from codesign.sim.tileplan import TilePlan, plan_tiles, plan_traffic_bytes
from codesign.workloads import zoo
from codesign.workloads.layers import NETWORK_INPUT

from .conftest import fast_equals_engine

EIGHT = AcceleratorConfig(rows=8, cols=8)  # 64 KiB buffers, double-buffered: 4,096-word B slots, 1,024-word C


def test_a_strided_shortcut_reads_its_producers_planes() -> None:
    """ResNet-8's ``stack2.shortcut`` (1x1, stride 2, 16 -> 32 channels, 32x32 -> 16x16) reads
    ``stack1.add``'s output. As the network's input it would run on im2col, 256 pixels x 2 words of 16
    bytes = 8,192 A bytes (the windows' rows move more); reading a producer it runs with on-chip windows,
    its band the whole map: 2 planes x 32 rows x 32 pixels x 16 bytes = 32,768 A bytes (4x: the stride skips
    every other row and column, the DMA reads them all), and simulate's row is that plan: 32,768 A bytes,
    1,024 of weights (4 output planes x 2 input planes x 8 rows of 16-byte words), 256 of its requantization
    table (4 words of 8 x 56 bits in 64 bytes) and 16,384 of its fused residual add's operand (4 planes of
    256 16-byte words) = 50,432 read."""
    net = zoo.get("resnet8_cifar")
    layer = net.layer("stack2.shortcut")
    assert layer.sources == ("stack1.add",) and CP.reads_producer(layer)
    host = dataclasses.replace(layer, sources=(NETWORK_INPUT,))
    assert "more bytes than im2col" in CP.layer_reason(host, 1, EIGHT)
    im2col = plan_layer(host, 1, EIGHT).tiling
    assert isinstance(im2col, TilePlan) and plan_traffic_bytes(im2col)[0] == 8_192
    assert CP.layer_reason(layer, 1, EIGHT) == ""
    win = plan_layer(layer, 1, EIGHT).tiling
    assert isinstance(win, CP.WinPlan) and win.traffic_bytes()[0] == 32_768
    row = next(r for r in simulate_network(net, EIGHT).layers if r.layer == "stack2.shortcut")
    assert row.counts.dram_read_bits // 8 == 32_768 + 1_024 + 256 + 16_384


def test_a_large_global_pool_takes_b_blocks_inside_the_planes() -> None:
    """EfficientNet-B0's ``block0.se.pool``: 112x112 = 12,544 pixels (K) of 32 channels (N) on 8x8. The tiler
    cuts K into 16 tiles of 784 pixels with all 4 column chunks a tile (4 x 98 x 8 = 3,136 words of the
    4,096-word B slot): its blocks' chunks would be pieces of 4 planes. One plane (1,568 words x 8 rows =
    12,544 words) does not fit a slot, so the pool takes one chunk a tile (N tile 8) and the tiler's K tile
    for 8 columns, 3,136 pixels (392 x 8 = 3,136 words): 4 K tiles x 4 N tiles, each block a piece of one
    plane. ``block9.se.pool`` (196 pixels, 672 channels): the tiler's 2 K tiles of 21 chunks; 196 pixels are
    not whole words of 8, and the producer's planes are not padded (196 words apart, as the scale reads them):
    the whole K with one plane a tile (its block 25 x 8 = 200 words, the last 4 the next plane's first pixels,
    times A's zero lanes), N tile 8, 84 tiles."""
    net = zoo.get("efficientnet_b0")
    pool = net.layer("block0.se.pool")
    fixed = plan_tiles(pool.as_gemm_layer().gemm(1), EIGHT)
    assert (fixed.nt, fixed.kt, fixed.n_kt) == (32, 784, 16)
    plan = plan_layer(pool, 1, EIGHT).tiling
    assert (plan.nt, plan.kt, plan.n_kt, plan.n_nt) == (8, 3136, 4, 4)
    wide = plan_layer(net.layer("block9.se.pool"), 1, EIGHT).tiling
    assert (wide.nt, wide.kt, wide.n_kt, wide.n_nt) == (8, 196, 1, 84)
    # the output-stationary array reads no planes: the tiler's plan stands
    os_plan = plan_layer(pool, 1, EIGHT.replace(dataflow="os")).tiling
    assert os_plan == plan_tiles(pool.as_gemm_layer().gemm(1), EIGHT.replace(dataflow="os"))


@pytest.mark.parametrize("mapping", ["fixed", "search"])
def test_fast_path_takes_the_same_plans(mapping: str) -> None:
    """Random weight-stationary points (square and not, small weight buffers that cut the SE pools into K
    tiles) on ResNet-8 (strided shortcuts reading their producers) and MobileNetV3-Small (squeeze-excite
    pools): every summary column of the fast path equals the point-by-point engine's."""
    rnd = random.Random(17)
    configs = []
    for _ in range(10):
        n = rnd.choice([4, 8, 16])
        configs.append(AcceleratorConfig(
            rows=n, cols=rnd.choice([n, n, 8]), weight_sram_bytes=rnd.choice([2048, 8192, 65536]),
            input_sram_bytes=rnd.choice([8192, 65536]), output_sram_bytes=rnd.choice([4096, 65536]),
            requantize=rnd.random() < 0.7, dram_bytes_per_cycle=rnd.choice([4, 16]), mapping=mapping))
    compared = cut = 0
    for name in ("resnet8_cifar", "mobilenet_v3_small"):
        net = zoo.get(name)
        pools = [ly for ly in net.layers if getattr(ly, "global_", False)]
        for cfg in fast_equals_engine(net, configs):
            compared += 1
            fixed = [plan_tiles(p.as_gemm_layer().gemm(1), cfg) for p in pools]
            cut += cfg.dataflow.value == "ws" and any(planes_b_tiling(t, cfg) != t for t in fixed)
    assert compared >= 16 and cut >= 3
