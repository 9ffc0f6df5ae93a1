"""A whole network from one start on the network top (``hdl/control/network.py``, ``sim/program.py``).

The host lays out one DRAM image (the first layer's input, every layer's weights and requantization
table, each later layer reading its producer's output planes where the producer wrote them) and the
descriptor list; the bench writes PROG_BASE, PROG_LAYERS and one PROG_CTRL start and waits for irq. Checked:

* every layer's outputs, read back from the one image, equal the numpy integer reference bit for bit;
* every layer's counters, written by the sequencer into its record, equal the simulator's for the layer;
* the program's cycles (PROG_CYCLES) equal ``NetworkResult.program_cycles``: the layers' cycles plus the
  sequencer's cycles in closed form (``sim.program``: the first fetch, the overhead between layers, where the
  counter write and the next fetch share the bus, and the last counter write).

The default tier runs a 5-layer chain (convolution on im2col, depthwise on its engine, pointwise with on-chip
windows, global average pool, linear) on a 4x4 array with 1 KiB buffers; the MLPerf Tiny networks on 8x8
are ``slow`` (minutes each, most of it the 8x8 build).
"""

from __future__ import annotations

import numpy as np
import pytest

from codesign.errors import ConfigError
from codesign.hdl.bench.runner import default_simulator, simulator_available
from codesign.hdl.control.regs import DESCRIPTOR_FIELDS
from codesign.hdl.verify import program_steps, verify_program
from codesign.sim.config import AcceleratorConfig
from codesign.sim.engine import simulate_network
from codesign.sim.program import first_record_cycles, last_record_cycles, layer_overhead_cycles
from codesign.workloads.loading import load_workload
from codesign.workloads.zoo import NetBuilder
from codesign.workloads.zoo_mobile import same_padding, squeeze_excite

from .conftest import SMALL_4X4

pytestmark = [
    pytest.mark.rtl,
    pytest.mark.skipif(not simulator_available(default_simulator()),
                       reason=f"the RTL simulator {default_simulator()} is not installed"),
]

BASE = SMALL_4X4


def chain(channels: int = 4, h: int = 7, w: int = 5, classes: int = 3, max_pool: bool = False,
          activations: tuple[str, str, str, str] = ("", "", "", "")):
    """conv 3x3 (the host's im2col: the first layer) -> (a 2x2 max pool) -> depthwise 3x3 -> pointwise -> global
    average pool -> linear: each reads the one before it in place (``activations``: the table activations of
    conv, depthwise, pointwise and linear)."""
    b = NetBuilder(1, h, w)
    b.conv("conv", channels, 3, padding=same_padding(b, 3, 1), bias=True, activation=activations[0])
    if max_pool:
        b.pool("maxpool", 2, 2)
    b.conv("dw", channels, 3, padding=same_padding(b, 3, 1), groups=channels, bias=True, activation=activations[1])
    b.conv("pw", channels, 1, padding=0, bias=True, activation=activations[2])
    b.global_pool("pool")
    b.linear("fc", classes, activation=activations[3])
    return b.network("chain", 1, (1, h, w))


def test_chain_from_one_start():
    config = AcceleratorConfig(**BASE)  # type: ignore[arg-type]
    net = chain()
    kinds = [type(s.plan).__name__ for s in program_steps(net, config)]
    assert kinds == ["TilePlan", "DwPlan", "WinPlan", "TilePlan", "TilePlan"]
    # the descriptor (79 fields: 316 bytes) in 79 beats of 4 bytes, 40 counter bytes in 10 beats, latency 8,
    # 4 bytes a cycle. First record: the fetch's address 1 + 8 + 79 beats (each loaded as it comes), 2 to start
    # (the CTRL write, the layer's decision on its registered checks) = 90. Between layers: 1 cycle sees done, then
    # the counter write's 10 data cycles (0..9) and the next fetch (its address in cycle 0, its first beat due in
    # cycle 1 + 8 = 9: the write has that cycle, the beats come in 10..88), the write's response in cycle 10 + 8 = 18,
    # long before: 1 + (1 + 8 + 1 + 79) + 2 = 92 (the write costs the fetch 1 cycle). Last record: 1 + 10 + 8 + 1 = 20
    # (the write alone). 5 layers: 90 + 4 x 92 + 20 = 478.
    fields = len(DESCRIPTOR_FIELDS)
    assert (first_record_cycles(config), layer_overhead_cycles(config), last_record_cycles(config)) == (
        1 + 8 + fields + 2, 1 + (1 + 8 + 1 + fields) + 2, 1 + 10 + 8 + 1)
    sim = simulate_network(net, config)
    layer_cycles = [r.cycles for r in sim.layers]
    assert sim.program_cycles == sum(layer_cycles) + (1 + 8 + fields + 2) + 4 * (13 + fields) + 20
    v = verify_program(net, config, seed=3)
    assert v.outputs_match, [(r.layer, r.outputs_match) for r in v.layers]
    for r in v.layers:  # each layer's counters, written into its record, as the simulator's layer
        assert (r.rtl_cycles, r.rtl_stall_cycles, r.rtl_dram_read_bytes, r.rtl_dram_write_bytes) == (
            r.sim_cycles, r.sim_stall_cycles, r.sim_dram_read_bytes, r.sim_dram_write_bytes), r.layer
        assert r.rtl_enabled_macs == r.ref_enabled_macs, r.layer
    assert [r.rtl_cycles for r in v.layers] == layer_cycles
    assert v.rtl_cycles == v.sim_cycles == sim.program_cycles
    assert v.ok


@pytest.mark.parametrize(("latency", "bw"), [(0, 4), (3, 4), (0, 16), (2, 12)])
def test_chain_with_short_latency(latency, bw):
    """Latencies of 0 to 3 cycles: the counter write's data cycles take the bus in the cycles the next fetch's
    first beats were due in, and the fetch's beats wait for them (``sim.program.transfer_cycles``). On the 4-byte
    bus (82 descriptor beats, 10 counter beats) and on the 16-byte bus (21 beats of 4 fields, each loaded into the
    registers in the cycle it comes; 3 counter beats), at 16 and at 12 bytes a cycle; the RTL's program cycles
    equal the simulator's. Between two layers, with ``Dr`` / ``Dw`` the fetch's / the write's data cycles: 1 (done)
    + the write's ``Dw`` cycles + the fetch's ``Dr`` + 2 (start, decision) when the fetch's first beat is due before the
    write is over (``1 + latency <= Dw``), else 1 + (1 + latency + Dr) + 2."""
    config = AcceleratorConfig(**{**BASE, "dram_latency_cycles": latency, "dram_bytes_per_cycle": bw})
    read, write = {4: (82, 10), 16: (21, 3), 12: (28, 4)}[bw]  # ceil(328 / 4), ceil(40 / 4); 336 / 16, 48 / 16, ...
    assert len(DESCRIPTOR_FIELDS) == 82
    expected = 1 + (write + read if 1 + latency <= write else 1 + latency + read) + 2
    assert layer_overhead_cycles(config) == expected
    v = verify_program(chain(), config, seed=7)
    assert v.outputs_match, [(r.layer, r.outputs_match) for r in v.layers]
    sim = simulate_network(chain(), config)
    assert [r.rtl_cycles for r in v.layers] == [r.cycles for r in sim.layers]
    assert v.rtl_cycles == v.sim_cycles == sim.program_cycles
    assert v.ok


def test_chain_with_table_activations():
    """The chain with hard-swish, SiLU, sigmoid and tanh in its write-backs (flags bit 10): each layer's table
    follows its requantization table in its record's region; outputs through the tables, counters and the
    program's cycles as the simulator's (each table: 5 more words of the prologue, 256 cycles to load)."""
    config = AcceleratorConfig(**BASE)  # type: ignore[arg-type]
    net = chain(activations=("hard_swish", "silu", "sigmoid", "tanh"))
    plain = simulate_network(chain(), config)
    sim = simulate_network(net, config)
    assert all(s.cycles >= p.cycles + 256 for s, p, ly in zip(sim.layers, plain.layers, net.layers, strict=True)
               if ly.activation)
    v = verify_program(net, config, seed=5)
    assert v.outputs_match, [(r.layer, r.outputs_match) for r in v.layers]
    assert [r.rtl_cycles for r in v.layers] == [r.cycles for r in sim.layers]
    assert v.rtl_cycles == v.sim_cycles == sim.program_cycles


@pytest.mark.parametrize("pool_writeback", [False, True])
def test_chain_with_a_max_pool(pool_writeback):
    """A max pool between the convolution and the depthwise layer: on the depthwise engine (planes in, planes
    out, its maxima through the write-back's identity table), or in the convolution's write-back (its record
    writes the pooled planes the depthwise layer reads)."""
    config = AcceleratorConfig(**{**BASE, "pool_writeback": pool_writeback})  # type: ignore[arg-type]
    net = chain(h=9, w=8, max_pool=True)
    steps = program_steps(net, config)
    names = ["conv", "dw", "pw", "pool", "fc"] if pool_writeback else ["conv", "maxpool", "dw", "pw", "pool", "fc"]
    assert [s.layer.name for s in steps] == names
    v = verify_program(net, config, seed=5)
    assert v.outputs_match and all(r.ok for r in v.layers)
    assert v.rtl_cycles == v.sim_cycles == simulate_network(net, config).program_cycles


@pytest.mark.parametrize("memory", [{}, {"dram_latency_cycles": 0, "dram_bytes_per_cycle": 16}])
def test_chain_with_stalls_keeps_outputs(memory):
    """Random AXI wait cycles on every channel (the sequencer's bursts too, its counter write and next fetch at
    once: on the 16-byte bus with no latency their beats meet on the bus): same outputs, never faster."""
    config = AcceleratorConfig(**{**BASE, **memory})
    v = verify_program(chain(), config, seed=3, stall=0.3)
    assert v.outputs_match
    assert v.rtl_cycles >= v.sim_cycles
    assert v.ok


def test_gemm_planes_out():
    """8 channels on 4 columns: the first convolution's output is 4 M tiles of 2 column chunks each, not
    planes; its descriptor writes each tile's chunks at their planes (cv_c_block outside window mode), so the
    depthwise layer reads them in place, with the same cycles (the same bytes written in the same order)."""
    config = AcceleratorConfig(**BASE)  # type: ignore[arg-type]
    net = chain(channels=8, h=8, w=8)
    first = program_steps(net, config)[0].plan
    assert (first.n_mt, -(-first.gemm.n // 4)) == (4, 2)
    v = verify_program(net, config, seed=4)
    assert v.outputs_match and all(r.ok for r in v.layers)
    assert v.rtl_cycles == v.sim_cycles == simulate_network(net, config).program_cycles


@pytest.mark.slow
@pytest.mark.parametrize("workload", ["ds_cnn_kws", "mobilenet_v1_vww", "resnet8_cifar", "mobilenet_v2"])
def test_mlperf_tiny_from_one_start(workload):
    """The MLPerf Tiny networks (ResNet-8's strided 1x1 shortcuts reading their producers' planes with on-chip
    windows, and MobileNetV2, its stem's GEMM writing planes) on 8x8 from one start."""
    config = AcceleratorConfig(rows=8, cols=8)
    v = verify_program(workload, config)
    assert v.outputs_match
    assert v.rtl_cycles == v.sim_cycles == simulate_network(load_workload(workload), config).program_cycles
    assert v.ok


@pytest.mark.slow
@pytest.mark.skipif(default_simulator() != "verilator", reason="hours on Icarus (4.7 M and 8.1 M cycles of 8x8)")
@pytest.mark.parametrize(("workload", "records"), [("mobilenet_v3_large", 81), ("efficientnet_b0", 115)])
def test_squeeze_excite_networks_from_one_start(workload, records):
    """MobileNetV3-Large and EfficientNet-B0 on 8x8 from one start (about 2 minutes each on Verilator, the build
    included): their SE blocks' maps of 196 and 49 pixels (not whole words of 8) read in place by the squeeze,
    one plane a B block, and by the scale, as the depthwise engine wrote them. Every record's outputs as the numpy
    reference, the program's cycles as ``program_cycles`` (4,704,718 and 8,062,586 when measured)."""
    config = AcceleratorConfig(rows=8, cols=8)
    v = verify_program(workload, config, seed=1)
    assert v.records == records and v.outputs_match
    assert v.rtl_cycles == v.sim_cycles == simulate_network(load_workload(workload), config).program_cycles
    assert v.ok


def test_config_the_sequencer_cannot_run_is_refused():
    with pytest.raises(ConfigError, match=r"^a network from one start needs requantize: true"):
        program_steps(chain(), AcceleratorConfig(**{**BASE, "requantize": False}))  # type: ignore[arg-type]


def test_refused_record_stops_the_program(tmp_path):
    """Record 0 a linear layer, record 1 all zeros (ERROR zero_size), record 2 the linear layer again: the
    sequencer runs record 0, writes its counters, starts record 1, sees the layer refuse it and stops with
    PROG_STATUS error (bit 2) and PROG_LAYER 1; record 2 never runs (its counters stay zero)."""
    from codesign.hdl.bench.runner import layer_depth_words, run_network_job
    from codesign.hdl.control.regs import ERROR_BITS
    from codesign.hdl.host import (
        hex_image,
        image_hex,
        place_layer,
        place_program,
        random_requant,
        read_program_counters,
    )
    from codesign.hdl.plan import HardwarePlan, core_config
    from codesign.hdl.verify import _memory_plusargs, hardware_layer
    from codesign.sim.engine import simulate_layer
    from codesign.sim.mapping import plan_layer
    from codesign.sim.tileplan import bus_bytes
    from codesign.workloads.layers import Linear
    from codesign.workloads.tensors import layer_operands

    config = AcceleratorConfig(**BASE)  # type: ignore[arg-type]
    layer = hardware_layer(Linear("fc", in_features=8, out_features=4, tokens=2), config)
    ops = layer_operands(layer, seed=1)
    plan = plan_layer(layer, 1, config).tiling
    image = bytearray()
    q = random_requant(ops.c, config.act_bits, config.act_signed, np.random.default_rng(0))
    placed = place_layer(image, plan, HardwarePlan(core_config(config)), ops.a, ops.b, 0, q)
    bus = bus_bytes(config)
    base = place_program(image, [placed.descriptor, {}, placed.descriptor], bus)
    beats = len(image) // bus
    (tmp_path / "dram.hex").write_text(image_hex(bytes(image), bus))
    res = run_network_job(config, {"prog_base": base, "prog_layers": 3}, tmp_path,
                          depth_words=layer_depth_words(beats, default_simulator()),
                          plusargs=_memory_plusargs(config, 0.0, 0, tmp_path, beats))
    assert res["prog_status"] == 0b100 and res["prog_layer"] == 1
    assert res["error"] == 1 << [n for n, _ in ERROR_BITS].index("zero_size")
    out = hex_image((tmp_path / "dram_out.hex").read_text(), bus)
    counters = read_program_counters(out, base, 3, bus)
    assert counters[0]["cycles"] == simulate_layer(layer, 1, config).cycles
    assert counters[1]["cycles"] == counters[2]["cycles"] == 0


def assert_program_exact(net, config, seed: int) -> None:
    """``net`` from one start: every layer's outputs as the numpy reference, its cycles and DRAM bytes as the
    simulator's layer, the program's cycles as ``program_cycles``."""
    v = verify_program(net, config, seed=seed)
    assert v.outputs_match, [(r.layer, r.outputs_match) for r in v.layers]
    for r in v.layers:
        assert (r.rtl_cycles, r.rtl_dram_read_bytes, r.rtl_dram_write_bytes) == (
            r.sim_cycles, r.sim_dram_read_bytes, r.sim_dram_write_bytes), r.layer
    assert v.rtl_cycles == v.sim_cycles == simulate_network(net, config).program_cycles
    assert v.ok


def strided_residual(channels: int = 4, h: int = 8, w: int = 8):
    """conv 3x3 (the host's im2col) -> a residual block halving the map: conv 3x3 stride 2, conv 3x3, and the
    shortcut a 1x1 stride-2 convolution of the block's input, the add fused into it -> global pool -> linear."""
    b = NetBuilder(1, h, w)
    b.conv("stem", channels, 3, padding=same_padding(b, 3, 1), bias=True)
    start = b.mark()
    b.conv("conv1", 2 * channels, 3, stride=2, padding=same_padding(b, 3, 2), bias=True)
    main = b.conv("conv2", 2 * channels, 3, padding=same_padding(b, 3, 1), bias=True)
    b.resume(start)
    shortcut = b.conv("shortcut", 2 * channels, 1, stride=2, padding=0, bias=True)
    b.src = main.name
    b.add("add", other=shortcut.name)
    b.global_pool("pool")
    b.linear("fc", 3)
    return b.network("strided_residual", 1, (1, h, w))


def test_strided_shortcut_reads_planes():
    """The 1x1 stride-2 shortcut reads the stem's output planes with on-chip windows (as the network's input
    it would run on im2col: the windows' rows move 4x its bytes), its residual add in its write-back; outputs,
    counters and the program's cycles as the simulator's."""
    import dataclasses

    from codesign.sim import convplan
    from codesign.workloads.layers import NETWORK_INPUT

    config = AcceleratorConfig(**BASE)  # type: ignore[arg-type]
    net = strided_residual()
    steps = {s.layer.name: s for s in program_steps(net, config)}
    assert type(steps["shortcut"].plan).__name__ == "WinPlan" and steps["shortcut"].add is not None
    host = dataclasses.replace(net.layer("shortcut"), sources=(NETWORK_INPUT,))
    assert "more bytes than im2col" in convplan.layer_reason(host, 1, config)
    assert_program_exact(net, config, seed=6)


def squeeze(channels: int = 8, h: int = 13, w: int = 12):
    """conv 3x3 (the host's im2col) -> depthwise 3x3 -> an SE block's squeeze: global pool of the 13x12 map,
    1x1 reduce, 1x1 expand with a sigmoid (the channel-wise scale, a vector-unit layer on flat words, is not
    a record of a program)."""
    b = NetBuilder(1, h, w)
    b.conv("stem", channels, 3, padding=same_padding(b, 3, 1), bias=True)
    b.conv("dw", channels, 3, padding=same_padding(b, 3, 1), groups=channels, bias=True)
    b.global_pool("se.pool")
    b.conv("se.fc1", 2, 1, padding=0, bias=True)
    b.conv("se.fc2", channels, 1, padding=0, bias=True, activation="sigmoid")
    return b.network("squeeze", 1, (1, h, w))


def test_pool_in_k_tiles_reads_planes():
    """The pool of 156 pixels (K) and 8 channels on the 4x4 array with 1 KiB buffers (128-word B slots): the
    tiler cuts K into 4 tiles of 40 pixels with both column chunks a tile (10 x 2 x 4 = 80 words), whose
    chunks would be pieces of 2 planes; one plane (39 x 4 = 156 words) does not fit a slot, so the pool
    takes one chunk a tile and K tiles of 80 and 76 pixels (80 words), each block a piece of one plane.
    Its own layout would put the chunks 2 x 80 words = 640 bytes apart; the descriptor reads the producer's
    planes 156 words = 624 bytes apart (b_stride_n). Outputs, counters and cycles as the simulator's."""
    from codesign.sim.tileplan import plan_tiles
    from codesign.workloads.layers import GemmShape

    config = AcceleratorConfig(**BASE)  # type: ignore[arg-type]
    net = squeeze()
    fixed = plan_tiles(GemmShape(1, 8, 156), config)
    assert (fixed.nt, fixed.kt, fixed.n_kt) == (8, 40, 4)
    pool = {s.layer.name: s for s in program_steps(net, config)}["se.pool"].plan
    assert (pool.nt, pool.kt, pool.n_kt, pool.n_nt) == (4, 80, 2, 2)
    assert pool.strides_bytes["b_n"] == 640
    assert_program_exact(net, config, seed=8)


def test_verify_layer_of_a_pool_takes_simulates_plan():
    """``codesign verify --layer`` of a global pool (one layer on the layer top, its map laid out by the host)
    runs the plan ``simulate`` times, the pool's (``mapping.planes_b_tiling``: one chunk a tile, K tiles of 88
    pixels), not the tiler's plan of its GEMM: its cycles and DRAM bytes are simulate's row."""
    from codesign.hdl.verify import verify
    from codesign.sim.tileplan import plan_tiles

    config = AcceleratorConfig(**BASE)  # type: ignore[arg-type]
    net = se_block(13, 13)
    pool = net.layer("se.pool")
    fixed = plan_tiles(pool.as_gemm_layer().gemm(1), config)
    assert (fixed.nt, fixed.kt) != (4, 88)
    row = next(r for r in simulate_network(net, config).layers if r.layer == "se.pool")
    (v,) = verify(config, workload=net, layer="se.pool", seed=4)
    assert v.outputs_match and v.ok and v.tile == (1, 1, 4, 88)
    assert (v.rtl_cycles, v.rtl_dram_read_bytes) == (row.cycles, row.counts.dram_read_bits // 8)


def se_block(h: int = 12, w: int = 12):
    """conv 3x3 (the host's im2col) -> depthwise 3x3 -> a squeeze-excite block (global pool, 1x1 reduce to 2
    channels, 1x1 expand to 8 with a sigmoid, the channel-wise scale of the depthwise output) -> 1x1 project
    -> global pool -> linear."""
    b = NetBuilder(1, h, w)
    b.conv("stem", 8, 3, padding=same_padding(b, 3, 1), bias=True)
    b.conv("dw", 8, 3, padding=same_padding(b, 3, 1), groups=8, bias=True)
    squeeze_excite(b, "se", 2, gate_act="sigmoid")
    b.conv("project", 4, 1, padding=0, bias=True)
    b.global_pool("pool")
    b.linear("fc", 3)
    return b.network("se_block", 1, (1, h, w))


def test_squeeze_excite_from_one_start():
    """The SE block on a 12x12 map (its pool in 2 K tiles of 72 pixels, one chunk each): the scale (vector
    mode, flags bits 4 and 5) reads the depthwise output's planes (A) and the expand's output, planes of 1
    pixel (B, one word a plane), and writes planes the project layer reads. The expand writes its 8 channels
    as 2 blocks of 1 word: the DMA's write fetch once ran on past such blocks and left a word behind that hung
    the next layer's store. Outputs, counters and cycles as the simulator's."""
    config = AcceleratorConfig(**BASE)  # type: ignore[arg-type]
    net = se_block()
    steps = {s.layer.name: s for s in program_steps(net, config)}
    scale = steps["se.scale"]
    assert type(scale.plan).__name__ == "VecPlan" and (scale.source, scale.second) == ("dw", "se.fc2")
    assert_program_exact(net, config, seed=2)


@pytest.mark.parametrize(("h", "w", "extra"), [
    (11, 11, {}),  # 121 pixels: the depthwise layer in bands of 2 rows, the pool's whole K (124 words) a tile
    (7, 7, {"output_sram_bytes": 4096}),  # 49 pixels: the depthwise layer's 2 planes one tile, one range
    (13, 13, {}),  # 169 pixels: a plane (172 words) does not fit the 128-word B slot, the pool in K tiles
])
def test_squeeze_excite_of_a_map_not_in_whole_words(h, w, extra):
    """SE blocks on maps whose pixels are not a multiple of the 4 rows (121, 49, 169): the depthwise output's
    planes stay unpadded (``h * w`` words apart, as the depthwise engine writes them and the scale reads them),
    and the squeeze reads them one plane a B block (``sim.mapping.planes_b_tiling``), ``b_stride_n`` the
    producer's plane stride: each block's last word row runs on into the next plane's first pixels (or past the
    last plane), which meet A's zero lanes. The closing global pool reads the project layer's planes so too.
    Outputs bit-exact against the numpy reference, every layer's cycles, DRAM bytes and enabled MACs as the
    simulator's (and the reference's), the program's cycles as ``program_cycles``."""
    config = AcceleratorConfig(**{**BASE, **extra})  # type: ignore[arg-type]
    net = se_block(h, w)
    steps = {s.layer.name: s for s in program_steps(net, config)}
    pixels, pool = h * w, steps["se.pool"].plan
    assert pixels % config.rows and pool.gemm.k == pixels and pool.nt == config.cols and pool.n_nt == 2
    assert (pool.n_kt > 1) == (h == 13)
    assert (steps["dw"].plan.gt > 1) == (h == 7) and steps["se.scale"].source == "dw"
    scale = steps["se.scale"].plan  # the scale reads the depthwise planes as they lie
    assert scale.descriptor()["a_stride_g"] == scale.gt * steps["dw"].plan.plane_bytes[2]
    v = verify_program(net, config, seed=h)
    assert v.outputs_match, [(r.layer, r.outputs_match) for r in v.layers]
    for r in v.layers:
        assert (r.rtl_cycles, r.rtl_dram_read_bytes, r.rtl_dram_write_bytes, r.rtl_enabled_macs) == (
            r.sim_cycles, r.sim_dram_read_bytes, r.sim_dram_write_bytes, r.ref_enabled_macs), r.layer
    assert v.rtl_cycles == v.sim_cycles == simulate_network(net, config).program_cycles
    assert v.ok


def inverted_residual(h: int = 16, w: int = 12):
    """conv 3x3 (the host's im2col) -> two inverted residual blocks (expand 1x1 to 3x the channels, depthwise 3x3,
    project 1x1; the first with stride 1 and its residual add, the second with stride 2 and TensorFlow's "same"
    padding) -> global pool -> linear."""
    b = NetBuilder(1, h, w)
    b.conv("stem", 4, 3, padding=same_padding(b, 3, 1), bias=True)
    start = b.mark()
    b.conv("b1.expand", 12, 1, padding=0, bias=True)
    b.conv("b1.dw", 12, 3, padding=same_padding(b, 3, 1), groups=12, bias=True)
    b.conv("b1.project", 4, 1, padding=0, bias=True)
    b.add("b1.add", other=start.src)
    b.conv("b2.expand", 12, 1, padding=0, bias=True)
    b.conv("b2.dw", 12, 3, stride=2, padding=same_padding(b, 3, 2), groups=12, bias=True)
    b.conv("b2.project", 8, 1, padding=0, bias=True)
    b.global_pool("pool")
    b.linear("fc", 3)
    return b.network("inverted_residual", 1, (1, h, w))


def test_depthwise_stage_from_one_start():
    """The expand convolutions run with their depthwise layers in their write-backs (``sim.dwfuse``: one record
    each, writing the depthwise output's planes), the project convolutions read those planes in place: outputs,
    every record's counters and the program's cycles as the simulator's; the same network without the stage takes
    more records and more DRAM bytes."""
    from codesign.sim.fusion import plan_network

    config = AcceleratorConfig(**BASE)  # type: ignore[arg-type]
    net = inverted_residual()
    heads = [ly.name for ly, c in zip(net.layers, plan_network(net, config), strict=True)
             if c.dw is not None and not c.fused]
    assert heads == ["b1.expand", "b2.expand"]
    assert [s.layer.name for s in program_steps(net, config)].count("b1.dw") == 0
    assert_program_exact(net, config, seed=9)
    off = AcceleratorConfig(**{**BASE, "dw_writeback": False})  # type: ignore[arg-type]
    assert len(program_steps(net, off)) == len(program_steps(net, config)) + 2
    assert simulate_network(net, off).dram_bytes > simulate_network(net, config).dram_bytes
