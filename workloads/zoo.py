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
from codesign.workloads.layers import NETWORK_INPUT, Conv2d, Eltwise, Layer, Linear, MatMul, Network, Pool
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


@dataclass(frozen=True)
class Tap:
    """A point of the builder's feature map to branch from: its shape and the layer that wrote it."""

    c: int
    h: int
    w: int
    src: str | None


class NetBuilder:
    """Appends layers while tracking the feature-map shape (channels, height, width) and the graph: each
    layer's ``sources`` name the layer that wrote the current map (``src``; ``None`` after a concat, which
    no single layer wrote: read from DRAM). Branches start from a :meth:`mark` and :meth:`resume` it."""

    def __init__(self, channels: int, height: int, width: int, *, act: Operand | None = None,
                 weight: Operand | None = None) -> None:
        self.c, self.h, self.w = channels, height, width
        self.src: str | None = NETWORK_INPUT
        self.layers: list[Layer] = []
        self._ops: dict[str, Operand] = {}
        if act is not None:
            self._ops["inputs"] = act
        if weight is not None:
            self._ops["weights"] = weight

    @property
    def shape(self) -> tuple[int, int, int]:
        return (self.c, self.h, self.w)

    def mark(self) -> Tap:
        return Tap(self.c, self.h, self.w, self.src)

    def resume(self, tap: Tap) -> None:
        """Go back to a marked map (the other branch of a block)."""
        self.c, self.h, self.w, self.src = tap.c, tap.h, tap.w, tap.src

    def concat(self, channels: int) -> None:
        """The branches' outputs concatenated (or split, shuffled) into ``channels`` channels: no single producer."""
        self.c, self.src = channels, None

    def _sources(self, *names: str | None) -> tuple[str, ...]:
        return tuple(NETWORK_INPUT if n is None else n for n in names)

    def _append(self, layer: Layer) -> None:
        self.layers.append(layer)
        self.src = layer.name

    def conv(self, name: str, out: int, k: int | tuple[int, int], stride: int = 1,
             padding: int | tuple[int, ...] | None = None, groups: int = 1, bias: bool = False,
             dilation: int = 1, activation: str = "") -> Conv2d:
        if padding is None:
            kk = k if isinstance(k, int) else k[0]
            padding = dilation * (kk - 1) // 2
        layer = Conv2d(name, in_channels=self.c, out_channels=out, in_h=self.h, in_w=self.w, kernel=k,
                       stride=stride, padding=padding, groups=groups, bias=bias, dilation=dilation,
                       sources=self._sources(self.src), activation=activation, **self._ops)
        self._append(layer)
        self.c, self.h, self.w = out, layer.out_h, layer.out_w
        return layer

    def dwconv(self, name: str, k: int, stride: int = 1, padding: int | None = None, bias: bool = False,
               activation: str = "") -> Conv2d:
        return self.conv(name, self.c, k, stride, padding, groups=self.c, bias=bias, activation=activation)

    def pool(self, name: str, k: int, stride: int, padding: int = 0, op: str = "max") -> Pool:
        layer = Pool(name, channels=self.c, in_h=self.h, in_w=self.w, kernel=k, stride=stride, padding=padding, op=op,
                     sources=self._sources(self.src))
        self._append(layer)
        self.h, self.w = layer.out_h, layer.out_w
        return layer

    def global_pool(self, name: str, op: str = "avg") -> Pool:
        layer = Pool(name, channels=self.c, in_h=self.h, in_w=self.w, op=op, global_=True,
                     sources=self._sources(self.src))
        self._append(layer)
        self.h = self.w = 1
        return layer

    def add(self, name: str, inputs: int = 2, op: str = "add", operand_elements: tuple[int, ...] = (),
            other: str | None = "") -> Eltwise:
        """An element-wise op on the current map and ``other`` (the layer that wrote the second operand: a
        residual's shortcut, SE's scale; '' when not named, read from DRAM)."""
        names = (self.src,) if other == "" else (self.src, other)
        layer = Eltwise(name, elements=self.c * self.h * self.w, op=op, inputs_count=inputs,
                        operand_elements=operand_elements, sources=self._sources(*names))
        self._append(layer)
        return layer

    def linear(self, name: str, out: int, bias: bool = True, tokens: int = 1, activation: str = "") -> Linear:
        layer = Linear(name, in_features=self.c * self.h * self.w, out_features=out, tokens=tokens, bias=bias,
                       sources=self._sources(self.src), activation=activation, **self._ops)
        self._append(layer)
        self.c, self.h, self.w = out, 1, 1
        return layer

    def matmul(self, name: str, m: int, k: int, n: int, heads: int = 1) -> MatMul:
        layer = MatMul(name, m=m, k=k, n=n, heads=heads, **self._ops)
        self.layers.append(layer)
        return layer

    def network(self, name: str, batch: int, input_shape: tuple[int, ...], source: str = "") -> Network:
        return Network(name, tuple(self.layers), batch=batch, input_shape=input_shape, source=source)
