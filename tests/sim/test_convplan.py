"""Convolutions with their windows made on chip (:mod:`codesign.sim.convplan`): the plan's bytes, when
the simulator takes the mode, the tile program against the buffers, the descriptor, and the sweep's
fast path (:mod:`codesign.sim.fastpath`) equal to the point-by-point engine where the mode applies."""

from __future__ import annotations

import dataclasses
import random

import pytest

from codesign.errors import ConfigError, WorkloadError
from codesign.sim import convplan as CP
from codesign.sim import fastpath
from codesign.sim.config import AcceleratorConfig
from codesign.sim.engine import simulate_layer
from codesign.sim.result import ENERGY_PARTS
from codesign.sim.tileplan import TABLE_REASON
from codesign.workloads import zoo
from codesign.workloads.layers import Conv2d, Network

from .conftest import fast_equals_engine

SQUARE16 = AcceleratorConfig(rows=16, cols=16)  # 8-bit, 64 KiB buffers, double-buffered, requantized, 16-byte bus


def _conv(cin: int, cout: int, h: int, w: int, kernel: int | tuple[int, int] = 3, stride: int | tuple[int, int] = 1,
          padding: int | tuple[int, ...] = 1, dilation: int | tuple[int, int] = 1, name: str = "conv") -> Conv2d:
    return Conv2d(name, in_channels=cin, out_channels=cout, in_h=h, in_w=w, kernel=kernel, stride=stride,
                  padding=padding, dilation=dilation)


# -- the plan's bytes ------------------------------------------------------------------------------------
def test_a_map_that_fits_is_read_once() -> None:
    """ResNet-8's 16 -> 16 3x3 stride-1 pad-1 convolution on its 32x32 map, 16x16 array with a 128 KiB
    output buffer: one plane of 1,024 words fits a 2,048-word input slot and the 1,024 output words
    (16 x 32-bit accumulators each) fit a 1,024-word output slot, so the plan is one band (n_mt = 1)
    with the inputs reused across N tiles (with 64 KiB, 512-word slots, it takes two bands of 16 rows).
    Its A bytes are the map once, 16 * 32 * 32 = 16,384 (one 16-byte word a pixel) -- im2col's A is 9x
    that, 1,024 x 144 = 147,456 -- its B bytes the weights once (16 * 16 * 9 = 2,304), C the output
    once (16,384): 35,072 in all, under 3x the compulsory input and weights (3 * 18,688 = 56,064)."""
    layer = _conv(16, 16, 32, 32)
    cfg = SQUARE16.replace(output_sram_bytes=131072)
    assert CP.layer_reason(layer, 1, cfg) == ""
    plan = CP.plan_win(layer, 1, cfg)
    assert (plan.n_mt, plan.a_reuse, plan.word_bytes()) == (1, True, (16, 16, 16))
    a, b, c = plan.traffic_bytes()
    assert (a, b, c) == (16 * 32 * 32, 16 * 16 * 9, 16 * 32 * 32)
    assert a == plan.planes * plan.in_h * plan.in_w * plan.word_bytes()[0]
    assert a * 9 == layer.gemm(1).m * layer.gemm(1).k  # im2col's A (8-bit values, M x K)
    assert a + b + c < 3 * (16 * 32 * 32 + 16 * 16 * 9)
    # the requantization table: one word for the 16 output channels, 16 entries of 56 bits = 112 bytes
    assert plan.prologue_bytes == 16 * 56 // 8


def test_bands_reread_only_their_halo() -> None:
    """A 64 -> 64 3x3 stride-1 pad-1 convolution on 56x56 (ResNet-18's first stage), 16x16 array with
    256 KiB buffers: the map (4 planes x 3,136 words) does not fit an input slot with the output, so
    it is cut into bands of output rows; each boundary between bands reads the kernel's 2 halo rows
    twice, so A is 4 planes x (56 + 2 * (bands - 1)) rows x 56 words x 16 bytes, read once per N tile
    unless reused. Here that is under 3x the compulsory input and weights (200,704 + 36,864 bytes),
    while im2col's A alone is 9x the input (1,806,336 bytes)."""
    layer = _conv(64, 64, 56, 56)
    cfg = SQUARE16.replace(input_sram_bytes=262144, weight_sram_bytes=262144, output_sram_bytes=262144)
    plan = CP.plan_win(layer, 1, cfg)
    assert plan.n_mt > 1
    a, b, c = plan.traffic_bytes()
    assert a == 4 * (56 + 2 * (plan.n_mt - 1)) * 56 * 16 * (1 if plan.a_reuse else plan.n_nt)
    assert b == 64 * 64 * 9 * (1 if plan.b_reuse else plan.n_mt)  # the weights (8-bit) once unless re-read
    assert c == 64 * 56 * 56
    compulsory = 64 * 56 * 56 + 64 * 64 * 9
    assert a + b + c < 3 * compulsory
    assert a < layer.gemm(1).m * layer.gemm(1).k  # im2col's A: 3,136 x 576


def test_layer_reason() -> None:
    """When the simulator takes the mode (``layer_reason`` ''), and why not otherwise:

    * a 3-channel 3x3 stem on a 32x32 array: 1 plane x 9 taps = 9 folds against im2col's
      ceil(27 / 32) = 1 (more than twice): refused, im2col packs the taps;
    * a 1x1 stride-2 convolution 64 -> 128 on 56x56 (16 lanes): the windows read 4 planes x 55 rows
      x 56 = 12,320 words against im2col's 28 x 28 x 4 = 3,136: refused, more bytes;
    * a 3x3 64 -> 64: taken; and not on a non-square, output-stationary or n:m skipping array, for
      sparse weights skipped (model-only), with ``conv_windows: false``, for a grouped convolution, or
      where the requantization table (one word per 16 output channels) outgrows its buffer (2 KiB of
      16 x 32-bit words = 32 words < 64)."""
    stem = _conv(3, 32, 224, 224, stride=2)
    assert "im2col packs the taps" in CP.layer_reason(stem, 1, AcceleratorConfig(rows=32, cols=32))
    strided = _conv(64, 128, 56, 56, kernel=1, stride=2, padding=0)
    assert "more bytes than im2col" in CP.layer_reason(strided, 1, SQUARE16)
    ok = _conv(64, 64, 56, 56)
    assert CP.layer_reason(ok, 1, SQUARE16) == ""
    assert "square array" in CP.layer_reason(ok, 1, SQUARE16.replace(cols=8))
    assert "weight-stationary" in CP.layer_reason(ok, 1, SQUARE16.replace(dataflow="os"))
    assert CP.layer_reason(ok, 1, SQUARE16.replace(conv_windows=False)) == "conv_windows is false"
    # not on the n:m skipping array (its activation words carry groups); idealized (bitmask) skipping
    # compresses im2col's K of sparse layers only: dense ones keep their windows
    assert "n:m skipping" in CP.layer_reason(ok, 1, SQUARE16.replace(zero_handling="skip", skip_pattern="2:4"))
    bitmask = SQUARE16.replace(zero_handling="skip", skip_pattern="bitmask")
    assert CP.layer_reason(ok, 1, bitmask) == ""
    sparse = ok.with_operands(weights=ok.weights.with_sparsity("0.5"))
    assert "compresses the layer's im2col K" in CP.layer_reason(sparse, 1, bitmask)
    grouped = Conv2d("g", in_channels=64, out_channels=64, in_h=56, in_w=56, kernel=3, padding=1, groups=2)
    assert "one group" in CP.layer_reason(grouped, 1, SQUARE16)
    wide = _conv(64, 1024, 14, 14, kernel=1, padding=0)
    assert CP.layer_reason(wide, 1, SQUARE16.replace(output_sram_bytes=2048)) == TABLE_REASON
    assert CP.layer_reason(wide, 1, SQUARE16.replace(output_sram_bytes=2048, requantize=False)) == ""


def _random_conv(rnd: random.Random, name: str = "conv", max_hw: int = 20) -> Conv2d:
    """A random convolution: kernels 1-7 (rectangular), strides 1-3, dilations 1-2, asymmetric padding."""
    while True:
        r, s = rnd.randint(1, 7), rnd.randint(1, 7)
        pad = tuple(rnd.randint(0, 3) for _ in range(4))
        try:
            return Conv2d(name, in_channels=rnd.choice([8, 16, 24, 40, 64, 96]), out_channels=rnd.randint(1, 80),
                          in_h=rnd.randint(4, max_hw), in_w=rnd.randint(4, max_hw), kernel=(r, s),
                          stride=(rnd.randint(1, 3), rnd.randint(1, 3)),
                          dilation=(rnd.randint(1, 2), rnd.randint(1, 2)), padding=pad)
        except WorkloadError:  # the kernel does not fit the padded map
            continue


def _random_square(rnd: random.Random, sizes: tuple[int, ...] = (4, 8, 16, 32)) -> AcceleratorConfig:
    """A square WS array (where the mode is built) with small buffers, single buffering, requantize or not."""
    n = rnd.choice(sizes)
    while True:
        try:
            return AcceleratorConfig(
                rows=n, cols=n, act_bits=rnd.choice([4, 8]), weight_bits=rnd.choice([2, 4, 8]),
                acc_bits=rnd.choice([24, 32]), zero_handling=rnd.choice(["none", "gate"]),
                input_sram_bytes=rnd.choice([1024, 4096, 16384, 65536]),
                weight_sram_bytes=rnd.choice([1024, 4096, 16384, 65536]),
                output_sram_bytes=rnd.choice([2048, 4096, 16384, 65536]),
                dram_bytes_per_cycle=rnd.choice([3, 8, 12.5, 32]), dram_latency_cycles=rnd.choice([0, 100]),
                double_buffered=rnd.random() < 0.6, requantize=rnd.random() < 0.6,
                conv_windows=rnd.random() < 0.9)
        except ConfigError:
            continue


def _planned(count: int, seed: int) -> list[tuple[Conv2d, int, CP.WinPlan]]:
    rnd = random.Random(seed)
    out: list[tuple[Conv2d, int, CP.WinPlan]] = []
    while len(out) < count:
        layer, cfg, batch = _random_conv(rnd), _random_square(rnd), rnd.choice([1, 2])
        if not CP.layer_reason(layer, batch, cfg):
            out.append((layer, batch, CP.plan_win(layer, batch, cfg)))
    return out


def test_every_tile_fits_its_slots() -> None:
    """40 random convolutions on random square arrays (small buffers, single buffering, batch 2): every
    tile's A band, B block and C block fit their slots (``slot_words``), the slots rotate over
    ``slots``, the tiles are ``tile_count`` in number and their loads and stores add up to the closed
    form ``traffic_bytes`` (A and B loaded, C stored), and the run-length program to the same tiles."""
    for layer, _batch, plan in _planned(40, 3):
        sa, sb, sc = plan.slot_words
        tiles = list(plan.tiles())
        assert len(tiles) == plan.tile_count == sum(count for count, *_ in _runs(plan))
        load = store = 0
        for t in tiles:
            wa, wb, wc = plan.block_words(t.m0, t.ms, t.ns, t.ks)
            assert (wa <= sa, wb <= sb, wc <= sc) == (True, True, True), (layer, t)
            assert 0 <= min(t.a_slot, t.b_slot, t.c_slot) and max(t.a_slot, t.b_slot, t.c_slot) < plan.slots
            ld, st = plan.tile_transfers(t)
            load, store = load + ld, store + st
        a, b, c = plan.traffic_bytes()
        assert (load, store) == (a + b, c), layer


def _runs(plan: CP.WinPlan) -> tuple[tuple[int, int, int, int], ...]:
    cfg = AcceleratorConfig(rows=plan.lanes, cols=plan.lanes)  # compute cycles depend on the array's size only
    return plan.tile_runs(cfg)


def test_descriptor_is_the_plan() -> None:
    """The window-mode descriptor: a band kind's A block is its input rows x the map's width
    (``a_words`` = ``dw_rows`` x ``in_w``, with the rows of ``band_kinds``; one band: all four kinds
    alike), C blocks are whole output rows (``c_words`` = rows x ``out_w``), B blocks the tile's
    folds x lanes; M in pixels, K in planes, the images as groups, window mode's flag (bit 6), and the
    packed kernel, stride, dilation and padding fields."""
    checked_kinds = set()
    for layer, _batch, plan in _planned(30, 4):
        d = plan.descriptor()
        kinds = plan.band_kinds()
        for (lm, fm), (m0, ms) in kinds.items():
            rows = plan.band(m0, ms)[1]
            assert d[f"dw_rows_{lm}{fm}"] == rows
            assert d[f"a_words_{lm}{fm}"] == rows * plan.in_w == plan.block_words(m0, ms, plan.nt, 1)[0]
        if plan.n_mt == 1:
            assert len({d[f"a_words_{k}"] for k in ("00", "01", "10", "11")}) == 1
        checked_kinds.add(min(plan.n_mt, 3))
        last_m = plan.out_h - (plan.n_mt - 1) * plan.mt
        assert d["c_words_00"] == plan.mt * plan.out_w and d["c_words_10"] == last_m * plan.out_w
        last_n = plan.out_channels - (plan.n_nt - 1) * plan.nt
        last_k = plan.planes - (plan.n_kt - 1) * plan.kt
        assert d["b_words_00"] == -(-plan.nt // plan.lanes) * plan.kt * plan.taps * plan.lanes
        assert d["b_words_11"] == -(-last_n // plan.lanes) * last_k * plan.taps * plan.lanes
        assert (d["m"], d["n"], d["k"], d["groups"], d["mt"], d["nt"], d["kt"]) == (
            plan.out_h * plan.out_w, plan.out_channels, plan.planes, plan.batch, plan.mt * plan.out_w, plan.nt,
            plan.kt)
        assert d["flags"] >> 6 & 1 and (d["flags"] & 1, d["flags"] >> 1 & 1) == (plan.a_reuse, plan.b_reuse)
        pt, pl, pb, pr = plan.padding
        assert d["dw_pad"] == pt | pl << 8 | pb << 16 | pr << 24
        assert d["dw_kernel"] == plan.r | plan.s << 8 | plan.stride[0] << 16 | plan.stride[1] << 24
        assert d["cv_dil"] == plan.dilation[0] | plan.dilation[1] << 8
        assert d["cv_lanes"] == layer.in_channels - (plan.planes - 1) * plan.lanes
        assert d["cv_a_block"] == plan.in_h * plan.in_w * plan.word_bytes()[0]
        assert d["q_words"] == (plan.out_planes if plan.requantized else 0)
    assert checked_kinds == {1, 2, 3}  # one band, two, and first / middle / last


# -- the sweep's fast path --------------------------------------------------------------------------------
def _groups(configs: list[AcceleratorConfig]) -> list[list[AcceleratorConfig]]:
    """Configs with the same uniform fields of ``fastpath._Points`` (as ``evaluate_network`` groups them)."""
    out: dict[tuple, list[AcceleratorConfig]] = {}
    for c in configs:
        out.setdefault((c.double_buffered, c.requantize, c.conv_windows), []).append(c)
    return list(out.values())


def test_fast_chooser_is_choose() -> None:
    """The fast path's plan choice (every candidate of every point at once) is ``convplan._choose``'s by
    estimate, point by point: where ``layer_reason`` is '' (and only there) the same K, N and M tiles and
    loop order, under each estimate; 30 random convolutions on 40 random square arrays, batch 1 and 2. (The
    exact pick among them that follows, ``convplan._exact_pick``, is held by test_fast_layers_equal_the_engine.)"""
    rnd = random.Random(8)
    configs = [_random_square(rnd) for _ in range(40)]
    taken = 0
    for j in range(30):
        layer, batch = _random_conv(rnd), 1 + j % 2
        for group in _groups(configs):
            found, *picks = fastpath._win_points(layer, batch, fastpath._Points.of(group))
            for i, cfg in enumerate(group):
                assert bool(found[i]) == (CP.layer_reason(layer, batch, cfg) == ""), (layer, cfg)
                if found[i]:
                    plans = CP._choose_estimate(layer, batch, cfg)
                    assert plans is not None
                    for plan, (kt, nf, wo, mt) in zip(plans, picks, strict=True):
                        nt = layer.out_channels if nf[i] * cfg.cols >= layer.out_channels else nf[i] * cfg.cols
                        assert (plan.kt, plan.nt, plan.weights_outer, plan.mt) == (kt[i], nt, wo[i], mt[i])
                    taken += 1
    assert taken >= 200


def test_fast_layers_equal_the_engine() -> None:
    """Each of 24 random convolutions (kernels 1-7, strides 1-3, dilations, asymmetric padding),
    batch 1 and 2, on 30 random square WS arrays (windows on most, im2col elsewhere): the fast path's
    cycles, compute cycles, DRAM bits and every energy part equal ``simulate_layer``'s (closed form)."""
    rnd = random.Random(21)
    configs = [_random_square(rnd, (4, 8, 16)) for _ in range(30)]
    windows = 0
    for j in range(24):
        layer, batch = _random_conv(rnd, max_hw=16), 1 + j % 2
        for group in _groups(configs):
            got = fastpath._layer(layer, batch, fastpath._Points.of(group))
            for i, cfg in enumerate(group):
                try:
                    ref = simulate_layer(layer, batch, cfg, engine="closed_form")
                except ConfigError:
                    assert not got.ok[i]
                    continue
                assert got.ok[i]
                have = (int(got.cycles[i]), int(got.compute[i]), int(got.dram_bits[i]),
                        {p: float(got.energy[p][i]) for p in ENERGY_PARTS})
                want = (ref.cycles, ref.compute_cycles, ref.counts.dram_read_bits + ref.counts.dram_write_bits,
                        ref.energy_breakdown_pj)
                assert have == want, (layer, batch, cfg)
                windows += not CP.layer_reason(layer, batch, cfg)
    assert windows >= 150


@pytest.mark.parametrize("batch", [1, 2])
def test_fast_network_equals_the_engine(batch) -> None:
    """ResNet-8 (CIFAR: 3x3 convolutions, strided ones with asymmetric padding, 1x1 shortcuts) and a
    chain of random convolutions, at batch ``batch``, on 16 random square WS arrays plus two fixed
    ones (one with ``conv_windows: false``): every summary column equals the point-by-point engine's."""
    rnd = random.Random(40 + batch)
    configs = [_random_square(rnd) for _ in range(16)] + [SQUARE16, SQUARE16.replace(conv_windows=False)]
    resnet = dataclasses.replace(zoo.get("resnet8_cifar"), batch=batch)
    layers = [_random_conv(rnd, name=f"c{i}", max_hw=14) for i in range(6)]
    chain = Network("random_convs", tuple(dataclasses.replace(lay, sources=("@input",)) for lay in layers),
                    batch=batch)
    windows = 0
    for net in (resnet, chain):
        for cfg in fast_equals_engine(net, configs):
            windows += sum(not CP.layer_reason(lay, batch, cfg) for lay in net.layers if isinstance(lay, Conv2d))
    assert windows >= 40


def test_even_bands_when_faster() -> None:
    """ResNet-18's 28x28 3x3 layers (128 channels) on 32x32 with 64 KiB buffers: the tallest band that fits
    is 9 rows (bands of 9, 9, 9 and 1); the last band reloads the weights for one row of compute, so the
    plan takes four even bands of 7 rows, the pipeline's cycles 128,396 -> 117,915 (closed form of both)."""
    from codesign.sim.engine import pipeline_closed_form
    from codesign.sim.mapping import TileRun

    cfg = AcceleratorConfig(rows=32, cols=32)
    layer = Conv2d("l2", in_channels=128, out_channels=128, in_h=28, in_w=28, kernel=3, padding=1)
    ests, plan = CP._choose_estimate(layer, 1, cfg), CP.plan_win(layer, 1, cfg)
    assert ests is not None
    est = ests[0]
    assert (est.mt, plan.mt, CP.even_band(est)) == (9, 7, 7)

    def cycles(p: CP.WinPlan) -> int:
        return pipeline_closed_form(tuple(TileRun(*r) for r in p.tile_runs(cfg)), cfg, p.prologue_bytes).cycles

    assert (cycles(est), cycles(plan)) == (128_396, 117_915)


def test_exact_pick_follows_the_objective() -> None:
    """MobileNetV1-0.25 VWW's 6x6 1x1 layers (128 -> 128 channels) on 8x8. In one tile the layer loads,
    computes and stores in turn: 12,816 cycles. The frugal plan (the fewest DRAM bytes: all 16 input
    planes a tile, the input read once, 24 output channels a tile) overlaps the loads with compute: 10,717
    cycles at 11.71 uJ; the estimate with the edges picks 8 tiles of 40 channels and half the planes,
    10,638 cycles, but reads the input four times: 16.30 uJ. The default objective (EDP) takes the frugal
    plan, latency the eight tiles. (DS-CNN's 25x5 1x1 layers: the frugal plan, 56 + 8 output channels
    with all planes, is both the fastest and the cheapest: 9,962 cycles, fewer than in one tile.)"""
    layer = zoo.get("mobilenet_v1_vww").layer("block7.pw")
    results = {}
    for objective in ("edp", "latency"):
        cfg = AcceleratorConfig(rows=8, cols=8, objective=objective)
        plan = CP.plan_win(layer, 1, cfg)
        r = simulate_layer(layer, 1, cfg)
        results[objective] = (plan.tile_count, plan.nt, plan.kt, r.cycles, round(r.energy_pj))
    assert results["edp"] == (6, 24, 16, 10_717, 11_708_761)
    assert results["latency"] == (8, 40, 8, 10_638, 16_296_420)
    ds = zoo.get("ds_cnn_kws").layer("ds1.pw")
    for objective in ("edp", "latency"):
        cfg = AcceleratorConfig(rows=8, cols=8, objective=objective)
        plan = CP.plan_win(ds, 1, cfg)
        assert (plan.tile_count, plan.nt, plan.kt, simulate_layer(ds, 1, cfg).cycles) == (2, 56, 8, 9_962)
