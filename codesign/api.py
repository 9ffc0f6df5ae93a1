"""The Python API: simulate, sweep, generate, verify, synth."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from codesign.sim.config import AcceleratorConfig
from codesign.sim.result import NetworkResult
from codesign.workloads.layers import Network
from codesign.workloads.loading import load_workload

__all__ = ["load_workload", "simulate"]


def simulate(
    workload: str | Path | Network | Any,
    config: AcceleratorConfig | None = None,
    *,
    timing: str = "native",
    batch: int | None = None,
    input_shape: Sequence[int] | None = None,
    clip_bits: bool = False,
) -> NetworkResult:
    """Simulate a network on an accelerator: per-layer cycles, stalls, utilization and energy.

    ``workload`` is anything :func:`load_workload` reads, a ``torch.nn.Module`` with ``input_shape``
    included. ``timing="native"`` runs the SimPy engine (DRAM, double-buffered SRAMs, array,
    write-back) with the RTL's fold timing; ``timing="scalesim"`` reproduces SCALE-Sim's compute cycles.
    An operand wider than the array's bits (an INT8 model on a 4-bit array) is an error; with
    ``clip_bits=True`` it runs at the array's bits, with a BitsClippedWarning saying which layers.
    """
    from codesign.sim.engine import simulate_network
    from codesign.workloads.precision import BitsClippedWarning, fit_to_array

    config = config or AcceleratorConfig()
    net = load_workload(workload, batch=batch, input_shape=input_shape)
    net, notes = fit_to_array(net, config.weight_bits, config.act_bits, clip=clip_bits)
    for note in notes:
        warnings.warn(note, BitsClippedWarning, stacklevel=2)
    result = simulate_network(net, config, timing=timing)
    result.meta["clip_bits"] = clip_bits  # recorded in summary() and to_json()
    result.meta["clipped"] = "; ".join(notes)
    return result
