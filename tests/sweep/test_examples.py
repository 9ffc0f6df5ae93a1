"""The example space files parse, and the issue's example runs end to end in Python."""

from __future__ import annotations

from pathlib import Path

import pytest

from codesign.space import DesignSpace

EXAMPLES = sorted((Path(__file__).resolve().parents[2] / "examples").glob("space_*.yaml"))


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_example_spaces_parse(path: Path) -> None:
    space = DesignSpace.from_yaml(path)
    space.load_workloads()
    assert space.points()


def test_issue_example_counts() -> None:
    space = DesignSpace.from_yaml(next(p for p in EXAMPLES if p.name == "space_mobilenet.yaml"))
    # 2 dataflows x 3 rows x 3 cols x 2 bit-widths; the largest array (32x32) has exactly 1024 PEs
    assert len(space.points()) == 36


def test_edge_example_sample() -> None:
    space = DesignSpace.from_yaml(next(p for p in EXAMPLES if p.name == "space_edge.yaml"))
    assert space.size == 3 * 4 * 4 * 2 * 1 * 2 * 3 * 3 * 3 == 5184
    assert len(space.points()) == 2000
    assert space.pareto == ("latency_ms", "energy_pj", "area_mm2")
