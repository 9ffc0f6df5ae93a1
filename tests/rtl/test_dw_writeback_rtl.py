"""A depthwise convolution in its 1x1 convolution's write-back (``sim.dwfuse``), through the whole-layer top's
AXI port.

The 1x1 convolution (an inverted residual block's expand) runs in tiles of one row of one plane, weights outer;
each tile's store passes its requantized words, with the padding positions around them, through the depthwise
engine, and stores the depthwise output rows the pass completed. Per pair:

* outputs: the depthwise output planes read back equal numpy's ``requant_dw(dwconv(requant(x @ W)))``
  (``workloads.intarith``), bit for bit;
* cycles, stall cycles, DRAM bytes read and written (the depthwise output only: the expanded map never
  leaves the chip), enabled MACs (both layers'): the RTL's counters equal ``codesign.sim``'s for the pair
  (``DW_PASS_OVERHEAD_CYCLES`` and a cycle a padded position for a pass, the weight slots at a plane's first
  row, the rows' store as any store of their bytes);
* bad descriptors: the host API refuses them in one line.

Shapes no zoo network fixes: 3x3 and 5x5 kernels, strides 1 and 2, TensorFlow's asymmetric "same" padding
(bottom and right only) and PyTorch's symmetric one, rectangular kernels and maps, expanded channels that
leave a last plane partly empty, 4-bit weights, random AXI stalls.
"""

from __future__ import annotations

import pytest

from codesign.errors import ConfigError
from codesign.hdl.bench.runner import default_simulator, simulator_available
from codesign.hdl.host import check_descriptor
from codesign.hdl.plan import HardwarePlan, core_config
from codesign.hdl.verify import verify_dws_pairs
from codesign.sim.config import AcceleratorConfig
from codesign.sim.dwfuse import pair_reason, plan_fused
from codesign.workloads.layers import Conv2d

pytestmark = [
    pytest.mark.rtl,
    pytest.mark.skipif(not simulator_available(default_simulator()),
                       reason=f"the RTL simulator {default_simulator()} is not installed"),
]

BASE = {"rows": 4, "cols": 4, "dw_writeback": True, "depthwise_kernel": 3, "input_sram_bytes": 4096,
        "weight_sram_bytes": 2048, "output_sram_bytes": 4096, "dram_bytes_per_cycle": 8, "dram_latency_cycles": 12}


def config(**kw: object) -> AcceleratorConfig:
    return AcceleratorConfig(**{**BASE, **kw})  # type: ignore[arg-type]


def pair(name: str, cin: int, c: int, hw: tuple[int, int], k: int | tuple[int, int], stride: int | tuple[int, int],
         pad: object) -> tuple[Conv2d, Conv2d]:
    pw = Conv2d(f"{name}.expand", in_channels=cin, out_channels=c, in_h=hw[0], in_w=hw[1], kernel=1)
    dw = Conv2d(f"{name}.dw", in_channels=c, out_channels=c, in_h=hw[0], in_w=hw[1], kernel=k, stride=stride,
                padding=pad, groups=c)  # type: ignore[arg-type]
    return pw, dw


def check(cfg: AcceleratorConfig, pairs: list[tuple[Conv2d, Conv2d]], *, seed: int = 1, stall: float = 0.0) -> None:
    for pw, dw in pairs:
        assert pair_reason(pw, dw, 1, cfg) == "", pw.name
    for r in verify_dws_pairs(pairs, cfg, seed=seed, stall=stall):
        d = r.to_dict()
        assert r.outputs_match, d
        # the depthwise output only: C planes of out_h x out_w words, a word of cols lanes a beat or more
        assert (r.rtl_dram_write_bytes, r.rtl_dram_read_bytes) == (r.sim_dram_write_bytes, r.sim_dram_read_bytes), d
        assert r.rtl_enabled_macs == r.ref_enabled_macs, d
        if stall:
            assert r.rtl_cycles >= r.sim_cycles, d
        else:
            assert (r.rtl_cycles, r.rtl_stall_cycles) == (r.sim_cycles, r.sim_stall_cycles), d


def test_inverted_residual_pairs_exact() -> None:
    """MobileNetV2's two kinds of block on small maps: stride 1 with padding 1 on every side, stride 2 with
    TensorFlow's "same" padding (bottom and right only); expanded channels of 6 (a last plane of 2 lanes)."""
    cfg = config()
    check(cfg, [pair("s1", 4, 8, (6, 6), 3, 1, 1), pair("s2", 3, 6, (7, 5), 3, 2, 1),
                pair("tf", 4, 4, (5, 6), 3, 2, (0, 0, 1, 1))])


def test_5x5_rectangular_and_stalls() -> None:
    """EfficientNet's 5x5 kernels (padding 2: two padding rows before the first row and after the last), a
    rectangular 3x1 kernel with strides (2, 1), random AXI stalls."""
    cfg = config(depthwise_kernel=5)
    check(cfg, [pair("k5", 2, 8, (7, 9), 5, 1, 2), pair("rect", 4, 5, (8, 6), (3, 1), (2, 1), (1, 0, 1, 0))],
          stall=0.25)


def test_int4_weights_and_a_starved_bus() -> None:
    """4-bit weights (14 taps a table word) and a bus of 2 bytes a cycle (the rows' stores dominate)."""
    cfg = config(weight_bits=4, dram_bytes_per_cycle=2)
    check(cfg, [pair("w4", 4, 7, (5, 5), 3, 1, 1)])


def test_bad_descriptors_refused() -> None:
    cfg = config()
    pw, dw = pair("s1", 4, 8, (6, 6), 3, 1, 1)
    plan = plan_fused(pw, dw, 1, cfg)
    assert plan is not None
    hw = HardwarePlan(core_config(cfg))
    desc = plan.descriptor(4096, 8192, 12288, 16384)
    check_descriptor(desc, hw, plan)
    with pytest.raises(ConfigError, match="mt = dw_in_w"):
        check_descriptor({**desc, "mt": desc["mt"] - 1}, hw, plan)
    with pytest.raises(ConfigError, match="no other mode"):
        check_descriptor({**desc, "flags": desc["flags"] | 1 << 11}, hw, plan)
    with pytest.raises(ConfigError, match="needs dw_writeback"):
        check_descriptor(desc, HardwarePlan(core_config(config(dw_writeback=False))), plan)
    assert "dw_writeback is false" in pair_reason(pw, dw, 1, config(dw_writeback=False))
    assert "input channels" in pair_reason(*pair("wide", 5, 8, (6, 6), 3, 1, 1), 1, cfg)
