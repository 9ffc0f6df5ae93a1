"""Table activations built into a layer's write-back (hard-swish, SiLU, sigmoid, ...), through the whole-layer top.

A convolution (on-chip windows or im2col), a depthwise convolution on its engine or a linear layer with a
table ``activation`` runs with flags bit 10: the DMA reads the activation's ``2**act_bits``-entry table
after the requantization table (the last ``act_table_words`` of ``q_words``), the top writes it into the
vector unit an entry a cycle, and the write-back sends each requantized output word through the unit's
TABLE on the way to DRAM. Per layer:

* outputs: ``table[requantize(A @ B)]`` (numpy: ``workloads.eltwise_arith.seeded_activation_table``),
  bit for bit;
* cycles, stall cycles, DRAM bytes read and written, enabled MACs: the RTL's counters equal
  ``codesign simulate``'s. Against the same layer without its activation the simulator adds exactly the
  table's words to the reads, ``2**act_bits`` cycles before the first load and ``WRITEBACK_ADD_CYCLES``
  before each store's first beat (``sim.mapping.with_activation``).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from codesign.hdl.bench.runner import default_simulator, simulator_available
from codesign.hdl.verify import hardware_layer, verify_layers
from codesign.sim.config import AcceleratorConfig
from codesign.sim.convplan import WinPlan
from codesign.sim.dwplan import DwPlan
from codesign.sim.engine import simulate_layer
from codesign.sim.mapping import plan_layer
from codesign.sim.tileplan import TilePlan, act_table_words, beats_per_word
from codesign.workloads.layers import TABLE_ACTIVATIONS, Conv2d, Layer, Linear
from codesign.workloads.tensors import layer_operands

from .conftest import SMALL_4X4, assert_counters, random_conv

pytestmark = [
    pytest.mark.rtl,
    pytest.mark.skipif(not simulator_available(default_simulator()),
                       reason=f"the RTL simulator {default_simulator()} is not installed"),
]

BASE = SMALL_4X4


def config(**kw: object) -> AcceleratorConfig:
    return AcceleratorConfig(**{**BASE, **kw})  # type: ignore[arg-type]


def random_layers(seed: int, count: int) -> list[Layer]:
    """Random convolutions (kernels 1 to 5, strides 1 to 2, asymmetric padding, 2 to 12 channels), a
    depthwise convolution and a linear layer, each with a random table activation."""
    rng = np.random.default_rng(seed)
    acts = list(TABLE_ACTIVATIONS)

    def act() -> str:
        return acts[int(rng.integers(len(acts)))]

    out: list[Layer] = []
    while len(out) < count - 2:
        layer = random_conv(rng, len(out), activation=act())
        if layer is not None:
            out.append(layer)
    ch = int(rng.integers(3, 10))
    out.append(Conv2d(f"dw{ch}_9x7", in_channels=ch, out_channels=ch, in_h=9, in_w=7, kernel=3, stride=1,
                      padding=1, groups=ch, activation=act()))
    out.append(Linear("fc_24to10", in_features=24, out_features=10, tokens=int(rng.integers(3, 9)),
                      activation=act()))
    return out


def check(cfg: AcceleratorConfig, layers: list[Layer], *, seed: int = 1, stall: float = 0.0,
          batch: int = 1) -> list:
    pairs = []
    for ly in layers:
        hl = hardware_layer(ly, cfg)
        pairs.append((hl, layer_operands(hl, seed=seed, batch=batch)))
    results = verify_layers(pairs, cfg, seed=seed, stall=stall, batch=batch)
    for (hl, _ops), r in zip(pairs, results, strict=True):
        d = r.to_dict()
        assert r.outputs_match, r.layer
        sim = simulate_layer(hl, batch, cfg)
        alone = simulate_layer(dataclasses.replace(hl, activation=""), batch, cfg)
        tiling = plan_layer(hl, batch, cfg).tiling
        # the table's words ride on the prologue's read: act_table_words whole table words more
        table_bytes = act_table_words(cfg) * beats_per_word(tiling.q_word_bits, tiling.bus_bytes) * tiling.bus_bytes
        assert sim.counts.dram_read_bits == alone.counts.dram_read_bits + table_bytes * 8, d
        assert sim.cycles >= alone.cycles + (1 << cfg.act_bits), d  # the table's load comes before any tile
        assert_counters(r, sim, stall)
    return results


def test_random_layers_with_activation_exact() -> None:
    """Random convolutions, a depthwise convolution on its engine and a linear layer on a 4x4 array's
    1 KiB buffers, each with a table activation in its write-back: on-chip windows cut into several
    tiles, im2col GEMMs and the engine's bands."""
    cfg = config()
    layers = random_layers(5, 7)
    plans = [plan_layer(hardware_layer(ly, cfg), 1, cfg).tiling for ly in layers]
    assert all(p.act_table for p in plans)  # type: ignore[union-attr]
    assert any(isinstance(p, WinPlan) and p.tile_count > 2 for p in plans)
    assert any(isinstance(p, TilePlan) for p in plans)
    assert any(isinstance(p, DwPlan) for p in plans)
    check(cfg, layers)


def test_batch_and_axi_stalls_with_activation() -> None:
    """Two images, then 25 % of AXI beats stalled at random: outputs still exact, never faster than the
    ideal memory."""
    cfg = config()
    layers = random_layers(13, 4)
    check(cfg, layers, batch=2)
    check(cfg, layers, stall=0.25, seed=3)


@pytest.mark.slow
def test_int4_on_8x8_with_activation() -> None:
    """4-bit operands and outputs on an 8x8 array: a 16-entry table of 4-bit entries, 16 cycles to load."""
    cfg = config(rows=8, cols=8, weight_bits=4, act_bits=4, input_sram_bytes=4096, weight_sram_bytes=4096,
                 output_sram_bytes=4096)
    check(cfg, random_layers(9, 4), seed=4)
