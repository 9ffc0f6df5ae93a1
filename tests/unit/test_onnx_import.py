"""ONNX import: models built in-test with onnx.helper import as the equivalent hand-written Network."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from codesign.errors import WorkloadError  # noqa: E402
from codesign.workloads.layers import NETWORK_INPUT, Conv2d, Eltwise, Linear, MatMul, Network, Pool  # noqa: E402
from codesign.workloads.onnx_import import UnsupportedOpWarning, read_onnx  # noqa: E402
from codesign.workloads.operand import Operand, Pattern  # noqa: E402

OPSET = [helper.make_opsetid("", 21)]
RNG = np.random.default_rng(0)


def init(name: str, shape: tuple[int, ...], dtype=np.float32, zero_frac: float = 0.0) -> TensorProto:
    a = RNG.standard_normal(shape).astype(dtype) if dtype == np.float32 else \
        RNG.integers(1, 100, size=shape).astype(dtype)
    if zero_frac:
        flat = a.reshape(-1)
        flat[: round(zero_frac * flat.size)] = 0
    return numpy_helper.from_array(a, name)


def model(nodes, inputs, outputs, inits=(), name="net") -> onnx.ModelProto:
    g = helper.make_graph(nodes, name, inputs, outputs, list(inits))
    m = helper.make_model(g, opset_imports=OPSET)
    onnx.checker.check_model(m)
    return m


def vi(name: str, shape, dtype=TensorProto.FLOAT):
    return helper.make_tensor_value_info(name, dtype, shape)


def save(tmp_path: Path, m, fname: str = "m.onnx") -> Path:
    p = tmp_path / fname
    p.write_bytes(m.SerializeToString())
    return p


def small_cnn() -> onnx.ModelProto:
    """conv(asymmetric pad, stride 2) + BN + ReLU, depthwise dilated conv, maxpool (ceil), residual add
    with a 1x1 conv, global average pool, flatten, gemm."""
    nodes = [
        helper.make_node("Conv", ["x", "w1"], ["c1"], name="conv1", pads=[0, 1, 1, 0], strides=[2, 2],
                         kernel_shape=[3, 3]),
        helper.make_node("BatchNormalization", ["c1", "g", "b", "mu", "var"], ["bn1"], name="bn1"),
        helper.make_node("Relu", ["bn1"], ["r1"], name="relu1"),
        helper.make_node("Conv", ["r1", "w2", "b2"], ["c2"], name="dw", group=8, pads=[2, 2, 2, 2],
                         dilations=[2, 2]),
        helper.make_node("MaxPool", ["c2"], ["p"], name="pool", kernel_shape=[3, 3], strides=[2, 2],
                         ceil_mode=1),
        helper.make_node("Conv", ["p", "w3", "b3"], ["c3"], name="pw"),
        helper.make_node("Add", ["c3", "p"], ["s"], name="add"),
        helper.make_node("GlobalAveragePool", ["s"], ["gap"], name="gap"),
        helper.make_node("Flatten", ["gap"], ["f"], name="flatten"),
        helper.make_node("Gemm", ["f", "wfc", "bfc"], ["y"], name="fc", transB=1),
    ]
    inits = [init("w1", (8, 3, 3, 3)), init("g", (8,)), init("b", (8,)), init("mu", (8,)), init("var", (8,)),
             init("w2", (8, 1, 3, 3)), init("b2", (8,)), init("w3", (8, 8, 1, 1)), init("b3", (8,)),
             init("wfc", (10, 8)), init("bfc", (10,))]
    return model(nodes, [vi("x", [2, 3, 32, 32])], [vi("y", [2, 10])], inits, name="small_cnn")


def test_small_cnn_layer_table(tmp_path: Path) -> None:
    net = read_onnx(save(tmp_path, small_cnn()))
    expected = Network("m", (  # named after its file m.onnx, not its graph small_cnn
        Conv2d("conv1", in_channels=3, out_channels=8, in_h=32, in_w=32, kernel=3, stride=2,
               padding=(0, 1, 1, 0), bias=True, sources=(NETWORK_INPUT,)),  # BN folded into the bias
        Conv2d("dw", in_channels=8, out_channels=8, in_h=16, in_w=16, kernel=3, padding=2, dilation=2, groups=8,
               sources=("conv1",)),  # through BN and ReLU
        # ceil mode: (16 - 3) / 2 -> 7 windows, ceil 7 -> same; expressed as extra end padding 1
        Pool("pool", channels=8, in_h=16, in_w=16, kernel=3, stride=2, padding=(0, 0, 1, 1), op="max",
             sources=("dw",)),
        Conv2d("pw", in_channels=8, out_channels=8, in_h=8, in_w=8, kernel=1, sources=("pool",)),
        Eltwise("add", elements=8 * 8 * 8, sources=("pw", "pool")),  # the residual: graph, not chain
        Pool("gap", channels=8, in_h=8, in_w=8, op="avg", global_=True, sources=("add",)),
        Linear("fc", in_features=8, out_features=10, tokens=1, sources=("gap",)),  # through Flatten
    ), batch=2, input_shape=(3, 32, 32), source="ONNX m.onnx")
    assert net == expected
    assert net.layer("pool").out_h == 8  # ceil((16 - 3) / 2) + 1
    assert net.macs == expected.macs


def test_auto_pad_same_upper() -> None:
    nodes = [helper.make_node("Conv", ["x", "w"], ["y"], name="c", auto_pad="SAME_UPPER", strides=[2, 2])]
    m = model(nodes, [vi("x", [1, 1, 49, 10])], [vi("y", [1, 4, 25, 5])], [init("w", (4, 1, 10, 4))])
    conv = read_onnx(m).layer("c")
    assert isinstance(conv, Conv2d)
    assert conv.padding == (4, 1, 5, 1) and (conv.out_h, conv.out_w) == (25, 5)


def transformer_block() -> onnx.ModelProto:
    """q/k projections (MatMul + bias Add), scores MatMul of two activations, softmax, context."""
    s, d, h = 16, 32, 4
    hd = d // h
    nodes = [
        helper.make_node("MatMul", ["x", "wq"], ["q0"], name="q_proj"),
        helper.make_node("Add", ["q0", "bq"], ["q"], name="q_bias"),
        helper.make_node("MatMul", ["x", "wk"], ["k"], name="k_proj"),
        helper.make_node("Reshape", ["q", "shape"], ["qh"], name="rq"),
        helper.make_node("Transpose", ["qh"], ["qt"], name="tq", perm=[0, 2, 1, 3]),
        helper.make_node("Reshape", ["k", "shape"], ["kh"], name="rk"),
        helper.make_node("Transpose", ["kh"], ["kt"], name="tk", perm=[0, 2, 3, 1]),
        helper.make_node("MatMul", ["qt", "kt"], ["sc"], name="scores"),
        helper.make_node("Softmax", ["sc"], ["p"], name="softmax", axis=-1),
        helper.make_node("MatMul", ["p", "qt"], ["ctx"], name="context"),
        helper.make_node("Mul", ["ctx", "ctx"], ["sq"], name="square"),
    ]
    inits = [init("wq", (d, d)), init("bq", (d,)), init("wk", (d, d)),
             numpy_helper.from_array(np.array([1, s, h, hd], dtype=np.int64), "shape")]
    return model(nodes, [vi("x", [1, s, d])], [vi("sq", [1, 4, 16, 8])], inits, name="attn")


def test_transformer_block() -> None:
    net = read_onnx(transformer_block())
    assert net.layers == (
        Linear("q_proj", in_features=32, out_features=32, tokens=16, bias=True,  # Add fused as bias
               sources=(NETWORK_INPUT,)),
        Linear("k_proj", in_features=32, out_features=32, tokens=16, bias=False, sources=(NETWORK_INPUT,)),
        MatMul("scores", m=16, k=8, n=16, heads=4, sources=("q_proj", "k_proj")),  # through Reshape, Transpose
        MatMul("context", m=16, k=16, n=8, heads=4, sources=("scores", "q_proj")),  # through Softmax
        Eltwise("square", elements=4 * 16 * 8, op="mul", sources=("context", "context")),  # x * x: no activation
    )


def qdq_conv(weight_dtype=TensorProto.INT8, act_dtype=TensorProto.UINT8) -> onnx.ModelProto:
    """Activation Q/DQ and a DequantizeLinear'd int weight with 3/4 zeros (2:4 would be 1/2)."""
    w = np.zeros((4, 8, 1, 1), dtype=np.int8)
    w[:, ::4] = 3  # 1 non-zero in every 4 along K
    wq = numpy_helper.from_array(w, "wq")
    if weight_dtype != TensorProto.INT8:
        wq = helper.make_tensor("wq", weight_dtype, w.shape, w.reshape(-1).tolist())
    zp_a = helper.make_tensor("zp_a", act_dtype, [], [0])
    nodes = [
        helper.make_node("QuantizeLinear", ["x", "s", "zp_a"], ["xq"], name="qx"),
        helper.make_node("DequantizeLinear", ["xq", "s", "zp_a"], ["xd"], name="dqx"),
        helper.make_node("DequantizeLinear", ["wq", "s"], ["wd"], name="dqw"),
        helper.make_node("Conv", ["xd", "wd"], ["y"], name="conv"),
    ]
    inits = [wq, zp_a, numpy_helper.from_array(np.array(0.1, dtype=np.float32), "s")]
    return model(nodes, [vi("x", [1, 8, 5, 5])], [vi("y", [1, 4, 5, 5])], inits, name="qdq")


def test_qdq_bits_and_measured_density() -> None:
    conv = read_onnx(qdq_conv()).layer("conv")
    assert conv.inputs == Operand(bits=8, signed=False)
    assert conv.weights == Operand(bits=8, signed=True, pattern=Pattern.NM, n=1, m=4)
    assert conv.outputs == Conv2d('c').outputs  # the layer default: not requantized here


def test_qdq_int4_weights() -> None:
    conv = read_onnx(qdq_conv(weight_dtype=TensorProto.INT4, act_dtype=TensorProto.INT8)).layer("conv")
    assert (conv.weights.bits, conv.weights.signed) == (4, True)
    assert conv.inputs == Operand(bits=8, signed=True)


def test_unstructured_density_from_initializer() -> None:
    nodes = [helper.make_node("Gemm", ["x", "w"], ["y"], name="fc")]
    m = model(nodes, [vi("x", [1, 20])], [vi("y", [1, 10])], [init("w", (20, 10), zero_frac=0.3)])
    fc = read_onnx(m).layer("fc")
    assert fc.weights.pattern is Pattern.UNSTRUCTURED and fc.weights.density == pytest.approx(0.7)
    assert isinstance(fc, Linear) and not fc.bias


def test_qlinearconv_and_qlinearmatmul() -> None:
    w = np.ones((4, 2, 3, 3), dtype=np.int8)
    w[:, :, 0, :] = 5  # zero point 5: a third of the weights are zero
    wm = np.ones((36, 6), dtype=np.int8)
    f32 = lambda n: numpy_helper.from_array(np.array(0.05, dtype=np.float32), n)  # noqa: E731
    u8 = lambda n: helper.make_tensor(n, TensorProto.UINT8, [], [128])  # noqa: E731
    nodes = [
        helper.make_node("QLinearConv", ["x", "xs", "xz", "w", "ws", "wz", "ys", "yz"], ["y"], name="qconv"),
        helper.make_node("Reshape", ["y", "shape"], ["yf"], name="flat"),
        helper.make_node("QLinearMatMul", ["yf", "ys", "yz", "wm", "ws", "wmz", "os", "oz"], ["o"], name="qmm"),
    ]
    inits = [numpy_helper.from_array(w, "w"), numpy_helper.from_array(wm, "wm"), f32("xs"), f32("ws"), f32("ys"),
             f32("os"), u8("xz"), u8("yz"), u8("oz"), numpy_helper.from_array(np.array(5, dtype=np.int8), "wz"),
             numpy_helper.from_array(np.array(0, dtype=np.int8), "wmz"),
             numpy_helper.from_array(np.array([1, 36], dtype=np.int64), "shape")]
    m = model(nodes, [vi("x", [1, 2, 5, 5], TensorProto.UINT8)], [vi("o", [1, 6], TensorProto.UINT8)], inits)
    net = read_onnx(m)
    conv, mm = net.layer("qconv"), net.layer("qmm")
    assert isinstance(conv, Conv2d) and (conv.out_h, conv.out_channels) == (3, 4)
    assert conv.inputs == Operand(bits=8, signed=False)
    assert conv.weights == Operand(bits=8, signed=True, density=2 / 3)
    assert conv.outputs == Operand(bits=8, signed=False)
    assert isinstance(mm, Linear) and (mm.in_features, mm.out_features) == (36, 6)
    assert mm.weights.bits == 8 and mm.inputs.signed is False


# -- bad input ------------------------------------------------------------------------------------


def test_unsupported_op_names_op_and_node(tmp_path: Path) -> None:
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], name="conv"),
             helper.make_node("ConvTranspose", ["c", "wt"], ["y"], name="up1")]
    m = model(nodes, [vi("x", [1, 2, 8, 8])], [vi("y", [1, 2, 7, 7])],
              [init("w", (2, 2, 3, 3)), init("wt", (2, 2, 2, 2))])
    p = save(tmp_path, m, "up.onnx")
    with pytest.raises(WorkloadError) as e:
        read_onnx(p)
    assert str(e.value) == "up.onnx: unsupported op 'ConvTranspose' at node 'up1' (--skip-unsupported skips it " \
                           "with a warning)"
    with pytest.warns(UnsupportedOpWarning, match=r"^up\.onnx: skipped 1 unsupported nodes: ConvTranspose \(1\)$"):
        net = read_onnx(p, skip_unsupported=True)
    assert [layer.name for layer in net] == ["conv"]


def dynamic_model() -> onnx.ModelProto:
    nodes = [helper.make_node("Conv", ["x", "w"], ["y"], name="conv", pads=[1, 1, 1, 1])]
    return model(nodes, [vi("x", ["N", 3, "H", "W"])], [vi("y", ["N", 4, "H", "W"])], [init("w", (4, 3, 3, 3))],
                 name="dyn")


def test_dynamic_shape_needs_input_shape(tmp_path: Path) -> None:
    p = save(tmp_path, dynamic_model(), "dyn.onnx")
    with pytest.raises(WorkloadError) as e:
        read_onnx(p)
    assert str(e.value) == "dyn.onnx: input 'x' has dynamic shape [N, 3, H, W]; give input_shape (--input-shape)"
    net = read_onnx(p, input_shape=(4, 3, 20, 24))
    assert net.batch == 4
    assert net.layers == (Conv2d("conv", in_channels=3, out_channels=4, in_h=20, in_w=24, kernel=3, padding=1,
                                 bias=False, sources=(NETWORK_INPUT,)),)
    with pytest.raises(WorkloadError, match=r"^dyn\.onnx: input 'x' has rank 4, input_shape \(3, 20\) has rank 2$"):
        read_onnx(p, input_shape=(3, 20))


def test_malformed_and_truncated(tmp_path: Path) -> None:
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"this is not an onnx model")
    with pytest.raises(WorkloadError) as e:
        read_onnx(bad)
    assert str(e.value) == "bad.onnx: not a valid ONNX file (protobuf parse error)"
    data = small_cnn().SerializeToString()
    trunc = tmp_path / "trunc.onnx"
    trunc.write_bytes(data[: len(data) - 7])
    with pytest.raises(WorkloadError) as e:
        read_onnx(trunc)
    assert str(e.value) == "trunc.onnx: not a valid ONNX file (protobuf parse error)"
    with pytest.raises(WorkloadError, match=r"^cannot read ONNX file '.*missing\.onnx': No such file or directory$"):
        read_onnx(tmp_path / "missing.onnx")


def test_cli_bad_onnx_exit_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x08\x07garbage")
    r = subprocess.run([sys.executable, "-m", "codesign", "workload", "show", str(bad)], capture_output=True,
                       text=True, cwd=tmp_path, check=False)
    assert r.returncode == 2
    assert r.stderr == "codesign workload: error: bad.onnx: not a valid ONNX file (protobuf parse error)\n"
    assert r.stdout == ""


def test_load_workload_dispatches_onnx(tmp_path: Path) -> None:
    from codesign.api import load_workload

    net = load_workload(save(tmp_path, small_cnn(), "cnn.onnx"))
    assert net.name == "cnn" and len(net) == 7  # named after the file, not the graph ("small_cnn")


def test_cli_skip_unsupported_warns_and_counts(tmp_path: Path) -> None:
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], name="conv"),
             helper.make_node("ConvTranspose", ["c", "wt"], ["y"], name="up1")]
    m = model(nodes, [vi("x", [1, 2, 8, 8])], [vi("y", [1, 2, 7, 7])],
              [init("w", (2, 2, 3, 3)), init("wt", (2, 2, 2, 2))])
    p = save(tmp_path, m, "up.onnx")
    cmd = [sys.executable, "-m", "codesign", "workload", "show", str(p), "--json"]
    r = subprocess.run(cmd, capture_output=True, text=True, check=False)
    assert r.returncode == 2
    assert r.stderr == ("codesign workload: error: up.onnx: unsupported op 'ConvTranspose' at node 'up1' "
                        "(--skip-unsupported skips it with a warning)\n")
    r = subprocess.run([*cmd, "--skip-unsupported"], capture_output=True, text=True, check=False)
    assert r.returncode == 0
    assert r.stderr == "codesign workload: warning: up.onnx: skipped 1 unsupported nodes: ConvTranspose (1)\n"
    assert '"name": "conv"' in r.stdout


def test_silu_reducemean_and_attention_scale() -> None:
    """What torch's exporters decompose: SiLU as x * Sigmoid(x) (the conv's activation, no layer), global pooling as
    ReduceMean over H, W (a global Pool), SDPA's scale as a scalar Mul before the scores MatMul (folded into
    it); a scalar Mul elsewhere stays an Eltwise."""
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], name="conv"),
        helper.make_node("Sigmoid", ["c"], ["s"], name="sig"),
        helper.make_node("Mul", ["c", "s"], ["a"], name="silu"),
        helper.make_node("ReduceMean", ["a", "axes"], ["g"], name="gap", keepdims=0),
        helper.make_node("Mul", ["g", "half"], ["h"], name="scale_out"),
        helper.make_node("Mul", ["q", "half"], ["qs"], name="scale_q"),
        helper.make_node("MatMul", ["qs", "k"], ["sc"], name="scores"),
    ]
    inits = [init("w", (4, 3, 1, 1)), numpy_helper.from_array(np.array([2, 3], dtype=np.int64), "axes"),
             numpy_helper.from_array(np.array(0.5, dtype=np.float32), "half")]
    m = model(nodes, [vi("x", [1, 3, 6, 6]), vi("q", [1, 2, 5, 8]), vi("k", [1, 2, 8, 5])],
              [vi("h", [1, 4]), vi("sc", [1, 2, 5, 5])], inits)
    assert read_onnx(m).layers == (
        Conv2d("conv", in_channels=3, out_channels=4, in_h=6, in_w=6, kernel=1, bias=False, sources=(NETWORK_INPUT,),
               activation="silu"),
        Pool("gap", channels=4, in_h=6, in_w=6, op="avg", global_=True, sources=("conv",)),  # through the SiLU
        Eltwise("scale_out", elements=4, op="mul", inputs_count=2, operand_elements=(4, 1),  # a scalar: 1 element
                sources=("gap",)),
        MatMul("scores", m=5, k=8, n=5, heads=2, sources=(NETWORK_INPUT, NETWORK_INPUT)),
    )


def test_weight_behind_identity_is_a_weight() -> None:
    """The legacy exporter shares identical initializers through Identity nodes: still weights (Linear, with
    their measured density), not a MatMul of two activations."""
    nodes = [helper.make_node("Identity", ["w"], ["w_shared"], name="share"),
             helper.make_node("MatMul", ["x", "w"], ["a"], name="fc1"),
             helper.make_node("MatMul", ["a", "w_shared"], ["y"], name="fc2")]
    m = model(nodes, [vi("x", [1, 16])], [vi("y", [1, 16])], [init("w", (16, 16), zero_frac=0.25)])
    fc2 = read_onnx(m).layer("fc2")
    assert isinstance(fc2, Linear) and fc2.weights.density == 0.75
