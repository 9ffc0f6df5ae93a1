"""Known answers of the native timing: the closed forms the generated RTL implements.

Cycles from the edge that samples ``start`` to the edge that raises ``done``:

* WS: ``1 + (F - 1) * max(M, rows) + M + rows + cols``, ``F = ceil(K/rows) * ceil(N/cols)``
* OS: ``1 + F * max(K, rows, cols) + rows + cols``,     ``F = ceil(M/rows) * ceil(N/cols)``
* IS: the WS form on the transposed GEMM (M and N swap).

The RTL tiers (tests/hdl, tests/rtl) hold the hardware to these numbers cycle for cycle.
"""

from __future__ import annotations

import time

import pytest

from codesign.sim.config import AcceleratorConfig
from codesign.sim.timing import (
    NATIVE_START_CYCLES,
    native_fold_cycles,
    native_gemm_cycles,
    native_tail_cycles,
)


def cfg(df: str, r: int = 4, c: int = 4) -> AcceleratorConfig:
    return AcceleratorConfig(rows=r, cols=c, dataflow=df)


@pytest.mark.parametrize(
    ("r", "c", "m", "n", "k", "expected"),
    [
        # one fold: 1 + M + R + C + 2 (the PEs' multiplier registers)
        (4, 4, 4, 4, 4, 1 + 4 + 4 + 4 + 2),
        (4, 4, 1, 1, 1, 1 + 1 + 4 + 4 + 2),
        # ragged: F = ceil(7/4)*ceil(6/4) = 4, P = max(5, 4) = 5 -> 1 + 3*5 + 5 + 8 + 2
        (4, 4, 5, 6, 7, 1 + 3 * 5 + 5 + 8 + 2),
        # M < rows: the weight load (rows cycles) sets the interval: F = 2*3 = 6, P = 8
        (8, 4, 3, 12, 9, 1 + 5 * 8 + 3 + 12 + 2),
        # 16x4, M = 100, K = 64, N = 10: F = 4*3 = 12, P = 100
        (16, 4, 100, 10, 64, 1 + 11 * 100 + 100 + 20 + 2),
    ],
)
def test_ws_closed_form(r: int, c: int, m: int, n: int, k: int, expected: int) -> None:
    assert native_gemm_cycles(cfg("ws", r, c), m, n, k) == expected


@pytest.mark.parametrize(
    ("r", "c", "m", "n", "k", "expected"),
    [
        # one fold: 1 + max(K, R, C) + R + C
        (4, 4, 4, 4, 4, 1 + 4 + 8),
        (4, 4, 1, 1, 1, 1 + 4 + 8),
        # F = ceil(5/4)*ceil(6/4) = 4, P = max(7, 4, 4) = 7 -> 1 + 4*7 + 8
        (4, 4, 5, 6, 7, 1 + 4 * 7 + 8),
        # cols > K: P = max(3, 4, 16) = 16, F = 2*2 = 4
        (4, 16, 8, 20, 3, 1 + 4 * 16 + 20),
        # 16x4: M=100 N=10 K=64: F = 7*3 = 21, P = 64
        (16, 4, 100, 10, 64, 1 + 21 * 64 + 20),
    ],
)
def test_os_closed_form(r: int, c: int, m: int, n: int, k: int, expected: int) -> None:
    assert native_gemm_cycles(cfg("os", r, c), m, n, k) == expected


def test_is_is_ws_on_the_transposed_gemm() -> None:
    for m, n, k in [(5, 6, 7), (100, 3, 17), (1, 64, 9)]:
        assert native_gemm_cycles(cfg("is", 8, 4), m, n, k) == native_gemm_cycles(cfg("ws", 8, 4), n, m, k)


def test_fold_interval_and_tail() -> None:
    ws, os_ = cfg("ws", 8, 4), cfg("os", 8, 4)
    assert [native_fold_cycles(ws, t) for t in (1, 8, 9, 100)] == [8, 8, 9, 100]
    assert [native_fold_cycles(os_, t) for t in (1, 8, 9, 100)] == [8, 8, 9, 100]
    assert native_fold_cycles(cfg("os", 2, 6), 3) == 6  # cols bound the drain interval
    assert native_tail_cycles(ws, 10) == 10 + 12 + 2  # the multiplier registers: two cycles more than OS's drain
    assert native_tail_cycles(os_, 10) == 10 + 12
    assert NATIVE_START_CYCLES == 1


def test_sum_of_parts() -> None:
    for df in ("ws", "os", "is"):
        c = cfg(df, 4, 8)
        for m, n, k in [(1, 1, 1), (13, 17, 19), (64, 3, 200)]:
            from codesign.sim.timing import map_gemm

            fm = map_gemm(c.dataflow, c.rows, c.cols, m, n, k)
            expected = 1 + (fm.folds - 1) * native_fold_cycles(c, fm.t) + native_tail_cycles(c, fm.t)
            assert native_gemm_cycles(c, m, n, k) == expected


def test_fast_enough_for_thousands_of_tiles() -> None:
    c = cfg("ws", 16, 16)
    t0 = time.perf_counter()
    for i in range(20000):
        native_gemm_cycles(c, 1 + i % 300, 1 + i % 77, 1 + i % 129)
    assert time.perf_counter() - t0 < 1.0
