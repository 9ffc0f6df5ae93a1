"""Residual adds and squeeze-excite scales on the built vector unit, through the whole-layer top's AXI port.

Per layer: the outputs read back equal TFLite's 8-bit ADD (``workloads.eltwise_arith.tflite_add``,
each input with its own seeded scale and zero point) element for element; cycles, stall cycles and
DRAM bytes equal ``codesign.sim``'s (``sim.vecplan``: chunks through the array's DMA program). A chunk
of ``ms`` words computes in ``1 + ms + 8`` cycles, checked on a one-chunk add below by the closed form.
"""

from __future__ import annotations

import json

import pytest

from codesign.cli import main
from codesign.hdl.bench.runner import default_simulator, simulator_available
from codesign.hdl.verify import AddOperands, verify_layers
from codesign.sim.config import AcceleratorConfig
from codesign.sim.tileplan import DMA_WRITE_OVERHEAD_CYCLES, REQUANT_WRITE_CYCLES
from codesign.workloads.layers import Eltwise

pytestmark = [
    pytest.mark.rtl,
    pytest.mark.skipif(not simulator_available(default_simulator()),
                       reason=f"the RTL simulator {default_simulator()} is not installed"),
]


def run(cfg: AcceleratorConfig, sizes: list[int], stall: float = 0.0) -> list:
    pairs = []
    for i, e in enumerate(sizes):
        ly = Eltwise(f"add{i}_{e}", elements=e)
        pairs.append((ly, AddOperands.seeded(ly, cfg, 1, 10 + i)))
    results = verify_layers(pairs, cfg, seed=3, stall=stall)
    for r in results:
        d = r.to_dict()
        assert r.outputs_match, d
        assert (r.rtl_dram_read_bytes, r.rtl_dram_write_bytes) == (r.sim_dram_read_bytes, r.sim_dram_write_bytes), d
        if stall:
            assert r.rtl_cycles >= r.sim_cycles, d
        else:
            assert (r.rtl_cycles, r.rtl_stall_cycles) == (r.sim_cycles, r.sim_stall_cycles), d
        assert r.ok, d
    return results


def test_adds_exact_requantized_and_one_chunk_closed_form() -> None:
    """4x4 (4 lanes), 1 KiB buffers: a slot holds 32 words, so 1,000 elements (250 words) take 8 chunks.
    The 37-element add is one chunk of 10 words: read the identity table (one word of 4 x 56 bits = 28
    bytes: 7 beats of the 4-byte bus), then X and Y (2 x 10 words of 4 bytes), compute 1 + 10 + 8, store
    10 words of 4 int8 lanes (DMA_WRITE_OVERHEAD_CYCLES = 3 with the DMA's command register) through the
    requantizing write-back (REQUANT_WRITE_CYCLES = 6: four cuts of arithmetic and a queue):
    (3 + 100 + 7) + (3 + 100 + 80 / 4) + 19 + (3 + 6 + 100 + 40 / 4) = 371 (a read: the decision, the DMA's
    command register, the first address)."""
    cfg = AcceleratorConfig(rows=4, cols=4, input_sram_bytes=1024, weight_sram_bytes=1024, output_sram_bytes=1024,
                            dram_bytes_per_cycle=4)
    results = run(cfg, [37, 300, 1000])
    one = results[0]
    assert one.tiles == 1
    assert one.rtl_cycles == (3 + 100 + 7) + (3 + 100 + 20) + 19 + (
        DMA_WRITE_OVERHEAD_CYCLES + REQUANT_WRITE_CYCLES + 100 + 10) == 371


def test_adds_accumulators_single_buffered_narrow_bus_and_stalls() -> None:
    """Accumulators written back (32-bit lanes), one slot per buffer, a 2-byte bus at 1.5 B/cycle, an
    8x8 array; then random AXI stalls on every channel: outputs unchanged, never faster."""
    cfg = AcceleratorConfig(rows=8, cols=8, input_sram_bytes=2048, weight_sram_bytes=2048, output_sram_bytes=4096,
                            dram_bytes_per_cycle=1.5, requantize=False, double_buffered=False)
    run(cfg, [64, 517])
    run(cfg.replace(requantize=True, double_buffered=True, dram_bytes_per_cycle=8), [1200], stall=0.25)


def test_cli_verifies_a_zoo_residual_add(capsys) -> None:
    """ResNet-8's last residual add (4,096 elements) through ``codesign verify`` on 8x8: exact alone on the
    vector unit (``--fusion none``, 512 words of 8 lanes) and, by default (``fusion: auto``), in the write-back
    of the shortcut convolution before it (the pair verified as one layer: its GEMM is 64 pixels x 64
    channels x 32)."""
    assert main(["verify", "--workload", "resnet8_cifar", "--layer", "stack3.add", "--rows", "8", "--cols", "8",
                 "--fusion", "none", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    (r,) = out["layers"] if isinstance(out, dict) else out
    assert r["ok"] and r["outputs_match"] and r["rtl_cycles"] == r["sim_cycles"] and r["m"] == 4096 // 8
    assert main(["verify", "--workload", "resnet8_cifar", "--layer", "stack3.add", "--rows", "8", "--cols", "8",
                 "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    (r,) = out["layers"] if isinstance(out, dict) else out
    assert r["layer"] == "stack3.shortcut+stack3.add" and (r["m"], r["n"], r["k"]) == (64, 64, 32)
    assert r["ok"] and r["outputs_match"] and r["rtl_cycles"] == r["sim_cycles"]


def test_squeeze_excite_scales_exact() -> None:
    """A map times its per-channel scale (TFLite's MUL, the scale broadcast over the pixels): the map as
    planes of 4 channels, each plane's scale one word read once; whole planes packed two to a tile
    (6 channels of 9 pixels: 2 planes) or chunks of 32 pixels (3 channels of 100 pixels), partial
    planes (10 channels: 4 + 4 + 2), requantized and accumulator write-back."""
    for requant in (True, False):
        cfg = AcceleratorConfig(rows=4, cols=4, input_sram_bytes=1024, weight_sram_bytes=1024,
                                output_sram_bytes=1024, dram_bytes_per_cycle=4, requantize=requant)
        pairs = []
        for i, (c, hw) in enumerate([(6, 9), (10, 7), (3, 100)]):
            ly = Eltwise(f"scale{i}", elements=c * hw, op="mul", inputs_count=2, operand_elements=(c * hw, c))
            pairs.append((ly, AddOperands.seeded(ly, cfg, 1, 20 + i)))
        results = verify_layers(pairs, cfg, seed=5)
        assert [r.tile[0] for r in results] == [2, 2, 1]
        for r in results:
            assert r.ok and r.outputs_match and r.rtl_cycles == r.sim_cycles, r.to_dict()
