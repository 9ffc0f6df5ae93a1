"""Pareto fronts (all metrics minimized, except those in :data:`MAXIMIZED`, such as accuracy).

A point is *dominated* when another point is ``<=`` in every metric and ``<`` in at least one.
The front is every point that is not dominated; so identical points are on the front together
(neither is ``<`` anywhere), and a point that ties another in one metric and is worse in the
other is not. Rows with a NaN metric are never on the front and never dominate.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from codesign.errors import ConfigError

if TYPE_CHECKING:
    import pandas as pd

MAXIMIZED = frozenset({"accuracy"})  # metrics where more is better (negated for the front)


def pareto_mask(values: np.ndarray | Sequence[Sequence[float]]) -> np.ndarray:
    """Boolean mask of the non-dominated rows of an ``(n, k)`` array (minimization)."""
    a = np.asarray(values, dtype=np.float64)
    if a.ndim != 2:
        raise ConfigError(f"pareto values must be a 2-D array (points x metrics), not shape {a.shape}")
    n = a.shape[0]
    mask = np.zeros(n, dtype=bool)
    if n == 0 or a.shape[1] == 0:
        return mask
    valid = ~np.isnan(a).any(axis=1)
    idx = np.flatnonzero(valid)
    if idx.size == 0:
        return mask
    sub = a[idx]
    # Lexicographic order: a dominator always comes before the point it dominates, and if it is
    # itself dominated, its own dominator (which also dominates the point) comes earlier still.
    # So comparing each point with the front found so far is enough.
    order = np.lexsort(sub.T[::-1])
    front = np.empty_like(sub)
    size = 0
    for i in order:
        p = sub[i]
        if size:
            f = front[:size]
            if np.any(np.all(f <= p, axis=1) & np.any(f < p, axis=1)):
                continue
        front[size] = p
        size += 1
        mask[idx[i]] = True
    return mask


def mark_pareto(df: pd.DataFrame, metrics: Sequence[str] = ("latency_ms", "energy_pj"),
                by: str | Sequence[str] | None = "workload") -> pd.Series:
    """A boolean Series (index of ``df``): is the row on the Pareto front of ``metrics``.

    The front is computed separately for each group of ``by`` (one front per workload: designs
    running different networks do not compete).
    """
    import pandas as pd

    metrics = list(metrics)
    missing = [m for m in metrics if m not in df.columns]
    if missing:
        raise ConfigError(f"pareto metric must be a column of the results, not {missing[0]!r}")
    out = pd.Series(False, index=df.index, name="pareto", dtype=bool)
    if df.empty:
        return out
    keys = [by] if isinstance(by, str) else list(by or [])
    keys = [k for k in keys if k in df.columns]
    groups = df.groupby(keys, sort=False).indices.values() if keys else [np.arange(len(df))]
    values = df[metrics].to_numpy(dtype=np.float64) * [-1.0 if m in MAXIMIZED else 1.0 for m in metrics]
    result = np.zeros(len(df), dtype=bool)
    for group in groups:
        rows = np.asarray(group)
        result[rows] = pareto_mask(values[rows])
    out[:] = result
    return out
