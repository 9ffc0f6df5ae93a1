"""Top-1 accuracy of a compressed network, computed with the hardware's integer arithmetic.

:func:`accuracy` loads a trained zoo network (``digits_cnn``), applies a preset / weight
sparsity / mixed-precision map and the accelerator's bit-widths (a layer runs at the smaller of
its operand's bits and the accelerator's, as the simulator does), prunes and quantizes the real
weights (:mod:`codesign.workloads.quantize`), runs the integer network on the test images
(bundled, or a ``.npz`` of ``x`` and ``y``) and counts correct classes. It also simulates the
compressed network, with the *measured* weight and activation densities, on the accelerator.

:func:`sweep_accuracy` is the sweep's ``accuracy`` metric: the same computation for a point's
config and a workload, cached per process by (network, per-layer bits and sparsity, signedness).
Everything is deterministic: no random numbers are drawn at all.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from codesign.errors import WorkloadError
from codesign.sim.config import AcceleratorConfig
from codesign.workloads.layers import Network


@dataclass(frozen=True)
class AccuracyResult:
    """Accuracy of one compressed network on one data set (fractions of the test images)."""

    workload: str
    accuracy: float
    float_accuracy: float
    images: int
    correct: int
    float_correct: int
    data: str
    weight_bits: dict[str, int]
    act_bits: dict[str, int]
    act_signed: bool
    weight_sparsity: dict[str, str]
    weight_density: dict[str, float]  # measured non-zero fraction of the integer weights
    input_density: dict[str, float]  # measured non-zero fraction of each layer's integer inputs
    calibration: dict[str, str]
    finetune_epochs: int = 0
    seed: int = 0
    simulated: dict[str, Any] = field(default_factory=dict)
    network: Network | None = field(default=None, compare=False, repr=False)  # with measured densities

    def to_dict(self) -> dict[str, Any]:
        def uniform(d: Mapping[str, Any]) -> Any:
            vals = set(d.values())
            return next(iter(vals)) if len(vals) == 1 else dict(d)

        out: dict[str, Any] = {
            "workload": self.workload,
            "accuracy": self.accuracy,
            "float_accuracy": self.float_accuracy,
            "images": self.images,
            "correct": self.correct,
            "float_correct": self.float_correct,
            "data": self.data,
            "weight_bits": uniform(self.weight_bits),
            "act_bits": uniform(self.act_bits),
            "act_signed": self.act_signed,
            "weight_sparsity": uniform(self.weight_sparsity),
            "weight_density": self.weight_density,
            "input_density": self.input_density,
            "calibration": self.calibration,
            "finetune_epochs": self.finetune_epochs,
            "seed": self.seed,
        }
        out.update(self.simulated)
        return out


def load_data(path: str | Path, *, classes: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``x`` (inputs, the data set's raw units) and ``y`` (integer labels) of a ``.npz`` file."""
    p = Path(path)
    name = p.name
    try:
        with np.load(p, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except FileNotFoundError:
        raise WorkloadError(f"data file {str(path)!r} does not exist") from None
    except (OSError, ValueError) as e:
        raise WorkloadError(f"data file {name!r} is not a readable .npz ({e})") from e
    for key in ("x", "y"):
        if key not in arrays:
            raise WorkloadError(f"data file {name!r} has no array {key!r} (arrays: {', '.join(arrays) or 'none'})")
    x, y = arrays["x"], arrays["y"]
    if x.dtype.kind not in "iuf" or x.ndim < 2 or len(x) == 0:
        raise WorkloadError(f"data file {name!r}: x must be numbers of shape [images, ...], not {x.dtype} "
                            f"of shape {list(x.shape)}")
    if not np.isfinite(x).all():
        raise WorkloadError(f"data file {name!r}: x must be finite numbers, not {x[~np.isfinite(x)].flat[0]!r}")
    if y.ndim != 1 or len(y) != len(x):
        raise WorkloadError(f"data file {name!r}: y must be one label per image ({len(x)}), not shape "
                            f"{list(y.shape)}")
    if y.dtype.kind not in "iu":
        if y.dtype.kind != "f" or not np.all(np.isfinite(y)) or not np.all(y == np.round(y)):
            raise WorkloadError(f"data file {name!r}: y must be integer class labels, not {y.dtype} values")
    y = y.astype(np.int64)
    if classes is not None and (y.min() < 0 or y.max() >= classes):
        bad = int(y[(y < 0) | (y >= classes)][0])
        raise WorkloadError(f"data file {name!r}: y must be class labels from 0 to {classes - 1}, not {bad}")
    return x, y


def effective_network(network: Network, config: AcceleratorConfig) -> Network:
    """Each layer at the smaller of its operand bits and the accelerator's (the simulator's rule);
    activation signedness from the accelerator. The last layer's outputs keep their operand."""
    def one(layer: Any) -> Any:
        return replace(layer,
                       weights=layer.weights.with_bits(min(layer.weights.bits, config.weight_bits),
                                                       config.weight_signed and layer.weights.signed),
                       inputs=layer.inputs.with_bits(min(layer.inputs.bits, config.act_bits), config.act_signed))

    return network.map_layers(one)


_FLOAT: dict[tuple[str, str], tuple[int, int]] = {}
_INT: dict[Any, tuple[Any, ...]] = {}
_DATA: dict[str, tuple[Any, np.ndarray, list[np.ndarray]]] = {}  # name -> (dataset, calibration, float outs)


def _bundled(tn: Any) -> tuple[Any, np.ndarray, list[np.ndarray]]:
    """The trained network's data set, its calibration inputs and their float layer outputs (once)."""
    if tn.name not in _DATA:
        ds = tn.load_dataset()
        calib = tn.prepare(ds.x_train)
        _DATA[tn.name] = (ds, calib, tn.forward(calib, collect=True))
    return _DATA[tn.name]


def _signature(network: Network, act_signed: bool, data_key: str, calibration: tuple[str, str]) -> Any:
    layers = tuple((la.name, la.weights.bits, la.weights.signed, la.inputs.bits, la.outputs.bits, la.outputs.signed,
                    la.weights.pattern.value, la.weights.density, la.weights.n, la.weights.m)
                   for la in network.layers)
    return (network.name, layers, act_signed, data_key, calibration)


def _evaluate(network: Network, act_signed: bool, data: str | Path | None, act_calibration: str,
              weight_calibration: str, finetune_epochs: int = 0, seed: int = 0) -> tuple[Any, ...]:
    """(qn, run, correct, images, float_correct, data label), cached per process."""
    from codesign.workloads import quantize, trained

    tn = trained.get(network.name)
    data_key = str(Path(data).resolve()) if data is not None else "bundled"
    key = (_signature(network, act_signed, data_key, (act_calibration, weight_calibration)), finetune_epochs, seed)
    hit = _INT.get(key)
    if hit is not None:
        return hit
    ds, calib, calib_outs = _bundled(tn)
    if data is None:
        x_raw, y = ds.x_test, ds.y_test
        label = f"{ds.name} test split" if ds.name else "bundled test split"
    else:
        classes = tn.network.layers[-1].gemm(1).n  # type: ignore[union-attr]
        x_raw, y = load_data(data, classes=classes)
        label = Path(data).name
    x = tn.prepare(x_raw)
    fkey = (tn.name, data_key)
    if fkey not in _FLOAT:
        logits = tn.forward(x)
        _FLOAT[fkey] = (int(np.sum(np.asarray(logits).argmax(axis=1) == y)), len(y))
    qn = quantize.quantize_network(tn, network, act_signed=act_signed, calibration=calib,
                                   float_outputs=calib_outs, act_calibration=act_calibration,
                                   weight_calibration=weight_calibration, finetune_epochs=finetune_epochs,
                                   seed=seed)
    run = qn.run(qn.quantize_input(x))
    correct = int(np.sum(run.predictions == y))
    out = (qn, run, correct, len(y), _FLOAT[fkey][0], label)
    if len(_INT) > 4096:
        _INT.clear()
    _INT[key] = out
    return out


def accuracy(workload: str | Network = "digits_cnn", config: AcceleratorConfig | None = None, *,
             preset: str | None = None, weight_bits: int | None = None, act_bits: int | None = None,
             sparsity: str | float | None = None, mixed: Any = None, data: str | Path | None = None,
             act_calibration: str = "minmax", weight_calibration: str = "mse", finetune_epochs: int = 0,
             seed: int = 0, simulate: bool = True) -> AccuracyResult:
    """Top-1 accuracy of a trained zoo network compressed as asked, in integer arithmetic.

    ``weight_bits`` / ``act_bits`` set the accelerator's bit-widths (``config``'s otherwise);
    ``preset`` / ``sparsity`` / ``mixed`` act on the network's operands as in ``simulate``.
    ``data``: a ``.npz`` with ``x`` (raw inputs) and ``y`` (labels); default the bundled test split.
    ``finetune_epochs``: masked fine-tuning of the pruned float weights before quantization (0: none,
    pure post-training compression), its batches shuffled with ``seed``: same inputs and seed, same
    numbers.
    """
    from codesign.workloads import presets, quantize, trained

    name = workload.name if isinstance(workload, Network) else str(workload)
    tn = trained.get(name)
    net = workload if isinstance(workload, Network) else tn.network
    if preset is not None or sparsity is not None or mixed is not None:
        net = presets.apply(net, preset=preset, sparsity=None if sparsity is None else str(sparsity), mixed=mixed)
    cfg = config or AcceleratorConfig()
    if weight_bits is not None:
        cfg = cfg.replace(weight_bits=quantize.check_bits("weight_bits", weight_bits))
    if act_bits is not None:
        cfg = cfg.replace(act_bits=quantize.check_bits("act_bits", act_bits))
    if not cfg.weight_signed:
        raise WorkloadError("weight_signed must be true for symmetric weight quantization, not false")
    eff = effective_network(net, cfg)
    qn, run, correct, images, float_correct, label = _evaluate(eff, cfg.act_signed, data, act_calibration,
                                                               weight_calibration, finetune_epochs, seed)
    names = [la.name for la in eff.layers]
    measured = qn.with_measured_density(run.input_density)
    simulated: dict[str, Any] = {}
    if simulate:
        from codesign.sim.engine import simulate_network

        s = simulate_network(measured, cfg, timing="native", engine="simpy").summary()
        simulated = {k: s[k] for k in ("cycles", "latency_ms", "energy_pj")}
    return AccuracyResult(
        workload=name, accuracy=correct / images, float_accuracy=float_correct / images, images=images,
        correct=correct, float_correct=float_correct, data=label,
        weight_bits={n: il.weight_bits for n, il in zip(names, qn.layers, strict=True)},
        act_bits={n: il.in_bits for n, il in zip(names, qn.layers, strict=True)},
        act_signed=cfg.act_signed,
        weight_sparsity={la.name: la.weights.sparsity_label for la in eff.layers},
        weight_density={k: round(v, 6) for k, v in qn.weight_density().items()},
        input_density={n: round(d, 6) for n, d in zip(names, run.input_density, strict=True)},
        calibration={"weights": weight_calibration, "activations": act_calibration},
        finetune_epochs=finetune_epochs, seed=seed,
        simulated=simulated, network=measured,
    )


@dataclass(frozen=True)
class Reference:
    """The integer reference of a few test images: what a whole-network hardware run must equal.

    ``qnet.layers[i]`` holds layer i's integer weights, int32 bias and requantization parameters;
    ``run.traces[i]`` its GEMM operands ``a [g, M, K]``, ``b [g, K, N/g]``, the sums ``acc`` (bias
    added) and the requantized ``out [g, M, N/g]``; ``run.predictions`` the classes."""

    qnet: Any  # codesign.workloads.quantize.QuantizedNetwork
    x_q: np.ndarray  # the first layer's integer inputs [images, C, H, W]
    labels: np.ndarray
    run: Any  # codesign.workloads.quantize.IntRun (with traces)

    def gemm_operands(self) -> list[tuple[Any, Any]]:
        """``(layer, GemmOperands)`` per layer (the pairs ``hdl.verify.verify_layers`` takes): the
        integer A and B of this run, the layer at the batch of images. ``GemmOperands.c`` is the raw
        sum without bias; with the bias and requantization the outputs are ``run.traces[i].out``."""
        from codesign.workloads.tensors import GemmOperands

        batch = len(self.x_q)
        return [(il.layer, GemmOperands(a=t.a, b=t.b, shape=il.layer.gemm(batch)))  # type: ignore[arg-type]
                for il, t in zip(self.qnet.layers, self.run.traces, strict=True)]


def integer_reference(workload: str = "digits_cnn", config: AcceleratorConfig | None = None, *, images: int = 8,
                      preset: str | None = None, sparsity: str | float | None = None, start: int = 0) -> Reference:
    """The integer network of ``accuracy`` (same bits, pruning and calibration) run on test images
    ``start .. start + images`` with per-layer traces."""
    from codesign.workloads import presets, quantize, trained

    if isinstance(images, bool) or not isinstance(images, int) or images < 1:
        raise WorkloadError(f"images must be a positive integer, not {images!r}")
    tn = trained.get(workload)
    net = tn.network
    if preset is not None or sparsity is not None:
        net = presets.apply(net, preset=preset, sparsity=None if sparsity is None else str(sparsity))
    cfg = config or AcceleratorConfig()
    eff = effective_network(net, cfg)
    ds, calib, calib_outs = _bundled(tn)
    if start + images > len(ds.x_test):
        raise WorkloadError(f"images must be at most {len(ds.x_test) - start} from image {start}, not {images}")
    qn = quantize.quantize_network(tn, eff, act_signed=cfg.act_signed, calibration=calib, float_outputs=calib_outs)
    x_q = qn.quantize_input(tn.prepare(ds.x_test[start : start + images]))
    return Reference(qn, x_q, ds.y_test[start : start + images], qn.run(x_q, trace=True))


def check_workloads(networks: Mapping[str, Network]) -> None:
    """Raise unless every network has trained weights (the sweep's ``accuracy`` metric needs them)."""
    from codesign.workloads import trained

    for label, net in networks.items():
        if not trained.has_weights(net.name):
            raise WorkloadError(f"pareto metric 'accuracy' needs trained weights; workload {label!r} has none "
                                f"(trained: {', '.join(trained.names())})")


def sweep_accuracy(network: Network, config: AcceleratorConfig) -> float:
    """The sweep's ``accuracy`` column for one (point, workload); NaN where it is not defined
    (unsigned weights, bits outside 2..16)."""
    from codesign.workloads.quantize import MAX_BITS, MIN_BITS

    eff = effective_network(network, config)
    bits = [b for la in eff.layers for b in (la.weights.bits, la.inputs.bits)]
    if not config.weight_signed or not all(MIN_BITS <= b <= MAX_BITS for b in bits):
        return math.nan
    _, _, correct, images, _, _ = _evaluate(eff, config.act_signed, None, "minmax", "mse")
    return correct / images
