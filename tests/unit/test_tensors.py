"""Seeded quantized sparse tensors and im2col, checked against a direct convolution."""

from __future__ import annotations

import numpy as np
import pytest

from codesign.workloads.layers import Conv2d, Linear
from codesign.workloads.operand import Operand
from codesign.workloads.tensors import layer_operands, random_operand


def direct_conv(x: np.ndarray, w: np.ndarray, layer: Conv2d) -> np.ndarray:
    """Plain loops: out[b, o, y, x] = sum over c in group, ky, kx."""
    b, c = x.shape[:2]
    pt, pl, pb, pr = layer.padding
    xp = np.pad(x, ((0, 0), (0, 0), (pt, pb), (pl, pr))).astype(np.int64)
    cg, og = c // layer.groups, layer.out_channels // layer.groups
    out = np.zeros((b, layer.out_channels, layer.out_h, layer.out_w), dtype=np.int64)
    for o in range(layer.out_channels):
        grp = o // og
        for y in range(layer.out_h):
            for xx in range(layer.out_w):
                for ky in range(layer.r):
                    for kx in range(layer.s):
                        iy = y * layer.stride[0] + ky * layer.dilation[0]
                        ix = xx * layer.stride[1] + kx * layer.dilation[1]
                        patch = xp[:, grp * cg:(grp + 1) * cg, iy, ix]
                        out[:, o, y, xx] += patch @ w[o, :, ky, kx].astype(np.int64)
    return out


@pytest.mark.parametrize(
    "layer",
    [
        Conv2d("c3s2", in_channels=4, out_channels=6, in_h=9, in_w=7, kernel=3, stride=2, padding=1),
        Conv2d("dw", in_channels=6, out_channels=6, in_h=8, in_w=8, kernel=3, padding=1, groups=6),
        Conv2d("g2dil", in_channels=4, out_channels=4, in_h=10, in_w=10, kernel=3, groups=2, dilation=2),
        Conv2d("1x1", in_channels=5, out_channels=3, in_h=4, in_w=4, kernel=1),
    ],
)
def test_im2col_gemm_equals_direct_convolution(layer: Conv2d) -> None:
    ops = layer_operands(layer, batch=2, seed=3)
    # rebuild x and w from the same seed to run the direct convolution
    rng = np.random.default_rng(3)
    x = random_operand((2, layer.in_channels, layer.in_h, layer.in_w), layer.inputs, rng, k_axis=1)
    cg = layer.in_channels // layer.groups
    w = random_operand((layer.out_channels, cg * layer.r * layer.s), layer.weights, rng, k_axis=1)
    ref = direct_conv(x, w.reshape(layer.out_channels, cg, layer.r, layer.s), layer)
    c = ops.c  # [groups, batch*oh*ow, out/groups]
    got = c.transpose(1, 0, 2).reshape(2, layer.out_h, layer.out_w, layer.out_channels).transpose(0, 3, 1, 2)
    np.testing.assert_array_equal(got, ref)


def test_density_and_nm_pattern_are_exact() -> None:
    rng = np.random.default_rng(0)
    t = random_operand((64, 100), Operand(bits=4, density=0.3), rng)
    assert np.count_nonzero(t) == round(0.3 * 6400)
    assert t.min() >= -8 and t.max() <= 7
    nm = random_operand((16, 10), Operand().with_sparsity("2:4"), rng, k_axis=1)
    # groups of 4 along K keep exactly 2 non-zeros; the ragged last group of 2 keeps 2
    for start in (0, 4):
        assert (np.count_nonzero(nm[:, start:start + 4], axis=1) == 2).all()
    assert (np.count_nonzero(nm[:, 8:10], axis=1) == 2).all()
    dense = random_operand((50,), Operand(bits=8, signed=False), rng)
    assert np.count_nonzero(dense) == 50 and dense.max() <= 255


def test_same_seed_same_tensors_and_active_macs() -> None:
    lin = Linear("l", in_features=8, out_features=5, tokens=6, inputs=Operand(density=0.5),
                 weights=Operand().with_sparsity("2:4"))
    a, b = layer_operands(lin, seed=7), layer_operands(lin, seed=7)
    np.testing.assert_array_equal(a.a, b.a)
    brute = sum(int(a.a[0, m, k] != 0 and a.b[0, k, n] != 0) for m in range(6) for n in range(5) for k in range(8))
    assert a.active_macs() == brute
