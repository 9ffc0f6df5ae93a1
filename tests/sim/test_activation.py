"""Table activations (hard-swish, SiLU, sigmoid, ...) in the simulator: a layer's ``activation`` runs in its
requantizing write-back on the vector unit's TABLE (``sim.mapping.with_activation``, flags bit 10).

The table's cost, from the RTL's program (``hdl.layer``): ``act_table_words`` more words in the prologue's
read, ``2**act_bits`` cycles writing the entries into the unit before the first tile's load, and every
store ``WRITEBACK_ADD_CYCLES`` later (the unit's stages on the way out); a lookup per output element. The
SimPy engine, the closed form and the sweep's fast path agree on it; what cannot build it is marked.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from codesign.errors import ConfigError, WorkloadError
from codesign.hdl.host import check_descriptor
from codesign.hdl.plan import HardwarePlan
from codesign.sim.config import AcceleratorConfig
from codesign.sim.engine import simulate_layer, simulate_network
from codesign.sim.fastpath import evaluate_network
from codesign.sim.mapping import plan_layer
from codesign.sim.tileplan import WRITEBACK_ADD_CYCLES, act_table_words
from codesign.workloads import zoo
from codesign.workloads.eltwise_arith import activation_table, apply_table, seeded_activation_table
from codesign.workloads.layers import Conv2d, Linear, Network, Pool

CFG = AcceleratorConfig(rows=8, cols=8, input_sram_bytes=4096, weight_sram_bytes=4096, output_sram_bytes=4096)


def test_table_words_and_bytes() -> None:
    """An 8-bit table is 256 entries of 8 bits: 2,048 bits. A WS table word of 8 columns holds 8 x 56 bits,
    56 entries: 5 words. On 32 columns a word holds 224 entries: 2 words. On IS a word is one entry's 56
    bits, 7 entries: 37 words. A 4-bit table of 16 entries fits one word."""
    assert act_table_words(CFG) == 5
    assert act_table_words(CFG.replace(rows=32, cols=32)) == 2
    assert act_table_words(CFG.replace(dataflow="is")) == 37
    assert act_table_words(CFG.replace(weight_bits=4, act_bits=4)) == 1
    conv = Conv2d("c", in_channels=16, out_channels=16, in_h=12, in_w=12, kernel=3, padding=1)
    act = dataclasses.replace(conv, activation="hard_swish")
    base, tab = plan_layer(conv, 1, CFG), plan_layer(act, 1, CFG)
    assert tab.tiling.q_words == base.tiling.q_words + 5  # type: ignore[union-attr]
    # a 448-bit table word is 56 bytes: 4 beats of the 16-byte bus, 64 bytes a word
    assert tab.counts.dram_read_bits - base.counts.dram_read_bits == 5 * 64 * 8
    assert tab.counts.vector_ops - base.counts.vector_ops == 16 * 12 * 12  # a lookup per output element
    assert (tab.prologue_extra_cycles, tab.store_extra_cycles) == (256, WRITEBACK_ADD_CYCLES)
    assert tab.tiling.descriptor()["flags"] >> 10 & 1 == 1  # type: ignore[union-attr]
    assert base.tiling.descriptor()["flags"] >> 10 & 1 == 0  # type: ignore[union-attr]


@pytest.mark.parametrize("layer", [
    Conv2d("win", in_channels=16, out_channels=24, in_h=14, in_w=14, kernel=3, padding=1, activation="silu"),
    Conv2d("stem", in_channels=3, out_channels=16, in_h=32, in_w=32, kernel=3, stride=2, padding=1,
           activation="hard_swish"),
    Conv2d("dw", in_channels=24, out_channels=24, in_h=14, in_w=14, kernel=5, padding=2, groups=24,
           activation="hard_swish"),
    Linear("fc", in_features=96, out_features=40, tokens=3, activation="gelu"),
])
def test_engines_agree_and_the_table_costs_its_cycles(layer: Conv2d | Linear) -> None:
    """SimPy and the closed form agree; the table's load delays the layer by at least its 256 cycles (the
    stores' extra cycles may hide under compute) and at most 256 + 8 a store plus its read."""
    plain = dataclasses.replace(layer, activation="")
    simpy = simulate_layer(layer, 1, CFG)
    closed = simulate_layer(layer, 1, CFG, engine="closed_form")
    assert (simpy.cycles, simpy.counts) == (closed.cycles, closed.counts)
    alone = simulate_layer(plain, 1, CFG)
    stores = sum(r.count for r in plan_layer(layer, 1, CFG).runs if r.store_bytes)
    table_read = act_table_words(CFG) * 64 // 16  # its beats at 16 B a cycle
    assert alone.cycles + 256 <= simpy.cycles <= alone.cycles + 256 + table_read + WRITEBACK_ADD_CYCLES * stores
    assert simpy.model_only == ""


def test_what_does_not_build_the_table_is_marked() -> None:
    conv = Conv2d("c", in_channels=16, out_channels=16, in_h=8, in_w=8, kernel=1, activation="sigmoid")
    assert "vector unit" in simulate_layer(conv, 1, CFG.replace(vector_unit=False)).model_only
    assert "vector unit" in simulate_layer(conv, 1, CFG.replace(dataflow="os")).model_only
    assert "requantiz" in simulate_layer(conv, 1, CFG.replace(requantize=False)).model_only
    # accumulator outputs: no table in the write-back, the plan is the layer's without it
    acc = CFG.replace(requantize=False)
    assert simulate_layer(conv, 1, acc).cycles == simulate_layer(dataclasses.replace(conv, activation=""), 1,
                                                                 acc).cycles


def test_activation_field_is_checked() -> None:
    with pytest.raises(WorkloadError, match="activation must be one of"):
        Conv2d("c", in_channels=4, out_channels=4, activation="swishy")
    with pytest.raises(WorkloadError, match="write-back of a convolution"):
        Pool("p", channels=4, in_h=4, in_w=4, kernel=2, stride=2, activation="silu")


def test_host_refuses_table_descriptors_the_design_cannot_run() -> None:
    conv = Conv2d("c", in_channels=16, out_channels=16, in_h=8, in_w=8, kernel=1, activation="tanh")
    plan = plan_layer(conv, 1, CFG).tiling
    desc = plan.descriptor(q_base=0)  # type: ignore[union-attr]
    check_descriptor(desc, HardwarePlan(CFG), plan)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=r"flags bit 10 \(table activation\) needs the vector unit"):
        check_descriptor(desc, HardwarePlan(CFG.replace(vector_unit=False)), plan)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="cannot go with a residual add"):
        check_descriptor({**desc, "flags": desc["flags"] | 1 << 7}, HardwarePlan(CFG), plan)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="q_words must hold the 5-word activation table"):
        check_descriptor({**desc, "q_words": 4}, HardwarePlan(CFG), plan)  # type: ignore[arg-type]


def test_seeded_tables_are_the_functions() -> None:
    """The seeded input scale spans [-8, 8): 1/16 a step, codes -128..127 are x = -8..7.9375.
    hard_swish(3) = 3 and hard_swish(-3) = 0; the output spans [-0.375, 7.9375] (the minimum at x = -1.5):
    8.3125 / 255 a step, zero point -128 + round(0.375 / step) = -116; 3 is code round(3 / step) - 116 = -24."""
    t = seeded_activation_table("hard_swish")
    step = 8.3125 / 255
    assert t[48] == round(3 / step) - 116 == -24  # x = 48 / 16 = 3
    assert t[256 - 48] == -116  # x = -3: zero
    assert apply_table(t, np.array([48, -48]), 8).tolist() == [-24, -116]
    # sigmoid on [-8, 8) spans (0, 1): 0.5 at x = 0 is the middle code
    s = seeded_activation_table("sigmoid")
    assert s[0] == 0 and s[128] == -128 and s[127] == 127
    assert np.array_equal(activation_table("tanh", 0.5, 0, 1 / 127, 0), np.clip(np.rint(np.tanh(
        (np.where(np.arange(256) >= 128, np.arange(256) - 256, np.arange(256))) * 0.5) * 127), -128, 127))


def test_zoo_networks_carry_their_activations() -> None:
    """MobileNetV3-Large (torchvision): hard-swish from the seventh block on, in the stem, the last
    convolution and the first classifier layer; hard-sigmoid SE gates. EfficientNet-B0: SiLU everywhere
    but the projections, sigmoid SE gates."""
    mb = {ly.name: ly.activation for ly in zoo.get("mobilenet_v3_large").layers}
    assert mb["conv_stem"] == mb["conv_head"] == mb["classifier.0"] == "hard_swish"
    assert mb["block5.expand"] == mb["block5.dw"] == "" and mb["block6.expand"] == mb["block6.dw"] == "hard_swish"
    assert mb["block3.se.fc2"] == "hard_sigmoid" and mb["block3.se.fc1"] == "" and mb["block6.project"] == ""
    ef = {ly.name: ly.activation for ly in zoo.get("efficientnet_b0").layers}
    assert ef["conv_stem"] == ef["block1.expand"] == ef["block1.dw"] == ef["block1.se.fc1"] == "silu"
    assert ef["block1.se.fc2"] == "sigmoid" and ef["block1.project"] == "" and ef["classifier"] == ""


def _small_net() -> Network:
    from codesign.workloads.zoo import NetBuilder
    from codesign.workloads.zoo_mobile import squeeze_excite

    b = NetBuilder(3, 24, 24)
    b.conv("stem", 16, 3, stride=2, activation="hard_swish")
    block_in = b.src
    b.conv("expand", 48, 1, padding=0, activation="silu")
    b.dwconv("dw", 5, activation="silu")
    squeeze_excite(b, "se", 12, act="silu", gate_act="sigmoid")
    b.conv("project", 16, 1, padding=0)
    b.add("add", other=block_in)
    b.global_pool("pool")
    b.linear("fc", 10, activation="tanh")
    return b.network("small_act", 1, (3, 24, 24))


@pytest.mark.parametrize("mapping", ["fixed", "search"])
def test_fast_path_equals_point_by_point(mapping: str) -> None:
    """The sweep's fast path (``sim.fastpath``) gives the closed form's numbers for layers with table
    activations, at random designs (dataflows, arrays, bits, buffers), fixed and searched mappings."""
    net = zoo.get("mobilenet_v3_small") if mapping == "fixed" else _small_net()
    rng = np.random.default_rng(3)
    cfgs = []
    for _ in range(10):
        r = int(rng.choice([4, 8, 16]))
        b = int(rng.choice([4, 8]))
        cfgs.append(AcceleratorConfig(rows=r, cols=r, act_bits=b, weight_bits=b, mapping=mapping,
                                      dataflow=str(rng.choice(["ws", "ws", "os", "is"])),
                                      input_sram_bytes=int(rng.choice([2048, 8192, 65536])),
                                      output_sram_bytes=int(rng.choice([4096, 65536]))))
    for cfg, fast in zip(cfgs, evaluate_network(net, cfgs), strict=True):
        if fast is None:
            continue
        slow = simulate_network(net, cfg, engine="closed_form").summary()
        for key, value in fast.items():
            if isinstance(value, str):
                assert value == slow[key], (cfg, key)
            else:
                assert value == pytest.approx(slow[key], rel=1e-9), (cfg, key)
