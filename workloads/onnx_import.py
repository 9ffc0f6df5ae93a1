"""Read an ONNX model into a :class:`~codesign.workloads.layers.Network`.

Tensors stored outside the file (``model.onnx.data``, torch's default exporter) are read from the
model's folder, whatever the working directory. Shapes come from ONNX shape inference with the
shape arithmetic of the exporters folded to constants (:mod:`.onnx_shapes`); give ``input_shape``
for models with dynamic inputs: it binds their symbolic dimensions. Compute nodes become layers:
Conv (groups, pads, strides, dilations, ``auto_pad``) -> Conv2d; Gemm and MatMul with a weight
initializer -> Linear (a following bias ``Add`` is fused), with two activations -> MatMul;
MaxPool / AveragePool / GlobalAveragePool / GlobalMaxPool -> Pool; Add / Sub / Mul / Div -> Eltwise.
Shape, normalization and activation ops are skipped silently (non-compute; a BatchNormalization
right after a Conv is folded into its bias).

Quantized graphs, as onnxruntime writes them: QDQ (QuantizeLinear / DequantizeLinear, standard or
``com.microsoft``, 8-bit and 4-bit types), the int8-container INT4 convention (an integer tensor
through ``Clip(-8, 7)`` before its DequantizeLinear: the clip range gives the bits), QOperator
(QLinearConv, QLinearMatMul, ``com.microsoft`` QGemm / QLinearAdd / QLinearMul /
QLinear(Global)AveragePool) and dynamic quantization (ConvInteger, MatMulInteger). Operand bits and
signedness come from the integer types; weight density (and an exact N:M pattern) is measured
from the initializers, a quantized zero being the zero point.

The batch is the leading dimension of the first graph input; layers describe one sample.
"""

from __future__ import annotations

import warnings
from collections import Counter
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import external_data_helper, numpy_helper

from codesign.errors import WorkloadError
from codesign.workloads.import_common import (
    MIXED,
    broadcast_operands,
    combine_origins,
    layer_sources,
    unique_name,
    with_density,
)
from codesign.workloads.layers import NETWORK_INPUT, Conv2d, Eltwise, Layer, Linear, MatMul, Network, Pool
from codesign.workloads.onnx_shapes import infer_static_shapes
from codesign.workloads.operand import Operand


class UnsupportedOpWarning(UserWarning):
    """An ONNX node was skipped because ``skip_unsupported=True``."""


# ops that move, reshape, normalize or activate data: no MACs, skipped silently
PASS_THROUGH = frozenset({
    "Relu", "Clip", "BatchNormalization", "Reshape", "Flatten", "Transpose", "Softmax", "LogSoftmax", "Sigmoid",
    "HardSigmoid", "HardSwish", "Tanh", "LeakyRelu", "PRelu", "Elu", "Selu", "Gelu", "Erf", "Mish", "Softplus",
    "Concat", "Split", "Slice", "Squeeze", "Unsqueeze", "Identity", "Dropout", "Shape", "Constant",
    "ConstantOfShape", "Cast", "CastLike", "Gather", "Expand", "Pad", "Tile", "LayerNormalization",
    "InstanceNormalization", "GroupNormalization", "ReduceMean", "ReduceSum", "ReduceMax", "Sqrt", "Pow",
    "Reciprocal", "Neg", "Exp", "Log", "Abs", "Where", "Equal", "Less", "Greater", "Not", "And", "Or",
    "Range", "Resize", "Upsample", "DepthToSpace", "SpaceToDepth", "ArgMax", "Floor", "Ceil", "Round",
    "Min", "Max", "Trilu", "Size", "NonZero", "QuantizeLinear", "DequantizeLinear", "DynamicQuantizeLinear",
})

_ELTWISE = {"Add": "add", "Sub": "add", "Mul": "mul", "Div": "mul"}
# element-wise functions of one tensor (other inputs scalar constants): the pieces exporters split activations into
_UNARY = frozenset({
    "Relu", "Clip", "Sigmoid", "HardSigmoid", "HardSwish", "Tanh", "Erf", "LeakyRelu", "Elu", "Selu", "Celu",
    "Gelu", "Mish", "Softplus", "Softsign", "Exp", "Log", "Abs", "Neg", "Sqrt", "Reciprocal", "Pow", "Identity",
    "Cast", "Floor", "Ceil", "Round", "Sign", "QuantizeLinear", "DequantizeLinear"})
_LINEAR_UNARY = frozenset({"Identity", "Cast", "Neg", "QuantizeLinear", "DequantizeLinear"})
_POOL = {"MaxPool": "max", "AveragePool": "avg", "GlobalAveragePool": "avg", "GlobalMaxPool": "max"}
_TP = onnx.TensorProto
# integer tensor types -> (bits, signed)
_INT_TYPES: dict[int, tuple[int, bool]] = {
    _TP.INT8: (8, True), _TP.UINT8: (8, False), _TP.INT16: (16, True), _TP.UINT16: (16, False),
    _TP.INT32: (32, True), _TP.UINT32: (32, False)}
for _t, _v in (("INT4", (4, True)), ("UINT4", (4, False)), ("INT2", (2, True)), ("UINT2", (2, False))):
    if hasattr(_TP, _t):
        _INT_TYPES[getattr(_TP, _t)] = _v


def _load(path: str | Path | onnx.ModelProto) -> tuple[onnx.ModelProto, str]:
    if isinstance(path, onnx.ModelProto):
        return path, path.graph.name or "model"
    where = Path(path).name
    try:
        data = Path(path).read_bytes()
    except OSError as e:
        raise WorkloadError(f"cannot read ONNX file {str(path)!r}: {e.strerror}") from e
    model = onnx.ModelProto()
    try:
        model.ParseFromString(data)
    except Exception as e:  # protobuf DecodeError and friends
        raise WorkloadError(f"{where}: not a valid ONNX file (protobuf parse error)") from e
    if not model.HasField("graph") or not model.graph.node:
        raise WorkloadError(f"{where}: not a valid ONNX file (no graph nodes)")
    _load_external_data(model, Path(path), where)
    try:
        onnx.checker.check_model(model)
    except onnx.checker.ValidationError as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise WorkloadError(f"{where}: not a valid ONNX model ({first})") from e
    return model, where


def _load_external_data(model: onnx.ModelProto, path: Path, where: str) -> None:
    """Read the tensors stored outside the model file (``model.onnx.data``, the default of torch's exporter)
    from the model's folder, not the working directory."""
    tensors = [t for t in external_data_helper._get_all_tensors(model) if external_data_helper.uses_external_data(t)]
    if not tensors:
        return
    folder = path.resolve().parent
    for t in tensors:
        location = next((e.value for e in t.external_data if e.key == "location"), "")
        target = (folder / location).resolve()
        if not location or Path(location).is_absolute() or folder not in (target, *target.parents):
            raise WorkloadError(f"{where}: tensor {t.name!r} has external data location {location!r}, which is "
                                "not a file inside the model's folder")
        if not target.is_file():
            raise WorkloadError(f"{where}: external data file {location!r} of tensor {t.name!r} not found next to "
                                "the model")
    try:
        external_data_helper.load_external_data_for_model(model, str(folder))
    except (OSError, ValueError) as e:
        raise WorkloadError(f"{where}: cannot read its external data ({e})") from e


def _dims(vi: onnx.ValueInfoProto) -> list[int | str] | None:
    t = vi.type.tensor_type
    if not t.HasField("shape"):
        return None
    return [d.dim_value if d.HasField("dim_value") else (d.dim_param or "?") for d in t.shape.dim]


def _set_input_shapes(model: onnx.ModelProto, real_inputs: list[onnx.ValueInfoProto],
                      input_shape: Sequence[int] | dict[str, Sequence[int]], where: str) -> None:
    shapes = input_shape if isinstance(input_shape, dict) else {real_inputs[0].name: input_shape}
    for name, shape in shapes.items():
        vi = next((v for v in real_inputs if v.name == name), None)
        if vi is None:
            raise WorkloadError(f"{where}: input_shape names input {name!r}, which the model does not have "
                                f"(inputs: {', '.join(v.name for v in real_inputs)})")
        if not shape or any(isinstance(d, bool) or not isinstance(d, int) or d < 1 for d in shape):
            raise WorkloadError(f"input_shape must be positive integers, not {tuple(shape)!r}")
        old = _dims(vi)
        if old is not None and len(old) != len(shape):
            raise WorkloadError(f"{where}: input {name!r} has rank {len(old)}, input_shape {tuple(shape)!r} "
                                f"has rank {len(shape)}")
        dims = vi.type.tensor_type.shape.dim
        del dims[:]
        for d in shape:
            dims.add().dim_value = d
    del model.graph.value_info[:]


class _Reader:
    def __init__(self, model: onnx.ModelProto, where: str, skip_unsupported: bool, shape_given: bool = False) -> None:
        self.where = where
        self.shape_given = shape_given
        self.skip_unsupported = skip_unsupported
        g = model.graph
        self.graph = g
        self.inits: dict[str, onnx.TensorProto] = {t.name: t for t in g.initializer}
        self.shapes: dict[str, list[int | str] | None] = {}
        self.types: dict[str, int] = {}
        for vi in [*g.input, *g.value_info, *g.output]:
            self.shapes[vi.name] = _dims(vi)
            self.types[vi.name] = vi.type.tensor_type.elem_type
        for t in g.initializer:
            self.shapes[t.name] = list(t.dims)
            self.types[t.name] = t.data_type
        self.consts: dict[str, np.ndarray] = {}
        for node in g.node:  # Constant nodes hold initializers too
            if node.op_type == "Constant" and node.attribute and node.attribute[0].name == "value":
                arr = numpy_helper.to_array(node.attribute[0].t)
                self.consts[node.output[0]] = arr
                self.shapes[node.output[0]] = list(arr.shape)
        self.consumers: dict[str, list[onnx.NodeProto]] = {}
        for node in g.node:
            for i in node.input:
                self.consumers.setdefault(i, []).append(node)
        self.producer: dict[str, onnx.NodeProto] = {o: node for node in g.node for o in node.output if o}
        # DequantizeLinear outputs (standard or com.microsoft): operand format, and the node
        self.qformat: dict[str, tuple[int, bool]] = {}
        self.dq_source: dict[str, onnx.NodeProto] = {}
        for node in g.node:
            if node.op_type == "DequantizeLinear" and node.domain in ("", "ai.onnx", "com.microsoft"):
                fmt = self.quantized_format(node.input[0])
                if fmt is not None:
                    self.qformat[node.output[0]] = fmt
                self.dq_source[node.output[0]] = node
        self.fused: set[str] = set()
        self.skipped: Counter[str] = Counter()
        self.names: set[str] = set()
        self.operands: list[str] = []  # the activation tensors of the layer just converted, in operand order
        self.activation = self._activations()

    # -- activations split into element-wise nodes ----------------------------------------------------
    def _pointwise_input(self, node: onnx.NodeProto) -> str | None:
        """The one activation input of an element-wise node whose other inputs are scalar constants."""
        if node.domain not in ("", "ai.onnx"):
            return None
        if node.op_type in _UNARY:
            data, others = node.input[0], list(node.input[1:])
        elif node.op_type in _ELTWISE:
            acts = [i for i in node.input if i and not self.is_const(i)]
            if len(acts) != 1:
                return None
            data, others = acts[0], [i for i in node.input if i != acts[0]]
        else:
            return None
        for o in others:
            arr = self.array(o) if o else None
            if o and (arr is None or arr.size != 1):
                return None
        return data

    def _activations(self) -> set[str]:
        """Element-wise nodes that together compute an activation ``x * f(x)`` (or ``x + f(x)``) with ``f``
        non-linear, as exporters split SiLU (``x * Sigmoid(x)``), GELU (``0.5 * x * (1 + Erf(x / sqrt 2))``,
        the tanh form with ``Pow(x, 3)``), hard-swish (``x * Clip(x + 3, 0, 6) / 6``) and Mish: node names.
        Scalar ops right after such an activation (GELU's ``* 0.5``) belong to it. Like Relu, they are not
        layers (the zoo's convention: an activation runs in its producer's write-back)."""
        root: dict[str, tuple[str, bool]] = {}  # tensor -> (the tensor it is a pointwise function of, non-linear)
        marked: set[str] = set()

        def of(t: str) -> tuple[str, bool]:
            return root.get(t, (t, False))

        for node in self.graph.node:
            if not node.output:
                continue
            data = self._pointwise_input(node)
            if data is not None:
                base, nonlinear = of(data)
                pow_exp = node.op_type == "Pow" and self.array(node.input[1]) is not None
                res = (base, nonlinear or (node.op_type not in _LINEAR_UNARY and node.op_type not in _ELTWISE)
                       or pow_exp)
                prod = self.producer.get(data)
                if node.op_type in _ELTWISE and prod is not None and self.node_name(prod) in marked:
                    marked.add(self.node_name(node))
            elif node.op_type in _ELTWISE and node.domain in ("", "ai.onnx") and len(node.input) == 2 and \
                    not any(self.is_const(i) for i in node.input):
                (ra, na), (rb, nb) = of(node.input[0]), of(node.input[1])
                if ra != rb:
                    continue
                res = (ra, na or nb)
                if na or nb:  # x * f(x): the node and the chain from x are the activation
                    marked.add(self.node_name(node))
                    stack = [i for i in node.input if i != ra]
                    while stack:
                        p = self.producer.get(stack.pop())
                        if p is not None and self.node_name(p) not in marked:
                            marked.add(self.node_name(p))
                            stack.extend(i for i in p.input if i and i != ra and not self.is_const(i))
            else:
                continue
            for o in node.output:
                root[o] = res
        return marked

    # -- tensors -----------------------------------------------------------------------------------
    def _int_type(self, name: str) -> tuple[int, bool] | None:
        if name in self.types:
            return _INT_TYPES.get(self.types[name])
        if name in self.consts:
            return _INT_TYPES.get(onnx.helper.np_dtype_to_tensor_dtype(self.consts[name].dtype))
        return None

    def clip_of(self, name: str) -> tuple[onnx.NodeProto, int, int] | None:
        """The Clip node producing integer tensor ``name`` and its constant bounds: the INT4-in-int8 convention
        (QuantizeLinear -> Clip(-8, 7) -> DequantizeLinear) of exporters without opset 21's 4-bit types."""
        node = self.producer.get(name)
        if node is None or node.op_type != "Clip" or node.domain not in ("", "ai.onnx"):
            return None
        if len(node.input) > 1:  # opset >= 11: bounds are inputs
            lo = self.array(node.input[1]) if node.input[1] else None
            hi = self.array(node.input[2]) if len(node.input) > 2 and node.input[2] else None
        else:
            lo, hi = _attr(node, "min", None), _attr(node, "max", None)
        fmt = self._int_type(node.input[0])
        if fmt is None:
            return None
        lo_v = int(np.asarray(lo).reshape(-1)[0]) if lo is not None else _int_min(*fmt)
        hi_v = int(np.asarray(hi).reshape(-1)[0]) if hi is not None else _int_max(*fmt)
        return node, lo_v, hi_v

    def quantized_format(self, name: str) -> tuple[int, bool] | None:
        """(bits, signed) of an integer tensor: its type, narrowed by a Clip with constant bounds."""
        clip = self.clip_of(name)
        if clip is not None:
            _, lo, hi = clip
            return _bits_for_range(lo, hi)
        return self._int_type(name)

    def array(self, name: str) -> np.ndarray | None:
        if name in self.inits:
            return numpy_helper.to_array(self.inits[name])
        if name in self.consts:
            return self.consts[name]
        ident = self.producer.get(name)
        if ident is not None and ident.op_type == "Identity":  # the legacy exporter's shared initializers
            return self.array(ident.input[0])
        clip = self.clip_of(name)
        if clip is not None:
            src = self.array(clip[0].input[0])
            return None if src is None else np.clip(src, clip[1], clip[2])
        return None

    def is_const(self, name: str) -> bool:
        if name in self.inits or name in self.consts:
            return True
        ident = self.producer.get(name)
        if ident is not None and ident.op_type == "Identity":
            return self.is_const(ident.input[0])
        clip = self.clip_of(name)
        if clip is not None:
            return self.is_const(clip[0].input[0])
        q = self.producer.get(name)
        if q is not None and q.op_type == "QuantizeLinear":  # weights quantized in the graph
            return self.is_const(q.input[0])
        dq = self.dq_source.get(name)
        return dq is not None and self.is_const(dq.input[0])

    def shape(self, name: str, node: onnx.NodeProto) -> list[int]:
        dims = self.shapes.get(name)
        if dims is None or any(not isinstance(d, int) or d < 1 for d in dims):
            shown = "unknown" if dims is None else str(dims)
            hint = "shape inference cannot resolve it" if self.shape_given else "give input_shape (--input-shape)"
            raise WorkloadError(f"{self.where}: shape of {name!r} (input of node {self.node_name(node)!r}) is "
                                f"{shown}; {hint}")
        return [int(d) for d in dims]

    def weight_operand(self, name: str, base: Operand, k_axis: int, zero_point: str = "") -> Operand:
        """Format and measured density of a weight tensor (an initializer, or DequantizeLinear of one);
        a quantized zero is the zero point."""
        dq = self.dq_source.get(name)
        arr = self.array(dq.input[0] if dq is not None else name)
        q = self.producer.get(dq.input[0]) if dq is not None else None
        if q is not None and q.op_type == "QuantizeLinear":  # float weights quantized in the graph: their zeros
            arr, dq = self.array(q.input[0]), None
        zero: Any = 0
        if zero_point and arr is not None:
            zp = self.array(zero_point)
            if zp is not None:
                zero = zp.reshape([-1] + [1] * (arr.ndim - 1)) if zp.size > 1 else zp.reshape(())
        if name in self.qformat:
            bits, signed = self.qformat[name]
            base = replace(base, bits=bits, signed=signed)
        if dq is not None:
            if len(dq.input) > 2 and dq.input[2]:
                zp = self.array(dq.input[2])
                if zp is not None and arr is not None:
                    axis = _attr(dq, "axis", 1)
                    zero = zp.reshape([-1 if i == axis % arr.ndim else 1 for i in range(arr.ndim)]) \
                        if zp.size > 1 else zp.reshape(())
        if arr is None:
            return base
        return with_density(base, arr, zero, k_axis)

    def float_source(self, name: str) -> str:
        """The tensor a QuantizeLinear -> DequantizeLinear pair (QDQ) was inserted after."""
        while True:
            dq = self.producer.get(name)
            q = self.producer.get(dq.input[0]) if dq is not None and dq.op_type == "DequantizeLinear" else None
            if q is None or q.op_type != "QuantizeLinear":
                return name
            name = q.input[0]

    def node_name(self, node: onnx.NodeProto) -> str:
        return node.name or f"{node.op_type}_{list(self.graph.node).index(node)}"

    def layer_name(self, node: onnx.NodeProto) -> str:
        return unique_name(self.node_name(node), self.names)

    def act(self, name: str) -> Operand:
        """An activation's format: a DequantizeLinear output's integer format, an integer tensor's own type
        (QOperator graphs), else the default."""
        fmt = self.qformat.get(name) or self.quantized_format(name)
        return Operand(bits=fmt[0], signed=fmt[1]) if fmt else Operand()


def _int_min(bits: int, signed: bool) -> int:
    return -(1 << (bits - 1)) if signed else 0


def _int_max(bits: int, signed: bool) -> int:
    return (1 << (bits - 1)) - 1 if signed else (1 << bits) - 1


def _bits_for_range(lo: int, hi: int) -> tuple[int, bool]:
    """Fewest bits holding every integer in [lo, hi]: signed when lo < 0 (Clip(-8, 7) -> 4 bits signed)."""
    signed = lo < 0
    bits = 1
    while bits < 32 and (lo < _int_min(bits, signed) or hi > _int_max(bits, signed)):
        bits += 1
    return bits, signed


def _attr(node: onnx.NodeProto, name: str, default: Any) -> Any:
    for a in node.attribute:
        if a.name == name:
            return onnx.helper.get_attribute_value(a)
    return default


def _spatial(node: onnx.NodeProto, in_hw: list[int], kernel: list[int], strides: list[int],
             dilations: list[int], where: str) -> tuple[int, int, int, int]:
    """Padding (top, left, bottom, right) from ``pads`` or ``auto_pad``."""
    auto = _attr(node, "auto_pad", b"NOTSET")
    auto = auto.decode() if isinstance(auto, bytes) else auto
    nd = len(kernel)
    if auto in ("SAME_UPPER", "SAME_LOWER"):
        before, after = [], []
        for size, k, s, d in zip(in_hw, kernel, strides, dilations, strict=True):
            out = -(-size // s)
            total = max((out - 1) * s + (k - 1) * d + 1 - size, 0)
            small = total // 2
            before.append(small if auto == "SAME_UPPER" else total - small)
            after.append(total - before[-1])
        pads = before + after
    elif auto == "VALID":
        pads = [0] * (2 * nd)
    else:
        pads = list(_attr(node, "pads", [0] * (2 * nd)))
    if nd == 1:  # 1-D as 2-D with height 1
        return (0, pads[0], 0, pads[1])
    return (pads[0], pads[1], pads[2], pads[3])


def read_onnx(path: str | Path | onnx.ModelProto, *,
              input_shape: Sequence[int] | dict[str, Sequence[int]] | None = None,
              skip_unsupported: bool = False, name: str | None = None) -> Network:
    """Import an ONNX model file (or ModelProto) as a Network of its compute layers."""
    model, where = _load(path)
    inits = {t.name for t in model.graph.initializer}
    real_inputs = [vi for vi in model.graph.input if vi.name not in inits]
    if not real_inputs:
        raise WorkloadError(f"{where}: the graph has no inputs")
    if input_shape is not None:
        _set_input_shapes(model, real_inputs, input_shape, where)
    else:
        for vi in real_inputs:
            dims = _dims(vi)
            if dims is None or any(not isinstance(d, int) or d < 1 for d in dims):
                shown = "unknown" if dims is None else "[" + ", ".join(str(d) for d in dims) + "]"
                raise WorkloadError(f"{where}: input {vi.name!r} has dynamic shape {shown}; give input_shape "
                                    "(--input-shape)")
    model = infer_static_shapes(model, where)
    r = _Reader(model, where, skip_unsupported, shape_given=input_shape is not None)
    first = [int(d) for d in (_dims(next(v for v in model.graph.input if v.name == real_inputs[0].name)) or [])]
    batch = first[0] if len(first) >= 2 else 1
    layers: list[Layer] = []
    # the layer whose output each tensor is (through data-moving and activation ops): the graph's edges
    origin: dict[str, str | None] = {vi.name: NETWORK_INPUT for vi in real_inputs}

    def origin_of(t: str) -> str | None:
        return None if r.is_const(t) else origin.get(t, MIXED)

    for node in model.graph.node:
        r.operands = []
        layer = None if r.node_name(node) in r.fused else _convert(r, node, batch)
        if layer is None:
            o = combine_origins([origin_of(i) for i in node.input if i])
            for out in node.output:
                origin[out] = o
            continue
        layer = replace(layer, sources=layer_sources([origin_of(t) for t in r.operands]))
        layers.append(layer)
        for out in node.output:
            origin[out] = layer.name
    if r.skipped:
        what = ", ".join(f"{op} ({n})" for op, n in sorted(r.skipped.items()))
        warnings.warn(f"{where}: skipped {sum(r.skipped.values())} unsupported nodes: {what}",
                      UnsupportedOpWarning, stacklevel=2)
    # a file's network is named after the file (exporters name every graph alike, e.g. torch's main_graph);
    # layers keep the graph's node names, through the CLI and the API alike
    from_file = not isinstance(path, onnx.ModelProto)
    net_name = name or (Path(where).stem if from_file else model.graph.name or "model")
    if not layers:
        raise WorkloadError(f"{where}: no compute layers (Conv, Gemm, MatMul, pooling, elementwise) found")
    return Network(net_name, tuple(layers), batch=batch, input_shape=tuple(first[1:] if len(first) >= 2 else first),
                   source=f"ONNX {where}")


# onnxruntime's com.microsoft quantized ops that only move, concatenate or activate data
MS_PASS_THROUGH = frozenset({"QuantizeLinear", "DequantizeLinear", "QLinearConcat", "QLinearSigmoid",
                             "QLinearLeakyRelu", "QLinearSoftmax", "QLinearWhere"})
# input positions per op: (data, weight, bias, weight zero point, output zero point); -1: none
_CONV_INPUTS = {"Conv": (0, 1, 2, -1, -1), "QLinearConv": (0, 3, 8, 5, 7), "ConvInteger": (0, 1, -1, 3, -1)}
_MATMUL_INPUTS = {"Gemm": (0, 1, 2, -1, -1), "MatMul": (0, 1, -1, -1, -1), "QLinearMatMul": (0, 3, -1, 5, 7),
                  "MatMulInteger": (0, 1, -1, 3, -1), "com.microsoft.QGemm": (0, 3, 6, 5, 8)}
_QUANT_OPS = {"QLinearConv", "ConvInteger", "QLinearMatMul", "MatMulInteger", "com.microsoft.QGemm"}


def _convert(r: _Reader, node: onnx.NodeProto, batch: int) -> Layer | None:
    op = node.op_type
    if node.domain not in ("", "ai.onnx"):
        if node.domain == "com.microsoft" and op in MS_PASS_THROUGH:
            return None
        if node.domain == "com.microsoft" and op in ("QLinearAdd", "QLinearMul"):
            return _eltwise(r, node, batch, ins=[node.input[0], node.input[3]], kind=_ELTWISE[op[7:]])
        if node.domain == "com.microsoft" and op in ("QLinearGlobalAveragePool", "QLinearAveragePool"):
            return _pool(r, node, op=op[7:])
        op = f"{node.domain}.{op}"
    if op in _CONV_INPUTS:
        return _conv(r, node)
    if op in _MATMUL_INPUTS:
        return _matmul(r, node, batch, op)
    if op in _POOL:
        return _pool(r, node)
    if op in ("ReduceMean", "ReduceMax"):
        return _reduce_pool(r, node)
    if op in _ELTWISE:
        return _eltwise(r, node, batch)
    if op in PASS_THROUGH:
        return None
    if r.skip_unsupported:
        r.skipped[op] += 1
        return None
    raise WorkloadError(f"{r.where}: unsupported op {op!r} at node {r.node_name(node)!r} "
                        "(--skip-unsupported skips it with a warning)")


def _input(node: onnx.NodeProto, i: int) -> str:
    return node.input[i] if 0 <= i < len(node.input) else ""


def _conv(r: _Reader, node: onnx.NodeProto) -> Conv2d:
    xi, wi, bi, wzi, yzi = _CONV_INPUTS[node.op_type]
    q = node.op_type in _QUANT_OPS
    x, w = node.input[xi], node.input[wi]
    xs, ws = r.shape(x, node), r.shape(w, node)
    nd = len(xs) - 2
    if nd not in (1, 2):
        raise WorkloadError(f"{r.where}: node {r.node_name(node)!r}: Conv with {nd} spatial dimensions is not "
                            "supported (1-D and 2-D are)")
    kernel = list(_attr(node, "kernel_shape", ws[2:]))
    strides = list(_attr(node, "strides", [1] * nd))
    dilations = list(_attr(node, "dilations", [1] * nd))
    pads = _spatial(node, xs[2:], kernel, strides, dilations, r.where)
    if nd == 1:
        kernel, strides, dilations, in_hw = [1, *kernel], [1, *strides], [1, *dilations], [1, xs[2]]
    else:
        in_hw = xs[2:]
    has_bias = bool(_input(node, bi))
    outs = r.consumers.get(node.output[0], [])
    if not has_bias and len(outs) == 1 and outs[0].op_type == "BatchNormalization":
        has_bias = True  # BN folded into the conv bias
    weights = r.weight_operand(w, Operand(), k_axis=1, zero_point=_input(node, wzi))
    inputs = r.act(x)
    r.operands = [x]
    extra: dict[str, Operand] = {}
    if q:  # integer ops: formats are the tensors' types; the output is requantized (QLinear) or int32
        weights = replace(weights, **_fmt(r, w))
        out_fmt = _fmt(r, _input(node, yzi)) if yzi >= 0 else _fmt(r, node.output[0])
        extra["outputs"] = Operand(**out_fmt) if out_fmt else Operand()
    return Conv2d(r.layer_name(node), in_channels=xs[1], out_channels=ws[0], in_h=in_hw[0], in_w=in_hw[1],
                  kernel=tuple(kernel), stride=tuple(strides), padding=pads, dilation=tuple(dilations),
                  groups=int(_attr(node, "group", 1)), bias=has_bias, inputs=inputs, weights=weights,
                  activation=activation_after(r, node.output[0]), **extra)


# one-input activations a table makes (workloads.layers.TABLE_ACTIVATIONS)
_TABLE_OPS = {"HardSwish": "hard_swish", "HardSigmoid": "hard_sigmoid", "Sigmoid": "sigmoid",
              "QLinearSigmoid": "sigmoid", "Tanh": "tanh", "Gelu": "gelu"}
# nodes between a layer and its activation that do not change which function it is
_THROUGH = frozenset({"QuantizeLinear", "DequantizeLinear", "Identity", "Cast", "BatchNormalization"})


def activation_after(r: _Reader, tensor: str) -> str:
    """The table activation applied to a layer's output ``tensor`` ('' for none or the ReLU family, which
    the output's clamp makes): its one consumer, through quantize/dequantize, casts, a folded
    BatchNormalization or a constant bias ``Add``, is HardSwish, HardSigmoid, Sigmoid, Tanh or Gelu, or
    the tensor feeds an activation split into element-wise nodes (``x * Sigmoid(x)``: SiLU; GELU's
    ``Erf`` or ``Tanh`` form; ``x * Clip(x + 3, 0, 6) / 6``: hard-swish). A tensor read by anything else
    as well keeps its values (no activation in its write-back)."""
    t = tensor
    for _ in range(8):
        users = r.consumers.get(t, [])
        if not users:
            return ""
        split = [u for u in users if r.node_name(u) in r.activation or u.op_type in ("Sigmoid", "HardSigmoid")]
        if len(users) > 1:
            if len(split) != len(users):
                return ""
            ops: set[str] = set()
            stack, seen = list(users), set()
            while stack:  # the split activation's nodes (marked, and the gates they multiply by)
                u = stack.pop()
                if r.node_name(u) in seen:
                    continue
                seen.add(r.node_name(u))
                ops.add(u.op_type)
                for o in u.output:
                    stack.extend(v for v in r.consumers.get(o, []) if r.node_name(v) in r.activation)
            if "Erf" in ops or "Tanh" in ops:
                return "gelu"
            if ops & {"Sigmoid", "QLinearSigmoid"}:
                return "silu"
            if ops & {"HardSigmoid", "Clip", "Relu"}:
                return "hard_swish"
            return ""
        u = users[0]
        if u.op_type in _TABLE_OPS and u.domain in ("", "ai.onnx", "com.microsoft"):
            return _TABLE_OPS[u.op_type]
        bias_add = u.op_type == "Add" and any(r.is_const(i) for i in u.input)
        if (u.op_type not in _THROUGH and not bias_add) or not u.output:
            return ""
        t = u.output[0]
    return ""


def _fmt(r: _Reader, name: str) -> dict[str, Any]:
    fmt = r._int_type(name)
    return {"bits": fmt[0], "signed": fmt[1]} if fmt else {}


def _matmul(r: _Reader, node: onnx.NodeProto, batch: int, op: str) -> Layer:
    ai, bi, ci, bzi, yzi = _MATMUL_INPUTS[op]
    q = op in _QUANT_OPS
    gemm = op in ("Gemm", "com.microsoft.QGemm")
    a, b = node.input[ai], node.input[bi]
    a_s, b_s = r.shape(a, node), r.shape(b, node)
    trans_a = gemm and _attr(node, "transA", 0)
    trans_b = gemm and _attr(node, "transB", 0)
    if len(a_s) == 1:
        a_s = [1, *a_s]
    if len(b_s) == 1:
        b_s = [*b_s, 1]
    m, k = (a_s[-1], a_s[-2]) if trans_a else (a_s[-2], a_s[-1])
    kb, n = (b_s[-1], b_s[-2]) if trans_b else (b_s[-2], b_s[-1])
    if k != kb:
        raise WorkloadError(f"{r.where}: node {r.node_name(node)!r}: {node.op_type} of shapes {a_s} and {b_s} "
                            f"does not match (K {k} != {kb})")
    rows = int(np.prod(a_s[:-1])) if not trans_a else m
    inputs = r.act(a)
    r.operands = [a]
    extra: dict[str, Operand] = {}
    if q:
        out_fmt = _fmt(r, _input(node, yzi)) if yzi >= 0 and _input(node, yzi) else _fmt(r, node.output[0])
        extra["outputs"] = Operand(**out_fmt) if out_fmt else Operand()
    name = r.layer_name(node)
    if r.is_const(b) and len(b_s) == 2:
        bias = bool(_input(node, ci))
        if not bias and op == "MatMul":
            bias = _fuse_bias(r, node, n)
        weights = r.weight_operand(b, Operand(), k_axis=1 if trans_b else 0, zero_point=_input(node, bzi))
        if q:
            weights = replace(weights, **_fmt(r, b))
        tokens = rows // batch if rows % batch == 0 else rows
        return Linear(name, in_features=k, out_features=n, tokens=tokens, bias=bias, inputs=inputs,
                      weights=weights, activation=activation_after(r, node.output[0]), **extra)
    lead = [int(d) for d in np.broadcast_shapes(tuple(a_s[:-2]), tuple(b_s[:-2]))]
    heads = int(np.prod(lead)) if lead else 1
    heads = heads // batch if lead and lead[0] == batch and heads % batch == 0 else heads
    r.operands = [a, b]
    return MatMul(name, m=m, k=k, n=n, heads=heads, inputs=inputs, weights=r.act(b), **extra)


def _fuse_bias(r: _Reader, node: onnx.NodeProto, n: int) -> bool:
    outs = r.consumers.get(node.output[0], [])
    if len(outs) != 1 or outs[0].op_type != "Add":
        return False
    add = outs[0]
    other = add.input[1] if add.input[0] == node.output[0] else add.input[0]
    dims = r.shapes.get(other)
    if r.is_const(other) and dims is not None and all(isinstance(d, int) for d in dims) and \
            int(np.prod([int(d) for d in dims] or [1])) == n:
        r.fused.add(r.node_name(add))
        return True
    return False


def _pool(r: _Reader, node: onnx.NodeProto, op: str | None = None) -> Pool:
    """MaxPool/AveragePool/Global*Pool, and com.microsoft QLinear(Global)AveragePool (``op`` the float op)."""
    x = node.input[0]
    xs = r.shape(x, node)
    kind = op or node.op_type
    r.operands = [x]
    if len(xs) != 4:
        raise WorkloadError(f"{r.where}: node {r.node_name(node)!r}: {node.op_type} on a rank-{len(xs)} tensor is "
                            "not supported (NCHW is)")
    if _attr(node, "channels_last", 0):
        xs = [xs[0], xs[3], xs[1], xs[2]]
    op = _POOL[kind]
    if kind.startswith("Global"):
        return Pool(r.layer_name(node), channels=xs[1], in_h=xs[2], in_w=xs[3], op=op, global_=True,
                    inputs=r.act(x))
    kernel = list(_attr(node, "kernel_shape", [1, 1]))
    strides = list(_attr(node, "strides", [1, 1]))
    dil = list(_attr(node, "dilations", [1, 1]))
    t, le, b, ri = _spatial(node, xs[2:], kernel, strides, dil, r.where)
    if _attr(node, "ceil_mode", 0):  # extra bottom/right padding gives ceil mode's output size
        extra = []
        for size, p0, p1, k, s in ((xs[2], t, b, kernel[0], strides[0]), (xs[3], le, ri, kernel[1], strides[1])):
            span = size + p0 + p1 - k
            e = (s - span % s) % s
            # ONNX drops a last window that would start in the end padding
            if e and ((span + e) // s) * s >= size + p0:
                e = 0
            extra.append(e)
        b, ri = b + extra[0], ri + extra[1]
    return Pool(r.layer_name(node), channels=xs[1], in_h=xs[2], in_w=xs[3], kernel=tuple(kernel),
                stride=tuple(strides), padding=(t, le, b, ri), op=op, inputs=r.act(x))


def _is_matmul_scale(r: _Reader, node: onnx.NodeProto, ins: list[str]) -> bool:
    """A Mul/Div by a scalar constant whose result only feeds MatMuls of two activations: the attention scale
    (SDPA decomposed), folded into the MatMul."""
    if node.op_type not in ("Mul", "Div") or len(ins) != 2:
        return False
    consts = [i for i in ins if r.is_const(i)]
    arr = r.array(consts[0]) if len(consts) == 1 else None
    users = r.consumers.get(node.output[0], [])
    return arr is not None and arr.size == 1 and bool(users) and all(
        u.op_type == "MatMul" and u.domain in ("", "ai.onnx") and not r.is_const(u.input[0])
        and not r.is_const(u.input[1]) for u in users)


def _reduce_pool(r: _Reader, node: onnx.NodeProto) -> Pool | None:
    """ReduceMean / ReduceMax over H and W of an NCHW tensor (the dynamo exporter's global pooling) -> a global
    Pool; any other reduction is non-compute."""
    xs = r.shapes.get(node.input[0])
    axes = _attr(node, "axes", None)
    if axes is None and len(node.input) > 1 and node.input[1]:
        arr = r.array(node.input[1])
        axes = None if arr is None else [int(a) for a in arr.reshape(-1)]
    if xs is None or len(xs) != 4 or axes is None or sorted(int(a) % 4 for a in axes) != [2, 3]:
        return None
    x = r.shape(node.input[0], node)
    r.operands = [node.input[0]]
    return Pool(r.layer_name(node), channels=x[1], in_h=x[2], in_w=x[3],
                op="avg" if node.op_type == "ReduceMean" else "max", global_=True, inputs=r.act(node.input[0]))


def _eltwise(r: _Reader, node: onnx.NodeProto, batch: int, ins: list[str] | None = None,
             kind: str | None = None) -> Eltwise | None:
    ins = [i for i in (node.input if ins is None else ins) if i]
    if all(r.is_const(i) for i in ins):
        return None  # constant folding
    if _is_matmul_scale(r, node, ins):
        return None
    if r.node_name(node) in r.activation:
        return None  # part of an activation split into element-wise nodes (SiLU, GELU, hard-swish)
    if node.op_type in ("Mul", "QLinearMul") and len(ins) == 2:
        for a, b in ((ins[0], ins[1]), (ins[1], ins[0])):
            gate = r.producer.get(r.float_source(b))
            if gate is not None and gate.op_type in ("Sigmoid", "HardSigmoid", "QLinearSigmoid") and \
                    r.float_source(gate.input[0]) == r.float_source(a):
                return None  # x * sigmoid(x): the SiLU / hard-swish activation, non-compute like Relu
    const = [r.is_const(i) for i in ins]
    order, elements, sizes = broadcast_operands([r.shape(i, node) for i in ins], const, batch)
    if elements == 1:
        return None  # scalar arithmetic (scales of dynamic quantization), not a tensor operation
    ins = [ins[i] for i in order]
    r.operands = [i for i in ins if not r.is_const(i)]
    return Eltwise(r.layer_name(node), elements=elements, op=kind or _ELTWISE[node.op_type], inputs_count=len(ins),
                   operand_elements=sizes, inputs=r.act(ins[0]))
