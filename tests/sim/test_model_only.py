"""The model-only label and the depthwise engine."""

from __future__ import annotations

from codesign.sim.config import AcceleratorConfig
from codesign.sim.engine import VECTOR_REASON, simulate_layer, simulate_network
from codesign.sim.tileplan import DMA_WRITE_OVERHEAD_CYCLES, REQUANT_WRITE_CYCLES, model_only_reason
from codesign.sim.vector_engine import REASON as DW_REASON
from codesign.sweeps import metrics_row
from codesign.workloads import zoo
from codesign.workloads.layers import Conv2d, Pool

CONV = Conv2d("c", in_channels=16, out_channels=16, in_h=8, in_w=8, kernel=3, padding=1)
DW = Conv2d("dw", in_channels=32, out_channels=32, in_h=16, in_w=16, kernel=3, padding=1, groups=32)


def test_layers_the_hardware_builds_are_not_model_only() -> None:
    cfg = AcceleratorConfig(rows=8, cols=8)
    r = simulate_layer(CONV, 1, cfg)
    assert r.model_only == "" and r.row()["model_only"] == ""
    pool = Pool("p", channels=4, in_h=8, in_w=8, kernel=2, stride=2)
    assert simulate_layer(pool, 1, cfg).model_only == ""  # a max pool on the depthwise engine (sim.dwplan)
    assert simulate_layer(pool, 1, cfg.replace(depthwise="array")).model_only == VECTOR_REASON  # no engine


def test_config_reasons_come_from_the_tileplan() -> None:
    for changes in ({"skip_pattern": "bitmask"}, {"dataflow": "os"}, {"rows": 9}):
        cfg = AcceleratorConfig(rows=8, cols=8, zero_handling="skip").replace(**changes)
        assert simulate_layer(CONV, 1, cfg).model_only == model_only_reason(cfg) != ""
    built = AcceleratorConfig(rows=8, cols=8, zero_handling="skip", skip_pattern="2:4")
    assert model_only_reason(built) == simulate_layer(CONV, 1, built).model_only == ""


def test_network_and_sweep_rows_carry_the_distinct_reasons() -> None:
    """The depthwise engine is built beside a square weight-stationary array: on a 16x8 array it is
    the model-only engine, and its reason sits beside the vector unit's."""
    net = zoo.get("mobilenet_v2")
    r = simulate_network(net, AcceleratorConfig(rows=16, cols=8, depthwise="engine"), engine="closed_form")
    reasons = r.model_only.split("; ")
    assert DW_REASON in reasons and VECTOR_REASON in reasons and len(reasons) == len(set(reasons))
    assert metrics_row(r, 1.0)["model_only"] == r.model_only == r.summary()["model_only"]


def test_depthwise_engine_closed_form() -> None:
    """32 channels on the built engine's 32 lanes, one tile (sim.dwplan): read the requantization table
    (one word of 32 x 56 bits = 224 bytes) in a command of its own, then the 16 x 16 plane (256 words of
    32 bytes: the padding is made on chip) and the weight block (the 3x3 kernel's 9 tap words and the
    channel count: 320 bytes; the layer writes the taps into the corner of the engine's cleared 5x5 slots)
    = 8,512 bytes; compute 1 (tile issue) + 10 (weight block) + 3 + 18 x 18 padded positions + 5 (drain) =
    343 cycles; store 256 * 32 = 8,192 bytes through the requantizing write-back (DMA_WRITE_OVERHEAD_CYCLES
    = 3 with the DMA's command register; its four cuts of arithmetic and its queue add
    REQUANT_WRITE_CYCLES = 6):
    (3+100+14) + (3+100+8512/16) + 343 + (3+6+100+8192/16) = 1,716 (a read: the decision, the DMA's
    command register, the first address).
    With a 3x3 window (depthwise_kernel: 3) the block and the cycles are the same."""
    cfg = AcceleratorConfig(rows=32, cols=32, depthwise="engine")
    r = simulate_layer(DW, 1, cfg)
    assert r.compute_cycles == 343 and r.tiles == 1
    assert r.cycles == (3 + 100 + 14) + (3 + 100 + 532) + 343 + (
        DMA_WRITE_OVERHEAD_CYCLES + REQUANT_WRITE_CYCLES + 100 + 512) == 1_716
    assert r.counts.dram_read_bits == (224 + 8192 + 320) * 8 and r.counts.dram_write_bits == 8192 * 8
    small = simulate_layer(DW, 1, cfg.replace(depthwise_kernel=3))
    assert small.compute_cycles == 343 and small.counts.dram_read_bits == (224 + 8192 + 320) * 8
    assert small.cycles == r.cycles
    assert r.model_only == ""
    assert r.counts.active_macs == 32 * 9 * 16 * 16
    array = simulate_layer(DW, 1, cfg.replace(depthwise="array"))
    assert array.cycles > 3 * r.cycles


def test_mobilenet_v2_depthwise_engine_cycles_and_utilization() -> None:
    """Issue 11: the depthwise engine cuts MobileNetV2's cycles and raises its utilization (32x32 WS)."""
    net = zoo.get("mobilenet_v2")
    cfg = AcceleratorConfig(rows=32, cols=32)
    array = simulate_network(net, cfg.replace(depthwise="array"), engine="closed_form")
    engine = simulate_network(net, cfg.replace(depthwise="engine"), engine="closed_form")
    assert engine.cycles * 5 < array.cycles and engine.utilization > 5 * array.utilization
    assert engine.energy_pj < array.energy_pj


def test_a_requantization_table_larger_than_its_buffer_is_model_only() -> None:
    """The hardware loads a layer's table whole: on 32x32 WS with 64 KiB output buffers it holds
    65536 * 8 / (32 * 32) = 512 words, one per group and chunk of 32 channels. MobileNetV2's depthwise
    layers of 576 and 960 channels (one channel per group: 576 and 960 words) do not fit; a 960-channel
    pointwise layer (30 words) and a 144-channel depthwise one do. The network label (engine and the
    sweep fast path alike) names the reason; without requantize the table does not exist."""
    from codesign.sim import fastpath
    from codesign.sim.tileplan import TABLE_REASON

    net = zoo.get("mobilenet_v2")
    cfg = AcceleratorConfig(rows=32, cols=32, depthwise="array")  # (on the engine: one word per 32 channels)
    r = simulate_network(net, cfg, engine="closed_form")
    flagged = {lr.layer for lr in r.layers if TABLE_REASON in lr.model_only}
    expect = {ly.name for ly in net.layers if isinstance(ly, Conv2d) and ly.groups > 512}
    assert flagged == expect and {ly.groups for ly in net.layers if ly.name in expect} == {576, 960}
    assert TABLE_REASON in r.model_only
    (fast,) = fastpath.evaluate_network(net, [cfg])
    assert fast is not None and fast["model_only"] == r.model_only
    plain = simulate_network(net, cfg.replace(requantize=False), engine="closed_form")
    assert TABLE_REASON not in plain.model_only
