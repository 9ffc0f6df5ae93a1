"""Import a PyTorch module as a :class:`~codesign.workloads.layers.Network` (torch.fx + shape propagation).

The module is traced with ``torch.fx.symbolic_trace`` and run once on ``example_input`` to get
real shapes. Leaf modules: Conv1d/Conv2d -> Conv2d (a BatchNorm right after is folded into its
bias), Linear -> Linear, MaxPool2d / AvgPool2d / AdaptiveAvg/MaxPool2d -> Pool; functions and
methods: ``+``/``add``, ``*``/``mul`` (and ``-``, ``/``) on tensors -> Eltwise, ``@``/``matmul``/``bmm``
-> MatMul, ``F.linear`` -> Linear. Activations, normalization, dropout and reshaping are
non-compute and skipped; any other leaf module is an error naming its type and node.
The batch is the leading dimension of ``example_input``; layers describe one sample.
"""

from __future__ import annotations

import math
import operator
from typing import Any

from codesign.errors import WorkloadError
from codesign.workloads.layers import Conv2d, Eltwise, Layer, Linear, MatMul, Network, Pool

try:
    import torch
    from torch import fx, nn
    from torch.fx.passes.shape_prop import ShapeProp
except ModuleNotFoundError as e:  # pragma: no cover - optional extra
    raise WorkloadError(f"PyTorch import needs torch (pip install 'codesign[torch]'; {e.name} missing)") from e

_PASS_MODULES = (
    nn.ReLU, nn.ReLU6, nn.GELU, nn.SiLU, nn.Hardswish, nn.Hardsigmoid, nn.Sigmoid, nn.Tanh, nn.LeakyReLU, nn.PReLU,
    nn.ELU, nn.Softmax, nn.LogSoftmax, nn.Dropout, nn.Dropout2d, nn.Identity, nn.Flatten, nn.Unflatten,
    nn.BatchNorm1d, nn.BatchNorm2d, nn.LayerNorm, nn.GroupNorm, nn.InstanceNorm2d, nn.ZeroPad2d,
    nn.ConstantPad2d, nn.Upsample, nn.PixelShuffle, nn.ChannelShuffle, nn.Mish,
)
_ADD = {operator.add, operator.iadd, operator.sub, operator.isub, torch.add, torch.sub}
_MUL = {operator.mul, operator.imul, operator.truediv, torch.mul, torch.div}
_MATMUL = {operator.matmul, torch.matmul, torch.bmm}
_METHODS = {"add": "add", "add_": "add", "sub": "add", "mul": "mul", "mul_": "mul", "div": "mul"}


def _shape(node: Any) -> list[int] | None:
    meta = node.meta.get("tensor_meta") if hasattr(node, "meta") else None
    if meta is None or not hasattr(meta, "shape"):
        return None
    return [int(d) for d in meta.shape]


def _pair(v: Any) -> tuple[int, int]:
    return (int(v[0]), int(v[1])) if isinstance(v, (tuple, list)) else (int(v), int(v))


def from_torch(module: nn.Module, example_input: torch.Tensor | tuple[torch.Tensor, ...], name: str | None = None,
               ) -> Network:
    """Trace ``module`` and return its compute layers with the shapes of ``example_input``."""
    inputs = example_input if isinstance(example_input, tuple) else (example_input,)
    label = name or type(module).__name__
    try:
        gm = fx.symbolic_trace(module)
    except Exception as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise WorkloadError(f"{label}: torch.fx cannot trace the module ({first})") from None
    was_training = module.training
    module.eval()
    try:
        with torch.no_grad():
            ShapeProp(gm).propagate(*inputs)
    except Exception as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise WorkloadError(f"{label}: running the example input failed ({first})") from None
    finally:
        module.train(was_training)
    batch = int(inputs[0].shape[0]) if inputs[0].dim() >= 2 else 1
    mods = dict(gm.named_modules())
    layers: list[Layer] = []
    for node in gm.graph.nodes:
        layer = _convert(node, mods, batch, label)
        if layer is not None:
            layers.append(layer)
    if not layers:
        raise WorkloadError(f"{label}: no compute layers (Conv, Linear, matmul, pooling, elementwise) found")
    shape = tuple(int(d) for d in inputs[0].shape)
    return Network(label, tuple(layers), batch=batch, input_shape=shape[1:] if len(shape) >= 2 else shape,
                   source=f"torch {type(module).__name__}")


def _per_sample(n: int, batch: int) -> int:
    return n // batch if n % batch == 0 else n


def _convert(node: Any, mods: dict[str, nn.Module], batch: int, label: str) -> Layer | None:
    if node.op == "call_module":
        return _module(node, mods[node.target], batch, label, mods)
    if node.op == "call_function":
        kind = "add" if node.target in _ADD else "mul" if node.target in _MUL else None
        if kind is not None:
            return _eltwise(node, kind, batch)
        if node.target in _MATMUL:
            return _matmul(node, batch)
        if node.target is torch.nn.functional.linear:
            x, w = node.args[0], node.args[1]
            xs, ws = _shape(x), _shape(w)
            bias = (len(node.args) > 2 and node.args[2] is not None) or node.kwargs.get("bias") is not None
            if xs is None or ws is None:
                return None
            return Linear(node.name, in_features=ws[1], out_features=ws[0],
                          tokens=_per_sample(math.prod(xs[:-1]), batch), bias=bool(bias))
        return None
    if node.op == "call_method":
        if node.target in _METHODS:
            return _eltwise(node, _METHODS[node.target], batch)
        if node.target == "matmul":
            return _matmul(node, batch)
    return None


def _eltwise(node: Any, kind: str, batch: int) -> Eltwise | None:
    tensors = [a for a in node.args if hasattr(a, "op") and _shape(a) is not None]
    out = _shape(node)
    if not tensors or out is None:
        return None
    elements = math.prod(out) if out else 1
    if out and out[0] == batch:
        elements = _per_sample(elements, batch)
    return Eltwise(node.name, elements=elements, op=kind, inputs_count=max(1, len(tensors)))


def _matmul(node: Any, batch: int) -> MatMul | None:
    a, b = _shape(node.args[0]), _shape(node.args[1])
    if a is None or b is None:
        return None
    a, b = ([1, *a] if len(a) == 1 else a), ([*b, 1] if len(b) == 1 else b)
    lead = list(torch.broadcast_shapes(torch.Size(a[:-2]), torch.Size(b[:-2])))
    heads = math.prod(lead) if lead else 1
    if lead and lead[0] == batch:
        heads = _per_sample(heads, batch)
    return MatMul(node.name, m=a[-2], k=a[-1], n=b[-1], heads=heads)


def _module(node: Any, mod: nn.Module, batch: int, label: str, mods: dict[str, nn.Module]) -> Layer | None:
    xs = _shape(node.args[0]) if node.args else None
    name = str(node.target)
    if isinstance(mod, (nn.Conv1d, nn.Conv2d)):
        if xs is None:
            return None
        one_d = isinstance(mod, nn.Conv1d)
        k = (1, mod.kernel_size[0]) if one_d else _pair(mod.kernel_size)
        s = (1, mod.stride[0]) if one_d else _pair(mod.stride)
        d = (1, mod.dilation[0]) if one_d else _pair(mod.dilation)
        if isinstance(mod.padding, str):
            if mod.padding == "valid":
                pad: tuple[int, int, int, int] = (0, 0, 0, 0)
            else:  # 'same' (stride 1): torch pads the extra row/column at the end
                th, tw = d[0] * (k[0] - 1), d[1] * (k[1] - 1)
                pad = (th // 2, tw // 2, th - th // 2, tw - tw // 2)
        else:
            ph, pw = (0, mod.padding[0]) if one_d else _pair(mod.padding)
            pad = (ph, pw, ph, pw)
        in_h, in_w = (1, xs[2]) if one_d else (xs[2], xs[3])
        users = list(node.users)
        bn_next = len(users) == 1 and users[0].op == "call_module" and isinstance(
            mods.get(users[0].target), (nn.BatchNorm1d, nn.BatchNorm2d))  # folded into the bias
        return Conv2d(name, in_channels=mod.in_channels, out_channels=mod.out_channels, in_h=in_h, in_w=in_w,
                      kernel=k, stride=s, padding=pad, dilation=d, groups=mod.groups,
                      bias=mod.bias is not None or bn_next)
    if isinstance(mod, nn.Linear):
        if xs is None:
            return None
        return Linear(name, in_features=mod.in_features, out_features=mod.out_features,
                      tokens=_per_sample(math.prod(xs[:-1]), batch), bias=mod.bias is not None)
    if isinstance(mod, (nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)):
        out = _shape(node)
        if xs is None or out is None:
            return None
        op = "avg" if isinstance(mod, nn.AdaptiveAvgPool2d) else "max"
        if out[-2:] == [1, 1]:
            return Pool(name, channels=xs[1], in_h=xs[2], in_w=xs[3], op=op, global_=True)
        if xs[2] % out[2] or xs[3] % out[3]:
            raise WorkloadError(f"{label}: node {name!r}: adaptive pooling {xs[2]}x{xs[3]} -> {out[2]}x{out[3]} "
                                "is not a fixed window")
        kh, kw = xs[2] // out[2], xs[3] // out[3]
        return Pool(name, channels=xs[1], in_h=xs[2], in_w=xs[3], kernel=(kh, kw), stride=(kh, kw), op=op)
    if isinstance(mod, (nn.MaxPool2d, nn.AvgPool2d)):
        if xs is None:
            return None
        k = _pair(mod.kernel_size)
        s = _pair(mod.stride if mod.stride is not None else mod.kernel_size)
        p = _pair(mod.padding)
        pad = (p[0], p[1], p[0], p[1])
        out = _shape(node)
        if out is not None and mod.ceil_mode:  # extra end padding reproduces ceil mode's output size
            eh = max(0, (out[2] - 1) * s[0] + k[0] - (xs[2] + 2 * p[0]))
            ew = max(0, (out[3] - 1) * s[1] + k[1] - (xs[3] + 2 * p[1]))
            pad = (p[0], p[1], p[0] + eh, p[1] + ew)
        return Pool(name, channels=xs[1], in_h=xs[2], in_w=xs[3], kernel=k, stride=s, padding=pad,
                    op="max" if isinstance(mod, nn.MaxPool2d) else "avg")
    if isinstance(mod, _PASS_MODULES):
        return None
    raise WorkloadError(f"{label}: unsupported module {type(mod).__name__} at node {name!r}")
