"""The sweep's output: the lock on it, the rows streamed to a Parquet file in point order, the
streaming Pareto front, the final Parquet/CSV file with the space in its metadata, and reading it back."""

from __future__ import annotations

import contextlib
import json
import os
from array import array
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from codesign.errors import ConfigError
from codesign.pareto import MAXIMIZED
from codesign.space import DesignSpace

if TYPE_CHECKING:
    import pandas as pd


Row = dict[str, Any]


META_KEY = b"codesign.sweep"


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
            # designs that do not fit the FPGA stay off the front, and so do designs codesign generate
            # does not build unless the space includes them
            if r.get("fpga_fits", True) and (self.sp.include_model_only or r.get("buildable", True)):
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
            elif c in _BOOL_COLUMNS:
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


_INT_COLUMNS = ("point", "pes", "sram_bytes", "cycles", "macs", "compute_cycles", "stall_cycles", "dram_bytes")
_BOOL_COLUMNS = ("fpga_fits", "buildable", "clipped")
#: the first line of a CSV results file: this prefix, then the sweep's metadata (its space) as JSON
CSV_META_PREFIX = "#codesign.sweep "
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
                fh.write(CSV_META_PREFIX + json.dumps(meta) + "\n")  # key order kept: axes number points
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

            text = read_text(p, what="results table")  # binary or non-UTF-8: one line, not a parser error
            meta: dict[str, Any] = {}
            skip = 0
            if text.startswith(CSV_META_PREFIX):  # the space of a codesign sweep written as CSV
                first = text.split("\n", 1)[0]
                try:
                    meta = json.loads(first[len(CSV_META_PREFIX):])
                except json.JSONDecodeError as e:
                    raise ValueError(f"its first line (the sweep's space) is not JSON: {e}") from None
                skip = 1
            df = pd.read_csv(p, skiprows=skip)
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


def _column_order(columns: Sequence[str], sp: DesignSpace) -> list[str]:
    first = ["point", "workload", *sp.axis_names, "pes", "sram_bytes", "cycles", "latency_ms", "energy_pj",
             "energy_uj", "edp", "area_mm2", "utilization", "peak_dram_bytes_per_cycle"]
    return [c for c in first if c in columns] + [c for c in columns if c not in first]
