"""Convolutions with their windows made on chip (``sim.convplan``), through the whole-layer top's AXI port.

Per layer (random shapes no zoo network fixes: kernels 1 to 7, strides 1 to 3, dilations, asymmetric
padding, channel counts that leave a last plane partly empty, maps cut into bands of rows, K tiles of
planes and N tiles of column chunks by small buffers):

* outputs: the output planes read back equal numpy's convolution (``A @ B`` of the im2col'd operands,
  requantized with seeded parameters when ``requantize``), bit for bit, although the hardware never
  sees an im2col matrix: it reads the input as planes and makes each window word by its address;
* cycles, stall cycles, DRAM bytes read and written: the RTL's counters equal ``codesign.sim``'s;
* enabled MACs: ``M * N * C * R * S``, the layer's (padding made on chip is a zero the PEs multiply;
  a last plane's missing channels are masked lanes, not MACs).
"""

from __future__ import annotations

import numpy as np
import pytest

from codesign.hdl.bench.runner import default_simulator, simulator_available
from codesign.hdl.verify import hardware_layer, verify_layers
from codesign.sim.config import AcceleratorConfig
from codesign.sim.convplan import layer_reason, plan_win
from codesign.sim.engine import simulate_layer
from codesign.workloads.layers import Conv2d
from codesign.workloads.tensors import layer_operands

from .conftest import assert_counters

pytestmark = [
    pytest.mark.rtl,
    pytest.mark.skipif(not simulator_available(default_simulator()),
                       reason=f"the RTL simulator {default_simulator()} is not installed"),
]

# the array with window generation alone (the depthwise engine and the vector unit have their own tests)
BASE = {"rows": 4, "cols": 4, "input_sram_bytes": 1024, "weight_sram_bytes": 1024, "output_sram_bytes": 2048,
        "depthwise": "array", "vector_unit": False, "dram_bytes_per_cycle": 4, "dram_latency_cycles": 8}


def config(**kw: object) -> AcceleratorConfig:
    return AcceleratorConfig(**{**BASE, **kw})  # type: ignore[arg-type]


def random_layers(seed: int, count: int, cfg: AcceleratorConfig) -> list[Conv2d]:
    """``count`` random convolutions that run with on-chip windows on ``cfg``."""
    rng = np.random.default_rng(seed)
    out: list[Conv2d] = []
    while len(out) < count:
        r, s = (int(x) for x in rng.integers(1, 8, size=2))
        sh, sw = (int(x) for x in rng.integers(1, 4, size=2))
        dh, dw = (int(x) for x in rng.choice([1, 1, 2], size=2))
        pad = tuple(int(x) for x in rng.integers(0, max(r, s), size=4))
        h, w = (int(x) for x in rng.integers(6, 17, size=2))
        cin, cout = (int(x) for x in rng.integers(2, 13, size=2))
        name = f"c{len(out)}_{cin}to{cout}_{h}x{w}_k{r}x{s}_s{sh}{sw}_d{dh}{dw}_p{''.join(map(str, pad))}"
        try:
            layer = Conv2d(name, in_channels=cin, out_channels=cout, in_h=h, in_w=w, kernel=(r, s), stride=(sh, sw),
                           padding=pad, dilation=(dh, dw))  # type: ignore[arg-type]
        except Exception:  # an empty output map
            continue
        if layer.out_h < 1 or layer.out_w < 1 or layer_reason(hardware_layer(layer, cfg), 1, cfg):
            continue
        out.append(layer)
    return out


def check(cfg: AcceleratorConfig, layers: list[Conv2d], *, seed: int = 1, stall: float = 0.0, batch: int = 1) -> list:
    pairs = []
    for ly in layers:
        hl = hardware_layer(ly, cfg)
        assert not layer_reason(hl, batch, cfg), ly.name
        pairs.append((hl, layer_operands(hl, seed=seed, batch=batch)))
    results = verify_layers(pairs, cfg, seed=seed, stall=stall, batch=batch)
    for (hl, ops), r in zip(pairs, results, strict=True):
        d = r.to_dict()
        assert r.outputs_match, r.layer
        g, m, k = ops.a.shape
        dense = g * m * k * ops.b.shape[2]
        assert r.rtl_enabled_macs == (ops.active_macs() if cfg.zero_handling.value != "none" else dense), d
        if cfg.zero_handling.value == "none":
            assert r.sim_active_macs == dense, d
        assert_counters(r, simulate_layer(hl, batch, cfg), stall)
    return results


def test_random_convolutions_exact() -> None:
    """Ten random convolutions on a 4x4 array's 1 KiB buffers, 8-bit requantized write-back; the small
    slots cut most into bands, K tiles and N tiles."""
    cfg = config()
    layers = random_layers(7, 10, cfg)
    plans = [plan_win(hardware_layer(ly, cfg), 1, cfg) for ly in layers]
    assert sum(p.n_mt > 1 for p in plans) >= 3 and sum(p.n_kt > 1 for p in plans) >= 1, [
        (p.n_mt, p.n_nt, p.n_kt) for p in plans]
    check(cfg, layers)


def test_padded_3x3_reads_its_input_about_once() -> None:
    """The issue's example: a padded 3x3 convolution (8 channels, 12x12) on a 4x4 array read 29x its input
    plus weights with im2col laid out by the host. With on-chip windows and the same 1 KiB buffers it
    reads each input plane's bands (a 2-row halo between bands), the weights and the requantization
    table: under 3x its input plus weights (1,152 + 576 bytes)."""
    cfg = config()
    layer = Conv2d("conv3x3_8ch_12x12", in_channels=8, out_channels=8, in_h=12, in_w=12, kernel=3, padding=1)
    plan = plan_win(layer, 1, cfg)
    a, b, _c = plan.traffic_bytes()
    (r,) = check(cfg, [layer])
    assert r.rtl_dram_read_bytes == a + b + plan.prologue_bytes
    assert r.rtl_dram_read_bytes < 3 * (8 * 12 * 12 + 8 * 8 * 9)


def test_batch_and_axi_stalls() -> None:
    """Two images (the images are the plan's groups, sharing the weights and the table), then 25 % of
    AXI beats stalled at random: outputs still exact, never faster than the ideal memory."""
    cfg = config()
    layers = random_layers(21, 3, cfg)
    check(cfg, layers, batch=2)
    check(cfg, layers, stall=0.25, seed=3)


@pytest.mark.slow
def test_accumulators_single_buffered_narrow_bus() -> None:
    """Accumulator write-back, one slot per buffer, a 2-byte bus at 1.5 B/cycle."""
    cfg = config(requantize=False, double_buffered=False, dram_bytes_per_cycle=1.5)
    check(cfg, random_layers(5, 5, cfg), seed=2)


@pytest.mark.slow
def test_gated_int4_on_8x8() -> None:
    """Zero gating (padding made on chip is a gated zero) with 4-bit operands on an 8x8 array."""
    cfg = config(rows=8, cols=8, weight_bits=4, act_bits=4, zero_handling="gate", input_sram_bytes=4096,
                 weight_sram_bytes=4096, output_sram_bytes=8192)
    check(cfg, random_layers(9, 5, cfg), seed=4)
