"""The co-design loop closed: a sweep with model-only points, its front over buildable points, a row
turned back into a config file that simulate reproduces and generate judges."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import yaml

from codesign.sweeps import read_results

from .conftest import run_cli

# Bitmask skipping, and skipping on OS or IS, are simulated but not built (model-only); WS with 2:4
# skipping and every dataflow with gating (requantized: built on WS, OS and IS) are built. DS-CNN
# pruned 2:4 so skipping pays.
SPACE = """\
workloads:
  - {name: ds_cnn_kws, sparsity: "2:4"}
base: {rows: 8, cols: 8, requantize: true}
axes:
  dataflow: [ws, os, is]
  zero_handling: [gate, skip]
  skip_pattern: ["2:4", bitmask]
"""


@pytest.fixture(scope="module")
def swept(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, pd.DataFrame]:
    d = tmp_path_factory.mktemp("loop")
    (d / "space.yaml").write_text(SPACE)
    r = run_cli("sweep", "space.yaml", "-o", "results.csv", "--workers", "1", "--no-progress", cwd=d)
    assert r.returncode == 0, r.stderr
    assert "over buildable points" in r.stderr
    return d, read_results(d / "results.csv")


def test_front_is_over_buildable_points(swept: tuple[Path, pd.DataFrame]) -> None:
    d, df = swept
    assert len(df) == 12 and df["buildable"].dtype == bool
    # model-only: ws with bitmask skipping (1), os and is with any skipping (n:m skipping is built on
    # ws only: 2 + 2); 5 of 12. Gating points are built on every dataflow (skip_pattern unused: 2 each)
    mo = df[~df["buildable"]]
    assert len(mo) == 1 + 2 + 2
    assert set(mo["dataflow"]) == {"is", "ws", "os"} and (mo["zero_handling"] == "skip").all()
    assert df.loc[df["zero_handling"] == "gate", "buildable"].all()
    assert df["pareto"].any() and df.loc[df["pareto"], "buildable"].all()
    # ranked over every point, a model-only design is on the front (that is what the issue saw)
    every = run_cli("sweep", "space.yaml", "-o", "every.csv", "--workers", "1", "--no-progress",
                    "--include-model-only", cwd=d)
    assert every.returncode == 0, every.stderr
    all_df = read_results(d / "every.csv")
    assert not all_df.loc[all_df["pareto"], "buildable"].all()
    # same rows, only the front differs
    assert all_df.drop(columns="pareto").equals(df.drop(columns="pareto"))


def test_csv_carries_its_space(swept: tuple[Path, pd.DataFrame]) -> None:
    d, df = swept
    first = (d / "results.csv").read_text().split("\n", 1)[0]
    assert first.startswith("#codesign.sweep {")
    space = df.attrs["codesign"]["space"]
    assert space["base"] == {"rows": 8, "cols": 8, "requantize": True}
    # DRAM bytes are a column, and a positive count on every row
    assert (df["dram_bytes"] > 0).all()


def test_config_of_a_row_reproduces_its_cycles(swept: tuple[Path, pd.DataFrame]) -> None:
    d, df = swept
    for _, row in df[df["pareto"] | ~df["buildable"]].head(4).iterrows():
        n = int(row["point"])
        r = run_cli("config", "results.csv", "--point", str(n), "-o", f"p{n}.yaml", cwd=d)
        assert r.returncode == 0, r.stderr
        cfg = yaml.safe_load((d / f"p{n}.yaml").read_text())
        assert cfg["requantize"] is True and cfg["dataflow"] == row["dataflow"]
        assert cfg["rows"] == 8 and cfg["skip_pattern"] == row["skip_pattern"]
        sim = run_cli("simulate", "-w", "ds_cnn_kws", "--sparsity", "2:4", "--config", f"p{n}.yaml",
                      "--out", f"r{n}.json", "-q", cwd=d)
        assert sim.returncode == 0, sim.stderr
        summary = json.loads((d / f"r{n}.json").read_text())["summary"]
        # the row's numbers exactly: the sweep's closed-form twin equals the SimPy engine
        assert summary["cycles"] == row["cycles"]
        assert summary["dram_bytes"] == row["dram_bytes"]
        assert summary["buildable"] == bool(row["buildable"])


def test_config_to_stdout_and_bad_points(swept: tuple[Path, pd.DataFrame]) -> None:
    d, _ = swept
    r = run_cli("config", "results.csv", "--point", "0", cwd=d)
    assert r.returncode == 0 and r.stdout.startswith("# point 0 of results.csv\n")
    assert yaml.safe_load(r.stdout)["dataflow"] == "ws"
    # the command that gives the row's numbers again, with the workload's compression flags
    assert "\n#   reproduce: codesign simulate -w ds_cnn_kws --sparsity 2:4 --config THIS.yaml\n" in r.stdout
    r = run_cli("config", "results.csv", "--point", "99", cwd=d)
    assert (r.returncode, r.stderr) == (2, "codesign config: error: point must be a point id of results.csv "
                                           "(12 points, from 0 to 11), not 99\n")
    r = run_cli("config", "results.csv", "--point", "-1", cwd=d)
    assert r.returncode == 2 and "--point: must be a non-negative integer, not '-1'" in r.stderr
    r = run_cli("config", "results.csv", "--point", "0", "-o", "p.txt", cwd=d)
    assert (r.returncode, r.stderr) == (2, "codesign config: error: --out must end in .yaml or .yml, not 'p.txt'\n")
    (d / "plain.csv").write_text("point,workload,cycles\n0,x,1\n")
    r = run_cli("config", "plain.csv", "--point", "0", cwd=d)
    assert r.returncode == 2 and "plain.csv does not carry its design space" in r.stderr


def test_generate_refuses_a_model_only_row(swept: tuple[Path, pd.DataFrame]) -> None:
    pytest.importorskip("amaranth")
    d, df = swept
    n = int(df[(df["dataflow"] == "is") & (df["zero_handling"] == "skip")].iloc[0]["point"])
    assert run_cli("config", "results.csv", "--point", str(n), "-o", "is.yaml", cwd=d).returncode == 0
    r = run_cli("generate", "--config", "is.yaml", "-o", "rtl", cwd=d)
    assert r.returncode == 2
    assert "dataflow must be ws for zero_handling skip in the generated hardware" in r.stderr
