"""The vector unit's plan in the whole-layer top: residual adds on the built vector unit.

A residual add (``Eltwise`` ADD of two full tensors) runs on the vector unit
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
from dataclasses import dataclass
from functools import lru_cache

from codesign.sim.config import AcceleratorConfig, Dataflow
from codesign.sim.dwplan import LanePlan
from codesign.sim.tileplan import (
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


def layer_reason(layer: Layer, config: AcceleratorConfig) -> str:
    """Why the built vector unit cannot run ``layer`` ('' when it can: :func:`plan_vec` works)."""
    if not isinstance(layer, Eltwise):
        return "not an element-wise layer"
    if layer.op is not EltwiseOp.ADD or layer.inputs_count != 2 or any(
            v != layer.elements for v in layer.operand_elements):
        return "the built vector unit runs the add of two full tensors"
    return design_reason(config)


@dataclass(frozen=True)
class VecPlan(LanePlan):
    """Chunks of an add on the vector unit (see the module docstring)."""

    elements: int  # all images
    geometry: WordGeometry
    bus_bytes: int
    slots: int
    slot_words: tuple[int, int, int]
    mt: int  # words a chunk
    nt = 1  # (TilePlan's names, for the result's plan column)
    kt = 1
    gt = 1
    weights_outer = False

    @property
    def words(self) -> int:
        return ceil_div(self.elements, self.lanes)

    @property
    def n_mt(self) -> int:
        return ceil_div(self.words, self.mt)

    @property
    def tile_count(self) -> int:
        return self.n_mt

    @property
    def q_words(self) -> int:
        """The write-back's identity table: one word."""
        return 1 if self.requantized else 0

    @property
    def dram_footprint_bytes(self) -> tuple[int, int, int]:
        wa, wb, wc = self.word_bytes()
        return self.words * wa, self.words * wb, self.words * wc

    def tiles(self) -> Iterator[Tile]:
        a = b = c = self.slots - 1
        for i, m0 in enumerate(range(0, self.words, self.mt)):
            a, b, c = (a + 1) % self.slots, (b + 1) % self.slots, (c + 1) % self.slots
            yield Tile(i, 0, 1, m0, min(self.mt, self.words - m0), 0, 1, 0, 1, True, True, a, b, c)

    def tile_transfers(self, t: Tile) -> tuple[int, int]:
        wa, wb, wc = self.word_bytes()
        return t.ms * (wa + wb), t.ms * wc

    def tile_runs(self) -> tuple[tuple[int, int, int, int], ...]:
        out = []
        for ms, count in ((self.mt, self.words // self.mt), (self.words % self.mt, 1)):
            if ms and count:
                load, store = self.tile_transfers(Tile(0, 0, 1, 0, ms, 0, 1, 0, 1, True, True, 0, 0, 0))
                out.append((count, load, store, TILE_ISSUE_CYCLES + ms + VEC_LATENCY_CYCLES))
        return tuple(out)

    def descriptor(self, a_base: int = 0, b_base: int = 0, c_base: int = 0, q_base: int = 0, *,
                   params: object = None, zero_point: int = 0, clamp_lo: int = 0,
                   clamp_hi: int = 0) -> dict[str, int]:
        """Register values in vector mode (``flags`` bit 4): M = words, chunks of ``mt``, B advancing
        with A (``vec_b_stride_m``), the identity table, the ADD's parameters (``EltwiseParams``)."""
        wa, wb, wc = self.word_bytes()
        last = self.words - (self.n_mt - 1) * self.mt
        p = params
        d = {
            "a_base": a_base, "b_base": b_base, "c_base": c_base, "m": self.words, "n": 1, "k": 1, "groups": 1,
            "mt": self.mt, "nt": 1, "kt": 1, "gt": 1, "flags": 1 << 4,
            "a_stride_g": 0, "a_stride_m": self.mt * wa, "a_stride_k": 0,
            "b_stride_g": 0, "b_stride_n": 0, "b_stride_k": 0,
            "c_stride_g": 0, "c_stride_m": self.mt * wc, "c_stride_n": 0,
            "q_base": q_base, "q_words": self.q_words, "q_nf": 0, "q_stride_n": 0, "c_nf_0": 1, "c_nf_1": 1,
            "zero_point": zero_point & 0xFFFFFFFF, "clamp_lo": clamp_lo & 0xFFFFFFFF,
            "clamp_hi": clamp_hi & 0xFFFFFFFF,
            "dw_skew": 0, "dw_in_w": 0, "dw_pad": 0, "dw_kernel": 0,
            "dw_rows_00": 0, "dw_rows_01": 0, "dw_rows_10": 0, "dw_rows_11": 0,
            "vec_b_stride_m": self.mt * wb,
        }
        for lm in (0, 1):
            for j in (0, 1):
                d[f"a_words_{lm}{j}"] = last if lm else self.mt
                d[f"c_words_{lm}{j}"] = last if lm else self.mt
                d[f"b_words_{lm}{j}"] = self.mt  # (vector mode: B's chunk is A's)
        fields = ("input1_offset", "input2_offset", "left_shift", "input1_multiplier", "input1_shift",
                  "input2_multiplier", "input2_shift", "output_multiplier", "output_shift", "output_offset",
                  "act_min", "act_max")
        for f in fields:
            d[f"vec_{f}"] = (int(getattr(p, f)) if p is not None else 0) & 0xFFFFFFFF
        return d


def plan_vec(layer: Eltwise, batch: int, config: AcceleratorConfig) -> VecPlan:
    return _plan(layer.elements * batch, config)


@lru_cache(maxsize=65536)
def _plan(elements: int, config: AcceleratorConfig) -> VecPlan:
    cfg = config
    geo = WordGeometry(Dataflow.WS, cfg.rows, cfg.cols, cfg.act_bits, cfg.weight_bits, cfg.acc_bits,
                       cfg.act_bits if cfg.requantize else 0)
    slots = 2 if cfg.double_buffered else 1
    depth = (cfg.input_sram_bytes * 8 // geo.a_word_bits, cfg.weight_sram_bytes * 8 // geo.b_word_bits,
             cfg.output_sram_bytes * 8 // geo.c_word_bits)
    slot_words = (depth[0] // slots, depth[1] // slots, depth[2] // slots)
    words = ceil_div(elements, cfg.cols)
    mt = max(1, min(words, *slot_words))
    return VecPlan(elements, geo, bus_bytes(cfg), slots, slot_words, mt)


def plan_layer_vec(layer: Eltwise, batch: int, config: AcceleratorConfig):  # type: ignore[no-untyped-def]
    """The :class:`codesign.sim.mapping.LayerPlan` of an add on the built vector unit."""
    from codesign.sim.mapping import LayerPlan, TileRun
    from codesign.sim.result import Counts

    plan = plan_vec(layer, batch, config)
    geo = plan.geometry
    runs = tuple(TileRun(c, ld, st, cy) for c, ld, st, cy in plan.tile_runs())
    load = sum(r.count * r.load_bytes for r in runs) + plan.prologue_bytes
    store = sum(r.count * r.store_bytes for r in runs)
    w = plan.words
    counts = Counts(
        input_sram_read_bits=w * geo.a_word_bits,
        input_sram_write_bits=w * geo.a_word_bits,
        weight_sram_read_bits=w * geo.b_word_bits,
        weight_sram_write_bits=w * geo.b_word_bits,
        output_sram_read_bits=w * geo.c_word_bits,
        output_sram_write_bits=w * geo.c_word_bits,
        dram_read_bits=load * 8,
        dram_write_bits=store * 8,
        vector_ops=layer.vector_ops(batch),
    )
    return LayerPlan(runs=runs, counts=counts, folds=0, tile_mnk=(1, plan.mt, 1, 1), tiling=plan)
