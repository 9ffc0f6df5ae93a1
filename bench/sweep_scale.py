"""Sweeps at scale: peak memory of a 10^6-point ``codesign sweep``, and no process left after SIGKILL.

The sweep runs as a user runs it (``python -m codesign sweep space.yaml -o results.parquet``) on a
one-layer workload, so that a million points take minutes, not hours; its process tree (the CLI,
the forkserver, the resource tracker, the pool workers) is sampled every 0.2 s with psutil for the
peak RSS of the CLI process and of the whole tree. Goal (issue 12): peak RSS <= 500 MB. Then the
same sweep is started again, killed with SIGKILL once it has journaled points, and every process
of its session must be gone within 10 s.

    python bench/sweep_scale.py [--points 1000000] [--workers 2] [--out bench/results/sweep_scale.json]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

WORKLOAD = "gemm:64,64,64"


def space_yaml(points: int) -> str:
    """Axes whose product is ``points`` (a power of ten up to 10^6: 100 x 100 x 10 x 10)."""
    sizes = {"rows": 100, "cols": 100, "dram_latency_cycles": 10, "input_sram_bytes": 10}
    left = points
    axes = []
    for name, n in sizes.items():
        take = max(1, min(n, left))
        left = math.ceil(left / take)
        if name == "input_sram_bytes":
            axes.append(f"  {name}: {{start: 16384, stop: {16384 * take}, step: 16384}}")
        elif name == "dram_latency_cycles":
            axes.append(f"  {name}: {{start: 10, stop: {10 * take}, step: 10}}")
        else:
            axes.append(f"  {name}: {{start: 1, stop: {take}}}")
    return f"workloads: ['{WORKLOAD}']\naxes:\n" + "\n".join(axes) + "\n"


def _tree(proc: psutil.Process) -> list[psutil.Process]:
    try:
        return [proc, *proc.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def _rss(procs: list[psutil.Process]) -> int:
    total = 0
    for p in procs:
        try:
            total += p.memory_info().rss
        except psutil.NoSuchProcess:
            pass
    return total


def _session(sid: int) -> list[int]:
    out = []
    for p in psutil.process_iter(["pid", "status"]):
        try:
            if os.getsid(p.pid) == sid and p.info["status"] != psutil.STATUS_ZOMBIE:
                out.append(p.pid)
        except (ProcessLookupError, PermissionError, psutil.NoSuchProcess):
            pass
    return out


def _start(d: Path, workers: int) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "codesign", "sweep", "space.yaml", "-o", "results.parquet",
                             "--workers", str(workers), "--no-progress"], cwd=d, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, start_new_session=True)


def measure(points: int, workers: int) -> dict[str, object]:
    with tempfile.TemporaryDirectory(prefix="codesign-scale-") as tmp:
        d = Path(tmp)
        (d / "space.yaml").write_text(space_yaml(points))
        t0 = time.perf_counter()
        proc = _start(d, workers)
        ps = psutil.Process(proc.pid)
        peak_main = peak_tree = 0
        while proc.poll() is None:
            try:
                peak_main = max(peak_main, ps.memory_info().rss)
            except psutil.NoSuchProcess:
                break
            peak_tree = max(peak_tree, _rss(_tree(ps)))
            time.sleep(0.2)
        wall = time.perf_counter() - t0
        err = proc.stderr.read().decode() if proc.stderr else ""
        if proc.returncode != 0:
            raise SystemExit(f"sweep failed ({proc.returncode}): {err}")
        import pyarrow.parquet as pq

        meta = pq.ParquetFile(d / "results.parquet").metadata
        rows, groups = meta.num_rows, meta.num_row_groups
        size_mb = (d / "results.parquet").stat().st_size / 2**20
    return {"points": points, "rows": rows, "row_groups": groups, "workers": workers, "wall_s": round(wall, 1),
            "points_per_s": round(points / wall), "peak_rss_main_mb": round(peak_main / 2**20, 1),
            "peak_rss_tree_mb": round(peak_tree / 2**20, 1), "output_mb": round(size_mb, 1),
            "summary": err.strip().splitlines()[-1] if err.strip() else ""}


def kill_check(points: int, workers: int) -> dict[str, object]:
    with tempfile.TemporaryDirectory(prefix="codesign-scale-kill-") as tmp:
        d = Path(tmp)
        (d / "space.yaml").write_text(space_yaml(points))
        proc = _start(d, workers)
        journal = d / "results.parquet.journal"
        deadline = time.monotonic() + 300
        while not (journal.exists() and journal.stat().st_size > 10_000) and time.monotonic() < deadline:
            time.sleep(0.1)
        before = _session(proc.pid)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        t0 = time.monotonic()
        while _session(proc.pid) and time.monotonic() - t0 < 10:
            time.sleep(0.05)
        left = _session(proc.pid)
        for pid in left:  # clean up what the check found (the check has already failed)
            os.kill(pid, signal.SIGKILL)
        if proc.stderr is not None:
            proc.stderr.close()
    return {"processes_before_kill": len(before), "left_after_10_s": len(left),
            "gone_after_s": round(time.monotonic() - t0, 2) if not left else None}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--points", type=int, default=1_000_000)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "sweep_scale.json"))
    args = ap.parse_args()
    result = measure(args.points, args.workers)
    result["kill"] = kill_check(args.points, args.workers)
    result["goal_peak_rss_mb"] = 500
    result["machine"] = {"cpus": os.cpu_count(), "python": platform.python_version(),
                         "load_1min": round(os.getloadavg()[0], 2)}
    for k, v in result.items():
        print(f"{k:>20}  {v}")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
