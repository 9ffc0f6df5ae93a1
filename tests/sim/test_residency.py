"""Residency in the simulator (``sim/residency.py``): which outputs stay in the input buffer, and what that
saves. The RTL's side (the same cycles and bytes, bit-exact outputs) is ``tests/rtl/test_residency_rtl.py``."""

from __future__ import annotations

import pytest

from codesign.sim.config import AcceleratorConfig
from codesign.sim.engine import simulate_network
from codesign.sim.fusion import DEFAULT, plan_network
from codesign.sim.mapping import plan_layer
from codesign.sim.residency import RES_PASS_OVERHEAD_CYCLES, design_reason, single_input_bytes
from codesign.workloads.zoo import get

DSCNN = {"rows": 8, "cols": 8, "clock_mhz": 100}


def test_ds_cnn_keeps_its_maps_on_chip():
    """DS-CNN on 8x8: every map is 25x5 of 64 channels, 8 planes x 125 words = 1,000 words of 8 bytes, within a
    4,096-word slot of the 64 KiB input buffer, and each layer reads its input as one tile: conv1 -> ds1.dw ->
    ... -> ds4.pw stay on chip (the slots alternating from conv1's load into slot 0); ds4.pw -> avgpool does not
    (the pool reads the map as the array's B operand); avgpool -> fc does."""
    net = get("ds_cnn_kws")
    config = AcceleratorConfig(**DSCNN)  # type: ignore[arg-type]
    ctx = plan_network(net, config)
    assert [c.res_out for c in ctx] == [True] * 8 + [False, True, False]
    assert [c.res_in for c in ctx] == [False] + [True] * 8 + [False, True]
    assert [c.in_slot for c in ctx] == [0, 1, 0, 1, 0, 1, 0, 1, 0, 0, 1]
    on = simulate_network(net, config, engine="closed_form")
    off = simulate_network(net, AcceleratorConfig(**DSCNN, residency=False), engine="closed_form")  # type: ignore[arg-type]
    # each resident edge removes the producer's store (1,000 words at 16-byte beats) and the consumer's A load
    # of the same 16,000 bytes; avgpool -> fc removes fc's 8-word input (128 bytes)
    saved = 8 * 2 * 16_000 + 2 * 128
    dram = lambda r: (r.counts.dram_read_bits + r.counts.dram_write_bits) // 8  # noqa: E731
    assert sum(dram(r) for r in off.layers) - sum(dram(r) for r in on.layers) == saved
    assert on.cycles <= 60_000 < off.cycles  # issue 20's target: at most 60 k cycles (67,022 without)


@pytest.mark.parametrize("workload", ["ds_cnn_kws", "mobilenet_v1_vww", "resnet8_cifar"])
def test_simpy_and_closed_form_agree(workload):
    """The resident plans' passes (``RES_PASS_OVERHEAD_CYCLES`` + words each, no bus) and loads without A are
    timed the same by the SimPy engine and its closed form, layer by layer."""
    net = get(workload)
    config = AcceleratorConfig(**DSCNN)  # type: ignore[arg-type]
    assert any(c.res_out for c in plan_network(net, config))
    a = simulate_network(net, config, engine="simpy")
    b = simulate_network(net, config, engine="closed_form")
    assert [r.cycles for r in a.layers] == [r.cycles for r in b.layers]


def test_a_resident_store_is_a_pass_of_its_words():
    """ds1.dw alone stores 1,000 words (16,000 bytes); kept on chip its one store is a pass of 1,000 words plus
    ``RES_PASS_OVERHEAD_CYCLES`` (7: decision, command, buffer read, 4 requantize cuts, the queue) and no bytes;
    its input load moves only the weights and table."""
    net = get("ds_cnn_kws")
    config = AcceleratorConfig(**DSCNN)  # type: ignore[arg-type]
    ctx = plan_network(net, config)
    layer = net.layers[1]
    alone = plan_layer(layer, 1, config, DEFAULT)
    kept = plan_layer(layer, 1, config, ctx[1])
    assert RES_PASS_OVERHEAD_CYCLES == 7
    assert kept.store_pass_cycles == 7
    assert [(r.store_bytes, r.passes, r.pass_words) for r in kept.runs] == [(0, True, 1000)]
    assert sum(r.store_bytes for r in alone.runs) == 16_000
    a_bytes = single_input_bytes(alone)
    assert a_bytes == 16_000
    assert kept.runs[0].load_bytes == alone.runs[0].load_bytes - a_bytes


def test_residency_off():
    """``residency: false``, fusion none or full, a non-square array or a single-buffered one: no resident
    output (``design_reason`` names why)."""
    net = get("ds_cnn_kws")
    for extra, why in (({"residency": False}, "residency is false"),
                       ({"double_buffered": False}, "double_buffered"),
                       ({"cols": 16}, "square array")):
        config = AcceleratorConfig(**{**DSCNN, **extra})  # type: ignore[arg-type]
        assert why in design_reason(config)
        assert not any(c.res_out or c.res_in for c in plan_network(net, config))
    for fusion in ("none", "full"):
        config = AcceleratorConfig(**DSCNN, fusion=fusion)  # type: ignore[arg-type]
        assert not any(c.res_out or c.res_in for c in plan_network(net, config))
