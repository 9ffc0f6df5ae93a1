"""The model zoo: a registry of network builders, and a shape-tracking builder to write them.

A builder is ``fn(batch: int = 1, **kwargs) -> Network``. Networks register themselves with
:func:`register` in the ``zoo_*`` modules, which :func:`_load` imports on first use.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from codesign.errors import WorkloadError
from codesign.workloads.layers import Conv2d, Eltwise, Layer, Linear, MatMul, Network, Pool
from codesign.workloads.operand import Operand

# modules that register networks (each is optional so the zoo grows by adding a module)
ZOO_MODULES = ("zoo_cnn", "zoo_mobile", "zoo_tiny", "zoo_transformers", "digits")


@dataclass(frozen=True)
class ZooEntry:
    name: str
    builder: Callable[..., Network]
    description: str
    source: str
    default_input: str


_REGISTRY: dict[str, ZooEntry] = {}
_LOADED = False


def register(name: str, *, description: str, source: str, default_input: str = "") -> Callable[
    [Callable[..., Network]], Callable[..., Network]
]:
    def deco(fn: Callable[..., Network]) -> Callable[..., Network]:
        _REGISTRY[name] = ZooEntry(name, fn, description, source, default_input)
        return fn

    return deco


def _load() -> None:
    global _LOADED
    if _LOADED:
        return
    for mod in ZOO_MODULES:
        try:
            importlib.import_module(f"codesign.workloads.{mod}")
        except ModuleNotFoundError as e:
            if e.name != f"codesign.workloads.{mod}":
                raise
    _LOADED = True


def names() -> list[str]:
    _load()
    return list(_REGISTRY)


def entries() -> list[ZooEntry]:
    _load()
    return list(_REGISTRY.values())


def entry(name: str) -> ZooEntry:
    _load()
    key = name.strip().lower().replace("-", "_")
    for e in _REGISTRY.values():
        if e.name.lower().replace("-", "_") == key:
            return e
    raise WorkloadError(f"unknown workload {name!r} (zoo: {', '.join(_REGISTRY)}; or a .csv/.yaml/.onnx file)")


def get(name: str, batch: int = 1, **kwargs: Any) -> Network:
    """Build a zoo network by name (``-`` and ``_`` and case are interchangeable)."""
    return entry(name).builder(batch=batch, **kwargs)


class NetBuilder:
    """Appends layers while tracking the feature-map shape (channels, height, width)."""

    def __init__(self, channels: int, height: int, width: int, *, act: Operand | None = None,
                 weight: Operand | None = None) -> None:
        self.c, self.h, self.w = channels, height, width
        self.layers: list[Layer] = []
        self._ops: dict[str, Operand] = {}
        if act is not None:
            self._ops["inputs"] = act
        if weight is not None:
            self._ops["weights"] = weight

    @property
    def shape(self) -> tuple[int, int, int]:
        return (self.c, self.h, self.w)

    def conv(self, name: str, out: int, k: int | tuple[int, int], stride: int = 1,
             padding: int | tuple[int, ...] | None = None, groups: int = 1, bias: bool = False,
             dilation: int = 1) -> Conv2d:
        if padding is None:
            kk = k if isinstance(k, int) else k[0]
            padding = dilation * (kk - 1) // 2
        layer = Conv2d(name, in_channels=self.c, out_channels=out, in_h=self.h, in_w=self.w, kernel=k,
                       stride=stride, padding=padding, groups=groups, bias=bias, dilation=dilation, **self._ops)
        self.layers.append(layer)
        self.c, self.h, self.w = out, layer.out_h, layer.out_w
        return layer

    def dwconv(self, name: str, k: int, stride: int = 1, padding: int | None = None, bias: bool = False) -> Conv2d:
        return self.conv(name, self.c, k, stride, padding, groups=self.c, bias=bias)

    def pool(self, name: str, k: int, stride: int, padding: int = 0, op: str = "max") -> Pool:
        layer = Pool(name, channels=self.c, in_h=self.h, in_w=self.w, kernel=k, stride=stride, padding=padding, op=op)
        self.layers.append(layer)
        self.h, self.w = layer.out_h, layer.out_w
        return layer

    def global_pool(self, name: str, op: str = "avg") -> Pool:
        layer = Pool(name, channels=self.c, in_h=self.h, in_w=self.w, op=op, global_=True)
        self.layers.append(layer)
        self.h = self.w = 1
        return layer

    def add(self, name: str, inputs: int = 2, op: str = "add", operand_elements: tuple[int, ...] = ()) -> Eltwise:
        layer = Eltwise(name, elements=self.c * self.h * self.w, op=op, inputs_count=inputs,
                        operand_elements=operand_elements)
        self.layers.append(layer)
        return layer

    def linear(self, name: str, out: int, bias: bool = True, tokens: int = 1) -> Linear:
        layer = Linear(name, in_features=self.c * self.h * self.w, out_features=out, tokens=tokens, bias=bias,
                       **self._ops)
        self.layers.append(layer)
        self.c, self.h, self.w = out, 1, 1
        return layer

    def matmul(self, name: str, m: int, k: int, n: int, heads: int = 1) -> MatMul:
        layer = MatMul(name, m=m, k=k, n=n, heads=heads, **self._ops)
        self.layers.append(layer)
        return layer

    def network(self, name: str, batch: int, input_shape: tuple[int, ...], source: str = "") -> Network:
        return Network(name, tuple(self.layers), batch=batch, input_shape=input_shape, source=source)
