"""Design-space sweeps: evaluate every point of a :class:`~codesign.space.DesignSpace` on every
workload, in a local process pool or on a Dask cluster, journaled so that a killed sweep resumes.

Each point goes through one pure function, :func:`evaluate`, ``(config, network) -> row``. The
rows of a finished chunk of points are appended to a journal next to the output
(``results.parquet.journal``: one JSON line per point, flushed and fsynced) the moment they
arrive; at the end the journal is consolidated into the output (Parquet or CSV, written to a
temporary file and renamed) and removed. ``resume=True`` reads the journal (and a previous
complete output of the same space) and evaluates only the points not in it.

Rows are sorted by point id (then workload in the order of the space), so the table is the same
whatever the worker count or executor.
"""

from __future__ import annotations

import json
import math
import os
import sys
import types
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from pathlib import Path
from typing import TYPE_CHECKING, Any

from codesign.accuracy import check_workloads, sweep_accuracy
from codesign.errors import ConfigError
from codesign.sim.config import AcceleratorConfig
from codesign.space import DesignSpace, WorkloadSpec, area_function, parse_metrics

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
    s = result.summary()
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
    }
    for key, value in s.items():
        if key.startswith("energy_") and key.endswith("_pj") and key != "energy_pj":
            row[key] = float(value)
    return row


def engine_name(engine: str) -> str:
    """The simulator's name for ``engine`` ("analytic" is the closed-form twin of "simpy")."""
    from codesign.sim import engine as eng

    names = tuple(getattr(eng, "ENGINES", ("simpy", "analytic")))
    if engine in names:
        return engine
    if engine == "analytic":
        for alias in ("closed_form", "closed-form"):
            if alias in names:
                return alias
    raise ConfigError(f"engine must be one of {', '.join(names)}, not {engine!r}")


def evaluate(config: AcceleratorConfig, network: Network, *, engine: str = "analytic") -> NetworkResult:
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
        from codesign.sim.engine import simulate_layer
        from codesign.sim.result import NetworkResult

        batch = self.network.batch
        results = []
        for layer in self.anonymous:
            r = cache.get(layer)
            if r is None:
                r = cache[layer] = simulate_layer(layer, batch, config, "native", engine)
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
        values = self.space.values(point)
        config = self.space.config(point)
        area = float(self.area_fn(config))
        fixed = {"point": point}
        fpga = fpga_columns(config, self.space.fpga) if self.space.fpga is not None else {}
        cache: dict[Any, Any] = {}  # identical (layer, config) pairs of this point: once, for all workloads
        rows = []
        for label, ev in self.evaluators:
            result = ev.run(config, self.engine, cache)
            row = {**fixed, "workload": label, **values, "pes": config.pes,
                   "sram_bytes": config.sram_bytes, **metrics_row(result, area), **fpga}
            if "accuracy" in self.space.pareto:  # top-1 of the integer network (codesign.accuracy)
                row["accuracy"] = sweep_accuracy(ev.network, config)
            if fpga:
                fmax = fpga["fpga_fmax_mhz"]
                row["fpga_latency_us"] = result.cycles / fmax if fmax == fmax and fmax else float("nan")
            rows.append(row)
        return rows


FPGA_COLUMNS = ("fpga_target", "fpga_part", "fpga_fits", "fpga_limiting_resource", "fpga_fit_message",
                "fpga_luts", "fpga_ffs", "fpga_dsps", "fpga_brams", "fpga_carries", "fpga_lut_util",
                "fpga_ff_util", "fpga_dsp_util", "fpga_bram_util", "fpga_io_util", "fpga_max_util",
                "fpga_fmax_mhz")


def fpga_columns(config: AcceleratorConfig, fpga: Mapping[str, Any]) -> Row:
    """FPGA figures of a design point (``codesign.hdl.fpga.fpga_metrics``). A design the
    generator or the tools cannot build is an infeasible point (``fpga_fits`` false) with the
    reason in ``fpga_fit_message``, not an error of the whole sweep."""
    from codesign.errors import CodesignError
    from codesign.hdl.fpga import device, fpga_metrics

    nan = float("nan")
    try:
        m = fpga_metrics(config, fpga["target"], pnr=fpga["pnr"])
    except CodesignError as e:
        row: Row = {c: nan for c in FPGA_COLUMNS}
        row.update(fpga_target=fpga["target"], fpga_part=device(fpga["target"]).part, fpga_fits=False,
                   fpga_limiting_resource="", fpga_fit_message=str(e))
        return row
    row = {c: m.get(c) for c in FPGA_COLUMNS}  # fpga_cached is left out: it depends on the run
    for c in FPGA_COLUMNS:
        if row[c] is None:
            row[c] = nan
    return row


_STATE: dict[str, _WorkerState] = {}


def _state(space_dict: Mapping[str, Any]) -> _WorkerState:
    key = json.dumps(space_dict, sort_keys=True)
    st = _STATE.get(key)
    if st is None:
        _STATE.clear()
        st = _STATE[key] = _WorkerState(space_dict)
    return st


def evaluate_chunk(space_dict: Mapping[str, Any], points: Sequence[int]) -> list[tuple[int, list[Row]]]:
    """Rows of each point of ``points`` (a task of the pool or of Dask)."""
    st = _state(space_dict)
    return [(p, st.point_rows(p)) for p in points]


def _init_worker(space_dict: Mapping[str, Any]) -> None:
    _state(space_dict)


# ---------------------------------------------------------------------------------------------
# journal
# ---------------------------------------------------------------------------------------------


def journal_path(output: Path) -> Path:
    return output.with_name(output.name + ".journal")


class Journal:
    """Append-only JSON-lines file: a header line, then one line per finished point.

    A line is written with a single ``write`` of the whole line, then flushed and fsynced. A
    process killed mid-write leaves at most one truncated last line, which reading ignores.
    """

    def __init__(self, path: Path, fingerprint: str, space_dict: Mapping[str, Any]) -> None:
        self.path = path
        self.fingerprint = fingerprint
        self.space_dict = space_dict
        self._fh: Any = None

    def header(self) -> str:
        return json.dumps({"journal": "codesign.sweep", "version": JOURNAL_VERSION,
                           "fingerprint": self.fingerprint, "space": self.space_dict}, sort_keys=True)

    def read(self) -> dict[int, list[Row]]:
        """Finished points in the journal (an absent journal has none)."""
        done: dict[int, list[Row]] = {}
        if not self.path.exists():
            return done
        with open(self.path, "rb") as fh:
            lines = fh.read().split(b"\n")
        try:
            head = json.loads(lines[0])
        except (json.JSONDecodeError, UnicodeDecodeError):
            head = None
        if not isinstance(head, dict) or head.get("journal") != "codesign.sweep":
            if len(lines) == 1 and not lines[0].strip():
                return done  # killed before the header was complete
            raise ConfigError(f"{self.path.name} is not a codesign sweep journal; move it away to start over")
        if head.get("fingerprint") != self.fingerprint:
            raise ConfigError(
                f"{self.path.name} was written for a different design space (fingerprint "
                f"{head.get('fingerprint')}, this space {self.fingerprint}); delete it or write to another output"
            )
        for line in lines[1:]:
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
        os.fsync(self._fh.fileno())

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None

    def remove(self) -> None:
        self.close()
        self.path.unlink(missing_ok=True)


# ---------------------------------------------------------------------------------------------
# executors
# ---------------------------------------------------------------------------------------------


def _chunks(points: Sequence[int], size: int) -> list[list[int]]:
    return [list(points[i:i + size]) for i in range(0, len(points), size)]


def _run_inline(space_dict: Mapping[str, Any], chunks: list[list[int]]) -> Iterator[list[tuple[int, list[Row]]]]:
    for chunk in chunks:
        yield evaluate_chunk(space_dict, chunk)


def _run_pool(space_dict: Mapping[str, Any], chunks: list[list[int]], workers: int
              ) -> Iterator[list[tuple[int, list[Row]]]]:
    import multiprocessing

    # forkserver: no fork of a threaded parent (the progress bar runs a thread)
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["codesign.sweep"])
    with ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_init_worker,
                             initargs=(space_dict,)) as pool:
        queue = list(reversed(chunks))
        running: set[Future[Any]] = set()
        try:
            while queue or running:
                while queue and len(running) < 2 * workers:
                    running.add(pool.submit(evaluate_chunk, space_dict, queue.pop()))
                finished, running = wait(running, return_when=FIRST_COMPLETED)
                for fut in finished:
                    yield fut.result()
        finally:
            for fut in running:
                fut.cancel()


def _run_dask(space_dict: Mapping[str, Any], chunks: list[list[int]], scheduler: Any
              ) -> Iterator[list[tuple[int, list[Row]]]]:
    try:
        from distributed import Client, as_completed
    except ModuleNotFoundError as e:  # pragma: no cover - dask is in the sweep extra
        raise ConfigError(f"--scheduler needs dask.distributed (pip install 'codesign[sweep]'): {e}") from e
    own = not isinstance(scheduler, Client)
    if own:
        if not isinstance(scheduler, str) or not scheduler:
            raise ConfigError(f"scheduler must be an address like tcp://host:8786, not {scheduler!r}")
        try:
            client = Client(scheduler, timeout=10, set_as_default=False)
        except OSError as e:
            raise ConfigError(f"cannot reach the Dask scheduler at {scheduler!r}: {e}") from e
    else:
        client = scheduler
    try:
        futures = [client.submit(evaluate_chunk, space_dict, chunk, pure=False) for chunk in chunks]
        for fut in as_completed(futures):
            yield fut.result()
    finally:
        if own:
            client.close()


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
# the sweep
# ---------------------------------------------------------------------------------------------


def _write_table(df: pd.DataFrame, output: Path, meta: Mapping[str, Any]) -> None:
    tmp = output.with_name(output.name + ".tmp")
    suffix = output.suffix.lower()
    if suffix == ".csv":
        df.to_csv(tmp, index=False)
    else:
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pa.Table.from_pandas(df, preserve_index=False)
        table = table.replace_schema_metadata({**(table.schema.metadata or {}), META_KEY: json.dumps(meta)})
        pq.write_table(table, tmp)
    os.replace(tmp, output)


def read_results(path: str | Path) -> pd.DataFrame:
    """A sweep results file (Parquet or CSV); ``df.attrs["codesign"]`` holds the space if known."""
    import pandas as pd

    p = Path(path)
    if not p.exists():
        raise ConfigError(f"results file {str(path)!r} does not exist")
    try:
        if p.suffix.lower() == ".csv":
            df = pd.read_csv(p)
            meta: dict[str, Any] = {}
        else:
            import pyarrow.parquet as pq

            table = pq.read_table(p)
            raw = (table.schema.metadata or {}).get(META_KEY)
            meta = json.loads(raw) if raw else {}
            df = table.to_pandas()
    except (OSError, ValueError) as e:
        raise ConfigError(f"{p.name} is not a readable results table: {e}") from e
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


def sweep(
    space: DesignSpace | Mapping[str, Any] | str | Path,
    workloads: Sequence[str | Mapping[str, Any] | WorkloadSpec] | str | None = None,
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
    replaces the space's workloads. ``workers``: processes of the local pool (default: CPU
    count; 1 runs in this process). ``scheduler``: a Dask scheduler address (or
    ``distributed.Client``) to run on instead. ``output``: Parquet/CSV file, journaled while the
    sweep runs; ``resume`` continues an interrupted sweep of the same space into it.
    ``sample``/``seed``: a seeded random subset of the feasible points. ``pareto``: 2 or 3
    metrics (default the space's, ``latency_ms,energy_pj``) marked per workload in ``pareto``.
    """
    import pandas as pd

    from codesign.pareto import mark_pareto

    sp = DesignSpace.coerce(space)
    changes: dict[str, Any] = {}
    if workloads is not None:
        items = [workloads] if isinstance(workloads, (str, Mapping, WorkloadSpec)) else list(workloads)
        if not items:
            raise ConfigError("workloads must be a non-empty list of workload names or mappings, not []")
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
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
        raise ConfigError(f"workers must be a positive integer, not {workers!r}")
    if chunk_size is not None and (isinstance(chunk_size, bool) or not isinstance(chunk_size, int)
                                   or chunk_size < 1):
        raise ConfigError(f"chunk_size must be a positive integer, not {chunk_size!r}")
    out = Path(output) if output is not None else None
    if out is not None and out.suffix.lower() not in (".parquet", ".csv"):
        raise ConfigError(f"output must be a .parquet or .csv file, not {str(output)!r}")

    networks = sp.load_workloads()  # fail early, in this process, on a bad workload
    if "accuracy" in sp.pareto:
        check_workloads(networks)
    points = sp.points()
    space_dict = sp.to_dict()
    fingerprint = sp.fingerprint()
    labels = [w.display_name for w in sp.workloads]

    done: dict[int, list[Row]] = {}
    journal: Journal | None = None
    if out is not None:
        if not out.parent.exists():
            raise ConfigError(f"output directory {str(out.parent)!r} does not exist")
        journal = Journal(journal_path(out), fingerprint, space_dict)
        if resume:
            done = {**_previous_output(out, fingerprint), **journal.read()}
        elif journal.path.exists():
            raise ConfigError(f"{journal.path.name} holds an interrupted sweep; add --resume to continue it "
                              f"or delete it to start over")
    elif resume:
        raise ConfigError("resume needs an output file")
    wanted = set(points)
    done = {p: rows for p, rows in done.items() if p in wanted and [r["workload"] for r in rows] == labels}
    pending = [p for p in points if p not in done]

    n_workers = workers or os.cpu_count() or 1
    if chunk_size is None:
        chunk_size = max(1, min(64, math.ceil(len(pending) / (max(n_workers, 2) * 8))))
    chunks = _chunks(pending, chunk_size)

    results = dict(done)
    bar = _Progress(progress, total=len(points), done=len(done))
    if journal is not None:
        journal.open(done)
    try:
        if scheduler is not None:
            stream = _run_dask(space_dict, chunks, scheduler)
        elif n_workers == 1 or len(chunks) <= 1:
            stream = _run_inline(space_dict, chunks)
        else:
            stream = _run_pool(space_dict, chunks, min(n_workers, len(chunks)))
        for batch in stream:
            if journal is not None:
                journal.append(batch)
            for p, rows in batch:
                results[p] = rows
            bar.advance(len(batch))
            if on_chunk is not None:
                on_chunk(len(results), len(points))
    finally:
        bar.close()
        if journal is not None:
            journal.close()

    rows = [r for p in sorted(results) for r in results[p]]
    df = pd.DataFrame(rows)
    df = df[_column_order(df, sp)]
    if "fpga_fits" in df.columns:
        # designs that do not fit the FPGA are marked and stay off the Pareto front
        df["pareto"] = False
        fits = df["fpga_fits"].astype(bool)
        if fits.any():
            df.loc[fits, "pareto"] = mark_pareto(df[fits], sp.pareto, by="workload")
    else:
        df["pareto"] = mark_pareto(df, sp.pareto, by="workload")
    meta = {"version": JOURNAL_VERSION, "fingerprint": fingerprint, "space": space_dict,
            "axes": list(sp.axis_names), "pareto": list(sp.pareto), "workloads": labels}
    if out is not None and journal is not None:
        _write_table(df, out, meta)
        journal.remove()
    # how this run got its rows (not written to the file: the table does not depend on it)
    df.attrs["codesign"] = {**meta, "evaluated_points": len(pending), "resumed_points": len(done)}
    return df


def _column_order(df: pd.DataFrame, sp: DesignSpace) -> list[str]:
    first = ["point", "workload", *sp.axis_names, "pes", "sram_bytes", "cycles", "latency_ms", "energy_pj",
             "energy_uj", "edp", "area_mm2", "utilization", "peak_dram_bytes_per_cycle"]
    return [c for c in first if c in df.columns] + [c for c in df.columns if c not in first]



class _CallableModule(types.ModuleType):
    """``codesign.sweep`` is both this module and the function :func:`sweep`: once the module is
    imported, the package attribute is the module, so the module forwards calls to the function."""

    def __call__(self, *args: Any, **kwargs: Any) -> pd.DataFrame:
        return sweep(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
