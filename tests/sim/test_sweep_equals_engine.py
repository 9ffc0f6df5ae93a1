"""The sweep's fast path (closed-form twin, numpy tile runs, shared layers, fusion contexts) gives
the point-by-point SimPy engine's numbers on a sample of bench/sweep.py's MobileNetV2 space."""

from __future__ import annotations

import importlib.util
import random
from pathlib import Path

import pytest

from codesign.sim.engine import simulate_network
from codesign.sweep import _WorkerState


def _space() -> dict:
    path = Path(__file__).parents[2] / "bench" / "sweep.py"
    spec = importlib.util.spec_from_file_location("bench_sweep", path)
    mod = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(mod)  # type: ignore[union-attr]
    return mod.SPACE


@pytest.mark.parametrize("mapping", ["fixed", "search"])
def test_sample_equals_simpy(mapping) -> None:
    state = _WorkerState({**_space(), "base": {"mapping": mapping}})
    net = next(iter(state.space.load_workloads().values()))
    points = random.Random(11).sample(range(state.space.size), 4)
    for p in points:
        row = state.point_rows(p)[0]
        ref = simulate_network(net, state.space.config(p), engine="simpy")
        assert (row["cycles"], row["stall_cycles"]) == (ref.cycles, ref.stall_cycles)
        assert row["energy_pj"] == pytest.approx(ref.energy_pj, rel=1e-12)
        assert row["model_only"] == ref.model_only
