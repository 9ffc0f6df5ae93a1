"""Helpers the ONNX and PyTorch importers share (no onnx or torch import here)."""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

import numpy as np

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
