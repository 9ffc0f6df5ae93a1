"""Fold mapping per dataflow and SCALE-Sim's closed-form compute cycles."""

from __future__ import annotations

import pytest

from codesign.sim.timing import map_gemm, scalesim_conv_out, scalesim_fold_cycles, scalesim_gemm_cycles


def test_mapping_per_dataflow() -> None:
    # GEMM M=100, N=37, K=53 on 8 rows x 16 cols
    ws = map_gemm("ws", 8, 16, 100, 37, 53)
    assert (ws.sr, ws.sc, ws.t, ws.row_folds, ws.col_folds) == (53, 37, 100, 7, 3)
    os_ = map_gemm("os", 8, 16, 100, 37, 53)
    assert (os_.sr, os_.sc, os_.t, os_.folds) == (100, 37, 53, 13 * 3)
    is_ = map_gemm("is", 8, 16, 100, 37, 53)
    assert (is_.sr, is_.sc, is_.t, is_.folds) == (53, 100, 37, 7 * 7)


@pytest.mark.parametrize(
    ("df", "expected"),
    [
        # folds x L - 1 with L = T + R + C - 2 (OS), T + 2R + C - 2 (WS, IS); R=8, C=16
        ("os", 13 * 3 * (53 + 8 + 16 - 2) - 1),
        ("ws", 7 * 3 * (100 + 16 + 16 - 2) - 1),
        ("is", 7 * 7 * (37 + 16 + 16 - 2) - 1),
    ],
)
def test_scalesim_known_answers(df: str, expected: int) -> None:
    assert scalesim_gemm_cycles(df, 8, 16, 100, 37, 53) == expected


def test_scalesim_fold_and_conv_out() -> None:
    assert scalesim_fold_cycles("os", 32, 32, 100) == 162
    assert scalesim_fold_cycles("ws", 32, 32, 100) == 194
    # SCALE-Sim rounds the output size up: AlexNet conv1 224, 11x11, stride 4 -> 55 (PyTorch: 54)
    assert scalesim_conv_out(224, 11, 4) == 55
    assert scalesim_conv_out(56, 3, 1) == 54
