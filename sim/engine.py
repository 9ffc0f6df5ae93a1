"""The simulation engine: a SimPy model of the tile pipeline, and its closed-form twin.

The machine
-----------
* **DMA** (the AXI master): one process executing load and store commands in program order,
  like the command queue of the hardware's DMA (``codesign.hdl.memory.dma``). A load of ``b`` bytes takes
  ``tileplan.dma_read_cycles(b)`` = ``2 + dram_latency_cycles + ceil(b / dram_bytes_per_cycle)``,
  a store ``tileplan.dma_write_cycles(b)`` = ``2 + ...``; a transfer of nothing takes no time.
  Reads and writes share one command queue (the RTL's DMA runs one command at a time), so the
  AXI read and write channels are never busy together.
* **SRAMs**: ``B`` tile slots per operand (``B = 2`` double-buffered, else 1). Loading tile ``i``
  needs the slot of tile ``i - B`` free (its compute done); computing tile ``i`` needs the output
  slot of tile ``i - B`` free (its store done).
* **PE array**: one process computing tiles in order, each for ``native_gemm_cycles`` (the RTL's
  start-to-done count) or ``ceil(ops / lanes)`` on the vector unit.
* **Program order** of the DMA: ``L0 .. L(B-1)``, then for each tile ``i``: ``S(i)``, ``L(i + B)``.
  Stores of partial sums move nothing and are left out.

Stall cycles are the layer's cycles not spent computing: the first loads, the last store, and
any wait of the array for the DMA. Layers run one after the other, each from empty buffers.

:func:`pipeline_simpy` runs this machine on SimPy with one event per transfer and per tile.
:func:`pipeline_closed_form` evaluates the same schedule as a max-plus recurrence and jumps over
runs of identical tiles once the pipeline is periodic; tests hold the two equal.
"""

from __future__ import annotations

from collections.abc import Generator, Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache

import simpy

from codesign.errors import CodesignError
from codesign.sim.config import AcceleratorConfig, Depthwise, ZeroHandling
from codesign.sim.cost import layer_energy
from codesign.sim.fusion import DEFAULT, LayerContext, model_only_reasons, plan_network
from codesign.sim.mapping import LayerPlan, TileRun, plan_gemm, plan_layer
from codesign.sim.result import Counts, LayerResult, NetworkResult
from codesign.sim.tileplan import dma_read_cycles, dma_write_cycles, model_only_reason, skip_hardware
from codesign.sim.timing import scalesim_conv_out, scalesim_gemm_cycles, scalesim_sparse_k
from codesign.workloads.layers import Conv2d, GemmShape, Layer, Network

ENGINES = ("simpy", "closed_form")
TIMINGS = ("native", "scalesim")


@dataclass(frozen=True)
class PipelineTiming:
    cycles: int
    compute_cycles: int

    @property
    def stall_cycles(self) -> int:
        return self.cycles - self.compute_cycles


def load_cycles(nbytes: int, config: AcceleratorConfig) -> int:
    return dma_read_cycles(nbytes, config)


def store_cycles(nbytes: int, config: AcceleratorConfig) -> int:
    return dma_write_cycles(nbytes, config)


def _tiles(runs: Sequence[TileRun]) -> Iterator[TileRun]:
    for r in runs:
        for _ in range(r.count):
            yield r


# --------------------------------------------------------------------------------------------
# SimPy engine (the reference)
# --------------------------------------------------------------------------------------------
def pipeline_simpy(runs: Sequence[TileRun], config: AcceleratorConfig, prologue_bytes: int = 0) -> PipelineTiming:
    """``prologue_bytes``: a read before the first tile's load (the requantization table)."""
    tiles = list(_tiles(runs))
    n = len(tiles)
    if n == 0:
        return PipelineTiming(0, 0)
    nbuf = 2 if config.double_buffered else 1
    env = simpy.Environment()
    loaded = [env.event() for _ in range(n)]
    computed = [env.event() for _ in range(n)]
    stored = [env.event() for _ in range(n)]

    def dma() -> Generator[simpy.Event, object, None]:
        def load(i: int) -> Generator[simpy.Event, object, None]:
            dur = load_cycles(tiles[i].load_bytes, config)
            if dur:
                if i >= nbuf:
                    yield computed[i - nbuf]  # the input slot is free once tile i-B is computed
                yield env.timeout(dur)
            loaded[i].succeed()

        prologue = load_cycles(prologue_bytes, config)
        if prologue:
            yield env.timeout(prologue)
        for i in range(min(nbuf, n)):
            yield from load(i)
        for i in range(n):
            dur = store_cycles(tiles[i].store_bytes, config)
            if dur:
                yield computed[i]
                yield env.timeout(dur)
                stored[i].succeed()
            if i + nbuf < n:
                yield from load(i + nbuf)

    def array() -> Generator[simpy.Event, object, None]:
        for i in range(n):
            yield loaded[i]
            if i >= nbuf:
                yield stored[i - nbuf]
            yield env.timeout(tiles[i].compute_cycles)
            computed[i].succeed()
            if not store_cycles(tiles[i].store_bytes, config):
                stored[i].succeed()  # nothing to write back: the output slot stays on chip

    env.process(dma())
    done = env.process(array())
    env.run()
    if not done.processed:  # pragma: no cover - would be a deadlock in the model
        raise CodesignError("internal error: the tile pipeline deadlocked")
    end = max(int(env.now), 0)
    return PipelineTiming(end, sum(t.compute_cycles for t in tiles))


# --------------------------------------------------------------------------------------------
# Closed-form twin: the same schedule as a recurrence, O(number of distinct runs)
# --------------------------------------------------------------------------------------------
def pipeline_closed_form(runs: Sequence[TileRun], config: AcceleratorConfig, prologue_bytes: int = 0
                         ) -> PipelineTiming:
    params = tuple((load_cycles(r.load_bytes, config), store_cycles(r.store_bytes, config), r.compute_cycles)
                   for r in runs)
    return _pipeline_closed_form(tuple(r.count for r in runs), params, 2 if config.double_buffered else 1,
                                 load_cycles(prologue_bytes, config))


@lru_cache(maxsize=1 << 16)
def _pipeline_closed_form(counts: tuple[int, ...], params: tuple[tuple[int, int, int], ...],
                          nbuf: int, prologue: int = 0) -> PipelineTiming:
    """The engine's schedule as a max-plus recurrence over steps ``i``: compute tile ``i``,
    store tile ``i``, load tile ``i + nbuf`` (the DMA's program order). Inside a run of identical
    tiles the recurrence becomes periodic after a few steps; then whole periods are skipped."""

    n = sum(counts)
    compute_total = sum(c * p[2] for c, p in zip(counts, params, strict=True))
    if n == 0:
        return PipelineTiming(0, 0)
    if n == 1:
        ld, st, comp = params[0]
        return PipelineTiming(prologue + ld + comp + st, compute_total)
    ends = []
    acc = 0
    for c in counts:
        acc += c
        ends.append(acc)
    size = nbuf + 2  # ring buffers hold the live window of tiles i - nbuf .. i + nbuf
    load_end = [0] * (2 * size)
    comp_end = [0] * (2 * size)
    wb_end = [0] * (2 * size)
    ring = 2 * size
    t_dma = prologue
    ahead = 0  # run of the tile being loaded

    def load(j: int, t_dma: int) -> int:
        nonlocal ahead
        while ends[ahead] <= j:
            ahead += 1
        d = params[ahead][0]
        if d:
            start = t_dma
            if j >= nbuf and comp_end[(j - nbuf) % ring] > start:
                start = comp_end[(j - nbuf) % ring]
            t_dma = start + d
        load_end[j % ring] = t_dma
        return t_dma

    for j in range(min(nbuf, n)):
        t_dma = load(j, t_dma)
    r = 0
    prev_state: tuple[int, ...] | None = None
    prev_base = 0
    prev_step = -2
    i = 0
    while i < n:
        while ends[r] <= i:
            r += 1
            prev_state = None
        _, sdur, comp = params[r]
        start = load_end[i % ring]
        if i and comp_end[(i - 1) % ring] > start:
            start = comp_end[(i - 1) % ring]
        if i >= nbuf and wb_end[(i - nbuf) % ring] > start:
            start = wb_end[(i - nbuf) % ring]
        c_end = start + comp
        comp_end[i % ring] = c_end
        if sdur:
            t_dma = (t_dma if t_dma > c_end else c_end) + sdur
            wb_end[i % ring] = t_dma
        else:
            wb_end[i % ring] = c_end
        if i + nbuf < n:
            t_dma = load(i + nbuf, t_dma)
        last_safe = ends[r] - 1 - nbuf  # steps whose tile and look-ahead load lie in run r
        if i < last_safe:
            state = (
                t_dma - c_end,
                *(load_end[j % ring] - c_end for j in range(i + 1, i + nbuf + 1)),
                *(comp_end[j % ring] - c_end for j in range(max(0, i - nbuf + 1), i)),
                *(wb_end[j % ring] - c_end for j in range(max(0, i - nbuf + 1), i + 1)),
            )
            if state == prev_state and prev_step == i - 1:
                delta = c_end - prev_base
                periods = last_safe - i
                add = periods * delta
                lo, hi = max(0, i - nbuf), i + nbuf  # live window
                saved = {j: (load_end[j % ring], comp_end[j % ring], wb_end[j % ring]) for j in range(lo, hi + 1)}
                for j, (le, ce, we) in saved.items():
                    k = (j + periods) % ring
                    load_end[k], comp_end[k], wb_end[k] = le + add, ce + add, we + add
                t_dma += add
                i += periods
                prev_state = None
                i += 1
                continue
            prev_state, prev_base, prev_step = state, c_end, i
        i += 1
    end = max(t_dma, comp_end[(n - 1) % ring], wb_end[(n - 1) % ring])
    return PipelineTiming(end, compute_total)


# --------------------------------------------------------------------------------------------
# Layers and networks
# --------------------------------------------------------------------------------------------
def scalesim_gemm(layer: Layer, batch: int) -> GemmShape | None:
    """The GEMM SCALE-Sim computes for a layer: convolutions without padding, output
    ``ceil((H - R + S) / S)``, no dilation."""
    if isinstance(layer, Conv2d):
        oh = scalesim_conv_out(layer.in_h, layer.r, layer.stride[0])  # type: ignore[index]
        ow = scalesim_conv_out(layer.in_w, layer.s, layer.stride[1])  # type: ignore[index]
        g = layer.groups
        return GemmShape(m=oh * ow * batch, n=layer.out_channels // g,
                         k=layer.in_channels // g * layer.r * layer.s, repeats=g)
    return layer.gemm(batch)


VECTOR_REASON = "pool and element-wise layers run on a vector unit the generated hardware does not build"


@lru_cache(maxsize=1 << 16)
def simulate_layer(layer: Layer, batch: int, config: AcceleratorConfig, timing: str = "native",
                   engine: str = "simpy", context: LayerContext = DEFAULT) -> LayerResult:
    """One layer on one configuration (cached: identical pairs are evaluated once).

    ``context`` says where its operands come from under fusion (:func:`codesign.sim.fusion.plan_network`);
    the default is a layer on its own, operands from DRAM (what ``verify`` runs on the RTL)."""
    if timing not in TIMINGS:
        raise CodesignError(f"timing must be one of {', '.join(TIMINGS)}, not {timing!r}")
    if engine not in ENGINES:
        raise CodesignError(f"engine must be one of {', '.join(ENGINES)}, not {engine!r}")
    if context.fused:
        return _fused_result(layer, batch, config, context)
    if timing == "scalesim":
        g = scalesim_gemm(layer, batch)
        if g is None:  # SCALE-Sim does not model pooling / element-wise layers
            plan = plan_layer(layer, batch, config)
            pt = PipelineTiming(0, 0)
            macs = 0
            gm = (0, 0, 0, 0)
        else:
            plan = plan_gemm(g, layer.inputs, layer.weights, layer.outputs, config,
                             weights_static=layer.weight_elements > 0)
            k = g.k
            if config.zero_handling is ZeroHandling.SKIP and layer.weights.nm is not None:
                k = scalesim_sparse_k(g.k, *layer.weights.nm)  # SCALE-Sim with SparsitySupport on
            cyc = g.repeats * scalesim_gemm_cycles(config.dataflow, config.rows, config.cols, g.m, g.n, k)
            pt = PipelineTiming(cyc, cyc)
            macs = g.macs
            gm = (g.m, g.n, g.k, g.repeats)
    else:
        run = pipeline_simpy if engine == "simpy" else pipeline_closed_form
        plan = plan_layer(layer, batch, config, context)
        pt = run(plan.runs, config, plan.tiling.prologue_bytes if plan.tiling else 0)
        if (config.zero_handling is ZeroHandling.SKIP and layer.weights.density < 1.0
                and skip_hardware(config) is None):
            # idealized skipping (model-only) is a per-layer choice: where compressed weights and
            # their metadata cost more than they save (high density, memory-bound), the layer runs
            # dense and gated. The n:m hardware has one layout per layer (sim.tileplan.skip_slots).
            gated = plan_layer(layer, batch, config.replace(zero_handling=ZeroHandling.GATE), context)
            pt_gated = run(gated.runs, config, gated.tiling.prologue_bytes if gated.tiling else 0)
            if pt_gated.cycles < pt.cycles:
                plan, pt = gated, pt_gated
        g = layer.gemm(batch)
        macs = layer.macs(batch)
        gm = (g.m, g.n, g.k, g.repeats) if g is not None else (0, 0, 0, 0)
    return _layer_result(layer, plan, pt, macs, gm, config, context)


def layer_model_only(layer: Layer, config: AcceleratorConfig, context: LayerContext = DEFAULT) -> str:
    """Why the generated hardware does not run ``layer`` as simulated ('' when it does)."""
    from codesign.workloads.layers import Conv2d

    reasons = [model_only_reason(config)]
    if context.fused:
        reasons += model_only_reasons(context)
    elif config.depthwise is Depthwise.ENGINE and isinstance(layer, Conv2d) and layer.is_depthwise:
        from codesign.sim.vector_engine import REASON

        reasons.append(REASON)
    elif not layer.has_gemm:
        reasons.append(VECTOR_REASON)
    if not context.fused:
        reasons += model_only_reasons(context)
    return "; ".join(r for r in reasons if r)


def _fused_result(layer: Layer, batch: int, config: AcceleratorConfig, ctx: LayerContext) -> LayerResult:
    """A layer fused into its producer's write-back: no cycles of its own (they are the head's);
    its vector ops and the DRAM reads of its other operands."""
    counts = Counts(vector_ops=layer.vector_ops(batch), dram_read_bits=ctx.other_dram_bits,
                    input_sram_write_bits=0)
    energy = layer_energy(counts, 0, config)
    return LayerResult(
        layer=layer.name, kind=layer.kind.value, m=0, n=0, k=0, repeats=0, macs=layer.macs(batch), cycles=0,
        compute_cycles=0, stall_cycles=0, utilization=0.0, energy_pj=sum(energy.values()),
        energy_breakdown_pj=energy, counts=counts, folds=0, tiles=0,
        model_only=layer_model_only(layer, config, ctx), input_from=ctx.input_from, other_from=ctx.other_from,
        output_to=ctx.output_to, fused_into=ctx.fused_into)


def _layer_result(layer: Layer, plan: LayerPlan, pt: PipelineTiming, macs: int,
                  gm: tuple[int, int, int, int], config: AcceleratorConfig,
                  context: LayerContext = DEFAULT) -> LayerResult:
    energy = layer_energy(plan.counts, pt.cycles, config)
    tp = plan.tiling
    desc = f"{tp.gt},{tp.mt},{tp.nt},{tp.kt},{'w' if tp.weights_outer else 'i'}" if tp is not None else ""
    return LayerResult(
        layer=layer.name,
        kind=layer.kind.value,
        m=gm[0],
        n=gm[1],
        k=gm[2],
        repeats=gm[3],
        macs=macs,
        cycles=pt.cycles,
        compute_cycles=pt.compute_cycles,
        stall_cycles=pt.stall_cycles,
        utilization=(macs - plan.counts.skipped_macs) / (pt.cycles * config.pes) if pt.cycles else 0.0,
        energy_pj=sum(energy.values()),
        energy_breakdown_pj=energy,
        counts=plan.counts,
        folds=plan.folds,
        tiles=plan.tiles,
        model_only=layer_model_only(layer, config, context),
        input_from=context.input_from,
        other_from=context.other_from or ("dram" if _other_operands(layer) else ""),
        output_to=context.output_to,
        plan=desc,
    )


def _other_operands(layer: Layer) -> bool:
    from codesign.workloads.layers import Eltwise, MatMul

    return isinstance(layer, MatMul) or (isinstance(layer, Eltwise) and layer.inputs_count > 1)


def network_contexts(net: Network, config: AcceleratorConfig, timing: str = "native") -> tuple[LayerContext, ...]:
    """Each layer's fusion context (all default for SCALE-Sim timing, which has no fusion)."""
    if timing == "scalesim":
        return (DEFAULT,) * len(net.layers)
    return plan_network(net, config)


def simulate_network(net: Network, config: AcceleratorConfig, *, timing: str = "native",
                     engine: str = "simpy") -> NetworkResult:
    contexts = network_contexts(net, config, timing)
    results = tuple(simulate_layer(layer, net.batch, config, timing, engine, ctx)
                    for layer, ctx in zip(net.layers, contexts, strict=True))
    return NetworkResult(network=net.name, config=config, layers=results, timing=timing, batch=net.batch,
                         meta={"engine": engine})


@dataclass(frozen=True)
class OnChipResult:
    """A GEMM run from operands already in the on-chip buffers (what the RTL tests measure)."""

    cycles: int
    active_macs: int
    macs: int


def simulate_gemm_on_chip(config: AcceleratorConfig, m: int, n: int, k: int, *,
                          a: object | None = None, b: object | None = None) -> OnChipResult:
    """Cycles from start to done and MACs the array enables for one on-chip GEMM.

    With operand arrays ``a[M, K]`` and ``b[K, N]`` and zero-gating, the enabled MACs are those
    whose two operands are non-zero, ``sum_k nnz(a[:, k]) * nnz(b[k, :])``; otherwise all
    ``M * N * K``.
    """
    from codesign.sim.timing import native_gemm_cycles

    macs = m * n * k
    active = macs
    if config.zero_handling is not ZeroHandling.NONE and a is not None and b is not None:
        import numpy as np

        av, bv = np.asarray(a), np.asarray(b)
        active = int(((av != 0).sum(axis=0).astype(np.int64) * (bv != 0).sum(axis=1)).sum())
    return OnChipResult(cycles=native_gemm_cycles(config, m, n, k), active_macs=active, macs=macs)
