"""onnxruntime-quantized ResNet-18 (torchvision, weights=None) in every form onnxruntime writes: QDQ INT8,
QDQ INT4 (com.microsoft Q/DQ below opset 21, standard 4-bit types at opset 21), QOperator (QLinearConv,
QLinearAdd, QLinearGlobalAveragePool, QGemm) and dynamic (ConvInteger, MatMulInteger); and the INT4 in
an int8 container convention (QuantizeLinear -> Clip(-8, 7) -> DequantizeLinear). Each imports with the
module's MAC count and the bits it was quantized to; a bit-width above the array's is an error or an
explicit clip."""

from __future__ import annotations

import warnings
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
torch = pytest.importorskip("torch")
ort_quant = pytest.importorskip("onnxruntime.quantization")
from onnx import helper, numpy_helper  # noqa: E402

import codesign  # noqa: E402
from codesign.errors import WorkloadError  # noqa: E402
from codesign.workloads.onnx_import import read_onnx  # noqa: E402
from codesign.workloads.precision import BitsClippedWarning, fit_to_array  # noqa: E402
from codesign.workloads.torch_models import build_model, module_macs  # noqa: E402

SHAPE = (1, 3, 64, 64)
# ResNet-18 at 64x64: the module's hook count (20 convs + fc); 21 GEMM layers
RESNET18_64_MACS = 148_557_824
GEMM_LAYERS = 21


class _Calibration(ort_quant.CalibrationDataReader):
    def __init__(self) -> None:
        rng = np.random.default_rng(0)
        self.samples = iter([{"x": rng.standard_normal(SHAPE).astype(np.float32)} for _ in range(2)])

    def get_next(self):  # type: ignore[no-untyped-def]
        return next(self.samples, None)


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("quant")
    torch.manual_seed(0)
    model = build_model("torchvision:resnet18")
    assert module_macs(model, torch.zeros(*SHAPE)).total == RESNET18_64_MACS
    fp32 = folder / "fp32.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (torch.randn(*SHAPE),), fp32, dynamo=False, input_names=["x"], opset_version=17)
    pre = folder / "fp32_pre.onnx"  # onnxruntime's recommended preprocessing (folds the exporter's Identity nodes)
    from onnxruntime.quantization.shape_inference import quant_pre_process

    quant_pre_process(str(fp32), str(pre), skip_symbolic_shape=True)
    fp32 = pre
    op21 = folder / "fp32_opset21.onnx"
    onnx.save(onnx.version_converter.convert_version(onnx.load(str(fp32)), 21), str(op21))
    qf, qt = ort_quant.QuantFormat, ort_quant.QuantType
    out = {"fp32": fp32}
    runs = {
        "qdq_int8": (fp32, qf.QDQ, qt.QInt8),
        "qdq_int4_opset17": (fp32, qf.QDQ, qt.QInt4),  # com.microsoft Q/DQ carry the 4-bit types
        "qdq_int4_opset21": (op21, qf.QDQ, qt.QInt4),
        "qoperator_int8": (fp32, qf.QOperator, qt.QInt8),
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name, (src, fmt, wtype) in runs.items():
            out[name] = folder / f"{name}.onnx"
            ort_quant.quantize_static(str(src), str(out[name]), _Calibration(), quant_format=fmt,
                                      activation_type=qt.QUInt8, weight_type=wtype)
        out["dynamic_int8"] = folder / "dynamic_int8.onnx"
        ort_quant.quantize_dynamic(str(fp32), str(out["dynamic_int8"]), weight_type=qt.QInt8,
                                   op_types_to_quantize=["Conv", "MatMul", "Gemm"])
    return out


def _ops(path: Path) -> Counter[str]:
    return Counter(f"{n.domain}:{n.op_type}" if n.domain else n.op_type for n in onnx.load(str(path)).graph.node)


def _gemm_formats(path: Path) -> tuple[int, Counter[tuple[int, bool, int, bool]]]:
    net = read_onnx(path)
    return net.macs, Counter((layer.weights.bits, layer.weights.signed, layer.inputs.bits, layer.inputs.signed)
                             for layer in net if layer.has_gemm)


@pytest.mark.parametrize("name, ops, weight_bits", [
    ("qdq_int8", {"QuantizeLinear", "DequantizeLinear"}, 8),
    ("qdq_int4_opset17", {"com.microsoft:QuantizeLinear", "com.microsoft:DequantizeLinear"}, 4),
    ("qdq_int4_opset21", {"QuantizeLinear", "DequantizeLinear"}, 4),
    ("qoperator_int8", {"QLinearConv", "com.microsoft:QLinearAdd", "com.microsoft:QLinearGlobalAveragePool",
                        "com.microsoft:QGemm"}, 8),
])
def test_static_quantization_imports_with_its_bits(models: dict[str, Path], name: str, ops: set[str],
                                                   weight_bits: int) -> None:
    """Every conv and the fc: signed weights of the quantized width, unsigned 8-bit activations (QUInt8)."""
    assert ops <= set(_ops(models[name]))  # the format onnxruntime wrote is the one under test
    macs, formats = _gemm_formats(models[name])
    assert macs == RESNET18_64_MACS
    assert formats == Counter({(weight_bits, True, 8, False): GEMM_LAYERS})


def test_qdq_int4_opset21_uses_the_standard_4bit_type(models: dict[str, Path]) -> None:
    types = {t.data_type for t in onnx.load(str(models["qdq_int4_opset21"])).graph.initializer}
    assert onnx.TensorProto.INT4 in types


def test_qoperator_outputs_are_requantized_uint8(models: dict[str, Path]) -> None:
    net = read_onnx(models["qoperator_int8"])
    assert {(layer.outputs.bits, layer.outputs.signed) for layer in net if layer.has_gemm} == {(8, False)}
    assert Counter(layer.kind.value for layer in net) == Counter(conv=20, linear=1, eltwise=8, pool=2)


def test_dynamic_quantization_convinteger_matmulinteger(models: dict[str, Path]) -> None:
    assert {"ConvInteger", "MatMulInteger", "DynamicQuantizeLinear"} <= set(_ops(models["dynamic_int8"]))
    net = read_onnx(models["dynamic_int8"])
    assert net.macs == RESNET18_64_MACS
    gemm = [layer for layer in net if layer.has_gemm]
    # DynamicQuantizeLinear makes uint8 activations; the integer ops write int32 accumulators
    assert {(g.weights.bits, g.weights.signed, g.inputs.bits, g.inputs.signed, g.outputs.bits) for g in gemm} == \
        {(8, True, 8, False, 32)}


def _int8_container_int4(src: Path, dst: Path) -> None:
    """QDQ INT8 rewritten to the int8-container INT4 convention: every weight's int8 initializer and every
    activation's QuantizeLinear output goes through Clip(-8, 7) / Clip(0, 15) before its DequantizeLinear."""
    m = onnx.load(str(src))
    g = m.graph
    inits = {t.name for t in g.initializer}
    nodes = []
    g.initializer.extend([numpy_helper.from_array(np.array(v, dtype=dt), n) for n, v, dt in (
        ("lo_s", -8, np.int8), ("hi_s", 7, np.int8), ("lo_u", 0, np.uint8), ("hi_u", 15, np.uint8))])
    for node in g.node:
        if node.op_type == "DequantizeLinear" and node.input[0] in inits:  # weight (int8) or bias (int32)
            if next(t for t in g.initializer if t.name == node.input[0]).data_type == onnx.TensorProto.INT8:
                clipped = node.input[0] + "_int4"
                nodes.append(helper.make_node("Clip", [node.input[0], "lo_s", "hi_s"], [clipped]))
                node.input[0] = clipped
        elif node.op_type == "DequantizeLinear":  # activation: uint8 from a QuantizeLinear
            clipped = node.input[0] + "_uint4"
            nodes.append(helper.make_node("Clip", [node.input[0], "lo_u", "hi_u"], [clipped]))
            node.input[0] = clipped
        nodes.append(node)
    del g.node[:]
    g.node.extend(nodes)
    onnx.save(m, str(dst))


def test_int4_in_int8_container_clip_convention(models: dict[str, Path], tmp_path: Path) -> None:
    path = tmp_path / "clip_int4.onnx"
    _int8_container_int4(models["qdq_int8"], path)
    macs, formats = _gemm_formats(path)
    assert macs == RESNET18_64_MACS
    assert formats == Counter({(4, True, 4, False): GEMM_LAYERS})  # Clip(-8, 7): int4; Clip(0, 15): uint4


# -- bit-widths above the array's ------------------------------------------------------------------------


def test_int8_model_on_4bit_array_is_an_error(models: dict[str, Path]) -> None:
    net = read_onnx(models["qdq_int8"])
    first = next(layer.name for layer in net if layer.has_gemm)
    with pytest.raises(WorkloadError) as e:
        fit_to_array(net, weight_bits=4, act_bits=8)
    assert str(e.value) == (f"layer {first!r}: weights are 8-bit, wider than the array's weight_bits 4 (and 20 more "
                            "operands); use an array of 8 bits, a model quantized to 4 bits, or clip explicitly "
                            "(clip_bits=True, --clip-bits)")
    with pytest.raises(WorkloadError, match=r"weights are 8-bit, wider than the array's weight_bits 4"):
        codesign.simulate(str(models["qdq_int8"]), codesign.AcceleratorConfig(weight_bits=4))


def test_clip_is_explicit_and_stated(models: dict[str, Path]) -> None:
    net = read_onnx(models["qdq_int8"])
    clipped, notes = fit_to_array(net, weight_bits=4, act_bits=8, clip=True)
    assert {layer.weights.bits for layer in clipped if layer.has_gemm} == {4}
    assert len(notes) == 1 and notes[0].startswith(
        "clipped weights of 21 layers from 8 to 4 bits (the array's weight_bits): ")
    # the 4-bit model fits a 4-bit array: nothing to say
    assert fit_to_array(read_onnx(models["qdq_int4_opset21"]), weight_bits=4, act_bits=8) == \
        (read_onnx(models["qdq_int4_opset21"]), [])
    cfg = codesign.AcceleratorConfig(weight_bits=4, rows=8, cols=8)
    with pytest.warns(BitsClippedWarning, match=r"^clipped weights of 21 layers from 8 to 4 bits"):
        res = codesign.simulate(str(models["qdq_int8"]), cfg, clip_bits=True)
    assert res.macs == RESNET18_64_MACS


def _quantize_qoperator(spec: str, folder: Path) -> tuple[int, Path, Path]:
    """(the module's MACs at SHAPE, its fp32 export, its QOperator quantization)."""
    from onnxruntime.quantization.shape_inference import quant_pre_process

    torch.manual_seed(0)
    model = build_model(spec)
    fp32, pre, q = folder / "fp32.onnx", folder / "pre.onnx", folder / "qop.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (torch.randn(*SHAPE),), fp32, dynamo=False, input_names=["x"], opset_version=17)
        quant_pre_process(str(fp32), str(pre), skip_symbolic_shape=True)
        ort_quant.quantize_static(str(pre), str(q), _Calibration(), quant_format=ort_quant.QuantFormat.QOperator,
                                  activation_type=ort_quant.QuantType.QUInt8, weight_type=ort_quant.QuantType.QInt8)
    return module_macs(model, torch.zeros(*SHAPE)).total, pre, q


@pytest.mark.parametrize("spec, contrib, macs", [
    # fire modules: QLinearConcat; 26 convs at 64x64
    ("torchvision:squeezenet1_1", {"QLinearConcat", "QLinearGlobalAveragePool"}, 21_584_576),
    # SiLU as QLinearSigmoid + QLinearMul, SE blocks, residual QLinearAdd: shapes through chains of contrib ops
    pytest.param("timm:efficientnet_b0", {"QLinearSigmoid", "QLinearMul", "QLinearAdd", "QGemm"}, 33_246_592,
                 marks=pytest.mark.slow),
])
def test_qoperator_contrib_ops_shapes(spec: str, contrib: set[str], macs: int, tmp_path: Path) -> None:
    ref, fp32, q = _quantize_qoperator(spec, tmp_path)
    assert ref == macs
    assert {f"com.microsoft:{op}" for op in contrib} <= set(_ops(q))
    net, float_net = read_onnx(q), read_onnx(fp32)
    assert net.macs == macs
    # the same layers as the float model (x * sigmoid(x) stays an activation), at 8 bits
    assert [layer.kind for layer in net] == [layer.kind for layer in float_net]
    assert {(layer.weights.bits, layer.inputs.bits) for layer in net if layer.has_gemm} == {(8, 8)}
