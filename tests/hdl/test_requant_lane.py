"""The write-back's requantizing lane (``hdl.memory.dma.requantize_lane``) equals the integer reference
bit for bit, at every shift its 6 bits hold and at the extremes of its operands."""

from __future__ import annotations

import numpy as np
import pytest
from amaranth.hdl import Module, Signal, signed
from amaranth.sim import Simulator

from codesign.hdl.memory.dma import SHIFT_BITS, _stager, requantize_lane
from codesign.sim.tileplan import REQUANT_STAGES
from codesign.workloads.intarith import MAX_SHIFT, MULT_BITS, requantize

pytestmark = pytest.mark.hdl


def _reference(acc: int, bias: int, mult: int, shift: int, zp: int, lo: int, hi: int) -> int:
    """Python integers (exact at any width): round half up, then zero point and clamps."""
    p = (acc + bias) * mult
    y = (p + (1 << (shift - 1)) >> shift) if shift else p
    return min(max(y + zp, lo), hi)


@pytest.mark.parametrize("pipelined", [False, True], ids=["combinational", "pipelined"])
def test_requantize_lane_is_exact_at_every_shift_and_operand_extreme(pipelined: bool) -> None:
    """Combinational, and as the write-back builds it: REQUANT_STAGES register cuts, each case's result
    REQUANT_STAGES edges after it enters (its zero point and clamps, the descriptor's, held meanwhile)."""
    # one packed input (a single set a case: the simulator settles once): acc, entry, zp, lo, hi
    packed = Signal(32 + 56 + 3 * 33)
    acc, entry = packed[:32].as_signed(), packed[32:88]
    zp, lo, hi = (packed[88 + i * 33:88 + (i + 1) * 33].as_signed() for i in range(3))
    out = Signal(signed(32))  # the low 32 bits: every expected value here fits int32 (its clamps do)
    m = Module()
    out8 = Signal(signed(8))  # what an INT8 design keeps
    stages = [_stager(m, "w32"), _stager(m, "w8")] if pipelined else [None, None]
    m.d.comb += [out.eq(requantize_lane(acc, entry, zp, lo, hi, 32, stage=stages[0], m=m, name="w32")),
                 out8.eq(requantize_lane(acc, entry, zp, lo, hi, 8, stage=stages[1], m=m, name="w8"))]
    rng = np.random.default_rng(22)
    i32 = (-(1 << 31), (1 << 31) - 1)
    cases = []
    # every shift the lane holds (0..63), with the largest products: acc and bias at the int32 ends, mult 65535
    for s in range(1 << SHIFT_BITS):
        for a, b in ((i32[0], i32[0]), (i32[1], i32[1]), (i32[0], i32[1]), (-1, 0), (1, 0)):
            cases.append((a, b, 65535, s, 0, i32[0], i32[1]))
    # halves at a shift of 1..40 (where the rounding decides): p = (2k + 1) * 2**(s-1), both signs
    for s in range(1, MAX_SHIFT + 1):
        for k in (-3, -1, 0, 2):
            p = (2 * k + 1) << (s - 1)
            if i32[0] <= p <= i32[1]:
                cases.append((p, 0, 1, s, 0, i32[0], i32[1]))
    # random int8-style layers: zero point and clamps inside int8
    for _ in range(300):
        cases.append((int(rng.integers(*i32)), int(rng.integers(-(1 << 20), 1 << 20)), int(rng.integers(1, 1 << 16)),
                      int(rng.integers(0, 1 << SHIFT_BITS)), int(rng.integers(-20, 21)), -128, 127))
    got: list[int] = []
    got8: list[int] = []

    async def bench(ctx) -> None:
        mask = (1 << 33) - 1
        for a, b, mu, s, z, l, h in cases:
            word = (a & 0xFFFFFFFF) | ((b & 0xFFFFFFFF) | mu << 32 | s << 48) << 32
            ctx.set(packed, word | ((z & mask) | (l & mask) << 33 | (h & mask) << 66) << 88)
            if not pipelined:
                got.append(ctx.get(out))
                got8.append(ctx.get(out8))
                continue
            # the operands enter the first cut at this edge; the result leaves the last REQUANT_STAGES edges on,
            # with this case's zero point and clamps still applied (they stay until the next case)
            for _ in range(REQUANT_STAGES):
                await ctx.tick()
            got.append(ctx.get(out))
            got8.append(ctx.get(out8))

    sim = Simulator(m)
    if pipelined:
        sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    want = [_reference(*c) for c in cases]
    bad = [(c, g, w) for c, g, w in zip(cases, got, want, strict=True) if g != w]
    assert not bad, bad[:3]
    # the low 8 bits, where the clamps are int8's (the random cases): the same value
    assert [g for c, g in zip(cases, got8, strict=True) if c[5:] == (-128, 127)] == \
        [w for c, w in zip(cases, want, strict=True) if c[5:] == (-128, 127)]
    # where intarith's range holds (shift <= 40, mult from 1 to 2**15 - 1), it is intarith's
    inside = [(c, g) for c, g in zip(cases, got, strict=True) if c[3] <= MAX_SHIFT and 1 <= c[2] < 1 << MULT_BITS]
    # seed 22: the 121 halves that fit int32 plus the 107 random cases with shift <= 40 and mult < 2**15
    assert len(inside) == 228
    for (a, b, mu, s, z, l, h), g in inside:
        assert g == int(requantize(np.array([a + b]), mu, s, z, l, h)[0])


@pytest.mark.parametrize("out_bits", [8, 4])
def test_requantize_lane_window_edges(out_bits: int) -> None:
    """The lane builds only a window of the shifted product (``out_bits + 3`` bits of ``2p >> s``) and a flag for
    a value outside it, which clamps by the product's sign alone: exact against Python integers where the
    shifted product crosses the window's edges (``2p >> s`` at +-2**(out_bits + 2) and one either side, at
    shifts from 0 to 40), with the zero point and clamps anywhere in their ``out_bits + 1`` bits two's complement
    (their extremes too: the bounds ``clamp - zero_point`` reach +-(2**(out_bits + 1) - 1))."""
    from codesign.hdl.control.regs import field_bits
    from codesign.sim.config import AcceleratorConfig

    # the parameters' range is their registers' (out_bits + 1 bits two's complement): -256..255 for 8 bits
    pb = field_bits(AcceleratorConfig(rows=2, cols=2, weight_bits=out_bits, act_bits=out_bits))["zero_point"]
    plo, phi = -(1 << (pb - 1)), (1 << (pb - 1)) - 1
    assert (plo, phi) == (-(1 << out_bits), (1 << out_bits) - 1)
    # one packed input (a single set a case, the simulator settles once): acc, entry, zp, lo, hi
    packed = Signal(32 + 56 + 3 * pb)
    acc = packed[:32].as_signed()
    entry = packed[32:88]
    zp, lo, hi = (packed[88 + i * pb:88 + (i + 1) * pb].as_signed() for i in range(3))
    out = Signal(out_bits)
    m = Module()
    m.d.comb += out.eq(requantize_lane(acc, entry, zp, lo, hi, out_bits, m=m))
    rng = np.random.default_rng(out_bits)
    edge = 1 << (out_bits + 2)  # the window of 2p >> s is signed(out_bits + 3)
    params = [(0, plo, phi), (plo, plo, phi), (phi, plo, phi), (phi, plo, plo), (plo, phi, phi), (-3, -5, 7)]
    cases = []
    for s in (0, 1, 2, 3, 7, 15, 16, 24, 31, MAX_SHIFT):
        for h in (edge - 1, edge, edge + 1, -edge - 1, -edge, -edge + 1, edge // 2, -edge // 2, 3, -3, 0):
            for d in (0, 1, (1 << s) - 1 if s else 0):  # 2p >> s == h: p from h * 2**(s-1) (and its other bits)
                p = (h << s >> 1) + (d >> 1 if s else 0)
                if -(1 << 31) <= p < 1 << 31:
                    cases += [(p, 0, 1, s, *params[int(rng.integers(len(params)))])]
    for _ in range(250):  # random parameters in range, sums near the clamps
        z = int(rng.integers(plo, phi + 1))
        lo_, hi_ = sorted(int(v) for v in rng.integers(plo, phi + 1, 2))
        s = int(rng.integers(0, 12))
        cases.append((int(rng.integers(-(4 * edge) << s, (4 * edge) << s)), int(rng.integers(-50, 50)),
                      int(rng.integers(1, 4)), s, z, lo_, hi_))
    got: list[int] = []

    async def bench(ctx) -> None:
        mask = (1 << pb) - 1
        for a, b, mu, s, z, l, h in cases:
            word = (a & 0xFFFFFFFF) | ((b & 0xFFFFFFFF) | mu << 32 | s << 48) << 32
            word |= ((z & mask) | (l & mask) << pb | (h & mask) << 2 * pb) << 88
            ctx.set(packed, word)
            got.append(ctx.get(out))

    sim = Simulator(m)
    sim.add_testbench(bench)
    sim.run()
    want = [_reference(*c) & ((1 << out_bits) - 1) for c in cases]
    bad = [(c, g, w) for c, g, w in zip(cases, got, want, strict=True) if g != w]
    assert not bad, bad[:3]
    # both kinds of case occur: values clamped by the flag (outside the window) and values inside it
    assert len(cases) > 400
