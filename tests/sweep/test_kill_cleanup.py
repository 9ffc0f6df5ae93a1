"""A killed sweep leaves no process behind, and a second sweep cannot write the same output."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from codesign.sweeps import journal_path

from .conftest import SMALL_SPACE, run_cli

pytestmark = pytest.mark.e2e

# ResNet-50 over 2 x 8 x 8 x 2 = 256 points: long enough (minutes) to be killed mid-run
SPACE = """\
workloads: [resnet50]
axes:
  dataflow: [ws, os]
  rows: [4, 8, 12, 16, 24, 32, 48, 64]
  cols: [4, 8, 12, 16, 24, 32, 48, 64]
  weight_bits: [4, 8]
# the zoo network is INT8: its 8-bit weights run at 4 bits on the 4-bit points
clip_bits: true
"""


def _session(sid: int) -> list[int]:
    """Pids of the processes of session ``sid`` (the sweep, its forkserver, tracker and workers)."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        if int(fields[3]) == sid and fields[0] != "Z":  # field 6 of stat: session id; skip zombies
            pids.append(int(entry))
    return pids


def _start(tmp_path: Path, *extra: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "codesign", "sweep", "space.yaml", "-o", "r.parquet",
                             "--chunk", "1", "--no-progress", *extra], cwd=tmp_path, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, start_new_session=True)


def _wait_journaled(tmp_path: Path, proc: subprocess.Popen[bytes], lines: int) -> None:
    journal = journal_path(tmp_path / "r.parquet")
    deadline = time.monotonic() + 180
    while not (journal.exists() and journal.read_bytes().count(b"\n") > lines):
        assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
        assert time.monotonic() < deadline, "the sweep journaled nothing in 180 s"
        time.sleep(0.05)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
@pytest.mark.parametrize(("sig", "executor"), [
    (signal.SIGKILL, ("--workers", "2")),
    (signal.SIGTERM, ("--workers", "2")),
    (signal.SIGKILL, ("--scheduler", "local", "--workers", "2")),  # a LocalCluster's worker processes
], ids=["SIGKILL-pool", "SIGTERM-pool", "SIGKILL-local-dask"])
def test_killed_sweep_leaves_no_process(tmp_path: Path, sig: signal.Signals, executor: tuple[str, ...]) -> None:
    (tmp_path / "space.yaml").write_text(SPACE)
    proc = _start(tmp_path, *executor)
    try:
        _wait_journaled(tmp_path, proc, 2)
        family = _session(proc.pid)
        assert len(family) >= 3  # the sweep, the forkserver or resource tracker, and workers
        os.kill(proc.pid, sig)  # the sweep alone, not its process group: the others must follow it
        proc.wait(timeout=30)
        deadline = time.monotonic() + 10
        while _session(proc.pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _session(proc.pid) == [], f"left running after {sig.name}: {_session(proc.pid)}"
    finally:
        for pid in _session(proc.pid):
            os.kill(pid, signal.SIGKILL)
        if proc.stderr is not None:
            proc.stderr.close()
    assert proc.returncode == (-signal.SIGKILL if sig == signal.SIGKILL else 128 + signal.SIGTERM)
    assert journal_path(tmp_path / "r.parquet").exists()  # the journal is kept for --resume
    assert not (tmp_path / "r.parquet.lock").exists() or sig == signal.SIGKILL  # SIGTERM unwinds and unlocks


def test_second_writer_is_refused(tmp_path: Path) -> None:
    (tmp_path / "space.yaml").write_text(SPACE)
    first = _start(tmp_path, "--workers", "1")
    try:
        _wait_journaled(tmp_path, first, 1)
        second = run_cli("sweep", "space.yaml", "-o", "r.parquet", "--resume", "--no-progress", cwd=tmp_path)
        assert second.returncode == 2
        assert second.stderr == (f"codesign sweep: error: output 'r.parquet' is being written by another sweep "
                                 f"(pid {first.pid}); wait for it to finish or write to another output\n")
        assert first.poll() is None  # the first sweep runs on
    finally:
        os.killpg(first.pid, signal.SIGKILL)
        first.wait()
        if first.stderr is not None:
            first.stderr.close()
    # the lock dies with its holder: a resume after the kill is allowed
    (tmp_path / "space.yaml").write_text(SMALL_SPACE)
    (journal_path(tmp_path / "r.parquet")).unlink()
    again = run_cli("sweep", "space.yaml", "-o", "r.parquet", "--workers", "1", "--no-progress", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
