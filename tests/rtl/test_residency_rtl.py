"""Residency on the network top (``sim/residency.py``, flags bits 12..14): a layer's output written into the
input buffer's other slot for the next layer, which loads no input.

Each network runs from one start with seeded integer weights: the last layer's outputs (in DRAM) and every
layer's that writes DRAM equal the numpy reference (a resident output is checked through the chain that reads
it: a wrong word there changes everything after it); every layer's cycles, stalls and DRAM bytes equal the
simulator's; the program's cycles equal ``program_cycles``.
"""

from __future__ import annotations

import pytest

from codesign.errors import ConfigError
from codesign.hdl.bench.runner import default_simulator, simulator_available
from codesign.hdl.verify import verify_program
from codesign.sim.config import AcceleratorConfig
from codesign.sim.engine import simulate_network
from codesign.sim.fusion import plan_network
from codesign.sim.residency import RES_PASS_OVERHEAD_CYCLES
from codesign.workloads.zoo import NetBuilder
from codesign.workloads.zoo_mobile import same_padding

from .conftest import SMALL_4X4

pytestmark = [
    pytest.mark.rtl,
    pytest.mark.skipif(not simulator_available(default_simulator()),
                       reason=f"the RTL simulator {default_simulator()} is not installed"),
]

# 4x4 array: a word is 4 channels (4 bytes, one beat of the 4-byte bus); a 2 KiB input buffer has two slots of
# 256 words; a 2 KiB output buffer holds a tile of 64 words of accumulators
CONFIG = {**SMALL_4X4, "input_sram_bytes": 2048, "output_sram_bytes": 2048}


def ds_chain(h: int, w: int, channels: int = 8, stride2: bool = False, activation: str = ""):
    """conv 3x3 stride 2 (the host's im2col) -> depthwise 3x3 (stride 2 with ``stride2``) -> pointwise ->
    depthwise 3x3 -> pointwise -> global average pool -> linear, each reading the one before it."""
    b = NetBuilder(1, h, w)
    b.conv("conv", channels, 3, stride=2, padding=same_padding(b, 3, 2), bias=True)
    s = 2 if stride2 else 1
    b.conv("dw1", channels, 3, stride=s, padding=same_padding(b, 3, s), groups=channels, bias=True)
    b.conv("pw1", channels, 1, padding=0, bias=True, activation=activation)
    b.conv("dw2", channels, 3, padding=same_padding(b, 3, 1), groups=channels, bias=True, activation=activation)
    b.conv("pw2", channels, 1, padding=0, bias=True)
    b.global_pool("pool")
    b.linear("fc", 5)
    return b.network("ds_chain", 1, (1, h, w))


def resident(net, config) -> list[tuple[str, bool, bool, int]]:
    return [(ly.name, c.res_in, c.res_out, c.in_slot) for ly, c in zip(net.layers, plan_network(net, config),
                                                                         strict=True)]


def assert_exact(net, config, seed: int) -> None:
    v = verify_program(net, config, seed=seed)
    assert v.outputs_match, [(r.layer, r.outputs_match) for r in v.layers]
    sim = simulate_network(net, config)
    for r, s in zip(v.layers, sim.layers, strict=True):
        assert (r.rtl_cycles, r.rtl_stall_cycles, r.rtl_dram_read_bytes, r.rtl_dram_write_bytes) == (
            r.sim_cycles, r.sim_stall_cycles, r.sim_dram_read_bytes, r.sim_dram_write_bytes) == (
            s.cycles, s.stall_cycles, s.counts.dram_read_bits // 8, s.counts.dram_write_bits // 8), r.layer
        assert r.rtl_enabled_macs == r.ref_enabled_macs, r.layer
    assert v.rtl_cycles == v.sim_cycles == sim.program_cycles
    assert v.ok


def test_chain_kept_on_chip():
    """A 10x8 input, the conv's 5x4 map of 8 channels: 2 planes x 20 words = 40 words, and every later map as
    small, each read as one tile: conv -> dw1 -> pw1 -> dw2 -> pw2 all stay in the input buffer, the slots
    alternating (conv's input loads into slot 0, its output goes to slot 1, dw1 reads slot 1 and writes slot
    0, ...). pw2 -> pool does not (the pool reads the map as the array's B operand); pool -> fc does. Only
    the conv's input, the weights and tables, pw2's map, the pool's and fc's outputs move over AXI."""
    config = AcceleratorConfig(**CONFIG)  # type: ignore[arg-type]
    net = ds_chain(10, 8)
    assert resident(net, config) == [
        ("conv", False, True, 0), ("dw1", True, True, 1), ("pw1", True, True, 0), ("dw2", True, True, 1),
        ("pw2", True, False, 0), ("pool", False, True, 0), ("fc", True, False, 1)]
    sim = simulate_network(net, config)
    alone = simulate_network(net, AcceleratorConfig(**{**CONFIG, "residency": False}))  # type: ignore[arg-type]
    by = {r.layer: r for r in sim.layers}
    # a resident output writes nothing to DRAM; dw1's 40 output words (4 bytes each) would have
    assert by["conv"].counts.dram_write_bits == 0 and by["dw1"].counts.dram_write_bits == 0
    assert {r.layer: r.counts.dram_write_bits for r in alone.layers}["dw1"] == 40 * 4 * 8
    assert sim.cycles < alone.cycles
    assert RES_PASS_OVERHEAD_CYCLES == 7
    assert_exact(net, config, seed=11)


@pytest.mark.parametrize(("h", "w"), [(32, 20), (24, 16)])
def test_chain_spills_what_does_not_fit(h, w):
    """32x20: the conv's 16x10 map of 8 channels is 2 planes x 160 = 320 words, more than a 256-word slot: it
    goes to DRAM and dw1 (stride 2) loads it in bands, and pw1 reads dw1's 8x5 map in bands of rows too (its
    plan alone): only pool -> fc stays on chip. 24x16: the conv's 12x8 map (192 words) would fit, but the conv
    reads its im2col in two tiles (its slots alternate): it goes to DRAM; dw1 loads it as one tile into slot 0
    and from there the maps stay on chip (slots 1, 0, 1)."""
    config = AcceleratorConfig(**CONFIG)  # type: ignore[arg-type]
    net = ds_chain(h, w, stride2=True)
    flags = resident(net, config)
    if h == 32:
        assert [f[1:3] for f in flags] == [(False, False)] * 5 + [(False, True), (True, False)]
    else:
        assert flags[:5] == [("conv", False, False, 0), ("dw1", False, True, 0), ("pw1", True, True, 1),
                             ("dw2", True, True, 0), ("pw2", True, False, 1)]
    assert_exact(net, config, seed=h)


def test_resident_outputs_through_table_activations():
    """pw1 and dw2 run a table activation in the write-back (the vector unit's 7 stages before each word) and
    keep their outputs on chip: the resident store takes those stages too."""
    config = AcceleratorConfig(**CONFIG)  # type: ignore[arg-type]
    net = ds_chain(10, 8, activation="hard_swish")
    flags = resident(net, config)
    assert flags[2] == ("pw1", True, True, 0) and flags[3] == ("dw2", True, True, 1)
    assert_exact(net, config, seed=13)


def conv_chain(h: int, w: int, channels: int = 8):
    """conv 3x3 stride 2 (im2col) -> conv 3x3 -> conv 3x3 (twice the channels) -> conv 1x1 -> global average
    pool -> linear, on windows after the first."""
    b = NetBuilder(1, h, w)
    b.conv("conv", channels, 3, stride=2, padding=same_padding(b, 3, 2), bias=True)
    b.conv("c2", channels, 3, padding=same_padding(b, 3, 1), bias=True)
    b.conv("c3", 2 * channels, 3, padding=same_padding(b, 3, 1), bias=True)
    b.conv("c4", 2 * channels, 1, padding=0, bias=True)
    b.global_pool("pool")
    b.linear("fc", 5)
    return b.network("conv_chain", 1, (1, h, w))


def test_a_layer_planned_as_one_tile_for_residency():
    """c4 (1x1, 16 -> 16 channels on an 8x6 map) plans its input in bands of rows alone; its whole input (4
    planes x 48 = 192 words) fits a 256-word slot, so residency plans it as one tile of every row and plane
    (``single_tile``: sim.residency.single_win_plan) where c3's output then stays on chip and the pair takes
    fewer cycles. The hardware runs that plan like any other: exact."""
    from codesign.sim.fusion import DEFAULT
    from codesign.sim.mapping import plan_layer

    config = AcceleratorConfig(**CONFIG)  # type: ignore[arg-type]
    net = conv_chain(16, 12)
    ctx = plan_network(net, config)
    assert [(ly.name, c.res_in, c.res_out, c.single_tile) for ly, c in zip(net.layers, ctx, strict=True)][1:4] == [
        ("c2", False, True, False), ("c3", True, True, False), ("c4", True, False, True)]
    alone = plan_layer(net.layers[3], 1, config, DEFAULT).tiling
    kept = plan_layer(net.layers[3], 1, config, ctx[3]).tiling
    assert alone.n_mt > 1 and (kept.n_mt, kept.n_kt) == (1, 1)
    off = simulate_network(net, AcceleratorConfig(**{**CONFIG, "residency": False}))  # type: ignore[arg-type]
    assert simulate_network(net, config).cycles < off.cycles
    assert_exact(net, config, seed=14)


def test_bad_resident_descriptors_are_refused():
    """The host refuses residency flags on a design without it, and a resident output outside an input slot, in
    one line each (the hardware's ERROR resident_unsupported for the first)."""
    from codesign.hdl.host import check_descriptor
    from codesign.hdl.plan import HardwarePlan
    from codesign.sim.mapping import plan_layer

    config = AcceleratorConfig(**CONFIG)  # type: ignore[arg-type]
    net = ds_chain(10, 8)
    layer = net.layers[2]  # pw1
    plan = plan_layer(layer, 1, config).tiling
    desc = plan.descriptor()
    bad = {**desc, "flags": desc["flags"] | 1 << 14, "c_base": 3}
    with pytest.raises(ConfigError, match="c_base of a resident output"):
        check_descriptor(bad, HardwarePlan(config), plan)
    off = AcceleratorConfig(**{**CONFIG, "residency": False})  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="residency"):
        check_descriptor({**desc, "flags": desc["flags"] | 1 << 12}, HardwarePlan(off), plan)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_chains(seed):
    """Random chains (a stem on im2col, then depthwise 3x3 or 5x5 at stride 1 or 2, 1x1 and 3x3 convolutions of
    random widths, a global pool and a linear layer) on maps of random size: whatever the edges residency
    keeps (at least one is kept in each), every counter and the outputs are exact from one start."""
    import random

    rng = random.Random(seed)
    h, w = rng.randint(6, 14), rng.randint(5, 12)
    b = NetBuilder(1, h, w)
    ch = rng.choice([4, 8, 12])
    b.conv("stem", ch, 3, stride=rng.choice([1, 2]), padding=same_padding(b, 3, 1), bias=True)
    for i in range(rng.randint(2, 4)):
        kind = rng.choice(["dw", "pw", "conv"])
        if kind == "dw":
            k, s = rng.choice([3, 5]), rng.choice([1, 2]) if b.h > 4 else 1
            b.conv(f"dw{i}", ch, k, stride=s, padding=same_padding(b, k, s), groups=ch, bias=True)
        elif kind == "pw":
            ch = rng.choice([4, 8, 12, 16])
            b.conv(f"pw{i}", ch, 1, padding=0, bias=True)
        else:
            ch = rng.choice([4, 8])
            b.conv(f"conv{i}", ch, 3, padding=same_padding(b, 3, 1), bias=True)
    b.global_pool("pool")
    b.linear("fc", 5)
    net = b.network(f"random{seed}", 1, (1, h, w))
    config = AcceleratorConfig(**CONFIG)  # type: ignore[arg-type]
    assert any(c.res_out for c in plan_network(net, config))
    assert_exact(net, config, seed=seed)
