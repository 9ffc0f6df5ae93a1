"""RTL tier: the generated Verilog on Icarus, driven by cocotb, on workload layers.

Each test runs one configuration on a set of layers in ONE simulator run (start-up costs ~1 s).
For every layer it checks, with the numbers stated independently of the code under test:

* outputs: the RTL's C equals numpy's int64 ``A @ B`` bit for bit (per group);
* cycles: sum over on-chip tiles of the closed form of tests/unit/test_timing_native.py
  (WS ``1 + (F-1)*max(M, rows) + M + rows + cols``; OS ``1 + F*max(K, rows, cols) + rows + cols``),
  which is also what the simulator reports;
* enabled MACs: ``GemmOperands.active_macs()`` with zero-gating, ``M*N*K*groups`` without.

The load stream gets random idle cycles and the read stream random back-pressure.
Build directories are per design under a file lock (safe with ``pytest -n``).
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from codesign.hdl.bench.runner import default_simulator, simulator_available
from codesign.hdl.plan import HardwarePlan
from codesign.hdl.verify import engine_tiles, hardware_layer, verify_batch
from codesign.sim.config import AcceleratorConfig
from codesign.sim.timing import ceil_div
from codesign.workloads import zoo
from codesign.workloads.layers import Conv2d, Layer, Linear
from codesign.workloads.tensors import layer_operands

pytestmark = [
    pytest.mark.rtl,
    pytest.mark.skipif(not simulator_available(default_simulator()),
                       reason=f"the RTL simulator {default_simulator()} is not installed"),
]

# small buffers: fast export and builds, and layers get cut into several tiles
BUFFERS = {"input_sram_bytes": 4096, "weight_sram_bytes": 4096, "output_sram_bytes": 8192}


def config(dataflow: str, rows: int, cols: int, bits: int = 8, gating: bool = False, **kw) -> AcceleratorConfig:
    return AcceleratorConfig(rows=rows, cols=cols, dataflow=dataflow, weight_bits=bits, act_bits=bits,
                             zero_handling="gate" if gating else "none", **{**BUFFERS, **kw})


def closed_form_cycles(cfg: AcceleratorConfig, m: int, n: int, k: int) -> int:
    r, c = cfg.rows, cfg.cols
    if cfg.dataflow.value == "ws":
        folds = ceil_div(k, r) * ceil_div(n, c)
        return 1 + (folds - 1) * max(m, r) + m + r + c + 2  # + 2: the PEs' multiplier registers
    folds = ceil_div(m, r) * ceil_div(n, c)
    return 1 + folds * max(k, r, c) + r + c


def mobilenet_layer(name: str, size: int) -> Layer:
    """A real MobileNetV2 layer (channels, kernel, stride, groups as published), input scaled to
    ``size`` x ``size`` pixels so the RTL run takes seconds."""
    layer = next(ly for ly in zoo.get("mobilenet_v2").layers if ly.name == name)
    assert isinstance(layer, Conv2d)
    return replace(layer, name=f"mbv2.{name}@{size}", in_h=size, in_w=size)


def resnet_layer(name: str, size: int) -> Layer:
    layer = next(ly for ly in zoo.get("resnet18").layers if ly.name == name)
    assert isinstance(layer, Conv2d)
    return replace(layer, name=f"r18.{name}@{size}", in_h=size, in_w=size)


def layers_small() -> list[tuple[Layer, str | float]]:
    """(layer, weight sparsity): ragged GEMM, 1x1, 3x3 s2 p1, depthwise, a real MobileNetV2 layer."""
    return [
        (Linear("ragged_gemm", in_features=21, out_features=10, tokens=13, bias=False), 1.0),
        (Conv2d("conv1x1", in_channels=12, out_channels=10, in_h=5, in_w=5, kernel=1), 0.5),
        (Conv2d("conv3x3_s2_p1", in_channels=5, out_channels=7, in_h=9, in_w=9, kernel=3, stride=2, padding=1),
         "2:4"),
        (Conv2d("depthwise3x3", in_channels=6, out_channels=6, in_h=6, in_w=6, kernel=3, padding=1, groups=6),
         1.0),
        (mobilenet_layer("block2.project", 3), "2:4"),
    ]


def check(cfg: AcceleratorConfig, cases: list[tuple[Layer, str | float]], seed: int = 1) -> list:
    plan = HardwarePlan(cfg)
    named, expected = [], []
    for layer, density in cases:
        hw = hardware_layer(layer, cfg, density)
        ops = layer_operands(hw, seed=seed)
        g, m, k = ops.a.shape
        n = ops.b.shape[2]
        cycles = sum(closed_form_cycles(cfg, t.m, t.n, t.k) for t in engine_tiles(plan, m, n, k, g))
        enabled = ops.active_macs() if cfg.zero_handling.value == "gate" else g * m * n * k
        named.append((layer.name, ops))
        expected.append((cycles, enabled))
    results = verify_batch(named, cfg, seed=seed, idle=0.2, stall=0.3)
    for r, (cycles, enabled) in zip(results, expected, strict=True):
        assert r.outputs_match, f"{r.layer}: RTL outputs differ from numpy"
        assert (r.rtl_cycles, r.sim_cycles) == (cycles, cycles), r.layer
        assert (r.rtl_enabled_macs, r.sim_active_macs) == (enabled, enabled), r.layer
    return results


@pytest.mark.parametrize(
    "cfg",
    [
        config("ws", 4, 4),
        config("ws", 4, 4, gating=True),
        config("os", 4, 4),
        config("os", 4, 4, gating=True),
        config("ws", 8, 8, gating=True),
        config("os", 8, 8, bits=4, gating=True),
        config("ws", 16, 4, bits=4),
        config("os", 4, 16, gating=True),
    ],
    ids=lambda c: (f"{c.dataflow.value}-{c.rows}x{c.cols}-int{c.weight_bits}"
                   f"{'-gate' if c.zero_handling.value == 'gate' else ''}"),
)
def test_layers_match_numpy_and_simulator(cfg: AcceleratorConfig) -> None:
    check(cfg, layers_small())


def test_unsigned_activations_and_mixed_bits() -> None:
    cfg = config("ws", 4, 4, gating=True).replace(act_bits=6, act_signed=False, weight_bits=3)
    check(cfg, [(Conv2d("conv3x3_u6_w3", in_channels=4, out_channels=5, in_h=6, in_w=6, kernel=3, padding=1),
                 0.5)])


@pytest.mark.slow
@pytest.mark.parametrize("dataflow", ["ws", "os"])
def test_real_layers_16x16(dataflow: str) -> None:
    cfg = AcceleratorConfig(rows=16, cols=16, dataflow=dataflow, zero_handling="gate")
    check(cfg, [
        (mobilenet_layer("block13.expand", 7), "2:4"),  # real channels 96->576, input 7x7 (real: 14x14)
        (resnet_layer("layer4.0.downsample", 7), 0.5),  # real: 256->512 1x1 s2 at 14x14; input 7x7
    ])


@pytest.mark.slow
def test_8x8_ws_bigger_layers() -> None:
    cfg = config("ws", 8, 8, gating=True).replace(input_sram_bytes=16384, weight_sram_bytes=16384,
                                                  output_sram_bytes=32768)
    check(cfg, [
        (mobilenet_layer("block1.dw", 14), 1.0),  # real: 96 groups 3x3 s2 at 112x112; input 14x14
        (resnet_layer("layer2.0.conv1", 8), "2:4"),  # real: 64->128 3x3 s2 at 56x56; input 8x8
    ])
