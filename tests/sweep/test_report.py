"""Reports: plots and index.html from sweep tables (real and hand-made) and simulate results."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pytest

from codesign.errors import ConfigError
from codesign.report import choose_point, report
from codesign.space import DesignSpace
from codesign.sweeps import sweep

from .conftest import SMALL_SPACE, run_cli

PNG = b"\x89PNG\r\n\x1a\n"


def _images(index: Path) -> list[str]:
    return re.findall(r'<img src="([^"]+)"', index.read_text())


def test_report_on_a_hand_made_table(tmp_path: Path) -> None:
    # a CSV table without the space: Pareto scatter, breakdown and table, no re-simulation
    df = pd.DataFrame({
        "point": [0, 1, 2, 3, 4],
        "workload": ["net"] * 5,
        "dataflow": ["ws", "os", "ws", "os", "ws"],
        "weight_bits": [4, 4, 8, 8, 8],
        "latency_ms": [1.0, 2.0, 1.0, 3.0, 0.5],
        "energy_pj": [5e6, 1e6, 4e6, 2e6, 9e6],
        "edp": [1.0, 1.0, 1.0, 1.0, 1.0],
        "energy_mac_pj": [1e6, 5e5, 2e6, 1e6, 3e6],
        "energy_dram_pj": [4e6, 5e5, 2e6, 1e6, 6e6],
    })
    df.to_csv(tmp_path / "t.csv", index=False)
    index = report(tmp_path / "t.csv", tmp_path / "out")
    text = index.read_text()
    # front of (latency, energy): #4 (0.5 ms), #2 (1 ms, 4 uJ; beats #0), #1 (2 ms, 1 uJ); #3 is beaten by #1
    table = re.search(r'<table id="pareto-net" class="pareto">(.*?)</table>', text, re.S)
    assert table is not None
    assert re.findall(r"<tr><td>(\d+)</td>", table.group(1)) == ["4", "2", "1"]
    assert "3 of 5 points are on the Pareto front" in text
    assert "cannot be re-simulated" in text
    for img in _images(index):
        assert (tmp_path / "out" / img).read_bytes().startswith(PNG)
        assert (tmp_path / "out" / img.replace(".png", ".svg")).read_text().lstrip().startswith("<?xml")
    assert _images(index) == ["pareto_net.png", "breakdown_net.png"]


def test_choose_point_least_edp_on_front() -> None:
    df = pd.DataFrame({"point": [0, 1, 2], "workload": ["w"] * 3, "edp": [3.0, 1.0, 2.0],
                       "pareto": [True, False, True]})
    assert choose_point(df, "w") == 2  # #1 has less EDP but is not on the front


@pytest.fixture(scope="module")
def sweep_table(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("sweep") / "results.parquet"
    sweep(DesignSpace.from_dict(__import__("yaml").safe_load(SMALL_SPACE)), workers=1, output=out)
    return out


def test_sweep_report_with_chosen_point(sweep_table: Path, tmp_path: Path) -> None:
    index = report(sweep_table, tmp_path, point=5)
    text = index.read_text()
    assert _images(index) == ["pareto_ds_cnn_kws.png", "breakdown_ds_cnn_kws.png", "layers_latency.png",
                              "layers_energy.png", "roofline.png"]
    assert 'id="pareto-ds_cnn_kws"' in text and "Chosen design: point #5 on ds_cnn_kws" in text
    for img in _images(index):
        assert (tmp_path / img).stat().st_size > 5000


def test_sweep_report_bad_point(sweep_table: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"^point must be a point id of workload 'ds_cnn_kws' in results\.parquet, "
                                          r"not 35$"):
        report(sweep_table, tmp_path, point=35)  # 16x16 = 256 PEs: excluded by max_pes


@pytest.mark.e2e
def test_simulate_json_report_cli(tmp_path: Path) -> None:
    r = run_cli("simulate", "--workload", "ds_cnn_kws", "--out", "r.json", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    r = run_cli("report", "r.json", "-o", "rep", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    index = tmp_path / "rep" / "index.html"
    assert _images(index) == ["layers_latency.png", "layers_energy.png", "roofline.png", "energy_breakdown.png"]
    summary = json.loads((tmp_path / "r.json").read_text())["summary"]
    assert f"{summary['cycles']:,}" in index.read_text()


@pytest.mark.e2e
def test_report_cli_errors(tmp_path: Path) -> None:
    r = run_cli("report", "missing.parquet", "-o", "rep", cwd=tmp_path)
    assert (r.returncode, r.stderr) == (2, "codesign report: error: report source 'missing.parquet' does not exist\n")
    (tmp_path / "x.txt").write_text("hello")
    r = run_cli("report", "x.txt", cwd=tmp_path)
    assert r.returncode == 2
    assert r.stderr == ("codesign report: error: report source must be a .parquet/.csv sweep table or a .json "
                        "simulate result, not 'x.txt'\n")


def test_report_of_a_124_layer_network_is_grouped_by_block(tmp_path: Path) -> None:
    import codesign
    from codesign.cli.simulate import write_result

    result = codesign.simulate("efficientnet_b0")
    assert len(result.layers) == 124
    write_result(result, tmp_path / "r.json")
    index = report(tmp_path / "r.json", tmp_path / "rep")
    text = index.read_text()
    # conv_stem, block0..block15, conv_head, avgpool, classifier: 20 bars instead of 124 labels
    assert "124 layers grouped into 20 blocks" in text
    assert f"{result.cycles:,} cycles" in text  # the grouped bars still add up to the network
    assert '<table id="config" class="meta fields">' in text  # one field per row: fits the page


def test_group_layers_keeps_totals_and_falls_back_to_top_layers() -> None:
    from codesign.report import MAX_LAYER_BARS, TOP_LAYERS, group_layers

    flat = pd.DataFrame({"layer": [f"l{i}" for i in range(100)], "type": ["conv"] * 100,
                         "cycles": list(range(100)), "compute_cycles": list(range(100))})
    g, note = group_layers(flat)
    # no dotted blocks: the 40 slowest layers (cycles 60..99) in network order, then one bar for 60 others
    assert len(g) == TOP_LAYERS + 1 and list(g["layer"][:2]) == ["l60", "l61"]
    assert g["layer"].iloc[-1] == "other (60 layers)" and g["cycles"].iloc[-1] == sum(range(60))
    assert g["cycles"].sum() == flat["cycles"].sum() and note.startswith("the 40 of 100 layers")
    small = flat.head(MAX_LAYER_BARS)
    assert group_layers(small)[0] is small  # up to 60 layers: every layer its own bar
