"""Amaranth-simulator tier: the write-back's pool stage (hdl.engines.pool) against numpy max pooling.

Each case streams a random map row by row, as the write-back's passes do (a plane of lanes after another, a
word a cycle, sometimes with idle cycles between words), and reads each pooled row when its pass ends on the
last row of the row's window. Every pooled word must equal ``hdl.verify.max_pool`` of the map (PyTorch's
``max_pool2d``: padding never wins), for strides equal to and below the kernel, padding 0 and 1, signed and
unsigned lanes, maps whose last rows and columns no window reads, and two images back to back.
"""

from __future__ import annotations

import numpy as np
import pytest
from amaranth.sim import Simulator

from codesign.hdl.engines.pool import LATENCY_CYCLES, PoolStage
from codesign.hdl.verify import max_pool
from codesign.sim.poolfuse import POOL_STAGE_LATENCY_CYCLES, PoolSpec

LANES, BITS = 4, 8


def _pack(vals) -> int:
    return sum((int(v) & 0xFF) << (BITS * i) for i, v in enumerate(vals))


def _unpack(word: int, signed: bool) -> list[int]:
    out = []
    for i in range(LANES):
        v = (word >> (BITS * i)) & 0xFF
        out.append(v - 256 if signed and v > 127 else v)
    return out


def run_stage(x: np.ndarray, kernel, stride, pad, signed: bool, gaps: bool, seed: int) -> np.ndarray:
    """``x[images, planes * LANES, oh, ow]`` through the stage; returns the pooled maps it writes."""
    images, c, oh, ow = x.shape
    planes = c // LANES
    spec = PoolSpec(kernel[0], kernel[1], stride[0], stride[1], pad[0], pad[1], oh, ow,
                    (oh + 2 * pad[0] - kernel[0]) // stride[0] + 1, (ow + 2 * pad[1] - kernel[1]) // stride[1] + 1)
    depth = 1 << max(0, (planes * spec.pw - 1).bit_length())
    dut = PoolStage(lanes=LANES, bits=BITS, signed_values=signed, depth=depth, addr_bits=32)
    row_bytes, image_bytes = spec.pw * 64, planes * spec.ph * spec.pw * 64  # (a made-up layout: 64 bytes a word)
    got = np.full((images, c, spec.ph, spec.pw), -999, dtype=np.int64)
    rng = np.random.default_rng(seed)

    async def bench(ctx):
        for name, val in (("kh", spec.kh), ("kw", spec.kw), ("sh", spec.sh), ("sw", spec.sw), ("pt", spec.pt),
                          ("pl", spec.pl), ("oh", oh), ("ow", ow), ("ph", spec.ph), ("pw", spec.pw),
                          ("row_bytes", row_bytes), ("image_bytes", image_bytes), ("base", 4096)):
            ctx.set(getattr(dut, name), val)
        ctx.set(dut.init, 1)
        await ctx.tick()
        ctx.set(dut.init, 0)
        for g in range(images):
            for r in range(oh):
                ctx.set(dut.start, 1)
                await ctx.tick()
                ctx.set(dut.start, 0)
                for p in range(planes):
                    for col in range(ow):
                        while gaps and rng.random() < 0.3:
                            await ctx.tick()
                        ctx.set(dut.in_valid, 1)
                        ctx.set(dut.in_data, _pack(x[g, p * LANES:(p + 1) * LANES, r, col]))
                        await ctx.tick()
                        ctx.set(dut.in_valid, 0)
                await ctx.tick().repeat(LATENCY_CYCLES - 1)
                final = ctx.get(dut.row_done)
                assert final == spec.completes(r), (g, r)
                ctx.set(dut.finish, 1)
                await ctx.tick()
                ctx.set(dut.finish, 0)
                if not final:
                    continue
                slot, addr = ctx.get(dut.done_slot), ctx.get(dut.done_addr)
                py, rem = divmod(addr - 4096 - g * image_bytes, row_bytes)
                assert rem == 0 and 0 <= py < spec.ph
                for p in range(planes):
                    for q in range(spec.pw):
                        ctx.set(dut.rd_addr, slot * depth + p * spec.pw + q)
                        ctx.set(dut.rd_en, 1)
                        await ctx.tick()
                        ctx.set(dut.rd_en, 0)
                        got[g, p * LANES:(p + 1) * LANES, py, q] = _unpack(ctx.get(dut.rd_data), signed)

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    return got


CASES = [  # kernel, stride, padding (top/bottom, left/right), oh, ow
    ((3, 3), (2, 2), (1, 1), 8, 8),  # ResNet's stem pool
    ((3, 3), (2, 2), (1, 1), 7, 9),  # odd sizes: the last window clipped at the map's edge
    ((2, 2), (2, 2), (0, 0), 6, 5),  # VGG's: the last column in no window
    ((3, 2), (2, 1), (1, 0), 7, 6),  # different kernels, strides and paddings across and down
    ((2, 3), (1, 2), (0, 1), 5, 8),
    ((1, 1), (1, 1), (0, 0), 3, 4),  # the identity
]


@pytest.mark.parametrize("case", range(len(CASES)))
@pytest.mark.parametrize("signed", [True, False])
def test_pool_stage_matches_max_pool(case: int, signed: bool) -> None:
    assert LATENCY_CYCLES == POOL_STAGE_LATENCY_CYCLES  # the simulator's pass overhead counts it
    kernel, stride, pad, oh, ow = CASES[case]
    rng = np.random.default_rng(case * 2 + signed)
    lo, hi = (-128, 127) if signed else (0, 255)
    x = rng.integers(lo, hi, size=(2, 2 * LANES, oh, ow), endpoint=True)
    spec_reason = PoolSpec(kernel[0], kernel[1], stride[0], stride[1], pad[0], pad[1], oh, ow,
                           (oh + 2 * pad[0] - kernel[0]) // stride[0] + 1,
                           (ow + 2 * pad[1] - kernel[1]) // stride[1] + 1).reason()
    assert spec_reason == ""
    got = run_stage(x, kernel, stride, pad, signed, gaps=bool(case % 2), seed=case)
    expect = max_pool(x, kernel, stride, (pad[0], pad[1], pad[0], pad[1]))
    np.testing.assert_array_equal(got, expect)
