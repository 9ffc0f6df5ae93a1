"""Compression applied to real weights, and the integer network that is the hardware's arithmetic.

:func:`quantize_network` takes a :class:`~codesign.workloads.trained.TrainedNetwork` and a
:class:`~codesign.workloads.layers.Network` of the same layers whose operands say the bits and
the weight sparsity of each layer (a preset, ``--weight-bits``, a mixed-precision map), and
returns a :class:`QuantizedNetwork`:

* **pruning** (on the float weights, per layer): unstructured magnitude pruning keeps the
  ``round(density * size)`` largest ``|w|`` of the layer; N:M keeps the ``n`` largest ``|w|`` of
  every ``m`` consecutive weights along K (K order: channel, ky, kx; a ragged last group keeps
  ``min(n, len)``), per output channel;
* **weights**: per output channel, symmetric, narrow range ``[-(2**(b-1) - 1), 2**(b-1) - 1]``;
  the scale's clipping is chosen per channel to minimize the squared error (``mse``) or is the
  channel's max ``|w|`` (``minmax``);
* **activations**: per tensor, zero point 0 (so a ReLU zero is an integer zero the hardware can
  gate or skip, and padding with 0 is exact); signed ``[-2**(a-1), 2**(a-1) - 1]`` or unsigned
  ``[0, 2**a - 1]``; scale from the calibration images' max ``|x|`` (``minmax``) or its 99.99th
  percentile (``percentile``); the last layer's outputs take the layer's ``outputs`` operand
  (INT8 by default);
* **integer layer**: ``acc = A_q @ B_q + bias_q`` in int64, then
  :func:`~codesign.workloads.intarith.requantize` with per-channel ``(mult, shift)`` of
  ``s_in * s_w / s_out``, zero point 0, clamp ``[0 | qmin, qmax]`` (ReLU) or ``[0, round(6/s)]``
  (ReLU6); the prediction is the argmax of the last layer's integer outputs (first on ties).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from codesign.errors import WorkloadError
from codesign.workloads import intarith, trained
from codesign.workloads.layers import Conv2d, Layer, Network
from codesign.workloads.operand import Operand, Pattern

MIN_BITS, MAX_BITS = 2, 16
WEIGHT_CALIBRATIONS = ("mse", "minmax")
ACT_CALIBRATIONS = ("minmax", "percentile")
PERCENTILE = 99.99
CLIP_GRID = np.linspace(0.3, 1.0, 36)  # clip ratios tried by the weights' mse calibration


def check_bits(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not MIN_BITS <= value <= MAX_BITS:
        raise WorkloadError(f"{name} must be an integer from {MIN_BITS} to {MAX_BITS}, not {value!r}")
    return int(value)


# -- pruning ---------------------------------------------------------------------------------


def prune(w: np.ndarray, op: Operand) -> np.ndarray:
    """``w`` (``[out, ...]``, K = the trailing axes flattened) pruned to ``op``'s sparsity."""
    flat = np.asarray(w, dtype=np.float64).reshape(w.shape[0], -1)
    if op.pattern is Pattern.NM:
        out = flat.copy()
        k = flat.shape[1]
        for start in range(0, k, op.m):
            block = np.abs(flat[:, start : start + op.m])
            keep = min(op.n, block.shape[1])
            order = np.argsort(-block, axis=1, kind="stable")  # largest first, ties: lower index
            drop = order[:, keep:]
            rows = np.repeat(np.arange(flat.shape[0]), drop.shape[1])
            out[rows, start + drop.ravel()] = 0.0
        return out.reshape(w.shape)
    if op.density >= 1.0:
        return np.asarray(w, dtype=np.float64).copy()
    size = flat.size
    keep = round(op.density * size)
    order = np.argsort(-np.abs(flat).ravel(), kind="stable")
    mask = np.zeros(size, dtype=bool)
    mask[order[:keep]] = True
    return np.where(mask.reshape(w.shape), np.asarray(w, dtype=np.float64), 0.0)


# -- scales ----------------------------------------------------------------------------------


def weight_scales(w: np.ndarray, bits: int, method: str = "mse") -> np.ndarray:
    """Per-output-channel scales of symmetric ``bits``-bit weights (``w``: ``[out, ...]``)."""
    if method not in WEIGHT_CALIBRATIONS:
        raise WorkloadError(f"weight calibration must be one of {', '.join(WEIGHT_CALIBRATIONS)}, not {method!r}")
    qmax = (1 << (bits - 1)) - 1
    flat = np.asarray(w, dtype=np.float64).reshape(w.shape[0], -1)
    top = np.abs(flat).max(axis=1)
    top = np.where(top > 0, top, 1.0)
    if method == "minmax":
        return top / qmax
    best = top / qmax
    best_err = np.full(len(top), np.inf)
    for ratio in CLIP_GRID:
        s = (top * ratio / qmax)[:, None]
        err = ((np.clip(np.rint(flat / s), -qmax, qmax) * s - flat) ** 2).sum(axis=1)
        better = err < best_err - 1e-15
        best = np.where(better, s[:, 0], best)
        best_err = np.where(better, err, best_err)
    return best


def quantize_weights(w: np.ndarray, scales: np.ndarray, bits: int) -> np.ndarray:
    qmax = (1 << (bits - 1)) - 1
    s = scales.reshape((-1,) + (1,) * (w.ndim - 1))
    return np.clip(np.rint(np.asarray(w, dtype=np.float64) / s), -qmax, qmax).astype(np.int64)


def act_scale(x: np.ndarray, bits: int, signed: bool, method: str = "minmax") -> float:
    """Scale of an activation tensor with zero point 0 (calibrated on ``x``)."""
    if method not in ACT_CALIBRATIONS:
        raise WorkloadError(f"activation calibration must be one of {', '.join(ACT_CALIBRATIONS)}, not {method!r}")
    a = np.abs(np.asarray(x, dtype=np.float64)) if signed else np.maximum(np.asarray(x, dtype=np.float64), 0.0)
    top = float(a.max()) if method == "minmax" else float(np.percentile(a, PERCENTILE))
    if top <= 0:
        top = 1.0
    _, qmax = intarith.qrange(bits, signed)
    return top / qmax


# -- the integer network ---------------------------------------------------------------------


@dataclass(frozen=True)
class LayerTrace:
    """One layer run on integers: the GEMM operands the hardware reads and what it writes.

    ``a[g, M, K]`` (im2col of the input, zero padding), ``b[g, K, N/g]`` weights, ``acc`` the
    int64 sums with the bias added (``a @ b + bias``), ``out[g, M, N/g]`` the requantized outputs."""

    name: str
    a: np.ndarray
    b: np.ndarray
    acc: np.ndarray
    out: np.ndarray


@dataclass(frozen=True)
class IntLayer:
    """A GEMM layer in integers: weights, bias and the requantization of its outputs."""

    layer: Layer
    activation: str
    weight_q: np.ndarray  # int64, the layer's weight shape ([out, in/g, R, S] or [out, in])
    bias_q: np.ndarray  # int64 [out], int32 range, in accumulator units (s_in * s_w)
    mult: np.ndarray  # int64 [out], requantization multiplier
    shift: np.ndarray  # int64 [out], requantization shift
    zero_point: int  # output zero point (0)
    clamp_lo: int
    clamp_hi: int
    in_bits: int
    in_signed: bool
    weight_bits: int
    out_bits: int
    out_signed: bool
    in_scale: float
    weight_scale: np.ndarray  # float [out]
    out_scale: float

    @property
    def name(self) -> str:
        return self.layer.name

    @property
    def groups(self) -> int:
        return self.layer.groups if isinstance(self.layer, Conv2d) else 1

    def gemm_a(self, x_q: np.ndarray) -> np.ndarray:
        """The layer's integer input -> the GEMM's A operand ``[groups, M, K]`` (int64)."""
        return trained.lower_input(self.layer, np.asarray(x_q, dtype=np.int64))

    def gemm_b(self) -> np.ndarray:
        """The weights as the GEMM's B operand ``[groups, K, N/groups]`` (int64)."""
        return trained.weight_matrix(self.layer, self.weight_q)

    def requant_params(self) -> dict[str, object]:
        """Keyword arguments of :func:`~codesign.workloads.intarith.requantize` (per output channel)."""
        return {"mult": self.mult, "shift": self.shift, "zero_point": self.zero_point,
                "clamp_lo": self.clamp_lo, "clamp_hi": self.clamp_hi}

    def gemm_out(self, a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``A [g, M, K]`` -> (``acc`` with bias, requantized ``out``), both ``[g, M, N/g]`` int64."""
        g = self.groups
        acc = intarith.int_gemm(a, self.gemm_b()) + self.bias_q.reshape(g, 1, -1)
        out = intarith.requantize(acc, self.mult.reshape(g, 1, -1), self.shift.reshape(g, 1, -1),
                                  self.zero_point, self.clamp_lo, self.clamp_hi)
        return acc, out

    def output_from_gemm(self, out: np.ndarray, batch: int) -> np.ndarray:
        """The GEMM's output ``[groups, M, N/groups]`` (e.g. read back from the hardware) -> this
        layer's output activation, the next layer's input (NCHW, or ``[batch, N]``)."""
        return trained.raise_output(self.layer, np.asarray(out, dtype=np.int64), batch)

    def forward(self, x_q: np.ndarray) -> tuple[np.ndarray, LayerTrace]:
        """Integer input (NCHW, or ``[batch, features]``) -> integer output in the same layout."""
        a = self.gemm_a(x_q)
        acc, out = self.gemm_out(a)
        y = self.output_from_gemm(out, np.asarray(x_q).shape[0])
        return y, LayerTrace(self.name, a, self.gemm_b(), acc, out)


@dataclass(frozen=True)
class IntRun:
    """Integer inference of a batch: predicted classes, the last layer's outputs, per-layer traces."""

    predictions: np.ndarray
    logits_q: np.ndarray
    traces: tuple[LayerTrace, ...]
    input_density: tuple[float, ...]  # fraction of non-zero inputs of each layer


@dataclass(frozen=True)
class QuantizedNetwork:
    """A trained network pruned and quantized: integer layers, the input quantizer, densities."""

    trained: trained.TrainedNetwork
    network: Network  # the workload model: operand bits and the measured weight densities
    layers: tuple[IntLayer, ...]
    input_scale: float
    input_bits: int
    input_signed: bool

    def quantize_input(self, x: np.ndarray) -> np.ndarray:
        """Float inputs of the first layer -> integers (round half to even, saturated)."""
        lo, hi = intarith.qrange(self.input_bits, self.input_signed)
        return np.clip(np.rint(np.asarray(x, dtype=np.float64) / self.input_scale), lo, hi).astype(np.int64)

    def run(self, x_q: np.ndarray, *, trace: bool = False) -> IntRun:
        """Integer inference of quantized inputs ``x_q`` (from :meth:`quantize_input`)."""
        h = np.asarray(x_q, dtype=np.int64)
        traces = []
        density = []
        for il in self.layers:
            density.append(float(np.count_nonzero(h)) / max(1, h.size))
            h, t = il.forward(h)
            if trace:
                traces.append(t)
        return IntRun(np.argmax(h, axis=1), h, tuple(traces), tuple(density))

    def predict(self, x_raw: np.ndarray) -> np.ndarray:
        """Classes of raw inputs (the data set's units)."""
        return self.run(self.quantize_input(self.trained.prepare(x_raw))).predictions

    def weight_density(self) -> dict[str, float]:
        """Measured fraction of non-zero integer weights per layer (pruning and rounding to 0)."""
        return {il.name: float(np.count_nonzero(il.weight_q)) / il.weight_q.size for il in self.layers}

    def with_measured_density(self, input_density: Sequence[float] | None = None) -> Network:
        """The workload model with the measured weight densities (and input densities if given):
        what the simulator should read. N:M weights keep their pattern."""
        wd = self.weight_density()
        layers = []
        for i, layer in enumerate(self.network.layers):
            w = layer.weights if layer.weights.pattern is Pattern.NM else replace(
                layer.weights, density=min(1.0, wd[layer.name]))
            inputs = layer.inputs if input_density is None else replace(
                layer.inputs, pattern=Pattern.UNSTRUCTURED, n=0, m=0, density=min(1.0, input_density[i]))
            layers.append(replace(layer, weights=w, inputs=inputs))
        return self.network.with_layers(layers)


_FINETUNED: dict[tuple[object, ...], tuple[trained.TrainedNetwork, dict[str, tuple[np.ndarray, np.ndarray]]]] = {}


def layer_bits(network: Network) -> list[tuple[int, int, int, bool | None]]:
    """``(weight_bits, in_bits, out_bits, out_signed)`` per layer from the operands: a layer's
    outputs take the next layer's input bits (``out_signed`` None: the activations' signedness);
    the last layer's, its ``outputs`` operand."""
    layers = network.layers
    out: list[tuple[int, int, int, bool | None]] = []
    for i, layer in enumerate(layers):
        wb = check_bits(f"layer {layer.name!r}: weight bits", layer.weights.bits)
        ib = check_bits(f"layer {layer.name!r}: activation bits", layer.inputs.bits)
        if i + 1 < len(layers):
            ob = layers[i + 1].inputs.bits
            signed: bool | None = None
        else:
            ob = check_bits(f"layer {layer.name!r}: output bits", layer.outputs.bits)
            signed = layer.outputs.signed
        out.append((wb, ib, ob, signed))
    return out


def quantize_network(tn: trained.TrainedNetwork, network: Network | None = None, *, act_signed: bool = True,
                     calibration: np.ndarray | None = None, act_calibration: str = "minmax",
                     weight_calibration: str = "mse", float_outputs: Sequence[np.ndarray] | None = None,
                     finetune_epochs: int = 0, seed: int = 0) -> QuantizedNetwork:
    """Prune and quantize ``tn`` as ``network``'s operands say (default: ``tn.network``, INT8 dense).

    ``calibration``: float inputs of the first layer to calibrate activation scales on (default:
    the data set's training images; ``float_outputs``: ``tn.forward(calibration, collect=True)`` if
    already computed). ``act_signed``: signed or unsigned activations (the
    accelerator's ``act_signed``); the last layer's outputs take its ``outputs`` operand.
    ``finetune_epochs``: after pruning, train the float weights further with their zeros kept
    (the network's ``finetune``, shuffled with ``seed``) before quantizing; calibration then uses
    the new weights. Nothing else draws random numbers.
    """
    net = tn.network if network is None else network
    if [la.name for la in net.layers] != [la.name for la in tn.network.layers]:
        raise WorkloadError(f"network {net.name!r} does not have the layers of trained network {tn.name!r}")
    if not isinstance(act_signed, bool):
        raise WorkloadError(f"act_signed must be true or false, not {act_signed!r}")
    for layer in net.layers:
        if not layer.weights.signed:
            raise WorkloadError(f"layer {layer.name!r}: weights must be signed for symmetric quantization, "
                                f"not unsigned")
    bits = layer_bits(net)
    if isinstance(finetune_epochs, bool) or not isinstance(finetune_epochs, int) or finetune_epochs < 0:
        raise WorkloadError(f"finetune_epochs must be a non-negative integer, not {finetune_epochs!r}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise WorkloadError(f"seed must be a non-negative integer, not {seed!r}")
    if finetune_epochs:
        if tn.finetune is None:
            raise WorkloadError(f"trained network {tn.name!r} cannot be fine-tuned (no training loop)")
        key = (id(tn), tuple((la.name, la.weights.sparsity_label) for la in net.layers), finetune_epochs, seed)
        if key not in _FINETUNED:
            pruned = {la.name: (prune(tn.params[la.name][0], la.weights), tn.params[la.name][1])
                      for la in net.layers}
            _FINETUNED[key] = (tn, dict(tn.finetune(pruned, finetune_epochs, seed)))  # tn kept: its id stays valid
        tn = replace(tn, params=_FINETUNED[key][1])
        float_outputs = None
    if calibration is None:
        calibration = tn.prepare(tn.load_dataset().x_train)
    float_outs = tn.forward(calibration, collect=True) if float_outputs is None else list(float_outputs)
    assert isinstance(float_outs, list) and len(float_outs) == len(net.layers)

    in_bits0 = bits[0][1]
    s_in = act_scale(calibration, in_bits0, act_signed, act_calibration)
    first_scale = s_in
    layers = []
    for i, (layer, (wb, ib, ob, out_signed_last)) in enumerate(zip(net.layers, bits, strict=True)):
        w, b = tn.params[layer.name]
        w_pruned = prune(w, layer.weights)
        s_w = weight_scales(w_pruned, wb, weight_calibration)
        # a channel whose weights all but vanished (a dead ReLU channel after weight decay) would need
        # a bias beyond int32: its scale grows until the bias fits (its weights then round to ~0)
        s_w = np.maximum(s_w, np.abs(b) / (s_in * 0.5 * intarith.INT32_MAX))
        w_q = quantize_weights(w_pruned, s_w, wb)
        out_signed = act_signed if out_signed_last is None else out_signed_last
        act = tn.activation(layer.name)
        s_out = act_scale(float_outs[i], ob, out_signed, act_calibration)
        acc_scale = s_in * s_w
        where = f"layer {layer.name!r}"
        try:
            bias_q = intarith.quantize_bias(b, acc_scale)
            mult, shift = intarith.quantize_multiplier(acc_scale / s_out)
        except WorkloadError as e:
            raise WorkloadError(f"{where}: {e}") from e
        lo, hi = intarith.qrange(ob, out_signed)
        if act in ("relu", "relu6"):
            lo = max(lo, 0)
        if act == "relu6":
            hi = min(hi, round(6.0 / s_out))
        layers.append(IntLayer(layer=layer, activation=act, weight_q=w_q, bias_q=bias_q, mult=mult, shift=shift,
                               zero_point=0, clamp_lo=lo, clamp_hi=hi, in_bits=ib,
                               in_signed=act_signed, weight_bits=wb, out_bits=ob, out_signed=out_signed,
                               in_scale=s_in, weight_scale=s_w, out_scale=s_out))
        s_in = s_out
    qn = QuantizedNetwork(trained=tn, network=net, layers=tuple(layers), input_scale=first_scale,
                          input_bits=in_bits0, input_signed=act_signed)
    return replace(qn, network=qn.with_measured_density())
