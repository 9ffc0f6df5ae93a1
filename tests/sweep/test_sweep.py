"""Sweeps: table layout, equality with the simulator, worker-count and Dask independence, resume."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from codesign.errors import ConfigError
from codesign.pareto import pareto_mask
from codesign.sim.engine import simulate_network
from codesign.space import DesignSpace
from codesign.sweeps import engine_name, journal_path, read_results, sweep

from .conftest import SMALL_SPACE, run_cli

SPACE = DesignSpace.from_dict(__import__("yaml").safe_load(SMALL_SPACE))


@pytest.fixture(scope="module")
def reference() -> pd.DataFrame:
    return sweep(SPACE, workers=1)


def test_table_layout(reference: pd.DataFrame) -> None:
    df = reference
    assert len(df) == 32  # 32 feasible points (see test_space) x 1 workload
    assert list(df.columns[:6]) == ["point", "workload", "dataflow", "rows", "cols", "weight_bits"]
    for col in ("cycles", "latency_ms", "energy_pj", "edp", "area_mm2", "utilization", "pareto",
                "peak_dram_bytes_per_cycle", "energy_dram_pj", "energy_mac_pj", "energy_leakage_pj"):
        assert col in df.columns, col
    assert df["point"].is_monotonic_increasing and df["point"].is_unique
    assert (df["rows"] * df["cols"] <= 128).all()
    assert set(df["dataflow"]) == {"ws", "os"}
    # units: latency_ms = cycles / (200 MHz * 1e3); edp = energy_pj * cycles
    assert np.allclose(df["latency_ms"], df["cycles"] / 200e3, rtol=0, atol=0)
    assert np.array_equal(df["edp"], df["energy_pj"] * df["cycles"])
    parts = df[[c for c in df.columns if c.startswith("energy_") and c.endswith("_pj") and c != "energy_pj"]]
    assert np.allclose(parts.sum(axis=1), df["energy_pj"], rtol=1e-12)
    # the pareto column is exactly the front of (latency_ms, energy_pj)
    expected = pareto_mask(df[["latency_ms", "energy_pj"]].to_numpy())
    assert df["pareto"].tolist() == expected.tolist() and expected.any()


def test_rows_equal_the_simulator(reference: pd.DataFrame) -> None:
    from codesign.sim.cost import area_mm2

    net = SPACE.load_workloads()["ds_cnn_kws"]
    for point in (0, 17, 31):
        row = reference[reference["point"] == reference["point"].iloc[point]].iloc[0]
        cfg = SPACE.config(int(row["point"]))
        r = simulate_network(net, cfg, engine=engine_name("analytic"))
        assert row["cycles"] == r.cycles
        assert row["energy_pj"] == r.energy_pj  # same summation order: exactly equal
        assert row["utilization"] == r.utilization
        assert row["peak_dram_bytes_per_cycle"] == r.peak_dram_bytes_per_cycle
        assert row["area_mm2"] == area_mm2(cfg)


def test_two_workers_identical(reference: pd.DataFrame) -> None:
    df = sweep(SPACE, workers=2, chunk_size=3)
    pd.testing.assert_frame_equal(df, reference)


def test_dask_local_cluster_identical(reference: pd.DataFrame) -> None:
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=":0") \
            as cluster, distributed.Client(cluster) as client:
        by_client = sweep(SPACE, scheduler=client, chunk_size=5)
        by_address = sweep(SPACE, scheduler=cluster.scheduler_address, chunk_size=7)
    pd.testing.assert_frame_equal(by_client, reference)
    pd.testing.assert_frame_equal(by_address, reference)


def test_sample_subset_of_full(reference: pd.DataFrame) -> None:
    df = sweep(SPACE, workers=1, sample=10, seed=5)
    assert len(df) == 10
    full = reference.set_index("point").drop(columns="pareto")
    part = df.set_index("point").drop(columns="pareto")
    pd.testing.assert_frame_equal(part, full.loc[part.index])


def test_two_workloads_and_three_metric_front(tmp_path: Path) -> None:
    space = SPACE.with_(workloads=("ds_cnn_kws", {"name": "ds_cnn_kws", "preset": "w4a8", "sparsity": "2:4"}),
                        pareto=("latency_ms", "energy_pj", "area_mm2"))
    df = sweep(space, workers=1, output=tmp_path / "r.parquet")
    assert len(df) == 64 and df["workload"].tolist()[:2] == ["ds_cnn_kws", "ds_cnn_kws[w4a8,2:4]"]
    for _, rows in df.groupby("workload"):  # one front per workload
        assert rows["pareto"].tolist() == pareto_mask(rows[["latency_ms", "energy_pj", "area_mm2"]]).tolist()
    back = read_results(tmp_path / "r.parquet")
    pd.testing.assert_frame_equal(back, df)
    assert back.attrs["codesign"]["pareto"] == ["latency_ms", "energy_pj", "area_mm2"]


def test_resume_after_interruption(tmp_path: Path, reference: pd.DataFrame) -> None:
    out = tmp_path / "r.parquet"

    class Stop(Exception):
        pass

    def stop_after_two(done: int, total: int) -> None:
        if done >= 8:
            raise Stop

    with pytest.raises(Stop):
        sweep(SPACE, workers=1, output=out, chunk_size=4, on_chunk=stop_after_two)
    journal = journal_path(out)
    assert not out.exists()
    lines = journal.read_text().splitlines()
    assert len(lines) == 1 + 8  # header + one line per finished point
    # a sweep killed mid-write leaves a torn last line: it must be ignored
    with open(journal, "a") as fh:
        fh.write('{"point": 31, "rows": [{"point": 31, "cyc')
    # without resume, the journal is never overwritten
    with pytest.raises(ConfigError, match=r"^r\.parquet\.journal holds an interrupted sweep; add --resume"):
        sweep(SPACE, workers=1, output=out)
    df = sweep(SPACE, workers=2, output=out, resume=True)
    assert df.attrs["codesign"]["resumed_points"] == 8
    assert df.attrs["codesign"]["evaluated_points"] == 32 - 8
    pd.testing.assert_frame_equal(df, reference)
    assert not journal.exists()
    pd.testing.assert_frame_equal(read_results(out), reference)
    # resuming a finished sweep evaluates nothing
    again = sweep(SPACE, workers=1, output=out, resume=True)
    assert again.attrs["codesign"]["evaluated_points"] == 0
    pd.testing.assert_frame_equal(again, reference)


def test_journal_of_another_space_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "r.parquet"
    other = SPACE.with_(axes={**SPACE.axes, "rows": (4, 8)})
    journal_path(out).write_text(json.dumps({"journal": "codesign.sweep", "version": 1,
                                             "fingerprint": other.fingerprint(), "space": {}}) + "\n")
    with pytest.raises(ConfigError, match=r"^r\.parquet\.journal was written for a different design space"):
        sweep(SPACE, workers=1, output=out, resume=True)
    assert journal_path(out).exists()


@pytest.mark.e2e
def test_cli_sweep_issue_example(tmp_path: Path) -> None:
    (tmp_path / "space.yaml").write_text(SMALL_SPACE)
    r = run_cli("sweep", "space.yaml", "-o", "results.parquet", "--workers", "2", "--pareto",
                "latency_ms,energy_pj,area_mm2", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "32/32" in r.stderr and "points/s" in r.stderr and "ETA" in r.stderr  # the progress bar
    df = pd.read_parquet(tmp_path / "results.parquet")
    assert len(df) == 32
    assert df["pareto"].tolist() == pareto_mask(df[["latency_ms", "energy_pj", "area_mm2"]]).tolist()
    assert "wrote results.parquet" in r.stderr.splitlines()[-1]


def test_codesign_sweep_is_the_function_and_codesign_sweeps_the_package() -> None:
    """The function and the package have different names: importing the package does not change
    what ``codesign.sweep`` is (no module-class swap)."""
    import types

    import codesign
    import codesign.sweeps as package

    space = {"workloads": ["ds_cnn_kws"], "axes": {"rows": [4, 8]}}
    assert isinstance(package, types.ModuleType) and type(package) is types.ModuleType
    assert codesign.sweep is package.sweep and not isinstance(codesign.sweep, types.ModuleType)
    assert len(codesign.sweep(space, workers=1)) == 2  # 2 points x 1 workload
