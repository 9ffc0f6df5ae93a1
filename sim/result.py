"""Results of a simulation: one row per layer, totals per network."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

    from codesign.sim.config import AcceleratorConfig

ENERGY_PARTS = ("mac", "register", "pe_to_pe", "input_sram", "weight_sram", "output_sram", "dram", "vector", "leakage")


def design_model_only(config: AcceleratorConfig) -> str:
    """Why ``codesign generate`` does not build the design ``config`` ('' when it does): its
    dataflow, bits, zero handling, skip pattern, array size, fusion or depthwise mode. A sweep's
    ``buildable`` column and the Pareto fronts over buildable points use it."""
    from codesign.sim.config import Depthwise
    from codesign.sim.fusion import design_reason as fusion_reason
    from codesign.sim.tileplan import model_only_reason

    reason = model_only_reason(config) or fusion_reason(config)
    if not reason and config.depthwise is Depthwise.ENGINE:
        from codesign.sim.dwplan import design_reason

        engine = design_reason(config)
        if engine:
            reason = f"depthwise must be array for this design ({engine}), not {config.depthwise.value!r}"
    return reason


@dataclass(frozen=True)
class Counts:
    """Action counts of one layer (the engine's output; energy is computed from these)."""

    active_macs: int = 0
    gated_macs: int = 0
    skipped_macs: int = 0
    register_bits: int = 0
    pe_to_pe_bits: int = 0
    input_sram_read_bits: int = 0
    input_sram_write_bits: int = 0
    weight_sram_read_bits: int = 0
    weight_sram_write_bits: int = 0
    output_sram_read_bits: int = 0
    output_sram_write_bits: int = 0
    dram_read_bits: int = 0
    dram_write_bits: int = 0
    vector_ops: int = 0

    def __add__(self, other: Counts) -> Counts:
        return Counts(**{f.name: getattr(self, f.name) + getattr(other, f.name) for f in dataclasses.fields(self)})


@dataclass(frozen=True)
class LayerResult:
    """One layer's timing, action counts and energy on one accelerator (the engine's output)."""

    layer: str
    kind: str
    m: int
    n: int
    k: int
    repeats: int
    macs: int
    cycles: int
    compute_cycles: int
    stall_cycles: int
    utilization: float  # issued MACs (skipped ones excluded) / (cycles * PEs): at most 1
    energy_pj: float
    energy_breakdown_pj: dict[str, float]
    counts: Counts
    folds: int = 0
    tiles: int = 0
    model_only: str = ""  # why the generated hardware does not run this layer so ('' when it does)
    input_from: str = "dram"  # the input activation: dram, onchip (resident) or writeback (fused)
    other_from: str = ""  # a second activation operand (residual add, MatMul's B): dram or onchip
    output_to: str = "dram"  # dram, onchip (kept resident for its consumers) or writeback (fused on)
    fused_into: str = ""  # the producer whose write-back runs this layer (fusion), else ''
    plan: str = ""  # the tiling: "gt,mt,nt,kt,w|i" (weights or inputs outer); '' for vector layers

    def __repr__(self) -> str:
        return (f"LayerResult({self.layer!r}, {self.kind}, M,N,K {self.m},{self.n},{self.k} x{self.repeats}: "
                f"{self.cycles:,} cycles ({self.stall_cycles:,} stall), {self.energy_pj * 1e-6:,.3f} uJ, "
                f"utilization {self.utilization:.1%})")

    @property
    def dram_bytes(self) -> float:
        """Bytes this layer reads from and writes to DRAM."""
        return (self.counts.dram_read_bits + self.counts.dram_write_bits) / 8

    @property
    def dram_bytes_per_cycle(self) -> float:
        """DRAM bytes per cycle of this layer (its bandwidth demand)."""
        return self.dram_bytes / self.cycles if self.cycles else 0.0

    def row(self) -> dict[str, Any]:
        """This layer as a flat dict: one row of :meth:`NetworkResult.to_dataframe`."""
        r: dict[str, Any] = {
            "layer": self.layer,
            "type": self.kind,
            "m": self.m,
            "n": self.n,
            "k": self.k,
            "repeats": self.repeats,
            "macs": self.macs,
            "cycles": self.cycles,
            "compute_cycles": self.compute_cycles,
            "stall_cycles": self.stall_cycles,
            "utilization": self.utilization,
            "energy_pj": self.energy_pj,
        }
        for part in ENERGY_PARTS:
            r[f"energy_{part}_pj"] = self.energy_breakdown_pj.get(part, 0.0)
        r["folds"] = self.folds
        r["tiles"] = self.tiles
        r["active_macs"] = self.counts.active_macs
        r["gated_macs"] = self.counts.gated_macs
        r["skipped_macs"] = self.counts.skipped_macs
        r["dram_read_bytes"] = self.counts.dram_read_bits / 8
        r["dram_write_bytes"] = self.counts.dram_write_bits / 8
        r["dram_bytes_per_cycle"] = self.dram_bytes_per_cycle
        r["input_from"] = self.input_from
        r["other_from"] = self.other_from
        r["output_to"] = self.output_to
        r["fused_into"] = self.fused_into
        r["plan"] = self.plan
        r["model_only"] = self.model_only
        r["buildable"] = not self.model_only  # this layer runs on the generated hardware as simulated
        return r


@dataclass(frozen=True)
class NetworkResult:
    """A network's per-layer results on one accelerator; totals are properties, :meth:`summary` has
    them all, :meth:`to_dataframe` one row per layer."""

    network: str
    config: AcceleratorConfig
    layers: tuple[LayerResult, ...]
    timing: str = "native"
    batch: int = 1
    meta: dict[str, Any] = field(default_factory=dict)

    def __repr__(self) -> str:
        c = self.config
        return (f"NetworkResult({self.network!r}, batch {self.batch}, {c.rows}x{c.cols} {c.dataflow.value.upper()} "
                f"W{c.weight_bits}A{c.act_bits} at {c.clock_mhz:g} MHz, timing {self.timing}: {len(self.layers)} "
                f"layers, {self.cycles:,} cycles = {self.latency_ms:.4g} ms, {self.energy_uj:,.1f} uJ, "
                f"utilization {self.utilization:.1%})")

    def _repr_html_(self) -> str:
        """A notebook view: the summary line, totals and the ten layers with the most cycles."""
        import html

        top = sorted(self.layers, key=lambda r: -r.cycles)[:10]
        cells = "".join(
            f"<tr><td style='text-align:left'>{html.escape(r.layer)}</td><td>{html.escape(r.kind)}</td>"
            f"<td>{r.macs:,}</td><td>{r.cycles:,}</td><td>{r.stall_cycles:,}</td><td>{r.utilization:.1%}</td>"
            f"<td>{r.energy_pj * 1e-6:,.3f}</td></tr>" for r in top)
        parts = ", ".join(f"{k} {v * 1e-6:,.2f}" for k, v in self.energy_breakdown_pj.items() if v)
        return (f"<div><p><b>{html.escape(repr(self))}</b></p><p>energy by component (uJ): {html.escape(parts)}</p>"
                f"<table><thead><tr><th>layer</th><th>type</th><th>MACs</th><th>cycles</th><th>stall</th>"
                f"<th>utilization</th><th>energy (uJ)</th></tr></thead><tbody>{cells}</tbody></table>"
                f"<p>{min(10, len(self.layers))} of {len(self.layers)} layers, most cycles first; "
                f"<code>.to_dataframe()</code> has them all.</p></div>")

    @property
    def cycles(self) -> int:
        """Total cycles of the network (layers run one after another)."""
        return sum(r.cycles for r in self.layers)

    @property
    def program_cycles(self) -> int:
        """Cycles of the network run from one start on the network top (:mod:`codesign.sim.program`): the
        layers' cycles plus the sequencer's (the first descriptor's fetch; between layers a counter write
        overlapped with the next fetch, and the start; the last counter write). Layers fused into a
        producer's write-back are part of its record. 0 when the design does not build the sequencer."""
        from codesign.sim.program import design_reason, program_cycles

        if design_reason(self.config):
            return 0
        return program_cycles([r.cycles for r in self.layers if not r.fused_into], self.config)

    @property
    def compute_cycles(self) -> int:
        """Cycles the PE array (or vector unit) computes, summed over layers."""
        return sum(r.compute_cycles for r in self.layers)

    @property
    def stall_cycles(self) -> int:
        """Cycles spent waiting for DRAM (``cycles - compute_cycles``), summed over layers."""
        return sum(r.stall_cycles for r in self.layers)

    @property
    def macs(self) -> int:
        """Multiply-accumulates of the network (dense count, zeros included)."""
        return sum(r.macs for r in self.layers)

    @property
    def latency_ms(self) -> float:
        """``cycles`` at the config's ``clock_mhz``, in milliseconds."""
        return self.cycles / (self.config.clock_mhz * 1e3)

    @property
    def energy_pj(self) -> float:
        """Total energy in pJ (sum of :attr:`energy_breakdown_pj`)."""
        return sum(r.energy_pj for r in self.layers)

    @property
    def energy_uj(self) -> float:
        """Total energy in uJ."""
        return self.energy_pj * 1e-6

    @property
    def edp(self) -> float:
        """Energy-delay product in pJ x cycles."""
        return self.energy_pj * self.cycles

    @property
    def utilization(self) -> float:
        """Issued MACs (zero-skipped ones excluded) per PE and cycle: at most 1."""
        issued = sum(r.macs - r.counts.skipped_macs for r in self.layers)
        return issued / (self.cycles * self.config.pes) if self.cycles else 0.0

    @property
    def energy_breakdown_pj(self) -> dict[str, float]:
        """Energy by component (MAC, registers, PE-to-PE, each SRAM, DRAM, vector unit, leakage) in pJ."""
        return {p: sum(r.energy_breakdown_pj.get(p, 0.0) for r in self.layers) for p in ENERGY_PARTS}

    @property
    def model_only(self) -> str:
        """Why the generated hardware does not run the network as simulated: the distinct reasons
        of its layers, '; '-joined ('' when the hardware runs every layer so)."""
        seen: dict[str, None] = {}
        for r in self.layers:
            for part in r.model_only.split("; "):
                if part:
                    seen.setdefault(part)
        return "; ".join(seen)

    @property
    def peak_dram_bytes_per_cycle(self) -> float:
        """The highest DRAM bandwidth demand of any layer, in bytes per cycle."""
        return max((r.dram_bytes_per_cycle for r in self.layers), default=0.0)

    @property
    def dram_read_bytes(self) -> int:
        """Bytes read from DRAM by all layers (weights, input activations, other operands)."""
        return sum(r.counts.dram_read_bits for r in self.layers) // 8

    @property
    def dram_write_bytes(self) -> int:
        """Bytes written to DRAM by all layers (output activations)."""
        return sum(r.counts.dram_write_bits for r in self.layers) // 8

    @property
    def dram_bytes(self) -> int:
        """DRAM traffic: bytes read plus bytes written."""
        return self.dram_read_bytes + self.dram_write_bytes

    @property
    def buildable(self) -> bool:
        """Whether ``codesign generate`` builds this design (:func:`design_model_only` is empty).
        Layers every design runs on the (not yet built) vector unit do not count: they are in
        :attr:`model_only` whatever the design."""
        return not design_model_only(self.config)

    def layer(self, name: str) -> LayerResult:
        """The result of the layer named ``name`` (KeyError if there is none)."""
        for r in self.layers:
            if r.layer == name:
                return r
        raise KeyError(name)

    def to_dataframe(self) -> pd.DataFrame:
        """One row per layer: shape, cycles, energy by component, DRAM bytes, where operands live,
        model-only reason and ``buildable``."""
        import pandas as pd

        return pd.DataFrame([r.row() for r in self.layers])

    def summary(self) -> dict[str, Any]:
        """The network's totals as a flat dict: cycles, latency, energy (and by component), EDP,
        utilization, DRAM bytes read and written, ``model_only`` and ``buildable``."""
        s: dict[str, Any] = {
            "network": self.network,
            "timing": self.timing,
            "batch": self.batch,
            "layers": len(self.layers),
            "macs": self.macs,
            "cycles": self.cycles,
            "program_cycles": self.program_cycles,
            "compute_cycles": self.compute_cycles,
            "stall_cycles": self.stall_cycles,
            "latency_ms": self.latency_ms,
            "energy_pj": self.energy_pj,
            "energy_uj": self.energy_uj,
            "edp": self.edp,
            "utilization": self.utilization,
            "peak_dram_bytes_per_cycle": self.peak_dram_bytes_per_cycle,
            "dram_read_bytes": self.dram_read_bytes,
            "dram_write_bytes": self.dram_write_bytes,
            "dram_bytes": self.dram_read_bytes + self.dram_write_bytes,
            "model_only": self.model_only,
            "buildable": self.buildable,
        }
        for p, v in self.energy_breakdown_pj.items():
            s[f"energy_{p}_pj"] = v
        if "accuracy" in self.meta:  # a trained network (codesign.accuracy)
            s["accuracy"] = self.meta["accuracy"]
        if "clip_bits" in self.meta:  # codesign.simulate / codesign simulate: wider operands clipped or not
            s["clip_bits"] = bool(self.meta["clip_bits"])
            s["clipped"] = str(self.meta.get("clipped", ""))
        return s

    def to_json(self) -> str:
        """``{"summary", "config", "layers"}`` as JSON text (what ``codesign simulate --out r.json`` writes)."""
        return json.dumps(
            {"summary": self.summary(), "config": self.config.to_dict(), "layers": [r.row() for r in self.layers]},
            indent=2,
        )
