"""Inter-layer dataflow: the graph, fused write-backs, resident tensors, operand sources."""

from __future__ import annotations

import pytest

from codesign.errors import ConfigError, WorkloadError
from codesign.sim.config import AcceleratorConfig
from codesign.sim.engine import simulate_layer, simulate_network
from codesign.sim.fusion import DEFAULT, plan_network, producers
from codesign.workloads import zoo
from codesign.workloads.layers import Conv2d, Eltwise, Network

# the array's layers, im2col'd (the fusion model plans its layers as GEMMs: the engines' and the on-chip
# windows' fusion is model-only)
CFG = AcceleratorConfig(rows=16, cols=16, depthwise="array", conv_windows=False)


def _names(net, idx):
    return [net.layers[j].name if j is not None else None for j in idx]


def test_graph_follows_branches_and_concats() -> None:
    """SqueezeNet's expand3x3 reads squeeze's output (not expand1x1's, the layer before it); the
    concat of the two expands has no single producer and is read from DRAM; SE's scale reads the
    depthwise output and its per-channel scale from the SE's second 1x1 conv; a residual add reads the
    block's last conv and the block's input (the zoo names the graph's edges)."""
    sq = zoo.get("squeezenet1_1")
    pr = dict(zip((x.name for x in sq.layers), producers(sq), strict=True))
    assert _names(sq, pr["fire2.expand3x3"]) == ["fire2.squeeze"]
    assert _names(sq, pr["fire3.squeeze"]) == [None]
    mb = zoo.get("mobilenet_v3_small")
    pr = dict(zip((x.name for x in mb.layers), producers(mb), strict=True))
    assert _names(mb, pr["block0.se.scale"]) == ["block0.dw", "block0.se.fc2"]
    assert _names(mb, pr["block2.add"]) == ["block2.project", "block1.project"]
    rn = zoo.get("resnet18")
    pr = dict(zip((x.name for x in rn.layers), producers(rn), strict=True))
    assert _names(rn, pr["layer2.0.add"]) == ["layer2.0.conv2", "layer2.0.downsample"]
    assert _names(rn, pr["layer2.1.add"]) == ["layer2.1.conv2", "layer2.0.add"]
    scale = mb.layer("block0.se.scale")
    assert scale.input_elements() == 16 * 56 * 56 + 16  # the scale is per channel, not a full tensor


def test_fusion_none_is_every_layer_alone() -> None:
    net = zoo.get("resnet18")
    cfg = CFG.replace(fusion="none")
    assert plan_network(net, cfg) == (DEFAULT,) * len(net.layers)
    r = simulate_network(net, cfg)
    assert r.layers == tuple(simulate_layer(x, 1, cfg) for x in net.layers)


def test_eltwise_fuses_residual_adds_into_the_producer() -> None:
    """ResNet-18, eltwise: each residual add runs in the write-back of the layer before it, with no
    cycles of its own, built (the vector unit's ADD in the requantized write-back); the head's DMA
    reads the residual (E bytes of an add of E elements: 16 lanes of 8 bits fill a 16-byte beat) with
    its loads. The network saves exactly what the adds moved alone less that read: 2 * E bytes per add
    (read 2E, write E alone; read E fused), and the identity requantization table word the vector
    unit's write-back reads alone (16 lanes x 56 bits = 112 bytes: sim.vecplan). Without the vector
    unit the same fusion is model-only, the residual read on the add's row."""
    net = zoo.get("resnet18")
    none = simulate_network(net, CFG.replace(fusion="none"), engine="closed_form")
    elt = simulate_network(net, CFG.replace(fusion="eltwise"), engine="closed_form")
    model = simulate_network(net, CFG.replace(fusion="eltwise", vector_unit=False), engine="closed_form")
    adds = [x for x in net.layers if isinstance(x, Eltwise)]
    assert len(adds) == 8
    for a in adds:
        i = net.layers.index(a)
        r = elt.layer(a.name)
        assert r.fused_into == net.layers[i - 1].name
        assert (r.cycles, r.input_from, r.other_from, r.output_to) == (0, "writeback", "dram", "dram")
        assert r.counts.dram_read_bits == 0 and r.counts.dram_write_bits == 0 and r.model_only == ""
        head = elt.layer(net.layers[i - 1].name)
        alone = none.layer(head.layer)
        assert head.counts.dram_read_bits == alone.counts.dram_read_bits + a.elements * 8
        assert head.cycles >= alone.cycles and head.model_only == ""
        m = model.layer(a.name)
        assert m.counts.dram_read_bits == a.elements * 8 and "fused" in m.model_only
        assert "write-back" in model.layer(head.layer).model_only
    saved = sum(x.dram_bytes for x in none.layers) - sum(x.dram_bytes for x in elt.layers)
    assert saved == sum(2 * a.elements + 112 for a in adds)
    assert elt.cycles < none.cycles and elt.energy_pj < none.energy_pj


def _chain(sources: tuple[str, ...] = ()) -> Network:
    """conv a -> conv b -> conv c -> add(c, a): a residual over two convs (8x8x8 maps, 512 bytes)."""
    conv = dict(in_channels=8, out_channels=8, in_h=8, in_w=8, kernel=3, padding=1)
    return Network("res", (Conv2d("a", **conv), Conv2d("b", **conv), Conv2d("c", **conv),
                           Eltwise("add", elements=512, sources=sources)))


def test_full_keeps_a_residual_on_chip_when_named_and_it_fits() -> None:
    """With the add's sources named, 'a' (512 bytes) stays resident from a to the add: b reads it
    on chip and the fused add reads it on chip too; without sources the residual comes from DRAM.
    With a 512-byte input SRAM nothing can stay (a 512-byte map leaves no room for a tile)."""
    cfg = CFG.replace(fusion="full", input_sram_bytes=64 * 1024)
    r = simulate_network(_chain(("c", "a")), cfg)
    rows = {x.layer: x for x in r.layers}
    assert (rows["a"].output_to, rows["b"].input_from, rows["c"].input_from) == ("onchip", "onchip", "onchip")
    assert (rows["add"].fused_into, rows["add"].other_from, rows["add"].counts.dram_read_bits) == ("c", "onchip", 0)
    assert rows["a"].counts.dram_write_bits == 0 and rows["b"].counts.dram_read_bits < rows["a"].counts.dram_read_bits
    anon = simulate_network(_chain(), cfg)
    assert anon.layer("add").other_from == "dram" and anon.layer("add").counts.dram_read_bits == 512 * 8
    small = simulate_network(_chain(("c", "a")), cfg.replace(input_sram_bytes=512))
    assert all(x.input_from != "onchip" for x in small.layers)


def test_resident_tensors_fit_the_input_sram() -> None:
    """MobileNetV2, full, 256 KiB input SRAM: at every layer the resident tensors and the room
    left for its own input tiles fit the input SRAM (a layer tiled for less gets a plan that fits it)."""
    net = zoo.get("mobilenet_v2")
    cfg = CFG.replace(fusion="full", input_sram_bytes=256 * 1024)
    ctxs = plan_network(net, cfg)
    assert any(c.input_from == "onchip" for c in ctxs)
    for layer, ctx in zip(net.layers, ctxs, strict=True):
        if ctx.input_sram_bytes:
            from codesign.sim.mapping import plan_layer

            tp = plan_layer(layer, 1, cfg, ctx).tiling
            a_bytes = tp.slot_words[0] * tp.slots * tp.geometry.a_word_bits // 8
            assert 0 < a_bytes <= ctx.input_sram_bytes < cfg.input_sram_bytes


@pytest.mark.parametrize("fusion", ["eltwise", "full"])
def test_mobilenet_v2_fusion_saves_dram_and_energy(fusion) -> None:
    """Issue 11 acceptance: less DRAM traffic and energy than fusion none, with per-layer sources;
    SimPy and its twin agree on every layer in the fusion contexts."""
    net = zoo.get("mobilenet_v2")
    cfg = AcceleratorConfig(rows=32, cols=32, input_sram_bytes=256 * 1024)
    base = simulate_network(net, cfg.replace(fusion="none"))
    fused = simulate_network(net, cfg.replace(fusion=fusion))
    assert sum(x.dram_bytes for x in fused.layers) < sum(x.dram_bytes for x in base.layers)
    assert fused.energy_pj < base.energy_pj and fused.cycles < base.cycles
    assert {x.input_from for x in fused.layers} >= {"dram", "writeback"}
    twin = simulate_network(net, cfg.replace(fusion=fusion), engine="closed_form")
    assert [x.cycles for x in twin.layers] == [x.cycles for x in fused.layers]


def test_sources_must_name_earlier_layers() -> None:
    with pytest.raises(WorkloadError, match=r"layer 'add': source 'zz' is not an earlier layer"):
        _chain(("c", "zz"))
    with pytest.raises(WorkloadError, match=r"sources must be a list of layer names, not \(1,\)"):
        Eltwise("add", elements=4, sources=(1,))
    with pytest.raises(WorkloadError, match=r"operand_elements must be 2 integers from 1 to elements \(4\)"):
        Eltwise("add", elements=4, operand_elements=(4, 5))


def test_fusion_field_validates() -> None:
    with pytest.raises(ConfigError) as e:
        AcceleratorConfig(fusion="some")
    assert str(e.value) == "fusion must be one of auto, none, eltwise, full, not 'some'"


def test_built_residual_adds_on_windows_simpy_equals_closed_form() -> None:
    """The default machine (on-chip windows, the vector unit, 8-bit outputs) with fusion eltwise: every
    residual add of ResNet-18 and MobileNetV2 is built into its producer's write-back (buildable), and the
    SimPy engine and its closed-form twin agree on every layer (each store's data WRITEBACK_ADD_CYCLES
    later, the residual on the loads)."""
    from codesign.sim.tileplan import WRITEBACK_ADD_CYCLES

    assert WRITEBACK_ADD_CYCLES == 7  # the vector unit's 7 stages before the write-back's queue (hdl.memory.dma)
    for name in ("resnet18", "mobilenet_v2"):
        net = zoo.get(name)
        cfg = AcceleratorConfig(rows=16, cols=16, fusion="eltwise")
        a = simulate_network(net, cfg, engine="simpy")
        b = simulate_network(net, cfg, engine="closed_form")
        assert a.layers == b.layers
        adds = [x.name for x in net.layers if isinstance(x, Eltwise)]
        assert adds and all(a.layer(n).fused_into and a.layer(n).model_only == "" for n in adds)
        assert all(x.model_only == "" for x in a.layers if x.fused_into == "" and x.kind != "pool")
