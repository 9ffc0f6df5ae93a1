"""The Python API: simulate, sweep, generate, verify, synth."""

from __future__ import annotations

from pathlib import Path

from codesign.sim.config import AcceleratorConfig
from codesign.sim.result import NetworkResult
from codesign.workloads.layers import Network
from codesign.workloads.loading import load_workload

__all__ = ["load_workload", "simulate"]


def simulate(
    workload: str | Path | Network,
    config: AcceleratorConfig | None = None,
    *,
    timing: str = "native",
    batch: int | None = None,
) -> NetworkResult:
    """Simulate a network on an accelerator: per-layer cycles, stalls, utilization and energy.

    ``timing="native"`` runs the SimPy engine (DRAM, double-buffered SRAMs, array, write-back)
    with the RTL's fold timing; ``timing="scalesim"`` reproduces SCALE-Sim's compute cycles.
    """
    from codesign.sim.engine import simulate_network

    net = load_workload(workload, batch=batch)
    return simulate_network(net, config or AcceleratorConfig(), timing=timing)
