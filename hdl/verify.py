"""Verify the generated RTL on a workload layer: Icarus + cocotb against numpy and the simulator.

For each layer: its seeded quantized (sparse) operands (``workloads.tensors.layer_operands``,
im2col for convolutions) are cut into on-chip tiles that fit the buffers; every tile runs
through the RTL from loaded buffers to ``done``; partial sums over K tiles are added on the host.

Reported per layer:

* ``outputs_match``: the RTL's C equals numpy's int64 ``A @ B`` for every group, bit for bit;
* ``rtl_cycles``: sum over tiles of the cycles from ``start`` to ``done`` measured in the RTL;
* ``sim_cycles``: sum over the same tiles of the simulator's on-chip time
  (``sim.engine.simulate_gemm_on_chip`` = ``native_gemm_cycles``);
* ``rtl_enabled_macs``: sum of the RTL's ``enabled_macs`` counter over the tiles;
* ``sim_active_macs``: the simulator's enabled MACs for the same tiles. A MAC ``(m, n, k)`` is
  enabled when it lies inside the GEMM (not padding) and, with zero-gating, ``A[m, k] != 0``
  and ``B[k, n] != 0``; so with gating it is ``GemmOperands.active_macs()``, without it
  ``M * N * K`` per group.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from codesign.errors import ConfigError, WorkloadError
from codesign.hdl.plan import HardwarePlan
from codesign.sim.config import AcceleratorConfig, Dataflow
from codesign.workloads.layers import Layer, Linear
from codesign.workloads.tensors import GemmOperands, layer_operands


@dataclass(frozen=True)
class Tile:
    group: int
    m0: int
    n0: int
    k0: int
    m: int
    n: int
    k: int


@dataclass(frozen=True)
class LayerVerification:
    layer: str
    m: int
    n: int
    k: int
    groups: int
    tiles: int
    outputs_match: bool
    rtl_cycles: int
    sim_cycles: int
    rtl_enabled_macs: int
    sim_active_macs: int
    wall_s: float

    @property
    def ok(self) -> bool:
        return (self.outputs_match and self.rtl_cycles == self.sim_cycles
                and self.rtl_enabled_macs == self.sim_active_macs)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok}


def _round_up(x: int, q: int) -> int:
    return -(-x // q) * q


def plan_tiles(plan: HardwarePlan, m: int, n: int, k: int, groups: int = 1) -> list[Tile]:
    """On-chip tiles covering ``groups`` GEMMs ``[m, k] @ [k, n]``: K whole when it fits, else cut;
    then M and N halved (keeping array multiples) until a tile fits the buffers."""
    r, c = plan.rows, plan.cols
    tm, tn, tk = m, n, min(k, plan.k_max)
    while not plan.fits(tm, tn, tk):
        a, w, o = plan.words(tm, tn, tk)
        over_a, over_w, over_o = a > plan.act_depth, w > plan.weight_depth, o > plan.out_depth
        if over_o or over_a:
            if tm > r:
                tm = _round_up(tm // 2, r) if tm // 2 >= r else r
                continue
            if over_o and tn > c:
                tn = _round_up(tn // 2, c) if tn // 2 >= c else c
                continue
        if over_w and tn > c:
            tn = _round_up(tn // 2, c) if tn // 2 >= c else c
            continue
        if tk > r:
            tk = _round_up(tk // 2, r) if tk // 2 >= r else r
            continue
        if tm > 1:
            tm = max(1, tm // 2)
            continue
        if tn > 1:
            tn = max(1, tn // 2)
            continue
        raise ConfigError(f"no tile of gemm {m},{n},{k} fits the buffers of a {r}x{c} array")
    tiles = []
    for g in range(groups):
        for m0 in range(0, m, tm):
            for n0 in range(0, n, tn):
                for k0 in range(0, k, tk):
                    tiles.append(Tile(g, m0, n0, k0, min(tm, m - m0), min(tn, n - n0), min(tk, k - k0)))
    return tiles


def hardware_layer(layer: Layer, config: AcceleratorConfig, density: str | float | None = None) -> Layer:
    """The layer with the hardware's operand precisions (and an optional weight sparsity)."""
    inputs = layer.inputs.with_bits(config.act_bits, config.act_signed)
    weights = layer.weights.with_bits(config.weight_bits, config.weight_signed)
    if density is not None:
        weights = weights.with_sparsity(density)
    return layer.with_operands(inputs=inputs, weights=weights)


def verify_operands(
    name: str,
    ops: GemmOperands,
    config: AcceleratorConfig,
    **kwargs: Any,
) -> LayerVerification:
    """Run ``ops`` (all groups) through the RTL and compare with numpy and the simulator."""
    return verify_batch([(name, ops)], config, **kwargs)[0]


def verify_batch(
    named_ops: list[tuple[str, GemmOperands]],
    config: AcceleratorConfig,
    *,
    seed: int = 0,
    idle: float = 0.2,
    stall: float = 0.2,
    work_dir: str | Path | None = None,
) -> list[LayerVerification]:
    """Several layers in one RTL simulation (one simulator start-up), one result per layer.

    ``idle``/``stall``: probability of an idle cycle on the load stream / of ``rd_data.ready``
    low in a cycle (seeded by ``seed``).
    """
    from amaranth.hdl import Shape

    from codesign.hdl.rtl_runner import run_job
    from codesign.hdl.top import load_layout
    from codesign.sim.engine import simulate_gemm_on_chip

    t0 = time.perf_counter()
    plan = HardwarePlan(config)
    job_tiles: list[dict[str, Any]] = []
    per_layer = []
    for name, ops in named_ops:
        groups, m, k = ops.a.shape
        n = ops.b.shape[2]
        tiles = plan_tiles(plan, m, n, k, groups)
        sim_cycles = sim_active = 0
        for t in tiles:
            a = ops.a[t.group, t.m0:t.m0 + t.m, t.k0:t.k0 + t.k]
            b = ops.b[t.group, t.k0:t.k0 + t.k, t.n0:t.n0 + t.n]
            act, wt = plan.pack_operands(a, b)
            job_tiles.append({"m": t.m, "n": t.n, "k": t.k, "act": [f"{w:x}" for w in act],
                              "weight": [f"{w:x}" for w in wt], "out_words": plan.words(t.m, t.n, t.k)[2]})
            on_chip = simulate_gemm_on_chip(config, t.m, t.n, t.k, a=a, b=b)
            sim_cycles += on_chip.cycles
            sim_active += on_chip.active_macs
        per_layer.append((name, ops, tiles, sim_cycles, sim_active))
    lay = load_layout(plan)
    job = {
        "tiles": job_tiles, "seed": seed, "idle": idle, "stall": stall,
        "load_layout": {"data": Shape.cast(lay["data"].shape).width, "addr": Shape.cast(lay["addr"].shape).width},
    }
    if work_dir is None:
        with tempfile.TemporaryDirectory(prefix="codesign-verify-") as tmp:
            result = run_job(config, job, Path(tmp))
    else:
        result = run_job(config, job, Path(work_dir))
    wall = round(time.perf_counter() - t0, 3)
    results = iter(result["tiles"])
    out = []
    for name, ops, tiles, sim_cycles, sim_active in per_layer:
        groups, m, k = ops.a.shape
        n = ops.b.shape[2]
        c = np.zeros((groups, m, n), dtype=np.int64)
        rtl_cycles = rtl_enabled = 0
        for t in tiles:
            res = next(results)
            words = [int(w, 16) for w in res["out"]]
            c[t.group, t.m0:t.m0 + t.m, t.n0:t.n0 + t.n] += plan.unpack_outputs(words, t.m, t.n)
            rtl_cycles += res["cycles"]
            rtl_enabled += res["enabled_macs"]
        out.append(LayerVerification(
            layer=name, m=m, n=n, k=k, groups=groups, tiles=len(tiles),
            outputs_match=bool(np.array_equal(c, ops.c)),
            rtl_cycles=rtl_cycles, sim_cycles=sim_cycles,
            rtl_enabled_macs=rtl_enabled, sim_active_macs=sim_active,
            wall_s=wall,
        ))
    return out


def verify_layer(layer: Layer, config: AcceleratorConfig, *, density: str | float | None = None,
                 seed: int = 0, batch: int = 1, **kwargs: Any) -> LayerVerification:
    if not layer.has_gemm:
        raise WorkloadError(f"layer {layer.name!r} ({layer.kind.value}) has no GEMM to run on the array")
    hw = hardware_layer(layer, config, density)
    ops = layer_operands(hw, batch=batch, seed=seed)
    return verify_operands(layer.name, ops, config, seed=seed, **kwargs)


def verify(
    config: AcceleratorConfig | None = None,
    *,
    gemm: tuple[int, int, int] | None = None,
    workload: Any = None,
    layer: str | None = None,
    density: str | float | None = None,
    seed: int = 0,
    batch: int = 1,
    idle: float = 0.2,
    stall: float = 0.2,
    work_dir: str | Path | None = None,
) -> list[LayerVerification]:
    """Verify the RTL for ``config`` on a bare GEMM ``(M, N, K)`` or on layer(s) of a workload.

    ``workload`` is anything :func:`codesign.api.load_workload` accepts; ``layer`` picks one
    layer by name (default: every layer with a GEMM). ``density`` sets the weights' sparsity
    (``0.5``, ``"2:4"``). Returns one :class:`LayerVerification` per layer.
    """
    config = config or AcceleratorConfig()
    HardwarePlan(config)  # validate early
    if config.dataflow is Dataflow.IS:  # pragma: no cover - HardwarePlan rejects it
        raise ConfigError("dataflow must be ws or os for the generated hardware, not 'is'")
    if (gemm is None) == (workload is None):
        raise ConfigError("verify needs exactly one of gemm=(M, N, K) or workload=...")
    opts = {"seed": seed, "batch": batch, "idle": idle, "stall": stall, "work_dir": work_dir, "density": density}
    if gemm is not None:
        try:
            m, n, k = (int(x) for x in gemm)
        except (TypeError, ValueError):
            raise ConfigError(f"gemm must be three positive integers M,N,K, not {gemm!r}") from None
        for nm, v in (("M", m), ("N", n), ("K", k)):
            if v < 1:
                raise ConfigError(f"gemm {nm} must be a positive integer, not {v}")
        lin = Linear(f"gemm_{m}x{n}x{k}", in_features=k, out_features=n, tokens=m, bias=False)
        return [verify_layer(lin, config, **opts)]
    from codesign.api import load_workload

    net = load_workload(workload)
    layers = [ly for ly in net.layers if ly.has_gemm]
    if layer is not None:
        chosen = [ly for ly in net.layers if ly.name == layer]
        if not chosen:
            names = ", ".join(ly.name for ly in layers[:12])
            raise WorkloadError(f"layer must be one of {names}{', ...' if len(layers) > 12 else ''}; not {layer!r}")
        layers = chosen
    return [verify_layer(ly, config, **opts) for ly in layers]


def scaled(layer: Layer, **changes: Any) -> Layer:
    """A copy of ``layer`` with some sizes changed (to keep an RTL run short)."""
    return replace(layer, **changes)
