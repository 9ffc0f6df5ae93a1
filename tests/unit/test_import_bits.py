"""A model's bit-widths above the array's: an error naming the layer, the operand and both widths, or an explicit
clip that says what it did (never the simulator's silent ``min(model bits, array bits)``)."""

from __future__ import annotations

import pytest

import codesign
from codesign.errors import WorkloadError
from codesign.workloads.layers import Conv2d, Linear, Network, Pool
from codesign.workloads.operand import Operand
from codesign.workloads.precision import BitsClippedWarning, fit_to_array, wider_operands

NET = Network("tiny", (
    Conv2d("conv", in_channels=3, out_channels=8, in_h=8, in_w=8, kernel=3, padding=1,
           weights=Operand(bits=4), inputs=Operand(bits=8, signed=False)),
    Pool("pool", channels=8, in_h=8, in_w=8, op="avg", global_=True, inputs=Operand(bits=16)),  # vector unit
    Linear("fc", in_features=8, out_features=10, weights=Operand(bits=8), inputs=Operand(bits=16)),
))


def test_fits() -> None:
    assert fit_to_array(NET, weight_bits=8, act_bits=16) == (NET, [])
    assert wider_operands(NET, 8, 16) == []


def test_wider_weights_and_activations() -> None:
    # conv: 4-bit weights fit a 4-bit array; fc's 8-bit weights do not; activations 8 and 16 bits on 8
    assert wider_operands(NET, 4, 8) == [("fc", "weights", 8, 4), ("fc", "inputs", 16, 8)]
    with pytest.raises(WorkloadError) as e:
        fit_to_array(NET, weight_bits=8, act_bits=8)
    assert str(e.value) == ("layer 'fc': inputs are 16-bit, wider than the array's act_bits 8; use an array of 16 "
                            "bits, a model quantized to 8 bits, or clip explicitly (clip_bits=True, --clip-bits)")


def test_clip_narrows_and_says_so() -> None:
    net, notes = fit_to_array(NET, weight_bits=4, act_bits=8, clip=True)
    assert notes == ["clipped weights of 1 layer from 8 to 4 bits (the array's weight_bits): fc",
                     "clipped inputs of 1 layer from 16 to 8 bits (the array's act_bits): fc"]
    assert (net.layer("fc").weights.bits, net.layer("fc").inputs.bits) == (4, 8)
    assert net.layer("conv") == NET.layer("conv") and net.layer("pool") == NET.layer("pool")


def test_simulate_refuses_or_clips() -> None:
    cfg = codesign.AcceleratorConfig(rows=4, cols=4, weight_bits=4, act_bits=8)
    with pytest.raises(WorkloadError, match=r"^layer 'fc': weights are 8-bit, wider than the array's weight_bits 4 "):
        codesign.simulate(NET, cfg)
    with pytest.warns(BitsClippedWarning) as caught:
        res = codesign.simulate(NET, cfg, clip_bits=True)
    assert len(caught) == 2
    assert res.macs == NET.macs == 8 * 8 * 8 * 27 + 80
