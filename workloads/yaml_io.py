"""The YAML network format: read and write a :class:`~codesign.workloads.layers.Network`.

::

    name: tiny
    batch: 1
    input_shape: [3, 32, 32]        # optional
    source: hand-written            # optional
    layers:
      - type: conv                  # conv, linear, matmul, pool or eltwise
        name: conv1
        in_channels: 3
        out_channels: 16
        in_h: 32
        in_w: 32
        kernel: 3                   # int or [h, w]
        stride: 1
        padding: 1                  # int, [h, w] or [top, left, bottom, right]
        weights: {bits: 4, sparsity: "2:4"}
        inputs: {bits: 8, density: 0.6}
      - {type: pool, name: gap, channels: 16, in_h: 32, in_w: 32, op: avg, global: true}
      - {type: linear, name: fc, in_features: 16, out_features: 10}
      - {type: matmul, name: qk, a_shape: [64, 32], b_shape: [32, 64], heads: 4}   # or m, k, n

Layer keys are the dataclass field names of the layer type (``global`` for ``global_``).
Operands (``inputs``, ``weights``, ``outputs``) take ``bits``, ``signed``, ``density`` and
``sparsity`` (``"2:4"`` or a density); omitted ones keep the layer type's default.
"""

from __future__ import annotations

import dataclasses
import enum
from pathlib import Path
from typing import Any

import yaml

from codesign.errors import WorkloadError
from codesign.workloads.layers import Conv2d, Eltwise, Layer, Linear, MatMul, Network, Pool
from codesign.workloads.operand import Operand, Pattern, parse_sparsity

TYPES: dict[str, type[Layer]] = {"conv": Conv2d, "linear": Linear, "matmul": MatMul, "pool": Pool,
                                 "eltwise": Eltwise}
_TYPE_NAMES = {cls: name for name, cls in TYPES.items()}
_ALIASES = {"conv2d": "conv"}
_OPERANDS = ("inputs", "weights", "outputs")
_OPERAND_KEYS = ("bits", "signed", "density", "sparsity")
_NETWORK_KEYS = ("name", "batch", "input_shape", "source", "layers")


def _operand(spec: object, default: Operand, where: str) -> Operand:
    if not isinstance(spec, dict):
        raise WorkloadError(f"{where} must be a mapping of {', '.join(_OPERAND_KEYS)}, not {spec!r}")
    unknown = sorted(set(spec) - set(_OPERAND_KEYS))
    if unknown:
        raise WorkloadError(f"{where}: unknown field {unknown[0]!r} (fields: {', '.join(_OPERAND_KEYS)})")
    if "density" in spec and "sparsity" in spec:
        raise WorkloadError(f"{where}: give density or sparsity, not both")
    fields: dict[str, Any] = {k: spec[k] for k in ("bits", "signed") if k in spec}
    if "sparsity" in spec:
        fields.update(parse_sparsity(spec["sparsity"]))
    elif "density" in spec:
        fields.update(parse_sparsity(spec["density"]) if not isinstance(spec["density"], str)
                      else {"density": spec["density"]})
    return dataclasses.replace(default, **fields)


def _matmul_shapes(spec: dict[str, Any], label: str) -> dict[str, Any]:
    """``a_shape: [m, k]`` and ``b_shape: [k, n]`` (the operands of ``[m, k] @ [k, n]``) -> m, k, n;
    the two K must agree, and agree with ``m``/``k``/``n`` given as well."""
    shapes = {}
    for key in ("a_shape", "b_shape"):
        shape = spec.get(key)
        if not (isinstance(shape, list) and len(shape) == 2
                and all(isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in shape)):
            raise WorkloadError(f"{label}: matmul {key} must be two positive integers [rows, cols], not {shape!r}")
        shapes[key] = shape
    (m, k), (k2, n) = shapes["a_shape"], shapes["b_shape"]
    if k != k2:
        raise WorkloadError(f"{label}: matmul a_shape {shapes['a_shape']} and b_shape {shapes['b_shape']} must "
                            f"agree on K ([m, k] @ [k, n]), not {k} and {k2}")
    out = {key: v for key, v in spec.items() if key not in shapes}
    for key, v in (("m", m), ("k", k), ("n", n)):
        if key in out and out[key] != v:
            raise WorkloadError(f"{label}: matmul {key} {out[key]!r} disagrees with a_shape/b_shape ({key} = {v})")
        out[key] = v
    return out


def _layer(spec: object, index: int, where: str) -> Layer:
    if not isinstance(spec, dict):
        raise WorkloadError(f"{where}: layer {index} must be a mapping, not {spec!r}")
    label = f"{where}: layer {index}" + (f" ({spec['name']!r})" if isinstance(spec.get("name"), str) else "")
    kind = spec.get("type")
    kind = _ALIASES.get(kind, kind) if isinstance(kind, str) else kind
    if kind not in TYPES:
        raise WorkloadError(f"{label}: type must be one of {', '.join(TYPES)}, not {kind!r}")
    cls = TYPES[kind]
    if cls is MatMul and ("a_shape" in spec or "b_shape" in spec):
        spec = _matmul_shapes(spec, label)
    names = [f.name for f in dataclasses.fields(cls)]
    allowed = ["type", *("global" if n == "global_" else n for n in names)]
    unknown = [k for k in spec if k not in allowed]
    if unknown:
        raise WorkloadError(f"{label}: unknown field {unknown[0]!r} for {kind} (fields: {', '.join(allowed[1:])})")
    kwargs: dict[str, Any] = {}
    for key, value in spec.items():
        if key == "type":
            continue
        field = "global_" if key == "global" else key
        if field in _OPERANDS:
            default = next(f.default for f in dataclasses.fields(cls) if f.name == field)
            value = _operand(value, default, f"{label}: {field}")  # type: ignore[arg-type]
        elif isinstance(value, list):
            value = tuple(value)
        kwargs[field] = value
    if "name" not in kwargs:
        raise WorkloadError(f"{label}: name is required")
    try:
        return cls(**kwargs)
    except WorkloadError as e:
        raise WorkloadError(f"{where}: {e}") from None
    except TypeError as e:
        raise WorkloadError(f"{label}: {e}") from None


def network_from_dict(data: object, where: str = "network") -> Network:
    """A Network from the parsed YAML mapping; ``where`` prefixes error messages."""
    if not isinstance(data, dict):
        raise WorkloadError(f"{where}: a network must be a mapping with name and layers, not {type(data).__name__}")
    unknown = [k for k in data if k not in _NETWORK_KEYS]
    if unknown:
        raise WorkloadError(f"{where}: unknown field {unknown[0]!r} (fields: {', '.join(_NETWORK_KEYS)})")
    layers = data.get("layers")
    if not isinstance(layers, list) or not layers:
        raise WorkloadError(f"{where}: layers must be a non-empty list, not {layers!r}")
    built = [_layer(spec, i, where) for i, spec in enumerate(layers)]
    batch = data.get("batch", 1)
    if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
        raise WorkloadError(f"{where}: batch must be a positive integer, not {batch!r}")
    shape = data.get("input_shape", ())
    if not isinstance(shape, (list, tuple)):
        raise WorkloadError(f"{where}: input_shape must be a list of integers, not {shape!r}")
    try:
        return Network(data.get("name", Path(where).stem), tuple(built), batch=batch,
                       input_shape=tuple(shape), source=str(data.get("source", "")))
    except WorkloadError as e:
        raise WorkloadError(f"{where}: {e}") from None


def read_network_yaml(path: str | Path) -> Network:
    """Read a YAML network file."""
    from codesign.safe_yaml import load_yaml_file

    p = Path(path)
    data = load_yaml_file(p, what="network file", error=WorkloadError)
    return network_from_dict(data, p.name)


def _plain(value: object) -> object:
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, tuple):
        if len(set(value)) == 1 and len(value) in (2, 4):
            return _plain(value[0])
        if len(value) == 4 and value[:2] == value[2:]:
            return [_plain(v) for v in value[:2]]
        return [_plain(v) for v in value]
    return value


def _operand_dict(op: Operand) -> dict[str, Any]:
    out: dict[str, Any] = {"bits": op.bits}
    if not op.signed:
        out["signed"] = False
    if op.pattern is Pattern.NM:
        out["sparsity"] = f"{op.n}:{op.m}"
    elif op.density != 1.0:
        out["density"] = op.density
    return out


def network_to_dict(net: Network) -> dict[str, Any]:
    layers = []
    for layer in net.layers:
        cls = type(layer)
        d: dict[str, Any] = {"type": _TYPE_NAMES[cls]}
        for f in dataclasses.fields(layer):
            value = getattr(layer, f.name)
            if f.name in _OPERANDS:
                if value != f.default:
                    d[f.name] = _operand_dict(value)
                continue
            if cls is Pool and getattr(layer, "global_", False) and f.name in ("kernel", "stride", "padding"):
                continue  # implied by global
            d["global" if f.name == "global_" else f.name] = _plain(value)
        layers.append(d)
    out: dict[str, Any] = {"name": net.name, "batch": net.batch}
    if net.input_shape:
        out["input_shape"] = list(net.input_shape)
    if net.source:
        out["source"] = net.source
    out["layers"] = layers
    return out


def write_network_yaml(net: Network) -> str:
    """The YAML text of a network (one flow-style mapping per layer)."""

    class _Dumper(yaml.SafeDumper):
        pass

    def _flow_dict(dumper: yaml.SafeDumper, data: dict) -> yaml.Node:
        return dumper.represent_mapping("tag:yaml.org,2002:map", data.items(), flow_style=True)

    d = network_to_dict(net)
    head = {k: v for k, v in d.items() if k != "layers"}
    text = yaml.safe_dump(head, sort_keys=False, default_flow_style=None, width=120)
    _Dumper.add_representer(dict, _flow_dict)
    body = yaml.dump(d["layers"], Dumper=_Dumper, sort_keys=False, width=200)
    return text + "layers:\n" + "".join(f"  {line}\n" if line else "\n" for line in body.rstrip("\n").split("\n"))
