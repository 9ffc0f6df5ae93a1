"""The write-back arithmetic (requantization), checked against numbers computed by hand."""

from __future__ import annotations

import numpy as np
import pytest

from codesign.errors import WorkloadError
from codesign.workloads.intarith import MAX_SHIFT, int_gemm, qrange, quantize_bias, quantize_multiplier, requantize


def rq(acc: list[int] | list[list[int]], mult: object, shift: object, zp: int = 0, lo: int = -128,
       hi: int = 127) -> list[int]:
    return requantize(np.array(acc, dtype=np.int64), mult, shift, zp, lo, hi).tolist()  # type: ignore[arg-type]


def test_halves_round_up_toward_plus_infinity() -> None:
    # mult 2**14, shift 15: y = (acc * 16384 + 16384) >> 15 = floor((acc + 1) / 2), i.e. acc / 2 rounded half up
    #   5 -> 2.5 -> 3;  -5 -> -2.5 -> -2;  3 -> 1.5 -> 2;  -3 -> -1.5 -> -1;  1 -> 0.5 -> 1;  -1 -> -0.5 -> 0
    assert rq([5, -5, 3, -3, 1, -1, 4, -4], 16384, 15) == [3, -2, 2, -1, 1, 0, 2, -2]


def test_non_halves_round_to_nearest() -> None:
    # ratio 3/8 (mult 3, shift 3): 7 * 3 / 8 = 2.625 -> 3;  -7 * 3 / 8 = -2.625 -> -3;  10 * 3 / 8 = 3.75 -> 4
    # (21 + 4) >> 3 = 3;  (-21 + 4) >> 3 = floor(-17 / 8) = -3;  (30 + 4) >> 3 = 4
    assert rq([7, -7, 10], 3, 3) == [3, -3, 4]


def test_shift_zero_has_no_rounding_term() -> None:
    assert rq([3, -3], 2, 0) == [6, -6]


def test_per_channel_parameters_on_the_last_axis() -> None:
    # channel 0: (100 * 1 + 1) >> 1 = 50;  channel 1: (100 * 3 + 2) >> 2 = 302 >> 2 = 75
    assert rq([[100, 100], [-100, -100]], np.array([1, 3]), np.array([1, 2])) == [[50, 75], [-50, -75]]


def test_zero_point_then_saturation() -> None:
    # 1000 + 10 saturates to 127; -1000 + 10 = -990 saturates to -128; 20 + 10 = 30
    assert rq([1000, -1000, 20], 1, 0, zp=10) == [127, -128, 30]


def test_relu_and_relu6_are_clamps() -> None:
    # ReLU: clamp_lo = zero point (0); ReLU6 with scale 0.06: clamp_hi = zp + round(6 / 0.06) = 100
    assert rq([-7, 0, 7], 1, 0, lo=0) == [0, 0, 7]
    assert rq([-7, 99, 101, 500], 1, 0, lo=0, hi=round(6 / 0.06)) == [0, 99, 100, 100]


def test_requantize_rejects_bad_parameters() -> None:
    with pytest.raises(WorkloadError, match=r"^mult must be integers from 1 to 32767, not 0$"):
        rq([1], 0, 1)
    with pytest.raises(WorkloadError, match=r"^shift must be integers from 0 to 40, not 41$"):
        rq([1], 1, 41)
    with pytest.raises(WorkloadError, match=r"^acc must be integer accumulator sums, not float64 values$"):
        requantize(np.array([1.5]), 1, 0, 0, -128, 127)
    with pytest.raises(WorkloadError, match=r"^clamp_lo must be at most clamp_hi \(0\), not 5$"):
        rq([1], 1, 0, lo=5, hi=0)


@pytest.mark.parametrize(("ratio", "mult", "shift"), [
    (0.5, 16384, 15),  # frexp(0.5) = (0.5, 0): 0.5 * 2**15 = 16384, shift 15 - 0
    (0.75, 24576, 15),  # 0.75 * 2**15 = 24576
    (1.0, 16384, 14),  # frexp(1) = (0.5, 1)
    (0.1, 26214, 18),  # frexp(0.1) = (0.8, -3): round(0.8 * 32768) = round(26214.4) = 26214, shift 18
    ((1 - 2**-17) / 8, 16384, 17),  # frac rounds up to 2**15: 2**14 with one less shift (= 1/8)
    (3 * 2.0**-35, 96, 40),  # shift would be 48: capped at 40, mult = 3 * 2**-35 * 2**40 = 96
    (2.0**-45, 1, 40),  # 2**-45 * 2**40 = 1/32 rounds to 0: mult is at least 1
    (20000.0, 20000, 0),  # frexp = (0.6104, 15): mult = 20000, shift 0
])
def test_quantize_multiplier(ratio: float, mult: int, shift: int) -> None:
    m, s = quantize_multiplier(ratio)
    assert (int(m), int(s)) == (mult, shift)


def test_quantize_multiplier_keeps_the_scale_within_half_an_lsb_of_mult() -> None:
    ratios = np.array([0.3, 0.0123, 1.7, 0.000456])
    m, s = quantize_multiplier(ratios)
    assert ((m >= 2**14) & (m < 2**15)).all()
    assert np.all(np.abs(m * 2.0**-s - ratios) <= 0.5 * 2.0**-s)


def test_quantize_multiplier_rejects_what_it_cannot_represent() -> None:
    with pytest.raises(WorkloadError, match=r"^scale ratio must be below 2\*\*15"):
        quantize_multiplier(2.0**15)
    with pytest.raises(WorkloadError, match=r"^scale ratio must be a positive finite number, not 0.0$"):
        quantize_multiplier(0.0)


def test_requantize_with_a_quantized_ratio() -> None:
    # ratio 0.1 -> (26214, 18): 1234 * 26214 = 32348076; + 2**17 = 32479148; >> 18 = 123 (1234 * 0.1 = 123.4)
    m, s = quantize_multiplier(0.1)
    # 15 * 0.1 = 1.5 would round up, but the quantized ratio is 26214 / 2**18 = 0.099998:
    # 15 * 26214 + 2**17 = 524282 < 2**19, so >> 18 gives 1 (the multiplier's rounding decides the tie)
    assert rq([1234, -1234, 15], m, s) == [123, -123, 1]


def test_bias_in_accumulator_units() -> None:
    # round(0.5 / 0.01) = 50; round(-1.26 / 0.01) = -126; per channel scales 0.01 and 0.02: 0.3 / 0.02 = 15
    assert quantize_bias(np.array([0.5, -1.26]), np.array([0.01, 0.01])).tolist() == [50, -126]
    assert quantize_bias(np.array([0.5, 0.3]), np.array([0.01, 0.02])).tolist() == [50, 15]
    with pytest.raises(WorkloadError, match=r"^bias must fit int32"):
        quantize_bias(np.array([1e10]), np.array([1.0]))


def test_ranges_and_exact_gemm() -> None:
    assert qrange(8) == (-128, 127)
    assert qrange(8, signed=False) == (0, 255)
    assert qrange(2) == (-2, 1)
    a = np.array([[127, -128]], dtype=np.int64)
    b = np.array([[127], [-128]], dtype=np.int64)
    assert int_gemm(a, b).tolist() == [[127 * 127 + 128 * 128]]


def test_write_back_shift_bits_cover_the_reference_and_the_host_refuses_more() -> None:
    """The write-back reads 6 shift bits of a table entry (hdl.memory.dma.SHIFT_BITS): shifts 0..63, which
    covers the reference's MAX_SHIFT of 40; a table with shift 64 (it would lose its top bit) is refused
    in one line naming the field and the value."""
    from codesign.errors import ConfigError
    from codesign.hdl.host import Requant
    from codesign.hdl.memory.dma import SHIFT_BITS

    assert (1 << SHIFT_BITS) - 1 == 63 >= MAX_SHIFT == 40
    ones = np.ones((1, 2), dtype=np.int64)
    ok = Requant(0 * ones, ones, np.array([[0, 63]]), 0, -128, 127)
    assert ok.entry(0, 1) == 1 << 32 | 63 << 48
    with pytest.raises(ConfigError, match=r"^requantization shift must be from 0 to 63 .*, not 64$"):
        Requant(0 * ones, ones, np.array([[3, 64]]), 0, -128, 127)
    with pytest.raises(ConfigError, match=r"requantization mult must be from 0 to 65535 .*, not 65536$"):
        Requant(0 * ones, np.array([[1, 1 << 16]]), ones, 0, -128, 127)
