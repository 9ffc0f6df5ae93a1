"""Amaranth-simulator tier: PE, array and the accelerator top against numpy and the native timing."""

from __future__ import annotations

import numpy as np
import pytest
from amaranth.sim import Simulator

from codesign.errors import ConfigError
from codesign.hdl.bench.amaranth_sim import run_gemms
from codesign.hdl.engines.array import OSProcessingElement, SystolicArray, WSProcessingElement
from codesign.hdl.plan import HardwarePlan
from codesign.sim.config import AcceleratorConfig
from codesign.sim.timing import native_gemm_cycles

pytestmark = pytest.mark.hdl

SMALL = {"input_sram_bytes": 1024, "weight_sram_bytes": 1024, "output_sram_bytes": 2048}


def _run(dut, bench) -> None:
    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()


@pytest.mark.parametrize("gating", [False, True])
def test_ws_pe_mac_and_gating(gating: bool) -> None:
    plan = HardwarePlan(AcceleratorConfig(rows=2, cols=2, zero_handling="gate" if gating else "none", **SMALL))
    dut = WSProcessingElement(plan)
    seen = []

    async def bench(ctx):
        ctx.set(dut.w_load, 1)
        ctx.set(dut.w_data, -7)
        ctx.set(dut.w_valid, 1)
        await ctx.tick()
        ctx.set(dut.w_load, 0)
        seq = [(3, 1, 100), (0, 1, 5), (-128, 1, 0), (9, 0, 11)]
        # the multiplier's operands and product are registered: an activation's product is added to the
        # partial sum two cycles later (as the PE above hands it down two cycles later)
        for i in range(len(seq) + 2):
            a, valid, _ = seq[i] if i < len(seq) else (0, 0, 0)
            ctx.set(dut.a_in, {"data": a, "valid": valid})
            ctx.set(dut.psum_in, seq[i - 2][2] if i >= 2 else 0)
            en = ctx.get(dut.enabled)
            await ctx.tick()
            if i < len(seq):
                seen.append(en)
            if i >= 2:
                sums.append(ctx.get(dut.psum_out))

    sums: list[int] = []
    _run(dut, bench)
    # psum_out = psum_in + a*w when enabled; a zero activation is gated only with gating
    assert seen == [1, 0 if gating else 1, 1, 0]
    assert sums == [100 - 21, 5, 896, 11]


def test_os_pe_first_hands_over_the_sum() -> None:
    plan = HardwarePlan(AcceleratorConfig(rows=2, cols=2, dataflow="os", **SMALL))
    dut = OSProcessingElement(plan)
    out = []

    async def bench(ctx):
        seq = [(2, 3, 1), (4, 5, 0), (-1, 6, 0), (7, 1, 1), (0, 0, 1)]
        for a, b, first in seq:
            ctx.set(dut.a_in, {"data": a, "valid": 1, "first": first})
            ctx.set(dut.b_in, {"data": b, "valid": 1})
            await ctx.tick()
            out.append(ctx.get(dut.result))

    _run(dut, bench)
    # fold 1: 2*3 + 4*5 - 1*6 = 20, handed over when the next fold's first product arrives
    assert out[3] == 20
    assert out[4] == 7  # fold 2: 7*1


def test_ws_array_latency_is_rows_plus_cols() -> None:
    plan = HardwarePlan(AcceleratorConfig(rows=3, cols=2, **SMALL))
    dut = SystolicArray(plan)
    w = np.array([[1, 2], [3, 4], [5, -6]])
    a = np.array([[1, 2, 3], [-4, 5, 6], [7, 8, -9], [1, 1, 1]])
    got: dict[int, list[int]] = {}

    async def bench(ctx):
        for r in range(3):
            ctx.set(dut.w_load, 1)
            ctx.set(dut.w_row, r)
            for c in range(2):
                ctx.set(dut.w_vec[c], {"data": int(w[r, c]), "valid": 1})
            await ctx.tick()
        ctx.set(dut.w_load, 0)
        for t in range(12):
            for r in range(3):
                ctx.set(dut.a_vec[r], {"data": int(a[t, r]) if t < 4 else 0, "valid": int(t < 4)})
            got[t] = [ctx.get(dut.out_vec[c]) for c in range(2)]
            await ctx.tick()

    _run(dut, bench)
    lat = dut.latency_cycles
    assert lat == 3 + 2 - 1 + 2  # skew and deskew, and the PEs' multiplier registers
    for i in range(4):
        assert got[i + lat] == list(a[i] @ w)


CASES = [(5, 6, 7), (2, 3, 2), (9, 4, 3), (1, 1, 1), (4, 9, 13), (12, 1, 5)]


@pytest.mark.parametrize("dataflow", ["ws", "os"])
@pytest.mark.parametrize(("rows", "cols"), [(3, 4), (4, 2)])
@pytest.mark.parametrize("gating", [False, True])
def test_top_matches_numpy_and_native_timing(dataflow: str, rows: int, cols: int, gating: bool) -> None:
    cfg = AcceleratorConfig(rows=rows, cols=cols, dataflow=dataflow,
                            zero_handling="gate" if gating else "none", **SMALL)
    rng = np.random.default_rng(rows * 10 + cols)
    gemms = []
    for m, n, k in CASES:
        a = rng.integers(-128, 128, (m, k))
        b = rng.integers(-128, 128, (k, n))
        a[rng.random((m, k)) < 0.3] = 0
        b[rng.random((k, n)) < 0.3] = 0
        gemms.append((a, b))
    for (a, b), run in zip(gemms, run_gemms(cfg, gemms, seed=3), strict=True):
        (m, k), n = a.shape, b.shape[1]
        assert np.array_equal(run.c, a @ b)
        assert run.cycles == native_gemm_cycles(cfg, m, n, k)
        active = int(((a != 0).sum(axis=0) * (b != 0).sum(axis=1)).sum())
        assert run.enabled_macs == (active if gating else m * n * k)


def test_int4_unsigned_activations() -> None:
    cfg = AcceleratorConfig(rows=4, cols=4, weight_bits=4, act_bits=4, act_signed=False, **SMALL)
    rng = np.random.default_rng(7)
    a = rng.integers(0, 16, (6, 9))
    b = rng.integers(-8, 8, (9, 5))
    (run,) = run_gemms(cfg, [(a, b)])
    assert np.array_equal(run.c, a @ b)
    assert run.cycles == 1 + (3 * 2 - 1) * 6 + 6 + 8 + 2


def test_plan_rejects_what_the_hardware_cannot_do() -> None:
    with pytest.raises(ConfigError, match=r"skip_pattern must be n:m .* bitmask skipping is model-only"):
        HardwarePlan(AcceleratorConfig(zero_handling="skip", skip_pattern="bitmask"))
    with pytest.raises(ConfigError, match=r"dataflow must be ws for zero_handling skip .* not 'os'"):
        HardwarePlan(AcceleratorConfig(zero_handling="skip", dataflow="os"))
    # 2:4 on the WS array: activation words of 16 rows / 2 * 4 lanes, weight lanes of 8 + 2 index bits
    skip = HardwarePlan(AcceleratorConfig(zero_handling="skip"))
    assert (skip.act_word_bits, skip.weight_word_bits, skip.gating) == (32 * 8, 16 * 10, True)
    with pytest.raises(ConfigError, match="weight_bits must be from 2 to 16 for the generated hardware, not 32"):
        HardwarePlan(AcceleratorConfig(weight_bits=32))
    plan = HardwarePlan(AcceleratorConfig(rows=4, cols=4, **SMALL))
    with pytest.raises(ConfigError, match="does not fit the buffers"):
        plan.check_fits(10_000, 4, 4)
    # the accumulator is acc_bits of the config (honoured, not derived): signed for signed operands
    assert (plan.acc_bits, plan.acc_signed) == (32, True)
    # a K whose extreme sum k * (-128 * -128) needs more bits is refused, naming the bits it needs:
    # 2**31 > 131072 * 16384 = 2**31 needs 33 bits (signed)
    plan.check_accumulator(131071)
    with pytest.raises(ConfigError, match="acc_bits must be at least 33 for gemm with K=131072"):
        plan.check_accumulator(131072)
    with pytest.raises(ConfigError, match="acc_bits must be from 17 to 48 for 8-bit weights and 8-bit activations"):
        HardwarePlan(AcceleratorConfig(acc_bits=16))


@pytest.mark.parametrize(("wb", "ab", "w_signed", "a_signed", "cols", "gating"), [
    (4, 4, True, True, 4, False),  # INT4: k = 8, a 4 x 13-bit multiply, one 18x18 block a pair
    (4, 4, True, False, 3, True),  # unsigned activations, an odd column left on its own, zero-gating
    (4, 8, True, True, 2, True),  # 4-bit weights, 8-bit activations: 4 + 8 + 4 + 1 = 17 bits
    (3, 4, False, False, 5, False),  # unsigned weights and activations (an unsigned low product)
])
def test_packed_pairs_equal_one_multiplier_a_pe(wb: int, ab: int, w_signed: bool, a_signed: bool, cols: int,
                                                gating: bool) -> None:
    """Two WS arrays side by side, one with PE pairs sharing a multiplier, one with a multiplier a PE,
    fed the same random activations, weights and weight loads (mid-stream too): every cycle's sums
    and enable count are equal (the pair's products are its two PEs', in the same cycles)."""
    from amaranth.hdl import Module

    from codesign.hdl.engines.array import packs_pairs

    kw = dict(rows=3, cols=cols, weight_bits=wb, act_bits=ab, weight_signed=w_signed, act_signed=a_signed,
              zero_handling="gate" if gating else "none", **SMALL)
    packed, plain = HardwarePlan(AcceleratorConfig(**kw)), HardwarePlan(AcceleratorConfig(**kw, pack_products=False))
    assert packs_pairs(packed) and not packs_pairs(plain)
    top = Module()
    top.submodules.p = p = SystolicArray(packed)
    top.submodules.u = u = SystolicArray(plain)
    rng = np.random.default_rng(wb * 100 + ab * 10 + cols)
    wlo, whi = (-(1 << (wb - 1)), 1 << (wb - 1)) if w_signed else (0, 1 << wb)
    alo, ahi = (-(1 << (ab - 1)), 1 << (ab - 1)) if a_signed else (0, 1 << ab)
    mism: list[tuple[int, list, list]] = []
    checked = [0]

    async def bench(ctx):
        for t in range(120):
            load = int(rng.random() < 0.25)
            for dut in (p, u):
                ctx.set(dut.w_load, load)
                ctx.set(dut.w_row, t % 3)
            for c in range(cols):
                w = {"data": int(rng.integers(wlo, whi)), "valid": int(rng.random() < 0.9)}
                if rng.random() < 0.2:
                    w["data"] = 0
                for dut in (p, u):
                    ctx.set(dut.w_vec[c], w)
            for r in range(3):
                a = {"data": int(rng.integers(alo, ahi)), "valid": int(rng.random() < 0.8)}
                if rng.random() < 0.2:
                    a["data"] = 0
                for dut in (p, u):
                    ctx.set(dut.a_vec[r], a)
            got = [ctx.get(p.out_vec[c]) for c in range(cols)] + [ctx.get(p.enabled_count)]
            want = [ctx.get(u.out_vec[c]) for c in range(cols)] + [ctx.get(u.enabled_count)]
            if got != want:
                mism.append((t, got, want))
            checked[0] += any(want[:-1])
            await ctx.tick()

    _run(top, bench)
    assert not mism, mism[:3]
    assert checked[0] > 60  # most cycles carry non-zero sums: the comparison is not of zeros


@pytest.mark.parametrize(("wb", "ab", "w_signed", "a_signed", "a_val", "w_val", "bits"), [
    # 16 rows of INT4: -8 * -8 = 64 a PE, 16 * 64 = 1024 = 2**10 needs 12 bits signed (not 11)
    (4, 4, True, True, -8, -8, 12),
    (4, 4, True, True, -8, 7, 12),  # 16 * -56 = -896
    (4, 4, True, False, 15, -8, 12),  # unsigned activations: 16 * -120 = -1920 (>= -2048)
    (4, 4, False, False, 15, 15, 12),  # unsigned: 16 * 225 = 3600 < 4096, 12 bits unsigned
    (8, 8, True, True, -128, -128, 20),  # INT8: 16 * 2**14 = 2**18 needs 19 bits and a sign
])
def test_ws_column_sums_at_their_extremes(wb: int, ab: int, w_signed: bool, a_signed: bool, a_val: int,
                                          w_val: int, bits: int) -> None:
    """A WS column's partial sums are held at the width the sum of the rows above needs (``psum_shape``),
    not acc_bits: at the operands' extremes every sum of a 16-row column is exact (one bit fewer at the
    bottom row and 16 * 64 = 1024 would wrap to -1024), and leaves the array extended to acc_bits."""
    from amaranth.hdl import Shape

    from codesign.hdl.engines.array import psum_shape

    rows, cols = 16, 2
    plan = HardwarePlan(AcceleratorConfig(rows=rows, cols=cols, weight_bits=wb, act_bits=ab, weight_signed=w_signed,
                                          act_signed=a_signed, **SMALL))
    assert psum_shape(plan, rows) == Shape(bits, w_signed or a_signed)
    assert psum_shape(plan, 1).width == wb + ab  # one product
    dut = SystolicArray(plan)
    got: list[list[int]] = []

    async def bench(ctx):
        for r in range(rows):
            ctx.set(dut.w_load, 1)
            ctx.set(dut.w_row, r)
            for c in range(cols):
                ctx.set(dut.w_vec[c], {"data": w_val, "valid": 1})
            await ctx.tick()
        ctx.set(dut.w_load, 0)
        for t in range(dut.latency_cycles + 2):
            for r in range(rows):
                ctx.set(dut.a_vec[r], {"data": a_val if t == 0 else 0, "valid": int(t == 0)})
            got.append([ctx.get(dut.out_vec[c]) for c in range(cols)])
            await ctx.tick()

    _run(dut, bench)
    assert got[dut.latency_cycles] == [rows * a_val * w_val] * cols
