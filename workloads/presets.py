"""Compression presets: quantization and sparsity applied to a network by name, as data.

A preset sets the bit-width (and signedness) of weights and activations, and optionally a weight
sparsity. :func:`apply` layers three sources, later ones winning:

1. ``preset``: a name from :data:`PRESETS` (``int8``, ``w4a8``, ``w4a16``, ``binary``, ...);
2. ``sparsity`` (weights: ``"2:4"``, ``"0.3"``, ``"dense"``) and ``act_density`` (inputs);
3. ``mixed``: a per-layer map (YAML file or dict) of layer name or glob pattern -> bits.

Weights are the stored parameters of Conv2d and Linear layers. A MatMul's second operand is an
activation (keys, values), so weight presets never sparsify it: it takes the activation format.
Pool and Eltwise layers take the activation format on their inputs.

Mixed-precision map (YAML)::

    layers:                  # or the mapping itself at the top level
      conv_stem: 8           # an int: weight bits
      "block*.dw": {weights: 4, inputs: 8}
      classifier: {weights: {bits: 8, sparsity: "2:4"}}
"""

from __future__ import annotations

import fnmatch
import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from codesign.errors import WorkloadError
from codesign.workloads.layers import Conv2d, Layer, Linear, MatMul, Network
from codesign.workloads.operand import Operand, parse_sparsity


@dataclass(frozen=True)
class Preset:
    """Bits of weights and activations, and an optional weight sparsity spec."""

    name: str
    description: str
    weight_bits: int | None = None
    act_bits: int | None = None
    weight_signed: bool = True
    weight_sparsity: str | None = None


_PRESET_LIST = (
    Preset("int8", "INT8 weights and activations everywhere", 8, 8),
    Preset("w8a8", "same as int8", 8, 8),
    Preset("w4a8", "4-bit weights, 8-bit activations", 4, 8),
    Preset("w4a16", "weight-only 4-bit quantization with 16-bit activations (LLMs)", 4, 16),
    Preset("w8a16", "weight-only 8-bit quantization with 16-bit activations (LLMs)", 8, 16),
    Preset("w2a8", "2-bit weights, 8-bit activations", 2, 8),
    Preset("binary", "binary weights (+-1 in 1 bit), 8-bit activations", 1, 8),
    Preset("ternary", "ternary weights (-1, 0, +1 in 2 bits), 8-bit activations", 2, 8),
    Preset("2:4", "INT8 with 2:4 structured weight sparsity", 8, 8, weight_sparsity="2:4"),
    Preset("w4a8-2:4", "4-bit weights with 2:4 structured sparsity, 8-bit activations", 4, 8,
           weight_sparsity="2:4"),
    Preset("sparse-0.5", "INT8 with unstructured weight density 0.5", 8, 8, weight_sparsity="0.5"),
    Preset("sparse-0.3", "INT8 with unstructured weight density 0.3", 8, 8, weight_sparsity="0.3"),
    Preset("sparse-0.1", "INT8 with unstructured weight density 0.1", 8, 8, weight_sparsity="0.1"),
)

PRESETS_BY_NAME: dict[str, Preset] = {p.name: p for p in _PRESET_LIST}
PRESETS: dict[str, str] = {p.name: p.description for p in _PRESET_LIST}

_OPERANDS = ("inputs", "weights", "outputs")


def get_preset(name: str) -> Preset:
    """The :class:`Preset` called ``name`` (case-insensitive)."""
    key = str(name).strip().lower()
    if key not in PRESETS_BY_NAME:
        raise WorkloadError(f"unknown preset {name!r} (choices: {', '.join(PRESETS)})")
    return PRESETS_BY_NAME[key]


def _has_weights(layer: Layer) -> bool:
    return isinstance(layer, (Conv2d, Linear))


def _set(layer: Layer, **ops: Operand) -> Layer:
    return replace(layer, **ops) if ops else layer


def _apply_preset(layer: Layer, p: Preset) -> Layer:
    ops: dict[str, Operand] = {}
    if p.act_bits is not None:
        ops["inputs"] = layer.inputs.with_bits(p.act_bits)
        if not _has_weights(layer):  # MatMul / Eltwise: the second operand is an activation
            ops["weights"] = layer.weights.with_bits(p.act_bits)
    if _has_weights(layer):
        w = layer.weights
        if p.weight_bits is not None:
            w = w.with_bits(p.weight_bits, p.weight_signed)
        if p.weight_sparsity is not None:
            w = w.with_sparsity(p.weight_sparsity)
        ops["weights"] = w
    return _set(layer, **ops)


def _check_density(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value) or not 0 <= value <= 1:
        raise WorkloadError(f"{name} must be a number from 0 to 1, not {value!r}")
    return float(value)


def _load_mixed(mixed: str | Path | Mapping[str, Any]) -> dict[str, Any]:
    where = "mixed-precision map"
    if isinstance(mixed, (str, Path)):
        path = Path(mixed)
        where = str(path.name)
        from codesign.safe_yaml import load_yaml_file

        data = load_yaml_file(path, what="mixed-precision map", error=WorkloadError)
    else:
        data = mixed
    if not isinstance(data, Mapping):
        raise WorkloadError(f"{where} must be a mapping of layer name -> bits, not {type(data).__name__}")
    if "layers" in data:
        extra = set(data) - {"layers"}
        if extra:
            raise WorkloadError(f"{where}: unknown field {sorted(extra)[0]!r} (expected 'layers')")
        data = data["layers"]
        if not isinstance(data, Mapping):
            raise WorkloadError(f"{where}: layers must be a mapping of layer name -> bits, not {data!r}")
    return {str(k): v for k, v in data.items()}


def _operand_override(op: Operand, spec: object, where: str) -> Operand:
    if isinstance(spec, bool) or not isinstance(spec, (int, Mapping)):
        raise WorkloadError(f"{where} must be bits or a mapping of bits/signed/density/sparsity, not {spec!r}")
    if isinstance(spec, int):
        return op.with_bits(spec)
    unknown = set(spec) - {"bits", "signed", "density", "sparsity"}
    if unknown:
        raise WorkloadError(f"{where}: unknown field {sorted(unknown)[0]!r} "
                            "(expected bits, signed, density, sparsity)")
    if "bits" in spec or "signed" in spec:
        op = op.with_bits(spec.get("bits", op.bits), spec.get("signed"))
    if "sparsity" in spec:
        op = op.with_sparsity(spec["sparsity"])
    if "density" in spec:
        op = op.with_sparsity(_check_density(f"{where}.density", spec["density"]))
    return op


def _layer_override(layer: Layer, spec: object, key: str) -> Layer:
    where = f"mixed-precision entry {key!r}"
    if isinstance(spec, bool) or not isinstance(spec, (int, Mapping)):
        raise WorkloadError(f"{where} must be weight bits or a mapping of operand -> bits, not {spec!r}")
    if isinstance(spec, int):
        spec = {"weights": spec} if _has_weights(layer) else {"inputs": spec}
    unknown = set(spec) - set(_OPERANDS)
    if unknown:
        raise WorkloadError(f"{where}: unknown operand {sorted(unknown)[0]!r} (expected inputs, weights, outputs)")
    ops = {name: _operand_override(getattr(layer, name), spec[name], f"{key}.{name}") for name in spec}
    return _set(layer, **ops)


def apply(net: Network, *, preset: str | None = None, sparsity: str | None = None,
          act_density: float | None = None, mixed: str | Path | dict | None = None) -> Network:
    """``net`` with a compression preset, weight sparsity, activation density and per-layer overrides."""
    layers = list(net.layers)
    if preset is not None:
        p = get_preset(preset)
        layers = [_apply_preset(layer, p) for layer in layers]
    if sparsity is not None:
        fields = parse_sparsity(sparsity)
        layers = [replace(layer, weights=replace(layer.weights, **fields)) if _has_weights(layer) else layer
                  for layer in layers]
    if act_density is not None:
        d = _check_density("act_density", act_density)
        layers = [replace(layer, inputs=layer.inputs.with_sparsity(d))
                  if isinstance(layer, (Conv2d, Linear, MatMul)) else layer for layer in layers]
    if mixed is not None:
        overrides = _load_mixed(mixed)
        for key, spec in overrides.items():
            hits = [i for i, layer in enumerate(layers) if layer.name == key or fnmatch.fnmatchcase(layer.name, key)]
            if not hits:
                raise WorkloadError(f"mixed-precision map names layer {key!r}, which is not in network {net.name!r}")
            for i in hits:
                layers[i] = _layer_override(layers[i], spec, key)
    return net.with_layers(layers)
