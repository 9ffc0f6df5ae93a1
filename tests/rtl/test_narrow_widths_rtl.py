"""The RTL at narrow widths (``dram_addr_bits: 20``, ``dim_bits: 12``): whole layers and a whole network equal the
simulator cycle for cycle and byte for byte, as at the default widths (the widths change no register on a path the
timing contract counts), and a layer beyond the widths is refused in one line before the RTL runs.

* 2x2 OS, 1 KiB buffers (the iCE40 UP5K design): small layers and a GEMM with M = 4,095 (the largest M 12 bits
  hold), whose layout runs past 64 KiB, so the tile iterator's and the DMA's address bits 16..19 carry;
* 4x4 WS with its engines (depthwise engine, on-chip windows, pool stage), 1 KiB buffers: DS-CNN from one start on
  the network top (its DRAM image ends below 2**20 bytes: the program's records, PROG_BASE and every layer's
  addresses in 20 bits).
"""

from __future__ import annotations

import pytest

from codesign.errors import ConfigError
from codesign.hdl.bench.runner import default_simulator, simulator_available
from codesign.hdl.verify import hardware_layer, verify_layers, verify_program
from codesign.sim.config import AcceleratorConfig
from codesign.sim.engine import simulate_layer, simulate_network
from codesign.workloads.layers import Conv2d, Linear, MatMul
from codesign.workloads.loading import load_workload
from codesign.workloads.tensors import layer_operands

from .conftest import SMALL_4X4

pytestmark = [
    pytest.mark.rtl,
    pytest.mark.skipif(not simulator_available(default_simulator()),
                       reason=f"the RTL simulator {default_simulator()} is not installed"),
]

NARROW = {"dram_addr_bits": 20, "dim_bits": 12}
KIB = {"input_sram_bytes": 1024, "weight_sram_bytes": 1024, "output_sram_bytes": 1024}
OS2 = AcceleratorConfig(rows=2, cols=2, dataflow="os", dram_latency_cycles=10, **KIB, **NARROW)  # type: ignore[arg-type]


def test_os_2x2_narrow_layers_exact(tmp_path) -> None:
    layers = [
        Linear("ragged_gemm", in_features=21, out_features=10, tokens=13, bias=False),
        Conv2d("conv3x3_s2_p1", in_channels=5, out_channels=7, in_h=9, in_w=9, kernel=3, stride=2, padding=1),
        MatMul("attention_scores", m=9, n=7, k=5, heads=3),
        Linear("k_split", in_features=70, out_features=40, tokens=50, bias=False),
        # M = 4,095 = 2**12 - 1 rows of K = 8: A is 2,048 x 8 one-beat words (262,144 bytes), C 196,608 bytes, each
        # region on its own 4 KiB page: the layout ends at 466,944 bytes, past 2**16, below 2**20
        Linear("tall", in_features=8, out_features=6, tokens=4095, bias=False),
    ]
    pairs = [(hw, layer_operands(hw, seed=4)) for hw in (hardware_layer(ly, OS2) for ly in layers)]
    results = verify_layers(pairs, OS2, seed=4, work_dir=tmp_path)
    wide = OS2.replace(dram_addr_bits=32, dim_bits=24)
    for (layer, _ops), r in zip(pairs, results, strict=True):
        sim = simulate_layer(layer, 1, OS2)
        assert r.outputs_match and r.ok, r.layer
        assert (r.rtl_cycles, r.rtl_stall_cycles) == (sim.cycles, sim.stall_cycles), r.layer
        assert r.rtl_dram_read_bytes * 8 == sim.counts.dram_read_bits, r.layer
        assert r.rtl_dram_write_bytes * 8 == sim.counts.dram_write_bits, r.layer
        assert r.rtl_enabled_macs == r.ref_enabled_macs, r.layer
        assert sim.cycles == simulate_layer(layer, 1, wide).cycles, r.layer  # the same cycles at 32 and 24 bits
    assert results[-1].rtl_cycles == 51_128 and results[-1].tiles == 256  # the simulator's count for "tall"


def test_ws_4x4_narrow_ds_cnn_from_one_start() -> None:
    config = AcceleratorConfig(**{**SMALL_4X4, **NARROW})  # type: ignore[arg-type]
    v = verify_program("ds_cnn_kws", config, seed=2)
    assert v.outputs_match, [(r.layer, r.outputs_match) for r in v.layers]
    for r in v.layers:  # each layer's counters, written into its record, as the simulator's layer
        assert (r.rtl_cycles, r.rtl_stall_cycles, r.rtl_dram_read_bytes, r.rtl_dram_write_bytes) == (
            r.sim_cycles, r.sim_stall_cycles, r.sim_dram_read_bytes, r.sim_dram_write_bytes), r.layer
    sim = simulate_network(load_workload("ds_cnn_kws"), config)
    assert v.rtl_cycles == v.sim_cycles == sim.program_cycles == 193_377
    assert v.ok


def test_a_layer_beyond_the_widths_is_refused_in_one_line(tmp_path) -> None:
    """M = 4,096 does not fit dim_bits 12: refused before any RTL runs, naming the layer, the field, the value."""
    hw = hardware_layer(Linear("fc", in_features=8, out_features=6, tokens=4096, bias=False), OS2)
    with pytest.raises(ConfigError) as e:
        verify_layers([(hw, layer_operands(hw, seed=0))], OS2, work_dir=tmp_path)
    assert str(e.value) == "layer 'fc': descriptor m must be below 2**12 (its 12-bit register in this design), not 4096"
    assert "\n" not in str(e.value)
