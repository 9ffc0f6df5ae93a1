"""The YAML network format: hand-written files, round trips, and one-line errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from codesign.errors import WorkloadError
from codesign.workloads import zoo
from codesign.workloads.layers import Conv2d, Eltwise, Linear, MatMul, Network, Pool
from codesign.workloads.operand import Operand, Pattern
from codesign.workloads.presets import apply
from codesign.workloads.yaml_io import network_from_dict, read_network_yaml, write_network_yaml

TINY = """\
name: tiny
batch: 2
input_shape: [3, 32, 32]
layers:
  - type: conv
    name: conv1
    in_channels: 3
    out_channels: 16
    in_h: 32
    in_w: 32
    kernel: 3
    stride: 2
    padding: [0, 0, 1, 1]
    weights: {bits: 4, sparsity: "2:4"}
    inputs: {bits: 8, signed: false, density: 0.6}
  - {type: conv, name: dw, in_channels: 16, out_channels: 16, in_h: 16, in_w: 16, kernel: 3, padding: 1,
     groups: 16, bias: false}
  - {type: eltwise, name: add, elements: 4096}
  - {type: pool, name: gap, channels: 16, in_h: 16, in_w: 16, op: avg, global: true}
  - {type: linear, name: fc, in_features: 16, out_features: 10, weights: {bits: 8, density: 0.25}}
  - {type: matmul, name: attn, m: 4, k: 8, n: 4, heads: 2}
"""


def tiny_expected() -> Network:
    return Network("tiny", (
        Conv2d("conv1", in_channels=3, out_channels=16, in_h=32, in_w=32, kernel=3, stride=2, padding=(0, 0, 1, 1),
               weights=Operand(bits=4, pattern=Pattern.NM, n=2, m=4), inputs=Operand(bits=8, signed=False,
                                                                                     density=0.6)),
        Conv2d("dw", in_channels=16, out_channels=16, in_h=16, in_w=16, kernel=3, padding=1, groups=16, bias=False),
        Eltwise("add", elements=4096),
        Pool("gap", channels=16, in_h=16, in_w=16, op="avg", global_=True),
        Linear("fc", in_features=16, out_features=10, weights=Operand(density=0.25)),
        MatMul("attn", m=4, k=8, n=4, heads=2),
    ), batch=2, input_shape=(3, 32, 32))


def test_hand_written_yaml(tmp_path: Path) -> None:
    f = tmp_path / "tiny.yaml"
    f.write_text(TINY)
    assert read_network_yaml(f) == tiny_expected()


def test_write_then_read_is_identity(tmp_path: Path) -> None:
    net = tiny_expected()
    text = write_network_yaml(net)
    assert network_from_dict(yaml.safe_load(text)) == net
    f = tmp_path / "again.yaml"
    f.write_text(text)
    assert read_network_yaml(f) == net


@pytest.mark.parametrize("name", zoo.names())
def test_zoo_round_trip(name: str) -> None:
    net = apply(zoo.get(name), preset="w4a8", sparsity="2:4", act_density=0.5)
    back = network_from_dict(yaml.safe_load(write_network_yaml(net)))
    assert back == net
    assert back.macs == net.macs and back.params == net.params


def test_load_workload_reads_yaml(tmp_path: Path) -> None:
    from codesign.api import load_workload

    f = tmp_path / "tiny.yml"
    f.write_text(TINY)
    assert load_workload(f, batch=4) == tiny_expected().with_batch(4)


def write(tmp_path: Path, text: str, name: str = "net.yaml") -> Path:
    f = tmp_path / name
    f.write_text(text)
    return f


@pytest.mark.parametrize(("text", "message"), [
    (TINY.replace("    stride: 2\n", "    stride: 2\n    strde: 1\n"),
     "net.yaml: layer 0 ('conv1'): unknown field 'strde' for conv (fields: name, inputs, weights, outputs, sources, "
     "activation, in_channels, out_channels, in_h, in_w, kernel, stride, padding, dilation, groups, bias)"),
    (TINY.replace("batch: 2", "batch: 2\nbatches: 3"),
     "net.yaml: unknown field 'batches' (fields: name, batch, input_shape, source, layers)"),
    (TINY.replace("type: matmul", "type: attention"),
     "net.yaml: layer 5 ('attn'): type must be one of conv, linear, matmul, pool, eltwise, not 'attention'"),
    (TINY.replace("{bits: 4, sparsity", "{bitz: 4, sparsity"),
     "net.yaml: layer 0 ('conv1'): weights: unknown field 'bitz' (fields: bits, signed, density, sparsity)"),
    (TINY.replace("in_channels: 3\n", "in_channels: -3\n"),
     "net.yaml: layer 'conv1': in_channels must be a positive integer, not -3"),
    (TINY.replace("batch: 2", "batch: 0"), "net.yaml: batch must be a positive integer, not 0"),
    ("name: x\nlayers: []\n", "net.yaml: layers must be a non-empty list, not []"),
    ("name: x\nlayers: [\n",
     "net.yaml: malformed YAML at line 3: did not find expected node content"),
    ("- 1\n- 2\n", "net.yaml: a network must be a mapping with name and layers, not list"),
])
def test_errors(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(WorkloadError) as e:
        read_network_yaml(write(tmp_path, text))
    assert str(e.value) == message


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(WorkloadError, match=r"^cannot read network file '.*nope\.yaml': No such file or directory$"):
        read_network_yaml(tmp_path / "nope.yaml")


def test_cli_unknown_field_exit_2(tmp_path: Path) -> None:
    f = write(tmp_path, TINY.replace("heads: 2", "heads: 2, hedas: 3"), "bad.yaml")
    r = subprocess.run([sys.executable, "-m", "codesign", "workload", "show", str(f)], capture_output=True,
                       text=True, check=False)
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr == ("codesign workload: error: bad.yaml: layer 5 ('attn'): unknown field 'hedas' for matmul "
                        "(fields: name, inputs, weights, outputs, sources, activation, m, k, n, heads)\n")


def test_cli_show_yaml_round_trip(tmp_path: Path) -> None:
    r = subprocess.run([sys.executable, "-m", "codesign", "workload", "show", "mobilenet_v3_small", "--yaml",
                        "--preset", "w4a8"], capture_output=True, text=True, check=True)
    f = write(tmp_path, r.stdout, "mbv3.yaml")
    assert read_network_yaml(f) == apply(zoo.get("mobilenet_v3_small"), preset="w4a8")
