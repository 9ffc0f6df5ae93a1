"""What the whole-layer RTL tests share: random convolutions and the check of the RTL's counters."""

from __future__ import annotations

from typing import Any

import numpy as np

from codesign.workloads.layers import Conv2d

#: a 4x4 array with 1 KiB buffers on a narrow, short-latency memory: small slots cut layers into many tiles
SMALL_4X4 = {"rows": 4, "cols": 4, "input_sram_bytes": 1024, "weight_sram_bytes": 1024, "output_sram_bytes": 1024,
             "dram_bytes_per_cycle": 4, "dram_latency_cycles": 8}


def random_conv(rng: np.random.Generator, index: int, **extra: Any) -> Conv2d | None:
    """A random convolution: kernels 1 to 5, strides 1 to 2, asymmetric padding below the kernel, maps of
    5 to 12 pixels a side, 2 to 12 channels (None when the output map is empty)."""
    r, s = (int(x) for x in rng.integers(1, 6, size=2))
    sh, sw = (int(x) for x in rng.integers(1, 3, size=2))
    pad = tuple(int(x) for x in rng.integers(0, max(r, s), size=4))
    h, w = (int(x) for x in rng.integers(5, 13, size=2))
    cin, cout = (int(x) for x in rng.integers(2, 13, size=2))
    try:
        return Conv2d(f"c{index}_{cin}to{cout}_{h}x{w}_k{r}x{s}_s{sh}{sw}_p{''.join(map(str, pad))}",
                      in_channels=cin, out_channels=cout, in_h=h, in_w=w, kernel=(r, s), stride=(sh, sw),
                      padding=pad, **extra)  # type: ignore[arg-type]
    except Exception:  # an empty output map
        return None


def assert_counters(r: Any, sim: Any, stall: float) -> None:
    """The RTL's DRAM bytes equal the simulator's; its cycles and stall cycles too on the ideal memory, and
    never fewer cycles with random AXI stalls (a slower memory never makes the layer faster)."""
    d = r.to_dict()
    assert r.rtl_dram_read_bytes * 8 == sim.counts.dram_read_bits, d
    assert r.rtl_dram_write_bytes * 8 == sim.counts.dram_write_bits, d
    if stall:
        assert r.rtl_cycles >= sim.cycles, d
    else:
        assert (r.rtl_cycles, r.rtl_stall_cycles) == (sim.cycles, sim.stall_cycles), d
        assert r.ok, d
