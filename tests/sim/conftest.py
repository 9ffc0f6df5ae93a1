"""What the simulator tests share: the sweep's fast path against the point-by-point engine."""

from __future__ import annotations

from codesign.errors import ConfigError
from codesign.sim import fastpath
from codesign.sim.config import AcceleratorConfig
from codesign.sim.engine import simulate_network
from codesign.workloads.layers import Network


def fast_equals_engine(net: Network, configs: list[AcceleratorConfig]) -> list[AcceleratorConfig]:
    """Assert the fast path's summary of ``net`` at each of ``configs`` equals the point-by-point closed-form
    engine's, every column (None where the engine refuses the point); the configs compared."""
    compared = []
    for cfg, f in zip(configs, fastpath.evaluate_network(net, configs), strict=True):
        try:
            ref = simulate_network(net, cfg, engine="closed_form").summary()
        except ConfigError:
            assert f is None
            continue
        assert f is not None
        assert {k: f[k] for k in f} == {k: ref[k] for k in f}, (net.name, cfg)
        compared.append(cfg)
    return compared
