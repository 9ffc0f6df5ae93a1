"""The sweep itself: :func:`sweep` (a DataFrame) and :func:`run_sweep` (streamed to a file), the
loop that takes chunks from an executor, journals them and writes them in point order."""

from __future__ import annotations

import contextlib
import math
import os
import tempfile
import types
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from codesign.accuracy import check_workloads
from codesign.errors import ConfigError
from codesign.space import DesignSpace, WorkloadSpec, parse_metrics
from codesign.sweeps.evaluation import FAST_CHUNK
from codesign.sweeps.executors import Batch, _dask_client, _run_dask, _run_inline, _run_pool, probe_scheduler
from codesign.sweeps.journal import JOURNAL_VERSION, Journal, journal_path
from codesign.sweeps.output import OutputLock, _finish, _previous_output, _RowSink, check_output, read_results

if TYPE_CHECKING:
    import pandas as pd

    from codesign.workloads.layers import Network

Row = dict[str, Any]


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
             engine: str | None, pareto: str | Sequence[str] | None, clip_bits: bool | None = None,
             include_model_only: bool | None = None) -> DesignSpace:
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
    for flag, value in (("clip_bits", clip_bits), ("include_model_only", include_model_only)):
        if value is not None:
            if not isinstance(value, bool):
                raise ConfigError(f"{flag} must be True or False, not {value!r}")
            if value:  # the space's own true is kept when the caller does not ask
                changes[flag] = True
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
    clip_bits: bool | None = None,
    include_model_only: bool | None = None,
) -> SweepRun:
    """Like :func:`sweep`, but writes ``output`` without holding the table in memory and returns a
    :class:`SweepRun` (what the CLI uses: a 10^6-point sweep stays within a few hundred MB)."""
    sp = _prepare(space, workloads, sample, seed, engine, pareto, clip_bits, include_model_only)
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
        check_bits(sp, networks)
        if journal and not resume and journal_path(out).exists():
            raise ConfigError(f"{journal_path(out).name} holds an interrupted sweep; add --resume to continue it "
                              f"or delete it to start over")
        with contextlib.ExitStack() as stack:
            client = stack.enter_context(_dask_client(scheduler, workers)) if scheduler is not None else None
            return _run_locked(sp, out, workers=workers, resume=resume, client=client, chunk_size=chunk_size,
                               progress=progress, on_chunk=on_chunk, use_journal=journal)
    finally:
        lock.release()


def check_bits(sp: DesignSpace, networks: Mapping[str, Network]) -> None:
    """Without ``clip_bits``, a workload operand wider than some point's array bits is an error naming
    the workload, the layer and the bits (:func:`codesign.workloads.precision.fit_to_array`, the rule
    of ``codesign.simulate`` and ``codesign simulate``)."""
    if sp.clip_bits:
        return
    from codesign.errors import WorkloadError
    from codesign.workloads.precision import fit_to_array

    ids = sp.point_ids()
    digits = sp._digits(ids)
    wb = sp._field_array("weight_bits", digits, len(ids)).astype(int)
    ab = sp._field_array("act_bits", digits, len(ids)).astype(int)
    for w, a in sorted(set(zip(wb.tolist(), ab.tolist(), strict=True))):
        for label, net in networks.items():
            try:
                fit_to_array(net, w, a)
            except WorkloadError as e:
                raise WorkloadError(f"{sp.source}: workload {label!r} on the points with weight_bits {w}, act_bits "
                                    f"{a}: {e}; in a space: clip_bits: true") from None


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
    clip_bits: bool | None = None,
    include_model_only: bool | None = None,
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
    (default the space's, ``latency_ms,energy_pj``) marked per workload in ``pareto``, over the
    points ``codesign generate`` builds (column ``buildable``) unless ``include_model_only``.
    ``clip_bits``: a workload operand wider than a point's array bits runs at the array's bits
    (column ``clipped``) instead of being an error naming the layer and the bits.
    """
    kwargs: dict[str, Any] = dict(workers=workers, resume=resume, sample=sample, seed=seed, scheduler=scheduler,
                                  engine=engine, pareto=pareto, chunk_size=chunk_size, progress=progress,
                                  on_chunk=on_chunk, clip_bits=clip_bits, include_model_only=include_model_only)
    if output is not None:
        return run_sweep(space, workloads, output=output, **kwargs).frame()
    if resume:
        raise ConfigError("resume needs an output file")
    with tempfile.TemporaryDirectory(prefix="codesign-sweep-") as tmp:
        return run_sweep(space, workloads, output=Path(tmp) / "results.parquet", journal=False,
                         **kwargs).frame()


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
