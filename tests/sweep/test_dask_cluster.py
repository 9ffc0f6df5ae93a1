"""``codesign sweep --scheduler tcp://...`` against a real cluster: a ``dask scheduler`` and two
``dask worker`` processes on 127.0.0.1, started here; ``--scheduler local`` starts a LocalCluster."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from .conftest import SMALL_SPACE, run_cli

pytestmark = pytest.mark.e2e
distributed = pytest.importorskip("distributed")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _dask(*args: str, log: Path) -> subprocess.Popen[bytes]:
    exe = Path(sys.executable).with_name("dask")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "dask"]
    with open(log, "wb") as fh:
        return subprocess.Popen([*cmd, *args], stdout=fh, stderr=subprocess.STDOUT, start_new_session=True)


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[str]:
    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    procs = [_dask("scheduler", "--host", "127.0.0.1", "--port", str(port), "--dashboard-address", ":0",
                   log=tmp_path / "scheduler.log")]
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert procs[0].poll() is None, (tmp_path / "scheduler.log").read_text()
                assert time.monotonic() < deadline, "the dask scheduler did not listen within 60 s"
                time.sleep(0.2)
        for i in range(2):  # two worker processes, one thread each
            procs.append(_dask("worker", address, "--nthreads", "1", "--dashboard-address", ":0", "--name",
                               f"w{i}", log=tmp_path / f"worker{i}.log"))
        with distributed.Client(address, timeout=30, set_as_default=False) as client:
            client.wait_for_workers(2, timeout=120)
        yield address
    finally:
        for p in reversed(procs):
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGTERM)
        for p in procs:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()


def test_tcp_scheduler_equals_one_worker(tmp_path: Path, cluster: str) -> None:
    (tmp_path / "space.yaml").write_text(SMALL_SPACE)
    one = run_cli("sweep", "space.yaml", "-o", "one.parquet", "--workers", "1", "--no-progress", cwd=tmp_path)
    assert one.returncode == 0, one.stderr
    dask = run_cli("sweep", "space.yaml", "-o", "dask.parquet", "--scheduler", cluster, "--chunk", "3",
                   "--no-progress", cwd=tmp_path)
    assert dask.returncode == 0, dask.stderr
    a, b = pd.read_parquet(tmp_path / "one.parquet"), pd.read_parquet(tmp_path / "dask.parquet")
    assert len(a) == 32  # the 32 feasible points of SMALL_SPACE (max_pes 128) x 1 workload
    pd.testing.assert_frame_equal(a, b, check_exact=True)  # value for value, same order
    # both workers took part: 32 points in chunks of 3 are 11 tasks
    logs = [(tmp_path / f"worker{i}.log").read_text() for i in range(2)]
    assert all("Registered to" in log for log in logs)


def test_local_scheduler_starts_a_cluster(tmp_path: Path) -> None:
    (tmp_path / "space.yaml").write_text(SMALL_SPACE)
    local = run_cli("sweep", "space.yaml", "-o", "local.parquet", "--scheduler", "local", "--workers", "2",
                    "--no-progress", cwd=tmp_path)
    assert local.returncode == 0, local.stderr
    one = run_cli("sweep", "space.yaml", "-o", "one.parquet", "--workers", "1", "--no-progress", cwd=tmp_path)
    assert one.returncode == 0, one.stderr
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "local.parquet"),
                                  pd.read_parquet(tmp_path / "one.parquet"), check_exact=True)


@pytest.mark.parametrize(("scheduler", "message"), [
    ("garbage", "scheduler must be local or an address like tcp://host:8786, not 'garbage'"),
    ("tcp://127.0.0.1:99999", "scheduler must be local or an address like tcp://host:8786, not "
                              "'tcp://127.0.0.1:99999'"),
])
def test_bad_scheduler_one_line(tmp_path: Path, scheduler: str, message: str) -> None:
    (tmp_path / "space.yaml").write_text(SMALL_SPACE)
    r = run_cli("sweep", "space.yaml", "-o", "r.parquet", "--scheduler", scheduler, "--no-progress", cwd=tmp_path)
    assert (r.returncode, r.stderr) == (2, f"codesign sweep: error: {message}\n")


def test_unreachable_scheduler_fails_fast(tmp_path: Path) -> None:
    (tmp_path / "space.yaml").write_text(SMALL_SPACE)
    port = _free_port()  # nobody listens there
    t0 = time.monotonic()
    r = run_cli("sweep", "space.yaml", "-o", "r.parquet", "--scheduler", f"tcp://127.0.0.1:{port}",
                "--no-progress", cwd=tmp_path)
    assert r.returncode == 2 and r.stderr.count("\n") == 1
    assert r.stderr.startswith(f"codesign sweep: error: cannot reach the Dask scheduler at 'tcp://127.0.0.1:{port}'")
    assert time.monotonic() - t0 < 30  # a refused connection is not retried for minutes
    assert not (tmp_path / "r.parquet").exists() and not (tmp_path / "r.parquet.journal").exists()
