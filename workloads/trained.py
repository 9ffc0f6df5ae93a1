"""Networks with real weights: the layer shapes of a :class:`Network` plus float parameters,
the activation after each layer, and the data set they were trained on.

A :class:`TrainedNetwork` carries its weights through the workload model: ``network`` is the
plain :class:`Network` the simulator reads (operand bits and densities), ``params`` maps each
GEMM layer's name to its float weight (``[out, in/groups, R, S]`` for Conv2d, ``[out, in]`` for
Linear, as in PyTorch) and bias. Conventions the integer reference and the hardware share:

* activations are NCHW between convolutions; a Linear after a convolution reads its input
  flattened in **HWC** order, which is the row-major layout of the conv's GEMM output
  ``C[out_y * out_x, channels]``: the flatten is a layout change, no data moves;
* the activation after a layer is ``"relu"``, ``"relu6"`` or ``"none"`` (folded into the
  requantization clamp in the integer network).

Trained networks register by zoo name (:func:`register`); :func:`get` loads one, e.g.
``get("digits_cnn")``. :func:`onnx_weights` reads the initializers of an ONNX model.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from codesign.errors import WorkloadError
from codesign.workloads.layers import Conv2d, Layer, Linear, Network

ACTIVATIONS = ("none", "relu", "relu6")


@dataclass(frozen=True)
class Dataset:
    """Inputs and labels, split into a calibration/training part and a test part."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    name: str = ""


@dataclass(frozen=True)
class TrainedNetwork:
    """A network with float weights and biases per GEMM layer and its activations."""

    network: Network
    params: Mapping[str, tuple[np.ndarray, np.ndarray]]
    activations: Mapping[str, str]
    dataset: Callable[[], Dataset] | None = field(default=None, compare=False)
    input_from_raw: Callable[[np.ndarray], np.ndarray] | None = field(default=None, compare=False)
    # (pruned params, epochs, seed) -> params trained further with their zeros kept (optional)
    finetune: Callable[..., Mapping[str, tuple[np.ndarray, np.ndarray]]] | None = field(default=None,
                                                                                         compare=False)
    source: str = ""

    def __post_init__(self) -> None:
        for layer in self.network.layers:
            if not isinstance(layer, (Conv2d, Linear)):
                raise WorkloadError(f"trained network {self.network.name!r}: layer {layer.name!r} is "
                                    f"{layer.kind.value}; only conv and linear layers carry weights here")
            if layer.name not in self.params:
                raise WorkloadError(f"trained network {self.network.name!r}: no weights for layer {layer.name!r}")
            w, b = self.params[layer.name]
            want = weight_shape(layer)
            if tuple(w.shape) != want:
                raise WorkloadError(f"layer {layer.name!r}: weight shape must be {want}, not {tuple(w.shape)}")
            if tuple(b.shape) != (want[0],):
                raise WorkloadError(f"layer {layer.name!r}: bias shape must be ({want[0]},), not {tuple(b.shape)}")
            act = self.activations.get(layer.name, "none")
            if act not in ACTIVATIONS:
                raise WorkloadError(f"layer {layer.name!r}: activation must be one of {', '.join(ACTIVATIONS)}, "
                                    f"not {act!r}")

    @property
    def name(self) -> str:
        return self.network.name

    def activation(self, layer: str) -> str:
        return self.activations.get(layer, "none")

    def load_dataset(self) -> Dataset:
        if self.dataset is None:
            raise WorkloadError(f"trained network {self.name!r} has no bundled data set; give --data FILE.npz")
        return self.dataset()

    def prepare(self, x_raw: np.ndarray) -> np.ndarray:
        """User inputs (the data set's raw units) -> the float inputs of the first layer."""
        x = np.asarray(x_raw, dtype=np.float64)
        return self.input_from_raw(x) if self.input_from_raw is not None else x

    def forward(self, x: np.ndarray, *, collect: bool = False) -> np.ndarray | list[np.ndarray]:
        """Float inference: logits ``[batch, classes]`` (or every layer's output with ``collect``)."""
        outs: list[np.ndarray] = []
        h = np.asarray(x, dtype=np.float64)
        for layer in self.network.layers:
            w, b = self.params[layer.name]
            h = float_layer(layer, h, w, b)
            h = apply_activation(h, self.activation(layer.name))
            outs.append(h)
        return outs if collect else h


def weight_shape(layer: Layer) -> tuple[int, ...]:
    if isinstance(layer, Conv2d):
        return (layer.out_channels, layer.in_channels // layer.groups, layer.r, layer.s)
    if isinstance(layer, Linear):
        return (layer.out_features, layer.in_features)
    raise WorkloadError(f"layer {layer.name!r} ({layer.kind.value}) has no weights")


def weight_matrix(layer: Layer, w: np.ndarray) -> np.ndarray:
    """Weights as the GEMM's B operand ``[groups, K, N/groups]`` (K order: channel, ky, kx)."""
    if isinstance(layer, Conv2d):
        g = layer.groups
        return np.ascontiguousarray(w.reshape(g, layer.out_channels // g, -1).transpose(0, 2, 1))
    return np.ascontiguousarray(w.T)[None]


def lower_input(layer: Layer, x: np.ndarray) -> np.ndarray:
    """A layer's input activation -> the GEMM's A operand ``[groups, M, K]`` (zero padding)."""
    from codesign.workloads.tensors import im2col

    if isinstance(layer, Conv2d):
        if x.ndim != 4 or x.shape[1:] != (layer.in_channels, layer.in_h, layer.in_w):
            raise WorkloadError(f"layer {layer.name!r}: input must be [batch, {layer.in_channels}, {layer.in_h}, "
                                f"{layer.in_w}], not {list(x.shape)}")
        return im2col(x, layer)
    if isinstance(layer, Linear):
        flat = x.transpose(0, 2, 3, 1).reshape(x.shape[0], -1) if x.ndim == 4 else x.reshape(x.shape[0], -1)
        if flat.shape[1] != layer.in_features * layer.tokens:
            raise WorkloadError(f"layer {layer.name!r}: input must have {layer.in_features} features, "
                                f"not {flat.shape[1]}")
        return flat.reshape(-1, layer.in_features)[None]
    raise WorkloadError(f"layer {layer.name!r} ({layer.kind.value}) has no GEMM")


def raise_output(layer: Layer, c: np.ndarray, batch: int) -> np.ndarray:
    """The GEMM's output ``[groups, M, N/groups]`` -> the layer's output (NCHW or ``[batch, N]``)."""
    if isinstance(layer, Conv2d):
        g, _, ng = c.shape
        y = c.reshape(g, batch, layer.out_h, layer.out_w, ng).transpose(1, 0, 4, 2, 3)
        return y.reshape(batch, g * ng, layer.out_h, layer.out_w)
    return c[0].reshape(batch, -1)


def float_layer(layer: Layer, x: np.ndarray, w: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = lower_input(layer, x)
    c = np.matmul(a, weight_matrix(layer, w)) + bias_matrix(layer, b)
    return raise_output(layer, c, x.shape[0])


def bias_matrix(layer: Layer, b: np.ndarray) -> np.ndarray:
    """Bias per group: ``[groups, 1, N/groups]``."""
    g = layer.groups if isinstance(layer, Conv2d) else 1
    return np.asarray(b).reshape(g, 1, -1)


def apply_activation(h: np.ndarray, act: str) -> np.ndarray:
    if act == "relu":
        return np.maximum(h, 0.0)
    if act == "relu6":
        return np.clip(h, 0.0, 6.0)
    return h


# -- registry ------------------------------------------------------------------------------

_LOADERS: dict[str, Callable[[], TrainedNetwork]] = {}
_CACHE: dict[str, TrainedNetwork] = {}


def register(name: str) -> Callable[[Callable[[], TrainedNetwork]], Callable[[], TrainedNetwork]]:
    def deco(fn: Callable[[], TrainedNetwork]) -> Callable[[], TrainedNetwork]:
        _LOADERS[name] = fn
        return fn

    return deco


def names() -> list[str]:
    from codesign.workloads import zoo

    zoo.names()  # the zoo modules register their trained networks when imported
    return sorted(_LOADERS)


def get(name: str) -> TrainedNetwork:
    """The trained network of a zoo entry (``digits_cnn``); weights are loaded once per process."""
    key = str(name).strip().lower().replace("-", "_")
    if key not in _CACHE:
        available = names()
        if key not in _LOADERS:
            raise WorkloadError(f"workload {name!r} has no trained weights (trained: {', '.join(available)})")
        _CACHE[key] = _LOADERS[key]()
    return _CACHE[key]


def has_weights(name: str) -> bool:
    return str(name).strip().lower().replace("-", "_") in names()


def load_params(path: str | Path, network: Network) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """``{layer: (weight, bias)}`` from an ``.npz`` with ``<layer>.weight`` and ``<layer>.bias`` arrays."""
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except (OSError, ValueError) as e:
        raise WorkloadError(f"cannot read weights {Path(path).name!r}: {e}") from e
    out = {}
    for layer in network.layers:
        try:
            w, b = arrays[f"{layer.name}.weight"], arrays[f"{layer.name}.bias"]
        except KeyError as e:
            raise WorkloadError(f"weights {Path(path).name!r} have no array {e.args[0]!r}") from None
        out[layer.name] = (w.astype(np.float64), b.astype(np.float64))
    return out


def onnx_weights(path: str | Path) -> dict[str, np.ndarray]:
    """The initializers (weights, biases) of an ONNX model by name, as float64 arrays."""
    try:
        import onnx
        from onnx import numpy_helper
    except ModuleNotFoundError as e:
        raise WorkloadError(f"reading ONNX weights needs the onnx package ({e.name} missing)") from e
    try:
        model = onnx.load(str(path))
    except (OSError, ValueError) as e:
        raise WorkloadError(f"cannot read ONNX model {Path(path).name!r}: {e}") from e
    except Exception as e:  # onnx raises DecodeError (protobuf) on a file that is not a model
        raise WorkloadError(f"{Path(path).name!r} is not an ONNX model ({type(e).__name__})") from e
    return {init.name: numpy_helper.to_array(init).astype(np.float64) for init in model.graph.initializer}


def params_from_arrays(network: Network, arrays: Mapping[str, Any], names_map: Mapping[str, tuple[str, str]]
                       ) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """``{layer: (weight, bias)}`` from named arrays (ONNX initializers, a state dict) and a map
    ``layer -> (weight name, bias name)``."""
    out = {}
    for layer in network.layers:
        wn, bn = names_map[layer.name]
        if wn not in arrays or bn not in arrays:
            missing = wn if wn not in arrays else bn
            raise WorkloadError(f"layer {layer.name!r}: no array {missing!r} among the weights")
        out[layer.name] = (np.asarray(arrays[wn], dtype=np.float64), np.asarray(arrays[bn], dtype=np.float64))
    return out
