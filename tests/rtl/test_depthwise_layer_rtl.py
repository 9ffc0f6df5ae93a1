"""Depthwise layers on the built depthwise engine, through the whole-layer top's AXI port.

Per layer (random shapes the zoo does not fix: kernels 3 and 5, strides 1 and 2, symmetric and
asymmetric padding, channel counts that leave a last plane partly empty, whole planes packed
several to a tile and bands of rows with their halo):

* outputs: the planes read back equal numpy's depthwise convolution (``A @ B`` of the im2col'd
  operands, requantized with the layer's seeded parameters when ``requantize``), bit for bit;
* cycles, stall cycles, DRAM bytes read and written: the RTL's counters equal ``codesign.sim``'s
  (``DwPlan``'s tiles through the same DMA program as the array's);
* enabled MACs: ``C * M * R * S * out_h * out_w``, the layer's (a last plane's empty lanes compute
  zeros and are not counted: each plane's weight block carries its channel count).

Channel multipliers ``M`` (``out_channels = M * in_channels``) run as the descriptor's N loop: each band
loaded once, scanned once per multiplier with its weights, into its own output planes.
"""

from __future__ import annotations

import numpy as np
import pytest

from codesign.hdl.bench.runner import default_simulator, simulator_available
from codesign.hdl.verify import hardware_layer, verify_layers
from codesign.sim.config import AcceleratorConfig
from codesign.sim.dwplan import plan_dw
from codesign.sim.engine import simulate_layer
from codesign.workloads.layers import Conv2d
from codesign.workloads.tensors import layer_operands

pytestmark = [
    pytest.mark.rtl,
    pytest.mark.skipif(not simulator_available(default_simulator()),
                       reason=f"the RTL simulator {default_simulator()} is not installed"),
]


def dw(name: str, c: int, h: int, w: int, k: int, s: int, pad: tuple[int, int, int, int], mult: int = 1) -> Conv2d:
    return Conv2d(name, in_channels=c, out_channels=c * mult, in_h=h, in_w=w, kernel=(k, k), stride=(s, s),
                  padding=pad, groups=c)


def random_layers(seed: int, count: int, mults: tuple[int, ...] = (1,)) -> list[Conv2d]:
    rng = np.random.default_rng(seed)
    out = []
    for i in range(count):
        k = int(rng.choice([3, 5]))
        s = int(rng.integers(1, 3))
        p = k // 2
        pad = (p, p, p, p) if rng.random() < 0.6 else tuple(int(x) for x in rng.integers(0, p + 1, size=4))
        h, w = (int(x) for x in rng.integers(k + 1, 21, size=2))
        c = int(rng.integers(2, 13))  # (one channel is an ordinary convolution)
        mult = int(rng.choice(mults))
        out.append(dw(f"dw{i}_c{c}x{mult}_{h}x{w}_k{k}s{s}_p{''.join(map(str, pad))}", c, h, w, k, s,
                      pad, mult))  # type: ignore[arg-type]
    return out


def check(cfg: AcceleratorConfig, layers: list[Conv2d], *, seed: int = 1, stall: float = 0.0) -> None:
    pairs = []
    for ly in layers:
        hl = hardware_layer(ly, cfg)
        pairs.append((hl, layer_operands(hl, seed=seed)))
    results = verify_layers(pairs, cfg, seed=seed, stall=stall)
    for (hl, _), r in zip(pairs, results, strict=True):
        plan = plan_dw(hl, 1, cfg)  # these layers run on the engine, not the array
        assert r.rtl_enabled_macs == hl.out_channels * hl.r * hl.s * hl.out_h * hl.out_w == hl.macs(), r.layer
        assert r.tile[1] == plan.mt and r.tile[0] == plan.gt
        assert r.outputs_match, r.layer
        d = r.to_dict()
        assert r.rtl_dram_read_bytes == r.sim_dram_read_bytes and r.rtl_dram_write_bytes == r.sim_dram_write_bytes, d
        if stall:
            assert r.rtl_cycles >= r.sim_cycles, d
        else:
            assert (r.rtl_cycles, r.rtl_stall_cycles) == (r.sim_cycles, r.sim_stall_cycles), d
        assert r.ok, d


def engine_config(size: int, **kw: object) -> AcceleratorConfig:
    base = {"rows": size, "cols": size, "depthwise": "engine", "depthwise_kernel": 5, "input_sram_bytes": 2048,
            "weight_sram_bytes": 2048, "output_sram_bytes": 2048, "dram_bytes_per_cycle": 4}
    return AcceleratorConfig(**{**base, **kw})  # type: ignore[arg-type]


def test_random_depthwise_layers_exact_requantized() -> None:
    """Twelve random depthwise layers on a 4x4 array's engine (4 lanes, a 5x5 window), requantized
    write-back; the small buffers cut most of them into bands of rows."""
    cfg = engine_config(4)
    layers = random_layers(11, 12)
    bands = sum(plan_dw(hardware_layer(ly, cfg), 1, cfg).n_mt > 1 for ly in layers)
    packed = sum(plan_dw(hardware_layer(ly, cfg), 1, cfg).gt > 1 for ly in layers)
    assert bands >= 3 and packed >= 1, (bands, packed)
    check(cfg, layers)


def test_depthwise_accumulators_single_buffered_narrow_bus() -> None:
    """Accumulators written back (no requantize), one slot per buffer, a 2-byte bus at 1.5 B/cycle."""
    cfg = engine_config(4, requantize=False, double_buffered=False, dram_bytes_per_cycle=1.5)
    check(cfg, random_layers(5, 4), seed=2)


def test_mobilenet_depthwise_shapes_8x8_with_stalls() -> None:
    """MobileNetV2's depthwise shapes (3x3, stride 1 and 2, 'same' padding) at reduced size on an
    8x8 array's engine with the default 3x3 window, and random AXI stalls on every channel: outputs
    unchanged, never faster."""
    cfg = engine_config(8, input_sram_bytes=4096, output_sram_bytes=8192, depthwise_kernel=3)
    layers = [dw("mbv2.block1.dw@16", 24, 16, 16, 3, 2, (0, 0, 1, 1)), dw("mbv2.block2.dw@12", 20, 12, 12, 3, 1,
                                                                            (1, 1, 1, 1))]
    check(cfg, layers, seed=4)
    check(cfg, layers[:1], seed=5, stall=0.25)


def test_random_channel_multipliers_exact() -> None:
    """Ten random depthwise layers with channel multipliers 2 to 4 (kernels 3 and 5, strides 1 and 2,
    symmetric and asymmetric padding, last planes partly empty) on a 4x4 array's engine, requantized: some
    cut into bands (each band loaded once for all its multipliers), some whole planes packed in a tile."""
    cfg = engine_config(4)
    layers = random_layers(23, 10, mults=(2, 3, 4))
    plans = [plan_dw(hardware_layer(ly, cfg), 1, cfg) for ly in layers]
    assert all(p.mult > 1 for p in plans)
    assert sum(p.n_mt > 1 for p in plans) >= 2 and sum(p.gt > 1 for p in plans) >= 1, [(p.gt, p.n_mt) for p in plans]
    check(cfg, layers, seed=6)


def test_channel_multipliers_accumulators_single_buffered_with_stalls() -> None:
    """Multipliers writing accumulators back (no requantize), one slot per buffer, and random AXI stalls."""
    cfg = engine_config(4, requantize=False, double_buffered=False)
    layers = random_layers(29, 3, mults=(2, 3))
    check(cfg, layers, seed=7)
    check(cfg, layers[:1], seed=8, stall=0.25)


def test_layers_the_engine_cannot_run_use_the_array() -> None:
    """A 7x7 depthwise kernel (larger than the engine's 5x5 window) runs on the array as before (its
    GEMMs), exact; the simulator says so (no engine plan)."""
    from codesign.sim.dwplan import layer_reason

    cfg = engine_config(4)
    big = dw("dw7x7", 4, 9, 9, 7, 1, (3, 3, 3, 3))
    assert layer_reason(big, 1, cfg) == "the depthwise engine runs kernels up to 5x5 (depthwise_kernel), not 7x7"
    assert simulate_layer(big, 1, cfg).model_only == ""
    pairs = [(hardware_layer(ly, cfg), layer_operands(hardware_layer(ly, cfg), seed=3)) for ly in (big,)]
    for r in verify_layers(pairs, cfg, seed=3):
        assert r.ok, r.to_dict()
