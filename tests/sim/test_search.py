"""Mapping search: the candidates are plans the hardware runs, the bound is a bound, the energy of
every candidate is the engine's, the search finds the brute-force best, and searched is never
worse than fixed (per layer, on the objective)."""

from __future__ import annotations

import pytest

from codesign.sim import search as S
from codesign.sim.config import AcceleratorConfig
from codesign.sim.cost import layer_energy, leakage_pj_per_cycle, load_table
from codesign.sim.engine import pipeline_closed_form, pipeline_simpy, simulate_network
from codesign.sim.mapping import _gemm_plan, kept_k, metadata_bits
from codesign.sim.tileplan import TilePlan, plan_fits, plan_tiles, plan_traffic_bytes
from codesign.workloads import zoo
from codesign.workloads.layers import Conv2d, GemmShape, Linear
from codesign.workloads.operand import Operand

LAYERS = [
    Conv2d("conv3x3", in_channels=16, out_channels=40, in_h=14, in_w=14, kernel=3, padding=1),
    Conv2d("pw", in_channels=48, out_channels=24, in_h=14, in_w=14, kernel=1),
    Conv2d("dw", in_channels=24, out_channels=24, in_h=14, in_w=14, kernel=3, padding=1, groups=24),
    Linear("fc", in_features=200, out_features=130, tokens=7),
]
MAX_TILES = 600  # candidates evaluated exactly in these tests (the engine enumerates their tiles)
CONFIGS = [
    AcceleratorConfig(rows=8, cols=8, dataflow=df, input_sram_bytes=4096, weight_sram_bytes=4096,
                      output_sram_bytes=8192, dram_bytes_per_cycle=bw, mapping="search", zero_handling=zh)
    for df, bw, zh in (("ws", 8.0, "none"), ("os", 2.0, "gate"), ("is", 16.0, "none"), ("ws", 4.0, "skip"))
]


def _setup(layer, cfg, weights=None):
    g = layer.gemm(1)
    w = weights or layer.weights
    skip = cfg.zero_handling.value == "skip" and w.density < 1.0
    keff = kept_k(g.k, w) if skip else g.k
    fixed = plan_tiles(GemmShape(g.m, g.n, keff, g.repeats), cfg)
    t = load_table(cfg.energy_table)
    em = S.EnergyModel(
        a_elems=g.m * g.k * g.repeats, b_elems=keff * g.n * g.repeats, c_elems=g.m * g.n * g.repeats, k=g.k,
        keff=keff, ab=8, wb=8, ob=8, accb=cfg.acc_bits, meta_bits=metadata_bits(g.k, g.n, w) * g.repeats if skip else 0,
        e_in=t.sram_pj_per_bit_at(cfg.input_sram_bytes), e_w=t.sram_pj_per_bit_at(cfg.weight_sram_bytes),
        e_out=t.sram_pj_per_bit_at(cfg.output_sram_bytes), e_dram=t.dram_pj_per_bit,
        leak_per_cycle=leakage_pj_per_cycle(cfg))

    def exact(plan):
        lp = _gemm_plan(g, layer.inputs, w, cfg, 8, 8, 8, skip, keff, plan)
        cycles = pipeline_closed_form(lp.runs, cfg, plan.prologue_bytes).cycles  # the table read first
        return cycles, sum(layer_energy(lp.counts, cycles, cfg).values())

    return fixed, em, exact


@pytest.mark.parametrize("cfg", CONFIGS, ids=lambda c: f"{c.dataflow}-{c.zero_handling}")
@pytest.mark.parametrize("layer", LAYERS, ids=lambda x: x.name)
def test_bound_traffic_and_energy_of_every_candidate(layer, cfg) -> None:
    """For every candidate: it fits the slots; the cycle bound is at most the engine's cycles;
    the vectorized DRAM bytes equal plan_traffic_bytes and the tile runs' bytes; the vectorized
    energy plus the plan-independent rest equals the engine's energy (1e-9 relative)."""
    w = Operand(density=0.5) if cfg.zero_handling.value == "skip" else None
    fixed, em, exact = _setup(layer, cfg, w)
    plans = S.candidates(fixed, cfg)
    assert plans[0] == fixed and len(plans) > 10
    x = S._Arrays(plans, cfg)
    lb = S.cycle_bounds(x)
    ta, tb, tc = S.traffic_bytes(x)
    dep = S.dependent_energy(x, em)
    c0, e0 = exact(fixed)
    static = e0 - c0 * em.leak_per_cycle - dep[0]
    for i, p in enumerate(plans):
        assert plan_fits(p)
        if p.tile_count > MAX_TILES:
            continue
        cycles, energy = exact(p)
        assert lb[i] <= cycles
        assert (int(ta[i]), int(tb[i]), int(tc[i])) == plan_traffic_bytes(p)
        runs = p.tile_runs(cfg)
        assert sum(c * ld for c, ld, _, _ in runs) == ta[i] + tb[i]
        assert sum(c * st for c, _, st, _ in runs) == tc[i]
        assert static + dep[i] + cycles * em.leak_per_cycle == pytest.approx(energy, rel=1e-9)


@pytest.mark.parametrize("objective", ["latency", "energy", "edp"])
@pytest.mark.parametrize("cfg", CONFIGS[:3], ids=lambda c: str(c.dataflow))
def test_search_finds_the_brute_force_best(monkeypatch, cfg, objective) -> None:
    """Branch and bound returns the best candidate by the objective, as evaluating all of them does."""
    cfg = cfg.replace(objective=objective)
    monkeypatch.setattr(S, "MAX_EXACT", 10**9)
    every = S.candidates
    monkeypatch.setattr(S, "candidates", lambda f, c: [p for p in every(f, c) if p.tile_count <= MAX_TILES])
    for layer in LAYERS:
        fixed, em, exact = _setup(layer, cfg)
        plans = S.candidates(fixed, cfg)
        assert len(plans) > 10

        def value(p, exact=exact):
            c, e = exact(p)
            return {"latency": c, "energy": e, "edp": e * c}[objective]

        best = min(value(p) for p in plans)
        assert value(S.search(fixed, cfg, em, exact)) == best


@pytest.mark.parametrize("network", ["resnet18", "mobilenet_v2", "deit_tiny"])
@pytest.mark.parametrize("df", ["ws", "os"])
def test_searched_edp_never_worse_than_fixed_per_layer(network, df) -> None:
    """Issue 11 acceptance: --mapping search --objective edp gives EDP <= fixed on every layer."""
    net = zoo.get(network)
    base = AcceleratorConfig(rows=32, cols=32, dataflow=df)
    fixed = simulate_network(net, base, engine="closed_form")
    searched = simulate_network(net, base.replace(mapping="search", objective="edp"), engine="closed_form")
    for a, b in zip(fixed.layers, searched.layers, strict=True):
        assert b.energy_pj * b.cycles <= a.energy_pj * a.cycles * (1 + 1e-12), a.layer
    assert searched.edp < fixed.edp


def test_searched_plans_time_the_same_on_simpy() -> None:
    """The searched plans' tile runs take the same cycles on the SimPy engine and its twin."""
    net = zoo.get("mobilenet_v2")
    cfg = AcceleratorConfig(rows=16, cols=16, mapping="search", objective="latency", input_sram_bytes=16384)
    for layer in net.layers[:24]:
        g = layer.gemm(1)
        if g is None:
            continue
        from codesign.sim.mapping import plan_layer

        lp = plan_layer(layer, 1, cfg)
        assert pipeline_simpy(lp.runs, cfg) == pipeline_closed_form(lp.runs, cfg)
        if isinstance(lp.tiling, TilePlan):  # (depthwise layers run on the engine: its own fixed plan)
            assert plan_fits(lp.tiling)
        lp.tiling.descriptor()  # what the sequencer reads
