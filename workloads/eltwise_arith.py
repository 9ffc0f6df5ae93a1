"""The vector unit's integer arithmetic for element-wise layers: TFLite's quantized ADD and MUL, and
lookup tables for activations. numpy int64, exact: the RTL (:mod:`codesign.hdl.engines.vector`)
equals it bit for bit.

ADD and MUL follow TFLite's reference kernels (``reference_ops::AddElementwise`` and ``MulElementwise``
for 8-bit tensors) with gemmlowp's fixed-point primitives:

* :func:`srdhm` — ``SaturatingRoundingDoublingHighMul(a, b)``: ``(a * b + nudge) / 2**31`` with C's
  truncating division, ``nudge = 2**30`` for a non-negative product and ``1 - 2**30`` otherwise;
  ``INT32_MIN * INT32_MIN`` saturates to ``INT32_MAX``;
* :func:`rounding_divide_by_pot` — ``RoundingDivideByPOT(x, e)``: ``x >> e`` rounded half away from zero;
* ``MultiplyByQuantizedMultiplier(x, m, shift)`` = ``RoundingDivideByPOT(srdhm(x << max(shift, 0), m),
  max(-shift, 0))``, with ``m`` a Q31 multiplier in ``[2**30, 2**31)`` (:func:`quantize_multiplier_q31`).

ADD: ``y = clamp(MBQM(MBQM(x1 + off1 << ls, m1, s1) + MBQM(x2 + off2 << ls, m2, s2), mo, so) + off_o)``
with ``ls = 20`` (TFLite's ``left_shift`` for 8-bit inputs) and the input and output scales folded into
``m1, s1, m2, s2, mo, so`` as TFLite's ``PrepareGeneralSubOp`` does (:func:`add_params`).
MUL: ``y = clamp(MBQM((x1 + off1) * (x2 + off2), mo, so) + off_o)``.

Activation tables: any ``int8 -> int8`` function (ReLU6, hard-swish, SiLU, sigmoid, ...) is exact as a
256-entry table computed from the tensors' scales (:func:`activation_table`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from codesign.errors import WorkloadError

INT32_MIN, INT32_MAX = -(1 << 31), (1 << 31) - 1
ADD_LEFT_SHIFT = 20  # TFLite's left_shift for 8-bit ADD inputs


def srdhm(a: np.ndarray | int, b: np.ndarray | int) -> np.ndarray:
    """gemmlowp's ``SaturatingRoundingDoublingHighMul`` on int32 values (as int64 arrays)."""
    a64 = np.asarray(a, dtype=np.int64)
    b64 = np.asarray(b, dtype=np.int64)
    ab = a64 * b64
    nudge = np.where(ab >= 0, 1 << 30, 1 - (1 << 30))
    v = ab + nudge
    q = np.where(v >= 0, v >> 31, -((-v) >> 31))  # C's division: toward zero
    return np.where((a64 == INT32_MIN) & (b64 == INT32_MIN), INT32_MAX, q)


def rounding_divide_by_pot(x: np.ndarray | int, exponent: np.ndarray | int) -> np.ndarray:
    """gemmlowp's ``RoundingDivideByPOT``: ``x / 2**exponent`` rounded half away from zero."""
    x64 = np.asarray(x, dtype=np.int64)
    e = np.asarray(exponent, dtype=np.int64)
    mask = (np.int64(1) << e) - 1
    remainder = x64 & mask
    threshold = (mask >> 1) + (x64 < 0)
    return (x64 >> e) + (remainder > threshold)


def multiply_by_quantized_multiplier(x: np.ndarray | int, mult: int, shift: int) -> np.ndarray:
    """TFLite's ``MultiplyByQuantizedMultiplier(x, mult, shift)`` (``shift`` > 0 shifts left first)."""
    left, right = max(shift, 0), max(-shift, 0)
    return rounding_divide_by_pot(srdhm(np.asarray(x, dtype=np.int64) << left, mult), right)


def quantize_multiplier_q31(ratio: float) -> tuple[int, int]:
    """TFLite's ``QuantizeMultiplier``: ``ratio ~= mult * 2**(shift - 31)``, ``mult`` in ``[2**30, 2**31)``."""
    if not math.isfinite(ratio) or ratio <= 0:
        raise WorkloadError(f"scale ratio must be a positive finite number, not {ratio!r}")
    frac, shift = math.frexp(ratio)
    q = round(frac * (1 << 31))
    if q == 1 << 31:
        q //= 2
        shift += 1
    if shift < -31:
        return 0, 0
    if shift > 30:
        raise WorkloadError(f"scale ratio must be below 2**30, not {ratio!r}")
    return q, shift


@dataclass(frozen=True)
class EltwiseParams:
    """Parameters of one ADD or MUL (TFLite's ``ArithmeticParams`` for 8-bit tensors)."""

    input1_offset: int = 0
    input2_offset: int = 0
    input1_multiplier: int = 1 << 30
    input1_shift: int = 0  # <= 0 for ADD
    input2_multiplier: int = 1 << 30
    input2_shift: int = 0
    output_multiplier: int = 1 << 30
    output_shift: int = 0
    output_offset: int = 0
    act_min: int = -128
    act_max: int = 127
    left_shift: int = ADD_LEFT_SHIFT


def add_params(s1: float, z1: int, s2: float, z2: int, s_out: float, z_out: int, act_min: int = -128,
               act_max: int = 127) -> EltwiseParams:
    """TFLite's ``PrepareGeneralSubOp`` for 8-bit ADD: the two inputs rescaled to twice the larger
    input scale, then to the output's."""
    twice_max = 2 * max(s1, s2)
    real1, real2 = s1 / twice_max, s2 / twice_max
    real_out = twice_max / ((1 << ADD_LEFT_SHIFT) * s_out)
    m1, e1 = quantize_multiplier_q31(real1)
    m2, e2 = quantize_multiplier_q31(real2)
    mo, eo = quantize_multiplier_q31(real_out)
    return EltwiseParams(-z1, -z2, m1, e1, m2, e2, mo, eo, z_out, act_min, act_max)


def mul_params(s1: float, z1: int, s2: float, z2: int, s_out: float, z_out: int, act_min: int = -128,
               act_max: int = 127) -> EltwiseParams:
    """TFLite's 8-bit MUL: one output multiplier for ``s1 * s2 / s_out``."""
    mo, eo = quantize_multiplier_q31(s1 * s2 / s_out)
    return EltwiseParams(-z1, -z2, output_multiplier=mo, output_shift=eo, output_offset=z_out, act_min=act_min,
                         act_max=act_max, left_shift=0)


def tflite_add(x1: np.ndarray, x2: np.ndarray, p: EltwiseParams) -> np.ndarray:
    """8-bit ADD of two quantized tensors with their own scales (TFLite's reference arithmetic)."""
    v1 = (np.asarray(x1, dtype=np.int64) + p.input1_offset) << p.left_shift
    v2 = (np.asarray(x2, dtype=np.int64) + p.input2_offset) << p.left_shift
    raw = (multiply_by_quantized_multiplier(v1, p.input1_multiplier, p.input1_shift)
           + multiply_by_quantized_multiplier(v2, p.input2_multiplier, p.input2_shift))
    out = multiply_by_quantized_multiplier(raw, p.output_multiplier, p.output_shift) + p.output_offset
    return np.clip(out, p.act_min, p.act_max)


def tflite_mul(x1: np.ndarray, x2: np.ndarray, p: EltwiseParams) -> np.ndarray:
    """8-bit MUL (squeeze-excite's channel scaling) (TFLite's reference arithmetic)."""
    v = (np.asarray(x1, dtype=np.int64) + p.input1_offset) * (np.asarray(x2, dtype=np.int64) + p.input2_offset)
    out = multiply_by_quantized_multiplier(v, p.output_multiplier, p.output_shift) + p.output_offset
    return np.clip(out, p.act_min, p.act_max)


def activation_table(fn: str, s_in: float, z_in: int, s_out: float, z_out: int, bits: int = 8,
                     signed: bool = True) -> np.ndarray:
    """The ``2**bits``-entry table of ``fn`` (relu, relu6, hard_swish, hard_sigmoid, silu, sigmoid, tanh,
    gelu: ``workloads.layers.TABLE_ACTIVATIONS`` and the ReLU family) between two
    quantized tensors: entry ``i`` is the output for input ``i`` (two's complement index for signed
    inputs: entry ``i`` holds the value for ``i - 2**bits`` when ``i >= 2**(bits - 1)``)."""
    lo, hi = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)
    q = np.arange(1 << bits, dtype=np.int64)
    if signed:
        q = np.where(q >= 1 << (bits - 1), q - (1 << bits), q)
    x = (q - z_in) * s_in
    fns = _functions()
    if fn not in fns:
        raise WorkloadError(f"activation must be one of {', '.join(fns)}, not {fn!r}")
    y = np.rint(fns[fn](x) / s_out) + z_out
    return np.clip(y, lo, hi).astype(np.int64)


def seeded_activation_table(fn: str, bits: int = 8, signed: bool = True, x_max: float = 8.0) -> np.ndarray:
    """:func:`activation_table` of ``fn`` for an input that spans ``[-x_max, x_max)`` (zero point 0, or
    the middle code when unsigned) and an output scale and zero point that span ``fn``'s values there
    (and 0): the table a calibrated network would have, for verifying the hardware without one."""
    lo = -(1 << (bits - 1)) if signed else 0
    s_in = 2.0 * x_max / (1 << bits)
    z_in = 0 if signed else 1 << (bits - 1)
    if fn not in _functions():
        raise WorkloadError(f"activation must be one of {', '.join(_functions())}, not {fn!r}")
    y = _functions()[fn]((np.arange(lo, lo + (1 << bits)) - z_in) * s_in)
    y_min, y_max = min(float(y.min()), 0.0), max(float(y.max()), 0.0)
    s_out = (y_max - y_min) / ((1 << bits) - 1) or 1.0
    z_out = lo - round(y_min / s_out)
    return activation_table(fn, s_in, z_in, s_out, z_out, bits, signed)


def apply_table(table: np.ndarray, x: np.ndarray, bits: int) -> np.ndarray:
    """The table's entries for the ``bits``-bit values ``x`` (two's complement index: the hardware's)."""
    return np.asarray(table, dtype=np.int64)[np.asarray(x, dtype=np.int64) & ((1 << bits) - 1)]


def _functions() -> dict:  # type: ignore[type-arg]
    return {
        "relu": lambda v: np.maximum(v, 0.0),
        "relu6": lambda v: np.clip(v, 0.0, 6.0),
        "hard_swish": lambda v: v * np.clip(v + 3.0, 0.0, 6.0) / 6.0,
        "silu": lambda v: v / (1.0 + np.exp(-v)),
        "sigmoid": lambda v: 1.0 / (1.0 + np.exp(-v)),
        "hard_sigmoid": lambda v: np.clip(v + 3.0, 0.0, 6.0) / 6.0,
        "tanh": np.tanh,
        "gelu": lambda v: 0.5 * v * (1.0 + np.vectorize(math.erf)(v / math.sqrt(2.0))),
    }
