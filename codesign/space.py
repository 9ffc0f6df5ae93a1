"""A design space as data: named axes over :class:`AcceleratorConfig` fields, constraints, workloads.

A space file (YAML) looks like::

    workloads: [mobilenet_v2, {name: resnet18, preset: w4a8, sparsity: "2:4"}]
    base: {input_sram_bytes: 32768}          # fixed AcceleratorConfig fields (optional)
    axes:
      dataflow: [ws, os]                     # a list of values
      rows: {start: 8, stop: 64, mul: 2}     # 8, 16, 32, 64 (geometric; stop is inclusive)
      cols: {start: 8, stop: 32, step: 8}    # 8, 16, 24, 32 (arithmetic; stop is inclusive)
      weight_bits: {values: [4, 8]}
    constraints: {max_pes: 1024, max_area_mm2: 2.0, max_sram_bytes: 262144}
    sample: {n: 500, seed: 1}                # optional: a seeded random subset of the points
    pareto: [latency_ms, energy_pj]          # optional: metrics of the Pareto front

Every axis is an :class:`AcceleratorConfig` field; the results table has one column per axis
under the same name. A *point* is one element of the Cartesian product of the axes, numbered
row-major in the order the axes are written (``point`` = its index); the numbering does not
depend on constraints or sampling, so the same space always gives the same ids.
"""

from __future__ import annotations

import enum
import hashlib
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from codesign.errors import CodesignError, ConfigError
from codesign.sim.config import AcceleratorConfig, load_yaml_mapping

if TYPE_CHECKING:
    import numpy as np

    from codesign.workloads.layers import Network

SECTIONS = ("workloads", "base", "axes", "constraints", "sample", "pareto", "engine", "fpga", "clip_bits",
            "include_model_only")
CONSTRAINTS = ("max_pes", "max_area_mm2", "max_sram_bytes")
WORKLOAD_KEYS = ("name", "preset", "sparsity", "act_density", "mixed", "batch", "label", "network")
METRICS = ("cycles", "latency_ms", "energy_pj", "energy_uj", "edp", "area_mm2", "utilization",
           "peak_dram_bytes_per_cycle", "stall_cycles", "dram_bytes")
ACCURACY_METRICS = ("accuracy",)  # top-1 of the integer network (codesign.accuracy), maximized
FPGA_METRICS = ("fpga_max_util", "fpga_luts", "fpga_ffs", "fpga_dsps", "fpga_brams", "fpga_latency_us")
MAX_ENUMERATED = 20_000_000  # points a space may have (they are numbered and filtered with numpy)
MAX_AXIS_VALUES = 100_000  # values one axis may have (each is validated as an AcceleratorConfig field)
ENGINES = ("closed_form", "simpy")
ENGINE_ALIASES = {"analytic": "closed_form", "closed-form": "closed_form"}


def canonical_engine(engine: object, *, where: str = "") -> str:
    """``closed_form`` or ``simpy`` (``analytic`` is accepted as another name of ``closed_form``)."""
    name = ENGINE_ALIASES.get(engine, engine) if isinstance(engine, str) else engine
    if name not in ENGINES:
        pre = f"{where}: " if where else ""
        raise ConfigError(f"{pre}engine must be closed_form (alias analytic) or simpy, not {engine!r}")
    return str(name)


def _plain(value: Any) -> Any:
    """Enum members as their value (``Dataflow.WS`` -> ``"ws"``); everything else unchanged."""
    return value.value if isinstance(value, enum.Enum) else value


def _is_number(v: object) -> bool:
    return not isinstance(v, bool) and isinstance(v, (int, float)) and math.isfinite(v)


def _clean(v: float) -> int | float:
    """Round away float noise of ``start + i * step`` (0.1 + 0.2 -> 0.3)."""
    if isinstance(v, int):
        return v
    return float(f"{v:.12g}")


def expand_axis(name: str, spec: Any) -> tuple[Any, ...]:
    """The values of one axis: a list, ``{values: [...]}``, ``{start, stop, step}`` or
    ``{start, stop, mul}`` (``stop`` inclusive). Raises :class:`ConfigError` naming the axis."""
    where = f"axes.{name}"
    if isinstance(spec, Mapping):
        keys = set(spec)
        if keys == {"values"}:
            return expand_axis(name, spec["values"])
        allowed = {"start", "stop", "step", "mul"}
        if not keys <= allowed or not {"start", "stop"} <= keys or ("step" in keys and "mul" in keys):
            raise ConfigError(
                f"{where} must be a list, {{values: [...]}}, {{start, stop, step}} or {{start, stop, mul}}, "
                f"not {dict(spec)!r}"
            )
        start, stop = spec["start"], spec["stop"]
        for key in ("start", "stop"):
            if not _is_number(spec[key]):
                raise ConfigError(f"{where}.{key} must be a number, not {spec[key]!r}")
        values: list[Any] = []
        if "mul" in spec:
            mul = spec["mul"]
            if not _is_number(mul) or mul <= 1:
                raise ConfigError(f"{where}.mul must be a number greater than 1, not {mul!r}")
            if start <= 0:
                raise ConfigError(f"{where}.start must be positive for a geometric range, not {start!r}")
            ratio = math.log(stop / start) / math.log(mul) if stop >= start else -1.0
            _check_count(where, ratio + 1, spec)
            count = math.floor(ratio + 1e-9) + 1 if stop >= start else 0
            values = [v for v in (_clean(start * mul**i) for i in range(count + 1)) if v <= stop * (1 + 1e-12)]
        else:
            step = spec.get("step", 1)
            if not _is_number(step) or step <= 0:
                raise ConfigError(f"{where}.step must be a positive number, not {step!r}")
            ratio = (stop - start) / step if stop >= start else -1.0
            _check_count(where, ratio + 1, spec)
            count = math.floor(ratio + 1e-9) + 1 if stop >= start else 0
            values = [_clean(start + i * step) for i in range(count)]
        if not values:
            raise ConfigError(f"{where} must be a non-empty range, not {dict(spec)!r}")
        return tuple(values)
    if isinstance(spec, (list, tuple)):
        if not spec:
            raise ConfigError(f"{where} must be a non-empty list or range, not {list(spec)!r}")
        _check_count(where, len(spec), "a list")
        return tuple(spec)
    if isinstance(spec, (str, int, float, bool)):
        return (spec,)
    raise ConfigError(f"{where} must be a list or a range, not {spec!r}")


def _check_count(where: str, count: float, spec: Any) -> None:
    if not count <= MAX_AXIS_VALUES:  # also inf and nan
        shown = dict(spec) if isinstance(spec, Mapping) else spec
        raise ConfigError(f"{where} must have at most {MAX_AXIS_VALUES:,} values, not {count:,.0f} "
                          f"({shown if isinstance(shown, str) else repr(shown)})")


@dataclass(frozen=True)
class Constraints:
    """Upper bounds a design point must meet; ``None`` means no bound."""

    max_pes: int | None = None
    max_area_mm2: float | None = None
    max_sram_bytes: int | None = None

    def __post_init__(self) -> None:
        for name in ("max_pes", "max_sram_bytes"):
            v = getattr(self, name)
            if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 1):
                raise ConfigError(f"constraints.{name} must be a positive integer, not {v!r}")
        v = self.max_area_mm2
        if v is not None and (not _is_number(v) or v <= 0):
            raise ConfigError(f"constraints.max_area_mm2 must be a positive number, not {v!r}")

    @classmethod
    def from_dict(cls, data: Any) -> Constraints:
        if data is None:
            return cls()
        if isinstance(data, Constraints):
            return data
        if not isinstance(data, Mapping):
            raise ConfigError(f"constraints must be a mapping ({', '.join(CONSTRAINTS)}), not {data!r}")
        for key in data:
            if key not in CONSTRAINTS:
                raise ConfigError(f"unknown constraint {key!r} (constraints: {', '.join(CONSTRAINTS)})")
        return cls(**data)

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in CONSTRAINTS if getattr(self, k) is not None}


@dataclass(frozen=True)
class WorkloadSpec:
    """A workload of the sweep: a zoo name or a file, with optional compression presets."""

    name: str
    preset: str | None = None
    sparsity: str | float | None = None
    act_density: float | None = None
    mixed: Any = None
    batch: int | None = None
    label: str | None = None
    #: an in-memory network in the YAML network format (``codesign.workloads.yaml_io``): the
    #: workload is this network, ``name`` only names it
    network: Mapping[str, Any] | None = field(default=None, hash=False)

    def __post_init__(self) -> None:
        if self.network is not None and not isinstance(self.network, Mapping):
            raise ConfigError(f"workload network must be a mapping in the YAML network format, not "
                              f"{type(self.network).__name__}")
        if not isinstance(self.name, str) or not self.name:
            raise ConfigError(f"workload name must be a non-empty string, not {self.name!r}")
        if self.batch is not None and (isinstance(self.batch, bool) or not isinstance(self.batch, int)
                                       or self.batch < 1):
            raise ConfigError(f"workload batch must be a positive integer, not {self.batch!r}")
        if self.label is not None and (not isinstance(self.label, str) or not self.label):
            raise ConfigError(f"workload label must be a non-empty string, not {self.label!r}")

    @classmethod
    def from_any(cls, data: Any, *, base_dir: Path | None = None) -> WorkloadSpec:
        from codesign.workloads.layers import Network

        if isinstance(data, WorkloadSpec):
            spec = data
        elif isinstance(data, Network):
            from codesign.workloads.yaml_io import network_to_dict

            spec = cls(name=data.name, network=network_to_dict(data))
        elif isinstance(data, str):
            spec = cls(name=data)
        elif isinstance(data, Mapping):
            for key in data:
                if key not in WORKLOAD_KEYS:
                    raise ConfigError(f"unknown workload key {key!r} (keys: {', '.join(WORKLOAD_KEYS)})")
            if "name" not in data:
                raise ConfigError(f"a workload mapping must have a name, not {dict(data)!r}")
            spec = cls(**data)
        else:
            raise ConfigError(f"a workload must be a name or a mapping with a name, not {data!r}")
        if spec.network is None and base_dir is not None and \
                Path(spec.name).suffix.lower() in (".csv", ".yaml", ".yml", ".onnx"):
            p = Path(spec.name)
            if not p.is_absolute() and (base_dir / p).exists():
                from dataclasses import replace

                spec = replace(spec, name=str(base_dir / p), label=spec.label or spec.display_name)
        return spec

    @property
    def modifiers(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in ("preset", "sparsity", "act_density", "mixed")
                if getattr(self, k) is not None}

    @property
    def display_name(self) -> str:
        """The label in the ``workload`` column: ``resnet18[w4a8,2:4]``."""
        if self.label:
            return self.label
        base = Path(self.name).stem if Path(self.name).suffix and self.network is None else self.name
        mods = [str(v) if k != "act_density" else f"act{v}" for k, v in self.modifiers.items()]
        if self.batch and self.batch != 1:
            mods.append(f"b{self.batch}")
        return f"{base}[{','.join(mods)}]" if mods else base

    def load(self) -> Network:
        """The network, with presets applied."""
        from codesign.api import load_workload

        if self.network is not None:
            from codesign.workloads.yaml_io import network_from_dict

            net = network_from_dict(dict(self.network), where=f"network {self.name!r}")
            if self.batch is not None:
                net = net.with_batch(self.batch)
        else:
            net = load_workload(self.name, batch=self.batch)
        mods = self.modifiers
        if mods:
            try:
                from codesign.workloads import presets
            except ModuleNotFoundError as e:  # pragma: no cover - presets are part of the package
                raise ConfigError(f"workload {self.name!r}: presets need codesign.workloads.presets ({e})") from e
            net = presets.apply(net, **mods)
        return net

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name}
        for k in WORKLOAD_KEYS[1:]:
            if getattr(self, k) is not None:
                out[k] = dict(self.network) if k == "network" else getattr(self, k)  # type: ignore[arg-type]
        return out



@dataclass(frozen=True)
class DesignSpace:
    """Named axes (AcceleratorConfig fields -> values), a base config, constraints, workloads."""

    axes: Mapping[str, Sequence[Any]]
    workloads: tuple[WorkloadSpec, ...] = ()
    base: Mapping[str, Any] = field(default_factory=dict)
    constraints: Constraints = field(default_factory=Constraints)
    sample: int | None = None
    seed: int = 0
    pareto: tuple[str, ...] = ("latency_ms", "energy_pj")
    engine: str = "closed_form"
    fpga: Mapping[str, Any] | None = None  # {target, pnr}: FPGA resources (and Fmax) per point
    # a workload operand wider than a point's array bits: an error (false) or run at the array's bits (true)
    clip_bits: bool = False
    # Pareto fronts over every point (true) or only over points codesign generate builds (false)
    include_model_only: bool = False
    source: str = "space"  # the file name (or "space") used in error messages

    def __post_init__(self) -> None:
        where = self.source
        names = AcceleratorConfig.field_names()
        if not isinstance(self.axes, Mapping) or not self.axes:
            raise ConfigError(f"{where}: axes must be a non-empty mapping of AcceleratorConfig fields, "
                              f"not {self.axes!r}")
        if not isinstance(self.base, Mapping):
            raise ConfigError(f"{where}: base must be a mapping of AcceleratorConfig fields, not {self.base!r}")
        axes: dict[str, tuple[Any, ...]] = {}
        expanded: dict[str, tuple[Any, ...]] = {}
        for name, spec in self.axes.items():
            if not isinstance(name, str) or name not in names:
                raise ConfigError(
                    f"{where}: unknown axis {name!r} (axes are AcceleratorConfig fields: {', '.join(names)})"
                )
            try:
                expanded[name] = expand_axis(name, spec)
            except ConfigError as e:
                raise ConfigError(f"{where}: {e}") from e
        size = math.prod(len(v) for v in expanded.values())
        if size > MAX_ENUMERATED:  # before any value is validated or any point numbered
            raise ConfigError(f"{where}: the axes must span at most {MAX_ENUMERATED:,} points, not {size:,}; "
                              f"narrow the axes or sample a smaller space")
        for name, values in expanded.items():
            plain = []
            for v in values:
                try:
                    cfg = AcceleratorConfig.from_dict({**self.base, name: v}, where="base")
                except ConfigError as e:
                    raise ConfigError(f"{where}: axes.{name}: {e}") from e
                plain.append(_plain(getattr(cfg, name)))
            if len(set(plain)) != len(plain):
                dup = next(v for i, v in enumerate(plain) if v in plain[:i])
                raise ConfigError(f"{where}: axes.{name} must not repeat a value, not {dup!r} twice")
            axes[name] = tuple(plain)
        object.__setattr__(self, "axes", axes)
        for key in self.base:
            if key in axes:
                raise ConfigError(f"{where}: base.{key} is also an axis; give it in one place only")
        try:
            base_cfg = AcceleratorConfig.from_dict(dict(self.base), where="base")
        except ConfigError as e:
            raise ConfigError(f"{where}: {e}") from e
        object.__setattr__(self, "base", {k: _plain(getattr(base_cfg, k)) for k in self.base})
        try:
            object.__setattr__(self, "constraints", Constraints.from_dict(self.constraints))
            wl = tuple(WorkloadSpec.from_any(w) for w in self.workloads)
        except ConfigError as e:
            raise ConfigError(f"{where}: {e}") from e
        object.__setattr__(self, "workloads", wl)
        labels = [w.display_name for w in wl]
        for i, lab in enumerate(labels):
            if lab in labels[:i]:
                raise ConfigError(f"{where}: workload {lab!r} appears twice; give one a label")
        if self.sample is not None and (isinstance(self.sample, bool) or not isinstance(self.sample, int)
                                        or self.sample < 1):
            raise ConfigError(f"{where}: sample must be a positive integer, not {self.sample!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ConfigError(f"{where}: seed must be a non-negative integer, not {self.seed!r}")
        object.__setattr__(self, "pareto", parse_metrics(self.pareto, source=where))
        object.__setattr__(self, "fpga", parse_fpga(self.fpga, source=where))
        if any(m.startswith("fpga_") for m in self.pareto) and self.fpga is None:
            raise ConfigError(f"{where}: pareto metric {next(m for m in self.pareto if m.startswith('fpga_'))!r} "
                              f"needs an fpga section (fpga: TARGET)")
        object.__setattr__(self, "engine", canonical_engine(self.engine, where=where))
        for flag in ("clip_bits", "include_model_only"):
            if not isinstance(getattr(self, flag), bool):
                raise ConfigError(f"{where}: {flag} must be true or false, not {getattr(self, flag)!r}")

    # -- construction ----------------------------------------------------------------------
    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, source: str = "space", base_dir: Path | None = None
                  ) -> DesignSpace:
        if not isinstance(data, Mapping):
            raise ConfigError(f"{source}: a design space must be a mapping, not {type(data).__name__}")
        for key in data:
            if key not in SECTIONS:
                raise ConfigError(f"{source}: unknown section {key!r} (sections: {', '.join(SECTIONS)})")
        if "axes" not in data:
            raise ConfigError(f"{source}: axes must be a non-empty mapping of AcceleratorConfig fields, "
                              f"not missing")
        workloads = data.get("workloads")
        if isinstance(workloads, (str, Mapping)):
            workloads = [workloads]
        if not isinstance(workloads, list) or not workloads:
            raise ConfigError(f"{source}: workloads must be a non-empty list of workload names or mappings, "
                              f"not {workloads!r}")
        try:
            specs = tuple(WorkloadSpec.from_any(w, base_dir=base_dir) for w in workloads)
        except ConfigError as e:
            raise ConfigError(f"{source}: {e}") from e
        sample, seed = data.get("sample"), 0
        if isinstance(sample, Mapping):
            extra = set(sample) - {"n", "seed"}
            if extra or "n" not in sample:
                raise ConfigError(f"{source}: sample must be a count or {{n, seed}}, not {dict(sample)!r}")
            sample, seed = sample["n"], sample.get("seed", 0)
        pareto = data.get("pareto", ("latency_ms", "energy_pj"))
        fpga = data.get("fpga")
        # "fpga:TARGET" as a Pareto metric: the FPGA's utilization is the area axis
        items = [m.strip() for m in pareto.split(",")] if isinstance(pareto, str) else list(pareto or ())
        for i, m in enumerate(items):
            if isinstance(m, str) and m.startswith("fpga:"):
                target = m.split(":", 1)[1]
                if fpga is None:
                    fpga = target
                elif parse_fpga(fpga, source=source)["target"] != target:  # type: ignore[index]
                    raise ConfigError(f"{source}: pareto metric {m!r} and the fpga section name different targets")
                items[i] = "fpga_max_util"
        pareto = tuple(items)
        return cls(
            axes=data["axes"] if data["axes"] is not None else {},
            workloads=specs,
            base=data.get("base") or {},
            constraints=data.get("constraints"),  # type: ignore[arg-type]
            sample=sample,
            seed=seed,
            pareto=pareto,
            engine=data.get("engine", "closed_form"),
            fpga=fpga,
            clip_bits=data.get("clip_bits", False),
            include_model_only=data.get("include_model_only", False),
            source=source,
        )

    @classmethod
    def from_yaml(cls, path: str | Path) -> DesignSpace:
        p = Path(path)
        data = load_yaml_mapping(p)
        return cls.from_dict(data, source=p.name, base_dir=p.resolve().parent)

    @classmethod
    def coerce(cls, space: DesignSpace | Mapping[str, Any] | str | Path) -> DesignSpace:
        if isinstance(space, DesignSpace):
            return space
        if isinstance(space, Mapping):
            return cls.from_dict(space)
        if isinstance(space, (str, Path)):
            return cls.from_yaml(space)
        raise ConfigError(f"space must be a DesignSpace, a mapping or a YAML file, not {space!r}")

    def to_dict(self) -> dict[str, Any]:
        """Canonical, JSON-able form (also what the results file stores to re-simulate a point)."""
        return {
            "workloads": [w.to_dict() for w in self.workloads],
            "base": dict(self.base),
            "axes": {k: list(v) for k, v in self.axes.items()},
            "constraints": self.constraints.to_dict(),
            "sample": {"n": self.sample, "seed": self.seed} if self.sample is not None else None,
            "pareto": list(self.pareto),
            "engine": self.engine,
            "fpga": dict(self.fpga) if self.fpga is not None else None,
            "clip_bits": self.clip_bits,
            "include_model_only": self.include_model_only,
        }

    def fingerprint(self) -> str:
        """What decides the rows: axes, base, constraints, workloads, sampling, engine (not pareto)."""
        d = self.to_dict()
        d.pop("pareto")
        d.pop("include_model_only")  # decides the front, not the rows
        if d["fpga"] is None:  # spaces without FPGA metrics keep their fingerprints
            d.pop("fpga")
        if not d["clip_bits"]:
            d.pop("clip_bits")
        return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:16]

    def with_(self, **changes: Any) -> DesignSpace:
        from dataclasses import replace

        return replace(self, **changes)

    # -- points ----------------------------------------------------------------------------
    @property
    def axis_names(self) -> tuple[str, ...]:
        return tuple(self.axes)

    @property
    def size(self) -> int:
        """Points in the Cartesian product of the axes (before constraints and sampling)."""
        return math.prod(len(v) for v in self.axes.values())

    def values(self, point: int) -> dict[str, Any]:
        """Axis values of point ``point`` (row-major over the axes in their written order)."""
        if not 0 <= point < self.size:
            raise ConfigError(f"point must be an integer from 0 to {self.size - 1}, not {point!r}")
        out: dict[str, Any] = {}
        rest = point
        for name in reversed(list(self.axes)):
            vals = self.axes[name]
            rest, digit = divmod(rest, len(vals))
            out[name] = vals[digit]
        return {name: out[name] for name in self.axes}

    def config(self, point: int) -> AcceleratorConfig:
        return AcceleratorConfig.from_dict({**self.base, **self.values(point)}, where=f"point {point}")

    def _digits(self, ids: np.ndarray) -> dict[str, np.ndarray]:
        import numpy as np

        out: dict[str, np.ndarray] = {}
        stride = 1
        for name in reversed(list(self.axes)):
            n = len(self.axes[name])
            out[name] = (ids // stride) % n
            stride *= n
        return {k: out[k].astype(np.int64) for k in self.axes}

    def _field_array(self, name: str, digits: dict[str, np.ndarray], count: int) -> np.ndarray:
        import numpy as np

        if name in self.axes:
            return np.asarray(self.axes[name], dtype=np.float64)[digits[name]]
        value = self.base.get(name, getattr(AcceleratorConfig(), name))
        return np.full(count, float(value))

    def feasible(self) -> np.ndarray:
        """Ids of the points that meet the constraints (sorted). Raises when none does."""
        import numpy as np

        ids = np.arange(self.size, dtype=np.int64)
        c = self.constraints
        ok = self._buffers_hold_a_word(ids)
        valid = ids[ok]
        if not c.to_dict():
            return valid
        digits = self._digits(ids)
        reasons: list[str] = []
        if c.max_pes is not None:
            pes = self._field_array("rows", digits, self.size) * self._field_array("cols", digits, self.size)
            this = pes <= c.max_pes
            if not this.any():
                reasons.append(f"max_pes {c.max_pes} is below every point's PE count (fewest: {int(pes.min())})")
            ok &= this
        if c.max_sram_bytes is not None:
            sram = (self._field_array("input_sram_bytes", digits, self.size)
                    + self._field_array("weight_sram_bytes", digits, self.size)
                    + self._field_array("output_sram_bytes", digits, self.size))
            this = sram <= c.max_sram_bytes
            if not this.any():
                reasons.append(f"max_sram_bytes {c.max_sram_bytes} is below every point's SRAM bytes "
                               f"(fewest: {int(sram.min())})")
            ok &= this
        if c.max_area_mm2 is not None:
            areas = self.areas_mm2(ids[ok] if not reasons else valid)
            if not reasons:
                this_sub = areas <= c.max_area_mm2
                if not this_sub.any():
                    reasons.append(self._area_reason(c.max_area_mm2, valid))
                sub = np.zeros(self.size, dtype=bool)
                sub[ids[ok][this_sub]] = True
                ok &= sub
            elif not (areas <= c.max_area_mm2).any():
                reasons.append(self._area_reason(c.max_area_mm2, valid, areas))
        if reasons:
            raise ConfigError(f"{self.source}: constraints leave no design point: {'; '.join(reasons)}")
        if not ok.any():
            raise ConfigError(
                f"{self.source}: constraints leave no design point: {self._constraint_text()} together "
                f"exclude all {self.size} points"
            )
        return ids[ok]

    _WORD_FIELDS = ("rows", "cols", "act_bits", "weight_bits", "acc_bits", "double_buffered", "input_sram_bytes",
                    "weight_sram_bytes", "output_sram_bytes")

    def _buffers_hold_a_word(self, ids: np.ndarray) -> np.ndarray:
        """Which points' buffers each hold one array word (:func:`codesign.sim.config.min_buffer_bytes`):
        the others are not designs (AcceleratorConfig refuses them) and are left out, like points
        outside the constraints. Judged over the combinations of the axes that matter (few), then
        mapped to the points only if some combination fails. Raises when no point is left."""
        import itertools

        import numpy as np

        from codesign.sim.config import min_buffer_bytes

        names = [a for a in self.axes if a in self._WORD_FIELDS]
        combos = list(itertools.product(*(self.axes[a] for a in names)))
        bad: list[tuple[Any, ...]] = []
        first_error = ""
        for combo in combos:
            fields = {**self.base, **dict(zip(names, combo, strict=True))}
            probe = AcceleratorConfig.from_dict({**fields, **{k: 1 << 40 for k in (
                "input_sram_bytes", "weight_sram_bytes", "output_sram_bytes")}}, where="base")
            need = min_buffer_bytes(probe)
            for k, v in need.items():
                have = fields.get(k, getattr(AcceleratorConfig(), k))
                if have < v:
                    bad.append(combo)
                    first_error = first_error or f"{k} >= {v} for {probe.rows}x{probe.cols}, not {have}"
                    break
        if not bad:
            return np.ones(len(ids), dtype=bool)
        if len(bad) == len(combos):
            raise ConfigError(f"{self.source}: no design point has buffers that hold one array word (e.g. "
                              f"{first_error}; sizes are in bytes)")
        digits = self._digits(ids)
        ok = np.ones(len(ids), dtype=bool)
        bad_set = set(bad)
        index = {a: np.asarray(self.axes[a], dtype=object) for a in names}
        values = list(zip(*(index[a][digits[a]] for a in names), strict=True))
        ok = np.fromiter((v not in bad_set for v in values), dtype=bool, count=len(ids))
        return ok

    def _constraint_text(self) -> str:
        return " and ".join(f"{k} {v}" for k, v in self.constraints.to_dict().items())

    def _area_reason(self, bound: float, ids: np.ndarray, areas: np.ndarray | None = None) -> str:
        if areas is None:
            areas = self.areas_mm2(ids)
        return f"max_area_mm2 {bound:g} is below every point's area (smallest: {float(areas.min()):.4g} mm^2)"

    def areas_mm2(self, ids: Iterable[int]) -> np.ndarray:
        """Area of each point, from the cost model (one call per distinct config)."""
        import numpy as np

        area_fn = area_function()
        return np.array([area_fn(self.config(int(i))) for i in ids], dtype=np.float64)

    def points(self, sample: int | None = None, seed: int | None = None) -> list[int]:
        """Ids of the points to evaluate, as a list (see :meth:`point_ids`)."""
        return [int(i) for i in self.point_ids(sample, seed)]

    def point_ids(self, sample: int | None = None, seed: int | None = None) -> np.ndarray:
        """Ids of the points to evaluate: feasible points, or a seeded random subset of them.

        ``sample``/``seed`` default to the space's own; the subset depends only on the space and
        the seed (never on worker count) and comes back sorted.
        """
        import numpy as np

        ids = self.feasible()
        n = self.sample if sample is None else sample
        s = self.seed if seed is None else seed
        if n is not None:
            if isinstance(n, bool) or not isinstance(n, int) or n < 1:
                raise ConfigError(f"sample must be a positive integer, not {n!r}")
            if isinstance(s, bool) or not isinstance(s, int) or s < 0:
                raise ConfigError(f"seed must be a non-negative integer, not {s!r}")
            if n < len(ids):
                rng = np.random.default_rng(s)
                ids = np.sort(rng.choice(ids, size=n, replace=False))
        return np.asarray(ids, dtype=np.int64)

    def load_workloads(self) -> dict[str, Network]:
        """label -> Network, failing early with the space file's name on a bad workload."""
        out: dict[str, Network] = {}
        for w in self.workloads:
            try:
                out[w.display_name] = w.load()
            except CodesignError as e:
                raise type(e)(f"{self.source}: {e}") from e
        return out


def parse_metrics(metrics: str | Sequence[str], *, source: str | None = None) -> tuple[str, ...]:
    """``"latency_ms,energy_pj"`` or a sequence -> a tuple of 2 or 3 distinct metric names."""
    pre = f"{source}: " if source else ""
    items = [m.strip() for m in metrics.split(",")] if isinstance(metrics, str) else list(metrics)
    if not 2 <= len(items) <= 3 or len(set(items)) != len(items):
        raise ConfigError(f"{pre}pareto must name 2 or 3 distinct metrics, not {','.join(map(str, items))!r}")
    for m in items:
        if not isinstance(m, str) or not (m in METRICS or m in FPGA_METRICS or m in ACCURACY_METRICS
                                          or (m.startswith("energy_") and m.endswith("_pj"))):
            raise ConfigError(f"{pre}pareto metrics must be among {', '.join(METRICS)}, not {m!r}")
    return tuple(items)


def parse_fpga(spec: Any, *, source: str = "space") -> dict[str, Any] | None:
    """``fpga: ecp5-85k`` or ``fpga: {target: ecp5-85k, pnr: true}`` -> ``{target, pnr}``.

    ``pnr`` (default false) adds place-and-route: Fmax and latency in microseconds, minutes per
    design; ``pnr: place`` places without routing, its Fmax nextpnr's estimate after placement (a fraction
    of the time). Without either, a point whose design was placed before (same Verilog, target and clock)
    takes that cached Fmax. Each row says which (``fpga_fmax_basis``). Results are cached by Verilog hash,
    so repeated sweeps do not synthesize again."""
    if spec is None:
        return None
    if isinstance(spec, str):
        spec = {"target": spec}
    if not isinstance(spec, Mapping) or set(spec) - {"target", "pnr"} or "target" not in spec:
        raise ConfigError(f"{source}: fpga must be a target name or {{target, pnr}}, not {spec!r}")
    pnr = spec.get("pnr", False)
    if not (isinstance(pnr, bool) or pnr == "place"):
        raise ConfigError(f"{source}: fpga.pnr must be true, false or place, not {pnr!r}")
    try:
        from codesign.hdl.fpga import TARGETS
    except ImportError as e:
        raise ConfigError(f"{source}: FPGA metrics need the hdl and fpga extras ({e})") from e
    if spec["target"] not in TARGETS:
        raise ConfigError(f"{source}: fpga target must be one of {', '.join(TARGETS)}, not {spec['target']!r}")
    return {"target": spec["target"], "pnr": pnr}


def area_function() -> Any:
    """``codesign.sim.cost.area_mm2`` (the area model at the energy table's node)."""
    try:
        from codesign.sim.cost import area_mm2
    except ImportError as e:  # pragma: no cover - the cost model is part of the package
        raise ConfigError(f"area needs codesign.sim.cost.area_mm2 ({e})") from e
    return area_mm2
