"""Amaranth-simulator tier: the vector unit against TFLite's 8-bit arithmetic (workloads.eltwise_arith).

Each case streams random int8 words through the unit, one a cycle, and expects every output lane to
equal the numpy reference bit for bit, ``LATENCY_CYCLES`` (7) cycles after its input. The reference
itself is checked against values worked by hand and against float arithmetic within one step of
the output scale.
"""

from __future__ import annotations

import numpy as np
import pytest
from amaranth.sim import Simulator

from codesign.errors import ConfigError, WorkloadError
from codesign.hdl.engines.vector import LATENCY_CYCLES, VectorOp, VectorSpec, VectorUnit
from codesign.workloads.eltwise_arith import (
    activation_table,
    add_params,
    mul_params,
    quantize_multiplier_q31,
    rounding_divide_by_pot,
    srdhm,
    tflite_add,
    tflite_mul,
)

LANES = 4


def _pack(vals) -> int:
    return sum((int(v) & 0xFF) << (8 * i) for i, v in enumerate(vals))


def _unpack(word: int) -> list[int]:
    out = []
    for i in range(LANES):
        v = (word >> (8 * i)) & 0xFF
        out.append(v - 256 if v > 127 else v)
    return out


def run_unit(op: VectorOp, a: np.ndarray, b: np.ndarray, params=None, table=None):  # type: ignore[no-untyped-def]
    """Stream rows of ``a``/``b`` ([words, LANES] int8) through the unit; returns outputs and their cycles."""
    dut = VectorUnit(VectorSpec(lanes=LANES))
    got: list[tuple[int, list[int]]] = []

    async def bench(ctx):
        ctx.set(dut.op, int(op))
        if params is not None:
            for name in ("input1_offset", "input2_offset", "left_shift", "input1_multiplier", "input1_shift",
                         "input2_multiplier", "input2_shift", "output_multiplier", "output_shift", "output_offset"):
                ctx.set(getattr(dut, name), getattr(params, name))
            ctx.set(dut.act_min, params.act_min)
            ctx.set(dut.act_max, params.act_max)
        if table is not None:
            for i, v in enumerate(table):
                ctx.set(dut.t_en, 1)
                ctx.set(dut.t_addr, i)
                ctx.set(dut.t_data, int(v) & 0xFF)
                await ctx.tick()
            ctx.set(dut.t_en, 0)
        cycle = 0
        for i in range(len(a) + LATENCY_CYCLES + 2):
            if i < len(a):
                ctx.set(dut.in_valid, 1)
                ctx.set(dut.in_a, _pack(a[i]))
                ctx.set(dut.in_b, _pack(b[i]))
            else:
                ctx.set(dut.in_valid, 0)
            if ctx.get(dut.out_valid):
                got.append((cycle, _unpack(ctx.get(dut.out_data))))
            await ctx.tick()
            cycle += 1

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    return np.array([g[1] for g in got]), [g[0] for g in got]


def test_gemmlowp_primitives_by_hand() -> None:
    # SRDHM: 2**30 * 2**30 doubled and taken high: 2**29; a negative product rounds toward zero after the nudge
    assert srdhm(1 << 30, 1 << 30) == 1 << 29
    assert srdhm(-3, 1 << 30) == -1  # (-3 * 2**30 + 1 - 2**30) / 2**31 = -1.99... -> -1
    assert srdhm(-(1 << 31), -(1 << 31)) == (1 << 31) - 1  # the one saturating case
    # RoundingDivideByPOT: halves away from zero
    assert list(rounding_divide_by_pot(np.array([5, -5, 6, -6, 7, -7]), 1)) == [3, -3, 3, -3, 4, -4]
    assert quantize_multiplier_q31(0.5) == (1 << 30, 0) and quantize_multiplier_q31(0.75) == (3 << 29, 0)


def test_reference_add_and_mul_track_float_arithmetic() -> None:
    rng = np.random.default_rng(3)
    x1, x2 = rng.integers(-128, 128, 500), rng.integers(-128, 128, 500)
    s1, z1, s2, z2, so, zo = 0.05, 3, 0.11, -7, 0.13, 5
    add = tflite_add(x1, x2, add_params(s1, z1, s2, z2, so, zo))
    real = np.clip(np.rint(((x1 - z1) * s1 + (x2 - z2) * s2) / so) + zo, -128, 127)
    assert np.abs(add - real).max() <= 1
    mul = tflite_mul(x1, x2, mul_params(s1, z1, s2, z2, so, zo))
    real = np.clip(np.rint((x1 - z1) * s1 * (x2 - z2) * s2 / so) + zo, -128, 127)
    assert np.abs(mul - real).max() <= 1


@pytest.mark.hdl
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_residual_add_is_tflite_bit_for_bit(seed) -> None:
    rng = np.random.default_rng(seed)
    a, b = rng.integers(-128, 128, (24, LANES)), rng.integers(-128, 128, (24, LANES))
    s1, s2, so = rng.uniform(0.01, 0.2, 3)
    z1, z2, zo = rng.integers(-20, 20, 3)
    p = add_params(s1, int(z1), s2, int(z2), so, int(zo), act_min=-128 if seed else 0)  # seed 0: a fused ReLU
    got, cycles = run_unit(VectorOp.ADD, a, b, p)
    assert np.array_equal(got, tflite_add(a, b, p))
    assert cycles == list(range(LATENCY_CYCLES, LATENCY_CYCLES + 24))  # one word a cycle, 7 cycles late
    assert len(np.unique(got)) > 30


@pytest.mark.hdl
def test_squeeze_excite_multiply_is_tflite_bit_for_bit() -> None:
    rng = np.random.default_rng(9)
    a = rng.integers(-128, 128, (20, LANES))
    scale = rng.integers(-128, 128, LANES)  # one channel's SE scale per lane, the same on every pixel
    b = np.tile(scale, (20, 1))
    for s_out in (0.0001, 0.2):  # an output multiplier above 1 (left shift first) and one below
        p = mul_params(0.02, -3, 0.015, 4, s_out, -1)
        assert (p.output_shift > 0) == (s_out == 0.0001)
        got, _ = run_unit(VectorOp.MUL, a, b, p)
        assert np.array_equal(got, tflite_mul(a, b, p))


@pytest.mark.hdl
@pytest.mark.parametrize("fn", ["relu6", "hard_swish", "silu", "sigmoid"])
def test_table_activations_are_exact(fn) -> None:
    table = activation_table(fn, 0.05, 2, 0.03, -10)
    a = np.arange(-128, 128).reshape(-1, LANES)  # every input value once
    got, _ = run_unit(VectorOp.TABLE, a, np.zeros_like(a), table=table)
    assert np.array_equal(got, table[a & 0xFF])


def test_bad_activation_and_spec_are_one_line() -> None:
    with pytest.raises(WorkloadError, match=r"^activation must be one of relu, relu6, .*, not 'gelu2'$"):
        activation_table("gelu2", 0.1, 0, 0.1, 0)
    with pytest.raises(ConfigError, match=r"^vector unit act_bits must be from 2 to 8 .*, not 12$"):
        VectorSpec(act_bits=12)
