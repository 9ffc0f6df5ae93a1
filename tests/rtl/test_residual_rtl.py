"""Residual adds built into a layer's write-back (``sim.fusion``'s built add), through the whole-layer top.

A convolution or linear layer with flags bit 7: the DMA reads the residual's blocks (laid out as the
layer's output, at ``res_base``) with the loads of every tile that stores, and the write-back sends each
requantized output word with its residual word through the vector unit's ADD (TFLite's arithmetic, each
input with its own seeded scale and zero point) on the way to DRAM. Per layer:

* outputs: ``tflite_add(requantize(A @ B), residual)`` (numpy: ``workloads.eltwise_arith``), bit for bit;
* cycles, stall cycles, DRAM bytes read (the residual's included) and written, enabled MACs: the RTL's
  counters equal ``codesign simulate``'s for the layer in its fusion context (the vector unit's 7 stages
  and the queue after them delay each store's first beat by ``WRITEBACK_ADD_CYCLES``).

Shapes no zoo network fixes: convolutions with on-chip windows cut into bands, K tiles and N tiles by
1 KiB buffers (their output planes and the residual's), im2col'd strided convolutions and linear layers
(the output's column chunks of M words), a batch of two, random AXI stalls.
"""

from __future__ import annotations

import numpy as np
import pytest

from codesign.hdl.bench.runner import default_simulator, simulator_available
from codesign.hdl.verify import ResidualOperands, hardware_layer, residual_context, verify_layers
from codesign.sim.config import AcceleratorConfig
from codesign.sim.convplan import WinPlan
from codesign.sim.engine import simulate_layer
from codesign.sim.mapping import plan_layer
from codesign.sim.tileplan import TilePlan
from codesign.workloads.layers import Layer, Linear
from codesign.workloads.tensors import layer_operands

from .conftest import assert_counters, random_conv

pytestmark = [
    pytest.mark.rtl,
    pytest.mark.skipif(not simulator_available(default_simulator()),
                       reason=f"the RTL simulator {default_simulator()} is not installed"),
]

BASE = {"rows": 4, "cols": 4, "input_sram_bytes": 1024, "weight_sram_bytes": 1024, "output_sram_bytes": 1024,
        "depthwise": "array", "dram_bytes_per_cycle": 4, "dram_latency_cycles": 8, "fusion": "eltwise"}


def config(**kw: object) -> AcceleratorConfig:
    return AcceleratorConfig(**{**BASE, **kw})  # type: ignore[arg-type]


def random_layers(seed: int, count: int) -> list[Layer]:
    """Random convolutions (kernels 1 to 5, strides 1 to 2, asymmetric padding, 2 to 12 channels) and a
    linear layer."""
    rng = np.random.default_rng(seed)
    out: list[Layer] = []
    while len(out) < count - 1:
        layer = random_conv(rng, len(out))
        if layer is not None:
            out.append(layer)
    out.append(Linear("fc_24to10", in_features=24, out_features=10, tokens=int(rng.integers(3, 9))))
    return out


def check(cfg: AcceleratorConfig, layers: list[Layer], *, seed: int = 1, stall: float = 0.0,
          batch: int = 1) -> list:
    pairs, residuals = [], []
    for ly in layers:
        hl = hardware_layer(ly, cfg)
        ops = layer_operands(hl, seed=seed, batch=batch)
        pairs.append((hl, ops))
        residuals.append(ResidualOperands.seeded(ops.c.shape, cfg, seed))
    results = verify_layers(pairs, cfg, seed=seed, stall=stall, batch=batch, residuals=residuals)
    for (hl, ops), r in zip(pairs, results, strict=True):
        d = r.to_dict()
        assert r.outputs_match, r.layer
        sim = simulate_layer(hl, batch, cfg, context=residual_context())
        alone = simulate_layer(hl, batch, cfg)
        # the residual moves as the output does: the layer's store bytes more on its reads
        assert sim.counts.dram_read_bits == alone.counts.dram_read_bits + alone.counts.dram_write_bits, d
        g, m, k = ops.a.shape
        assert r.rtl_enabled_macs == g * m * k * ops.b.shape[2], d
        assert_counters(r, sim, stall)
    return results


def test_random_layers_with_residual_exact() -> None:
    """Six random convolutions and a linear layer on a 4x4 array's 1 KiB buffers, each with a residual
    added in its write-back; the plans include on-chip windows cut into several tiles and im2col GEMMs."""
    cfg = config()
    layers = random_layers(5, 7)
    plans = [plan_layer(hardware_layer(ly, cfg), 1, cfg, residual_context()).tiling for ly in layers]
    assert any(isinstance(p, WinPlan) and p.tile_count > 2 for p in plans)
    assert any(isinstance(p, TilePlan) for p in plans)
    check(cfg, layers)


def test_batch_and_axi_stalls_with_residual() -> None:
    """Two images, then 25 % of AXI beats stalled at random (the write-back's queue holds the vector
    unit's results while the bus waits): outputs still exact, never faster than the ideal memory."""
    cfg = config()
    layers = random_layers(13, 3)
    check(cfg, layers, batch=2)
    check(cfg, layers, stall=0.25, seed=3)


@pytest.mark.slow
def test_single_buffered_narrow_bus_with_residual() -> None:
    """One slot per buffer (a residual buffer of two slots), a 2-byte bus at 1.5 B/cycle (a 4-lane 8-bit
    output word takes two beats: the queue drains at half a word a cycle)."""
    cfg = config(double_buffered=False, dram_bytes_per_cycle=1.5)
    check(cfg, random_layers(8, 4), seed=2)


@pytest.mark.slow
def test_int4_on_8x8_with_residual() -> None:
    """4-bit operands and outputs on an 8x8 array (a 32-bit output word, one beat of the 4-byte bus)."""
    cfg = config(rows=8, cols=8, weight_bits=4, act_bits=4, input_sram_bytes=4096, weight_sram_bytes=4096,
                 output_sram_bytes=4096)
    check(cfg, random_layers(9, 4), seed=4)
