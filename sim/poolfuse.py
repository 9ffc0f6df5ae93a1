"""A max pool in its convolution's write-back: what the simulator times, the whole-layer top runs and
``verify`` lays out.

Why. A network's stem (ResNet's 7x7 convolution, ShuffleNet's 3x3) writes its largest feature map for the
max pool after it to read back: on ResNet-18 (32x32) the stem writes 802,816 bytes and the pool reads
them again and writes 200,704, 1.7 MB of the bus for a map a quarter that size. Here the convolution's
write-back pools on the way out (NVDLA's PDP fed from the convolution pipeline does the same): only the
pooled map goes to DRAM, and the pool layer takes no time of its own.

The machine (:mod:`codesign.hdl.engines.pool`, :mod:`codesign.hdl.memory.dma`)
---------------------------------------------------------------------------
The convolution runs as an im2col GEMM on the weight-stationary array (the host lays out the stem's
windows, :mod:`codesign.sim.tileplan`) in tiles of **one output row** (``mt = OW`` pixels) and **every
output channel** (``nt = N``), K innermost. Each tile's store (after its last K tile) is

1. a *pass*: the DMA's write-back reads the tile's output words (a plane of ``cols`` channels after
   another, ``OW`` pixels each), requantizes them and hands them to the pool stage instead of the bus.
   The stage takes the row's horizontal window maxima as the words stream by (each column is in at most
   two windows) and folds them into two rows of pooled maxima kept on chip (a pooled row in progress and
   the next one: each convolution row is in at most two pooled rows); the image's padding never wins;
2. when that row is the last of a pooled row's window, a *write* of that pooled row (every plane's ``PW``
   words, a plane apart in DRAM) from the stage's memory through the same write-back pipeline.

Max pooling commutes with requantization per channel (a non-decreasing map), so pooling the requantized
outputs is the reference's ``maxpool(requantize(conv))``. Pools with ``stride <= kernel <= 2 * stride`` in
each direction (every row and column in one or two windows: ResNet's 3x3/2, VGG's 2x2/2), padding under
the kernel, and one window at most ending at the last row or column.

Memory layout: the convolution's output in DRAM is the *pooled* map as planes (``[batch][N / cols][PH]
[PW]`` words, :mod:`codesign.sim.dwplan`'s layout, the next layer's), the rest as the GEMM plan's.

Timing contract (the RTL meets it; ``tests/rtl`` check it cycle for cycle)
--------------------------------------------------------------------------
A tile's store takes ``POOL_PASS_OVERHEAD_CYCLES + words`` cycles from its decision for the pass
(``words = planes * OW``: one a cycle through the requantization's cuts and the stage), then, when it
completes a pooled row, the write as any store of its bytes (:func:`codesign.sim.tileplan.dma_write_cycles`)
decided in the cycle after the pass. The pass holds no bus: the reads go on beside it.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING

from codesign.sim.config import AcceleratorConfig, Dataflow
from codesign.sim.tileplan import REQUANT_STAGES
from codesign.sim.timing import ceil_div
from codesign.workloads.layers import Conv2d, Layer, Pool, PoolKind

if TYPE_CHECKING:
    from codesign.sim.tileplan import TilePlan

#: cycles from a word in the pool stage to its window's maximum in the stage's rows (hdl.engines.pool.LATENCY_CYCLES)
POOL_STAGE_LATENCY_CYCLES = 3
#: from a store's decision to the pass's end besides its words: the command register, the last word's
#: buffer read, the requantization's cuts (tileplan.REQUANT_STAGES) and the stage's
POOL_PASS_OVERHEAD_CYCLES = 2 + REQUANT_STAGES + POOL_STAGE_LATENCY_CYCLES
POOL_DIM_MAX = 4095  # rows and columns the stage's counters hold (12 bits)


@dataclass(frozen=True)
class PoolSpec:
    """A max pool's geometry over the convolution output it pools (``oh x ow``) into ``ph x pw``."""

    kh: int
    kw: int
    sh: int
    sw: int
    pt: int
    pl: int
    oh: int
    ow: int
    ph: int
    pw: int

    @classmethod
    def of(cls, pool: Pool) -> PoolSpec:
        kh, kw = pool.kernel  # type: ignore[misc]
        sh, sw = pool.stride  # type: ignore[misc]
        pt, pl, _pb, _pr = pool.padding  # type: ignore[misc]
        return cls(kh, kw, sh, sw, pt, pl, pool.in_h, pool.in_w, pool.out_h, pool.out_w)

    def row_end(self, py: int) -> int:
        """The last convolution row of pooled row ``py``'s window (clipped to the map)."""
        return min(py * self.sh - self.pt + self.kh - 1, self.oh - 1)

    def completes(self, row: int) -> bool:
        """Whether convolution row ``row`` is the last of a pooled row's window (its pass writes it)."""
        py = (row + self.pt - self.kh + 1 + self.sh - 1) // self.sh  # the first window ending at or after row
        py = max(0, py)
        return py < self.ph and self.row_end(py) == row

    def reason(self) -> str:
        """Why the stage does not run this pool ('' when it does)."""
        for name, k, s, p0, size, out in (("rows", self.kh, self.sh, self.pt, self.oh, self.ph),
                                          ("columns", self.kw, self.sw, self.pl, self.ow, self.pw)):
            if not s <= k <= 2 * s:
                return f"the write-back pools windows of stride <= kernel <= 2 x stride, not kernel {k} stride {s}"
            if p0 >= k:
                return f"the write-back pools with padding under the kernel, not {p0} for kernel {k}"
            if out >= 2 and (out - 2) * s - p0 + k - 1 >= size - 1:
                return f"two pooled {name} end at the map's last one (padding {p0}, kernel {k}, stride {s})"
            if size > POOL_DIM_MAX or k > 255 or s > 255:
                return f"the pool stage's counters hold {POOL_DIM_MAX} {name} and kernels to 255"
        if self.ow < 2:
            return "the write-back pools rows of two columns or more"
        return ""


def design_reason(config: AcceleratorConfig) -> str:
    """Why ``config`` does not build the pool stage in the write-back ('' when it does)."""
    from codesign.sim import convplan

    c = config
    if not c.pool_writeback:
        return "pool_writeback is false"
    if not c.requantize:
        return "the write-back pools requantized outputs (requantize: true)"
    reason = convplan.design_reason(c)  # the planes the pooled map is written as
    return f"the pool stage is built with the planes output of convolution windows ({reason})" if reason else ""


def pair_reason(conv: Layer, pool: Layer, batch: int, config: AcceleratorConfig) -> str:
    """Why ``pool`` does not run in ``conv``'s write-back ('' when it does)."""
    from codesign.sim import convplan

    if not isinstance(pool, Pool) or pool.op is not PoolKind.MAX or pool.global_:
        return "the write-back pools with a max pool"
    if not isinstance(conv, Conv2d) or conv.groups != 1:
        return "the write-back pools a convolution's output"
    reason = design_reason(config)
    if reason:
        return reason
    if (pool.channels, pool.in_h, pool.in_w) != (conv.out_channels, conv.out_h, conv.out_w):
        return "the pool reads the convolution's whole output"
    if conv.activation:
        return f"the write-back runs either a pool or a table activation, and {conv.name!r} has {conv.activation}"
    if not convplan.layer_reason(conv, batch, config):
        return "the write-back pools the output of an im2col convolution (the stems), not of on-chip windows"
    reason = PoolSpec.of(pool).reason()
    if reason:
        return reason
    if plan_fused(conv, pool, batch, config) is None:
        return "no tile of one output row and every output channel fits the buffers"
    return ""


@lru_cache(maxsize=4096)
def plan_fused(conv: Conv2d, pool: Pool, batch: int, config: AcceleratorConfig) -> TilePlan | None:
    """The GEMM plan of ``conv`` with ``pool`` in its write-back (tiles of one output row and every channel,
    the largest K tile that fits, the loop order with the fewer DRAM bytes), or None when none fits."""
    from dataclasses import replace

    from codesign.sim.tileplan import _shrink, plan_dram_bytes, plan_fits, plan_with

    g = conv.gemm(batch)
    assert g is not None
    spec = PoolSpec.of(pool)
    ow = conv.out_w
    if config.dataflow is not Dataflow.WS or g.repeats != 1:
        return None
    kt = g.k
    while True:
        plans = [replace(plan_with(g, config, 1, ow, g.n, kt, wo), pool=spec) for wo in (True, False)]
        fitting = [p for p in plans if plan_fits(p) and _stage_fits(p, config)]
        if fitting:
            return min(fitting, key=lambda p: (plan_dram_bytes(p), not p.weights_outer))
        if kt == 1:
            return None
        kt = _shrink(kt, config.rows)


def stage_words(config: AcceleratorConfig, plan: TilePlan) -> int:
    """Words of one row of pooled maxima in the pool stage: half the output buffer's address space (the
    hardware's ``hdl.layer.pool_stage_words``)."""
    depth = config.output_sram_bytes * 8 // plan.geometry.c_word_bits
    return 1 << (max(1, (depth - 1).bit_length()) - 1)


def _stage_fits(plan: TilePlan, config: AcceleratorConfig) -> bool:
    assert plan.pool is not None
    return ceil_div(plan.gemm.n, plan.geometry.cols) * plan.pool.pw <= stage_words(config, plan)


def pooled_row_bytes(plan: TilePlan) -> int:
    """DRAM bytes of one pooled row of every plane."""
    planes = ceil_div(plan.gemm.n, plan.geometry.cols)
    assert plan.pool is not None
    return planes * plan.pool.pw * plan.beats_per_word[2] * plan.bus_bytes


def pass_cycles(plan: TilePlan) -> int:
    """Cycles of a tile's pass: :data:`POOL_PASS_OVERHEAD_CYCLES` and one a word of the tile's output."""
    planes = ceil_div(plan.gemm.n, plan.geometry.cols)
    return POOL_PASS_OVERHEAD_CYCLES + planes * plan.mt


def pool_fields(plan: TilePlan, c_base: int) -> dict[str, int]:
    """The descriptor's pool fields (``pl_*``) and the pooled planes' stride (``cv_c_block``)."""
    p = plan.pool
    assert p is not None
    planes = ceil_div(plan.gemm.n, plan.geometry.cols)
    return {
        "pl_kernel": p.kh | p.kw << 8 | p.sh << 16 | p.sw << 24, "pl_pad": p.pt | p.pl << 8,
        "pl_conv": p.oh | p.ow << 16, "pl_out": p.ph | p.pw << 16,
        "pl_row_bytes": p.pw * plan.beats_per_word[2] * plan.bus_bytes,
        "pl_image_bytes": planes * plan.pooled_plane_bytes, "cv_c_block": plan.pooled_plane_bytes,
        # the pass walks the tile's column chunks as blocks (planes out): a table word a block
        "q_nf": 1 if plan.requantized else 0,
    }


def pool_runs(plan: TilePlan, config: AcceleratorConfig) -> tuple[tuple[int, int, int, int, bool], ...]:
    """Run-length encoded ``(count, load_bytes, store_bytes, compute_cycles, passes)`` in execution order."""
    from codesign.sim.tileplan import tile_costs

    runs: list[list[object]] = []
    for t, load, store, cyc in tile_costs(plan, config):
        key = [load, store, cyc, plan.passes(t)]
        if runs and runs[-1][1:] == key:
            runs[-1][0] += 1  # type: ignore[operator]
        else:
            runs.append([1, *key])
    return tuple((int(c), int(ld), int(st), int(cy), bool(ps)) for c, ld, st, cy, ps in runs)  # type: ignore[call-overload]
