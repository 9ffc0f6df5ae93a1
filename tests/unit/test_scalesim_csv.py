"""SCALE-Sim topology CSVs: both formats, trailing commas, N:M column, DP (depthwise) rows, round trip."""

from __future__ import annotations

import pytest

from codesign.errors import WorkloadError
from codesign.workloads import zoo
from codesign.workloads.layers import Conv2d, Linear
from codesign.workloads.scalesim_csv import read_topology, write_topology


def test_conv_gemm_and_dp_rows(tmp_path) -> None:
    f = tmp_path / "t.csv"
    f.write_text(
        "Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, Num Filter, Strides, Sparsity\n"
        "c1, 10, 12, 3, 3, 4, 8, 2, 2:4\n"
        "DPconv, 10, 10, 3, 3, 6, 1, 1\n"
    )
    net = read_topology(f)
    c1, dp = net.layers
    assert isinstance(c1, Conv2d) and (c1.out_h, c1.out_w) == (4, 5) and c1.weights.nm == (2, 4)
    # "DP" rows run per input channel: groups = 6, 6 * 1 outputs; per group M=64, N=1, K=9
    g = dp.gemm()
    assert (dp.groups, dp.out_channels, g.m, g.n, g.k, g.repeats) == (6, 6, 64, 1, 9, 6)
    f.write_text("Layer name, M, N, K,\nfc1, 100, 37, 53,\nfc2,1,2,3\n")
    fc1, fc2 = read_topology(f).layers
    assert isinstance(fc1, Linear) and (fc1.gemm().m, fc1.gemm().n, fc1.gemm().k) == (100, 37, 53)
    assert fc2.macs() == 6


def test_round_trip_keeps_macs() -> None:
    net = zoo.get("mobilenet_v2")
    import pathlib
    import tempfile

    p = pathlib.Path(tempfile.mkdtemp()) / "m.csv"
    p.write_text(write_topology(net))
    back = read_topology(p)
    # padding is folded into the IFMAP size and depthwise layers become DP rows: same MACs (300.8 M)
    assert back.macs == net.macs == 300_774_272


def test_bad_values(tmp_path) -> None:
    f = tmp_path / "t.csv"
    f.write_text("Layer name, M, N, K,\nfc, 10, x, 3,\n")
    with pytest.raises(WorkloadError, match=r"^t.csv, line 2: N must be an integer, not 'x'$"):
        read_topology(f)
    f.write_text("Layer name, M, N, K,\nfc, 10, 0, 3,\n")
    with pytest.raises(WorkloadError, match=r"^t.csv, line 2: N must be a positive integer, not 0$"):
        read_topology(f)
    f.write_text("")
    with pytest.raises(WorkloadError, match=r"^t.csv: empty topology file$"):
        read_topology(f)
