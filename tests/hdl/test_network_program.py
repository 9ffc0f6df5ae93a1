"""The network program without an RTL simulator: record format, register map, closed-form timing, and what
the host API refuses (``sim/program.py``, ``hdl/control/network.py``, ``hdl/host.py``, ``hdl/verify.py``)."""

from __future__ import annotations

import pytest

from codesign.errors import ConfigError, WorkloadError
from codesign.hdl.control import regs
from codesign.hdl.control.network import (
    NETWORK_OFFSETS,
    NETWORK_REGISTERS,
    c_header_lines,
    python_lines,
    record_description,
)
from codesign.hdl.host import PlacedLayer, feed, place_program, read_program_counters, restride_output
from codesign.hdl.verify import program_steps
from codesign.sim.config import AcceleratorConfig
from codesign.sim.engine import simulate_network
from codesign.sim.program import (
    design_reason,
    first_record_cycles,
    last_record_cycles,
    layer_overhead_cycles,
    program_cycles,
    record_layout,
    transfer_cycles,
)
from codesign.workloads.loading import load_workload

CFG8 = AcceleratorConfig(rows=8, cols=8)


FIELDS = len(regs.DESCRIPTOR_FIELDS)  # 82 in map v10: the record and the overhead grow with the map


def test_record_layout():
    """The descriptor fields, 4 bytes each (82: 328 bytes), the 5 counters of 8 bytes at the next 64-byte line
    (384), a power-of-two record (512: a record's bursts never cross 4 KiB)."""
    lay = record_layout(16)
    assert (lay.fields, lay.descriptor_bytes, lay.counter_bytes) == (FIELDS, 4 * FIELDS, 40)
    assert lay.counters_offset == -(-4 * FIELDS // 64) * 64  # 384 for 82 fields
    assert lay.record_bytes == 1 << (lay.counters_offset + 48 - 1).bit_length()  # 512 for 82 fields
    assert (lay.descriptor_beats, lay.counter_beats) == (-(-4 * FIELDS // 16), 3)  # 21 and 3 for 82 fields
    assert (record_layout(4).descriptor_beats, record_layout(4).counter_beats) == (FIELDS, 10)
    if FIELDS == 82:
        assert (lay.counters_offset, lay.record_bytes, lay.descriptor_beats) == (384, 512, 21)
        wide = record_layout(128)  # 3 beats of descriptor reach into the counters' line: still one record
        assert (wide.descriptor_beats, wide.counter_beats, wide.record_bytes) == (3, 1, 512)


def test_network_registers_follow_the_layer_map():
    last = regs.REGISTERS[-1].offset
    assert NETWORK_OFFSETS["prog_ctrl"] == (last + 4 + 0x1F) & ~0x1F  # 0x1C0: the counters end at 0x1A8
    offsets = [r.offset for r in regs.REGISTERS + NETWORK_REGISTERS]
    assert len(set(offsets)) == len(offsets) and max(offsets) < 1 << regs.REGS_ADDR_BITS


def test_register_map_publishes_the_record_format():
    header = "\n".join(c_header_lines(CFG8))
    lay = record_layout(16)
    assert "#define CODESIGN_PROG_BASE" in header
    assert f"#define CODESIGN_PROG_RECORD_BYTES      {lay.record_bytes}u" in header
    assert f"#define CODESIGN_PROG_COUNTERS_OFFSET   {lay.counters_offset}u" in header
    ns: dict[str, object] = {}
    exec("\n".join(python_lines(CFG8)), ns)  # the generated module is plain data
    lay = record_layout(16)
    assert ns["PROGRAM_RECORD"] == {"record_bytes": lay.record_bytes, "descriptor_offset": 0,
                                    "descriptor_words": FIELDS, "counters_offset": lay.counters_offset,
                                    "counters": [n for n, _ in regs.COUNTERS]}
    assert record_description(CFG8)["descriptor_fields"][0] == "a_base"


def test_layer_overhead_closed_form():
    """8x8 default memory (16-byte bus, 16 bytes a cycle, latency 100; 82 fields: 21 descriptor beats, 3 counter
    beats). First record: the fetch's address 1 + 100 + 21 beats (each loaded into the registers as it comes),
    2 to start (the CTRL write, the layer top's decision on its registered checks) = 124. Between layers: 1 cycle
    sees done; the counter write (data cycles 0..2, its response in cycle 3 + 100 = 103) and the next fetch
    (address in cycle 0, beats in 101..121) issued together: the write is done before the fetch, 1 + 122 + 2 = 125.
    Last record: 1 + 3 + 100 + 1 = 105 (the write alone)."""
    beats = -(-4 * FIELDS // 16)
    assert first_record_cycles(CFG8) == 1 + 100 + beats + 2
    assert layer_overhead_cycles(CFG8) == 1 + (1 + 100 + beats) + 2
    assert last_record_cycles(CFG8) == 1 + 3 + 100 + 1
    assert FIELDS != 82 or (first_record_cycles(CFG8), layer_overhead_cycles(CFG8)) == (124, 125)
    first, over, last = first_record_cycles(CFG8), layer_overhead_cycles(CFG8), last_record_cycles(CFG8)
    assert program_cycles([10, 20], CFG8) == 30 + first + over + last
    assert program_cycles([10], CFG8) == 10 + first + last
    assert program_cycles([], CFG8) == 0


@pytest.mark.parametrize(("latency", "bw", "expected"), [
    # the write's data cycles 0..Dw-1 come first; the fetch's Dr beats take the free cycles from 1 + latency on
    (0, 16, 1 + (3 + 21) + 2),  # the fetch's beats all wait for the write's 3 cycles: 21 beats in cycles 3..23
    (2, 16, 1 + (1 + 2 + 21) + 2),  # the first beat is due in cycle 3, the write's last cycle is 2: they just miss
    (3, 16, 1 + (1 + 3 + 21) + 2),  # the write's response in cycle 3 + 3 = 6, the fetch's last beat in 24
    (0, 4, 1 + (10 + 82) + 2),  # a 4-byte bus: the write's 10 beats, then the fetch's 82
    # 9 bytes a cycle on the 16-byte bus: the write 6 data cycles (48 bytes), the fetch 38 (336 bytes)
    (30, 9, 1 + (1 + 30 + 38) + 2),
    # 12 bytes a cycle: the write 4 data cycles (0..3), the fetch 28; its first beat due in cycle 2 waits for 4
    (1, 12, 1 + (4 + 28) + 2),
])
def test_layer_overhead_when_the_bursts_share_the_bus(latency, bw, expected):
    """Small latencies: the counter write's data phase takes the cycles the next fetch's first beats were due
    in; the fetch's beats move to the free cycles after it (``sim.engine.data_end``); held to the RTL in
    ``tests/rtl/test_network_rtl.py::test_chain_with_short_latency``."""
    cfg = CFG8.replace(dram_latency_cycles=latency, dram_bytes_per_cycle=bw)
    assert FIELDS == 82  # the expectations above count 328 descriptor bytes (21 beats of 16 bytes, 82 of 4)
    assert layer_overhead_cycles(cfg) == expected
    # the write's response never comes after the fetch's last beat: its beats are fewer (40 bytes against 316)
    write = -(-record_layout(16 if bw > 4 else 4).counter_write_bytes // bw)
    assert transfer_cycles(cfg) == layer_overhead_cycles(cfg) - 3 > write + latency + 1


def test_program_cycles_in_the_simulator():
    """DS-CNN: 11 records, its layers' cycles plus 123 + 10 x 124 + 105 (79 fields); ResNet-8's three residual
    adds run in their producers' write-backs: 11 records for 14 layers."""
    first, over, last = first_record_cycles(CFG8), layer_overhead_cycles(CFG8), last_record_cycles(CFG8)
    ds = simulate_network(load_workload("ds_cnn_kws"), CFG8)
    assert ds.program_cycles == ds.cycles + first + 10 * over + last == ds.summary()["program_cycles"]
    rn = simulate_network(load_workload("resnet8_cifar"), CFG8)
    assert sum(1 for r in rn.layers if not r.fused_into) == 11
    assert rn.program_cycles == rn.cycles + first + 10 * over + last


def test_narrow_bus_builds_no_sequencer():
    cfg = AcceleratorConfig(rows=4, cols=4, dram_bytes_per_cycle=2)
    assert design_reason(cfg).startswith("the network sequencer needs an AXI bus of at least 4 bytes")
    assert simulate_network(load_workload("ds_cnn_kws"), cfg).program_cycles == 0
    with pytest.raises(ConfigError, match=r"^the network sequencer needs an AXI bus of at least 4 bytes"):
        program_steps(load_workload("ds_cnn_kws"), cfg)


def test_program_steps_of_the_tiny_networks():
    steps = program_steps(load_workload("ds_cnn_kws"), CFG8)
    assert [s.layer.name for s in steps][:3] == ["conv1", "ds1.dw", "ds1.pw"] and len(steps) == 11
    assert [s.source for s in steps][1:3] == ["conv1", "ds1.dw"]
    # (its block1.pw with block2.dw in its write-back: one record, sim.dwfuse)
    assert len(program_steps(load_workload("mobilenet_v1_vww"), CFG8)) == 28
    # ResNet-8's strided 1x1 shortcuts read their producers' planes with on-chip windows: 11 records
    steps = program_steps(load_workload("resnet8_cifar"), CFG8)
    assert len(steps) == 11 and {type(s.plan).__name__ for s in steps if "shortcut" in s.layer.name} == {"WinPlan"}


@pytest.mark.parametrize(("workload", "config", "message"), [
    ("resnet8_cifar", CFG8.replace(conv_windows=False),  # every convolution on im2col
     r"^layer 'stack1\.conv1' cannot run from one start: its plan reads im2col \(a 3x3 convolution, stride 1x1\)"),
    ("digits_cnn", CFG8, r"^layer 'fc' cannot read 'conv3''s output in place: it flattens a map of 4 pixels"),
    ("ds_cnn_kws", CFG8.replace(dataflow="os"), r"^a network from one start needs dataflow ws"),
    ("ds_cnn_kws", CFG8.replace(requantize=False), r"^a network from one start needs requantize: true"),
])
def test_host_refuses_what_needs_it_between_layers(workload, config, message):
    with pytest.raises((WorkloadError, ConfigError), match=message):
        program_steps(load_workload(workload), config)


def test_host_refuses_a_channel_multiplier_in_a_program():
    """A depthwise layer with a channel multiplier runs on the engine alone (``tests/rtl``), but writes its
    output planes multiplier by multiplier, not in its consumer's channel order: refused in one line."""
    from codesign.workloads.layers import Conv2d, Network

    net = Network("mult", (
        Conv2d("pw", in_channels=8, out_channels=8, in_h=8, in_w=8),
        Conv2d("dw", in_channels=8, out_channels=16, in_h=8, in_w=8, kernel=3, padding=1, groups=8, sources=("pw",)),
        Conv2d("pw2", in_channels=16, out_channels=8, in_h=8, in_w=8, sources=("dw",)),
    ))
    with pytest.raises(WorkloadError, match=r"^layer 'dw': grouped convolutions other than depthwise with channel "
                                            r"multiplier 1 do not run in a program \(a multiplier's output planes "
                                            r"are multiplier by multiplier, not in its consumer's channel order\)$"):
        program_steps(net, CFG8)


@pytest.mark.parametrize("workload", ["mobilenet_v3_small", "mobilenet_v3_large", "efficientnet_b0"])
@pytest.mark.parametrize("n", [8, 32])
def test_squeeze_excite_networks_from_one_start(workload, n):
    """The SE blocks' maps of 14x14 = 196 and 7x7 = 49 pixels (on 32x32 also 28x28 = 784) are not whole words of
    ``rows`` pixels: the depthwise layer writes them as planes of their pixels, the scale reads them so, and the
    squeeze reads them one plane a B block (``sim.mapping.planes_b_tiling``), so every record reads its
    producer's planes in place. One record a layer that runs (the fused residual adds ride in their heads), as
    simulate counts them."""
    from codesign.hdl.host import input_plane_bytes
    from codesign.sim.tileplan import TilePlan

    cfg = AcceleratorConfig(rows=n, cols=n)
    net = load_workload(workload)
    steps = program_steps(net, cfg)
    result = simulate_network(net, cfg)
    assert len(steps) == sum(1 for r in result.layers if not r.fused_into)
    assert result.program_cycles and not result.meta.get("program_refused")
    pools = [s for s in steps if isinstance(s.plan, TilePlan) and s.plan.gemm.k % n and s.layer.kind.value == "pool"]
    assert pools
    for st in pools:
        plan = st.plan
        assert plan.nt <= n, st.layer.name  # one plane a B block
        placed = PlacedLayer(plan, plan.descriptor(), 0, 0, 0, 0)
        assert input_plane_bytes(placed, "b") == plan.gemm.k * plan.beats_per_word[1] * plan.bus_bytes


def test_batch_must_be_one():
    with pytest.raises(ConfigError, match=r"^a network from one start runs batch 1, not 2$"):
        program_steps(load_workload("ds_cnn_kws"), CFG8, batch=2)


def test_place_program_and_counters_round_trip():
    image = bytearray(100)
    descs = [{name: i + j for j, (name, _) in enumerate(regs.DESCRIPTOR_FIELDS)} for i in range(2)]
    base = place_program(image, descs, 16)
    lay = record_layout(16)
    assert base == 4096 and len(image) == 4096 + 2 * lay.record_bytes
    at = base + lay.record_bytes
    assert int.from_bytes(image[at + 4:at + 8], "little") == 2  # record 1, field 1
    image[base + lay.counters_offset:base + lay.counters_offset + 8] = (12345).to_bytes(8, "little")  # cycles
    assert read_program_counters(bytes(image), base, 2, 16)[0]["cycles"] == 12345
    with pytest.raises(ConfigError, match=r"^descriptor m of record 0 must be an integer from 0 to 2\*\*32-1, not -1$"):
        place_program(bytearray(), [{"m": -1}], 16)


def _placed(step: int, base: int):
    from codesign.sim.mapping import plan_layer

    st = program_steps(load_workload("ds_cnn_kws"), CFG8)[step]
    plan = plan_layer(st.hw, 1, CFG8).tiling
    return PlacedLayer(plan, plan.descriptor(base, base + 65536, base + 131072), base, base + 65536,
                       base + 131072, base + 196608)


def test_feed_and_restride_refuse_other_layouts():
    dw, pw, dw2 = _placed(1, 0), _placed(2, 1 << 20), _placed(3, 2 << 20)  # ds1.dw, ds1.pw, ds2.dw
    with pytest.raises(ConfigError, match=r"^output planes 2048 bytes apart need a convolution with on-chip windows "
                                          r"or a weight-stationary GEMM of one group, not a DwPlan$"):
        restride_output(dw, 2048, CFG8)
    fed = feed(dw2, "a", pw)  # 125 pixels of 16-byte words a plane, written and read
    assert fed.descriptor["a_base"] == pw.c_base == fed.a_base
    # a global pool's column chunks: 128 words a plane, 8 planes: 16,384 bytes, more than the 8 x 125 x 16 =
    # 16,000 of the output region: the output moves to a new zeroed region (the planes would overrun the next)
    with pytest.raises(ConfigError, match=r"^output planes 2048 bytes apart need 16384 bytes, more than the output "
                                          r"region's 16000"):
        restride_output(pw, 128 * 16, CFG8)
    image = bytearray(5000)
    moved = restride_output(pw, 128 * 16, CFG8, image)
    # (its plan's N tiles are 56 channels, 7 planes: the next tile's planes start 7 planes on)
    assert moved.descriptor["cv_c_block"] == 2048 and moved.descriptor["c_stride_n"] == 2048 * 7
    assert moved.c_base == moved.descriptor["c_base"] == 8192 and len(image) == 8192 + 16384
    with pytest.raises(ConfigError, match=r"^operand a reads planes 2000 bytes apart, not the producer's 2048$"):
        feed(dw2, "a", moved)
    with pytest.raises(ConfigError, match=r"^output plane stride must be a multiple of the 16-byte bus of at least "
                                          r"2000 bytes, not 1000$"):
        restride_output(pw, 1000, CFG8)
