"""Make ``import torchvision`` (and so ``import timm``) work when torchvision's compiled ops do not load.

PyPI's torchvision wheels are CUDA builds; beside the CPU build of torch their ``_C`` extension does
not load (it links CUDA libraries the CPU torch does not have). torchvision means to work without
it (``torchvision.extension._has_ops()`` is then false and its ops raise a clear error when called),
but its ``_meta_registrations`` registers fake kernels for ``torchvision::nms`` and ``::qnms``
without that check, so the import fails with ``operator torchvision::nms does not exist`` and timm,
which imports torchvision, with it.

:func:`install` adds an import hook that acts only in that case: just before
``torchvision._meta_registrations`` runs, if the ops did not load, it declares the schemas of the two
operators (no kernels: calling ``torchvision.ops.nms`` still raises torchvision's own "not compiled"
error). With a torchvision whose ops load, the hook does nothing. ``import codesign`` installs it; it
imports nothing until torchvision is imported.
"""

from __future__ import annotations

import importlib.abc
import sys
from typing import Any

_MODULE = "torchvision._meta_registrations"
# the schemas torchvision's C++ code defines (torchvision/csrc/ops/nms.cpp, quantized/cpu/qnms_kernel.cpp)
_SCHEMAS = ("nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
            "qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
_LIBRARY: list[Any] = []  # keeps the torch.library.Library (and its definitions) alive


class _Hook(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname: str, path: Any, target: Any = None) -> None:
        if fullname == _MODULE:
            declare_missing_ops()
        return None  # the normal finders import the module


def declare_missing_ops() -> bool:
    """Declare ``torchvision::nms``/``qnms`` if torchvision's compiled ops did not load; True if it did."""
    extension = sys.modules.get("torchvision.extension")
    if extension is None or _LIBRARY:
        return False
    try:
        if extension._has_ops():
            return False
        import torch

        missing = [s for s in _SCHEMAS if not _defined(torch, s)]
        if not missing:
            return False
        lib = torch.library.Library("torchvision", "DEF")
        for schema in missing:
            lib.define(schema)
        _LIBRARY.append(lib)
        return True
    except Exception:  # never break an import that would otherwise have worked
        return False


def _defined(torch: Any, schema: str) -> bool:
    try:
        torch._C._dispatch_find_schema_or_throw(f"torchvision::{schema.split('(')[0]}", "")
        return True
    except RuntimeError:
        return False


def install() -> None:
    """Add the hook once (before torchvision is imported; afterwards it has nothing to do)."""
    if "torchvision" in sys.modules or any(isinstance(f, _Hook) for f in sys.meta_path):
        return
    sys.meta_path.insert(0, _Hook())
