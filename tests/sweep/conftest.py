"""Shared helpers of the sweep tests: small spaces on a small network, CLI runner."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

# DS-CNN keyword spotting (MLPerf Tiny): 11 layers, so a point costs about a millisecond.
SMALL_SPACE = """\
workloads: [ds_cnn_kws]
axes:
  dataflow: [ws, os]
  rows: [4, 8, 16]
  cols: [4, 8, 16]
  weight_bits: [4, 8]
# the zoo network is INT8: its 8-bit weights run at 4 bits on the 4-bit points
clip_bits: true
constraints:
  max_pes: 128
"""


def run_cli(*args: str, cwd: Path | None = None, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONWARNINGS": "error::DeprecationWarning:codesign"}
    return subprocess.run([sys.executable, "-m", "codesign", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env=env)


@pytest.fixture
def small_space(tmp_path: Path) -> Path:
    p = tmp_path / "space.yaml"
    p.write_text(SMALL_SPACE)
    return p
