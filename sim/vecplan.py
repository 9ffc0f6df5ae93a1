"""The vector unit's plan in the whole-layer top: residual adds and squeeze-excite scales.

A residual add (``Eltwise`` ADD of two full tensors) and a squeeze-excite scale (MUL of a map by a
per-channel scale: see :class:`VecPlan`) run on the vector unit
(:mod:`codesign.hdl.engines.vector`, TFLite's 8-bit ADD with each input's own scale) beside a square
weight-stationary array whose weights and activations have the same bits (``vector_unit: true``, the
default): ``lanes = cols`` elements a word, one word a cycle through its 7 stages.

Memory layout: the two inputs and the output are *flat*: element ``e`` is lane ``e % lanes`` of word
``e // lanes`` (an add is element-wise: any layout both inputs share is the output's; a feature map in
planes of ``lanes`` channels is such a flat vector of its words). X is read into the input buffer, Y
into the weight buffer (hence the equal bits), the sums go to the output buffer as sign-extended lanes
and through the DMA's write-back, whose requantization table holds one identity entry (the unit's
output is already the result: ``((x * 2**14) + 2**13) >> 14 = x``).

Tiles: chunks of ``mt`` words that fit a slot of each buffer, through the array's DMA program (X and
Y loaded, the chunk computed, stored). Timing contract: a chunk of ``ms`` words takes
``TILE_ISSUE_CYCLES + ms + VEC_LATENCY_CYCLES`` cycles (one word read a cycle, the buffer's read
cycle and the unit's 7 stages after the last one).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from functools import lru_cache

from codesign.sim.config import AcceleratorConfig, Dataflow
from codesign.sim.dwplan import LanePlan
from codesign.sim.tileplan import (
    CV_FIELDS,
    DWS_FIELDS,
    POOL_FIELDS,
    RES_FIELDS,
    TILE_ISSUE_CYCLES,
    Tile,
    WordGeometry,
    bus_bytes,
    skip_hardware,
)
from codesign.sim.timing import ceil_div
from codesign.workloads.layers import Eltwise, EltwiseOp, Layer

VEC_LATENCY_CYCLES = 8  # the buffers' read cycle and the unit's 7 stages (hdl.engines.vector.LATENCY_CYCLES)
IDENTITY_MULT, IDENTITY_SHIFT = 1 << 14, 14  # the write-back's identity requantization entry


PARAM_NAMES = ("input1_offset", "input2_offset", "left_shift", "input1_multiplier", "input1_shift",
               "input2_multiplier", "input2_shift", "output_multiplier", "output_shift", "output_offset",
               "act_min", "act_max")  # an op's parameters (workloads.eltwise_arith), as the vec_* fields


def param_fields(params: object) -> dict[str, int]:
    """The ``vec_*`` descriptor fields of an op's parameters (all 0 without them), two's complement."""
    return {f"vec_{f}": (int(getattr(params, f)) if params is not None else 0) & 0xFFFFFFFF for f in PARAM_NAMES}


def design_reason(config: AcceleratorConfig) -> str:
    """Why ``config`` does not build the vector unit in the whole-layer top ('' when it does)."""
    c = config
    if not c.vector_unit:
        return "vector_unit is false"
    if c.dataflow is not Dataflow.WS or c.rows != c.cols:
        return "the vector unit is built beside a square weight-stationary array"
    if c.weight_bits != c.act_bits or not 2 <= c.act_bits <= 8:
        return "the vector unit needs weight_bits equal to act_bits, from 2 to 8 (its second operand is read "\
               "through the weight buffer)"
    if skip_hardware(c) is not None:
        return "the vector unit is not built beside the n:m skipping array"
    if c.vector_lanes not in (0, c.cols):
        return f"vector_lanes must be the array's cols ({c.cols}) for the built vector unit, not {c.vector_lanes}"
    return ""


def activation_reason(layer: Layer, config: AcceleratorConfig) -> str:
    """Why the generated hardware does not apply ``layer``'s table activation in its write-back ('' when
    it does, or the layer has none): the table is the vector unit's, its words ride in the requantization
    table's buffer (:func:`codesign.sim.mapping.with_activation`)."""
    if not layer.activation:
        return ""
    reason = design_reason(config)
    if reason:
        return f"a table activation ({layer.activation}) runs on the vector unit: {reason}"
    if not config.requantize:
        return f"a table activation ({layer.activation}) needs the requantizing write-back (requantize: true)"
    from codesign.sim.mapping import plan_layer
    from codesign.sim.tileplan import q_table_words

    tiling = plan_layer(layer, 1, config).tiling
    if tiling is not None and getattr(tiling, "q_words", 0) > q_table_words(config):
        return (f"the requantization table and the activation's ({tiling.q_words} words) must fit the "
                f"{q_table_words(config)}-word table buffer")
    return ""


def layer_reason(layer: Layer, config: AcceleratorConfig) -> str:
    """Why the built vector unit cannot run ``layer`` ('' when it can: :func:`plan_vec` works)."""
    if not isinstance(layer, Eltwise):
        return "not an element-wise layer"
    if _shape(layer) is None:
        return "the built vector unit runs the add of two full tensors or the multiply by a per-channel scale"
    return design_reason(config)


def _shape(layer: Eltwise) -> tuple[str, int, int] | None:
    """``("add", elements, 1)`` or ``("mul", channels, pixels)`` (a squeeze-excite scale: the map times
    a per-channel scale), else None."""
    if layer.inputs_count != 2:
        return None
    ops = layer.operand_elements or (layer.elements, layer.elements)
    if layer.op is EltwiseOp.ADD and ops == (layer.elements, layer.elements):
        return "add", layer.elements, 1
    if layer.op is EltwiseOp.MUL and ops[0] == layer.elements and 1 < ops[1] < layer.elements \
            and layer.elements % ops[1] == 0:  # (a scalar factor is not a per-channel scale: model-only)
        return "mul", ops[1], layer.elements // ops[1]
    return None


@dataclass(frozen=True)
class VecPlan(LanePlan):
    """Tiles of an element-wise layer on the vector unit (see the module docstring).

    ``add``: one group of ``ceil(elements / lanes)`` flat words in chunks of ``mt``. ``mul`` (a
    squeeze-excite scale): the map as planes of ``lanes`` channels (``[batch][C / lanes][pixels]`` words,
    the depthwise engine's layout), one group per plane, its scale one word (``lanes`` channels) read
    once per plane and held for every pixel; whole planes ``gt`` to a tile, or chunks of ``mt`` pixels."""

    op: str  # "add" or "mul"
    batch: int
    size: int  # add: elements of one image; mul: channels
    pixels: int  # mul: pixels of a plane (1 for add)
    geometry: WordGeometry
    bus_bytes: int
    slots: int
    slot_words: tuple[int, int, int]
    gt: int
    mt: int  # words a chunk
    nt = 1  # (TilePlan's names, for the result's plan column)
    kt = 1
    weights_outer = False

    @property
    def broadcast(self) -> bool:
        return self.op == "mul"

    @property
    def elements(self) -> int:
        """Elements of the output, all images."""
        return self.batch * self.size * self.pixels

    @property
    def groups(self) -> int:
        return self.batch * ceil_div(self.size, self.lanes) if self.broadcast else 1

    @property
    def words(self) -> int:
        """Words of a group: a plane's pixels (mul), the flat tensor (add)."""
        return self.pixels if self.broadcast else ceil_div(self.elements, self.lanes)

    @property
    def m_size(self) -> int:
        return self.words

    @property
    def q_words(self) -> int:
        """The write-back's identity table: one word."""
        return 1 if self.requantized else 0

    @property
    def dram_footprint_bytes(self) -> tuple[int, int, int]:
        wa, wb, wc = self.word_bytes()
        g, w = self.groups, self.words
        return g * w * wa, (g if self.broadcast else w) * wb, g * w * wc

    def tiles(self) -> Iterator[Tile]:
        a = b = c = self.slots - 1
        i = 0
        for g0 in range(0, self.groups, self.gt):
            for m0 in range(0, self.words, self.mt):
                load_b = not self.broadcast or m0 == 0
                a, c = (a + 1) % self.slots, (c + 1) % self.slots
                if load_b:
                    b = (b + 1) % self.slots
                yield Tile(i, g0, min(self.gt, self.groups - g0), m0, min(self.mt, self.words - m0), 0, 1, 0, 1,
                           True, load_b, a, b, c)
                i += 1

    def tile_transfers(self, t: Tile) -> tuple[int, int]:
        wa, wb, wc = self.word_bytes()
        b_words = (1 if t.load_b else 0) if self.broadcast else t.ms
        return t.gs * (t.ms * wa + b_words * wb), t.gs * t.ms * wc

    def tile_compute_cycles(self, t: Tile) -> int:
        return TILE_ISSUE_CYCLES + t.gs * (t.ms + VEC_LATENCY_CYCLES)

    def descriptor(self, a_base: int = 0, b_base: int = 0, c_base: int = 0, q_base: int = 0, *,
                   params: object = None, zero_point: int = 0, clamp_lo: int = 0,
                   clamp_hi: int = 0) -> dict[str, int]:
        """Register values in vector mode (``flags`` bit 4; bit 5 for a broadcast scale, bit 1 for its
        reuse across a plane's chunks): M = a group's words in chunks of ``mt``, B advancing with A
        (``vec_b_stride_m``, add) or one word a plane (mul), the identity table, the op's parameters
        (``EltwiseParams``)."""
        wa, wb, wc = self.word_bytes()
        last = self.words - (self.n_mt - 1) * self.mt
        p = params
        mul = self.broadcast
        d = {
            "a_base": a_base, "b_base": b_base, "c_base": c_base, "m": self.words, "n": 1, "k": 1,
            "groups": self.groups, "mt": self.mt, "nt": 1, "kt": 1, "gt": self.gt,
            "flags": 1 << 4 | (1 << 5 | 1 << 1 if mul else 0),
            "a_stride_g": self.words * wa * self.gt, "a_stride_m": self.mt * wa, "a_stride_k": 0,
            "b_stride_g": wb * self.gt if mul else 0, "b_stride_n": 0, "b_stride_k": 0,
            "c_stride_g": self.words * wc * self.gt, "c_stride_m": self.mt * wc, "c_stride_n": 0,
            "q_base": q_base, "q_words": self.q_words, "q_nf": 0, "q_stride_n": 0, "c_nf_0": 1, "c_nf_1": 1,
            "zero_point": zero_point & 0xFFFFFFFF, "clamp_lo": clamp_lo & 0xFFFFFFFF,
            "clamp_hi": clamp_hi & 0xFFFFFFFF,
            "dw_skew": 0, "dw_in_w": 0, "dw_pad": 0, "dw_kernel": 0,
            "dw_rows_00": 0, "dw_rows_01": 0, "dw_rows_10": 0, "dw_rows_11": 0,
            "vec_b_stride_m": 0 if mul else self.mt * wb,
            **{f: 0 for f in CV_FIELDS}, **{f: 0 for f in RES_FIELDS}, **{f: 0 for f in POOL_FIELDS},
            **{f: 0 for f in DWS_FIELDS},
        }
        for lm in (0, 1):
            for j in (0, 1):
                d[f"a_words_{lm}{j}"] = last if lm else self.mt
                d[f"c_words_{lm}{j}"] = last if lm else self.mt
                d[f"b_words_{lm}{j}"] = 1 if mul else self.mt  # (add: B's chunk is A's)
        d.update(param_fields(p))
        return d


def plan_vec(layer: Eltwise, batch: int, config: AcceleratorConfig) -> VecPlan:
    shape = _shape(layer)
    assert shape is not None, layer.name
    return _plan(*shape, batch, config)


@lru_cache(maxsize=65536)
def _plan(op: str, size: int, pixels: int, batch: int, config: AcceleratorConfig) -> VecPlan:
    cfg = config
    geo = WordGeometry(Dataflow.WS, cfg.rows, cfg.cols, cfg.act_bits, cfg.weight_bits, cfg.acc_bits,
                       cfg.act_bits if cfg.requantize else 0)
    slots = 2 if cfg.double_buffered else 1
    depth = (cfg.input_sram_bytes * 8 // geo.a_word_bits, cfg.weight_sram_bytes * 8 // geo.b_word_bits,
             cfg.output_sram_bytes * 8 // geo.c_word_bits)
    sa, sb, sc = (depth[0] // slots, depth[1] // slots, depth[2] // slots)
    base = VecPlan(op, batch, size, pixels, geo, bus_bytes(cfg), slots, (sa, sb, sc), 1, 1)
    words = base.words
    if op == "add":
        return replace(base, mt=max(1, min(words, sa, sb, sc)))
    if words <= min(sa, sc):  # whole planes, as many to a tile as fit (a power of two)
        most = max(1, min(base.groups, sa // words, sb, sc // words))
        return replace(base, gt=1 << (most.bit_length() - 1), mt=words)
    return replace(base, mt=max(1, min(sa, sc)))


def plan_layer_vec(layer: Eltwise, batch: int, config: AcceleratorConfig):  # type: ignore[no-untyped-def]
    """The :class:`codesign.sim.mapping.LayerPlan` of an add or a scale on the built vector unit."""
    from codesign.sim.mapping import LayerPlan, TileRun
    from codesign.sim.result import Counts

    plan = plan_vec(layer, batch, config)
    geo = plan.geometry
    runs = tuple(TileRun(c, ld, st, cy) for c, ld, st, cy in plan.tile_runs())
    load = sum(r.count * r.load_bytes for r in runs) + plan.prologue_bytes
    store = sum(r.count * r.store_bytes for r in runs)
    w = plan.words * plan.groups  # words of X and of the output
    wy = plan.groups if plan.broadcast else w  # words of the second operand (read once a plane: mul)
    counts = Counts(
        input_sram_read_bits=w * geo.a_word_bits,
        input_sram_write_bits=w * geo.a_word_bits,
        weight_sram_read_bits=wy * geo.b_word_bits,
        weight_sram_write_bits=wy * geo.b_word_bits,
        output_sram_read_bits=w * geo.c_word_bits,
        output_sram_write_bits=w * geo.c_word_bits,
        dram_read_bits=load * 8,
        dram_write_bits=store * 8,
        vector_ops=layer.vector_ops(batch),
    )
    return LayerPlan(runs=runs, counts=counts, folds=0, tile_mnk=(plan.gt, plan.mt, 1, 1), tiling=plan)
