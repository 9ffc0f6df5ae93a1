"""Design-space sweeps: evaluate every point of a :class:`~codesign.space.DesignSpace` on every
workload, in a local process pool or on a Dask cluster, journaled so that a killed sweep resumes.

Each point goes through one pure function, :func:`evaluate`, ``(config, network) -> row``; with
the closed-form engine a worker evaluates a chunk's points together where it can
(:mod:`codesign.sim.fastpath`: numpy over the points, the same numbers to the last bit; tests hold
the two equal) and point by point where the fast path declines (zero skipping, fusion, the
depthwise engine). The rows of a finished chunk of points are appended to a journal next to the output
(``results.parquet.journal``: one JSON line per point, flushed to the OS at once, fsynced at most
once a second) the moment they arrive, and streamed, in point order, to the output in row
groups: memory stays bounded by the chunks in flight, whatever the size of the space. The Pareto
front is kept as the rows stream by (:class:`StreamingFront`) and its column added at the end;
the output (Parquet or CSV) is written to a temporary file and renamed, and the journal removed.
``resume=True`` reads the journal (and a previous complete output of the same space) and
evaluates only the points not in it. A lock file (``results.parquet.lock``) refuses a second
sweep writing the same output.

Rows are sorted by point id (then workload in the order of the space), so the table is the same
whatever the worker count or executor. Pool workers (and the workers of ``scheduler="local"``)
exit when the sweep's process dies, however it dies.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import signal
import sys
import tempfile
import threading
import time
import types
from array import array
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from codesign.accuracy import check_workloads, sweep_accuracy
from codesign.errors import ConfigError
from codesign.pareto import MAXIMIZED
from codesign.sim.config import AcceleratorConfig
from codesign.space import DesignSpace, WorkloadSpec, area_function, canonical_engine, parse_metrics

if TYPE_CHECKING:
    import pandas as pd

    from codesign.sim.result import NetworkResult
    from codesign.workloads.layers import Network

JOURNAL_VERSION = 1
META_KEY = b"codesign.sweep"
Row = dict[str, Any]

# ---------------------------------------------------------------------------------------------
# evaluation (runs in workers)
# ---------------------------------------------------------------------------------------------


def metrics_row(result: NetworkResult, area_mm2: float) -> Row:
    """The metric columns of one (point, workload) from a simulation result."""
    return summary_row(result.summary(), area_mm2)


def summary_row(s: Mapping[str, Any], area_mm2: float) -> Row:
    """The metric columns of one (point, workload) from a result's summary
    (:meth:`~codesign.sim.result.NetworkResult.summary`, or the fast path's,
    :func:`codesign.sim.fastpath.evaluate_network`)."""
    row: Row = {
        "cycles": int(s["cycles"]),
        "latency_ms": float(s["latency_ms"]),
        "energy_pj": float(s["energy_pj"]),
        "energy_uj": float(s["energy_uj"]),
        "edp": float(s["edp"]),
        "area_mm2": float(area_mm2),
        "utilization": float(s["utilization"]),
        "peak_dram_bytes_per_cycle": float(s["peak_dram_bytes_per_cycle"]),
        "macs": int(s["macs"]),
        "compute_cycles": int(s["compute_cycles"]),
        "stall_cycles": int(s["stall_cycles"]),
        "model_only": str(s.get("model_only", "")),
    }
    for key, value in s.items():
        if key.startswith("energy_") and key.endswith("_pj") and key != "energy_pj":
            row[key] = float(value)
    return row


def engine_name(engine: str) -> str:
    """The simulator's name for ``engine``: ``closed_form`` (alias ``analytic``) or ``simpy``."""
    return canonical_engine(engine)


def evaluate(config: AcceleratorConfig, network: Network, *, engine: str = "closed_form") -> NetworkResult:
    """Simulate one network on one design (sweeps use the same engine call, sharing layers of
    equal shape)."""
    from codesign.sim.engine import simulate_network

    return simulate_network(network, config, timing="native", engine=engine_name(engine))


class _Evaluator:
    """A network prepared for many configs: layers with the same shape are simulated once.

    Layers differ only in name across the repeated blocks of a network (MobileNetV2: 64 layers,
    37 shapes); each is simulated under a common name and the totals are summed in layer order,
    so the numbers are exactly :func:`codesign.simulate`'s.
    """

    def __init__(self, network: Network) -> None:
        import dataclasses

        self.network = network
        self.anonymous = tuple(dataclasses.replace(layer, name="layer") for layer in network.layers)

    def run(self, config: AcceleratorConfig, engine: str, cache: dict[Any, Any]) -> NetworkResult:
        from codesign.sim.engine import network_contexts, simulate_layer
        from codesign.sim.result import NetworkResult

        batch = self.network.batch
        results = []
        for layer, ctx in zip(self.anonymous, network_contexts(self.network, config), strict=True):
            r = cache.get((layer, ctx))
            if r is None:
                r = cache[layer, ctx] = simulate_layer(layer, batch, config, "native", engine, ctx)
            results.append(r)
        return NetworkResult(network=self.network.name, config=config, layers=tuple(results),
                             timing="native", batch=batch, meta={"engine": engine})


class _WorkerState:
    """What a worker keeps between chunks: the space, its networks, an area cache."""

    def __init__(self, space_dict: Mapping[str, Any]) -> None:
        self.space = DesignSpace.from_dict(space_dict)
        networks = self.space.load_workloads()
        self.evaluators = [(label, _Evaluator(net)) for label, net in networks.items()]
        self.engine = engine_name(self.space.engine)
        self.area_fn = area_function()

    def point_rows(self, point: int) -> list[Row]:
        """Rows of one point, point by point (the engine's own path)."""
        config = self.space.config(point)
        cache: dict[Any, Any] = {}  # identical (layer, config) pairs of this point: once, for all workloads
        summaries = [ev.run(config, self.engine, cache).summary() for _, ev in self.evaluators]
        return self._rows(point, config, summaries)

    def chunk_rows(self, points: Sequence[int]) -> list[tuple[int, list[Row]]]:
        """Rows of each point of ``points``: the fast path (:mod:`codesign.sim.fastpath`, numpy over
        the points) where it models the point, else :meth:`point_rows`; the numbers are the same."""
        if self.engine != "closed_form":
            return [(p, self.point_rows(p)) for p in points]
        from codesign.sim.fastpath import evaluate_network

        values = self._values_of(points)
        base = self.space.base  # validated, like every axis value: the fields need no more checks
        configs = [AcceleratorConfig(**base, **v) for v in values]
        per_workload = [evaluate_network(ev.network, configs) for _, ev in self.evaluators]
        out = []
        for i, (p, config) in enumerate(zip(points, configs, strict=True)):
            summaries = [s[i] for s in per_workload]
            if any(s is None for s in summaries):
                out.append((p, self.point_rows(p)))
            else:
                out.append((p, self._rows(p, config, summaries, values[i])))  # type: ignore[arg-type]
        return out

    def _values_of(self, points: Sequence[int]) -> list[dict[str, Any]]:
        """Axis values of each point (:meth:`DesignSpace.values` of many points at once)."""
        import numpy as np

        digits = self.space._digits(np.asarray(points, dtype=np.int64))
        cols = {name: [vals[d] for d in digits[name].tolist()] for name, vals in self.space.axes.items()}
        return [dict(zip(cols, row, strict=True)) for row in zip(*cols.values(), strict=True)]

    def _rows(self, point: int, config: AcceleratorConfig, summaries: Sequence[Mapping[str, Any]],
              values: Mapping[str, Any] | None = None) -> list[Row]:
        values = self.space.values(point) if values is None else values
        area = float(self.area_fn(config))
        fixed = {"point": point}
        fpga = fpga_columns(config, self.space.fpga) if self.space.fpga is not None else {}
        rows = []
        for (label, ev), s in zip(self.evaluators, summaries, strict=True):
            row = {**fixed, "workload": label, **values, "pes": config.pes,
                   "sram_bytes": config.sram_bytes, **summary_row(s, area), **fpga}
            if "accuracy" in self.space.pareto:  # top-1 of the integer network (codesign.accuracy)
                row["accuracy"] = sweep_accuracy(ev.network, config)
            if fpga:
                fmax = fpga["fpga_fmax_mhz"]
                row["fpga_latency_us"] = s["cycles"] / fmax if fmax == fmax and fmax else float("nan")
            rows.append(row)
        return rows


FPGA_COLUMNS = ("fpga_target", "fpga_part", "fpga_fits", "fpga_limiting_resource", "fpga_fit_message",
                "fpga_luts", "fpga_ffs", "fpga_dsps", "fpga_brams", "fpga_carries", "fpga_lut_util",
                "fpga_ff_util", "fpga_dsp_util", "fpga_bram_util", "fpga_io_util", "fpga_max_util",
                "fpga_fmax_mhz")


def fpga_columns(config: AcceleratorConfig, fpga: Mapping[str, Any], *, attempts: int = 2) -> Row:
    """FPGA figures of a design point (``codesign.hdl.fpga.fpga_metrics``).

    A design the generator refuses to build (a :class:`ConfigError`: IS dataflow, skip, bit-widths
    out of range) is an infeasible point (``fpga_fits`` false) with the reason in
    ``fpga_fit_message``, not an error of the whole sweep. A failing tool (a :class:`ToolError`:
    Yosys crashed, was killed or timed out, e.g. on a loaded machine) says nothing about the
    design: it is tried ``attempts`` times, then raised, never recorded as "does not fit"."""
    from codesign.errors import ToolError
    from codesign.hdl.fpga import device, fpga_metrics

    nan = float("nan")
    for attempt in range(attempts):
        try:
            m = fpga_metrics(config, fpga["target"], pnr=fpga["pnr"])
            break
        except ConfigError as e:
            row: Row = {c: nan for c in FPGA_COLUMNS}
            row.update(fpga_target=fpga["target"], fpga_part=device(fpga["target"]).part, fpga_fits=False,
                       fpga_limiting_resource="", fpga_fit_message=str(e))
            return row
        except ToolError as e:
            if attempt + 1 == attempts:
                raise ToolError(f"FPGA figures of {config.rows}x{config.cols} {config.dataflow.value} on "
                                f"{fpga['target']}: {e}") from e
    row = {c: m.get(c) for c in FPGA_COLUMNS}  # fpga_cached is left out: it depends on the run
    for c in FPGA_COLUMNS:
        if row[c] is None:
            row[c] = nan
    return row


_STATE: dict[str, _WorkerState] = {}


def _state(space_dict: Mapping[str, Any], key: str) -> _WorkerState:
    st = _STATE.get(key)
    if st is None:
        _STATE.clear()
        st = _STATE[key] = _WorkerState(space_dict)
    return st


def evaluate_chunk(space_dict: Mapping[str, Any], points: Sequence[int], key: str | None = None
                   ) -> list[tuple[int, list[Row]]]:
    """Rows of each point of ``points`` (a task of the pool or of Dask); ``key`` (the space's
    fingerprint) names the worker's cached state."""
    st = _state(space_dict, key or json.dumps(space_dict, sort_keys=True))
    out = st.chunk_rows([int(p) for p in points])
    _trim_caches()
    return out


#: points of a chunk at most with the closed-form engine (the fast path's numpy arrays span a chunk)
FAST_CHUNK = 4096

#: entries the simulator's memo caches may hold in a sweep worker before they are emptied
CACHE_ENTRIES = 4096


def _trim_caches() -> None:
    """Empty the simulator's ``lru_cache`` memos that a sweep fills but never hits. Every point of a
    sweep is a different config, so entries keyed by (layer, config) are not hit again, yet at up to
    65,536 entries per cache they hold a few hundred MB per worker. Caches that do get hits (tile
    plans, pipeline timings shared by many configs) are kept; layers of equal shape within a point
    are shared through the point's own cache (:meth:`_WorkerState.point_rows`)."""
    sim_modules = [m for name, m in list(sys.modules.items()) if name.startswith("codesign.sim.") and m is not None]
    for mod in sim_modules:
        for f in list(vars(mod).values()):
            info = getattr(f, "cache_info", None)
            if callable(info) and callable(getattr(f, "cache_clear", None)):
                i = info()
                if i.currsize > CACHE_ENTRIES and i.hits < i.misses:
                    f.cache_clear()


def die_with_parent(parent_pid: int) -> None:
    """Make this process exit when ``parent_pid`` exits, however it exits (SIGKILL included).

    A direct child asks the kernel for SIGKILL at its parent's death (``PR_SET_PDEATHSIG``); any
    process (a pool worker forked by the forkserver, a Dask worker of a LocalCluster) also runs a
    daemon thread that waits on a pidfd of ``parent_pid`` (or polls it) and exits at once."""
    if parent_pid == os.getpid():
        return
    if sys.platform.startswith("linux") and os.getppid() == parent_pid:
        try:
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG
        except (OSError, AttributeError):  # pragma: no cover - not glibc
            pass
    if os.getppid() != parent_pid and not _alive(parent_pid):
        os._exit(1)

    def watch() -> None:
        import select

        fd = None
        with contextlib.suppress(OSError, AttributeError):
            fd = os.pidfd_open(parent_pid)  # type: ignore[attr-defined]
        if fd is not None:
            select.select([fd], [], [])  # readable once the process has exited
        else:  # pragma: no cover - kernels before 5.3
            while _alive(parent_pid):
                threading.Event().wait(0.5)
        os._exit(1)

    threading.Thread(target=watch, name="codesign-parent-watch", daemon=True).start()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # pragma: no cover - another user's process of that pid
        return True
    return True


def _init_worker(space_dict: Mapping[str, Any], key: str, parent_pid: int) -> None:
    die_with_parent(parent_pid)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides what an interrupt stops
    _state(space_dict, key)


# ---------------------------------------------------------------------------------------------
# journal
# ---------------------------------------------------------------------------------------------


def journal_path(output: Path) -> Path:
    return output.with_name(output.name + ".journal")


class Journal:
    """Append-only JSON-lines file: a header line, then one line per finished point.

    A line is written with a single ``write`` of the whole line and flushed, so a killed process
    loses nothing it has appended (the OS holds the data); it is fsynced at most every
    :data:`FSYNC_S` seconds (and when closed), so a crash of the machine loses at most that much,
    which a resume evaluates again. A process killed mid-write leaves at most one truncated last
    line, which reading ignores.
    """

    FSYNC_S = 1.0

    def __init__(self, path: Path, fingerprint: str, space_dict: Mapping[str, Any]) -> None:
        self.path = path
        self.fingerprint = fingerprint
        self.space_dict = space_dict
        self._fh: Any = None
        self._synced = 0.0

    def header(self) -> str:
        return json.dumps({"journal": "codesign.sweep", "version": JOURNAL_VERSION,
                           "fingerprint": self.fingerprint, "space": self.space_dict}, sort_keys=True)

    def read(self) -> dict[int, list[Row]]:
        """Finished points in the journal (an absent journal has none)."""
        done: dict[int, list[Row]] = {}
        if not self.path.exists():
            return done
        with open(self.path, "rb") as fh:
            first = fh.readline()
            try:
                head = json.loads(first)
            except (json.JSONDecodeError, UnicodeDecodeError):
                head = None
            if not isinstance(head, dict) or head.get("journal") != "codesign.sweep":
                if not first.strip() and not fh.read(1):
                    return done  # killed before the header was complete
                raise ConfigError(f"{self.path.name} is not a codesign sweep journal; move it away to start over")
            done = self._records(head, fh)
        return done

    def _records(self, head: dict[str, Any], fh: Any) -> dict[int, list[Row]]:
        done: dict[int, list[Row]] = {}
        if head.get("fingerprint") != self.fingerprint:
            raise ConfigError(
                f"{self.path.name} was written for a different design space (fingerprint "
                f"{head.get('fingerprint')}, this space {self.fingerprint}); delete it or write to another output"
            )
        for line in fh:
            try:
                rec = json.loads(line)
            except (json.JSONDecodeError, UnicodeDecodeError):
                continue  # the truncated last line of a killed sweep
            if isinstance(rec, dict) and isinstance(rec.get("point"), int) and isinstance(rec.get("rows"), list):
                done.setdefault(rec["point"], rec["rows"])
        return done

    def open(self, done: Mapping[int, list[Row]]) -> None:
        """Start appending: (re)write header + ``done`` atomically, dropping any torn line."""
        tmp = self.path.with_name(self.path.name + ".tmp")
        with open(tmp, "w") as fh:
            fh.write(self.header() + "\n")
            for point in sorted(done):
                fh.write(self._line(point, done[point]))
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.path)
        self._fh = open(self.path, "a")

    @staticmethod
    def _line(point: int, rows: list[Row]) -> str:
        return json.dumps({"point": point, "rows": rows}, allow_nan=True) + "\n"

    def append(self, results: Iterable[tuple[int, list[Row]]]) -> None:
        text = "".join(self._line(p, rows) for p, rows in results)
        self._fh.write(text)
        self._fh.flush()
        now = time.monotonic()
        if now - self._synced >= self.FSYNC_S:
            os.fsync(self._fh.fileno())
            self._synced = now

    def close(self) -> None:
        if self._fh is not None:
            with contextlib.suppress(OSError, ValueError):
                self._fh.flush()
                os.fsync(self._fh.fileno())
            self._fh.close()
            self._fh = None

    def remove(self) -> None:
        self.close()
        self.path.unlink(missing_ok=True)


# ---------------------------------------------------------------------------------------------
# executors: each yields (chunk index, rows of the chunk), keeping at most ``window`` chunks
# submitted and not yet consumed, so that results wait in memory only for a bounded time
# ---------------------------------------------------------------------------------------------

Batch = list[tuple[int, list[Row]]]


def _run_inline(space_dict: Mapping[str, Any], key: str, chunks: Sequence[Any]
                ) -> Iterator[tuple[int, Batch]]:
    for i, chunk in enumerate(chunks):
        yield i, evaluate_chunk(space_dict, chunk, key)


def _run_pool(space_dict: Mapping[str, Any], key: str, chunks: Sequence[Any], workers: int
              ) -> Iterator[tuple[int, Batch]]:
    import multiprocessing

    # forkserver: no fork of a threaded parent (the progress bar runs a thread)
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["codesign.sweep"])
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_init_worker,
                               initargs=(space_dict, key, os.getpid()))
    running: dict[Future[Any], int] = {}
    ok = False
    try:
        nxt = 0
        while nxt < len(chunks) or running:
            while nxt < len(chunks) and len(running) < 2 * workers:
                running[pool.submit(evaluate_chunk, space_dict, chunks[nxt], key)] = nxt
                nxt += 1
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for fut in sorted(finished, key=running.__getitem__):
                yield running.pop(fut), fut.result()
        ok = True
    finally:
        _stop_pool(pool, graceful=ok)


def _stop_pool(pool: ProcessPoolExecutor, *, graceful: bool) -> None:
    """Shut the pool down; on an error or an interrupt, terminate its workers instead of waiting."""
    procs = list(getattr(pool, "_processes", {}).values())
    pool.shutdown(wait=graceful, cancel_futures=True)
    if not graceful:
        for proc in procs:
            with contextlib.suppress(Exception):
                proc.kill()
        for proc in procs:
            with contextlib.suppress(Exception):
                proc.join(5)


_ADDRESS = re.compile(r"^(?:(tcp|tls|ws|wss)://)?(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+):(\d{1,5})$")


def parse_scheduler(scheduler: str) -> tuple[str, str, int] | None:
    """``"local"`` -> None; ``tcp://host:port`` (or ``host:port``) -> (protocol, host, port).
    Raises :class:`ConfigError` for anything else."""
    if scheduler == "local":
        return None
    if isinstance(scheduler, str) and re.match(r"^inproc://\S+$", scheduler):  # a cluster in this process
        return "inproc", scheduler[len("inproc://"):], 0
    m = _ADDRESS.match(scheduler) if isinstance(scheduler, str) else None
    if m is None or not 0 < int(m.group(3)) < 65536:
        raise ConfigError(f"scheduler must be local or an address like tcp://host:8786, not {scheduler!r}")
    return m.group(1) or "tcp", m.group(2).strip("[]"), int(m.group(3))


def probe_scheduler(scheduler: str) -> None:
    """Fail in a second, before Dask is even imported, on a tcp address nobody listens on."""
    address = parse_scheduler(scheduler)
    if address is None or address[0] != "tcp":
        return
    import socket

    try:
        socket.create_connection(address[1:], timeout=3).close()
    except OSError as e:
        raise ConfigError(f"cannot reach the Dask scheduler at {scheduler!r}: {e.strerror or e}") from None


def _watchdog_plugin(parent_pid: int) -> Any:
    """A Dask worker plugin: a LocalCluster's workers exit with the process that started them."""
    from distributed.diagnostics.plugin import WorkerPlugin

    class Watchdog(WorkerPlugin):  # type: ignore[misc]
        name = "codesign-watchdog"

        def setup(self, worker: Any) -> None:
            die_with_parent(parent_pid)

    return Watchdog()


@contextlib.contextmanager
def _dask_client(scheduler: Any, workers: int | None) -> Iterator[Any]:
    try:
        from distributed import Client
    except ModuleNotFoundError as e:  # pragma: no cover - dask is in the sweep extra
        raise ConfigError(f"scheduler needs dask.distributed (pip install 'codesign[sweep]'): {e}") from e
    if isinstance(scheduler, Client):
        yield scheduler
        return
    if not isinstance(scheduler, str):
        raise ConfigError(f"scheduler must be local, an address like tcp://host:8786 or a distributed.Client, "
                          f"not {scheduler!r}")
    address = parse_scheduler(scheduler)
    if address is None:
        import logging

        from distributed import LocalCluster

        with LocalCluster(n_workers=workers or os.cpu_count() or 1, threads_per_worker=1, processes=True,
                          dashboard_address=":0", silence_logs=logging.ERROR) as cluster, \
                Client(cluster, set_as_default=False) as client:
            client.register_plugin(_watchdog_plugin(os.getpid()))
            yield client
        return
    proto, host, port = address  # reachable: run_sweep probed it
    try:
        client = Client(scheduler if proto == "inproc" else f"{proto}://{host}:{port}", timeout=5,
                        set_as_default=False)
    except (OSError, TimeoutError) as e:
        raise ConfigError(f"cannot reach the Dask scheduler at {scheduler!r}: {e}") from None
    try:
        yield client
    finally:
        client.close()


def _run_dask(space_dict: Mapping[str, Any], key: str, chunks: Sequence[Any], client: Any
              ) -> Iterator[tuple[int, Batch]]:
    from distributed import as_completed

    threads = sum(w.get("nthreads", 1) for w in client.scheduler_info().get("workers", {}).values())
    window = 2 * max(threads, 1)
    [remote_space] = client.scatter([dict(space_dict)], broadcast=True)
    index: dict[Any, int] = {}
    nxt = 0

    def submit() -> Any:
        nonlocal nxt
        fut = client.submit(evaluate_chunk, remote_space, list(chunks[nxt]), key, pure=False)
        index[fut] = nxt
        nxt += 1
        return fut

    pending = as_completed([submit() for _ in range(min(window, len(chunks)))], loop=client.loop)
    try:
        for fut in pending:
            i = index.pop(fut)
            batch = fut.result()
            fut.release()
            if nxt < len(chunks):
                pending.add(submit())
            yield i, batch
    finally:
        for fut in list(index):
            fut.cancel()


# ---------------------------------------------------------------------------------------------
# progress
# ---------------------------------------------------------------------------------------------


class _Progress:
    def __init__(self, enabled: bool, total: int, done: int) -> None:
        self._bar: Any = None
        if enabled:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TaskProgressColumn,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )

            class _Rate(TextColumn):
                def render(self, task: Any) -> Any:  # points per second
                    from rich.text import Text

                    speed = task.finished_speed or task.speed
                    return Text(f"{speed:,.0f} points/s" if speed else "- points/s", style="cyan")

            self._bar = Progress(
                TextColumn("[bold]sweep"), BarColumn(), MofNCompleteColumn(), TextColumn("points"),
                TaskProgressColumn(), _Rate(""), TimeElapsedColumn(), TextColumn("ETA"),
                TimeRemainingColumn(), console=Console(stderr=True), transient=False,
            )
            self._bar.start()
            self._task = self._bar.add_task("sweep", total=total, completed=done)

    def advance(self, n: int) -> None:
        if self._bar is not None:
            self._bar.advance(self._task, n)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()


# ---------------------------------------------------------------------------------------------
# output: lock, streamed rows, Pareto column, final file
# ---------------------------------------------------------------------------------------------


def lock_path(output: Path) -> Path:
    return output.with_name(output.name + ".lock")


class OutputLock:
    """An exclusive ``flock`` on ``<output>.lock`` while a sweep writes ``output`` (the kernel
    drops it when the process dies, so a killed sweep leaves no stale lock)."""

    def __init__(self, output: Path) -> None:
        self.path = lock_path(output)
        self._fd: int | None = None

    def acquire(self) -> None:
        import fcntl

        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as e:
            raise ConfigError(f"output {str(self.path.with_name(self.path.name[:-5]))!r} cannot be written: "
                              f"{e.strerror or e}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise ConfigError(f"output {self.path.name[:-5]!r} is being written by another sweep (pid {holder}); "
                              f"wait for it to finish or write to another output") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
            with contextlib.suppress(OSError):
                self.path.unlink()


def check_output(output: str | Path) -> Path:
    """The output path, checked before any work: a .parquet/.csv file in an existing directory."""
    out = Path(output)
    if out.suffix.lower() not in (".parquet", ".csv"):
        raise ConfigError(f"output must be a .parquet or .csv file, not {str(output)!r}")
    parent = out.parent
    if parent.exists() and not parent.is_dir():
        raise ConfigError(f"output directory {str(parent)!r} is a file, not a directory")
    if not parent.exists():
        raise ConfigError(f"output directory {str(parent)!r} does not exist")
    if out.is_dir():
        raise ConfigError(f"output {str(output)!r} is a directory, not a file")
    if not os.access(parent, os.W_OK):
        raise ConfigError(f"output directory {str(parent)!r} is not writable")
    return out


ROW_GROUP_ROWS = 16384


class StreamingFront:
    """The Pareto front of rows seen one batch at a time, in memory of the order of the front.

    A row that some row dominates can never be on the front again, so each batch is merged with
    the front so far and only the non-dominated rows are kept; the result is exactly
    :func:`codesign.pareto.pareto_mask` of all rows (ties kept, NaN rows never on it)."""

    def __init__(self, n_metrics: int, batch_rows: int = 512) -> None:
        self.n_metrics = n_metrics
        self.batch_rows = batch_rows
        self.rows = array("q")  # row numbers of the front
        self.values = array("d")  # their metric values, row-major
        self._rows = array("q")
        self._values = array("d")

    def add(self, row: int, values: Sequence[float]) -> None:
        self._rows.append(row)
        self._values.extend(values)
        if len(self._rows) >= self.batch_rows:
            self._merge()

    def _merge(self) -> None:
        import numpy as np

        from codesign.pareto import pareto_mask

        if not self._rows:
            return
        rows = np.concatenate([np.frombuffer(self.rows, dtype=np.int64), np.frombuffer(self._rows, dtype=np.int64)])
        vals = np.concatenate([np.frombuffer(self.values, dtype=np.float64),
                               np.frombuffer(self._values, dtype=np.float64)]).reshape(-1, self.n_metrics)
        keep = pareto_mask(vals)
        self.rows, self.values = array("q", rows[keep].tolist()), array("d", vals[keep].ravel().tolist())
        self._rows, self._values = array("q"), array("d")

    def front_rows(self) -> Any:
        import numpy as np

        self._merge()
        return np.sort(np.frombuffer(self.rows, dtype=np.int64))


class _RowSink:
    """Rows in point order -> a Parquet file in row groups; in memory: one row group and the fronts."""

    def __init__(self, path: Path, sp: DesignSpace, labels: Sequence[str]) -> None:
        self.path = path
        self.sp = sp
        self.labels = list(labels)
        self.metrics = list(sp.pareto)
        self.signs = [-1.0 if m in MAXIMIZED else 1.0 for m in self.metrics]  # accuracy: more is better
        self.fronts = {label: StreamingFront(len(self.metrics)) for label in self.labels}
        self.points = 0
        self.rows = 0
        self._buf: list[Row] = []
        self._writer: Any = None
        self._schema: Any = None
        self.columns: list[str] = []

    def add(self, rows: list[Row]) -> None:
        self.points += 1
        for i, r in enumerate(rows):
            if r.get("fpga_fits", True):  # designs that do not fit the FPGA stay off the front
                values = [float("nan") if r.get(m) is None else sign * float(r[m])
                          for m, sign in zip(self.metrics, self.signs, strict=True)]
                self.fronts[r["workload"]].add(self.rows + i, values)
        self._buf.extend(rows)
        self.rows += len(rows)
        if len(self._buf) >= ROW_GROUP_ROWS:
            self.flush()

    def _schema_for(self, rows: list[Row]) -> Any:
        import pyarrow as pa

        first = dict.fromkeys(k for r in rows for k in r)
        self.columns = _column_order(list(first), self.sp)
        fields = []
        inferred = pa.Table.from_pylist(rows).schema
        for c in self.columns:
            if c in self.sp.axes:
                typ = pa.array(list(self.sp.axes[c])).type
            elif c in _INT_COLUMNS:
                typ = pa.int64()
            elif c in _STR_COLUMNS:
                typ = pa.string()
            elif c == "fpga_fits":
                typ = pa.bool_()
            elif c in ("point", "pes", "sram_bytes"):
                typ = pa.int64()
            else:
                typ = inferred.field(c).type
                if pa.types.is_integer(typ) or pa.types.is_null(typ):
                    typ = pa.float64() if c not in _INT_COLUMNS else typ
            fields.append(pa.field(c, typ))
        return pa.schema(fields)

    def flush(self) -> None:
        if not self._buf:
            return
        import pyarrow as pa
        import pyarrow.parquet as pq

        if self._schema is None:
            self._schema = self._schema_for(self._buf)
            self._writer = pq.ParquetWriter(self.path, self._schema)
        table = pa.Table.from_pylist(self._buf, schema=self._schema)
        self._writer.write_table(table, row_group_size=ROW_GROUP_ROWS)
        self._buf = []

    def close(self) -> None:
        self.flush()
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def pareto_rows(self) -> Any:
        """Row numbers on the Pareto front (one front per workload), sorted."""
        import numpy as np

        parts = [f.front_rows() for f in self.fronts.values()]
        return np.sort(np.concatenate(parts)) if parts else np.zeros(0, dtype=np.int64)


_INT_COLUMNS = ("point", "pes", "sram_bytes", "cycles", "macs", "compute_cycles", "stall_cycles")
_STR_COLUMNS = ("workload", "fpga_target", "fpga_part", "fpga_limiting_resource", "fpga_fit_message")


def _finish(rows_path: Path, out: Path, front_rows: Any, meta: Mapping[str, Any]) -> None:
    """``rows_path`` + the Pareto column -> ``out`` (Parquet with the space in its metadata, or CSV),
    row group by row group, through a temporary file renamed at the end."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    tmp = out.with_name(out.name + ".tmp")
    src = pq.ParquetFile(rows_path)
    schema = src.schema_arrow.append(pa.field("pareto", pa.bool_()))
    schema = schema.with_metadata({**(schema.metadata or {}), META_KEY: json.dumps(meta).encode()})
    import numpy as np

    csv = out.suffix.lower() == ".csv"
    start = 0

    def pareto(n: int) -> Any:
        return pa.array(np.isin(np.arange(start, start + n), front_rows), pa.bool_())

    try:
        if csv:
            with open(tmp, "w", newline="") as fh:
                for i in range(src.num_row_groups):
                    t = src.read_row_group(i)
                    t = t.append_column("pareto", pareto(t.num_rows))
                    start += t.num_rows
                    t.to_pandas().to_csv(fh, index=False, header=i == 0)
        else:
            with pq.ParquetWriter(tmp, schema) as writer:
                for i in range(src.num_row_groups):
                    t = src.read_row_group(i)
                    t = t.append_column("pareto", pareto(t.num_rows))
                    start += t.num_rows
                    writer.write_table(t.cast(schema), row_group_size=ROW_GROUP_ROWS)
        os.replace(tmp, out)
    except OSError as e:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise ConfigError(f"cannot write output {str(out)!r}: {e.strerror or e}") from None


def read_results(path: str | Path) -> pd.DataFrame:
    """A sweep results file (Parquet or CSV); ``df.attrs["codesign"]`` holds the space if known."""
    import pandas as pd

    p = Path(path)
    if not p.exists():
        raise ConfigError(f"results file {str(path)!r} does not exist")
    if p.is_dir():
        raise ConfigError(f"results file {str(path)!r} is a directory, not a file")
    try:
        if p.suffix.lower() == ".csv":
            from codesign.safe_yaml import read_text

            read_text(p, what="results table")  # binary or non-UTF-8: one line, not a parser error
            df = pd.read_csv(p)
            meta: dict[str, Any] = {}
        else:
            import pyarrow.parquet as pq

            table = pq.read_table(p)
            raw = (table.schema.metadata or {}).get(META_KEY)
            meta = json.loads(raw) if raw else {}
            df = table.to_pandas()
    except (OSError, ValueError, pd.errors.ParserError) as e:
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise ConfigError(f"{p.name} is not a readable results table: {first}") from None
    if not isinstance(meta, dict):
        meta = {}
    df.attrs["codesign"] = meta
    return df


def _previous_output(output: Path, fingerprint: str) -> dict[int, list[Row]]:
    """Rows of a complete earlier run of the same space at ``output`` (for ``resume``)."""
    if not output.exists() or output.suffix.lower() == ".csv":
        return {}
    try:
        df = read_results(output)
    except ConfigError:
        return {}
    if df.attrs["codesign"].get("fingerprint") != fingerprint:
        return {}
    df = df.drop(columns=["pareto"], errors="ignore")
    done: dict[int, list[Row]] = {}
    for rec in df.to_dict("records"):
        done.setdefault(int(rec["point"]), []).append({k: _py(v) for k, v in rec.items()})
    return done


def _py(v: Any) -> Any:
    return v.item() if hasattr(v, "item") else v


# ---------------------------------------------------------------------------------------------
# the sweep
# ---------------------------------------------------------------------------------------------


@dataclass
class SweepRun:
    """What a sweep wrote: the output, its size, the front, how the rows were obtained."""

    output: Path
    points: int
    rows: int
    front: int
    pareto: tuple[str, ...]
    workloads: list[str]
    evaluated_points: int
    resumed_points: int
    meta: dict[str, Any] = field(default_factory=dict)

    def frame(self) -> pd.DataFrame:
        df = read_results(self.output)
        df.attrs["codesign"] = {**self.meta, "evaluated_points": self.evaluated_points,
                                "resumed_points": self.resumed_points}
        return df


def _prepare(space: DesignSpace | Mapping[str, Any] | str | Path,
             workloads: Sequence[Any] | Any | None, sample: int | None, seed: int | None,
             engine: str | None, pareto: str | Sequence[str] | None) -> DesignSpace:
    from codesign.workloads.layers import Network

    sp = DesignSpace.coerce(space)
    changes: dict[str, Any] = {}
    if workloads is not None:
        single = isinstance(workloads, (str, Mapping, WorkloadSpec, Network))
        items = [workloads] if single else list(workloads)
        if not items:
            raise ConfigError("workloads must be a non-empty list of workload names, mappings or Networks, not []")
        changes["workloads"] = tuple(WorkloadSpec.from_any(w) for w in items)
    if sample is not None:
        changes["sample"] = sample
    if seed is not None:
        changes["seed"] = seed
    if engine is not None:
        changes["engine"] = engine
    if pareto is not None:
        changes["pareto"] = parse_metrics(pareto)
    if changes:
        sp = sp.with_(**changes)
    if not sp.workloads:
        raise ConfigError(f"{sp.source}: workloads must be a non-empty list of workload names or mappings, not []")
    return sp


def run_sweep(
    space: DesignSpace | Mapping[str, Any] | str | Path,
    workloads: Sequence[str | Mapping[str, Any] | WorkloadSpec | Network] | str | Network | None = None,
    *,
    output: str | Path,
    workers: int | None = None,
    resume: bool = False,
    sample: int | None = None,
    seed: int | None = None,
    scheduler: Any = None,
    engine: str | None = None,
    pareto: str | Sequence[str] | None = None,
    chunk_size: int | None = None,
    progress: bool = False,
    on_chunk: Callable[[int, int], None] | None = None,
    journal: bool = True,
) -> SweepRun:
    """Like :func:`sweep`, but writes ``output`` without holding the table in memory and returns a
    :class:`SweepRun` (what the CLI uses: a 10^6-point sweep stays within a few hundred MB)."""
    sp = _prepare(space, workloads, sample, seed, engine, pareto)
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
        raise ConfigError(f"workers must be a positive integer, not {workers!r}")
    if chunk_size is not None and (isinstance(chunk_size, bool) or not isinstance(chunk_size, int)
                                   or chunk_size < 1):
        raise ConfigError(f"chunk_size must be a positive integer, not {chunk_size!r}")
    out = check_output(output)
    if isinstance(scheduler, str):
        probe_scheduler(scheduler)  # a bad or unreachable address fails before anything runs
    if resume and not journal:
        raise ConfigError("resume needs an output file")

    lock = OutputLock(out)
    lock.acquire()
    try:
        networks = sp.load_workloads()  # fail early, in this process, on a bad workload
        if "accuracy" in sp.pareto:
            check_workloads(networks)
        if journal and not resume and journal_path(out).exists():
            raise ConfigError(f"{journal_path(out).name} holds an interrupted sweep; add --resume to continue it "
                              f"or delete it to start over")
        with contextlib.ExitStack() as stack:
            client = stack.enter_context(_dask_client(scheduler, workers)) if scheduler is not None else None
            return _run_locked(sp, out, workers=workers, resume=resume, client=client, chunk_size=chunk_size,
                               progress=progress, on_chunk=on_chunk, use_journal=journal)
    finally:
        lock.release()


def _fast_space(sp: DesignSpace, points: Any) -> bool:
    """Whether the fast path (:mod:`codesign.sim.fastpath`) takes the space's points (judged by
    its first pending point: the axes of a space rarely switch the fast path on and off)."""
    from codesign.sim.fastpath import declines

    return sp.engine == "closed_form" and len(points) > 0 and not declines(sp.config(int(points[0])))


def _run_locked(sp: DesignSpace, out: Path, *, workers: int | None, resume: bool, client: Any,
                chunk_size: int | None, progress: bool, on_chunk: Callable[[int, int], None] | None,
                use_journal: bool) -> SweepRun:
    import numpy as np

    points = sp.point_ids()
    space_dict = sp.to_dict()
    fingerprint = sp.fingerprint()
    labels = [w.display_name for w in sp.workloads]

    done: dict[int, list[Row]] = {}
    jrnl: Journal | None = None
    if use_journal:
        jrnl = Journal(journal_path(out), fingerprint, space_dict)
        if resume:
            done = {**_previous_output(out, fingerprint), **jrnl.read()}
    if done:
        keep = np.isin(np.fromiter(done, dtype=np.int64, count=len(done)), points)
        done = {p: rows for (p, rows), k in zip(done.items(), keep, strict=True)
                if k and [r["workload"] for r in rows] == labels}
    pending = points[~np.isin(points, np.fromiter(done, dtype=np.int64, count=len(done)))] if done else points

    n_workers = workers or os.cpu_count() or 1
    if chunk_size is None:  # the fast path takes a chunk's points at once: larger chunks for it
        most, per_worker = (FAST_CHUNK, 2) if _fast_space(sp, pending) else (64, 8)
        chunk_size = max(1, min(most, math.ceil(len(pending) / (max(n_workers, 2) * per_worker))))
    chunks = [pending[i:i + chunk_size] for i in range(0, len(pending), chunk_size)]

    rows_path = out.with_name(f".{out.name}.rows.tmp")
    sink = _RowSink(rows_path, sp, labels)
    done_order = sorted(done)
    cursor = 0  # next done point to write
    finished = len(done)
    bar = _Progress(progress, total=len(points), done=len(done))

    def write_done_before(limit: float) -> None:
        nonlocal cursor
        while cursor < len(done_order) and done_order[cursor] < limit:
            sink.add(done[done_order[cursor]])
            cursor += 1

    if jrnl is not None:
        jrnl.open(done)
    stream: Iterator[tuple[int, Batch]] | None = None
    try:
        if client is not None:
            stream = _run_dask(space_dict, fingerprint, chunks, client)
        elif n_workers == 1 or len(chunks) <= 1:
            stream = _run_inline(space_dict, fingerprint, chunks)
        else:
            stream = _run_pool(space_dict, fingerprint, chunks, min(n_workers, len(chunks)))
        waiting: dict[int, Batch] = {}
        nxt = 0
        for i, batch in stream:
            if jrnl is not None:
                jrnl.append(batch)
            waiting[i] = batch
            while nxt in waiting:  # write in point order
                for p, rows in waiting.pop(nxt):
                    write_done_before(p)
                    sink.add(rows)
                nxt += 1
            finished += len(batch)
            bar.advance(len(batch))
            if on_chunk is not None:
                on_chunk(finished, len(points))
        write_done_before(math.inf)
        sink.close()
    except BaseException:
        if isinstance(stream, types.GeneratorType):
            stream.close()  # now, not when the traceback is freed: the pool's workers are stopped
        sink.close()
        with contextlib.suppress(OSError):
            rows_path.unlink()
        raise
    finally:
        bar.close()
        if jrnl is not None:
            jrnl.close()

    meta = {"version": JOURNAL_VERSION, "fingerprint": fingerprint, "space": space_dict,
            "axes": list(sp.axis_names), "pareto": list(sp.pareto), "workloads": labels}
    try:
        front = sink.pareto_rows()
        _finish(rows_path, out, front, meta)
    finally:
        with contextlib.suppress(OSError):
            rows_path.unlink()
    if jrnl is not None:
        jrnl.remove()
    return SweepRun(output=out, points=sink.points, rows=sink.rows, front=len(front), pareto=sp.pareto,
                    workloads=labels, evaluated_points=len(pending), resumed_points=len(done), meta=meta)


def sweep(
    space: DesignSpace | Mapping[str, Any] | str | Path,
    workloads: Sequence[str | Mapping[str, Any] | WorkloadSpec | Network] | str | Network | None = None,
    *,
    workers: int | None = None,
    output: str | Path | None = None,
    resume: bool = False,
    sample: int | None = None,
    seed: int | None = None,
    scheduler: Any = None,
    engine: str | None = None,
    pareto: str | Sequence[str] | None = None,
    chunk_size: int | None = None,
    progress: bool = False,
    on_chunk: Callable[[int, int], None] | None = None,
) -> pd.DataFrame:
    """Evaluate a design space; one row per (point, workload), sorted by point id.

    ``space``: a :class:`DesignSpace`, a mapping like the YAML, or a YAML path. ``workloads``
    replaces the space's workloads: zoo names, files, mappings like the YAML's, or in-memory
    :class:`~codesign.workloads.layers.Network` objects. ``workers``: processes of the local pool
    (default: CPU count; 1 runs in this process). ``scheduler``: ``"local"`` (a Dask LocalCluster
    of ``workers`` processes), a Dask scheduler address (``tcp://host:8786``) or a
    ``distributed.Client`` to run on instead. ``output``: Parquet/CSV file, journaled while the
    sweep runs; ``resume`` continues an interrupted sweep of the same space into it.
    ``sample``/``seed``: a seeded random subset of the feasible points. ``engine``:
    ``closed_form`` (default; alias ``analytic``) or ``simpy``. ``pareto``: 2 or 3 metrics
    (default the space's, ``latency_ms,energy_pj``) marked per workload in ``pareto``.
    """
    kwargs: dict[str, Any] = dict(workers=workers, resume=resume, sample=sample, seed=seed, scheduler=scheduler,
                                  engine=engine, pareto=pareto, chunk_size=chunk_size, progress=progress,
                                  on_chunk=on_chunk)
    if output is not None:
        return run_sweep(space, workloads, output=output, **kwargs).frame()
    if resume:
        raise ConfigError("resume needs an output file")
    with tempfile.TemporaryDirectory(prefix="codesign-sweep-") as tmp:
        return run_sweep(space, workloads, output=Path(tmp) / "results.parquet", journal=False,
                         **kwargs).frame()


def _column_order(columns: Sequence[str], sp: DesignSpace) -> list[str]:
    first = ["point", "workload", *sp.axis_names, "pes", "sram_bytes", "cycles", "latency_ms", "energy_pj",
             "energy_uj", "edp", "area_mm2", "utilization", "peak_dram_bytes_per_cycle"]
    return [c for c in first if c in columns] + [c for c in columns if c not in first]


class _CallableModule(types.ModuleType):
    """``codesign.sweep`` is both this module and the function :func:`sweep`: once the module is
    imported, the package attribute is the module, so the module forwards calls to the function."""

    def __call__(self, *args: Any, **kwargs: Any) -> pd.DataFrame:
        return sweep(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
