"""Static shapes for an ONNX graph: ONNX shape inference, constant folding of shape arithmetic, and
shape rules for onnxruntime's ``com.microsoft`` quantized operators.

Exporters compute reshape targets at run time (``Shape -> Gather -> Concat -> Reshape``): with the
input shape bound, those subgraphs are constants. :func:`infer_static_shapes` runs ONNX shape
inference, folds every node whose inputs are all known constants (or the ``Shape``/``Size`` of a
tensor whose shape is known) into an initializer, and repeats until nothing changes, so the layer
shapes downstream are integers, not ``unk__`` symbols. ``com.microsoft`` operators (QLinearAdd,
QLinearGlobalAveragePool, QGemm, QLinearConcat, their Q/DQ) are unknown to ONNX shape inference;
their output shapes come from the rules below.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import numpy as np
import onnx
from onnx import helper, numpy_helper, shape_inference

from codesign.errors import WorkloadError

# ops folded when all their inputs are constants (shape arithmetic; never Q/DQ, never compute on weights)
FOLDABLE = frozenset({
    "Shape", "Size", "Gather", "GatherElements", "Concat", "Unsqueeze", "Squeeze", "Slice", "Cast", "Add", "Sub",
    "Mul", "Div", "Floor", "Ceil", "Equal", "Where", "Range", "ConstantOfShape", "Reshape", "Expand", "ReduceProd",
    "ReduceMax", "ReduceMin", "ReduceSum", "Min", "Max", "Neg", "Abs", "Identity", "Sqrt", "Mod", "Not", "Less",
    "Greater", "LessOrEqual", "GreaterOrEqual", "And", "Or", "Tile", "Transpose", "Flatten", "Constant",
})
FOLD_MAX_ELEMENTS = 1 << 16  # constant-fold results up to this size (shape tensors are tiny)
MAX_ROUNDS = 32

Dims = list[int | str]


def dims_of(vi: onnx.ValueInfoProto) -> Dims | None:
    t = vi.type.tensor_type
    if not t.HasField("shape"):
        return None
    return [d.dim_value if d.HasField("dim_value") else (d.dim_param or "?") for d in t.shape.dim]


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


class _Graph:
    """Shapes, element types and constants of a graph's tensors after one inference round."""

    def __init__(self, model: onnx.ModelProto) -> None:
        g = model.graph
        self.shapes: dict[str, Dims | None] = {}
        self.types: dict[str, int] = {}
        for vi in [*g.input, *g.value_info, *g.output]:
            self.shapes[vi.name] = dims_of(vi)
            self.types[vi.name] = vi.type.tensor_type.elem_type
        self.consts: dict[str, np.ndarray] = {}
        for t in g.initializer:
            self.shapes[t.name] = list(t.dims)
            self.types[t.name] = t.data_type
            if int(np.prod(t.dims)) <= FOLD_MAX_ELEMENTS:
                self.consts[t.name] = numpy_helper.to_array(t)
        for node in g.node:
            if node.op_type == "Constant" and node.domain in ("", "ai.onnx") and node.attribute:
                a = node.attribute[0]
                try:
                    arr = numpy_helper.to_array(a.t) if a.name == "value" else np.asarray(
                        helper.get_attribute_value(a), dtype=np.float32 if "float" in a.name else np.int64)
                except Exception:
                    continue
                if a.name in ("value", "value_int", "value_ints", "value_float", "value_floats"):
                    self.consts[node.output[0]] = arr
                    self.shapes[node.output[0]] = list(arr.shape)

    def static(self, name: str) -> list[int] | None:
        dims = self.shapes.get(name)
        if dims is None or any(not isinstance(d, int) for d in dims):
            return None
        return [int(d) for d in dims]


def _opset(model: onnx.ModelProto) -> int:
    return next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 21)


def _run_node(node: onnx.NodeProto, inputs: list[np.ndarray], model: onnx.ModelProto) -> list[np.ndarray] | None:
    from onnx.reference import ReferenceEvaluator

    names = [i for i in node.input]
    graph_inputs = [helper.make_tensor_value_info(n, helper.np_dtype_to_tensor_dtype(a.dtype), a.shape)
                    for n, a in zip(names, inputs, strict=False) if n]
    outs = [helper.make_tensor_value_info(o, onnx.TensorProto.UNDEFINED, None) for o in node.output if o]
    g = helper.make_graph([node], "fold", graph_inputs, outs)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", _opset(model))])
    feeds = {n: a for n, a in zip(names, inputs, strict=False) if n}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = ReferenceEvaluator(m).run(None, feeds)
    return [np.asarray(r) for r in result]


def _fold_round(model: onnx.ModelProto, info: _Graph) -> int:
    """Replace foldable nodes with initializers; the number folded."""
    g = model.graph
    keep: list[onnx.NodeProto] = []
    new_inits: list[onnx.TensorProto] = []
    folded = 0
    for node in g.node:
        arrays: list[np.ndarray] | None = None
        if node.domain in ("", "ai.onnx") and node.op_type in FOLDABLE and node.op_type != "Constant":
            if node.op_type in ("Shape", "Size"):
                dims = info.static(node.input[0])
                if dims is not None:
                    if node.op_type == "Size":
                        arrays = [np.array(int(np.prod(dims)), dtype=np.int64)]
                    else:
                        start = _int_attr(node, "start", 0)
                        end = _int_attr(node, "end", len(dims))
                        arrays = [np.array(dims[slice(start, end)], dtype=np.int64)]
            elif all((not i) or i in info.consts for i in node.input):
                try:
                    arrays = _run_node(node, [info.consts[i] for i in node.input if i], model)
                except Exception:
                    arrays = None
                if arrays is not None and any(a.size > FOLD_MAX_ELEMENTS or a.dtype == object for a in arrays):
                    arrays = None
        if arrays is None:
            keep.append(node)
            continue
        folded += 1
        for name, arr in zip(node.output, arrays, strict=False):
            if name:
                info.consts[name] = arr
                info.shapes[name] = list(arr.shape)
                new_inits.append(numpy_helper.from_array(arr, name))
    if folded:
        del g.node[:]
        g.node.extend(keep)
        g.initializer.extend(new_inits)
        produced = {t.name for t in new_inits}
        # a folded tensor that is a graph output stays one; its value_info goes (it is an initializer now)
        vis = [vi for vi in g.value_info if vi.name not in produced]
        del g.value_info[:]
        g.value_info.extend(vis)
    return folded


def _int_attr(node: onnx.NodeProto, name: str, default: int) -> int:
    for a in node.attribute:
        if a.name == name:
            return int(helper.get_attribute_value(a))
    return default


# -- com.microsoft shape rules -------------------------------------------------------------------------

def _same(i: int = 0, type_from: int | None = None) -> Callable[[onnx.NodeProto, _Graph], tuple[int, Dims] | None]:
    def rule(node: onnx.NodeProto, info: _Graph) -> tuple[int, Dims] | None:
        dims = info.shapes.get(node.input[i])
        if dims is None:
            return None
        src = node.input[type_from] if type_from is not None and len(node.input) > type_from else node.input[i]
        return info.types.get(src, onnx.TensorProto.UINT8), list(dims)
    return rule


def _broadcast(a: int, b: int, type_from: int) -> Callable[[onnx.NodeProto, _Graph], tuple[int, Dims] | None]:
    def rule(node: onnx.NodeProto, info: _Graph) -> tuple[int, Dims] | None:
        sa, sb = info.static(node.input[a]), info.static(node.input[b])
        if sa is None or sb is None:
            return None
        try:
            out = [int(d) for d in np.broadcast_shapes(tuple(sa), tuple(sb))]
        except ValueError:
            return None
        return info.types.get(node.input[type_from], onnx.TensorProto.UINT8), list(out)
    return rule


def _global_pool(node: onnx.NodeProto, info: _Graph) -> tuple[int, Dims] | None:
    s = info.static(node.input[0])
    if s is None:
        return None
    if _int_attr(node, "channels_last", 0):
        out: Dims = [s[0], *([1] * (len(s) - 2)), s[-1]]
    else:
        out = [s[0], s[1], *([1] * (len(s) - 2))]
    return info.types.get(node.input[4], onnx.TensorProto.UINT8), out


def _qgemm(node: onnx.NodeProto, info: _Graph) -> tuple[int, Dims] | None:
    a, b = info.static(node.input[0]), info.static(node.input[3])
    if a is None or b is None:
        return None
    m = a[1] if _int_attr(node, "transA", 0) else a[0]
    n = b[0] if _int_attr(node, "transB", 0) else b[1]
    out_type = info.types.get(node.input[8], onnx.TensorProto.UINT8) if len(node.input) > 8 and node.input[8] \
        else onnx.TensorProto.FLOAT
    return out_type, [m, n]


def _qconcat(node: onnx.NodeProto, info: _Graph) -> tuple[int, Dims] | None:
    parts: list[list[int]] = []
    for i in range(2, len(node.input), 3):
        part = info.static(node.input[i])
        if part is None:
            return None
        parts.append(part)
    if not parts:
        return None
    axis = _int_attr(node, "axis", 0) % len(parts[0])
    first: Dims = list(parts[0])
    first[axis] = sum(p[axis] for p in parts)
    return info.types.get(node.input[1], onnx.TensorProto.UINT8), first


def _qpool(node: onnx.NodeProto, info: _Graph) -> tuple[int, Dims] | None:
    s = info.static(node.input[0])
    if s is None or len(s) != 4 or _int_attr(node, "channels_last", 0):
        return None
    k = [int(v) for v in _attr_list(node, "kernel_shape", [1, 1])]
    st = [int(v) for v in _attr_list(node, "strides", [1, 1])]
    p = [int(v) for v in _attr_list(node, "pads", [0, 0, 0, 0])]
    ceil = _int_attr(node, "ceil_mode", 0)
    out = [s[0], s[1]]
    for i in range(2):
        span = s[2 + i] + p[i] + p[i + 2] - k[i]
        out.append((-(-span // st[i]) if ceil else span // st[i]) + 1)
    return info.types.get(node.input[4], onnx.TensorProto.UINT8), list(out)


def _attr_list(node: onnx.NodeProto, name: str, default: list[int]) -> list[int]:
    for a in node.attribute:
        if a.name == name:
            return list(helper.get_attribute_value(a))
    return default


def _dequantize(node: onnx.NodeProto, info: _Graph) -> tuple[int, Dims] | None:
    dims = info.shapes.get(node.input[0])
    return (info.types.get(node.input[1], onnx.TensorProto.FLOAT), list(dims)) if dims is not None else None


def _quantize(node: onnx.NodeProto, info: _Graph) -> tuple[int, Dims] | None:
    dims = info.shapes.get(node.input[0])
    if dims is None:
        return None
    zp = node.input[2] if len(node.input) > 2 and node.input[2] else ""
    return info.types.get(zp, onnx.TensorProto.UINT8), list(dims)


MS_RULES: dict[str, Callable[[onnx.NodeProto, _Graph], tuple[int, Dims] | None]] = {
    "QLinearAdd": _broadcast(0, 3, 7),
    "QLinearMul": _broadcast(0, 3, 7),
    "QLinearGlobalAveragePool": _global_pool,
    "QLinearAveragePool": _qpool,
    "QGemm": _qgemm,
    "QLinearConcat": _qconcat,
    "QLinearSigmoid": _same(0, 4),
    "QLinearLeakyRelu": _same(0, 4),
    "QLinearSoftmax": _same(0, 4),
    "QuantizeLinear": _quantize,
    "DequantizeLinear": _dequantize,
}


def _contrib_round(model: onnx.ModelProto, info: _Graph) -> int:
    """value_info for com.microsoft node outputs (the rules above) and for the standard nodes downstream of
    them (ONNX's per-node inference), in one pass in graph order; the number of outputs added."""
    g = model.graph
    opset = _opset(model)
    added: dict[str, onnx.ValueInfoProto] = {}
    for node in g.node:
        out = node.output[0] if node.output else ""
        if not out or info.static(out) is not None:
            continue
        got: tuple[int, Dims] | None = None
        if node.domain == "com.microsoft" and node.op_type in MS_RULES:
            got = MS_RULES[node.op_type](node, info)
        elif node.domain in ("", "ai.onnx") and added and all(
                (not i) or info.static(i) is not None for i in node.input):
            got = _standard(node, info, opset)
        if got is None:
            continue
        elem, dims = got
        info.shapes[out], info.types[out] = dims, elem
        added[out] = helper.make_tensor_value_info(out, elem, dims)
    if added:
        keep = [vi for vi in g.value_info if vi.name not in added]
        del g.value_info[:]
        g.value_info.extend([*keep, *added.values()])
    return len(added)


def _standard(node: onnx.NodeProto, info: _Graph, opset: int) -> tuple[int, Dims] | None:
    """Output type and shape of one standard-domain node from its inputs' (ONNX's inference for that op)."""
    try:
        schema = onnx.defs.get_schema(node.op_type, opset, "")
        types = {i: helper.make_tensor_type_proto(info.types.get(i, onnx.TensorProto.FLOAT), info.static(i))
                 for i in node.input if i}
        data = {i: numpy_helper.from_array(info.consts[i], i) for i in node.input if i in info.consts}
        outs = shape_inference.infer_node_outputs(schema, node, types, data,
                                                  opset_imports=[helper.make_opsetid("", opset)])
    except Exception:
        return None
    t = outs.get(node.output[0])
    if t is None or not t.tensor_type.HasField("shape"):
        return None
    dims = [d.dim_value if d.HasField("dim_value") else None for d in t.tensor_type.shape.dim]
    if any(d is None for d in dims):
        return None
    return t.tensor_type.elem_type, [int(d) for d in dims if d is not None]


def infer_static_shapes(model: onnx.ModelProto, where: str) -> onnx.ModelProto:
    """``model`` with shapes inferred and shape arithmetic folded to constants (see the module docstring)."""
    for _ in range(MAX_ROUNDS):
        try:
            model = shape_inference.infer_shapes(model, check_type=False, strict_mode=False, data_prop=True)
        except Exception as e:
            raise WorkloadError(f"{where}: shape inference failed ({_first_line(e)})") from e
        info = _Graph(model)
        changed = _contrib_round(model, info) + _fold_round(model, info)
        if not changed:
            break
    return model
