"""Importer graphs that fusion treats like the zoo: hand-built ONNX graphs (onnx.helper), one per pattern an
exporter writes, with the fused layer count and DRAM bytes worked out by hand; and a real timm export against
its zoo twin."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from codesign.sim.config import AcceleratorConfig  # noqa: E402
from codesign.sim.engine import simulate_network  # noqa: E402
from codesign.workloads.layers import NETWORK_INPUT, Eltwise, Pool  # noqa: E402
from codesign.workloads.onnx_import import read_onnx  # noqa: E402

CFG = AcceleratorConfig(rows=16, cols=16)
C, H = 8, 8
E = C * H * H  # 512 elements: one 8x8x8 map, 512 bytes at 8 bits
RNG = np.random.default_rng(0)


def _model(nodes: list, inits: list, out: str = "y", out_shape: tuple[int, ...] = (1, C, H, H)) -> onnx.ModelProto:
    inits = [*inits, numpy_helper.from_array(RNG.standard_normal((C, C, 1, 1)).astype(np.float32), "w"),
             numpy_helper.from_array(RNG.standard_normal((C, C, 1, 1)).astype(np.float32), "w2")]
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, C, H, H])],
                          [helper.make_tensor_value_info(out, TensorProto.FLOAT, list(out_shape))], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 18)])
    onnx.checker.check_model(m)
    return m


def _scalar(name: str, v: float) -> TensorProto:
    return numpy_helper.from_array(np.array(v, dtype=np.float32), name)


def _conv(x: str, y: str, name: str, w: str = "w") -> onnx.NodeProto:
    return helper.make_node("Conv", [x, w], [y], name=name)


def _fused(net, fusion: str = "eltwise"):
    r = simulate_network(net, CFG.replace(fusion=fusion))
    return r, [x.layer for x in r.layers if x.fused_into]


def _dram(r, name: str) -> int:
    return r.layer(name).dram_bytes


def test_silu_split_is_no_layer() -> None:
    """x * Sigmoid(x) after a conv: SiLU, not a layer; the next conv reads the first conv (graph edge)."""
    m = _model([_conv("x", "c", "conv"), helper.make_node("Sigmoid", ["c"], ["s"], name="sig"),
                helper.make_node("Mul", ["c", "s"], ["a"], name="silu"), _conv("a", "y", "conv2", "w2")], [])
    net = read_onnx(m)
    assert [x.name for x in net] == ["conv", "conv2"]
    assert net.layer("conv2").sources == ("conv",)


@pytest.mark.parametrize("form", ["erf", "tanh"])
def test_gelu_split_is_no_layer(form: str) -> None:
    """GELU as torch's legacy exporter writes it, 0.5 * x * (1 + Erf(x / sqrt 2)), and the tanh form
    0.5 * x * (1 + Tanh(0.7979 * (x + 0.044715 * x^3))): seven and nine element-wise nodes, no layer."""
    if form == "erf":
        nodes = [helper.make_node("Div", ["c", "sqrt2"], ["d"], name="div"),
                 helper.make_node("Erf", ["d"], ["e"], name="erf"),
                 helper.make_node("Add", ["e", "one"], ["e1"], name="add1"),
                 helper.make_node("Mul", ["c", "e1"], ["p"], name="mul_x"),
                 helper.make_node("Mul", ["p", "half"], ["a"], name="mul_half")]
    else:
        nodes = [helper.make_node("Pow", ["c", "three"], ["c3"], name="pow"),
                 helper.make_node("Mul", ["c3", "k1"], ["t0"], name="mul_k1"),
                 helper.make_node("Add", ["c", "t0"], ["t1"], name="add_x"),
                 helper.make_node("Mul", ["t1", "k2"], ["t2"], name="mul_k2"),
                 helper.make_node("Tanh", ["t2"], ["t3"], name="tanh"),
                 helper.make_node("Add", ["t3", "one"], ["t4"], name="add1"),
                 helper.make_node("Mul", ["c", "half"], ["hx"], name="mul_half"),
                 helper.make_node("Mul", ["hx", "t4"], ["a"], name="mul_x")]
    inits = [_scalar("sqrt2", 2 ** 0.5), _scalar("one", 1.0), _scalar("half", 0.5), _scalar("three", 3.0),
             _scalar("k1", 0.044715), _scalar("k2", 0.7978845608)]
    net = read_onnx(_model([_conv("x", "c", "conv"), *nodes, _conv("a", "y", "conv2", "w2")], inits))
    assert [x.name for x in net] == ["conv", "conv2"]
    assert net.layer("conv2").sources == ("conv",)


def test_hard_swish_split_is_no_layer() -> None:
    """x * Clip(x + 3, 0, 6) / 6 (hard-swish written out): no layer."""
    nodes = [helper.make_node("Add", ["c", "three"], ["t"], name="add3"),
             helper.make_node("Clip", ["t", "zero", "six"], ["r"], name="relu6"),
             helper.make_node("Mul", ["c", "r"], ["p"], name="mul"),
             helper.make_node("Div", ["p", "six"], ["a"], name="div6")]
    inits = [_scalar("three", 3.0), _scalar("zero", 0.0), _scalar("six", 6.0)]
    net = read_onnx(_model([_conv("x", "c", "conv"), *nodes, _conv("a", "y", "conv2", "w2")], inits))
    assert [x.name for x in net] == ["conv", "conv2"]


def test_scalar_mul_costs_a_scalar_and_fuses() -> None:
    """conv -> Mul by a scalar constant: an Eltwise of 512 elements whose second operand is 1 element. Alone it
    reads 512 + 1 and writes 512 bytes; fused into the conv's write-back it reads the 1-byte scalar only."""
    m = _model([_conv("x", "c", "conv"), helper.make_node("Mul", ["half", "c"], ["y"], name="scale")],
               [_scalar("half", 0.5)])
    net = read_onnx(m)
    scale = net.layer("scale")
    assert scale == Eltwise("scale", elements=E, op="mul", operand_elements=(E, 1), sources=("conv",))
    none, _ = _fused(net, "none")
    assert _dram(none, "scale") == E + 1 + E
    r, fused = _fused(net)
    assert fused == ["scale"] and _dram(r, "scale") == 1
    assert r.layer("conv").dram_bytes == none.layer("conv").dram_bytes  # the conv writes the scaled map instead


def test_per_channel_mul_costs_its_channels() -> None:
    """Mul by a [C, 1, 1] constant (a per-channel scale): its second operand is C elements."""
    m = _model([_conv("x", "c", "conv"), helper.make_node("Mul", ["c", "g"], ["y"], name="scale")],
               [numpy_helper.from_array(np.ones((C, 1, 1), dtype=np.float32), "g")])
    scale = read_onnx(m).layer("scale")
    assert isinstance(scale, Eltwise) and scale.operand_elements == (E, C)


def test_residual_add_names_both_producers_and_fuses() -> None:
    """conv a -> conv b -> add(b, a): the add reads b (the layer before it: fused into its write-back, built)
    and a (the shortcut, read from DRAM by b's DMA with its loads, as b's output words); with fusion
    full and the 64 KiB input SRAM the shortcut stays on chip and the add reads nothing from DRAM."""
    m = _model([_conv("x", "a", "conv_a"), _conv("a", "b", "conv_b", "w2"),
                helper.make_node("Add", ["b", "a"], ["y"], name="add")], [])
    net = read_onnx(m)
    assert net.layer("add").sources == ("conv_b", "conv_a")
    r, fused = _fused(net)
    none, _ = _fused(net, "none")
    assert fused == ["add"] and _dram(r, "add") == 0 and r.layer("add").model_only == ""
    # the residual moves as the output does: words of 16 lanes, 8 channels used (2 * E bytes, as b's store)
    assert _dram(r, "conv_b") == _dram(none, "conv_b") + r.layer("conv_b").counts.dram_write_bits // 8 == \
        _dram(none, "conv_b") + 2 * E
    assert (r.layer("add").input_from, r.layer("add").other_from) == ("writeback", "dram")
    full, _ = _fused(net, "full")
    assert (full.layer("add").other_from, _dram(full, "add")) == ("onchip", 0)


def test_residual_add_fuses_into_the_shortcut_conv_that_ran_last() -> None:
    """add(main, downsample(x)) with the downsample conv run last (torchvision's order): the add commutes and
    fuses into the downsample conv, whose DMA reads the main branch from DRAM (as its output words)."""
    m = _model([_conv("x", "b", "conv_main"), _conv("x", "d", "downsample", "w2"),
                helper.make_node("Add", ["b", "d"], ["y"], name="add")], [])
    net = read_onnx(m)
    assert net.layer("add").sources == ("conv_main", "downsample")
    r, fused = _fused(net)
    none, _ = _fused(net, "none")
    assert fused == ["add"] and r.layer("add").fused_into == "downsample"
    assert _dram(r, "downsample") == _dram(none, "downsample") + 2 * E  # as its store: 8 of 16 lanes


def test_concat_has_no_single_producer() -> None:
    """conv1, conv2 -> Concat -> conv3: conv3's input was written by two layers, so it is read from DRAM
    (named as the network input's DRAM source), never inferred from a layer of the same size."""
    w3 = numpy_helper.from_array(RNG.standard_normal((C, 2 * C, 1, 1)).astype(np.float32), "w3")
    m = _model([_conv("x", "a", "conv1"), _conv("x", "b", "conv2", "w2"),
                helper.make_node("Concat", ["a", "b"], ["c"], name="cat", axis=1),
                helper.make_node("Conv", ["c", "w3"], ["y"], name="conv3")], [w3])
    net = read_onnx(m)
    assert net.layer("conv3").sources == (NETWORK_INPUT,)
    full = simulate_network(net, CFG.replace(fusion="full"))
    assert full.layer("conv3").input_from == "dram"
    assert {full.layer(n).output_to for n in ("conv1", "conv2")} == {"dram"}


def test_reduce_mean_is_global_pooling() -> None:
    """ReduceMean over H, W (the dynamo exporter's adaptive average pooling): a global Pool of the conv."""
    m = _model([_conv("x", "c", "conv"), helper.make_node("ReduceMean", ["c", "axes"], ["y"], name="gap")],
               [numpy_helper.from_array(np.array([2, 3], dtype=np.int64), "axes")], out_shape=(1, C, 1, 1))
    gap = read_onnx(m).layer("gap")
    assert gap == Pool("gap", channels=C, in_h=H, in_w=H, op="avg", global_=True, sources=("conv",))


def test_se_block_scale_reads_the_gate() -> None:
    """Squeeze-excite: x * Sigmoid(fc2(mean(x))): the scale's operands are x (512) and the gate (C = 8)."""
    nodes = [_conv("x", "c", "conv"),
             helper.make_node("ReduceMean", ["c", "axes"], ["p"], name="pool"),
             _conv("p", "f", "fc", "w2"), helper.make_node("Sigmoid", ["f"], ["g"], name="sig"),
             helper.make_node("Mul", ["c", "g"], ["y"], name="scale")]
    net = read_onnx(_model(nodes, [numpy_helper.from_array(np.array([2, 3], dtype=np.int64), "axes")]))
    scale = net.layer("scale")
    assert isinstance(scale, Eltwise) and scale.sources == ("conv", "fc") and scale.operand_elements == (E, C)


@pytest.mark.slow
@pytest.mark.parametrize("fusion", ["none", "eltwise", "full"])
def test_timm_mobilenetv3_export_matches_zoo(tmp_path: Path, fusion: str) -> None:
    """timm's mobilenetv3_small_100 (weights=None), exported by torch's legacy ONNX exporter: within 5 % of the
    zoo's MobileNetV3-Small in cycles under each fusion mode (torchvision's and timm's share the architecture)."""
    torch = pytest.importorskip("torch")
    from codesign.workloads import zoo
    from codesign.workloads.torch_models import build_model, import_torchvision

    import_torchvision()  # before timm, which imports it
    pytest.importorskip("timm")

    model = build_model("timm:mobilenetv3_small_100")
    path = tmp_path / "m.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (torch.zeros(1, 3, 224, 224),), path, dynamo=False)
    net = read_onnx(path)
    cfg = AcceleratorConfig(fusion=fusion)
    ratio = simulate_network(net, cfg).cycles / simulate_network(zoo.get("mobilenet_v3_small"), cfg).cycles
    assert abs(ratio - 1) < 0.05, ratio
