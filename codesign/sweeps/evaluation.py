"""Evaluation of design points (runs in the workers): one pure ``evaluate(config, network)``, the
row of a point, the FPGA columns, and the per-worker state that shares layers of equal shape."""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from codesign.accuracy import sweep_accuracy
from codesign.errors import ConfigError
from codesign.sim.config import AcceleratorConfig
from codesign.sim.result import design_model_only
from codesign.space import DesignSpace, area_function, canonical_engine

if TYPE_CHECKING:

    from codesign.sim.result import NetworkResult
    from codesign.workloads.layers import Network

Row = dict[str, Any]


def metrics_row(result: NetworkResult, area_mm2: float) -> Row:
    """The metric columns of one (point, workload) from a simulation result."""
    return summary_row(result.summary(), area_mm2, result.config)


def summary_row(s: Mapping[str, Any], area_mm2: float, config: AcceleratorConfig | None = None) -> Row:
    """The metric columns of one (point, workload) from a result's summary
    (:meth:`~codesign.sim.result.NetworkResult.summary`, or the fast path's,
    :func:`codesign.sim.fastpath.evaluate_network`). ``config`` (the point's) gives ``buildable``
    and, where the summary has no DRAM bytes (the fast path's), ``dram_bytes``."""
    row: Row = {
        "cycles": int(s["cycles"]),
        "latency_ms": float(s["latency_ms"]),
        "energy_pj": float(s["energy_pj"]),
        "energy_uj": float(s["energy_uj"]),
        "edp": float(s["edp"]),
        "area_mm2": float(area_mm2),
        "utilization": float(s["utilization"]),
        "peak_dram_bytes_per_cycle": float(s["peak_dram_bytes_per_cycle"]),
        "dram_bytes": dram_bytes(s, config),
        "macs": int(s["macs"]),
        "compute_cycles": int(s["compute_cycles"]),
        "stall_cycles": int(s["stall_cycles"]),
        "model_only": str(s.get("model_only", "")),
    }
    if config is not None:
        row["buildable"] = not design_model_only(config)
    elif "buildable" in s:
        row["buildable"] = bool(s["buildable"])
    for key, value in s.items():
        if key.startswith("energy_") and key.endswith("_pj") and key != "energy_pj":
            row[key] = float(value)
    return row


def _dram_energy(config: AcceleratorConfig) -> bool:
    """Whether ``config``'s energy table charges DRAM bits (so that :func:`dram_bytes` can count them)."""
    from codesign.sim.cost import load_table

    return load_table(config.energy_table).dram_pj_per_bit > 0


def dram_bytes(s: Mapping[str, Any], config: AcceleratorConfig | None) -> int:
    """DRAM bytes read plus written of a summary. The fast path's summary has no byte counts, but its
    DRAM energy is exactly (bits read + bits written) x the table's pJ per bit
    (:func:`codesign.sim.cost.layer_energy`), so the bits are that energy over the pJ per bit, rounded:
    the float sum's error is far below half a bit (tests hold it equal to the engine's count)."""
    if "dram_bytes" in s:
        return int(s["dram_bytes"])
    if config is None:
        raise ConfigError("dram_bytes of a summary without DRAM bytes needs the point's config")
    from codesign.sim.cost import load_table

    per_bit = load_table(config.energy_table).dram_pj_per_bit
    if not per_bit > 0:
        raise ConfigError(f"energy_table {config.energy_table!r} has dram_pj_per_bit {per_bit!r}: DRAM bytes cannot "
                          f"be recovered from DRAM energy; use engine simpy")
    return round(float(s["energy_dram_pj"]) / per_bit / 8)


def engine_name(engine: str) -> str:
    """The simulator's name for ``engine``: ``closed_form`` (alias ``analytic``) or ``simpy``."""
    return canonical_engine(engine)


def evaluate(config: AcceleratorConfig, network: Network, *, engine: str = "closed_form") -> NetworkResult:
    """Simulate one network on one design (sweeps use the same engine call, sharing layers of
    equal shape)."""
    from codesign.sim.engine import simulate_network

    return simulate_network(network, config, timing="native", engine=engine_name(engine))


class _Evaluator:
    """A network prepared for many configs: layers with the same shape are simulated once.

    Layers differ only in name across the repeated blocks of a network (MobileNetV2: 64 layers,
    37 shapes); each is simulated under a common name and the totals are summed in layer order,
    so the numbers are exactly :func:`codesign.simulate`'s.
    """

    def __init__(self, network: Network) -> None:
        import dataclasses

        self.network = network
        self.anonymous = tuple(dataclasses.replace(layer, name="layer") for layer in network.layers)

    def run(self, config: AcceleratorConfig, engine: str, cache: dict[Any, Any]) -> NetworkResult:
        from codesign.sim.engine import network_contexts, simulate_layer
        from codesign.sim.result import NetworkResult

        batch = self.network.batch
        results = []
        for layer, ctx in zip(self.anonymous, network_contexts(self.network, config), strict=True):
            r = cache.get((layer, ctx))
            if r is None:
                r = cache[layer, ctx] = simulate_layer(layer, batch, config, "native", engine, ctx)
            results.append(r)
        return NetworkResult(network=self.network.name, config=config, layers=tuple(results),
                             timing="native", batch=batch, meta={"engine": engine})


class _WorkerState:
    """What a worker keeps between chunks: the space, its networks, an area cache."""

    def __init__(self, space_dict: Mapping[str, Any]) -> None:
        self.space = DesignSpace.from_dict(space_dict)
        networks = self.space.load_workloads()
        self.evaluators = [(label, _Evaluator(net)) for label, net in networks.items()]
        self.engine = engine_name(self.space.engine)
        self.area_fn = area_function()
        self._clipped: dict[tuple[str, int, int], bool] = {}

    def clipped(self, label: str, network: Network, config: AcceleratorConfig) -> bool:
        """Whether some operand of ``network`` is wider than ``config``'s array bits (run at the array's
        bits: the space has ``clip_bits``, or the sweep refused to start)."""
        from codesign.workloads.precision import wider_operands

        key = (label, config.weight_bits, config.act_bits)
        hit = self._clipped.get(key)
        if hit is None:
            hit = self._clipped[key] = bool(wider_operands(network, config.weight_bits, config.act_bits))
        return hit

    def point_rows(self, point: int) -> list[Row]:
        """Rows of one point, point by point (the engine's own path)."""
        config = self.space.config(point)
        cache: dict[Any, Any] = {}  # identical (layer, config) pairs of this point: once, for all workloads
        summaries = [ev.run(config, self.engine, cache).summary() for _, ev in self.evaluators]
        return self._rows(point, config, summaries)

    def chunk_rows(self, points: Sequence[int]) -> list[tuple[int, list[Row]]]:
        """Rows of each point of ``points``: the fast path (:mod:`codesign.sim.fastpath`, numpy over
        the points) where it models the point, else :meth:`point_rows`; the numbers are the same."""
        if self.engine != "closed_form":
            return [(p, self.point_rows(p)) for p in points]
        from codesign.sim.fastpath import evaluate_network

        values = self._values_of(points)
        base = self.space.base  # validated, like every axis value: the fields need no more checks
        configs = [AcceleratorConfig(**base, **v) for v in values]
        per_workload = [evaluate_network(ev.network, configs) for _, ev in self.evaluators]
        out = []
        for i, (p, config) in enumerate(zip(points, configs, strict=True)):
            summaries = [s[i] for s in per_workload]
            if any(s is None for s in summaries) or not _dram_energy(config):
                out.append((p, self.point_rows(p)))
            else:
                out.append((p, self._rows(p, config, summaries, values[i])))  # type: ignore[arg-type]
        return out

    def _values_of(self, points: Sequence[int]) -> list[dict[str, Any]]:
        """Axis values of each point (:meth:`DesignSpace.values` of many points at once)."""
        import numpy as np

        digits = self.space._digits(np.asarray(points, dtype=np.int64))
        cols = {name: [vals[d] for d in digits[name].tolist()] for name, vals in self.space.axes.items()}
        return [dict(zip(cols, row, strict=True)) for row in zip(*cols.values(), strict=True)]

    def _rows(self, point: int, config: AcceleratorConfig, summaries: Sequence[Mapping[str, Any]],
              values: Mapping[str, Any] | None = None) -> list[Row]:
        values = self.space.values(point) if values is None else values
        area = float(self.area_fn(config))
        fixed = {"point": point}
        fpga = fpga_columns(config, self.space.fpga) if self.space.fpga is not None else {}
        rows = []
        for (label, ev), s in zip(self.evaluators, summaries, strict=True):
            row = {**fixed, "workload": label, **values, "pes": config.pes,
                   "sram_bytes": config.sram_bytes, **summary_row(s, area, config),
                   "clipped": self.clipped(label, ev.network, config), **fpga}
            if "accuracy" in self.space.pareto:  # top-1 of the integer network (codesign.accuracy)
                row["accuracy"] = sweep_accuracy(ev.network, config)
            if fpga:
                at_fpga_clock(row, config, fpga, measured=bool(self.space.fpga["pnr"]))  # type: ignore[index]
            rows.append(row)
        return rows


def at_fpga_clock(row: Row, config: AcceleratorConfig, fpga: Mapping[str, Any], *, measured: bool) -> None:
    """The latency of ``row`` at the clock its design meets on the FPGA (issue 22, item 4).

    ``fpga_latency_us`` is the cycles at the point's own Fmax (NaN without one). Where the space asked for
    an Fmax (``pnr: true`` or ``place``: ``measured``) and the design has one, ``latency_ms`` is at that
    clock too, so fronts and reports rank the designs at the clocks they meet; ``clock_mhz_used`` and
    ``clock_basis`` say which clock ``latency_ms`` is at ("place and route", "placement estimate", or
    "config clock_mhz" for a design without an Fmax, or whose Fmax is only a cached one of a space without
    ``pnr``: one front never mixes measured and assumed clocks that way). Energy and EDP are per cycle in
    the model (:mod:`codesign.sim.cost`), so they do not change."""
    fmax = fpga.get("fpga_fmax_mhz")
    has = isinstance(fmax, (int, float)) and fmax == fmax and fmax > 0
    row["fpga_latency_us"] = row["cycles"] / fmax if has else float("nan")  # type: ignore[operator]
    if has and measured:
        row["latency_ms"] = row["cycles"] / (fmax * 1e3)  # type: ignore[operator]
        row["clock_mhz_used"] = float(fmax)  # type: ignore[arg-type]
        basis = fpga.get("fpga_fmax_basis")
        row["clock_basis"] = basis if isinstance(basis, str) and basis else "place and route"
    else:
        row["clock_mhz_used"] = float(config.clock_mhz)
        row["clock_basis"] = "config clock_mhz"


FPGA_COLUMNS = ("fpga_target", "fpga_part", "fpga_fits", "fpga_limiting_resource", "fpga_fit_message",
                "fpga_luts", "fpga_ffs", "fpga_dsps", "fpga_brams", "fpga_carries", "fpga_lut_util",
                "fpga_ff_util", "fpga_dsp_util", "fpga_bram_util", "fpga_io_util", "fpga_max_util",
                "fpga_fmax_mhz", "fpga_fmax_basis")


def fpga_columns(config: AcceleratorConfig, fpga: Mapping[str, Any], *, attempts: int = 2) -> Row:
    """FPGA figures of a design point (``codesign.hdl.fpga.fpga_metrics``).

    A design the generator refuses to build (a :class:`ConfigError`: IS dataflow, skip, bit-widths
    out of range) is an infeasible point (``fpga_fits`` false) with the reason in
    ``fpga_fit_message``, not an error of the whole sweep. A failing tool (a :class:`ToolError`:
    Yosys crashed, was killed or timed out, e.g. on a loaded machine) says nothing about the
    design: it is tried ``attempts`` times, then raised, never recorded as "does not fit"."""
    from codesign.errors import ToolError
    from codesign.hdl.fpga import device, fpga_metrics

    nan = float("nan")
    for attempt in range(attempts):
        try:
            m = fpga_metrics(config, fpga["target"], pnr=fpga["pnr"])
            break
        except ConfigError as e:
            row: Row = {c: nan for c in FPGA_COLUMNS}
            row.update(fpga_target=fpga["target"], fpga_part=device(fpga["target"]).part, fpga_fits=False,
                       fpga_limiting_resource="", fpga_fit_message=str(e), fpga_fmax_basis="")
            return row
        except ToolError as e:
            if attempt + 1 == attempts:
                raise ToolError(f"FPGA figures of {config.rows}x{config.cols} {config.dataflow.value} on "
                                f"{fpga['target']}: {e}") from e
    row = {c: m.get(c) for c in FPGA_COLUMNS}  # fpga_cached is left out: it depends on the run
    for c in FPGA_COLUMNS:
        if row[c] is None:
            row[c] = "" if c == "fpga_fmax_basis" else nan  # a text column stays text (one parquet type)
    return row


_STATE: dict[str, _WorkerState] = {}


def _state(space_dict: Mapping[str, Any], key: str) -> _WorkerState:
    st = _STATE.get(key)
    if st is None:
        _STATE.clear()
        st = _STATE[key] = _WorkerState(space_dict)
    return st


def evaluate_chunk(space_dict: Mapping[str, Any], points: Sequence[int], key: str | None = None
                   ) -> list[tuple[int, list[Row]]]:
    """Rows of each point of ``points`` (a task of the pool or of Dask); ``key`` (the space's
    fingerprint) names the worker's cached state."""
    st = _state(space_dict, key or json.dumps(space_dict, sort_keys=True))
    out = st.chunk_rows([int(p) for p in points])
    _trim_caches()
    return out


#: points of a chunk at most with the closed-form engine (the fast path's numpy arrays span a chunk)
FAST_CHUNK = 4096

#: entries the simulator's memo caches may hold in a sweep worker before they are emptied
CACHE_ENTRIES = 4096


def _trim_caches() -> None:
    """Empty the simulator's ``lru_cache`` memos that a sweep fills but never hits. Every point of a
    sweep is a different config, so entries keyed by (layer, config) are not hit again, yet at up to
    65,536 entries per cache they hold a few hundred MB per worker. Caches that do get hits (tile
    plans, pipeline timings shared by many configs) are kept; layers of equal shape within a point
    are shared through the point's own cache (:meth:`_WorkerState.point_rows`)."""
    sim_modules = [m for name, m in list(sys.modules.items()) if name.startswith("codesign.sim.") and m is not None]
    for mod in sim_modules:
        for f in list(vars(mod).values()):
            info = getattr(f, "cache_info", None)
            if callable(info) and callable(getattr(f, "cache_clear", None)):
                i = info()
                if i.currsize > CACHE_ENTRIES and i.hits < i.misses:
                    f.cache_clear()
