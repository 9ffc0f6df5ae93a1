"""codesign: accelerator simulator and hardware co-design for lightweight, quantized, sparse networks.

The public API is imported lazily so that ``import codesign.sim`` does not pull in the CLI,
pandas-heavy reporting, or the HDL stack.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from codesign.errors import CodesignError, ConfigError, ToolError, WorkloadError

__version__ = "0.1.0"

_LAZY = {
    "AcceleratorConfig": ("codesign.sim.config", "AcceleratorConfig"),
    "Dataflow": ("codesign.sim.config", "Dataflow"),
    "ZeroHandling": ("codesign.sim.config", "ZeroHandling"),
    "simulate": ("codesign.api", "simulate"),
    "load_workload": ("codesign.api", "load_workload"),
    "NetworkResult": ("codesign.sim.result", "NetworkResult"),
    "LayerResult": ("codesign.sim.result", "LayerResult"),
    "Network": ("codesign.workloads.layers", "Network"),
    "generate": ("codesign.hdl.export", "generate"),
    "verify": ("codesign.hdl.verify", "verify"),
    "sweep": ("codesign.sweeps", "sweep"),
    "synth": ("codesign.hdl.fpga", "synth"),
}

__all__ = [
    "AcceleratorConfig",
    "CodesignError",
    "ConfigError",
    "Dataflow",
    "LayerResult",
    "Network",
    "NetworkResult",
    "ToolError",
    "WorkloadError",
    "ZeroHandling",
    "generate",
    "load_workload",
    "simulate",
    "sweep",
    "synth",
    "verify",
]

if TYPE_CHECKING:  # pragma: no cover
    from codesign.api import load_workload, simulate
    from codesign.hdl.export import generate
    from codesign.hdl.fpga import synth
    from codesign.hdl.verify import verify
    from codesign.sim.config import AcceleratorConfig, Dataflow, ZeroHandling
    from codesign.sim.result import LayerResult, NetworkResult
    from codesign.sweeps import sweep
    from codesign.workloads.layers import Network


def __getattr__(name: str) -> Any:
    try:
        module_name, attr = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module 'codesign' has no attribute {name!r}") from None
    import importlib

    return getattr(importlib.import_module(module_name), attr)
