"""How long and how much energy: configs, mapping, SimPy engine, cost model."""

from codesign.sim.config import AcceleratorConfig, Dataflow, ZeroHandling

__all__ = ["AcceleratorConfig", "Dataflow", "ZeroHandling"]
