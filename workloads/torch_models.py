"""PyTorch models for checking the importers: build torchvision/timm models, count their MACs from the module.

:func:`module_macs` is the reference the importers are held to. Convention (the one of
:mod:`codesign.workloads.layers`): multiply-accumulates of convolutions, linear layers and
activation-by-activation matrix products (attention scores and context, ``@``/``matmul``/``bmm``,
``F.scaled_dot_product_attention``); bias adds, normalization, pooling and element-wise ops count
none. Convolutions, linear layers and ``nn.MultiheadAttention`` are counted by forward hooks from
their output shapes; functional calls outside those modules (``F.conv2d``, ``F.linear``, matmuls,
SDPA) by a ``TorchFunctionMode`` that sees every call the forward pass makes.

torchvision wheels built for CUDA do not load their C extension against a CPU build of torch
(``operator torchvision::nms does not exist``); :func:`import_torchvision` then declares the two
operator schemas torchvision's Python code registers fake kernels for, so its models (and timm,
which imports torchvision) load. Detection ops (nms) stay unavailable.
"""

from __future__ import annotations

import importlib
import math
import sys
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from codesign.errors import WorkloadError

try:
    import torch
    from torch import nn
    from torch.overrides import TorchFunctionMode
except ModuleNotFoundError as e:  # pragma: no cover - optional extra
    raise WorkloadError(f"PyTorch models need torch (pip install 'codesign[torch]'; {e.name} missing)") from e

_F = torch.nn.functional
_SCHEMA_LIB: list[Any] = []  # keeps the torch.library registration alive


def import_torchvision() -> ModuleType:
    """``torchvision``, imported even when its C extension does not match the installed torch."""
    try:
        import torchvision
    except RuntimeError as e:
        if "torchvision::nms" not in str(e):
            raise
        for name in [m for m in sys.modules if m == "torchvision" or m.startswith("torchvision.")]:
            del sys.modules[name]
        lib = torch.library.Library("torchvision", "DEF")
        lib.define("nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
        lib.define("qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
        _SCHEMA_LIB.append(lib)
        torchvision = importlib.import_module("torchvision")
    return torchvision


def build_model(spec: str) -> nn.Module:
    """A randomly initialized model in eval mode: ``timm:NAME`` or ``torchvision:NAME`` (``weights=None``)."""
    source, sep, name = spec.partition(":")
    if not sep or source not in ("timm", "torchvision") or not name:
        raise WorkloadError(f"model must be timm:NAME or torchvision:NAME, not {spec!r}")
    import_torchvision()
    if source == "timm":
        import timm

        try:
            model = timm.create_model(name, pretrained=False)
        except RuntimeError as e:
            raise WorkloadError(f"timm has no model {name!r}") from e
    else:
        import torchvision.models as tvm

        if name not in tvm.list_models():
            raise WorkloadError(f"torchvision has no model {name!r}")
        model = tvm.get_model(name, weights=None)
    return model.eval()


@dataclass(frozen=True)
class MacCount:
    """MACs of one forward pass (all samples of the batch)."""

    conv: int = 0
    linear: int = 0
    matmul: int = 0  # activation x activation: matmul/bmm/@, SDPA, attention inside nn.MultiheadAttention

    @property
    def total(self) -> int:
        return self.conv + self.linear + self.matmul


def _matmul_macs(a: torch.Size, b: torch.Size) -> int:
    sa, sb = list(a), list(b)
    if len(sa) == 1:
        sa = [1, *sa]
    if len(sb) == 1:
        sb = [*sb, 1]
    lead = torch.broadcast_shapes(torch.Size(sa[:-2]), torch.Size(sb[:-2]))
    return math.prod(lead) * sa[-2] * sa[-1] * sb[-1]


class _Counter(TorchFunctionMode):
    def __init__(self) -> None:
        super().__init__()
        self.depth = 0  # > 0 inside a hooked module: its own functional calls are already counted
        self.conv = self.linear = self.matmul = 0

    def __torch_function__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        if self.depth:
            return out
        if func in (_F.conv1d, _F.conv2d, _F.conv3d):
            w = args[1] if len(args) > 1 else kwargs["weight"]
            self.conv += out.numel() * math.prod(w.shape[1:])
        elif func is _F.linear:
            w = args[1] if len(args) > 1 else kwargs["weight"]
            self.linear += out.numel() * w.shape[1]
        elif func in (torch.matmul, torch.Tensor.matmul, torch.Tensor.__matmul__, torch.bmm, torch.Tensor.bmm,
                      torch.baddbmm, torch.mm, torch.Tensor.mm):
            a, b = (args[1], args[2]) if func is torch.baddbmm else (args[0], args[1])
            self.matmul += _matmul_macs(a.shape, b.shape)
        elif func is torch.Tensor.__rmatmul__:
            self.matmul += _matmul_macs(args[1].shape, args[0].shape)
        elif func is _F.scaled_dot_product_attention:
            q, k, v = (list(args[:3]) + [kwargs.get(n) for n in ("query", "key", "value")][len(args):])[:3]
            lead = math.prod(torch.broadcast_shapes(q.shape[:-2], k.shape[:-2]))
            self.matmul += lead * q.shape[-2] * k.shape[-2] * (q.shape[-1] + v.shape[-1])
        return out


def module_macs(module: nn.Module, example_input: torch.Tensor | tuple[torch.Tensor, ...]) -> MacCount:
    """MACs of ``module`` on ``example_input``, counted from the module itself (see the module docstring)."""
    inputs = example_input if isinstance(example_input, tuple) else (example_input,)
    counter = _Counter()
    handles = []

    def enter(mod: nn.Module, args: Any) -> None:
        counter.depth += 1

    def leave(mod: nn.Module, args: Any, out: Any) -> None:
        counter.depth -= 1
        if isinstance(mod, (nn.Conv1d, nn.Conv2d, nn.Conv3d)):
            counter.conv += out.numel() * (mod.in_channels // mod.groups) * math.prod(mod.kernel_size)
        elif isinstance(mod, nn.Linear):
            counter.linear += out.numel() * mod.in_features
        elif isinstance(mod, nn.MultiheadAttention):
            q, k = args[0], args[1]
            q_tokens = q.numel() // mod.embed_dim
            k_len = k.shape[1] if mod.batch_first else k.shape[0]
            q_len = q.shape[1] if mod.batch_first else q.shape[0]
            batch = q_tokens // q_len
            e = mod.embed_dim
            counter.linear += q_tokens * e * e + 2 * batch * k_len * e * e + q_tokens * e * e  # q, k, v, out
            counter.matmul += 2 * batch * q_len * k_len * e  # scores and context over all heads

    hooked = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear, nn.MultiheadAttention)
    for mod in module.modules():
        if isinstance(mod, hooked):
            handles.append(mod.register_forward_pre_hook(enter))
            handles.append(mod.register_forward_hook(leave))
    was_training = module.training
    module.eval()
    fastpath = torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(False)  # the fused encoder-layer kernel bypasses the hooks
    try:
        with torch.no_grad(), counter:
            module(*inputs)
    finally:
        torch.backends.mha.set_fastpath_enabled(fastpath)
        for h in handles:
            h.remove()
        module.train(was_training)
    return MacCount(conv=counter.conv, linear=counter.linear, matmul=counter.matmul)
