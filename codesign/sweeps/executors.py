"""Executors: each yields (chunk index, rows of the chunk), keeping at most a window of chunks
submitted and not yet consumed: inline, a local process pool (forkserver), or a Dask cluster.
Workers exit when the sweep's process dies, however it dies."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import sys
import threading
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from typing import TYPE_CHECKING, Any

from codesign.errors import ConfigError
from codesign.sweeps.evaluation import _state, evaluate_chunk

if TYPE_CHECKING:

    pass

Row = dict[str, Any]
Batch = list[tuple[int, list[Row]]]


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


def _run_inline(space_dict: Mapping[str, Any], key: str, chunks: Sequence[Any]
                ) -> Iterator[tuple[int, Batch]]:
    for i, chunk in enumerate(chunks):
        yield i, evaluate_chunk(space_dict, chunk, key)


def _run_pool(space_dict: Mapping[str, Any], key: str, chunks: Sequence[Any], workers: int
              ) -> Iterator[tuple[int, Batch]]:
    import multiprocessing

    # forkserver: no fork of a threaded parent (the progress bar runs a thread)
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["codesign.sweeps.evaluation"])
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
