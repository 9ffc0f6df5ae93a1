"""Layers and networks: shapes, per-operand quantization and sparsity, lowering to GEMM.

Conventions
-----------
* A layer is computed as ``groups`` independent GEMMs ``C[M, N] = A[M, K] @ B[K, N]`` where A is
  the (im2col) input, B the weights (or the second activation of a MatMul) and C the output.
  For Conv2d: ``M = out_h * out_w * batch``, ``K = in_channels / groups * R * S``,
  ``N = out_channels / groups``. Depthwise is Conv2d with ``groups == in_channels``.
* MACs count multiply-accumulates of Conv2d / Linear / MatMul only (the convention of the
  MobileNet, ResNet and EfficientNet papers); Pool and Eltwise run on the vector unit and count
  as ``vector_ops``.
* Parameters count weights and biases of Conv2d and Linear (BatchNorm folded away).
* The graph: ``sources`` names the layers whose outputs a layer reads, in operand order
  (``NETWORK_INPUT`` for the network's input). Left empty, the simulator infers the producer of
  the first activation operand (:func:`codesign.sim.fusion.producers`: the latest earlier layer
  whose output has as many elements as this layer's input) and treats other activation operands
  (a residual add's second input) as read from DRAM.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace

from codesign.errors import WorkloadError
from codesign.workloads.operand import Operand

INT8 = Operand()
ACC32 = Operand(bits=32)
NETWORK_INPUT = "@input"  # a source name: the network's input


class LayerKind(str, enum.Enum):
    CONV = "conv"
    LINEAR = "linear"
    MATMUL = "matmul"
    POOL = "pool"
    ELTWISE = "eltwise"


@dataclass(frozen=True)
class GemmShape:
    """``repeats`` independent GEMMs of ``M x K`` by ``K x N`` (groups, heads, batch)."""

    m: int
    n: int
    k: int
    repeats: int = 1

    @property
    def macs(self) -> int:
        return self.m * self.n * self.k * self.repeats


def _pos_int(name: str, value: object, layer: str, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        what = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
        raise WorkloadError(f"layer {layer!r}: {name} must be {what}, not {value!r}")
    return value


def _pair(name: str, value: object, layer: str, minimum: int = 1) -> tuple[int, int]:
    if isinstance(value, (tuple, list)):
        if len(value) != 2:
            raise WorkloadError(f"layer {layer!r}: {name} must be an integer or a pair, not {value!r}")
        return (_pos_int(name, value[0], layer, minimum), _pos_int(name, value[1], layer, minimum))
    v = _pos_int(name, value, layer, minimum)
    return (v, v)


def _padding(value: object, layer: str) -> tuple[int, int, int, int]:
    """int, (h, w) or (top, left, bottom, right) -> (top, left, bottom, right)."""
    if isinstance(value, (tuple, list)) and len(value) == 4:
        t, l_, b, r = (_pos_int("padding", v, layer, 0) for v in value)
        return (t, l_, b, r)
    ph, pw = _pair("padding", value, layer, 0)
    return (ph, pw, ph, pw)


#: activations made by a table in the write-back (workloads.eltwise_arith.activation_table)
TABLE_ACTIVATIONS = ("hard_swish", "hard_sigmoid", "silu", "sigmoid", "tanh", "gelu")


@dataclass(frozen=True)
class Layer:
    """Base of all layers: a name and the three operands."""

    name: str
    inputs: Operand = field(default=INT8, kw_only=True)
    weights: Operand = field(default=INT8, kw_only=True)
    outputs: Operand = field(default=INT8, kw_only=True)
    sources: tuple[str, ...] = field(default=(), kw_only=True)  # producers of the activation operands
    # a non-linear activation applied to the outputs as an ``act_bits -> act_bits`` table (TABLE_ACTIVATIONS);
    # '' for none or for the ReLU family, which the output's clamp (its scale and zero point) makes
    activation: str = field(default="", kw_only=True)

    kind = LayerKind.CONV  # overridden

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise WorkloadError(f"layer name must be a non-empty string, not {self.name!r}")
        src = self.sources
        if isinstance(src, str):
            src = (src,)
        if not isinstance(src, (tuple, list)) or not all(isinstance(x, str) and x for x in src):
            raise WorkloadError(f"layer {self.name!r}: sources must be a list of layer names, not {self.sources!r}")
        object.__setattr__(self, "sources", tuple(src))
        for op in ("inputs", "weights", "outputs"):
            if not isinstance(getattr(self, op), Operand):
                raise WorkloadError(f"layer {self.name!r}: {op} must be an Operand, not {getattr(self, op)!r}")
        if self.activation not in ("", *TABLE_ACTIVATIONS):
            raise WorkloadError(f"layer {self.name!r}: activation must be one of {', '.join(TABLE_ACTIVATIONS)} "
                                f"(or empty), not {self.activation!r}")
        if self.activation and self.kind not in (LayerKind.CONV, LayerKind.LINEAR, LayerKind.MATMUL):
            raise WorkloadError(f"layer {self.name!r}: activation {self.activation!r} is applied in the write-back "
                                f"of a convolution, linear or matmul layer, not of a {self.kind.value} layer")

    # -- to be specialised ---------------------------------------------------------------
    def _gemm(self, batch: int) -> GemmShape | None:
        return None

    def gemm(self, batch: int = 1) -> GemmShape | None:
        """The GEMMs of this layer at a batch size (``None`` for vector-unit layers); memoized."""
        cache: dict[int, GemmShape | None] | None = self.__dict__.get("_gemm_memo")
        if cache is None:
            cache = {}
            object.__setattr__(self, "_gemm_memo", cache)
        if batch not in cache:
            cache[batch] = self._gemm(batch)
        return cache[batch]

    def vector_ops(self, batch: int = 1) -> int:
        return 0

    @property
    def params(self) -> int:
        return 0

    @property
    def weight_elements(self) -> int:
        """Elements of the B operand that are stored parameters (0 for MatMul)."""
        return 0

    def input_elements(self, batch: int = 1) -> int:
        raise NotImplementedError

    def output_elements(self, batch: int = 1) -> int:
        raise NotImplementedError

    # -- derived -------------------------------------------------------------------------
    def macs(self, batch: int = 1) -> int:
        g = self.gemm(batch)
        return g.macs if g is not None else 0

    @property
    def has_gemm(self) -> bool:
        return self.kind in (LayerKind.CONV, LayerKind.LINEAR, LayerKind.MATMUL)

    def with_operands(self, **changes: Operand) -> Layer:
        return replace(self, **changes)

    def shape_str(self) -> str:
        return ""


@dataclass(frozen=True)
class Conv2d(Layer):
    """2-D convolution; depthwise and grouped convolutions are Conv2d with ``groups``."""

    in_channels: int = 1
    out_channels: int = 1
    in_h: int = 1
    in_w: int = 1
    kernel: tuple[int, int] | int = 1
    stride: tuple[int, int] | int = 1
    padding: tuple[int, int, int, int] | tuple[int, int] | int = 0
    dilation: tuple[int, int] | int = 1
    groups: int = 1
    bias: bool = True

    kind = LayerKind.CONV

    def __post_init__(self) -> None:
        super().__post_init__()
        n = self.name
        for f in ("in_channels", "out_channels", "in_h", "in_w", "groups"):
            _pos_int(f, getattr(self, f), n)
        object.__setattr__(self, "kernel", _pair("kernel", self.kernel, n))
        object.__setattr__(self, "stride", _pair("stride", self.stride, n))
        object.__setattr__(self, "dilation", _pair("dilation", self.dilation, n))
        object.__setattr__(self, "padding", _padding(self.padding, n))
        if self.in_channels % self.groups or self.out_channels % self.groups:
            raise WorkloadError(
                f"layer {n!r}: groups must divide in_channels ({self.in_channels}) and "
                f"out_channels ({self.out_channels}), not {self.groups!r}"
            )
        if self.out_h < 1 or self.out_w < 1:
            raise WorkloadError(
                f"layer {n!r}: kernel {self.kernel} does not fit input {self.in_h}x{self.in_w} "
                f"with padding {self.padding}"
            )

    @property
    def r(self) -> int:
        return self.kernel[0]  # type: ignore[index]

    @property
    def s(self) -> int:
        return self.kernel[1]  # type: ignore[index]

    @property
    def out_h(self) -> int:
        pt, _, pb, _ = self.padding  # type: ignore[misc]
        eff = self.dilation[0] * (self.r - 1) + 1  # type: ignore[index]
        return (self.in_h + pt + pb - eff) // self.stride[0] + 1  # type: ignore[index]

    @property
    def out_w(self) -> int:
        _, pl, _, pr = self.padding  # type: ignore[misc]
        eff = self.dilation[1] * (self.s - 1) + 1  # type: ignore[index]
        return (self.in_w + pl + pr - eff) // self.stride[1] + 1  # type: ignore[index]

    @property
    def is_depthwise(self) -> bool:
        return self.groups > 1 and self.groups == self.in_channels

    def _gemm(self, batch: int) -> GemmShape:
        return GemmShape(
            m=self.out_h * self.out_w * batch,
            n=self.out_channels // self.groups,
            k=self.in_channels // self.groups * self.r * self.s,
            repeats=self.groups,
        )

    @property
    def weight_elements(self) -> int:
        return self.out_channels * (self.in_channels // self.groups) * self.r * self.s

    @property
    def params(self) -> int:
        return self.weight_elements + (self.out_channels if self.bias else 0)

    def input_elements(self, batch: int = 1) -> int:
        return self.in_channels * self.in_h * self.in_w * batch

    def output_elements(self, batch: int = 1) -> int:
        return self.out_channels * self.out_h * self.out_w * batch

    def shape_str(self) -> str:
        g = f" g{self.groups}" if self.groups > 1 else ""
        return (
            f"{self.in_channels}x{self.in_h}x{self.in_w} -> {self.out_channels}x{self.out_h}x{self.out_w} "
            f"k{self.r}x{self.s} s{self.stride[0]}{g}"  # type: ignore[index]
        )


@dataclass(frozen=True)
class Linear(Layer):
    """Fully connected layer applied to ``tokens`` vectors (tokens = sequence length for LLMs)."""

    in_features: int = 1
    out_features: int = 1
    tokens: int = 1
    bias: bool = True

    kind = LayerKind.LINEAR

    def __post_init__(self) -> None:
        super().__post_init__()
        for f in ("in_features", "out_features", "tokens"):
            _pos_int(f, getattr(self, f), self.name)

    def _gemm(self, batch: int) -> GemmShape:
        return GemmShape(m=self.tokens * batch, n=self.out_features, k=self.in_features)

    @property
    def weight_elements(self) -> int:
        return self.in_features * self.out_features

    @property
    def params(self) -> int:
        return self.weight_elements + (self.out_features if self.bias else 0)

    def input_elements(self, batch: int = 1) -> int:
        return self.in_features * self.tokens * batch

    def output_elements(self, batch: int = 1) -> int:
        return self.out_features * self.tokens * batch

    def shape_str(self) -> str:
        return f"{self.tokens}x{self.in_features} -> {self.tokens}x{self.out_features}"


@dataclass(frozen=True)
class MatMul(Layer):
    """``heads`` matrix products of two activations, ``[m, k] @ [k, n]`` (attention scores, context).

    The ``weights`` operand describes the second activation; it holds no parameters.
    """

    m: int = 1
    k: int = 1
    n: int = 1
    heads: int = 1

    kind = LayerKind.MATMUL

    def __post_init__(self) -> None:
        super().__post_init__()
        for f in ("m", "k", "n", "heads"):
            _pos_int(f, getattr(self, f), self.name)

    def _gemm(self, batch: int) -> GemmShape:
        return GemmShape(m=self.m, n=self.n, k=self.k, repeats=self.heads * batch)

    def input_elements(self, batch: int = 1) -> int:
        return (self.m * self.k + self.k * self.n) * self.heads * batch

    def output_elements(self, batch: int = 1) -> int:
        return self.m * self.n * self.heads * batch

    def shape_str(self) -> str:
        return f"{self.heads}x[{self.m}x{self.k} @ {self.k}x{self.n}]"


class PoolKind(str, enum.Enum):
    MAX = "max"
    AVG = "avg"


@dataclass(frozen=True)
class Pool(Layer):
    """Max or average pooling; ``global_=True`` pools the whole feature map."""

    channels: int = 1
    in_h: int = 1
    in_w: int = 1
    kernel: tuple[int, int] | int = 1
    stride: tuple[int, int] | int = 1
    padding: tuple[int, int, int, int] | tuple[int, int] | int = 0
    op: PoolKind = PoolKind.MAX
    global_: bool = False

    kind = LayerKind.POOL

    def __post_init__(self) -> None:
        super().__post_init__()
        n = self.name
        for f in ("channels", "in_h", "in_w"):
            _pos_int(f, getattr(self, f), n)
        try:
            object.__setattr__(self, "op", PoolKind(self.op))
        except ValueError:
            raise WorkloadError(f"layer {n!r}: pool op must be 'max' or 'avg', not {self.op!r}") from None
        if self.global_:
            object.__setattr__(self, "kernel", (self.in_h, self.in_w))
            object.__setattr__(self, "stride", (1, 1))
            object.__setattr__(self, "padding", (0, 0, 0, 0))
        object.__setattr__(self, "kernel", _pair("kernel", self.kernel, n))
        object.__setattr__(self, "stride", _pair("stride", self.stride, n))
        object.__setattr__(self, "padding", _padding(self.padding, n))
        if self.out_h < 1 or self.out_w < 1:
            raise WorkloadError(f"layer {n!r}: pool kernel {self.kernel} does not fit {self.in_h}x{self.in_w}")

    @property
    def out_h(self) -> int:
        pt, _, pb, _ = self.padding  # type: ignore[misc]
        return (self.in_h + pt + pb - self.kernel[0]) // self.stride[0] + 1  # type: ignore[index]

    @property
    def out_w(self) -> int:
        _, pl, _, pr = self.padding  # type: ignore[misc]
        return (self.in_w + pl + pr - self.kernel[1]) // self.stride[1] + 1  # type: ignore[index]

    def vector_ops(self, batch: int = 1) -> int:
        return self.output_elements(batch) * self.kernel[0] * self.kernel[1]  # type: ignore[index]

    def input_elements(self, batch: int = 1) -> int:
        return self.channels * self.in_h * self.in_w * batch

    def output_elements(self, batch: int = 1) -> int:
        return self.channels * self.out_h * self.out_w * batch

    def shape_str(self) -> str:
        return f"{self.op.value} {self.channels}x{self.in_h}x{self.in_w} -> {self.out_h}x{self.out_w}"

    def as_gemm_layer(self) -> Conv2d | MatMul | None:
        """The layer the hardware runs this pool as, or None (max pooling; average pooling with padding,
        whose divisor changes at the borders). An average pool sums windows, and the write-back's
        per-channel requantization scales the sums by the divisor (and the scales): ``AVERAGE_POOL_2D``
        and ``MEAN`` as a sum and a requantization (:mod:`codesign.workloads.intarith`).

        * global (the whole map): ``ones[1, H*W] @ X[H*W, C]``, a GEMM whose stationary operand is the
          feature map itself (pixels along K, channels along N: a channels-last map is its layout),
          one useful output row but all of the array's columns busy;
        * otherwise: the depthwise convolution with unit weights (on the depthwise engine when it
          fits its window)."""
        if self.op is not PoolKind.AVG or any(self.padding):  # type: ignore[arg-type]
            return None
        if self.kernel == (self.in_h, self.in_w):
            return MatMul(self.name, inputs=self.inputs, weights=self.inputs, outputs=self.outputs, m=1,
                          k=self.in_h * self.in_w, n=self.channels, heads=1)
        return Conv2d(self.name, inputs=self.inputs, outputs=self.outputs, in_channels=self.channels,
                      out_channels=self.channels, in_h=self.in_h, in_w=self.in_w, kernel=self.kernel,
                      stride=self.stride, groups=self.channels, bias=False)


class EltwiseOp(str, enum.Enum):
    ADD = "add"
    MUL = "mul"


@dataclass(frozen=True)
class Eltwise(Layer):
    """Element-wise op over ``inputs`` tensors of ``elements`` elements (residual add, SE scale)."""

    elements: int = 1
    op: EltwiseOp = EltwiseOp.ADD
    inputs_count: int = 2
    # elements of each input when some are broadcast (a per-channel scale: C, a scalar: 1); () = all full
    operand_elements: tuple[int, ...] = ()

    kind = LayerKind.ELTWISE

    def __post_init__(self) -> None:
        super().__post_init__()
        _pos_int("elements", self.elements, self.name)
        _pos_int("inputs_count", self.inputs_count, self.name, 1)
        ops = self.operand_elements
        if not isinstance(ops, (tuple, list)) or (ops and len(ops) != self.inputs_count) or not all(
                not isinstance(v, bool) and isinstance(v, int) and 1 <= v <= self.elements for v in ops):
            raise WorkloadError(f"layer {self.name!r}: operand_elements must be {self.inputs_count} integers from 1 "
                                f"to elements ({self.elements}), not {self.operand_elements!r}")
        object.__setattr__(self, "operand_elements", tuple(ops))
        try:
            object.__setattr__(self, "op", EltwiseOp(self.op))
        except ValueError:
            raise WorkloadError(f"layer {self.name!r}: eltwise op must be 'add' or 'mul', not {self.op!r}") from None

    def vector_ops(self, batch: int = 1) -> int:
        return self.elements * batch * max(1, self.inputs_count - 1)

    def input_elements(self, batch: int = 1) -> int:
        return sum(self.operand_sizes(batch))

    def operand_sizes(self, batch: int = 1) -> tuple[int, ...]:
        """Elements of each input (the first is the full tensor unless broadcast too)."""
        sizes = self.operand_elements or (self.elements,) * self.inputs_count
        return tuple(v * batch for v in sizes)

    def output_elements(self, batch: int = 1) -> int:
        return self.elements * batch

    def shape_str(self) -> str:
        return f"{self.op.value} x{self.inputs_count} {self.elements}"


@dataclass(frozen=True)
class Network:
    """A named, ordered list of layers with a batch size."""

    name: str
    layers: tuple[Layer, ...]
    batch: int = 1
    input_shape: tuple[int, ...] = ()
    source: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise WorkloadError(f"network name must be a non-empty string, not {self.name!r}")
        object.__setattr__(self, "layers", tuple(self.layers))
        if not self.layers:
            raise WorkloadError(f"network {self.name!r} has no layers")
        _pos_int("batch", self.batch, self.name)
        seen: set[str] = set()
        for layer in self.layers:
            if not isinstance(layer, Layer):
                raise WorkloadError(f"network {self.name!r}: {layer!r} is not a Layer")
            if layer.name in seen:
                raise WorkloadError(f"network {self.name!r}: layer name {layer.name!r} appears twice")
            for src in layer.sources:
                if src != NETWORK_INPUT and src not in seen:
                    raise WorkloadError(f"network {self.name!r}: layer {layer.name!r}: source {src!r} is not an "
                                        f"earlier layer (or {NETWORK_INPUT!r})")
            seen.add(layer.name)

    def __iter__(self) -> Iterator[Layer]:
        return iter(self.layers)

    def __len__(self) -> int:
        return len(self.layers)

    @property
    def macs(self) -> int:
        return sum(layer.macs(self.batch) for layer in self.layers)

    @property
    def params(self) -> int:
        return sum(layer.params for layer in self.layers)

    def layer(self, name: str) -> Layer:
        for layer in self.layers:
            if layer.name == name:
                return layer
        names = ", ".join(layer.name for layer in self.layers[:8])
        raise WorkloadError(f"network {self.name!r} has no layer {name!r} (layers: {names}, ...)")

    def with_batch(self, batch: int) -> Network:
        return replace(self, batch=batch)

    def map_layers(self, fn: Callable[[Layer], Layer]) -> Network:
        return replace(self, layers=tuple(fn(layer) for layer in self.layers))

    def with_layers(self, layers: Iterable[Layer]) -> Network:
        return replace(self, layers=tuple(layers))



def gemm_layer(layer: Layer) -> Layer | None:
    """The layer the array (or the depthwise engine) runs for ``layer``: itself when it has a GEMM, the
    GEMM of an unpadded average pool (:meth:`Pool.as_gemm_layer`), else None
    (max pooling, element-wise layers: the vector unit's)."""
    if layer.has_gemm:
        return layer
    if isinstance(layer, Pool):
        return layer.as_gemm_layer()
    return None
