"""Import a PyTorch module as a :class:`~codesign.workloads.layers.Network` (``torch.export``).

The module is exported with ``torch.export.export`` on an example input (a tensor, or a shape such
as ``(1, 3, 224, 224)`` for zeros), so shapes are real and functional calls are seen like modules:
``aten.conv1d/conv2d`` (``nn.Conv*`` and ``F.conv*``; a batch norm right after is folded into the
bias) -> Conv2d; ``aten.linear`` (``nn.Linear``, ``F.linear``, the projections inside
``nn.MultiheadAttention``) and a matmul by a parameter -> Linear; ``matmul``/``@``/``bmm`` of two
activations -> MatMul; ``F.scaled_dot_product_attention`` (timm's fused attention,
``nn.TransformerEncoderLayer``) -> two MatMuls, scores ``Q K^T`` and context ``P V``; max/avg/adaptive
pooling and ``mean`` over H, W -> Pool; ``+ - * /`` on tensors -> Eltwise. Weight density (and an
exact 2:4 / 1:4 pattern) is measured from the weights the graph computes; ``torch.nn.utils.prune``'s
``weight_orig * weight_mask`` is exported as the pruned weight, so pruned weights are read as sparse. Other ops are
non-compute and skipped; transposed convolutions and ``einsum`` are an error naming the node.
The batch is the leading dimension of the example input; layers describe one sample.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator, Sequence
from dataclasses import replace
from typing import Any

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
from codesign.workloads.operand import Operand

try:
    import numpy as np
    import torch
    from torch import nn
except ModuleNotFoundError as e:  # pragma: no cover - optional extra
    raise WorkloadError(f"PyTorch import needs torch (pip install 'codesign[torch]'; {e.name} missing)") from e

aten = torch.ops.aten
_CONV = {aten.conv1d.default, aten.conv2d.default, aten.conv1d.padding, aten.conv2d.padding}
_LINEAR = {aten.linear.default}
_MATMUL = {aten.matmul.default, aten.bmm.default, aten.mm.default}
_SDPA = {aten.scaled_dot_product_attention.default}
_ADD = {aten.add.Tensor, aten.add_.Tensor, aten.sub.Tensor, aten.sub_.Tensor, aten.rsub.Scalar}
_MUL = {aten.mul.Tensor, aten.mul_.Tensor, aten.div.Tensor, aten.div_.Tensor}
_BN = {aten.batch_norm.default, aten._native_batch_norm_legit_no_training.default}
# aten ops (and their in-place forms) of the activations a table makes (workloads.layers.TABLE_ACTIVATIONS)
_TABLE_FUNCTIONS = {"hardswish": "hard_swish", "hardsigmoid": "hard_sigmoid", "silu": "silu", "sigmoid": "sigmoid",
                    "tanh": "tanh", "gelu": "gelu"}
_REFUSED = {
    aten.conv_transpose1d.default: "transposed convolution", aten.conv_transpose2d.input: "transposed convolution",
    aten.convolution.default: "generic convolution", aten.einsum.default: "einsum",
}


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0][:300] if text else type(e).__name__


def _example(example_input: Any, label: str) -> tuple[torch.Tensor, ...]:
    if isinstance(example_input, torch.Tensor):
        return (example_input,)
    if isinstance(example_input, (tuple, list)) and example_input and all(
            isinstance(t, torch.Tensor) for t in example_input):
        return tuple(example_input)
    if isinstance(example_input, (tuple, list)) and example_input and all(
            isinstance(d, int) and not isinstance(d, bool) and d >= 1 for d in example_input):
        return (torch.zeros(*example_input),)
    raise WorkloadError(f"{label}: input_shape must be a tensor or positive integers like (1, 3, 224, 224), "
                        f"not {example_input!r}")


def from_torch(module: nn.Module, example_input: torch.Tensor | tuple[Any, ...] | Sequence[int],
               name: str | None = None) -> Network:
    """Export ``module`` on ``example_input`` (tensors, or an input shape) and return its compute layers."""
    label = name or type(module).__name__
    if not isinstance(module, nn.Module):
        raise WorkloadError(f"module must be a torch.nn.Module, not {type(module).__name__}")
    inputs = _example(example_input, label)
    was_training = module.training
    fastpath = torch.backends.mha.get_fastpath_enabled()
    module.eval()
    torch.backends.mha.set_fastpath_enabled(False)  # fused encoder kernels hide the projections and attention
    try:
        with _pruning_as_buffers(module):
            ep = torch.export.export(module, inputs, strict=False)
    except Exception as e:
        raise WorkloadError(f"{label}: torch.export cannot export the module ({_first_line(e)})") from None
    finally:
        torch.backends.mha.set_fastpath_enabled(fastpath)
        module.train(was_training)
    batch = int(inputs[0].shape[0]) if inputs[0].dim() >= 2 else 1
    reader = _Reader(ep, batch, label)
    layers: list[Layer] = []
    # the layer whose output each graph node is (through data-moving and activation ops): the graph's edges
    origin: dict[str, str | None] = {}

    def origin_of(a: Any) -> str | None:
        return None if reader.is_const(a) else origin.get(a.name, MIXED)

    for node in ep.graph.nodes:
        if node.op == "placeholder":
            origin[node.name] = None if reader.is_const(node) else NETWORK_INPUT
        if node.op != "call_function":
            continue
        new = reader.convert(node)
        for layer, operands in zip(new, reader.operands, strict=True):
            # an operand is a graph node, or the index of a layer made from this node before it (SDPA's scores)
            srcs = [new[a].name if isinstance(a, int) else origin_of(a) for a in operands]
            layers.append(replace(layer, sources=layer_sources(srcs)))
        if new:
            origin[node.name] = new[-1].name
        else:
            leaves = [a for a in _flat(node.args) + _flat(list(node.kwargs.values())) if hasattr(a, "op")]
            origin[node.name] = combine_origins([origin_of(a) for a in leaves])
    if not layers:
        raise WorkloadError(f"{label}: no compute layers (Conv, Linear, matmul, pooling, elementwise) found")
    shape = tuple(int(d) for d in inputs[0].shape)
    return Network(label, tuple(layers), batch=batch, input_shape=shape[1:] if len(shape) >= 2 else shape,
                   source=f"torch {type(module).__name__}")


@contextlib.contextmanager
def _pruning_as_buffers(module: nn.Module) -> Iterator[None]:
    """For the export: ``torch.nn.utils.prune``'s reparametrization (``weight = weight_orig * weight_mask``, set by
    a forward pre-hook, which torch.export refuses) becomes a buffer holding the pruned weight; restored after."""
    from torch.nn.utils import prune

    undo = []
    for m in module.modules():
        for key, hook in list(m._forward_pre_hooks.items()):
            methods = hook._pruning_methods if isinstance(hook, prune.PruningContainer) else [hook]
            if not any(isinstance(h, prune.BasePruningMethod) for h in methods):
                continue
            name = getattr(hook, "_tensor_name")  # noqa: B009 - private attribute of prune's hooks
            value = getattr(m, name)
            del m._forward_pre_hooks[key]
            delattr(m, name)
            m.register_buffer(name, value.detach().clone(), persistent=False)
            undo.append((m, key, hook, name, value))
    try:
        yield
    finally:
        for m, key, hook, name, value in reversed(undo):
            del m._buffers[name]
            setattr(m, name, value)
            m._forward_pre_hooks[key] = hook


def _shape(node: Any) -> list[int] | None:
    val = node.meta.get("val") if hasattr(node, "meta") else None
    if val is None or not hasattr(val, "shape"):
        return None
    try:
        return [int(d) for d in val.shape]
    except (TypeError, ValueError):  # symbolic
        return None


def _pair(v: Any, default: int) -> tuple[int, int]:
    if v is None:
        return (default, default)
    if isinstance(v, (tuple, list)):
        return (int(v[0]), int(v[-1])) if len(v) else (default, default)
    return (int(v), int(v))


def _arg(node: Any, i: int, key: str, default: Any = None) -> Any:
    if len(node.args) > i:
        return node.args[i]
    return node.kwargs.get(key, default)


class _Reader:
    def __init__(self, ep: Any, batch: int, label: str) -> None:
        self.batch = batch
        self.label = label
        sig = ep.graph_signature
        state = ep.state_dict
        consts = getattr(ep, "constants", {})
        self.tensors: dict[str, torch.Tensor] = {}
        for ph, fqn in {**sig.inputs_to_parameters, **sig.inputs_to_buffers}.items():
            if fqn in state:
                self.tensors[ph] = state[fqn]
            elif fqn in consts:
                self.tensors[ph] = consts[fqn]
        for ph, fqn in getattr(sig, "inputs_to_lifted_tensor_constants", {}).items():
            if fqn in consts:
                self.tensors[ph] = consts[fqn]
        self.names: set[str] = set()
        self.values: dict[str, torch.Tensor | None] = {}
        # nodes computed from parameters, buffers and constants only (one pass in graph order)
        self.const: set[str] = set(self.tensors)
        for node in ep.graph.nodes:
            if node.op == "call_function":
                leaves = [a for a in _flat(node.args) + _flat(list(node.kwargs.values())) if hasattr(a, "op")]
                if leaves and all(a.name in self.const for a in leaves):
                    self.const.add(node.name)

    # -- naming ---------------------------------------------------------------------------------------
    def name(self, node: Any, leaf: tuple[type, ...] = ()) -> str:
        """The module path when the op is the whole of a leaf module (``layer1.0.conv1``), else the node name."""
        stack = node.meta.get("nn_module_stack")
        base = node.name
        if stack and leaf:
            path, kind = list(stack.values())[-1]
            cls = kind if isinstance(kind, type) else None
            if path and ((cls is not None and issubclass(cls, leaf)) or
                         (isinstance(kind, str) and kind.rsplit(".", 1)[-1] in {c.__name__ for c in leaf})):
                base = path
        return unique_name(base, self.names)

    # -- constants --------------------------------------------------------------------------------------
    def value(self, node: Any) -> torch.Tensor | None:
        """The tensor a node holds when it depends on parameters, buffers and constants only (pruned weights:
        ``weight_orig * weight_mask``); None for activations."""
        if not hasattr(node, "op") or node.name not in self.const:
            return None
        if node.name in self.values:
            return self.values[node.name]
        out: torch.Tensor | None = None
        if node.op == "placeholder":
            out = self.tensors.get(node.name)
        elif node.op == "call_function":
            leaves = [a for a in _flat(node.args) + _flat(list(node.kwargs.values())) if hasattr(a, "op")]
            vals = [self.value(a) for a in leaves]
            if leaves and all(v is not None for v in vals):
                env = {a.name: v for a, v in zip(leaves, vals, strict=True) if v is not None}
                args = _subst(node.args, env)
                kwargs = _subst(dict(node.kwargs), env)
                try:
                    with torch.no_grad():
                        res = node.target(*args, **kwargs)
                    out = res if isinstance(res, torch.Tensor) else None
                except Exception:
                    out = None
        self.values[node.name] = out
        return out

    def is_const(self, node: Any) -> bool:
        return hasattr(node, "name") and node.name in self.const

    def weight_operand(self, node: Any, k_axis: int) -> Operand:
        w = self.value(node)
        if w is None:
            return Operand()
        arr = w.detach().to(torch.float32).cpu().numpy()
        if k_axis == 0 and arr.ndim == 2:  # [K, N] (x @ W): the reduction runs along rows
            arr = np.ascontiguousarray(arr.T)
        return with_density(Operand(), arr, 0, 1)

    # -- conversion -------------------------------------------------------------------------------------
    def convert(self, node: Any) -> list[Layer]:
        """The layers of one node; ``operands`` gets each one's activation operands (graph nodes), in order."""
        self.operands: list[list[Any]] = []
        layers = self._convert(node)
        if len(self.operands) != len(layers):  # one activation input each unless the converter said otherwise
            self.operands = [[node.args[0]] for _ in layers]
        return layers

    def _convert(self, node: Any) -> list[Layer]:
        t = node.target
        if t in _CONV:
            return [self.conv(node)]
        if t in _LINEAR:
            return self.linear(node)
        if t in _MATMUL:
            return self.matmul(node)
        if t in _SDPA:
            return self.sdpa(node)
        if t in _ADD or t in _MUL:
            return self.eltwise(node, "add" if t in _ADD else "mul")
        if t in (aten.max_pool2d.default, aten.max_pool2d_with_indices.default, aten.avg_pool2d.default):
            return [self.pool(node)]
        if t in (aten.adaptive_avg_pool2d.default, aten.adaptive_max_pool2d.default, aten._adaptive_avg_pool2d.default):
            return [self.adaptive_pool(node)]
        if t in (aten.mean.dim, aten.amax.default):
            return self.mean(node)
        if t in _REFUSED:
            stack = node.meta.get("nn_module_stack")
            where = (list(stack.values())[-1][0] if stack else "") or node.name
            raise WorkloadError(f"{self.label}: unsupported op {_REFUSED[t]} ({t}) at node {where!r}")
        return []

    def conv(self, node: Any) -> Conv2d:
        x, w = node.args[0], node.args[1]
        xs, ws = _shape(x), _shape(w)
        if xs is None or ws is None:
            raise WorkloadError(f"{self.label}: node {node.name!r}: convolution with unknown shapes")
        bias = _arg(node, 2, "bias") is not None
        stride, padding = _arg(node, 3, "stride", 1), _arg(node, 4, "padding", 0)
        dilation = _arg(node, 5, "dilation", 1)
        groups = int(_arg(node, 6, "groups", 1))
        one_d = len(xs) == 3
        k = (1, ws[2]) if one_d else (ws[2], ws[3])
        s = (1, _pair(stride, 1)[0]) if one_d else _pair(stride, 1)
        d = (1, _pair(dilation, 1)[0]) if one_d else _pair(dilation, 1)
        if isinstance(padding, str):
            if padding == "valid":
                pad: tuple[int, int, int, int] = (0, 0, 0, 0)
            else:  # 'same' (stride 1): torch pads the extra row/column at the end
                th, tw = d[0] * (k[0] - 1), d[1] * (k[1] - 1)
                pad = (th // 2, tw // 2, th - th // 2, tw - tw // 2)
        else:
            ph, pw = (0, _pair(padding, 0)[0]) if one_d else _pair(padding, 0)
            pad = (ph, pw, ph, pw)
        users = list(node.users)
        if len(users) == 1 and users[0].target in _BN:
            bias = True  # folded into the conv bias
        in_h, in_w = (1, xs[2]) if one_d else (xs[2], xs[3])
        return Conv2d(self.name(node, (nn.Conv1d, nn.Conv2d)), in_channels=xs[1], out_channels=ws[0], in_h=in_h,
                      in_w=in_w, kernel=k, stride=s, padding=pad, dilation=d, groups=groups, bias=bias,
                      weights=self.weight_operand(w, 1), activation=self.activation_after(node))

    def activation_after(self, node: Any) -> str:
        """The table activation of a layer's output (``workloads.layers.TABLE_ACTIVATIONS``; '' for none or
        the ReLU family, which the output's clamp makes): its one user, after a folded batch norm, is
        hardswish, hardsigmoid, silu, sigmoid, tanh or gelu."""
        for _ in range(3):
            users = list(node.users)
            if len(users) != 1:
                return ""
            node = users[0]
            name = getattr(getattr(node.target, "_schema", None), "name", "")
            fn = _TABLE_FUNCTIONS.get(name.split("::")[-1].rstrip("_"))
            if fn:
                return fn
            if node.target not in _BN:
                return ""
        return ""

    def _tokens(self, xs: list[int]) -> int:
        n = math.prod(xs[:-1]) if len(xs) > 1 else 1
        return n // self.batch if n % self.batch == 0 else n

    def linear(self, node: Any) -> list[Layer]:
        x, w = node.args[0], node.args[1]
        xs, ws = _shape(x), _shape(w)
        if xs is None or ws is None:
            return []
        bias = _arg(node, 2, "bias") is not None
        return [Linear(self.name(node, (nn.Linear,)), in_features=ws[1], out_features=ws[0], tokens=self._tokens(xs),
                       bias=bias, weights=self.weight_operand(w, 1), activation=self.activation_after(node))]

    def matmul(self, node: Any) -> list[Layer]:
        a, b = node.args[0], node.args[1]
        sa, sb = _shape(a), _shape(b)
        if sa is None or sb is None:
            return []
        if self.is_const(b) and len(sb) == 2:  # activation @ parameter: a linear layer without bias
            self.operands = [[a]]
            return [Linear(self.name(node), in_features=sb[0], out_features=sb[1], tokens=self._tokens(sa),
                           bias=False, weights=self.weight_operand(b, 0))]
        self.operands = [[a, b]]
        return [self._matmul(self.name(node), sa, sb)]

    def _matmul(self, name: str, sa: list[int], sb: list[int]) -> MatMul:
        sa, sb = ([1, *sa] if len(sa) == 1 else sa), ([*sb, 1] if len(sb) == 1 else sb)
        lead = list(torch.broadcast_shapes(torch.Size(sa[:-2]), torch.Size(sb[:-2])))
        heads = math.prod(lead) if lead else 1
        if lead and lead[0] == self.batch and heads % self.batch == 0:
            heads //= self.batch
        return MatMul(name, m=sa[-2], k=sa[-1], n=sb[-1], heads=heads)

    def sdpa(self, node: Any) -> list[Layer]:
        q, k, v = (_shape(a) for a in node.args[:3])
        if q is None or k is None or v is None:
            return []
        base = self.name(node)
        lead = list(torch.broadcast_shapes(torch.Size(q[:-2]), torch.Size(k[:-2])))
        scores = self._matmul(f"{base}.scores", [*lead, q[-2], q[-1]], [*lead, q[-1], k[-2]])
        context = self._matmul(f"{base}.context", [*lead, q[-2], k[-2]], [*lead, k[-2], v[-1]])
        self.operands = [list(node.args[:2]), [0, node.args[2]]]
        return [scores, context]

    def eltwise(self, node: Any, kind: str) -> list[Layer]:
        tensors = [a for a in node.args if hasattr(a, "op") and _shape(a) is not None]
        out = _shape(node)
        if not tensors or out is None or all(self.is_const(a) for a in tensors):
            return []
        elements = math.prod(out) if out else 1
        if elements == 1:
            return []  # scalar arithmetic
        scalar = len(tensors) == 1 or any(self.is_const(a) and math.prod(_shape(a) or [1]) == 1 for a in tensors)
        if kind == "mul" and scalar and node.users and all(
                u.target in _MATMUL and not any(self.is_const(a) for a in u.args[:2]) for u in node.users):
            return []  # the attention scale (q * scale before q @ k^T), folded into the matmul
        const = [self.is_const(a) for a in tensors]
        order, elements, sizes = broadcast_operands([_shape(a) or [] for a in tensors], const, self.batch)
        ordered = [tensors[i] for i in order]
        self.operands = [[a for a in ordered if not self.is_const(a)]]
        return [Eltwise(self.name(node), elements=elements, op=kind, inputs_count=max(1, len(tensors)),
                        operand_elements=sizes if len(tensors) > 1 else ())]

    def pool(self, node: Any) -> Pool:
        xs = _shape(node.args[0])
        out = _shape(node)
        if xs is None or out is None or len(xs) != 4:
            raise WorkloadError(f"{self.label}: node {node.name!r}: pooling needs an NCHW input, not {xs}")
        k = _pair(_arg(node, 1, "kernel_size"), 1)
        stride = _arg(node, 2, "stride")
        s = _pair(stride, 1) if stride not in (None, []) else k
        p = _pair(_arg(node, 3, "padding", 0), 0)
        pad = (p[0], p[1], p[0], p[1])
        # ceil mode: extra end padding reproduces the output size
        eh = max(0, (out[2] - 1) * s[0] + k[0] - (xs[2] + 2 * p[0]))
        ew = max(0, (out[3] - 1) * s[1] + k[1] - (xs[3] + 2 * p[1]))
        pad = (p[0], p[1], p[0] + eh, p[1] + ew)
        op = "avg" if node.target is aten.avg_pool2d.default else "max"
        return Pool(self.name(node, (nn.MaxPool2d, nn.AvgPool2d)), channels=xs[1], in_h=xs[2], in_w=xs[3], kernel=k,
                    stride=s, padding=pad, op=op)

    def adaptive_pool(self, node: Any) -> Pool:
        xs, out = _shape(node.args[0]), _shape(node)
        if xs is None or out is None or len(xs) != 4:
            raise WorkloadError(f"{self.label}: node {node.name!r}: pooling needs an NCHW input, not {xs}")
        op = "max" if node.target is aten.adaptive_max_pool2d.default else "avg"
        name = self.name(node, (nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d))
        if out[-2:] == [1, 1]:
            return Pool(name, channels=xs[1], in_h=xs[2], in_w=xs[3], op=op, global_=True)
        if xs[2] % out[2] or xs[3] % out[3]:
            raise WorkloadError(f"{self.label}: node {name!r}: adaptive pooling {xs[2]}x{xs[3]} -> {out[2]}x{out[3]} "
                                "is not a fixed window")
        kh, kw = xs[2] // out[2], xs[3] // out[3]
        return Pool(name, channels=xs[1], in_h=xs[2], in_w=xs[3], kernel=(kh, kw), stride=(kh, kw), op=op)

    def mean(self, node: Any) -> list[Layer]:
        """``x.mean((2, 3))`` / ``amax`` over H and W of an NCHW tensor: a global pool (timm's pooling)."""
        xs = _shape(node.args[0])
        dims = _arg(node, 1, "dim")
        if xs is None or len(xs) != 4 or dims is None:
            return []
        axes = sorted(int(d) % 4 for d in (dims if isinstance(dims, (list, tuple)) else [dims]))
        if axes != [2, 3]:
            return []
        op = "avg" if node.target is aten.mean.dim else "max"
        return [Pool(self.name(node), channels=xs[1], in_h=xs[2], in_w=xs[3], op=op, global_=True)]


def _flat(args: Any) -> list[Any]:
    out: list[Any] = []
    for a in args:
        if isinstance(a, (list, tuple)):
            out.extend(_flat(a))
        elif isinstance(a, dict):
            out.extend(_flat(list(a.values())))
        else:
            out.append(a)
    return out


def _subst(args: Any, env: dict[str, torch.Tensor]) -> Any:
    if isinstance(args, (list, tuple)):
        return type(args)(_subst(a, env) for a in args)
    if isinstance(args, dict):
        return {k: _subst(v, env) for k, v in args.items()}
    if hasattr(args, "op") and hasattr(args, "name"):
        return env[args.name]
    return args
