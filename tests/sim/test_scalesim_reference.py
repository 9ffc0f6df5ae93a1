"""``--timing scalesim`` held to the real SCALE-Sim, layer by layer.

The numbers below are SCALE-Sim's own: the "Total Cycles" column of COMPUTE_REPORT.csv written by
``scalesim==3.0.0`` (PyPI, run with numpy 2.3.5: 3.0.0 fails on numpy >= 2.4) through its Python
API (``scalesim(save_disk_space=True, ...).run_scale()``) on the topology CSVs in
``tests/data/scalesim/``. Config: SCALE-Sim's shipped ``configs/scale.cfg`` (IFMAP/filter/OFMAP
SRAM 64/64/64 KiB, offsets 0/10000000/20000000, read/write request buffers 512,
``InterfaceBandwidth: CALC``, no Ramulator) with ``ArrayHeight`` x ``ArrayWidth`` and ``Dataflow``
set per case, no custom layout, ``SparsitySupport: false``. "Stall Cycles" was 0 in every row, so
"Total Cycles" is the compute total (the first column, "Total Cycles (incl. prefetch)", adds the
DRAM prefetch estimate and is not what codesign models). Regenerate with
``python bench/scalesim_compare.py --scalesim-python PATH --reference``.

SCALE-Sim reports one row per topology row, except that a row whose name contains ``DP`` (a
depthwise convolution by SCALE-Sim's convention) is run once per input channel, as single-channel
convolutions named ``<name>Channel_<i>`` with the row's ``Num Filter`` filters each.

N:M sparsity (``SCALESIM_NM_TOTAL_CYCLES``): the same runs on the topologies with a Sparsity column
(``tests/data/scalesim/sparse/`` and SCALE-Sim's shipped ``topologies/sparsity/``), once with
``SparsitySupport: false`` and once with ``SparsitySupport: true`` (``SparseRep: ellpack_block``,
``OptimizedMapping: false``); "Stall Cycles" 0 in every row again. Regenerate with
``python bench/scalesim_compare.py --scalesim-python PATH --reference --sparse``.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from codesign.errors import CodesignError
from codesign.sim.config import AcceleratorConfig
from codesign.sim.engine import simulate_network
from codesign.sim.timing import scalesim_sparse_k
from codesign.workloads.scalesim_csv import read_topology

DATA = Path(__file__).resolve().parents[1] / "data" / "scalesim"

#: SCALE-Sim's layer rows (COMPUTE_REPORT.csv order) per topology.
SCALESIM_ROWS = {
    "alexnet.csv": ["Conv1", "Conv2", "Conv3", "Conv4", "Conv5"],
    "gemm_ragged.csv": ["g_100_37_53", "g_64_64_64", "g_1_1000_1024", "g_7_5_3", "g_33_17_129", "g_1_1_1"],
    "conv_odd.csv": ["s2_odd", "s3_ragged", "pw_1x1", "rect_3x1", "rect_1x5_s2", "rect_7x2_s4", "full_window"],
    "conv_extras.csv": ["sparse_2_4", "DPconv_dwChannel_0", "DPconv_dwChannel_1", "DPconv_dwChannel_2",
                        "DPconv_dwChannel_3"],
}

#: topology -> array (rows x cols) -> dataflow -> SCALE-Sim "Total Cycles" per row of SCALESIM_ROWS.
SCALESIM_TOTAL_CYCLES: dict[str, dict[str, dict[str, list[int]]]] = {
    "alexnet.csv": {
        "32x32": {
            "ws": [112283, 373799, 185759, 278639, 185759],
            "os": [121124, 334831, 113567, 168863, 112575],
            "is": [216599, 446249, 137663, 206495, 151199],
        },
    },
    "gemm_ragged.csv": {
        "8x8": {
            "ws": [4269, 5503, 367999, 28, 2804, 22],
            "os": [4354, 4991, 129749, 16, 2144, 14],
            "is": [5368, 5503, 130815, 26, 3314, 22],
        },
        "32x32": {
            "ws": [775, 631, 97279, 100, 634, 94],
            "os": [919, 503, 34751, 64, 381, 62],
            "is": [1047, 631, 35007, 98, 1109, 94],
        },
        "16x4": {
            "ws": [5359, 6271, 559999, 81, 3014, 34],
            "os": [4969, 5247, 260499, 41, 2204, 18],
            "is": [7099, 6271, 66175, 77, 4130, 34],
        },
    },
    "conv_odd.csv": {
        "8x8": {
            "ws": [281, 551, 3269, 671, 341, 335, 1149],
            "os": [235, 371, 3524, 767, 339, 251, 427],
            "is": [695, 593, 5124, 1151, 464, 419, 849],
        },
        "32x32": {
            "ws": [237, 235, 579, 183, 128, 113, 664],
            "os": [106, 109, 664, 239, 163, 89, 261],
            "is": [201, 209, 1581, 311, 205, 106, 741],
        },
        "16x4": {
            "ws": [353, 521, 3449, 743, 413, 431, 1364],
            "os": [251, 395, 3314, 647, 341, 367, 653],
            "is": [860, 809, 7790, 2023, 773, 469, 597],
        },
    },
    "conv_extras.csv": {
        "8x8": {
            "ws": [2195, 171, 171, 171, 171],
            "os": [2235, 183, 183, 183, 183],
            "is": [4445, 367, 367, 367, 367],
        },
        "32x32": {
            "ws": [581, 157, 157, 157, 157],
            "os": [535, 141, 141, 141, 141],
            "is": [1319, 189, 189, 189, 189],
        },
        "16x4": {
            "ws": [2679, 97, 97, 97, 97],
            "os": [2519, 107, 107, 107, 107],
            "is": [6249, 559, 559, 559, 559],
        },
    },
}

#: Topology rows where codesign is known to disagree with SCALE-Sim (remove an entry once fixed).
#: "DP" rows: SCALE-Sim (topology_utils.load_arrays_conv) runs a row whose name contains "DP" once
#: per channel with Channels=1 and the row's Num Filter F: C x GEMM(M=OH*OW, N=F, K=R*S), which is
#: Conv2d(in_channels=C, out_channels=C*F, groups=C). codesign's read_topology reads it as one dense
#: convolution, GEMM(M=OH*OW, N=F, K=R*S*C). E.g. DPconv_dw (10x10, 3x3, C=4, F=1) on 8x8 WS:
#: SCALE-Sim 4 x 171 = 684 cycles, codesign 429.
# (topology, layer) -> reason, for cases where codesign knowingly differs from SCALE-Sim (none now:
# 'DP' rows, SCALE-Sim's per-channel depthwise convolutions, are read as grouped convolutions)
KNOWN_DISAGREEMENTS: dict[tuple[str, str], str] = {}


def _source_layer(row_name: str) -> str:
    return re.sub(r"Channel_\d+$", "", row_name)


def _cases():
    for topo, arrays in SCALESIM_TOTAL_CYCLES.items():
        layers = list(dict.fromkeys(_source_layer(r) for r in SCALESIM_ROWS[topo]))
        for array, dataflows in arrays.items():
            for df in dataflows:
                for layer in layers:
                    marks = []
                    if (topo, layer) in KNOWN_DISAGREEMENTS:
                        marks.append(pytest.mark.xfail(strict=True, reason=KNOWN_DISAGREEMENTS[topo, layer]))
                    yield pytest.param(topo, array, df, layer, marks=marks,
                                       id=f"{topo.removesuffix('.csv')}-{array}-{df}-{layer}")


def _codesign_cycles(topo: str, array: str, df: str) -> dict[str, int]:
    rows, cols = map(int, array.split("x"))
    res = simulate_network(read_topology(DATA / topo), AcceleratorConfig(rows=rows, cols=cols, dataflow=df),
                           timing="scalesim")
    return {r.layer: r.cycles for r in res.layers}


def _scalesim_cycles(topo: str, array: str, df: str, layer: str) -> int:
    return sum(c for name, c in zip(SCALESIM_ROWS[topo], SCALESIM_TOTAL_CYCLES[topo][array][df], strict=True)
               if _source_layer(name) == layer)


def test_reference_table_is_complete() -> None:
    assert set(SCALESIM_ROWS) == {p.name for p in DATA.glob("*.csv")}
    for topo, arrays in SCALESIM_TOTAL_CYCLES.items():
        for array, dataflows in arrays.items():
            assert set(dataflows) == {"ws", "os", "is"}, (topo, array)
            for cycles in dataflows.values():
                assert len(cycles) == len(SCALESIM_ROWS[topo])
    # rows != cols is covered, and every topology has a reference run
    assert set(SCALESIM_TOTAL_CYCLES) == set(SCALESIM_ROWS)
    assert any("16x4" in arrays for arrays in SCALESIM_TOTAL_CYCLES.values())


@pytest.mark.parametrize("topo", sorted(SCALESIM_ROWS))
def test_topology_layers_as_scalesim_reads_them(topo: str) -> None:
    names = [layer.name for layer in read_topology(DATA / topo).layers]
    assert names == list(dict.fromkeys(_source_layer(r) for r in SCALESIM_ROWS[topo]))


@pytest.mark.parametrize(("topo", "array", "df", "layer"), list(_cases()))
def test_layer_cycles_equal_scalesim(topo: str, array: str, df: str, layer: str) -> None:
    # a layer codesign splits (e.g. per channel, SCALE-Sim's "<name>Channel_<i>") is summed back
    cs = sum(c for name, c in _codesign_cycles(topo, array, df).items() if _source_layer(name) == layer)
    assert cs == _scalesim_cycles(topo, array, df, layer)


@pytest.mark.e2e
def test_cli_cycles_column_equals_scalesim(tmp_path) -> None:
    out = tmp_path / "r.csv"
    p = subprocess.run([sys.executable, "-m", "codesign", "simulate", "--workload", str(DATA / "alexnet.csv"),
                        "--rows", "32", "--cols", "32", "--dataflow", "ws", "--timing", "scalesim", "--out", str(out)],
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    df = pd.read_csv(out)
    assert list(df.layer) == SCALESIM_ROWS["alexnet.csv"]
    assert list(df.cycles) == SCALESIM_TOTAL_CYCLES["alexnet.csv"]["32x32"]["ws"]


#: SCALE-Sim's own shipped topologies (tests/data/scalesim/topologies) in header variants codesign's
#: reader used to refuse: "Total Cycles" per row, 32x32 WS, same config and version as above.
SCALESIM_SHIPPED_TOTAL_CYCLES = {
    "GEMM_mnk/vit_s.csv": [20879, 21459, 21459, 167039, 167039],  # "Layer,M,N,K," header, CRLF
    "dlrm/dlrm_fwd.csv": [221, 3551, 56831, 56831, 3551, 117215, 56831, 56831],  # byte-order mark
    "deepbench/DeepBenchConv/OCR.csv": [22081, 26649, 22931, 23471],  # "IFMAP Width, IFMAP Width" typo
}


@pytest.mark.parametrize("topo", sorted(SCALESIM_SHIPPED_TOTAL_CYCLES))
def test_shipped_topology_cycles_equal_scalesim(topo: str) -> None:
    net = read_topology(DATA / "topologies" / topo)
    res = simulate_network(net, AcceleratorConfig(rows=32, cols=32, dataflow="ws"), timing="scalesim")
    assert [r.cycles for r in res.layers] == SCALESIM_SHIPPED_TOTAL_CYCLES[topo]


#: topology (under tests/data/scalesim) -> array -> dataflow -> SCALE-Sim "Total Cycles" per row with
#: (SparsitySupport false, SparsitySupport true); scalesim==3.0.0, see the module docstring.
SCALESIM_NM_TOTAL_CYCLES: dict[str, dict[str, dict[str, tuple[list[int], list[int]]]]] = {
    "sparse/nm_conv.csv": {
        "8x8": {
            "ws": ([113, 231, 371, 939, 2231, 75, 189], [75, 57, 309, 469, 557, 37, 189]),
            "os": ([63, 204, 235, 711, 1207, 45, 99], [47, 104, 191, 415, 343, 37, 99]),
            "is": ([167, 539, 371, 1279, 2447, 103, 289], [111, 134, 309, 639, 611, 51, 289]),
        },
        "32x32": {
            "ws": ([109, 129, 205, 356, 926, 109, 219], [109, 129, 205, 237, 308, 109, 219]),
            "os": ([79, 177, 106, 136, 349, 70, 97], [71, 137, 95, 99, 133, 66, 97]),
            "is": ([99, 197, 205, 311, 953, 97, 201], [99, 197, 205, 207, 317, 97, 201]),
        },
    },
    "sparse/nm_gemm.csv": {
        "8x8": {
            "ws": ([335, 464, 2804, 28, 2735], [167, 154, 1484, 28, 2051]),
            "os": ([263, 309, 2144, 16, 1403], [179, 189, 1184, 14, 1115]),
            "is": ([407, 371, 3314, 26, 1471], [203, 123, 1754, 26, 1103]),
        },
        "32x32": {
            "ws": ([113, 205, 634, 100, 659], [113, 205, 380, 100, 659]),
            "os": ([91, 157, 381, 64, 377], [77, 133, 253, 62, 329]),
            "is": ([105, 133, 1109, 98, 327], [105, 133, 665, 98, 327]),
        },
    },
    "topologies/sparsity/conv.csv": {
        "8x8": {
            "ws": ([92], [61]),
            "os": ([63], [47]),
            "is": ([167], [111]),
        },
        "32x32": {
            "ws": ([102], [102]),
            "os": ([79], [71]),
            "is": ([99], [99]),
        },
    },
    "topologies/sparsity/gemm.csv": {
        "8x8": {
            "ws": ([49, 45], [49, 22]),
            "os": ([29, 29], [25, 17]),
            "is": ([53, 53], [53, 26]),
        },
        "32x32": {
            "ws": ([96, 94], [96, 94]),
            "os": ([77, 77], [73, 65]),
            "is": ([98, 98], [98, 98]),
        },
    },
    "topologies/sparsity/alexnet_part.csv": {
        "32x32": {
            "ws": ([112283], [28070]),
            "os": ([121124], [43604]),
            "is": ([216599], [54149]),
        },
    },
}


def test_sparse_k_is_scalesims_compressed_length() -> None:
    # K' = floor(K/M)*N + min(K mod M, N): SCALE-Sim keeps the first N rows of every M of each filter
    # column, the last group cut at K (k27 1:4 -> 6 + 1; k45 3:4 -> 33 + 1; k9 2:4 -> 4 + 1; AlexNet
    # Conv1 K = 11*11*3 = 363 at 1:4 -> 90 + 1)
    cases = {(18, 2, 4): 10, (27, 1, 4): 7, (45, 3, 4): 34, (9, 2, 4): 5, (3, 1, 4): 1, (64, 3, 4): 48,
             (363, 1, 4): 91, (16, 4, 4): 16}
    assert {c: scalesim_sparse_k(*c) for c in cases} == cases
    with pytest.raises(CodesignError, match=r"^an n:m pattern needs 1 <= n <= m, not 5:4$"):
        scalesim_sparse_k(16, 5, 4)


def _nm_cases():
    for topo, arrays in SCALESIM_NM_TOTAL_CYCLES.items():
        for array, dataflows in arrays.items():
            for df in dataflows:
                yield pytest.param(topo, array, df, id=f"{Path(topo).stem}-{array}-{df}")


@pytest.mark.parametrize(("topo", "array", "df"), list(_nm_cases()))
def test_nm_sparsity_cycles_equal_scalesim(topo: str, array: str, df: str) -> None:
    dense, sparse = SCALESIM_NM_TOTAL_CYCLES[topo][array][df]
    rows, cols = map(int, array.split("x"))
    net = read_topology(DATA / topo)

    def cycles(zero_handling: str) -> list[int]:
        config = AcceleratorConfig(rows=rows, cols=cols, dataflow=df, zero_handling=zero_handling)
        return [r.cycles for r in simulate_network(net, config, timing="scalesim").layers]

    # --zero-handling skip is SCALE-Sim with SparsitySupport on; none and gate (zeros still take
    # their cycle) are SCALE-Sim with it off
    assert cycles("skip") == sparse
    assert cycles("none") == cycles("gate") == dense


def test_nm_sparsity_needs_an_nm_pattern(tmp_path) -> None:
    # SCALE-Sim compresses N:M filters only; an unstructured density keeps the dense cycles
    # (g20_12_30 on 8x8 WS: 335 dense, 167 at 2:4 as SCALE-Sim runs it above)
    f = tmp_path / "t.csv"
    f.write_text("Layer name, M, N, K, Sparsity,\ng_nm, 20, 12, 30, 2:4,\ng_density, 20, 12, 30, 0.5,\n")
    config = AcceleratorConfig(rows=8, cols=8, dataflow="ws", zero_handling="skip")
    res = simulate_network(read_topology(f), config, timing="scalesim")
    assert [r.cycles for r in res.layers] == [167, 335]


@pytest.mark.e2e
def test_cli_zero_handling_skip_equals_scalesim_sparse(tmp_path) -> None:
    out = tmp_path / "r.csv"
    topo = DATA / "topologies" / "sparsity" / "gemm.csv"
    p = subprocess.run([sys.executable, "-m", "codesign", "simulate", "--workload", str(topo), "--rows", "8",
                        "--cols", "8", "--dataflow", "os", "--timing", "scalesim", "--zero-handling", "skip",
                        "--out", str(out)], capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    df = pd.read_csv(out)
    # SCALE-Sim's file repeats the name GEMM_1; codesign suffixes the second
    assert list(df.layer) == ["GEMM_1", "GEMM_1_2"]
    assert list(df.cycles) == SCALESIM_NM_TOTAL_CYCLES["topologies/sparsity/gemm.csv"]["8x8"]["os"][1] == [25, 17]
