"""On-chip residency: a layer's output written into the input buffer for the next layer (built).

Why. On an edge network most layers are small: DS-CNN's feature maps are 8 KB, MobileNetV2's last
stages 10-50 KB. Each one still went out to DRAM and came back (a store, a load, twice the bus latency
and, on an 8x8 array with a 16-byte bus, two padded beats a byte of data), and DRAM energy was most of
the network's (DS-CNN on 8x8 at 100 MHz: 58 of 72 uJ).

The hardware. The input buffer has two slots (double buffering). A layer that reads its whole input as
one tile (one A load, or none: below) uses one slot only; its write-back can put its output into the
other, word for word where the next layer's single A load would have put it. That next layer then loads
no A at all: its input is already in its slot. So the slots alternate along a chain of such layers
(``in_slot``: the slot a layer's input lies in, or its one load goes to; the output goes to the other).

* ``flags`` bit 12 (``res_in``): the input is resident in slot ``in_slot``: no A loads (the tile
  iterator's ``load_a`` is 0 and its A slot ``in_slot`` throughout).
* ``flags`` bit 13 (``in_slot``): the input's slot (resident, or where its one load goes).
* ``flags`` bit 14 (``res_out``): every store is a *pass*: the write-back reads the tile's words,
  requantizes them (and runs the vector unit's table activation, if any) and writes them into the input
  buffer at ``c_addr`` (then in buffer words: the host sets ``c_base`` to the other slot's first word and
  the C strides in words), holding no bus.

Which edges (:func:`edge_reason`): a producer ``p`` and the layer after it ``c = p + 1``, ``c`` the only
reader of ``p``'s output, both otherwise running alone (no fused add or pool), the design building
residency (:func:`design_reason`); ``p`` reads its input as one tile (or has it resident), ``c`` reads its
input as one tile whose bytes are exactly ``p``'s output in DRAM (the same words from the same base), on
the array or the depthwise engine (a GEMM's A operand, a convolution's planes or the engine's planes; an
average pool read as the array's B operand is not). Both layers keep the plan they have alone, except a
convolution with on-chip windows whose own plan cuts an input that fits a slot into bands: the edge may plan
it as one tile (:func:`single_win_plan`, context ``single_tile``), taken only where the two layers then take
fewer cycles than without residency.

Timing contract (the RTL meets it; ``tests/rtl/test_residency_rtl.py`` checks it cycle for cycle): a
resident input removes its A bytes from the one load that had them (that load moves its B blocks only,
or nothing); a resident store takes ``RES_PASS_OVERHEAD_CYCLES + words`` (plus the vector unit's
``WRITEBACK_ADD_CYCLES`` with a table activation) from its decision to its last word written, one word a
cycle, no bus, no write response. Counts: the A load's DRAM bytes and the store's are gone; the words
written into the input buffer are counted as the load's were.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from codesign.sim.config import AcceleratorConfig, Dataflow, Fusion
from codesign.sim.tileplan import REQUANT_STAGES, run_lengths, skip_hardware

if TYPE_CHECKING:
    from codesign.sim.fusion import LayerContext
    from codesign.sim.mapping import LayerPlan
    from codesign.workloads.layers import Layer

#: a resident store's cycles besides its words: the sequencer's decision, the DMA's command register, the
#: output buffer's read, the requantize cuts, the write-back queue (its word written into the input buffer as
#: it leaves: measured on the RTL, tests/rtl/test_residency_rtl.py)
RES_PASS_OVERHEAD_CYCLES = 2 + REQUANT_STAGES + 1
FLAG_RES_IN, FLAG_IN_SLOT, FLAG_RES_OUT = 1 << 12, 1 << 13, 1 << 14
#: descriptor fields holding C addresses (bytes in DRAM; buffer words for a resident store)
C_ADDRESS_FIELDS = ("c_base", "c_stride_g", "c_stride_m", "c_stride_n", "cv_c_block")


def design_reason(config: AcceleratorConfig) -> str:
    """Why ``config``'s hardware does not build residency ('' when it does; whether layers use it is
    ``fusion``'s: auto and eltwise)."""
    c = config
    if not c.residency:
        return "residency is false"
    if not c.double_buffered:
        return "residency needs the input buffer's two slots (double_buffered)"
    if c.dataflow is not Dataflow.WS:
        return f"residency is built beside the weight-stationary array, not {c.dataflow.value!r}"
    if c.rows != c.cols:
        return f"residency needs a square array (an output word is an input word), not {c.rows}x{c.cols}"
    if not c.requantize:
        return "residency needs the requantizing write-back (outputs at act_bits)"
    if skip_hardware(c) is not None:
        return "residency is not built on the n:m skipping array"
    return ""


def in_use(config: AcceleratorConfig) -> bool:
    """Whether layers keep outputs on chip on ``config``: the design builds residency and ``fusion`` is auto
    or eltwise (none runs every layer alone; full has its own, model-only residency)."""
    return not design_reason(config) and config.fusion in (Fusion.AUTO, Fusion.ELTWISE)


def _plan_kind(lp: LayerPlan) -> Any:
    """The built plan of ``lp`` that residency applies to (None for the others)."""
    from codesign.sim.convplan import WinPlan
    from codesign.sim.dwplan import DwPlan
    from codesign.sim.tileplan import TilePlan

    t = lp.tiling
    if isinstance(t, TilePlan) and t.pool is None and t.requantized:
        return t
    if isinstance(t, WinPlan) and t.requantized:
        return t
    if isinstance(t, DwPlan) and t.requantized and t.mult == 1:  # (a multiplier's planes: not its reader's order)
        return t
    return None


def a_load_tiles(plan: Any) -> list[Any]:
    """The tiles of ``plan`` that load A."""
    return [t for t in plan.tiles() if t.load_a]


def single_input_bytes(lp: LayerPlan) -> int:
    """DRAM bytes of a layer's input when its plan reads it as one tile, the whole footprint (else 0)."""
    plan = _plan_kind(lp)
    if plan is None:
        return 0
    loads = a_load_tiles(plan)
    if len(loads) != 1:
        return 0
    t = loads[0]
    a = plan.tile_transfers(replace(t, load_b=False))[0]
    return a if a == plan.dram_footprint_bytes[0] else 0


def edge_reason(p_layer: Layer, c_layer: Layer, p_plan: LayerPlan, c_plan: LayerPlan, p_res_in: bool,
                config: AcceleratorConfig) -> str:
    """Why ``p_layer``'s output cannot stay in the input buffer for ``c_layer`` (the next layer, its only
    reader) with these plans (each alone; ``p_res_in``: ``p``'s own input is resident) ('' when it can)."""
    from codesign.sim.mapping import map_is_b
    from codesign.workloads.layers import Conv2d, Linear, Pool, gemm_layer

    pp, cp = _plan_kind(p_plan), _plan_kind(c_plan)
    if pp is None or cp is None:
        return "both layers run on the array or the depthwise engine with a requantizing write-back"
    if not isinstance(c_layer, (Conv2d, Linear, Pool)) or map_is_b(c_layer, gemm_layer(c_layer)):
        return "the next layer reads its input as the array's A operand or the engine's planes"
    if not p_res_in and not single_input_bytes(p_plan):
        return f"{p_layer.name!r} reads its input in more than one tile"
    need = single_input_bytes(c_plan)
    if not need:
        return f"{c_layer.name!r} reads its input in more than one tile"
    if need != pp.dram_footprint_bytes[2] or _word_bytes(cp, 0) != _word_bytes(pp, 2):
        return f"{c_layer.name!r} reads other words than {p_layer.name!r} writes"
    return ""


def _word_bytes(plan: Any, operand: int) -> int:
    """DRAM bytes of one word of ``plan``'s A (0), B (1) or C (2) operand."""
    from codesign.sim.tileplan import TilePlan

    if isinstance(plan, TilePlan):
        return int(plan.beats_per_word[operand] * plan.bus_bytes)
    return int(plan.word_bytes()[operand])


def resident_plan(lp: LayerPlan, ctx: LayerContext, config: AcceleratorConfig) -> LayerPlan:
    """``lp`` (the layer's plan alone) with its input resident (``ctx.res_in``) and/or its output kept
    in the input buffer (``ctx.res_out``): the runs without the A load's bytes, the stores as passes of
    their words, the DRAM counts without those bytes."""
    from codesign.sim.mapping import TileRun

    plan = _plan_kind(lp)
    assert plan is not None
    tiles = list(plan.tiles())
    flat = [r for r in lp.runs for _ in range(r.count)]
    assert len(flat) == len(tiles)
    cw = _word_bytes(plan, 2)
    a_bytes = single_input_bytes(lp) if ctx.res_in else 0
    first_a = a_load_tiles(plan)[0].index if ctx.res_in else -1
    out: list[tuple[int, int, int, int]] = []
    for t, r in zip(tiles, flat, strict=True):
        load, store, words = r.load_bytes, r.store_bytes, 0
        if t.index == first_a:
            load -= a_bytes
        if ctx.res_out and store:
            words, store = store // cw, 0
        out.append((load, store, r.compute_cycles, words))
    runs = tuple(TileRun(n, ld, st, cy, passes=w > 0, pass_words=w) for n, ld, st, cy, w in run_lengths(out))
    c = lp.counts
    stored = sum(r.store_bytes * r.count for r in lp.runs) if ctx.res_out else 0
    counts = replace(c, dram_read_bits=c.dram_read_bits - a_bytes * 8, dram_write_bits=c.dram_write_bits - stored * 8)
    return replace(lp, runs=runs, counts=counts,
                   store_pass_cycles=RES_PASS_OVERHEAD_CYCLES + lp.store_extra_cycles if ctx.res_out else 0)


def fits_a_slot(layer: Layer, batch: int, config: AcceleratorConfig) -> bool:
    """Whether ``layer``'s output, at the activations' bits, could fit one slot of the input buffer (half of
    it): a necessary condition for keeping it there, checked before any plan (padding only adds to it)."""
    bits = min(layer.outputs.bits, config.act_bits)
    return layer.output_elements(batch) * bits <= config.input_sram_bytes * 4


def any_candidate(layers: list[Layer], batch: int, config: AcceleratorConfig) -> bool:
    """Whether some layer's output (but the last's) could stay in the input buffer on ``config`` (cheap:
    :func:`fits_a_slot` and the design; the edges themselves are :func:`resident_edges`')."""
    return in_use(config) and any(fits_a_slot(ly, batch, config) for ly in layers[:-1])


def structural_edges(net: Any) -> list[int]:
    """The layers ``p`` whose only reader is the next layer, an array or engine layer reading it as its input
    (a convolution, linear layer or pool): the edges residency may keep, whatever the config."""
    from codesign.sim.fusion import producers
    from codesign.workloads.layers import Conv2d, Linear, Pool

    layers = net.layers
    readers: list[set[int]] = [set() for _ in layers]
    for i, ps in enumerate(producers(net)):
        for q in ps:
            if q is not None:
                readers[q].add(i)
    return [i for i in range(len(layers) - 1)
            if readers[i] == {i + 1} and isinstance(layers[i + 1], (Conv2d, Linear, Pool))]


def single_win_plan(layer: Layer, batch: int, config: AcceleratorConfig) -> LayerPlan | None:
    """A convolution with on-chip windows planned to read its whole input as one tile (every output row, every
    input plane; the output channels cut as the slots need, the best by ``config.objective`` as
    ``convplan._exact_pick`` chooses), for residency where its own plan cuts the input; None when its own
    plan already reads it whole, or none fits."""
    from codesign.sim import convplan
    from codesign.workloads.layers import Conv2d

    if not isinstance(layer, Conv2d) or layer.is_depthwise or convplan.layer_reason(layer, batch, config):
        return None
    return _single_win(layer, batch, config)


@lru_cache(maxsize=4096)
def _single_win(layer: Layer, batch: int, config: AcceleratorConfig) -> LayerPlan | None:
    from codesign.sim import convplan
    from codesign.sim.mapping import with_activation

    assert isinstance(layer, convplan.Conv2d)
    alone = convplan.plan_win(layer, batch, config)
    if batch != 1 or (alone.n_mt == 1 and alone.n_kt == 1):
        return None
    cols, chunks = alone.geometry.cols, -(-layer.out_channels // alone.geometry.cols)
    plans = [p for nf in range(chunks, 0, -1) for wo in (True, False)
             for p in (replace(alone, mt=alone.out_h, nt=layer.out_channels if nf == chunks else nf * cols,
                               kt=alone.planes, weights_outer=wo),) if p.fits()]
    if not plans:
        return None
    best = convplan._exact_pick(layer, batch, tuple(plans), config)
    return with_activation(convplan._layer_plan(layer, batch, config, best, residual=False), layer, batch, config)


def _cycles(lp: LayerPlan, config: AcceleratorConfig) -> int:
    """The closed-form cycles of a layer plan (as ``sim.engine.simulate_layer`` times it)."""
    from codesign.sim.engine import pipeline_closed_form

    return pipeline_closed_form(lp.runs, config, lp.tiling.prologue_bytes if lp.tiling else 0,
                                lp.store_extra_cycles, lp.prologue_extra_cycles, lp.store_pass_cycles).cycles


def resident_edges(layers: list[Layer], batch: int, consumers: list[set[int]], alone: list[bool],
                   config: AcceleratorConfig, maybe_single: Callable[[int], bool] | None = None
                   ) -> tuple[list[bool], list[bool], list[int], list[bool]]:
    """``(res_in, res_out, in_slot, single_tile)`` of each layer: the chains of resident outputs, in execution
    order (``alone``: the layer runs with the default context; ``maybe_single``: False for a layer that surely
    reads its input in more than one tile, whatever its plan, which no edge can have on either side). Where a
    windows convolution's own plan cuts its input in tiles, the edge takes its :func:`single_win_plan`
    (``single_tile``) when the two layers then take fewer cycles than without residency."""
    from codesign.errors import CodesignError
    from codesign.sim.fusion import DEFAULT
    from codesign.sim.mapping import plan_layer

    n = len(layers)
    res_in, res_out, slot, forced = [False] * n, [False] * n, [0] * n, [False] * n
    if not in_use(config):
        return res_in, res_out, slot, forced
    plans: dict[int, Any] = {}

    def plan(i: int) -> Any:
        if i not in plans:
            try:
                plans[i] = plan_layer(layers[i], batch, config, DEFAULT)
            except CodesignError:  # a layer the design cannot run raises on its own path
                plans[i] = None
        return plans[i]

    def ctx(i: int, r_in: bool, r_out: bool) -> LayerContext:
        return replace(DEFAULT, res_in=r_in, res_out=r_out, in_slot=slot[i], single_tile=forced[i])

    for p in range(n - 1):
        c = p + 1
        if not (alone[p] and alone[c] and consumers[p] == {c} and fits_a_slot(layers[p], batch, config)):
            continue
        if maybe_single is not None and not (maybe_single(p) and maybe_single(c)):
            continue
        pp = plan(p)  # (the producer's cheap checks first: a consumer's plan may be a search)
        if pp is None or _plan_kind(pp) is None:
            continue
        f_p = False
        if not (res_in[p] or forced[p] or single_input_bytes(pp)):
            sp = single_win_plan(layers[p], batch, config)
            if sp is None:
                continue
            pp, f_p = sp, True
        elif forced[p]:
            pp = single_win_plan(layers[p], batch, config)
        cp, f_c = plan(c), False
        if cp is not None and _plan_kind(cp) is not None and not single_input_bytes(cp):
            sc = single_win_plan(layers[c], batch, config)
            if sc is not None:
                cp, f_c = sc, True
        if cp is None or edge_reason(layers[p], layers[c], pp, cp, res_in[p], config):
            continue
        if f_p or f_c:  # a plan of one tile instead of the layer's own: only where the pair gains
            mine = plan(p) if not forced[p] else pp
            before = _cycles(resident_plan(mine, ctx(p, res_in[p], False), config) if res_in[p] else mine,
                             config) + _cycles(plan(c), config)
            forced_p = forced[p] or f_p
            after = _cycles(resident_plan(pp, replace(ctx(p, res_in[p], True), single_tile=forced_p), config),
                            config) + _cycles(resident_plan(cp, replace(ctx(c, True, False), in_slot=1 - slot[p],
                                                                        single_tile=f_c), config), config)
            if after >= before:
                continue
            forced[p], forced[c] = forced_p, f_c
        res_out[p], res_in[c] = True, True
        slot[c] = 1 - slot[p]
    return res_in, res_out, slot, forced


def descriptor_fields(desc: dict[str, int], plan: Any, ctx: LayerContext, a_slot_words: int) -> dict[str, int]:
    """The descriptor ``desc`` (the plan's, DRAM addresses) with ``ctx``'s residency: the flags, and for a
    resident output its C addresses in words of the input buffer's other slot."""
    d = dict(desc)
    d["flags"] |= (FLAG_RES_IN if ctx.res_in else 0) | (FLAG_IN_SLOT if ctx.in_slot else 0) | (
        FLAG_RES_OUT if ctx.res_out else 0)
    if ctx.res_out:
        cw = _word_bytes(plan, 2)
        for f in C_ADDRESS_FIELDS:
            if f == "c_base":
                continue
            assert d[f] % cw == 0, (f, d[f], cw)
            d[f] //= cw
        d["c_base"] = (1 - ctx.in_slot) * a_slot_words
    return d
