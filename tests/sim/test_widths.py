"""The RTL's widths as config fields (``dram_addr_bits``, ``dim_bits``): the simulator refuses a layer that does
not fit them in one line naming the layer, the field and the value (the RTL would wrap), and the defaults
change no simulated number."""

from __future__ import annotations

import pytest

import codesign
from codesign.errors import ConfigError
from codesign.sim.config import AcceleratorConfig
from codesign.sim.tileplan import plan_tiles
from codesign.sim.widths import LAYOUT_ALIGN_BYTES, check_fields, check_plan, layer_regions
from codesign.workloads.layers import GemmShape, Linear, Network

KIB = {"input_sram_bytes": 1024, "weight_sram_bytes": 1024, "output_sram_bytes": 1024}
OS2 = AcceleratorConfig(rows=2, cols=2, dataflow="os", **KIB)


def _net(tokens: int, in_features: int = 8, out_features: int = 6) -> Network:
    return Network("n", (Linear("fc", in_features=in_features, out_features=out_features, tokens=tokens),))


def test_a_dimension_beyond_dim_bits_is_refused_in_one_line() -> None:
    # M = 4,096 tokens: 13 bits; dim_bits 12 holds up to 4,095
    with pytest.raises(ConfigError) as e:
        codesign.simulate(_net(4096), OS2.replace(dim_bits=12))
    assert str(e.value) == ("layer 'fc': descriptor m = 4096 does not fit dim_bits: 12 (GEMM dimensions and tile "
                            "counts below 2**12 in this design; it needs dim_bits: 13)")
    assert codesign.simulate(_net(4095), OS2.replace(dim_bits=12)).cycles > 0


def test_a_layout_beyond_dram_addr_bits_is_refused_in_one_line() -> None:
    # 16 address bits reach 64 KiB. M = 2,000 tokens of K = 8 on 2x2 OS with a 16-byte bus: A is 1,000 x 8 words
    # of one beat (128,000 bytes), C 96,000 bytes; each region on its own 4 KiB page, as the host lays them out:
    # A at 0, B at 131,072, C at 135,168, the table at 233,472, the end at 237,568 (18 address bits)
    net = _net(2000)
    plan = plan_tiles(GemmShape(2000, 6, 8), OS2)
    *_, end = layer_regions(plan, 0)
    assert end == 237_568 and end % LAYOUT_ALIGN_BYTES == 0
    with pytest.raises(ConfigError) as e:
        codesign.simulate(net, OS2.replace(dram_addr_bits=16))
    assert str(e.value) == (f"layer 'fc': its DRAM layout ends at byte {end}, beyond the 65536 bytes dram_addr_bits: "
                            f"16 addresses (it needs dram_addr_bits: {(end - 1).bit_length()})")
    assert codesign.simulate(net, OS2.replace(dram_addr_bits=(end - 1).bit_length())).cycles > 0


def test_the_defaults_change_nothing() -> None:
    """32 address bits and 24 dimension bits are the defaults; a narrow setting that fits gives the same cycles
    (widths change no timing: no register on a counted path)."""
    assert (OS2.dram_addr_bits, OS2.dim_bits) == (32, 24)
    wide = codesign.simulate("ds_cnn_kws", OS2)
    narrow = codesign.simulate("ds_cnn_kws", OS2.replace(dram_addr_bits=20, dim_bits=8))
    assert [r.cycles for r in narrow.layers] == [r.cycles for r in wide.layers]
    assert narrow.cycles == wide.cycles > 0


def test_an_address_or_stride_beyond_dram_addr_bits_is_named() -> None:
    """A descriptor's address field wider than dram_addr_bits, named with its value (``check_fields``: the
    layout's end bounds a layer's own addresses, so this catches a base or stride placed beyond it)."""
    plan = plan_tiles(GemmShape(2000, 6, 8), OS2)
    check_plan("fc", plan, OS2.replace(dram_addr_bits=18))
    desc = {**plan.descriptor(0, 131_072, 135_168, 233_472), "c_stride_m": 1 << 18}
    with pytest.raises(ConfigError) as e:
        check_fields("fc", desc, OS2.replace(dram_addr_bits=18))
    assert str(e.value) == ("layer 'fc': descriptor c_stride_m = 262144 does not fit dram_addr_bits: 18 (DRAM byte "
                            "addresses and strides below 2**18 in this design; it needs dram_addr_bits: 19)")
