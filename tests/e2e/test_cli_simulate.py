"""``codesign simulate`` and ``codesign zoo`` as a user runs them (subprocess, real console script)."""

from __future__ import annotations

import json
import subprocess
import sys

import pandas as pd
import pytest

import codesign
from codesign.workloads import zoo

pytestmark = pytest.mark.e2e


def run(*args: str, cwd=None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "codesign", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=300)


def test_simulate_prints_table_and_writes_csv(tmp_path) -> None:
    out = tmp_path / "r.csv"
    p = run("simulate", "--workload", "mobilenet_v2", "--rows", "16", "--cols", "16", "--dataflow", "os",
            "--out", str(out))
    assert p.returncode == 0, p.stderr
    for col in ("layer", "macs", "cycles", "compute_cycles", "stall_cycles", "utilization", "energy_pj"):
        assert col in p.stdout
    assert "latency" in p.stdout and "ms at 200 MHz" in p.stdout
    df = pd.read_csv(out)
    net = zoo.get("mobilenet_v2")
    assert list(df.layer) == [layer.name for layer in net.layers]  # one row per layer, workload order
    api = codesign.simulate("mobilenet_v2", codesign.AcceleratorConfig(rows=16, cols=16, dataflow="os"))
    assert int(df.cycles.sum()) == api.cycles
    assert (df.cycles == df.compute_cycles + df.stall_cycles).all()


def test_simulate_json_and_yaml_config(tmp_path) -> None:
    cfg = tmp_path / "accel.yaml"
    cfg.write_text("rows: 8\ncols: 8\ndataflow: is\nweight_bits: 4\n")
    out = tmp_path / "r.json"
    p = run("simulate", "-w", "gemm:100,37,53", "--config", str(cfg), "--cols", "4", "--out", str(out), "-q",
            "--clip-bits")
    assert p.returncode == 0, p.stderr
    data = json.loads(out.read_text())
    assert data["config"]["rows"] == 8 and data["config"]["cols"] == 4 and data["config"]["weight_bits"] == 4
    assert data["summary"]["macs"] == 100 * 37 * 53
    assert data["summary"]["clip_bits"] is True  # the INT8 GEMM's weights ran at the array's 4 bits
    # DRAM bytes in the summary: the sum of the layer rows' reads and writes
    layer = data["layers"][0]
    assert data["summary"]["dram_read_bytes"] == layer["dram_read_bytes"] > 0
    assert data["summary"]["dram_write_bytes"] == layer["dram_write_bytes"] > 0
    # an IS design with requantize false and 4/8 bits is what codesign generate builds
    assert data["summary"]["buildable"] is True


def test_scalesim_csv_workload_and_timing(tmp_path) -> None:
    topo = tmp_path / "topo.csv"
    topo.write_text(
        "Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, Num Filter, Strides,\n"
        "Conv1, 224, 224, 11, 11, 3, 96, 4,\n"
        "Conv2, 31, 31, 5, 5, 96, 256, 1,\n"
    )
    out = tmp_path / "r.csv"
    p = run("simulate", "-w", str(topo), "--rows", "32", "--cols", "32", "--dataflow", "os",
            "--timing", "scalesim", "--out", str(out), "-q")
    assert p.returncode == 0, p.stderr
    df = pd.read_csv(out)
    # Conv1: ofmap ceil((224-11+4)/4)=55 -> M=3025, N=96, K=363; OS folds ceil(3025/32)*ceil(96/32)=95*3;
    # L = 363 + 32 + 32 - 2 = 425; total = folds*L - 1
    assert df.cycles[0] == 95 * 3 * 425 - 1
    # Conv2: ofmap 27 -> M=729, N=256, K=2400: folds 23*8, L = 2400 + 62
    assert df.cycles[1] == 23 * 8 * 2462 - 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--rows", "-4"], "codesign simulate: error: rows must be a positive integer, not -4"),
        (["--dataflow", "xs"], "codesign simulate: error: dataflow must be one of ws, os, is, not 'xs'"),
        (["--weight-bits", "0"], "codesign simulate: error: weight_bits must be an integer from 1 to 32, not 0"),
        (["--rows", "four"], "codesign simulate: error: argument --rows: --rows must be int, not 'four'"),
        (["--act-density", "1.5"], "codesign simulate: error: act_density must be a number from 0 to 1, not 1.5"),
        (["--preset", "w3a3"], None),
        (["--out", "r.txt"], "codesign simulate: error: --out must end in .csv, .json or .parquet, not 'r.txt'"),
        # the list of choices is quoted differently across Python versions: compare up to it
        (["--timing", "fast"], "codesign simulate: error: argument --timing: invalid choice: 'fast' (choose from"),
    ],
)
def test_bad_flags_one_line_exit_2(args: list[str], message: str | None, tmp_path) -> None:
    p = run("simulate", "-w", "alexnet", *args, cwd=tmp_path)
    assert p.returncode == 2
    assert p.stderr.count("\n") == 1 and "Traceback" not in p.stderr
    if message is None:  # the message is the presets' own (tested there): one line naming the value
        assert "w3a3" in p.stderr
    else:
        assert p.stderr.strip() == message or (message.endswith("(choose from") and p.stderr.startswith(message))


def test_bad_files_one_line_exit_2(tmp_path) -> None:
    bad_yaml = tmp_path / "bad.yaml"
    bad_yaml.write_text("rows: [8\n")
    p = run("simulate", "-w", "alexnet", "--config", str(bad_yaml))
    assert p.returncode == 2 and p.stderr.count("\n") == 1
    assert p.stderr.startswith("codesign simulate: error: bad.yaml: malformed YAML at line 2")

    csv = tmp_path / "t.csv"
    csv.write_text("Layer name, M, N, K,\nfc, 10, 20,\n")
    p = run("simulate", "-w", str(csv))
    assert p.returncode == 2
    assert p.stderr.strip() == "codesign simulate: error: t.csv, line 2: expected 4 columns (gemm format), got 3"

    csv.write_text("Layer name, M, N, K, Sparsity\nfc, 10, 20, 30, 1.5\n")
    p = run("simulate", "-w", str(csv))
    assert p.returncode == 2
    assert p.stderr.strip() == "codesign simulate: error: t.csv, line 2: density must be a number from 0 to 1, not 1.5"

    csv.write_text("Layer, Height\nfc, 10\n")
    p = run("simulate", "-w", str(csv))
    assert p.returncode == 2 and "header must start with" in p.stderr and p.stderr.count("\n") == 1

    p = run("simulate", "-w", "nosuchnet")
    assert p.returncode == 2 and p.stderr.startswith("codesign simulate: error: unknown workload 'nosuchnet'")


def test_narrow_widths_from_yaml_one_line_exit_2(tmp_path) -> None:
    """A bad width in a YAML config, and a layer beyond a narrow design's widths: one line, exit 2."""
    cfg = tmp_path / "narrow.yaml"
    cfg.write_text("rows: 2\ncols: 2\ndim_bits: 40\n")
    p = run("simulate", "-w", "ds_cnn_kws", "--config", str(cfg))
    assert p.returncode == 2 and "Traceback" not in p.stderr
    assert p.stderr == "codesign simulate: error: dim_bits must be an integer from 8 to 32, not 40\n"
    # DS-CNN's first layer on 2x2 OS with 1 KiB buffers, laid out alone: its im2col'd A, weights, output and table
    # take 131,072 bytes of DRAM (32 pages of 4 KiB), beyond the 65,536 bytes 16 address bits reach
    cfg.write_text("rows: 2\ncols: 2\ndataflow: os\ninput_sram_bytes: 1024\nweight_sram_bytes: 1024\n"
                   "output_sram_bytes: 1024\ndram_addr_bits: 16\n")
    p = run("simulate", "-w", "ds_cnn_kws", "--config", str(cfg))
    assert p.returncode == 2
    assert p.stderr == ("codesign simulate: error: layer 'conv1': its DRAM layout ends at byte 131072, beyond the "
                        "65536 bytes dram_addr_bits: 16 addresses (it needs dram_addr_bits: 17)\n")


def test_nothing_written_on_error(tmp_path) -> None:
    out = tmp_path / "keep.csv"
    out.write_text("precious\n")
    p = run("simulate", "-w", "alexnet", "--rows", "0", "--out", str(out))
    assert p.returncode == 2 and out.read_text() == "precious\n"


def test_zoo_json() -> None:
    p = run("zoo", "--json")
    assert p.returncode == 0, p.stderr
    rows = json.loads(p.stdout)
    by_name = {r["name"]: r for r in rows}
    for name in ("alexnet", "resnet18", "resnet50", "mobilenet_v2"):
        assert by_name[name]["macs"] == zoo.get(name).macs and by_name[name]["params"] == zoo.get(name).params
