"""codesign: accelerator simulator and hardware co-design for lightweight, quantized, sparse networks.

The public API (``dir(codesign)`` lists it; each name is imported on first use, so that
``import codesign`` stays fast and does not pull in pandas, the sweep machinery or the HDL stack):

* ``simulate(workload, config) -> NetworkResult``: per-layer cycles, energy and DRAM bytes;
* ``sweep(space, workloads) -> DataFrame``: a design space, with ``buildable`` and ``pareto`` columns;
* ``generate(config, out_dir)``, ``verify(...)``, ``synth(config, target)``: Verilog, cocotb
  verification against the simulator, FPGA synthesis;
* ``AcceleratorConfig``, ``Dataflow``, ``ZeroHandling``: the design; ``load_workload``, ``Network``:
  what runs; ``NetworkResult``, ``LayerResult``: results;
* errors: ``CodesignError`` (the base), ``ConfigError``, ``WorkloadError``, ``ToolError``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from codesign.errors import CodesignError, ConfigError, ToolError, WorkloadError

__version__ = "0.1.0"

from codesign._torchvision_compat import install as _install_torchvision_compat

_install_torchvision_compat()  # timm beside PyPI's CUDA torchvision on a CPU torch (see the module)

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


def __dir__() -> list[str]:
    """The public API (``__all__``) and the module's own dunder names."""
    return sorted(set(__all__) | {n for n in globals() if n.startswith("__")})


def __getattr__(name: str) -> Any:
    try:
        module_name, attr = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module 'codesign' has no attribute {name!r}") from None
    import importlib

    return getattr(importlib.import_module(module_name), attr)
