"""Deterministic quantized (sparse) tensors for a layer, and their lowering to GEMM operands.

These are the real integers the RTL tests drive through the hardware: the expected outputs are
computed with numpy in int64, so they are exact.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from codesign.errors import WorkloadError
from codesign.workloads.layers import Conv2d, GemmShape, Layer, Linear, MatMul
from codesign.workloads.operand import Operand, Pattern


def random_operand(shape: tuple[int, ...], op: Operand, rng: np.random.Generator, *, k_axis: int = -1) -> np.ndarray:
    """Integers in ``op``'s range with its density and pattern, zeros placed exactly.

    Non-zero values are drawn from the non-zero part of the range. Unstructured: exactly
    ``round(density * size)`` non-zeros at random positions. N:M: exactly ``n`` non-zeros in every
    group of ``m`` consecutive elements along ``k_axis`` (a ragged last group keeps
    ``min(n, len)``).
    """
    lo, hi = op.min_value, op.max_value
    size = int(np.prod(shape)) if shape else 1
    values = rng.integers(lo, hi, size=size, endpoint=True, dtype=np.int64)
    if lo <= 0 <= hi and hi > lo:
        # redraw zeros as non-zeros: the zero positions are chosen below
        zero = values == 0
        while zero.any():
            values[zero] = rng.integers(lo, hi, size=int(zero.sum()), endpoint=True)
            zero = values == 0
    out = values.reshape(shape)
    if op.pattern is Pattern.NM:
        moved = np.moveaxis(out, k_axis, -1)
        k = moved.shape[-1]
        flat = moved.reshape(-1, k).copy()
        for start in range(0, k, op.m):
            width = min(op.m, k - start)
            keep = min(op.n, width)
            scores = rng.random((flat.shape[0], width))
            order = np.argsort(scores, axis=1, kind="stable")
            drop = order[:, keep:]
            rows = np.repeat(np.arange(flat.shape[0]), width - keep)
            flat[rows, start + drop.ravel()] = 0
        return np.moveaxis(flat.reshape(moved.shape), -1, k_axis)
    nnz = round(op.density * size)
    mask = np.zeros(size, dtype=bool)
    mask[rng.permutation(size)[:nnz]] = True
    return np.where(mask.reshape(shape), out, 0)


def im2col(x: np.ndarray, layer: Conv2d) -> np.ndarray:
    """``x[batch, C, H, W]`` -> ``A[groups, batch*out_h*out_w, C/g*R*S]`` with the layer's padding,
    stride and dilation. Row order: batch, out_y, out_x; column order: channel, ky, kx."""
    b, c = x.shape[:2]
    pt, pl, pb, pr = layer.padding  # type: ignore[misc]
    sh, sw = layer.stride  # type: ignore[misc]
    dh, dw = layer.dilation  # type: ignore[misc]
    xp = np.pad(x, ((0, 0), (0, 0), (pt, pb), (pl, pr)))
    oh, ow, r, s, g = layer.out_h, layer.out_w, layer.r, layer.s, layer.groups
    cols = np.empty((b, c, r, s, oh, ow), dtype=x.dtype)
    for ky in range(r):
        for kx in range(s):
            y0, x0 = ky * dh, kx * dw
            cols[:, :, ky, kx] = xp[:, :, y0 : y0 + sh * (oh - 1) + 1 : sh, x0 : x0 + sw * (ow - 1) + 1 : sw]
    cg = c // g
    cols = cols.reshape(b, g, cg, r, s, oh, ow)
    # -> groups, batch, oh, ow, cg, r, s
    return cols.transpose(1, 0, 5, 6, 2, 3, 4).reshape(g, b * oh * ow, cg * r * s)


def col2im(a: np.ndarray, layer: Conv2d, batch: int) -> np.ndarray:
    """The input ``x[batch, C, H, W]`` of one group's im2col matrix ``a[1, batch*out_h*out_w, C*R*S]``
    (:func:`im2col`'s inverse on the pixels some window reads; the others, which no output depends on,
    are zero)."""
    c = layer.in_channels
    pt, pl, pb, pr = layer.padding  # type: ignore[misc]
    sh, sw = layer.stride  # type: ignore[misc]
    dh, dw = layer.dilation  # type: ignore[misc]
    oh, ow, r, s = layer.out_h, layer.out_w, layer.r, layer.s
    cols = a.reshape(batch, oh, ow, c, r, s).transpose(0, 3, 4, 5, 1, 2)
    xp = np.zeros((batch, c, layer.in_h + pt + pb, layer.in_w + pl + pr), dtype=a.dtype)
    for ky in range(r):
        for kx in range(s):
            y0, x0 = ky * dh, kx * dw
            xp[:, :, y0:y0 + sh * (oh - 1) + 1:sh, x0:x0 + sw * (ow - 1) + 1:sw] = cols[:, :, ky, kx]
    return xp[:, :, pt:pt + layer.in_h, pl:pl + layer.in_w]


@dataclass(frozen=True)
class GemmOperands:
    """The GEMM operands of one layer: ``c[g] = a[g] @ b[g]`` for each group/head ``g``."""

    a: np.ndarray  # [groups, M, K]
    b: np.ndarray  # [groups, K, N]
    shape: GemmShape

    @property
    def c(self) -> np.ndarray:
        return np.matmul(self.a.astype(np.int64), self.b.astype(np.int64))

    def active_macs(self) -> int:
        """MACs whose two operands are both non-zero: ``sum_k nnz(A[:, k]) * nnz(B[k, :])``."""
        na = (self.a != 0).sum(axis=1)  # [g, K]
        nb = (self.b != 0).sum(axis=2)  # [g, K]
        return int((na.astype(np.int64) * nb).sum())


def conv_tensors(layer: Conv2d, *, batch: int = 1, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The seeded input ``x[batch, C, H, W]`` and weights ``w[out_channels, C/groups * R * S]`` (channel,
    ky, kx order) of a convolution: the tensors :func:`layer_operands` lowers to GEMM operands."""
    rng = np.random.default_rng(seed)
    x = random_operand((batch, layer.in_channels, layer.in_h, layer.in_w), layer.inputs, rng, k_axis=1)
    cg = layer.in_channels // layer.groups
    w = random_operand((layer.out_channels, cg * layer.r * layer.s), layer.weights, rng, k_axis=1)
    return x, w


def layer_operands(layer: Layer, *, batch: int = 1, seed: int = 0) -> GemmOperands:
    """Seeded quantized tensors of a Conv2d / Linear / MatMul layer, lowered to GEMM operands.

    Weights of N:M layers are N:M-sparse along K (the reduction dimension) per output channel.
    """
    rng = np.random.default_rng(seed)
    if isinstance(layer, Conv2d):
        g = layer.groups
        x, w = conv_tensors(layer, batch=batch, seed=seed)
        a = im2col(x, layer)
        b = w.reshape(g, layer.out_channels // g, -1).transpose(0, 2, 1)
        return GemmOperands(a=a, b=np.ascontiguousarray(b), shape=layer.gemm(batch))
    if isinstance(layer, Linear):
        x = random_operand((layer.tokens * batch, layer.in_features), layer.inputs, rng, k_axis=1)
        w = random_operand((layer.out_features, layer.in_features), layer.weights, rng, k_axis=1)
        return GemmOperands(a=x[None], b=np.ascontiguousarray(w.T)[None], shape=layer.gemm(batch))
    if isinstance(layer, MatMul):
        h = layer.heads * batch
        a = random_operand((h, layer.m, layer.k), layer.inputs, rng, k_axis=2)
        bt = random_operand((h, layer.n, layer.k), layer.weights, rng, k_axis=2)
        return GemmOperands(a=a, b=np.ascontiguousarray(bt.transpose(0, 2, 1)), shape=layer.gemm(batch))
    raise WorkloadError(f"layer {layer.name!r} ({layer.kind.value}) has no GEMM operands")


def gemm_operands(m: int, n: int, k: int, *, inputs: Operand, weights: Operand, seed: int = 0) -> GemmOperands:
    """Seeded operands of a bare GEMM ``[m, k] @ [k, n]``."""
    return layer_operands(
        Linear("gemm", in_features=k, out_features=n, tokens=m, bias=False, inputs=inputs, weights=weights),
        seed=seed,
    )
