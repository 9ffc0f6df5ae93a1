"""A max pool in its convolution's write-back (``sim.poolfuse``), through the whole-layer top's AXI port.

The convolution (an im2col'd stem: few input channels, as ResNet's and ShuffleNet's) runs in tiles of one
output row of every channel; each tile's store passes its requantized words through the pool stage, and
the rows that end a pooled row's window write that pooled row. Per layer:

* outputs: the pooled planes read back equal numpy's ``max_pool(requantize(A @ B))`` (``hdl.verify.max_pool``),
  bit for bit (max pooling commutes with the per-channel requantization, a non-decreasing map);
* cycles, stall cycles, DRAM bytes read and written (the pooled map's only), enabled MACs: the RTL's counters
  equal ``codesign.sim``'s for the layer in its fusion context (a pass of ``POOL_PASS_OVERHEAD_CYCLES`` and a
  word a cycle before each store, the stores of rows that end no pooled row moving nothing);
* bad descriptors: the host API refuses them in one line.

Shapes no zoo network fixes: ResNet's 3x3/2 pool with padding 1, VGG's 2x2/2 whose last row and column no
window reads, rectangular kernels and strides, output channels that leave a last plane partly empty and
split K into tiles, a batch of two, random AXI stalls.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from codesign.errors import ConfigError
from codesign.hdl.bench.runner import default_simulator, simulator_available
from codesign.hdl.host import check_descriptor
from codesign.hdl.layer import pool_stage_words
from codesign.hdl.plan import HardwarePlan, core_config
from codesign.hdl.verify import hardware_layer, verify_layers
from codesign.sim.config import AcceleratorConfig
from codesign.sim.engine import simulate_layer
from codesign.sim.fusion import DEFAULT
from codesign.sim.mapping import plan_layer
from codesign.sim.poolfuse import pair_reason, stage_words
from codesign.workloads.layers import Conv2d, Pool
from codesign.workloads.tensors import layer_operands

from .conftest import assert_counters

pytestmark = [
    pytest.mark.rtl,
    pytest.mark.skipif(not simulator_available(default_simulator()),
                       reason=f"the RTL simulator {default_simulator()} is not installed"),
]

BASE = {"rows": 8, "cols": 8, "input_sram_bytes": 4096, "weight_sram_bytes": 2048, "output_sram_bytes": 4096,
        "depthwise": "array", "dram_bytes_per_cycle": 8, "dram_latency_cycles": 12}


def config(**kw: object) -> AcceleratorConfig:
    return AcceleratorConfig(**{**BASE, **kw})  # type: ignore[arg-type]


def pair(name: str, cin: int, cout: int, hw: tuple[int, int], k: int, stride: int, pad: int,
         pool: tuple[tuple[int, int], tuple[int, int], tuple[int, int]]) -> tuple[Conv2d, Pool]:
    conv = Conv2d(name, in_channels=cin, out_channels=cout, in_h=hw[0], in_w=hw[1], kernel=k, stride=stride,
                  padding=pad)
    (kh, kw), (sh, sw), (pt, pl) = pool
    p = Pool(f"{name}_pool", channels=cout, in_h=conv.out_h, in_w=conv.out_w, kernel=(kh, kw), stride=(sh, sw),
             padding=(pt, pl, pt, pl))
    return conv, p


def check(cfg: AcceleratorConfig, pairs: list[tuple[Conv2d, Pool]], *, batch: int = 1, seed: int = 1,
          stall: float = 0.0) -> list:
    items, pools = [], []
    for conv, pool in pairs:
        assert pair_reason(conv, pool, batch, cfg) == "", conv.name
        hl = hardware_layer(conv, cfg)
        items.append((hl, layer_operands(hl, seed=seed, batch=batch)))
        pools.append(pool)
    results = verify_layers(items, cfg, seed=seed, stall=stall, batch=batch, pools=pools)
    for (hl, ops), pool, r in zip(items, pools, results, strict=True):
        assert r.outputs_match, r.layer
        sim = simulate_layer(hl, batch, cfg, context=replace(DEFAULT, pool=pool))
        # the pooled map's bytes only: PH x PW words a plane, a word of cols lanes at act_bits a beat or more
        lp = plan_layer(hl, batch, cfg, replace(DEFAULT, pool=pool))
        assert sim.counts.dram_write_bits // 8 == lp.tiling.pooled_bytes
        g, m, k = ops.a.shape
        assert r.rtl_enabled_macs == g * m * k * ops.b.shape[2]
        assert_counters(r, sim, stall)
    return results


def test_stem_pools_exact() -> None:
    """ResNet's stem pool (3x3/2, padding 1) after a strided 5x5 convolution of 3 channels; VGG's 2x2/2 on an
    odd map (its last row and column in no window); a rectangular pool (3x2, strides 2 and 1)."""
    cfg = config()
    check(cfg, [pair("stem", 3, 16, (15, 13), 5, 2, 2, ((3, 3), (2, 2), (1, 1))),
                pair("vgg", 2, 8, (9, 11), 3, 1, 1, ((2, 2), (2, 2), (0, 0))),
                pair("rect", 3, 12, (10, 8), 3, 1, 0, ((3, 2), (2, 1), (1, 0)))])


def test_k_tiles_partial_plane_batch_and_stalls() -> None:
    """K cut into tiles by a 1 KiB input buffer (partial sums: the pass follows the last K tile), 20 output
    channels (a last plane of 4), a batch of two (the pooled rows of the second image after the first's),
    random AXI stalls."""
    cfg = config(input_sram_bytes=1024, dram_bytes_per_cycle=4)
    conv, pool = pair("ktiles", 3, 20, (12, 10), 7, 1, 3, ((3, 3), (2, 2), (1, 1)))
    lp = plan_layer(conv, 2, cfg, replace(DEFAULT, pool=pool))
    assert lp.tiling.n_kt > 1
    check(cfg, [(conv, pool)], batch=2, stall=0.2)


def test_bad_pool_descriptors_refused() -> None:
    cfg = config()
    conv, pool = pair("stem", 3, 16, (15, 13), 5, 2, 2, ((3, 3), (2, 2), (1, 1)))
    plan = plan_layer(conv, 1, cfg, replace(DEFAULT, pool=pool)).tiling
    hw = HardwarePlan(core_config(cfg))
    desc = plan.descriptor(4096, 8192, 12288)
    check_descriptor(desc, hw, plan)
    with pytest.raises(ConfigError, match="tiles of one output row"):
        check_descriptor({**desc, "mt": desc["mt"] - 1}, hw, plan)
    with pytest.raises(ConfigError, match="cannot go with"):
        check_descriptor({**desc, "flags": desc["flags"] | 1 << 7}, hw, plan)
    with pytest.raises(ConfigError, match="does not build"):
        check_descriptor(desc, HardwarePlan(core_config(config(pool_writeback=False))), plan)
    assert "pool_writeback is false" in pair_reason(conv, pool, 1, config(pool_writeback=False))
    assert np.all(desc["pl_out"] == (pool.out_h | pool.out_w << 16))
    # the simulator's pool stage is the hardware's (half the output buffer's address space a row)
    for c in (cfg, config(output_sram_bytes=3072), config(double_buffered=False, output_sram_bytes=6144)):
        assert pool_stage_words(c) == stage_words(c, plan)


def test_int4_unsigned_activations() -> None:
    """4-bit weights and unsigned 4-bit activations: the stage's lanes are 4 bits wide and compare unsigned (a
    15 is the largest), two 2x2/2 pools and ResNet's."""
    cfg = config(weight_bits=4, act_bits=4, act_signed=False)
    check(cfg, [pair("u4", 3, 8, (11, 9), 3, 1, 1, ((2, 2), (2, 2), (0, 0))),
                pair("u4s", 2, 12, (14, 10), 5, 2, 2, ((3, 3), (2, 2), (1, 1)))])


def test_single_buffered_starved_bus() -> None:
    """One slot of each buffer (a tile's compute waits for the previous tile's pass and pooled row) and a
    bus of 1 byte a cycle with latency 30 (the pass is short against the write; the reads take the cycles the
    writes leave)."""
    cfg = config(double_buffered=False, dram_bytes_per_cycle=1, dram_latency_cycles=30)
    check(cfg, [pair("sb", 3, 8, (9, 11), 3, 2, 1, ((3, 3), (2, 2), (1, 1)))])
