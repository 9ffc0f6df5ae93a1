"""Flags change the result or are refused; presets and labels agree; one engine name; defaults in
--help; short reprs; sweeps of in-memory networks; tables that keep numbers whole."""

from __future__ import annotations

import io
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

import codesign
from codesign.cli import main
from codesign.workloads import presets, zoo

pytestmark = pytest.mark.e2e


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = main(list(argv))
    out = capsys.readouterr()
    return status, out.out, out.err


def test_preset_sizes_the_array_and_the_label_says_so(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = cli(capsys, "simulate", "-w", "resnet18", "--preset", "w4a8", "-q")
    assert status == 0 and err == ""
    assert out.splitlines()[0] == "resnet18 (batch 1) on 16x16 WS, W4A8, 200 MHz, timing native"
    net = presets.apply(zoo.get("resnet18"), preset="w4a8")
    expected = codesign.simulate(net, codesign.AcceleratorConfig(weight_bits=4, act_bits=8))
    assert f"cycles {expected.cycles:,} " in out  # the W4A8 array, not the default W8A8 one
    dense = codesign.simulate("resnet18")
    assert expected.energy_pj < dense.energy_pj  # 4-bit weights: less data moved, smaller multipliers


def test_preset_on_an_explicit_array_is_labelled_both_ways(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = cli(capsys, "simulate", "-w", "resnet18", "--preset", "w4a8", "--weight-bits", "8", "-q")
    assert status == 0
    assert out.splitlines()[0] == "resnet18 (batch 1) on 16x16 WS, W8A8 array, workload W4A8, 200 MHz, timing native"
    assert err.startswith("codesign simulate: note: the workload is W4A8, the array W8A8") and err.count("\n") == 1


def test_sparsity_changes_the_result_once_zeros_are_handled(capsys: pytest.CaptureFixture[str]) -> None:
    status, _, err = cli(capsys, "simulate", "-w", "resnet18", "--sparsity", "2:4", "-q")
    assert status == 2 and "has no effect with zero_handling none" in err
    outs = {}
    for zh in ("gate", "skip"):
        for sparsity in ((), ("--sparsity", "2:4")):
            status, out, _ = cli(capsys, "simulate", "-w", "resnet18", "--zero-handling", zh, *sparsity, "-q")
            assert status == 0
            outs[zh, bool(sparsity)] = re.search(r"cycles ([\d,]+) .* energy ([\d,.]+) uJ", out).groups()  # type: ignore[union-attr]
    assert outs["gate", True][1] != outs["gate", False][1]  # gating 2:4 zeros saves energy
    assert outs["gate", True][0] == outs["gate", False][0]  # ... not cycles
    assert outs["skip", True][0] != outs["skip", False][0]  # skipping them saves cycles


def test_one_engine_name_analytic_is_an_alias(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    a = cli(capsys, "simulate", "-w", "ds_cnn_kws", "--engine", "closed_form", "-q")
    b = cli(capsys, "simulate", "-w", "ds_cnn_kws", "--engine", "analytic", "-q")
    assert a == b and a[0] == 0
    space = tmp_path / "s.yaml"
    space.write_text("workloads: [ds_cnn_kws]\nengine: analytic\naxes: {rows: [4, 8]}\n")
    from codesign.space import DesignSpace

    sp = DesignSpace.from_yaml(space)
    assert sp.engine == "closed_form" and sp.to_dict()["engine"] == "closed_form"
    for engine in ("analytic", "closed_form"):
        assert cli(capsys, "sweep", str(space), "-o", str(tmp_path / f"{engine}.parquet"), "--engine", engine,
                   "--no-progress", "--workers", "1")[0] == 0
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "analytic.parquet"),
                                  pd.read_parquet(tmp_path / "closed_form.parquet"))


def test_help_shows_defaults() -> None:
    text = subprocess.run([sys.executable, "-m", "codesign", "simulate", "--help"], capture_output=True, text=True,
                          env={"COLUMNS": "200", "PATH": ""}, timeout=120).stdout
    assert "--rows ROWS           PE array rows (default: 16)" in text
    assert "(default: native)" in text and "(default: horowitz45)" in text and "(default: ws)" in text
    sweep = subprocess.run([sys.executable, "-m", "codesign", "sweep", "--help"], capture_output=True, text=True,
                           env={"COLUMNS": "200", "PATH": ""}, timeout=120).stdout
    assert "(default: results.parquet)" in sweep and "--engine {closed_form,simpy}" in sweep


def test_workload_without_action_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = cli(capsys, "workload")
    assert (status, out) == (2, "")
    assert err == "codesign workload: error: an action is required: show (e.g. codesign workload show resnet18)\n"


def test_short_reprs() -> None:
    r = codesign.simulate("resnet50")
    text = repr(r)
    assert text.startswith("NetworkResult('resnet50', batch 1, 16x16 WS W8A8 at 200 MHz, timing native: 72 layers, ")
    assert f"{r.cycles:,} cycles" in text and len(text) < 250  # one line, was 100 KB
    html = r._repr_html_()
    assert len(html) < 5000 and html.count("<tr>") == 1 + 10  # header + the ten slowest layers
    assert repr(r.layers[0]).startswith("LayerResult('conv1', conv, M,N,K 12544,64,147 x1: ")


def test_sweep_of_in_memory_networks() -> None:
    space = {"workloads": ["ds_cnn_kws"], "axes": {"rows": [4, 8], "dataflow": ["ws", "os"]}}
    by_name = codesign.sweep(space, workers=1)
    net = zoo.get("ds_cnn_kws")
    in_memory = codesign.sweep(space, workloads=[net], workers=1)
    pd.testing.assert_frame_equal(in_memory, by_name)  # same network, same numbers, same label
    # an edited network (not in the zoo, not in a file) on two pool workers
    small = net.with_layers(net.layers[:3]).with_batch(2)
    df = codesign.sweep(space, workloads=[small], workers=2)
    assert len(df) == 4 and set(df["workload"]) == {"ds_cnn_kws"}
    for row in df.itertuples():
        cfg = codesign.AcceleratorConfig(rows=row.rows, dataflow=row.dataflow)
        assert row.cycles == codesign.simulate(small, cfg).cycles


def test_tables_keep_numbers_whole() -> None:
    from rich.console import Console

    from codesign.cli.simulate import TABLE_COLUMNS, _fmt, print_table

    r = codesign.simulate("mobilenet_v2")
    rows = [[_fmt(v) for v in row] for row in r.to_dataframe()[TABLE_COLUMNS].itertuples(index=False)]
    for width in (60, 100, 160):
        buf = io.StringIO()
        console = Console(file=buf, force_terminal=True, width=width, color_system=None)
        print_table(console, "t", TABLE_COLUMNS, rows, text_columns=("layer", "type"))
        text = buf.getvalue()
        assert max(len(line) for line in text.splitlines()) <= width
        cells = {c.strip() for line in text.splitlines() for c in line.split("│")}
        for row in rows:
            for value in row[2:]:  # every number appears whole in one cell
                assert value in cells, (width, value)


def test_piped_simulate_table_is_not_cut() -> None:
    p = subprocess.run([sys.executable, "-m", "codesign", "simulate", "-w", "mobilenet_v2"], capture_output=True,
                       text=True, env={"COLUMNS": "80", "PATH": ""}, timeout=300)
    assert p.returncode == 0, p.stderr
    r = codesign.simulate("mobilenet_v2")
    for layer in r.layers:
        assert f"{layer.energy_pj:,.0f}" in p.stdout and f"{layer.cycles:,}" in p.stdout
    assert "…" not in p.stdout


def test_yaml_matmul_by_operand_shapes(tmp_path: Path) -> None:
    from codesign.workloads.yaml_io import read_network_yaml

    f = tmp_path / "attn.yaml"
    f.write_text("layers:\n  - {type: matmul, name: qk, a_shape: [64, 32], b_shape: [32, 128], heads: 4}\n")
    layer = read_network_yaml(f).layers[0]
    assert (layer.m, layer.k, layer.n, layer.heads) == (64, 32, 128, 4)
    assert layer.macs(1) == 64 * 32 * 128 * 4


def test_no_pool_writeback_runs_the_pool_alone(capsys: pytest.CaptureFixture[str]) -> None:
    """ResNet-18 on 32x32: by default the max pool runs in the stem's write-back, so the stem's 802,816-byte
    output (64 x 112 x 112 bytes) is never written and the pool's 896,512 bytes never read; the flag puts the
    pool back on the depthwise engine."""
    runs = {}
    for flags in ((), ("--no-pool-writeback",)):
        status, out, err = cli(capsys, "simulate", "-w", "resnet18", "--rows", "32", "--cols", "32", *flags, "-q")
        assert status == 0 and err == ""
        m = re.search(r"cycles ([\d,]+) .*DRAM traffic [\d.]+ MB: read ([\d,]+) bytes, written ([\d,]+) bytes", out,
                      re.S)
        assert m is not None
        runs[bool(flags)] = [int(g.replace(",", "")) for g in m.groups()]
    (c_fused, r_fused, w_fused), (c_alone, r_alone, w_alone) = runs[False], runs[True]
    assert w_alone - w_fused == 802_816 and r_alone - r_fused == 896_512
    assert c_fused < c_alone


def test_no_residency_sends_the_maps_to_dram(capsys: pytest.CaptureFixture[str]) -> None:
    """DS-CNN on 8x8: by default 9 outputs stay in the input buffer (the summary says so); each of the 8 conv
    layers' kept maps would be written (16,000 bytes: 1,000 words at 16-byte beats) and read back, and the
    pooled vector read by fc (128 bytes): ``--no-residency`` moves 8 x 2 x 16,000 + 2 x 128 bytes more."""
    runs = {}
    for flags in ((), ("--no-residency",)):
        status, out, err = cli(capsys, "simulate", "-w", "ds_cnn_kws", "--rows", "8", "--cols", "8", *flags, "-q")
        assert status == 0 and err == ""
        m = re.search(r"DRAM traffic [\d.]+ MB: read ([\d,]+) bytes, written ([\d,]+) bytes", out)
        assert m is not None
        runs[bool(flags)] = (sum(int(g.replace(",", "")) for g in m.groups()), out)
    assert runs[True][0] - runs[False][0] == 8 * 2 * 16_000 + 2 * 128
    assert "on chip: 9 layer outputs kept in the input buffer" in runs[False][1]
    assert "on chip:" not in runs[True][1]
