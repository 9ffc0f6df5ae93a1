"""The accelerator's integer arithmetic: requantization of accumulator sums, and its parameters.

This is the write-back arithmetic of the hardware (TFLite/CMSIS-NN style, per output channel):

* the PE array accumulates ``acc = sum_k a[m, k] * b[k, n]`` in int64 (the hardware's
  ``acc_bits`` register never overflows on the networks here: see :func:`check_accumulator`);
* the bias, folded into the accumulator as an int32 ``bias_q = round(bias / (s_in * s_w))``, is
  added before requantization;
* :func:`requantize` scales by ``mult * 2**-shift`` (``mult`` a 15-bit integer), rounds half up,
  adds the output zero point and clamps (saturation, ReLU, ReLU6).

Everything is numpy int64, so it is exact and equal bit for bit to the RTL's write-back.
"""

from __future__ import annotations

import math

import numpy as np

from codesign.errors import WorkloadError

MULT_BITS = 15  # mult in [1, 2**15 - 1]; [2**14, 2**15 - 1] when the ratio allows it
MAX_SHIFT = 40
INT32_MIN, INT32_MAX = -(1 << 31), (1 << 31) - 1


def qrange(bits: int, signed: bool = True) -> tuple[int, int]:
    """The integer range of a ``bits``-bit operand: ``(-2**(b-1), 2**(b-1) - 1)`` or ``(0, 2**b - 1)``."""
    if isinstance(bits, bool) or not isinstance(bits, (int, np.integer)) or not 1 <= bits <= 32:
        raise WorkloadError(f"bits must be an integer from 1 to 32, not {bits!r}")
    b = int(bits)
    return (-(1 << (b - 1)), (1 << (b - 1)) - 1) if signed else (0, (1 << b) - 1)


def _int_array(name: str, value: object, lo: int, hi: int) -> np.ndarray:
    a = np.asarray(value)
    if a.dtype.kind not in "iu":
        raise WorkloadError(f"{name} must be integers, not {a.dtype} values")
    a = a.astype(np.int64)
    if a.size and (a.min() < lo or a.max() > hi):
        bad = a[(a < lo) | (a > hi)].flat[0]
        raise WorkloadError(f"{name} must be integers from {lo} to {hi}, not {int(bad)}")
    return a


def requantize(acc: np.ndarray, mult: np.ndarray | int, shift: np.ndarray | int, zero_point: int,
               clamp_lo: int, clamp_hi: int) -> np.ndarray:
    """Accumulator sums ``acc[..., N]`` -> output integers (int64), per output channel ``n``::

        y = (acc * mult[n] + (1 << (shift[n] - 1) if shift[n] > 0 else 0)) >> shift[n]   # round half up
        y = clip(y + zero_point, clamp_lo, clamp_hi)

    ``>>`` is the arithmetic (flooring) shift, so halves round toward +infinity (-2.5 -> -2).
    ``mult`` in [1, 2**15 - 1] and ``shift`` in [0, 40], per channel (last axis) or scalars.
    """
    a = np.asarray(acc)
    if a.dtype.kind not in "iu":
        raise WorkloadError(f"acc must be integer accumulator sums, not {a.dtype} values")
    a = a.astype(np.int64)
    m = _int_array("mult", mult, 1, (1 << MULT_BITS) - 1)
    s = _int_array("shift", shift, 0, MAX_SHIFT)
    if clamp_lo > clamp_hi:
        raise WorkloadError(f"clamp_lo must be at most clamp_hi ({clamp_hi}), not {clamp_lo}")
    if a.size and int(np.abs(a).max()) >= 1 << (63 - MULT_BITS):
        raise WorkloadError(f"acc must be below 2**{63 - MULT_BITS} in magnitude, not {int(np.abs(a).max())}")
    rounding = np.where(s > 0, np.left_shift(np.int64(1), np.maximum(s - 1, 0)), 0)
    y = np.right_shift(a * m + rounding, s)
    return np.clip(y + int(zero_point), int(clamp_lo), int(clamp_hi))


def quantize_multiplier(ratio: float | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A positive float scale ratio ``s_in * s_w / s_out`` -> ``(mult, shift)`` int64 arrays with
    ``ratio ~= mult * 2**-shift``, ``mult`` in [2**14, 2**15 - 1] and ``shift`` in [0, 40].

    Below ``2**-26`` (shift would pass 40) the shift stays 40 and ``mult`` gets smaller (at least
    1). Ratios of ``2**15`` or more cannot be represented and raise.
    """
    r = np.atleast_1d(np.asarray(ratio, dtype=np.float64))
    mult = np.empty(r.shape, dtype=np.int64)
    shift = np.empty(r.shape, dtype=np.int64)
    for i, v in enumerate(float(x) for x in r.flat):
        if not math.isfinite(v) or v <= 0:
            raise WorkloadError(f"scale ratio must be a positive finite number, not {v!r}")
        frac, exp = math.frexp(v)  # v = frac * 2**exp, frac in [0.5, 1)
        m = round(frac * (1 << MULT_BITS))
        sh = MULT_BITS - exp
        if m == 1 << MULT_BITS:  # frac rounded up to 1.0
            m, sh = 1 << (MULT_BITS - 1), sh - 1
        if sh < 0:
            raise WorkloadError(f"scale ratio must be below 2**{MULT_BITS} (mult * 2**-shift with shift >= 0), "
                                f"not {v!r}")
        if sh > MAX_SHIFT:
            sh = MAX_SHIFT
            m = max(1, round(v * 2.0**MAX_SHIFT))
        mult.flat[i], shift.flat[i] = m, sh
    return mult.reshape(np.shape(ratio)), shift.reshape(np.shape(ratio))


def quantize_bias(bias: np.ndarray, acc_scale: np.ndarray) -> np.ndarray:
    """Float bias -> int32 values in accumulator units: ``round(bias / (s_in * s_w))`` (half to even).

    Raises when a value does not fit int32 (the hardware's bias register)."""
    b = np.rint(np.asarray(bias, dtype=np.float64) / np.asarray(acc_scale, dtype=np.float64))
    if b.size and (b.min() < INT32_MIN or b.max() > INT32_MAX):
        raise WorkloadError(f"bias must fit int32 in accumulator units, not {float(np.abs(b).max()):.0f}")
    return b.astype(np.int64)


def int_gemm(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a[..., M, K] @ b[..., K, N]`` in int64 (the PE array's exact sums)."""
    return np.matmul(np.asarray(a, dtype=np.int64), np.asarray(b, dtype=np.int64))


def check_accumulator(acc: np.ndarray, acc_bits: int) -> None:
    """Raise when a sum does not fit a signed ``acc_bits``-bit accumulator."""
    lo, hi = qrange(acc_bits, True)
    a = np.asarray(acc)
    if a.size and (a.min() < lo or a.max() > hi):
        raise WorkloadError(f"accumulator sums must fit {acc_bits} signed bits, not {int(np.abs(a).max())}")
