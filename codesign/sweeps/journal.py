"""The journal of a running sweep: one JSON line per finished point next to the output, read by
``resume``."""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from codesign.errors import ConfigError

if TYPE_CHECKING:

    pass

Row = dict[str, Any]


JOURNAL_VERSION = 1


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
