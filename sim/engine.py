"""The simulation engine: a SimPy model of the tile pipeline, and its closed-form twin.

The machine
-----------
* **DMA** (the AXI master): two processes, a read queue (loads in tile order) and a write queue
  (stores in tile order), like the hardware's DMA (``codesign.hdl.memory.dma``), whose AXI read and
  write channels run at once. Alone, a load of ``b`` bytes takes ``tileplan.dma_read_cycles(b)`` =
  ``3 + dram_latency_cycles + ceil(b / dram_bytes_per_cycle)`` (its last ``ceil(b / bw)`` cycles are
  its *data phase*), a store ``tileplan.dma_write_cycles(b)`` = ``3 + ...`` (a lead of ``write_lead_cycles``, then
  ``ceil(b / bw)`` data cycles, then the response ``latency + 1`` later); nothing takes no time.
  The DMA holds two read commands (``tileplan.DMA_READ_SLOTS``): load ``k`` is decided once load ``k - 2``
  has its data (and ``LOAD_ISSUE_GAP_CYCLES`` after load ``k - 1``'s decision), and its data phase starts at
  the later of its lead's end and load ``k - 1``'s data end, so a load's address and latency hide behind
  the previous load's data; stores run one after the other, each waiting for its last response.
* **Memory bus**: ``dram_bytes_per_cycle`` is the memory's TOTAL bandwidth. A store's data phase
  has the bus (a preempting request on a SimPy ``PreemptiveResource``); a load's data cycles are
  the cycles no store's data phase takes (its request yields and resumes with what is left), as the
  AXI memory model arbitrates (``hdl/bench/axi_mem_model.v``: writes first, reads wait). So the
  overlap hides the latencies and the commands' fixed cycles, never doubles the bandwidth. Writes
  first, because a store frees an output slot the array waits for, while the load it would delay
  has (double-buffered) a tile of compute to hide behind; measured, reads first made ResNet-18 on
  32x32 8 % slower than one command at a time, writes first 1 % faster.
* **SRAMs**: ``B`` tile slots per operand (``B = 2`` double-buffered, else 1). Loading tile ``i``
  needs the slot of tile ``i - B`` free (its compute done); computing tile ``i`` needs the output
  slot of tile ``i - B`` free (its store done).
* **PE array**: one process computing tiles in order, each for ``native_gemm_cycles`` (the RTL's
  start-to-done count) or ``ceil(ops / lanes)`` on the vector unit.
* **Queues**: ``L(j)`` waits for ``L(j - 2)``'s data, ``L(j - 1)``'s decision and tile ``j - B``'s compute
  (its slots); ``S(i)`` for ``S(i - 1)`` and tile ``i``'s compute; tile ``i`` computes once loaded, after
  tile ``i - 1`` and once tile ``i - B`` is stored (its output slot). Stores of partial sums move nothing
  and are left out.

Stall cycles are the layer's cycles not spent computing: the first loads, the last store, and
any wait of the array for the DMA. Layers run one after the other, each from empty buffers.

:func:`pipeline_simpy` runs this machine on SimPy with one event per transfer and per tile.
:func:`pipeline_closed_form` evaluates the same schedule as a recurrence (max-plus, and the store's
walk around the stores' data phases, :func:`data_end`) and jumps over runs of identical tiles
once the pipeline is periodic; tests hold the two equal.
"""

from __future__ import annotations

from collections.abc import Generator, Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache

import simpy

from codesign.errors import CodesignError
from codesign.sim.config import AcceleratorConfig, ZeroHandling
from codesign.sim.cost import layer_energy
from codesign.sim.fusion import DEFAULT, ONCHIP, LayerContext, model_only_reasons, plan_network
from codesign.sim.mapping import LayerPlan, TileRun, plan_gemm, plan_layer
from codesign.sim.result import Counts, LayerResult, NetworkResult
from codesign.sim.tileplan import (
    DMA_READ_SLOTS,
    LOAD_ISSUE_GAP_CYCLES,
    dma_read_cycles,
    dma_write_cycles,
    model_only_reason,
    requant_table_reason,
    skip_hardware,
)
from codesign.sim.timing import scalesim_conv_out, scalesim_gemm_cycles, scalesim_sparse_k
from codesign.sim.widths import check_plan
from codesign.workloads.layers import Conv2d, GemmShape, Layer, Network, gemm_layer

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
def write_lead_cycles(config: AcceleratorConfig) -> int:
    """Cycles from a store's decision to its first data beat offered (the buffer read, and with
    requantize the register after the arithmetic): ``store_cycles`` alone is this lead + data + the
    response's ``dram_latency_cycles + 1``."""
    return dma_write_cycles(1, config) - config.dram_latency_cycles - 1 - 1


def read_lead_cycles(config: AcceleratorConfig) -> int:
    """Cycles from a load's decision to its data phase (decision, address, latency)."""
    return dma_read_cycles(1, config) - 1


def pipeline_simpy(runs: Sequence[TileRun], config: AcceleratorConfig, prologue_bytes: int = 0,
                   store_extra_cycles: int = 0, prologue_extra_cycles: int = 0,
                   store_pass_cycles: int = 0) -> PipelineTiming:
    """``prologue_bytes``: a read before the first tile's load (the requantization table);
    ``store_extra_cycles``: more cycles before each store's first data beat (a built residual add in
    the write-back: :mod:`codesign.sim.fusion`, or a table activation); ``prologue_extra_cycles``: cycles
    between the prologue's read and the first load (an activation table written into the vector unit);
    ``store_pass_cycles``: the pass of a passing tile (``TileRun.passes``: a pool in the write-back,
    :mod:`codesign.sim.poolfuse`) before its store, which holds no bus (a store of nothing after it: the pass
    alone)."""
    tiles = list(_tiles(runs))
    n = len(tiles)
    if n == 0:
        return PipelineTiming(0, 0)
    nbuf = 2 if config.double_buffered else 1
    env = simpy.Environment()
    loaded = [env.event() for _ in range(n)]
    computed = [env.event() for _ in range(n)]
    stored = [env.event() for _ in range(n)]
    # the memory's data bus: write data phases take it at once (preempting), reads use the rest
    bus = simpy.PreemptiveResource(env, capacity=1)
    r_lead, w_lead = read_lead_cycles(config), write_lead_cycles(config) + store_extra_cycles
    w_tail = config.dram_latency_cycles + 1

    def read(nbytes: int, after: simpy.Event | None = None,
             done: simpy.Event | None = None) -> Generator[simpy.Event, object, None]:
        left = load_cycles(nbytes, config) - r_lead
        yield env.timeout(r_lead)
        if after is not None:  # the data follows the previous command's (the memory answers in order)
            yield after
        while left > 0:  # the data phase: cycles no write data phase takes
            with bus.request(priority=1, preempt=False) as req:
                began = -1
                try:
                    yield req
                    began = int(env.now)
                    yield env.timeout(left)
                    left = 0
                except simpy.Interrupt:  # a write's data took the bus (maybe as it was granted)
                    if began >= 0:
                        left -= int(env.now) - began
        if done is not None:
            done.succeed()

    def reads() -> Generator[simpy.Event, object, None]:
        if prologue_bytes > 0:
            yield from read(prologue_bytes)
        if prologue_extra_cycles > 0:
            yield env.timeout(prologue_extra_cycles)
        ends: list[simpy.Event] = []  # each load command's data end, in order
        decided = -LOAD_ISSUE_GAP_CYCLES
        for i in range(n):
            if tiles[i].load_bytes > 0:
                if i >= nbuf:
                    yield computed[i - nbuf]  # the input slot is free once tile i-B is computed
                if len(ends) >= DMA_READ_SLOTS:
                    yield ends[-DMA_READ_SLOTS]  # a command slot of the DMA is free
                wait = decided + LOAD_ISSUE_GAP_CYCLES - int(env.now)
                if wait > 0:
                    yield env.timeout(wait)
                decided = int(env.now)
                done = env.event()
                env.process(read(tiles[i].load_bytes, ends[-1] if ends else None, done))
                ends.append(done)
            _when(loaded[i], ends[-1] if ends else None)

    def writes() -> Generator[simpy.Event, object, None]:
        for i in range(n):
            if not tiles[i].store_bytes and not tiles[i].passes:
                continue
            yield computed[i]
            if tiles[i].passes:
                yield env.timeout(store_pass_cycles + tiles[i].pass_words)
                if not tiles[i].store_bytes:
                    stored[i].succeed()
                    continue
            yield env.timeout(w_lead)
            with bus.request(priority=0, preempt=True) as req:
                yield req
                yield env.timeout(store_cycles(tiles[i].store_bytes, config) + store_extra_cycles - w_lead - w_tail)
            yield env.timeout(w_tail)
            stored[i].succeed()

    def array() -> Generator[simpy.Event, object, None]:
        for i in range(n):
            yield loaded[i]
            if i >= nbuf:
                yield stored[i - nbuf]
            yield env.timeout(tiles[i].compute_cycles)
            computed[i].succeed()
            if not tiles[i].store_bytes and not tiles[i].passes:
                stored[i].succeed()  # nothing to write back: the output slot stays on chip

    env.process(reads())
    env.process(writes())
    done = env.process(array())
    env.run()
    if not done.processed:  # pragma: no cover - would be a deadlock in the model
        raise CodesignError("internal error: the tile pipeline deadlocked")
    end = max(int(env.now), 0)
    return PipelineTiming(end, sum(t.compute_cycles for t in tiles))


def _when(event: simpy.Event, after: simpy.Event | None) -> None:
    """``event`` succeeds when ``after`` has (at once without one)."""
    if after is None or after.processed:
        event.succeed()
    else:
        def fire(_e: simpy.Event) -> None:
            event.succeed()

        after.callbacks.append(fire)


# --------------------------------------------------------------------------------------------
# Closed-form twin: the same schedule as a recurrence, O(number of distinct runs)
# --------------------------------------------------------------------------------------------
def data_end(t0: int, cycles: int, phases: Sequence[tuple[int, int]]) -> int:
    """The end of a read's data phase: ``cycles`` cycles from ``t0`` on that lie in none of the
    write data ``phases`` (``[start, end)``, ascending, disjoint; writes take the bus first)."""
    pos, left = t0, cycles
    for ps, pe in phases:
        gap = ps - pos if ps > pos else 0
        if left <= gap:
            return pos + left
        left -= gap
        if pe > pos:
            pos = pe
    return pos + left


def pipeline_closed_form(runs: Sequence[TileRun], config: AcceleratorConfig, prologue_bytes: int = 0,
                         store_extra_cycles: int = 0, prologue_extra_cycles: int = 0,
                         store_pass_cycles: int = 0) -> PipelineTiming:
    e = store_extra_cycles
    w_lead = write_lead_cycles(config) + e

    def store(r: TileRun) -> tuple[int, int]:  # (cycles, its data phase's start from the store's: -1 none)
        pss = store_pass_cycles + r.pass_words if r.passes else 0
        if not r.store_bytes:
            return pss, -1
        return pss + store_cycles(r.store_bytes, config) + e, pss + w_lead

    params = tuple((load_cycles(r.load_bytes, config), *store(r), r.compute_cycles) for r in runs)
    return _pipeline_closed_form(tuple(r.count for r in runs), params, 2 if config.double_buffered else 1,
                                 load_cycles(prologue_bytes, config) + prologue_extra_cycles, read_lead_cycles(config),
                                 config.dram_latency_cycles + 1)


@lru_cache(maxsize=1 << 16)
def _pipeline_closed_form(counts: tuple[int, ...], params: tuple[tuple[int, int, int, int], ...],
                          nbuf: int, prologue: int, r_lead: int, w_tail: int) -> PipelineTiming:
    """The engine's schedule as a recurrence over steps ``k``: compute tile ``k - 1``, store it (the
    write queue; its data phase is as alone: writes have the bus first), load tile ``k`` (the read
    queue; its data takes the cycles the data phases of stores ``k - 2B + 1 .. k - 1`` leave: store
    ``k - 2B`` ended before tile ``k - B``'s compute, which the load waits for). Inside a run of
    identical tiles the recurrence becomes periodic after a few steps (the state, relative to the
    last compute's end, repeats); then whole periods are skipped."""
    n = sum(counts)
    compute_total = sum(c * p[3] for c, p in zip(counts, params, strict=True))
    if n == 0:
        return PipelineTiming(0, 0)
    ends = []
    acc = 0
    for c in counts:
        acc += c
        ends.append(acc)

    def run(j: int, hint: list[int]) -> int:
        while ends[hint[0]] <= j:
            hint[0] += 1
        return hint[0]

    b = nbuf
    gap = LOAD_ISSUE_GAP_CYCLES
    le: dict[int, int] = {}  # load ends
    ce: dict[int, int] = {}  # compute ends
    se: dict[int, int] = {}  # output slot free (store end, or compute end without a store)
    wp: dict[int, tuple[int, int]] = {}  # store data phases
    # the last load command's data end, the one's before it (its DMA slot), the last load decision
    t_r, t_w, t_r2, t_d = prologue, 0, prologue, prologue - gap
    hl, hc, hp = [0], [0], [0]  # run hints (each for a tile index that only grows)
    prev_state: tuple[object, ...] | None = None
    prev_k, prev_ref = -2, 0
    k = 0
    while k <= n:
        j = k - 1
        if j >= 0:  # compute and store tile k - 1
            _, st, lead, comp = params[run(j, hc)]
            start = le[j]
            if j and ce[j - 1] > start:
                start = ce[j - 1]
            if j >= b and se[j - b] > start:
                start = se[j - b]
            ce[j] = start + comp
            if st:
                t0 = t_w if t_w > ce[j] else ce[j]
                if lead >= 0:  # the store's data phase (a pass alone has none)
                    wp[j] = (t0 + lead, t0 + st - w_tail)
                t_w = t0 + st
                se[j] = t_w
            else:
                se[j] = ce[j]
        if k < n:  # load tile k
            ld = params[run(k, hl)][0]
            if ld:
                d = max(t_r2, t_d + gap)  # a DMA slot free (load k - 2's data in), the iterator's fields
                if k >= b and ce[k - b] > d:
                    d = ce[k - b]
                phases = [wp[x] for x in range(max(0, k - 2 * b + 1), k) if x in wp]
                t_r2, t_d, t_r = t_r, d, data_end(max(d + r_lead, t_r), ld - r_lead, phases)
            le[k] = t_r
        if j >= 0:  # a queue idle since before tile k-1's compute end: every later command waits for
            # a compute at or after it (the clamp lets tiles that load or store nothing be jumped)
            t_r, t_w, t_r2, t_d = max(t_r, ce[j]), max(t_w, ce[j]), max(t_r2, ce[j]), max(t_d, ce[j] - gap)
        for d in (le, ce, se, wp):
            d.pop(k - 3 * b, None)
        # periodicity: tiles k - 3B .. k + 1 in one run, and the state shifted by a constant
        r = run(k - 3 * b, hp) if k >= 3 * b else -1
        if r >= 0 and k + 1 < n and ends[r] > k + 1:
            ref = ce[j]
            state = (t_r - ref, t_w - ref, t_r2 - ref, t_d - ref,  # tiles relative to k, times relative to ref
                     *((x - k, v - ref) for dct in (le, ce, se) for x, v in sorted(dct.items())),
                     *((x - k, p0 - ref, p1 - ref) for x, (p0, p1) in sorted(wp.items())))
            if state == prev_state and prev_k == k - 1:
                delta = ref - prev_ref
                periods = ends[r] - 1 - (k + 1)  # steps that keep the window inside run r
                if periods > 0:
                    add = periods * delta
                    for dct in (le, ce, se):
                        moved = {x + periods: v + add for x, v in dct.items()}
                        dct.clear()
                        dct.update(moved)
                    moved_p = {x + periods: (v[0] + add, v[1] + add) for x, v in wp.items()}
                    wp.clear()
                    wp.update(moved_p)
                    t_r += add
                    t_w += add
                    t_r2 += add
                    t_d += add
                    k += periods
                    prev_state = None
                    k += 1
                    continue
            prev_state, prev_ref, prev_k = state, ref, k
        k += 1
    end = max(t_r, t_w, ce[n - 1], se[n - 1])
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
        pt = run(plan.runs, config, plan.tiling.prologue_bytes if plan.tiling else 0, plan.store_extra_cycles,
                 plan.prologue_extra_cycles, plan.store_pass_cycles)
        if (config.zero_handling is ZeroHandling.SKIP and layer.weights.density < 1.0
                and skip_hardware(config) is None):
            # idealized skipping (model-only) is a per-layer choice: where compressed weights and
            # their metadata cost more than they save (high density, memory-bound), the layer runs
            # dense and gated. The n:m hardware has one layout per layer (sim.tileplan.skip_slots).
            gated = plan_layer(layer, batch, config.replace(zero_handling=ZeroHandling.GATE), context)
            pt_gated = run(gated.runs, config, gated.tiling.prologue_bytes if gated.tiling else 0,
                           gated.store_extra_cycles, gated.prologue_extra_cycles)
            if pt_gated.cycles < pt.cycles:
                plan, pt = gated, pt_gated
        if plan.tiling is not None:  # what the RTL's address and dimension registers hold (sim.widths)
            check_plan(layer.name, plan.tiling, config)
        g = (gemm_layer(layer) or layer).gemm(batch)  # (an average pool: its convolution's GEMM)
        macs = layer.macs(batch)
        gm = (g.m, g.n, g.k, g.repeats) if g is not None else (0, 0, 0, 0)
    return _layer_result(layer, plan, pt, macs, gm, config, context)


def layer_model_only(layer: Layer, config: AcceleratorConfig, context: LayerContext = DEFAULT) -> str:
    """Why the generated hardware does not run ``layer`` as simulated ('' when it does)."""
    if context.fused:
        reasons = [model_only_reason(config), *model_only_reasons(context)]
    else:
        reasons = [*unfused_reasons(layer, config, model_only_reason(config)), *model_only_reasons(context)]
    return "; ".join(r for r in reasons if r)


def unfused_reasons(layer: Layer, config: AcceleratorConfig, design_reason: str) -> list[str]:
    """The reasons of a layer that is not fused into another, given the design's own
    (``model_only_reason(config)``, computed once per design by callers that label many layers)."""
    from codesign.sim.vecplan import activation_reason

    return [*_unfused_reasons(layer, config, design_reason), activation_reason(layer, config)]


def _unfused_reasons(layer: Layer, config: AcceleratorConfig, design_reason: str) -> list[str]:
    from codesign.workloads.layers import Conv2d, Pool, gemm_layer

    layer = gemm_layer(layer) or layer  # an average pool runs as its convolution
    if isinstance(layer, Pool) and config.depthwise_on_engine:  # a max pool on the built depthwise engine
        from codesign.sim import dwplan

        if not dwplan.pool_reason(layer, 1, config):
            return [design_reason]

    if config.depthwise_on_engine and isinstance(layer, Conv2d) and layer.is_depthwise:
        from codesign.sim import dwplan

        if dwplan.design_reason(config):
            from codesign.sim.vector_engine import REASON

            return [design_reason, REASON]
        if not dwplan.layer_reason(layer, 1, config):
            return [design_reason]
    if not layer.has_gemm:
        from codesign.sim.vecplan import layer_reason

        return [design_reason, "" if not layer_reason(layer, config) else VECTOR_REASON]
    g = layer.gemm(1)
    return [design_reason, requant_table_reason(g.repeats, g.n, config) if g is not None else ""]


def _fused_result(layer: Layer, batch: int, config: AcceleratorConfig, ctx: LayerContext) -> LayerResult:
    """A layer fused into its producer's write-back: no cycles of its own (they are the head's);
    its vector ops and the DRAM reads of its other operands."""
    # (a built residual add: the head's DMA reads its residual, counted on the head's row)
    counts = Counts(vector_ops=layer.vector_ops(batch), dram_read_bits=0 if ctx.writeback_add else ctx.other_dram_bits,
                    input_sram_write_bits=0)
    if ctx.dw is not None:  # a depthwise convolution in its 1x1 convolution's write-back (sim.dwfuse)
        from codesign.sim.dwfuse import stage_counts

        counts = stage_counts(layer, batch, config)  # type: ignore[arg-type]
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
        utilization=(macs - plan.counts.skipped_macs) / (pt.cycles * _mac_units(plan, config)) if pt.cycles else 0.0,
        energy_pj=sum(energy.values()),
        energy_breakdown_pj=energy,
        counts=plan.counts,
        folds=plan.folds,
        tiles=plan.tiles,
        model_only=layer_model_only(layer, config, context),
        input_from=ONCHIP if context.res_in else context.input_from,  # (built residency: sim.residency)
        other_from=context.other_from or ("dram" if _other_operands(layer) else ""),
        output_to=ONCHIP if context.res_out else context.output_to,
        plan=desc,
    )


def _mac_units(plan: LayerPlan, config: AcceleratorConfig) -> int:
    """The multipliers a layer's utilization is counted against: the array's PEs, or the depthwise
    engine's (``lanes`` windows of ``depthwise_kernel`` squared) for a layer on the built engine."""
    from codesign.sim.dwplan import DwPlan

    if isinstance(plan.tiling, DwPlan):
        return plan.tiling.lanes * plan.tiling.kmax ** 2
    return config.pes


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
