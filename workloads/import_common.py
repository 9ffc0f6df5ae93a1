"""Helpers the ONNX and PyTorch importers share (no onnx or torch import here)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from codesign.workloads.layers import NETWORK_INPUT
from codesign.workloads.operand import Operand, Pattern


def unique_name(base: str, taken: set[str]) -> str:
    """``base``, or ``base_2``, ``base_3``... the first not in ``taken``; added to it."""
    name, i = base, 1
    while name in taken:
        i += 1
        name = f"{base}_{i}"
    taken.add(name)
    return name


def with_density(base: Operand, arr: np.ndarray, zero: Any, k_axis: int) -> Operand:
    """Measured density of ``arr`` (zeros where it equals ``zero``); an exact 2:4 / 1:4 pattern along
    the reduction axis is reported as N:M."""
    nz = np.asarray(arr != zero)
    if nz.size == 0:
        return base
    density = float(np.count_nonzero(nz)) / nz.size
    if density == 1.0:
        return replace(base, pattern=Pattern.UNSTRUCTURED, density=1.0, n=0, m=0)
    rows = np.moveaxis(nz, k_axis, -1)
    if k_axis == 1 and nz.ndim > 2:  # conv weights [O, C, kh, kw]: K = C * kh * kw
        rows = nz.reshape(nz.shape[0], -1)
    else:
        rows = rows.reshape(-1, rows.shape[-1])
    k = rows.shape[-1]
    for n, m in ((2, 4), (1, 4)):
        if k % m == 0 and math.isclose(density, n / m):
            groups = rows.reshape(rows.shape[0], k // m, m).sum(axis=-1)
            if (groups == n).all():
                return replace(base, pattern=Pattern.NM, n=n, m=m)
    return replace(base, pattern=Pattern.UNSTRUCTURED, density=density, n=0, m=0)


# the origin of a tensor several layers wrote (a concat of their outputs): no single producer
MIXED = "@mixed"


def combine_origins(origins: Sequence[str | None]) -> str | None:
    """The origin of a tensor a data-moving op (reshape, transpose, activation, concat...) makes from its
    inputs' origins (None: a constant): the one layer they all come from, else :data:`MIXED`."""
    found = {o for o in origins if o is not None}
    if not found:
        return None
    return found.pop() if len(found) == 1 else MIXED


def layer_sources(origins: Sequence[str | None]) -> tuple[str, ...]:
    """A layer's ``sources`` from the origin of each activation operand, in operand order (a layer name,
    ``NETWORK_INPUT``, :data:`MIXED`, or None for a constant). Constants come last and are left out (the
    simulator reads operands without a source from DRAM); an operand no single layer produced (a concat)
    is named ``NETWORK_INPUT``, which the simulator likewise reads from DRAM."""
    n = len(origins)
    while n and origins[n - 1] is None:
        n -= 1
    return tuple(NETWORK_INPUT if o is None or o == MIXED else o for o in origins[:n])


def broadcast_operands(shapes: Sequence[Sequence[int]], const: Sequence[bool], batch: int
                       ) -> tuple[list[int], int, tuple[int, ...]]:
    """Operands of a broadcasting element-wise op, as an :class:`Eltwise` takes them.

    Returns the operand order (activations of the output's full size first, then the other activations,
    then constants), the output elements of one sample, and each operand's elements of one sample in that
    order (a per-channel scale: ``C``, a scalar: 1), or ``()`` when every operand is full size."""
    out = [int(d) for d in np.broadcast_shapes(*(tuple(s) for s in shapes))]
    per_batch = bool(out) and out[0] == batch and batch > 1
    elements = math.prod(out) // (batch if per_batch else 1) if out else 1
    sizes = []
    for s in shapes:
        n = math.prod(s) if s else 1
        if per_batch and len(s) == len(out) and s[0] == batch:
            n //= batch
        sizes.append(max(1, min(n, elements)))
    order = sorted(range(len(shapes)), key=lambda i: (const[i], sizes[i] != elements, i))
    ordered = tuple(sizes[i] for i in order)
    return order, elements, (() if all(v == elements for v in ordered) else ordered)
