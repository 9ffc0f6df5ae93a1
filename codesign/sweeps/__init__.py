"""Design-space sweeps: evaluate every point of a :class:`~codesign.space.DesignSpace` on every
workload, in a local process pool or on a Dask cluster, journaled so that a killed sweep resumes.

The package is split by concern (the function a user calls is :func:`codesign.sweep`, this
package is ``codesign.sweeps``):

* :mod:`~codesign.sweeps.evaluation`: each point goes through one pure function, :func:`evaluate`,
  ``(config, network) -> row``; with the closed-form engine a worker evaluates a chunk's points
  together where it can (:mod:`codesign.sim.fastpath`: numpy over the points, the same numbers to
  the last bit) and point by point where the fast path declines.
* :mod:`~codesign.sweeps.executors`: inline, a local process pool or a Dask cluster; workers exit
  when the sweep's process dies, however it dies.
* :mod:`~codesign.sweeps.journal`: the rows of a finished chunk are appended to a journal next to
  the output (``results.parquet.journal``: one JSON line per point), read by ``resume=True``.
* :mod:`~codesign.sweeps.output`: the lock on the output (``results.parquet.lock``), the rows
  streamed in point order to the output in row groups (memory stays bounded by the chunks in
  flight), the streaming Pareto front, the final Parquet or CSV file (both carry the space) and
  :func:`read_results`.
* :mod:`~codesign.sweeps.run`: :func:`sweep` and :func:`run_sweep`, which tie these together.

Rows are sorted by point id (then workload in the order of the space), so the table is the same
whatever the worker count or executor.
"""

from __future__ import annotations

from codesign.sweeps.evaluation import FPGA_COLUMNS, engine_name, evaluate, evaluate_chunk, metrics_row, summary_row
from codesign.sweeps.executors import parse_scheduler, probe_scheduler
from codesign.sweeps.journal import Journal, journal_path
from codesign.sweeps.output import OutputLock, StreamingFront, check_output, read_results
from codesign.sweeps.run import SweepRun, run_sweep, sweep

__all__ = [
    "FPGA_COLUMNS",
    "Journal",
    "OutputLock",
    "StreamingFront",
    "SweepRun",
    "check_output",
    "engine_name",
    "evaluate",
    "evaluate_chunk",
    "journal_path",
    "metrics_row",
    "parse_scheduler",
    "probe_scheduler",
    "read_results",
    "run_sweep",
    "summary_row",
    "sweep",
]
