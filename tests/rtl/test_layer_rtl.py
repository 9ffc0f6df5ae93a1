"""Whole-layer RTL tier: the AXI accelerator runs layers from DRAM; its counters equal the simulator's.

Each test runs one configuration on a set of layers in ONE Icarus run (start-up costs ~1 s). Per
layer it checks, against numbers stated independently of the RTL:

* outputs: C read back from the memory model equals numpy's int64 ``A @ B`` bit for bit;
* cycles, stall cycles, DRAM bytes read and written: the RTL's counters equal what
  ``codesign.sim.engine.simulate_layer`` (the SimPy engine, i.e. ``codesign simulate``) reports;
  for a one-tile layer both also equal the closed form ``load + compute + store`` below;
* enabled MACs: ``GemmOperands.active_macs()`` with zero-gating, ``M*N*K*groups`` without.

The default tier keeps a representative subset (WS and OS, single and double buffering, a
bandwidth-starved memory, random AXI stalls, the hardware's error bits); ``-m slow`` runs the
full matrix on 8x8 arrays and real zoo layers at full size.
"""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

from codesign.cli import main
from codesign.hdl.bench.runner import default_simulator, simulator_available
from codesign.hdl.verify import hardware_layer, verify_layers
from codesign.sim.config import AcceleratorConfig
from codesign.sim.dwplan import DwPlan
from codesign.sim.engine import simulate_layer
from codesign.sim.mapping import plan_layer
from codesign.sim.tileplan import skip_slots
from codesign.sim.timing import native_gemm_cycles
from codesign.workloads import zoo
from codesign.workloads.layers import Conv2d, Layer, Linear, MatMul
from codesign.workloads.tensors import layer_operands

pytestmark = [
    pytest.mark.rtl,
    pytest.mark.skipif(not simulator_available(default_simulator()),
                       reason=f"the RTL simulator {default_simulator()} is not installed"),
]

# the array's layers on the array alone, im2col'd (the depthwise engine, the vector unit and on-chip windows have
# tests of their own: tests/rtl/test_depthwise_layer_rtl.py, test_vector_layer_rtl.py, test_conv_window_rtl.py;
# left out, the builds stay small)
SMALL = {"input_sram_bytes": 1024, "weight_sram_bytes": 1024, "output_sram_bytes": 2048, "depthwise": "array",
         "vector_unit": False, "conv_windows": False}


def zoo_layer(net: str, name: str, size: int | None = None) -> Layer:
    """A real zoo layer (channels, kernel, stride, groups as published); input scaled to
    ``size`` x ``size`` pixels when given, to keep a default-tier run short."""
    layer = next(ly for ly in zoo.get(net).layers if ly.name == name)
    if size is not None:
        assert isinstance(layer, Conv2d)
        layer = replace(layer, name=f"{net}.{name}@{size}", in_h=size, in_w=size)
    return layer


def small_layers() -> list[tuple[Layer, str | float | None]]:
    return [
        (Linear("ragged_gemm", in_features=21, out_features=10, tokens=13, bias=False), None),
        (Conv2d("conv1x1", in_channels=12, out_channels=10, in_h=5, in_w=5, kernel=1), 0.5),
        (Conv2d("conv3x3_s2_p1", in_channels=5, out_channels=7, in_h=9, in_w=9, kernel=3, stride=2, padding=1),
         "2:4"),
        (Conv2d("depthwise3x3", in_channels=8, out_channels=8, in_h=4, in_w=4, kernel=3, padding=1, groups=8), None),
        (MatMul("attention_scores", m=9, n=7, k=5, heads=3), None),
        (Linear("k_split", in_features=70, out_features=40, tokens=50, bias=False), None),
        (zoo_layer("mobilenet_v2", "block2.project", 3), "2:4"),
    ]


def run(cfg: AcceleratorConfig, layers: list[tuple[Layer, str | float | None]], *, stall: float = 0.0,
        seed: int = 0, tmp_path=None):  # type: ignore[no-untyped-def]
    pairs = []
    for layer, density in layers:
        hw = hardware_layer(layer, cfg, density)
        pairs.append((hw, layer_operands(hw, seed=seed)))
    return pairs, verify_layers(pairs, cfg, stall=stall, seed=seed, work_dir=tmp_path)


def check_exact(cfg: AcceleratorConfig, pairs, results) -> None:  # type: ignore[no-untyped-def]
    for (layer, ops), r in zip(pairs, results, strict=True):
        sim = simulate_layer(layer, 1, cfg)
        assert r.outputs_match, r.layer
        assert (r.rtl_cycles, r.rtl_stall_cycles) == (sim.cycles, sim.stall_cycles), r.layer
        assert r.sim_cycles == sim.cycles and r.sim_stall_cycles == sim.stall_cycles
        assert r.rtl_dram_read_bytes * 8 == sim.counts.dram_read_bits, r.layer
        assert r.rtl_dram_write_bytes * 8 == sim.counts.dram_write_bits, r.layer
        g, m, k = ops.a.shape
        # skipping PEs gate zeros too; every non-zero weight has one slot, whose selected activation is
        # its own A[m, k]: the enabled MACs are the gated count of the dense tensors
        expected_macs = ops.active_macs() if cfg.zero_handling.value != "none" else g * m * k * ops.b.shape[2]
        plan = plan_layer(layer, 1, cfg).tiling
        if isinstance(plan, DwPlan):  # the depthwise engine multiplies every tap, its padding zeros too
            expected_macs = plan.enabled_macs()
        assert r.rtl_enabled_macs == expected_macs == r.ref_enabled_macs, r.layer
        if layer.weights.density == 1.0:  # the model's count is exact: padding zeros are gated too
            assert r.sim_active_macs == r.rtl_enabled_macs, r.layer
        assert r.ok


def test_ws_double_buffered_layers_exact(tmp_path) -> None:
    # accumulator write-back (requantize: false), the option beside the default 8-bit outputs
    # (depthwise layers on the array: tests/rtl/test_depthwise_layer_rtl.py runs them on the engine)
    cfg = AcceleratorConfig(rows=4, cols=4, dataflow="ws", requantize=False, dram_bytes_per_cycle=16,
                            dram_latency_cycles=10, **SMALL)
    pairs, results = run(cfg, small_layers(), tmp_path=tmp_path)
    check_exact(cfg, pairs, results)
    # the ragged 13x10x21 GEMM is one tile: 3 + 10 + ceil(A+B bytes / 16) to load (the decision, the DMA's
    # command register, the first address), the on-chip GEMM
    # + 1 + 1 to compute, 3 + 10 + ceil(C bytes / 16) to store (the decision, the DMA's command register, the
    # response). A: ceil(21/4) * 13 = 78 words of
    # 4 int8 lanes, one 16-byte beat each; B: 6 K chunks x 3 N chunks x 4 rows = 72 words; C: 3 * 13 =
    # 39 words of 4 x 32-bit accumulators (16 bytes).
    r = results[0]
    assert (r.tiles, r.rtl_dram_read_bytes, r.rtl_dram_write_bytes) == (1, (78 + 72) * 16, 39 * 16)
    compute = native_gemm_cycles(cfg, 13, 10, 21) + 2
    assert r.rtl_cycles == (3 + 10 + 150) + compute + (3 + 10 + 39)
    assert r.rtl_stall_cycles == r.rtl_cycles - compute
    # the depthwise layer packs groups: a group's A block is ceil(9/4) * 16 = 48 words and a slot of the
    # 1 KiB input buffer holds 128 words of 32 bits, so 2 groups to a tile (B: 12 words, C: 16 of 64)
    assert results[3].tile[0] == 2 and results[3].tiles == 4


def test_os_single_buffered_starved_memory_exact(tmp_path) -> None:
    # 1 byte a cycle, 60 cycles latency: a 1-byte bus, 32-bit activation words take 4 beats each
    cfg = AcceleratorConfig(rows=4, cols=4, dataflow="os", zero_handling="gate", double_buffered=False,
                            dram_bytes_per_cycle=1, dram_latency_cycles=60, **SMALL)
    layers = [small_layers()[i] for i in (0, 2, 3, 5)]
    pairs, results = run(cfg, layers, seed=1, tmp_path=tmp_path)
    check_exact(cfg, pairs, results)
    for r in results:  # stalls are most of the layer
        assert r.rtl_stall_cycles > r.rtl_cycles / 2


def test_fractional_bandwidth_and_narrow_bus_exact(tmp_path) -> None:
    # 1.5 bytes a cycle: a 2-byte bus the memory feeds at 3 bytes per 2 cycles; 4-bit operands
    cfg = AcceleratorConfig(rows=4, cols=4, dataflow="ws", weight_bits=4, act_bits=4, dram_bytes_per_cycle=1.5,
                            dram_latency_cycles=25, **SMALL)
    layers = [small_layers()[i] for i in (1, 4, 5)]
    pairs, results = run(cfg, layers, seed=2, tmp_path=tmp_path)
    check_exact(cfg, pairs, results)


def test_is_dataflow_layers_exact(tmp_path) -> None:
    # IS: the WS core on C^T = B^T A^T (inputs stationary, N streams), unsigned 6-bit activations
    cfg = AcceleratorConfig(rows=4, cols=4, dataflow="is", act_bits=6, act_signed=False, zero_handling="gate",
                            dram_bytes_per_cycle=8, dram_latency_cycles=15, **SMALL)
    layers = [small_layers()[i] for i in (0, 2, 3, 4, 5)]
    pairs, results = run(cfg, layers, seed=5, tmp_path=tmp_path)
    check_exact(cfg, pairs, results)
    # the one-tile ragged GEMM: the on-chip GEMM is the WS form with M and N swapped,
    # 1 + (F - 1) * max(N, rows) + N + rows + cols + 2 (the PEs' multiplier registers) with
    # F = ceil(21/4) * ceil(13/4) = 24
    r = results[0]
    assert r.tiles == 1 and native_gemm_cycles(cfg, 13, 10, 21) == 1 + 23 * 10 + 10 + 4 + 4 + 2


def test_requantized_write_back_exact(tmp_path) -> None:
    # outputs requantized on the way out (per-channel bias, mult, shift; zero point, clamps) to the
    # activations' 8 bits: they equal codesign.workloads.intarith.requantize of numpy's sums
    for dataflow, bw in (("ws", 16), ("os", 2)):
        cfg = AcceleratorConfig(rows=4, cols=4, dataflow=dataflow, requantize=True, dram_bytes_per_cycle=bw,
                                dram_latency_cycles=12, **SMALL)
        layers = [small_layers()[i] for i in (0, 2, 3, 4, 5)]
        pairs, results = run(cfg, layers, seed=6, tmp_path=tmp_path / dataflow)
        check_exact(cfg, pairs, results)
        # 4 lanes of 8 bits a word: the 13x10x21 GEMM writes 39 words; one beat each on the 16-byte bus,
        # 2 beats of 2 bytes on the 2-byte bus (4x less than 32-bit accumulators)
        assert results[0].rtl_dram_write_bytes == (39 * 16 if bw == 16 else 48 * 4)
        assert all(-128 <= int(r.rtl_outputs.min()) and int(r.rtl_outputs.max()) <= 127 for r in results)


def test_is_requantized_write_back_exact(tmp_path) -> None:
    """IS requantizes too: an output word of the WS core is a row of C^T, one output channel in all
    its lanes, so its table word is that channel's one entry (bias, mult, shift) applied to every lane.
    Conv with stride and padding, depthwise groups packed into tiles, K tiles (k_split: K=70 on 1 KiB
    buffers), double and single buffering, a fed and a starved memory: outputs equal
    intarith.requantize of numpy's sums, counters equal the simulator's."""
    layers = [small_layers()[i] for i in (0, 2, 3, 4, 5)]
    for name, extra in (("db", {"dram_bytes_per_cycle": 8, "dram_latency_cycles": 15}),
                        ("sb-starved", {"double_buffered": False, "dram_bytes_per_cycle": 1,
                                        "dram_latency_cycles": 60})):
        cfg = AcceleratorConfig(rows=4, cols=4, dataflow="is", requantize=True, act_signed=False, **extra, **SMALL)
        pairs, results = run(cfg, layers, seed=13, tmp_path=tmp_path / name)
        check_exact(cfg, pairs, results)
        assert results[4].tile[3] < 70  # K tiles: partial sums stay on chip, the last K tile requantizes
        assert results[2].tile[0] > 1  # depthwise: groups packed into a tile, a table word per channel
        # the 13x10x21 GEMM: C^T is 10 channel rows x ceil(13/4) = 4 chunks = 40 words of 4 lanes of 8
        # bits (one beat each on the 8-byte bus; 4 beats of 1 byte on the 1-byte bus); the table is one
        # 56-bit entry per channel, 10 words of one 8-byte beat (7 beats of 1 byte)
        bus = 8 if name == "db" else 1
        word = max(bus, 4)
        assert results[0].rtl_dram_write_bytes == 40 * word
        assert all(0 <= int(r.rtl_outputs.min()) and int(r.rtl_outputs.max()) <= 255 for r in results)
        # reads, one tile: A^T 6 K chunks x 4 M chunks x 4 rows = 96 words of 4 uint8 lanes, B^T 6 x 10 = 60
        # words of 4 int8 (4 bytes each: one 8-byte beat, or 4 beats of 1 byte), and the table
        if name == "db":
            assert results[0].rtl_dram_read_bytes == (96 + 60 + 10) * 8
        else:
            assert results[0].rtl_dram_read_bytes == (96 + 60) * 4 + 10 * 7


def skip_layers() -> list[tuple[Layer, str | float | None]]:
    """The small layers with 2:4 and 1:4 weights (compressed), and dense / unstructured weights and
    activations as B (the dense layout of the skipping hardware)."""
    lay = small_layers()
    return [(lay[0][0], "2:4"), (lay[1][0], "1:4"), (lay[2][0], "2:4"), (lay[3][0], "2:4"), lay[4],
            (lay[5][0], "2:4"), (lay[6][0], "2:4"), (lay[1][0], 0.5), (lay[0][0], None)]


def test_nm_skipping_layers_exact(tmp_path) -> None:
    """2:4 skipping on the WS array: each PE holds a weight slot and its 2-bit index and selects
    its activation from its row's group of 4; the weight buffer's words carry the indices."""
    cfg = AcceleratorConfig(rows=4, cols=4, zero_handling="skip", skip_pattern="2:4", dram_bytes_per_cycle=8,
                            dram_latency_cycles=10, **SMALL)
    pairs, results = run(cfg, skip_layers(), seed=3, tmp_path=tmp_path)
    check_exact(cfg, pairs, results)
    # K=70 with 2:4 weights: 17 groups of 4 keep 2 slots each, the last group (2 weights) 2: 36 slots
    # -> ceil(36/4) = 9 row folds instead of ceil(70/4) = 18; the 16-byte activation words hold 2
    # groups of 4 int8 lanes
    assert results[5].k == 70 and skip_slots(70, pairs[5][0].weights, (2, 4)) == (36, True)
    assert results[5].tile[3] == 12  # K tiles of 12 slots (6 groups of 4 activations): sums across K tiles


def test_nm_skipping_halves_compute(tmp_path) -> None:
    """On 2:4 weights the array's busy cycles (cycles - stall cycles, from the RTL's counters) are
    about half of the gated array's on the same layer: 9 row folds instead of 18 (K=70 on 4 rows)."""
    layer = small_layers()[5][0]
    busy = {}
    for zh in ("gate", "skip"):
        cfg = AcceleratorConfig(rows=4, cols=4, zero_handling=zh, dram_bytes_per_cycle=16, dram_latency_cycles=10,
                                **SMALL)
        pairs, results = run(cfg, [(layer, "2:4")], seed=8, tmp_path=tmp_path / zh)
        check_exact(cfg, pairs, results)
        r = results[0]
        busy[zh] = r.rtl_cycles - r.rtl_stall_cycles
        assert busy[zh] == simulate_layer(pairs[0][0], 1, cfg).compute_cycles
    assert 0.45 < busy["skip"] / busy["gate"] < 0.55


def test_two_layers_back_to_back(tmp_path) -> None:
    """Layer 2's inputs are layer 1's requantized outputs as read back from the RTL's DRAM; layer 2's
    outputs equal the numpy chain (int64 sums, intarith.requantize, im2col) bit for bit."""
    from codesign.hdl.host import random_requant
    from codesign.workloads.tensors import GemmOperands, im2col

    cfg = AcceleratorConfig(rows=4, cols=4, dataflow="ws", requantize=True, act_signed=False,
                            dram_bytes_per_cycle=8, dram_latency_cycles=20, **SMALL)
    l1 = Conv2d("l1", in_channels=3, out_channels=6, in_h=7, in_w=7, kernel=3, padding=1)
    l2 = Conv2d("l2", in_channels=6, out_channels=5, in_h=7, in_w=7, kernel=3, stride=2, padding=1)
    rng = np.random.default_rng(11)
    h1, h2 = hardware_layer(l1, cfg), hardware_layer(l2, cfg)
    ops1 = layer_operands(h1, seed=11)
    q1 = random_requant(ops1.c, 8, False, rng)
    (r1,) = verify_layers([(h1, ops1)], cfg, requant=[q1], work_dir=tmp_path / "l1")
    assert r1.ok
    # layer 1's C [1, 49, 6] (rows: y, x) -> feature map [1, 6, 7, 7] -> layer 2's A by im2col
    x2 = r1.rtl_outputs[0].T.reshape(1, 6, 7, 7)
    w2 = layer_operands(h2, seed=12).b
    ops2 = GemmOperands(a=im2col(x2, h2), b=w2, shape=h2.gemm(1))
    q2 = random_requant(ops2.c, 8, False, rng)
    (r2,) = verify_layers([(h2, ops2)], cfg, requant=[q2], work_dir=tmp_path / "l2")
    # the numpy chain from layer 1's own reference outputs
    x2_ref = q1.apply(ops1.c)[0].T.reshape(1, 6, 7, 7)
    expect = q2.apply(np.matmul(im2col(x2_ref, h2).astype(np.int64), w2))
    assert r2.ok and np.array_equal(r2.rtl_outputs, expect)
    assert r2.rtl_cycles == simulate_layer(h2, 1, cfg).cycles


def test_digits_network_end_to_end(tmp_path, capsys) -> None:
    """The trained digits CNN, 8 test images, every layer on the RTL with its real weights and
    requantization: each layer's outputs and the classes equal the numpy integer reference, and the
    network's cycles equal the simulator's."""
    cfg_file = tmp_path / "accel.yaml"
    cfg_file.write_text("rows: 8\ncols: 8\ninput_sram_bytes: 4096\nweight_sram_bytes: 4096\n"
                        "output_sram_bytes: 8192\n")
    assert main(["verify", "--workload", "digits_cnn", "--network", "--images", "8", "--config", str(cfg_file),
                 "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["predictions_match"] and out["outputs_match"] and out["ok"]
    assert out["rtl_cycles"] == out["sim_cycles"] == sum(la["sim_cycles"] for la in out["layers"])
    assert len(out["layers"]) == 4 and out["config"]["requantize"] is True


def test_ds_cnn_every_layer_full_size_8x8(tmp_path, capsys) -> None:
    """A whole small network at full size on the default 8x8 config, as the README's user runs it:
    ``codesign verify --workload ds_cnn_kws --rows 8 --cols 8`` (every layer with a GEMM, one start
    each). Every layer's outputs match numpy and its counters equal ``codesign simulate --no-residency``'s
    row for that layer (each layer runs alone, DRAM to DRAM: the outputs kept on chip between layers are the
    network top's, ``tests/rtl/test_residency_rtl.py``)."""
    assert main(["verify", "--workload", "ds_cnn_kws", "--rows", "8", "--cols", "8", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    sim_json = tmp_path / "sim.json"
    assert main(["simulate", "-w", "ds_cnn_kws", "--rows", "8", "--cols", "8", "--no-residency", "--out",
                 str(sim_json)]) == 0
    capsys.readouterr()
    rows = {r["layer"]: r for r in json.loads(sim_json.read_text())["layers"]}
    assert out["ok"] and len(out["layers"]) == 11  # conv1, 4 x (dw on the engine, pw), the avg pool (a GEMM), fc
    for la in out["layers"]:
        assert la["outputs_match"], la["layer"]
        for col in ("cycles", "stall_cycles", "dram_read_bytes", "dram_write_bytes"):
            assert la[f"rtl_{col}"] == la[f"sim_{col}"] == rows[la["layer"]][col], (la["layer"], col)


def test_random_axi_stalls_keep_outputs_and_never_beat_the_ideal_memory(tmp_path) -> None:
    cfg = AcceleratorConfig(rows=4, cols=4, dataflow="os", dram_bytes_per_cycle=4, dram_latency_cycles=20, **SMALL)
    layers = [small_layers()[i] for i in (0, 3, 5)]
    pairs, results = run(cfg, layers, stall=0.3, seed=3, tmp_path=tmp_path)
    for (layer, _ops), r in zip(pairs, results, strict=True):
        sim = simulate_layer(layer, 1, cfg)
        assert r.outputs_match
        assert r.rtl_cycles > sim.cycles  # 30 % wait cycles on every channel cost time
        assert r.rtl_dram_read_bytes * 8 == sim.counts.dram_read_bits
        assert r.ok


def test_cli_verify_json_equals_simulate(tmp_path, capsys) -> None:
    flags = ["--rows", "4", "--cols", "4", "--dataflow", "ws", "--dram-bytes-per-cycle", "2"]
    cfg_file = tmp_path / "accel.yaml"
    cfg_file.write_text("input_sram_bytes: 1024\nweight_sram_bytes: 1024\noutput_sram_bytes: 2048\n"
                        "dram_latency_cycles: 30\n")
    assert main(["verify", "--gemm", "20,13,37", "--config", str(cfg_file), *flags, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    (layer,) = out["layers"]
    sim_json = tmp_path / "sim.json"
    assert main(["simulate", "-w", "gemm:20,13,37", "--config", str(cfg_file), *flags, "--out", str(sim_json)]) == 0
    capsys.readouterr()
    (row,) = json.loads(sim_json.read_text())["layers"]
    for col in ("cycles", "stall_cycles", "dram_read_bytes", "dram_write_bytes"):
        assert layer[f"sim_{col}"] == row[col] == layer[f"rtl_{col}"], col
    assert layer["outputs_match"] and out["ok"]


def test_hardware_flags_bad_descriptors(tmp_path) -> None:
    """Descriptors the host API would refuse, written straight to the registers: the hardware
    sets ERROR bits and does not start (no garbage, no hang)."""
    from codesign.hdl.bench.runner import run_layer_job
    from codesign.hdl.control.regs import ERROR_BITS
    from codesign.sim.tileplan import plan_tiles
    from codesign.workloads.layers import GemmShape

    cfg = AcceleratorConfig(rows=4, cols=4, dataflow="ws", **SMALL)
    good = plan_tiles(GemmShape(13, 10, 21), cfg).descriptor(0, 4096, 8192)
    bad = [
        {**good, "m": 0},  # zero size (and so mt > m)
        {**good, "kt": 22},  # tile larger than K
        {**good, "b_base": 4100},  # not on the 16-byte bus
        {**good, "gt": 32, "groups": 40},  # 32 groups' blocks do not fit a slot of any buffer
        {**good, "gt": 3, "groups": 3},  # groups per tile must be a power of two
        {**good, "m": good["m"] | 1 << 24},  # m's 24-bit register holds 13, the bit above it flags too_wide
        good,
    ]
    res = run_layer_job(cfg, {"layers": [{"descriptor": d} for d in bad]}, tmp_path, depth_words=4096,
                        plusargs=["+LAT=5"])
    bits = {name: 1 << i for i, (name, _) in enumerate(ERROR_BITS)}
    errors = [r["error"] for r in res["layers"]]
    assert errors[:4] == [bits["zero_size"] | bits["tile_too_large"], bits["tile_too_large"], bits["unaligned"],
                          bits["a_overflow"] | bits["b_overflow"] | bits["c_overflow"]]
    assert errors[4] & bits["gt_not_power_of_two"] and errors[5] == bits["too_wide"] and errors[6] == 0
    for r in res["layers"][:6]:
        assert r["status"] == 0b100 and r["cycles"] == 0  # error, not busy, not done, never started
    assert res["layers"][6]["status"] == 0b010 and res["layers"][6]["cycles"] > 0


# -- slow tier: the full matrix, 8x8, real layers at full size --------------------------------------
def full_layers() -> list[tuple[Layer, str | float | None]]:
    return [
        *small_layers()[:6],
        (zoo_layer("mobilenet_v2", "block1.dw", 7), None),
        (zoo_layer("mobilenet_v2", "block3.expand", 7), None),
        (zoo_layer("ds_cnn_kws", "ds1.pw"), "2:4"),
    ]


@pytest.mark.slow
@pytest.mark.parametrize("dataflow", ["ws", "os", "is"])
@pytest.mark.parametrize("double_buffered", [True, False], ids=["db", "sb"])
@pytest.mark.parametrize(("bw", "lat"), [(16, 10), (1, 100)], ids=["bw16", "bw1-lat100"])
def test_full_matrix_exact(dataflow, double_buffered, bw, lat, tmp_path) -> None:
    cfg = AcceleratorConfig(rows=8, cols=8, dataflow=dataflow, double_buffered=double_buffered,
                            dram_bytes_per_cycle=bw, dram_latency_cycles=lat, zero_handling="gate",
                            input_sram_bytes=4096, weight_sram_bytes=4096, output_sram_bytes=8192)
    pairs, results = run(cfg, full_layers(), seed=4, tmp_path=tmp_path)
    check_exact(cfg, pairs, results)
    if bw == 1:
        assert all(r.rtl_stall_cycles > r.rtl_cycles / 2 for r in results)


@pytest.mark.slow
@pytest.mark.parametrize("double_buffered", [True, False], ids=["db", "sb"])
@pytest.mark.parametrize(("bw", "lat"), [(16, 10), (2, 60)], ids=["bw16", "bw2-lat60"])
def test_nm_skipping_matrix_exact(double_buffered, bw, lat, tmp_path) -> None:
    """2:4 skipping on 8x8 on real zoo layers with 2:4 weights (MobileNetV2, DS-CNN) and the small
    set (compressed and dense layouts), single and double buffered, fed and starved memory."""
    cfg = AcceleratorConfig(rows=8, cols=8, zero_handling="skip", double_buffered=double_buffered,
                            dram_bytes_per_cycle=bw, dram_latency_cycles=lat,
                            input_sram_bytes=4096, weight_sram_bytes=4096, output_sram_bytes=8192)
    layers = [*skip_layers(), (zoo_layer("mobilenet_v2", "block1.dw", 7), "2:4"),
              (zoo_layer("mobilenet_v2", "block3.expand", 7), "2:4"), (zoo_layer("ds_cnn_kws", "ds1.pw"), "2:4")]
    pairs, results = run(cfg, layers, seed=9, tmp_path=tmp_path)
    check_exact(cfg, pairs, results)


@pytest.mark.slow
def test_mobilenet_v2_1x1_layer_full_size_8x8(tmp_path) -> None:
    """A whole 1x1 MobileNetV2 layer at full size from DRAM (bench/rtl_speed.py times this)."""
    cfg = AcceleratorConfig(rows=8, cols=8, dataflow="ws", input_sram_bytes=16384, weight_sram_bytes=16384,
                            output_sram_bytes=32768)
    layer = zoo_layer("mobilenet_v2", "block6.project")
    pairs, results = run(cfg, [(layer, None)], tmp_path=tmp_path)
    check_exact(cfg, pairs, results)
    assert pairs[0][1].c.shape == (1, 196, 64)  # 14x14 pixels, 192 -> 64 channels


@pytest.mark.slow
@pytest.mark.skipif(default_simulator() != "verilator", reason="hours on Icarus (14.9 M cycles of a 16x16 array)")
def test_mobilenet_v2_every_layer_full_size_16x16() -> None:
    """MobileNetV2 at full size (all 64 layers, 224x224 input: the depthwise layers on the depthwise
    engine, the residual adds in their project convolutions' write-backs, the average pool as its GEMM) on a
    16x16 array with the default config, each layer from its own start: every layer's outputs match numpy
    (TFLite's ADD for the adds) and its counters equal the SimPy engine's for the layer alone. On Verilator
    this takes minutes (bench/results/rtl_network.json), on Icarus hours."""
    from codesign.hdl.verify import verify

    cfg = AcceleratorConfig(rows=16, cols=16)
    results = verify(cfg, workload="mobilenet_v2")
    # 64 layers, the 10 residual adds run in their project convolutions' write-backs (one result each pair)
    assert len(zoo.get("mobilenet_v2").layers) == 64 and len(results) == 64 - 10
    for r in results:
        assert r.outputs_match and r.ok, r.layer
        assert (r.rtl_cycles, r.rtl_dram_read_bytes) == (r.sim_cycles, r.sim_dram_read_bytes), r.layer
