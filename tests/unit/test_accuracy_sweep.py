"""Accuracy as a sweep metric and Pareto axis (maximized), and its report figure."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from codesign.accuracy import accuracy, sweep_accuracy
from codesign.errors import ConfigError, WorkloadError
from codesign.pareto import mark_pareto
from codesign.sim.config import AcceleratorConfig
from codesign.sweeps import sweep
from codesign.workloads import zoo

pytest.importorskip("sklearn")

SPACE = {
    "workloads": ["digits_cnn", {"name": "digits_cnn", "sparsity": "2:4"}],
    "base": {"rows": 8, "cols": 8},
    "axes": {"weight_bits": [8, 3], "act_bits": [8, 4]},
    "pareto": ["latency_ms", "energy_pj", "accuracy"],
    "clip_bits": True,  # the 8-bit trained network quantized to the 3- and 4-bit arrays' bits
}


def test_accuracy_column_equals_codesign_accuracy_for_any_worker_count() -> None:
    one = sweep(SPACE, workers=1)
    two = sweep(SPACE, workers=2)
    assert one["accuracy"].tolist() == two["accuracy"].tolist()
    assert one["pareto"].tolist() == two["pareto"].tolist()
    for row in one.itertuples():
        sp = "2:4" if row.workload == "digits_cnn[2:4]" else None
        want = accuracy("digits_cnn", AcceleratorConfig(rows=8, cols=8, weight_bits=row.weight_bits,
                                                        act_bits=row.act_bits), sparsity=sp, simulate=False)
        assert row.accuracy == want.accuracy
    dense = one[one["workload"] == "digits_cnn"].set_index(["weight_bits", "act_bits"])["accuracy"]
    assert dense[(3, 4)] < dense[(8, 8)]


def test_the_front_keeps_the_most_accurate_of_equal_designs() -> None:
    df = pd.DataFrame({"workload": ["w"] * 3, "latency_ms": [1.0, 1.0, 2.0], "energy_pj": [5.0, 5.0, 4.0],
                       "accuracy": [0.9, 0.5, 0.4]})
    # row 1 ties row 0 on cost and is less accurate; row 2 is cheaper in energy: it stays
    assert mark_pareto(df, ["latency_ms", "energy_pj", "accuracy"]).tolist() == [True, False, True]


def test_accuracy_needs_trained_weights() -> None:
    space = {**SPACE, "workloads": ["resnet8_cifar"]}
    with pytest.raises(WorkloadError, match=r"^pareto metric 'accuracy' needs trained weights; workload"):
        sweep(space, workers=1)


def test_undefined_points_are_nan() -> None:
    net = zoo.get("digits_cnn")
    assert math.isnan(sweep_accuracy(net, AcceleratorConfig(weight_bits=1)))
    assert math.isnan(sweep_accuracy(net, AcceleratorConfig(weight_signed=False)))


def test_unknown_metric_still_rejected() -> None:
    with pytest.raises(ConfigError, match=r"pareto metrics must be among"):
        sweep({**SPACE, "pareto": ["latency_ms", "top1"]}, workers=1)


def test_report_draws_accuracy_vs_energy(tmp_path) -> None:
    pytest.importorskip("matplotlib")
    from codesign.report import sweep_report

    df = sweep(SPACE, workers=1)
    sweep_report(df, tmp_path)
    assert (tmp_path / "accuracy_energy.png").stat().st_size > 0
    assert 'id="fig-accuracy_energy"' in (tmp_path / "index.html").read_text()
