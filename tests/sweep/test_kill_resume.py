"""A sweep killed with SIGKILL at an arbitrary moment resumes without losing or repeating a point."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from codesign.space import DesignSpace
from codesign.sweeps import journal_path, sweep

# MobileNetV2 (64 layers) over 2 x 6 x 6 x 2 = 144 points: a few seconds, long enough to kill it.
SPACE = """\
workloads: [mobilenet_v2]
axes:
  dataflow: [ws, os]
  rows: [4, 8, 12, 16, 24, 32]
  cols: [4, 8, 12, 16, 24, 32]
  weight_bits: [4, 8]
# the zoo network is INT8: its 8-bit weights run at 4 bits on the 4-bit points
clip_bits: true
"""


def _journaled_points(journal: Path) -> list[int]:
    if not journal.exists():
        return []
    points = []
    for line in journal.read_bytes().split(b"\n")[1:]:
        try:
            points.append(json.loads(line)["point"])
        except (ValueError, KeyError):
            pass
    return points


def _kill_when_journaled(tmp_path: Path, workers: int, at_least: int) -> int:
    journal = journal_path(tmp_path / "r.parquet")
    proc = subprocess.Popen(
        [sys.executable, "-m", "codesign", "sweep", "space.yaml", "-o", "r.parquet", "--workers", str(workers),
         "--chunk", "2", "--no-progress"],
        cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 120
        while len(_journaled_points(journal)) < at_least and proc.poll() is None:
            assert time.monotonic() < deadline, "the sweep journaled nothing in 120 s"
            time.sleep(0.005)
        assert proc.poll() is None, "the sweep finished before it could be killed; enlarge the space"
        # kill the whole process group (the CLI and its pool workers), as a crash or OOM kill would
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        if proc.stderr is not None:
            proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL
    return len(_journaled_points(journal))


@pytest.mark.e2e
@pytest.mark.parametrize("workers", [1, pytest.param(2, marks=pytest.mark.slow)])
def test_sigkill_then_resume(tmp_path: Path, workers: int) -> None:
    (tmp_path / "space.yaml").write_text(SPACE)
    killed_with = _kill_when_journaled(tmp_path, workers, at_least=6)
    assert 6 <= killed_with < 144
    assert not (tmp_path / "r.parquet").exists()

    r = subprocess.run([sys.executable, "-m", "codesign", "sweep", "space.yaml", "-o", "r.parquet", "--resume",
                        "--workers", str(workers), "--no-progress"], cwd=tmp_path, capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stderr
    # every journaled point was taken from the journal, only the others were evaluated
    assert f"({killed_with} resumed, {144 - killed_with} evaluated)" in r.stderr
    assert not journal_path(tmp_path / "r.parquet").exists()
    resumed = pd.read_parquet(tmp_path / "r.parquet")
    assert resumed["point"].tolist() == list(range(144))  # nothing lost, nothing twice

    uninterrupted = sweep(DesignSpace.from_yaml(tmp_path / "space.yaml"), workers=1)
    pd.testing.assert_frame_equal(resumed, uninterrupted, check_like=False)
