"""The depthwise stage in a 1x1 convolution's write-back (``sim.dwfuse``): its geometry, bytes, choice and what it
does to the zoo's inverted residual networks. The RTL's equality with these numbers is
``tests/rtl/test_dw_writeback_rtl.py``'s."""

from __future__ import annotations

import random
from dataclasses import replace

import pytest

from codesign.sim.config import AcceleratorConfig
from codesign.sim.dwfuse import DwStage, fuses, pair_reason, plan_fused, plan_pair, weight_words
from codesign.sim.engine import pipeline_closed_form, pipeline_simpy, simulate_layer, simulate_network
from codesign.sim.fusion import DEFAULT, plan_network
from codesign.sim.mapping import plan_layer
from codesign.sim.timing import ceil_div
from codesign.workloads import zoo
from codesign.workloads.layers import Conv2d

from .conftest import fast_equals_engine


def pair(cin: int, c: int, h: int, w: int, k: int, s: int, pad: object) -> tuple[Conv2d, Conv2d]:
    pw = Conv2d("pw", in_channels=cin, out_channels=c, in_h=h, in_w=w, kernel=1)
    dw = Conv2d("dw", in_channels=c, out_channels=c, in_h=h, in_w=w, kernel=k, stride=s, padding=pad,  # type: ignore[arg-type]
                groups=c)
    return pw, dw


def test_each_output_row_is_stored_once_and_every_position_scanned_once() -> None:
    """Over a plane's passes, the rows they complete are 0 .. out_h - 1, each once and in order (the store's
    running address), and their positions sum to the padded plane's (h + pt + pb) * (w + pl + pr)."""
    rnd = random.Random(3)
    for _ in range(300):
        k = rnd.choice([1, 2, 3, 5])
        s = rnd.choice([1, 2, 3])
        pt, pb = rnd.randrange(k), rnd.randrange(k)
        pl, pr = rnd.randrange(k), rnd.randrange(k)
        h, w = rnd.randint(max(1, k - pt - pb), 20), rnd.randint(max(1, k - pl - pr), 20)
        _, dw = pair(4, 4, h, w, k, s, (pt, pl, pb, pr))
        st = DwStage.of(dw)
        rows = [st.out_rows(r) for r in range(h)]
        got = [oy for first, n in rows for oy in range(first, first + n)]
        assert got == list(range(dw.out_h)), (st, rows)
        assert sum(st.positions(r) for r in range(h)) == (h + pt + pb) * (w + pl + pr)


def test_traffic_is_the_block_input_per_plane_the_weights_tables_and_the_depthwise_output() -> None:
    """MobileNetV2's block1 on 32x32 (16 -> 96 channels at 112x112, 3x3 stride 2): the block input is read once
    for each of the 3 expanded planes, the expanded map never leaves the chip, the depthwise output (56x56, 3
    planes) is written once; words of 32 lanes of 8 bits, 2 beats of the 16-byte bus."""
    cfg = AcceleratorConfig(rows=32, cols=32)
    net = zoo.get("mobilenet_v2")
    pw, dw = (next(ly for ly in net.layers if ly.name == n) for n in ("block1.expand", "block1.dw"))
    assert pair_reason(pw, dw, 1, cfg) == ""
    lp = plan_pair(pw, dw, 1, cfg)  # type: ignore[arg-type]
    word = 32  # 32 lanes x 8 bits
    planes = 3
    a = 112 * 112 * word * planes
    b = 32 * word * planes  # a plane's weight block: a word a row of the array (K = 16 in 32 rows)
    q_word = ceil_div(32 * 56, 8 * 16) * 16  # 32 entries of 56 bits in 16-byte beats
    q = (planes + planes + planes * weight_words(9, 8)) * q_word  # the 1x1's table, the depthwise table, weights
    assert lp.counts.dram_read_bits // 8 == a + b + q
    assert lp.counts.dram_write_bits // 8 == 56 * 56 * word * planes
    assert weight_words(9, 8) == 2  # 9 taps and the channel count, 7 to a 1792-bit word


def test_simpy_equals_the_closed_form_on_pair_plans() -> None:
    """The pass (positions, the plane's weight slots) and the rows' stores run through both pipeline models alike."""
    cfg = AcceleratorConfig(rows=8, cols=8, dram_bytes_per_cycle=4, dram_latency_cycles=30)
    for geom in ((8, 20, 17, 13, 3, 1, 1), (5, 12, 9, 16, 5, 2, 2), (8, 8, 10, 10, 3, 2, (0, 0, 1, 1))):
        pw, dw = pair(*geom)  # type: ignore[arg-type]
        assert pair_reason(pw, dw, 1, cfg) == ""
        lp = plan_pair(pw, dw, 1, cfg)  # type: ignore[arg-type]
        args = (lp.runs, cfg, lp.tiling.prologue_bytes, 0, 0, lp.store_pass_cycles)
        assert pipeline_simpy(*args).cycles == pipeline_closed_form(*args).cycles


def test_the_pair_fuses_where_it_is_faster() -> None:
    """On MobileNetV2 (32x32) each expand/depthwise pair fuses exactly when the pair's cycles are fewer than the two
    layers' alone: the 112x112 to 28x28 blocks (1-6) fuse, the 14x14 and 7x7 ones (their narrow input read once a
    plane, 12-30 planes) run alone."""
    cfg = AcceleratorConfig(rows=32, cols=32)
    net = zoo.get("mobilenet_v2")
    ctxs = plan_network(net, cfg)
    fused = {ly.name for ly, c in zip(net.layers, ctxs, strict=True) if c.dw is not None and not c.fused}
    assert fused == {f"block{b}.expand" for b in range(1, 7)}
    by_name = {ly.name: ly for ly in net.layers}
    for b in range(1, 17):
        pw, dw = by_name[f"block{b}.expand"], by_name[f"block{b}.dw"]
        together = simulate_layer(pw, 1, cfg, context=replace(DEFAULT, dw=dw)).cycles
        alone = simulate_layer(pw, 1, cfg).cycles + simulate_layer(dw, 1, cfg).cycles
        assert fuses(pw, dw, 1, cfg) == (together < alone), b


def test_mobilenet_v2_on_32x32_with_built_modes_only() -> None:
    """Issue 20's figure: MobileNetV2 on the 32x32 INT8 array with every other field at its default takes at most
    1.2 M cycles with no model-only layer (1,336,539 before the depthwise stage: the expanded maps of blocks 1-6,
    4.1 MB, no longer go to DRAM and back)."""
    res = simulate_network(zoo.get("mobilenet_v2"), AcceleratorConfig(rows=32, cols=32))
    assert not res.model_only
    assert res.cycles <= 1_200_000
    off = simulate_network(zoo.get("mobilenet_v2"), AcceleratorConfig(rows=32, cols=32, dw_writeback=False))
    assert off.cycles == 1_336_539
    assert off.dram_bytes - res.dram_bytes >= 4_000_000


def test_refused_pairs_say_why() -> None:
    cfg = AcceleratorConfig(rows=8, cols=8)
    assert "one plane" in pair_reason(*pair(12, 16, 8, 8, 3, 1, 1), 1, cfg)
    assert "batch of one" in pair_reason(*pair(8, 16, 8, 8, 3, 1, 1), 2, cfg)
    assert "dw_writeback is false" in pair_reason(*pair(8, 16, 8, 8, 3, 1, 1), 1, replace(cfg, dw_writeback=False))
    wide = pair(8, 16, 8, 200, 3, 1, 1)
    assert pair_reason(*wide, 1, cfg)  # a padded width the line buffers do not hold
    assert plan_fused(*pair(8, 16, 8, 8, 3, 1, 1), 1, cfg) is not None


@pytest.mark.parametrize("name", ["mobilenet_v2", "mobilenet_v1_vww"])
def test_fast_path_equals_the_engine_with_the_stage(name: str) -> None:
    """The sweep's fast path evaluates the pairs point by point where they fuse: every summary column equals the
    engine's, on square WS points with the stage on and off, buffers that do and do not hold the rows."""
    rnd = random.Random(7)
    configs = []
    for _ in range(8):
        n = rnd.choice([8, 16, 32])
        configs.append(AcceleratorConfig(
            rows=n, cols=n, dw_writeback=rnd.random() < 0.75, output_sram_bytes=rnd.choice([8192, 65536]),
            input_sram_bytes=rnd.choice([16384, 65536]), dram_bytes_per_cycle=rnd.choice([4, 16]),
            depthwise_kernel=rnd.choice([3, 5])))
    assert len(fast_equals_engine(zoo.get(name), configs)) >= 6
    assert any(c.dw is not None for cfg in configs for c in plan_network(zoo.get(name), cfg))


def test_plan_layer_of_the_head_is_the_pair() -> None:
    cfg = AcceleratorConfig(rows=8, cols=8)
    pw, dw = pair(8, 16, 10, 10, 3, 1, 1)
    lp = plan_layer(pw, 1, cfg, replace(DEFAULT, dw=dw))
    assert lp.tiling.dw == DwStage.of(dw) and (lp.tiling.mt, lp.tiling.nt) == (10, 8)
