"""ONNX files as torch 2.13 writes them: the default (dynamo) exporter's external data, the legacy exporter's
symbolic dimensions and run-time shape arithmetic. MACs are held to the module's own count
(:func:`module_macs`: hooks on Conv/Linear plus matmul/SDPA calls)."""

from __future__ import annotations

import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
torch = pytest.importorskip("torch")
pytest.importorskip("onnxscript")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402
from torch import nn  # noqa: E402

from codesign.errors import WorkloadError  # noqa: E402
from codesign.workloads.layers import Conv2d, Linear  # noqa: E402
from codesign.workloads.onnx_import import read_onnx  # noqa: E402
from codesign.workloads.torch_models import build_model, module_macs  # noqa: E402


class Block(nn.Module):
    """Conv + BN + ReLU, a stride-2 depthwise conv, a residual add, an attention over the 4x4 map with
    F.scaled_dot_product_attention, a functional F.linear head."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 16, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(16)
        self.dw = nn.Conv2d(16, 16, 3, stride=2, padding=1, groups=16)
        self.qkv = nn.Linear(16, 48)
        self.head = nn.Parameter(torch.randn(10, 16))

    def forward(self, x):  # type: ignore[no-untyped-def]
        y = torch.relu(self.bn(self.conv(x)))
        y = nn.functional.max_pool2d(y, 2)
        y = y + self.dw(y).repeat_interleave(2, dim=2).repeat_interleave(2, dim=3)
        t = y.flatten(2).transpose(1, 2)  # [B, 64, 16]
        b, s, _ = t.shape
        q, k, v = self.qkv(t).reshape(b, s, 3, 2, 8).permute(2, 0, 3, 1, 4)
        a = nn.functional.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(b, s, 16)
        return nn.functional.linear(a.mean(1), self.head)


# closed form at 1x3x16x16: conv 16*16*16*27, dw 16*4*4*9, qkv 64*16*48, attention 2*(2 heads*64*64*8), head 16*10
BLOCK_MACS = 16 * 16 * 16 * 27 + 16 * 4 * 4 * 9 + 64 * 16 * 48 + 2 * 2 * 64 * 64 * 8 + 16 * 10


def _export(model: nn.Module, shape: tuple[int, ...], path: Path, dynamo: bool) -> Path:
    x = torch.randn(*shape)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if dynamo:
            torch.onnx.export(model, (x,), path, dynamo=True, verbose=False)
        else:
            torch.onnx.export(model, (x,), path, dynamo=False, input_names=["x"], dynamic_axes={"x": {0: "batch"}})
    return path


@pytest.fixture(scope="module")
def block_exports(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("models") / "block"
    folder.mkdir()
    torch.manual_seed(0)
    model = Block().eval()
    with torch.no_grad():
        model.conv.weight[:8] = 0  # half the first conv's filters: its measured density proves the data was read
    return (_export(model, (1, 3, 16, 16), folder / "model.onnx", dynamo=True),
            _export(model, (1, 3, 16, 16), folder / "legacy.onnx", dynamo=False))


def test_block_closed_form_is_the_hook_count() -> None:
    assert module_macs(Block().eval(), torch.zeros(1, 3, 16, 16)).total == BLOCK_MACS == 293_280


def test_dynamo_export_external_data_from_another_folder(block_exports: tuple[Path, Path], tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """torch's default exporter writes model.onnx + model.onnx.data; the data is found next to the model
    although the working directory is elsewhere and the model is named by a relative path."""
    dyn, _ = block_exports
    assert (dyn.parent / "model.onnx.data").is_file()
    monkeypatch.chdir(tmp_path)
    net = read_onnx(os.path.relpath(dyn, tmp_path))
    assert net.macs == BLOCK_MACS
    conv = next(layer for layer in net if isinstance(layer, Conv2d))
    assert conv.weights.density == 0.5  # weights read from model.onnx.data


def test_legacy_export_symbolic_batch_bound_by_input_shape(block_exports: tuple[Path, Path]) -> None:
    _, leg = block_exports
    with pytest.raises(WorkloadError, match=r"^legacy\.onnx: input 'x' has dynamic shape \[batch, 3, 16, 16\]; "):
        read_onnx(leg)
    net = read_onnx(leg, input_shape=(1, 3, 16, 16))
    assert net.macs == BLOCK_MACS
    assert read_onnx(leg, input_shape=(4, 3, 16, 16)).macs == 4 * BLOCK_MACS  # the batch binds the symbol


def test_missing_external_data_names_the_file(block_exports: tuple[Path, Path], tmp_path: Path) -> None:
    dyn, _ = block_exports
    lone = tmp_path / "model.onnx"
    lone.write_bytes(dyn.read_bytes())  # without its .data
    with pytest.raises(WorkloadError) as e:
        read_onnx(lone)
    first = next(t.name for t in onnx.load(str(dyn), load_external_data=False).graph.initializer
                 if t.external_data)
    assert str(e.value) == (f"model.onnx: external data file 'model.onnx.data' of tensor {first!r} not found "
                            "next to the model")


def test_external_data_outside_the_model_folder_is_refused(tmp_path: Path) -> None:
    w = numpy_helper.from_array(np.ones((4, 3, 1, 1), dtype=np.float32), "w")
    w.data_location = TensorProto.EXTERNAL
    for k, v in (("location", "../secret.bin"), ("offset", "0"), ("length", "48")):
        entry = w.external_data.add()
        entry.key, entry.value = k, v
    w.ClearField("float_data")
    g = helper.make_graph([helper.make_node("Conv", ["x", "w"], ["y"], name="c")], "g",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 4, 4])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 4, 4])], [w])
    p = tmp_path / "sub" / "m.onnx"
    p.parent.mkdir()
    p.write_bytes(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString())
    with pytest.raises(WorkloadError) as e:
        read_onnx(p)
    assert str(e.value) == ("m.onnx: tensor 'w' has external data location '../secret.bin', which is not a file "
                            "inside the model's folder")


def test_cli_imports_dynamo_export_from_another_folder(block_exports: tuple[Path, Path], tmp_path: Path) -> None:
    dyn, _ = block_exports
    r = subprocess.run([sys.executable, "-m", "codesign", "workload", "show", os.path.relpath(dyn, tmp_path),
                        "--json"], capture_output=True, text=True, cwd=tmp_path, check=False)
    assert r.returncode == 0, r.stderr
    assert f'"macs": {BLOCK_MACS}' in r.stdout


@pytest.mark.parametrize("spec, macs", [
    # the exports the issue saw fail with "give input_shape": ShuffleNetV2's channel shuffle and DeiT's
    # class-token concat compute their reshape targets at run time
    ("torchvision:shufflenet_v2_x1_0", 144_907_992),
    ("timm:deit_tiny_patch16_224", 1_253_683_200),
])
def test_legacy_shufflenet_and_deit_with_input_shape(spec: str, macs: int, tmp_path: Path) -> None:
    model = build_model(spec)
    ref = module_macs(model, torch.zeros(1, 3, 224, 224))
    assert ref.total == macs  # the module's own count (hooks + SDPA), 224x224
    path = _export(model, (1, 3, 224, 224), tmp_path / "legacy.onnx", dynamo=False)
    net = read_onnx(path, input_shape=(1, 3, 224, 224))
    assert net.macs == macs
    assert all(isinstance(d, int) for layer in net if isinstance(layer, Linear) for d in (layer.tokens,))


@pytest.mark.slow
@pytest.mark.parametrize("spec", ["timm:resnet18", "timm:mobilenetv2_100", "timm:deit_tiny_patch16_224"])
def test_dynamo_exports_of_real_models(spec: str, tmp_path: Path) -> None:
    model = build_model(spec)
    ref = module_macs(model, torch.zeros(1, 3, 224, 224)).total
    net = read_onnx(_export(model, (1, 3, 224, 224), tmp_path / "model.onnx", dynamo=True))
    assert net.macs == ref


def test_dynamo_export_with_dynamic_batch(tmp_path: Path) -> None:
    """dynamic_shapes: the dynamo exporter writes a symbolic 'batch' dimension, bound by input_shape."""
    torch.manual_seed(0)
    path = tmp_path / "model.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(Block().eval(), (torch.randn(2, 3, 16, 16),), path, dynamo=True, verbose=False,
                          dynamic_shapes={"x": {0: torch.export.Dim("batch")}})
    with pytest.raises(WorkloadError, match=r"^model\.onnx: input 'x' has dynamic shape \[batch, 3, 16, 16\]; "):
        read_onnx(path)
    net = read_onnx(path, input_shape=(3, 3, 16, 16))
    assert (net.batch, net.macs) == (3, 3 * BLOCK_MACS)
