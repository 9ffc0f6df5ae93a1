"""Pareto fronts on hand-made point sets; the expected fronts are written out."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from codesign.pareto import mark_pareto, pareto_mask


def front(points: list[tuple[float, ...]]) -> list[int]:
    return [int(i) for i in np.flatnonzero(pareto_mask(points))]


def test_two_metrics_staircase() -> None:
    # (1,5) (2,3) (4,1) form the staircase; (3,4) is beaten by (2,3); (5,5) by all
    pts = [(1, 5), (3, 4), (2, 3), (5, 5), (4, 1)]
    assert front(pts) == [0, 2, 4]


def test_identical_points_are_both_on_the_front() -> None:
    pts = [(2, 2), (1, 3), (2, 2), (3, 3)]
    assert front(pts) == [0, 1, 2]  # neither copy of (2,2) is < the other anywhere


def test_tie_in_one_metric_worse_in_other_is_dominated() -> None:
    # (1,2) vs (1,3): equal latency, more energy -> dominated; (2,2) vs (1,2): dominated
    pts = [(1, 2), (1, 3), (2, 2), (0.5, 9)]
    assert front(pts) == [0, 3]


def test_all_equal() -> None:
    assert front([(7, 7)] * 4) == [0, 1, 2, 3]


def test_three_metrics() -> None:
    pts = [
        (1, 1, 9),  # best in two metrics -> front
        (9, 9, 1),  # best in the third -> front
        (1, 1, 9),  # duplicate of 0 -> front
        (2, 2, 9),  # dominated by 0
        (1, 2, 8),  # trades metric 2 for 3 -> front
        (9, 9, 2),  # dominated by 1
        (1, 1, 10),  # dominated by 0 (equal, equal, worse)
    ]
    assert front(pts) == [0, 1, 2, 4]


def test_nan_rows_are_never_on_the_front_and_never_dominate() -> None:
    pts = [(math.nan, 0.0), (1.0, 1.0), (2.0, 0.5)]
    assert front(pts) == [1, 2]


def test_empty_and_single() -> None:
    assert pareto_mask(np.empty((0, 2))).tolist() == []
    assert front([(3, 4)]) == [0]


def test_mark_pareto_is_per_workload() -> None:
    df = pd.DataFrame({
        "workload": ["a", "a", "b", "b"],
        "latency_ms": [1.0, 2.0, 10.0, 20.0],
        "energy_pj": [1.0, 2.0, 30.0, 10.0],
    })
    # workload a: (1,1) dominates (2,2); workload b: a trade-off, both on the front.
    assert mark_pareto(df).tolist() == [True, False, True, True]


def _brute(a: np.ndarray) -> np.ndarray:
    n = len(a)
    out = np.ones(n, dtype=bool)
    for i in range(n):
        for j in range(n):
            if i != j and np.all(a[j] <= a[i]) and np.any(a[j] < a[i]):
                out[i] = False
                break
    return out


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 4), st.integers(0, 4), st.integers(0, 4)), max_size=40),
       st.sampled_from([2, 3]))
def test_matches_brute_force_definition(rows: list[tuple[int, int, int]], k: int) -> None:
    # small integer grids make ties and duplicates common
    a = np.array([r[:k] for r in rows], dtype=float).reshape(-1, k)
    assert pareto_mask(a).tolist() == _brute(a).tolist()


def test_bad_shape() -> None:
    from codesign.errors import ConfigError

    with pytest.raises(ConfigError, match=r"2-D array"):
        pareto_mask([1.0, 2.0])


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from([0.0, 1.0, 2.0, 3.0, float("nan")]), st.integers(0, 4).map(float),
                          st.integers(0, 3).map(float)), max_size=60), st.integers(1, 7), st.integers(2, 3))
def test_streaming_front_equals_the_mask(points, batch_rows, k) -> None:  # type: ignore[no-untyped-def]
    """Merging batch by batch keeps exactly the rows pareto_mask keeps (ties, NaN, any batch size)."""
    from codesign.sweeps import StreamingFront

    values = np.array([p[:k] for p in points], dtype=float).reshape(-1, k)
    front = StreamingFront(k, batch_rows=batch_rows)
    for i, v in enumerate(values):
        front.add(i, v.tolist())
    assert front.front_rows().tolist() == np.flatnonzero(pareto_mask(values)).tolist()
