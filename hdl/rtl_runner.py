"""Build the accelerator's Verilog with Icarus and run the cocotb bench on a job of tiles.

One build directory per design (config + hardware source hash), built once under a file lock,
so parallel pytest workers and ``codesign verify`` runs share it safely. Each run gets its own
test directory.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
from pathlib import Path
from typing import Any

from codesign.errors import ToolError
from codesign.sim.config import AcceleratorConfig

_HDL_SOURCES = ("array.py", "control.py", "top.py", "plan.py", "export.py")
_LAYER_SOURCES = (*_HDL_SOURCES, "layer.py", "dma.py", "sequencer.py", "regs.py", "axi_mem_model.v",
                  "layer_bench.py")


def icarus_available() -> bool:
    return shutil.which("iverilog") is not None and shutil.which("vvp") is not None


def cache_root() -> Path:
    """``$CODESIGN_CACHE_DIR`` or ``$XDG_CACHE_HOME/codesign`` (``~/.cache/codesign``)."""
    env = os.environ.get("CODESIGN_CACHE_DIR")
    if env:
        return Path(env)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "codesign"


def design_key(config: AcceleratorConfig, sources: tuple[str, ...] = _HDL_SOURCES) -> str:
    h = hashlib.sha256(json.dumps(config.to_dict(), sort_keys=True).encode())
    here = Path(__file__).parent
    h.update((here.parent / "sim" / "tileplan.py").read_bytes() if (here.parent / "sim").is_dir() else b"")
    for name in sources:
        h.update((here / name).read_bytes())
    return h.hexdigest()[:16]


def build(config: AcceleratorConfig) -> tuple[str, Path]:
    """``(top, build_dir)`` of the Icarus build for ``config`` (built if missing)."""
    if not icarus_available():
        raise ToolError("iverilog is not installed (Debian/Ubuntu: apt-get install iverilog)")
    from filelock import FileLock

    from codesign.hdl.export import verilog_for
    from codesign.hdl.top import top_name

    top = top_name(config)
    bdir = cache_root() / "rtl" / f"{top}-{design_key(config)}"
    bdir.mkdir(parents=True, exist_ok=True)
    marker = bdir / "built.ok"
    with FileLock(str(bdir) + ".lock"):
        if not marker.exists():
            name, text = verilog_for(config)
            vfile = bdir / f"{name}.v"
            tmp = bdir / f".{name}.v.{os.getpid()}.tmp"
            tmp.write_text(text)
            os.replace(tmp, vfile)
            from cocotb_tools.runner import get_runner

            runner = get_runner("icarus")
            try:
                runner.build(sources=[vfile], hdl_toplevel=top, build_dir=bdir / "sim_build",
                             timescale=("1ns", "1ps"), always=True, log_file=bdir / "build.log")
            except (SystemExit, Exception) as e:
                raise ToolError(f"Icarus build of {top} failed: {_tail(bdir / 'build.log')}") from e
            marker.write_text("ok\n")
    return top, bdir


def depth_bucket(words: int) -> int:
    """DRAM model depth (beats) for an image of ``words`` beats: a power of two, at least 2**12."""
    return 1 << max(12, (max(1, words) - 1).bit_length())


def build_layer(config: AcceleratorConfig, depth_words: int) -> Path:
    """Build directory of the whole-layer testbench (accelerator + AXI memory model) for ``config``."""
    if not icarus_available():
        raise ToolError("iverilog is not installed (Debian/Ubuntu: apt-get install iverilog)")
    from filelock import FileLock

    from codesign.hdl.export import layer_verilog_for
    from codesign.hdl.layer_bench import testbench_verilog
    from codesign.sim.tileplan import bus_bytes

    key = design_key(config, _LAYER_SOURCES)
    bdir = cache_root() / "rtl" / f"layer-{key}-d{depth_words}"
    bdir.mkdir(parents=True, exist_ok=True)
    marker = bdir / "built.ok"
    with FileLock(str(bdir) + ".lock"):
        if not marker.exists():
            name, text = layer_verilog_for(config)
            files = {f"{name}.v": text, "codesign_tb.v": testbench_verilog(name, bus_bytes(config), depth_words),
                     "axi_mem_model.v": (Path(__file__).parent / "axi_mem_model.v").read_text()}
            paths = []
            for fname, content in files.items():
                tmp = bdir / f".{fname}.{os.getpid()}.tmp"
                tmp.write_text(content)
                os.replace(tmp, bdir / fname)
                paths.append(bdir / fname)
            from cocotb_tools.runner import get_runner

            runner = get_runner("icarus")
            try:
                runner.build(sources=paths, hdl_toplevel="codesign_tb", build_dir=bdir / "sim_build",
                             timescale=("1ns", "1ps"), always=True, log_file=bdir / "build.log")
            except (SystemExit, Exception) as e:
                raise ToolError(f"Icarus build of the layer testbench failed: {_tail(bdir / 'build.log')}") from e
            marker.write_text("ok\n")
    return bdir


def run_layer_job(config: AcceleratorConfig, job: dict[str, Any], work_dir: Path, *, depth_words: int,
                  plusargs: list[str]) -> dict[str, Any]:
    """Run the whole-layer bench on ``job`` (layers with descriptors) and return its results."""
    bdir = build_layer(config, depth_words)
    return _run_bench("codesign.hdl.layer_bench", "codesign_tb", bdir, job, work_dir, "the layer testbench",
                      plusargs)


def run_job(config: AcceleratorConfig, job: dict[str, Any], work_dir: Path) -> dict[str, Any]:
    """Run the cocotb bench on ``job`` (tiles, load layout, idle/stall) and return its results."""
    top, bdir = build(config)
    return _run_bench("codesign.hdl.rtl_bench", top, bdir, job, work_dir, top, [])


def _run_bench(test_module: str, toplevel: str, bdir: Path, job: dict[str, Any], work_dir: Path, what: str,
               plusargs: list[str]) -> dict[str, Any]:
    """Run a cocotb bench (job file in, result file out) in ``work_dir`` on the build in ``bdir``."""
    work_dir.mkdir(parents=True, exist_ok=True)
    job_file = work_dir / "job.json"
    result_file = work_dir / "result.json"
    if result_file.exists():
        result_file.unlink()
    job_file.write_text(json.dumps({**job, "result": str(result_file)}))
    from cocotb_tools.runner import get_results, get_runner

    runner = get_runner("icarus")
    log = work_dir / "sim.log"
    xml = work_dir / "results.xml"
    env = {"CODESIGN_RTL_JOB": str(job_file), "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    try:
        runner.test(test_module=test_module, hdl_toplevel=toplevel, hdl_toplevel_lang="verilog",
                    build_dir=bdir / "sim_build", test_dir=work_dir, extra_env=env, results_xml=str(xml),
                    log_file=log, timescale=("1ns", "1ps"), plusargs=plusargs)
        failed = get_results(xml)[1] if xml.exists() else 1
    except SystemExit:
        failed = 1
    if failed or not result_file.exists():
        raise ToolError(f"RTL simulation of {what} failed: {_tail(log)}")
    return json.loads(result_file.read_text())


def _tail(path: Path, lines: int = 15) -> str:
    try:
        text = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return "(no log)"
    return " | ".join(text[-lines:])
