"""Amaranth-simulator tier: the depthwise engine against numpy and its published timing.

Each case lays a channels-last feature map (``C`` channels, ``ceil(C / lanes)`` buffer words per
pixel) into the input buffer, runs one pass per lane group (and per channel multiplier) and reads
the outputs back from the output buffer. Expected: numpy's depthwise convolution in int64,
``out[oy, ox, c] = sum_{r, s} x[oy*sh + r - pt, ox*sw + s - pl, c] * w[r, s, c]`` with zero padding,
bit for bit; ``busy`` high for ``H_pad * W_pad + LATENCY_CYCLES`` cycles a pass (``pass_cycles``).
"""

from __future__ import annotations

import numpy as np
import pytest
from amaranth.hdl import Module, unsigned
from amaranth.lib import memory
from amaranth.sim import Simulator

from codesign.errors import ConfigError
from codesign.hdl.engines.depthwise import (
    LATENCY_CYCLES,
    MODE_AVG,
    MODE_MAX,
    DepthwiseEngine,
    DepthwiseSpec,
    avg_divide,
    pass_cycles,
    weight_slots,
)

pytestmark = pytest.mark.hdl


def reference(x: np.ndarray, w: np.ndarray, stride: tuple[int, int], pad: tuple[int, int, int, int]) -> np.ndarray:
    """numpy depthwise convolution: x [H, W, C], w [R, S, C] -> [OH, OW, C] (int64)."""
    pt, pl, pb, pr = pad
    xp = np.pad(x.astype(np.int64), ((pt, pb), (pl, pr), (0, 0)))
    r, s = w.shape[:2]
    oh = (xp.shape[0] - r) // stride[0] + 1
    ow = (xp.shape[1] - s) // stride[1] + 1
    out = np.zeros((oh, ow, x.shape[2]), dtype=np.int64)
    for i in range(r):
        for j in range(s):
            out += xp[i:i + (oh - 1) * stride[0] + 1:stride[0], j:j + (ow - 1) * stride[1] + 1:stride[1]] * w[i, j]
    return out


def _pack(values, bits: int) -> int:
    word = 0
    for i, v in enumerate(values):
        word |= (int(v) & ((1 << bits) - 1)) << (i * bits)
    return word


def _unpack(word: int, lanes: int, bits: int) -> list[int]:
    out = []
    for i in range(lanes):
        v = (word >> (i * bits)) & ((1 << bits) - 1)
        out.append(v - (1 << bits) if v >> (bits - 1) else v)
    return out


def run_depthwise(spec: DepthwiseSpec, x: np.ndarray, w: np.ndarray, stride: tuple[int, int],
                  pad: tuple[int, int, int, int], quant: dict | None = None,
                  mode: int = 0) -> tuple[np.ndarray, list[int]]:
    """x [H, W, C] int, w [R, S, C * mult]: the engine's outputs [OH, OW, C * mult] and busy cycles a pass.
    ``quant`` (with ``spec.requantize``): per output channel ``bias``, ``mult``, ``shift`` and the
    scalars ``zero_point``, ``clamp_lo``, ``clamp_hi``."""
    h, wd, c = x.shape
    r, s, cm = w.shape
    mult = cm // c
    lanes = spec.lanes
    groups = -(-c // lanes)
    oh = (h + pad[0] + pad[2] - r) // stride[0] + 1
    ow = (wd + pad[1] + pad[3] - s) // stride[1] + 1
    # input buffer: pixel (y, x), lane group g at word (y * W + x) * groups + g
    words = []
    for yy in range(h):
        for xx in range(wd):
            for g in range(groups):
                lane_vals = [x[yy, xx, g * lanes + i] if g * lanes + i < c else 0 for i in range(lanes)]
                words.append(_pack(lane_vals, spec.act_bits))
    out_groups = groups * mult
    top = Module()
    top.submodules.eng = eng = DepthwiseEngine(spec)
    top.submodules.inb = inb = memory.Memory(shape=unsigned(lanes * spec.act_bits), depth=len(words), init=words)
    top.submodules.outb = outb = memory.Memory(shape=unsigned(lanes * spec.out_bits), depth=oh * ow * out_groups,
                                               init=[])
    rd = inb.read_port()
    wr = outb.write_port()
    top.d.comb += [rd.addr.eq(eng.in_addr), rd.en.eq(eng.in_en), eng.in_data.eq(rd.data),
                   wr.addr.eq(eng.out_addr), wr.data.eq(eng.out_data), wr.en.eq(eng.out_en)]
    busy_counts: list[int] = []

    async def bench(ctx):
        for g in range(groups):
            for mi in range(mult):
                # output channel c * mult + mi of input channel c (channel multiplier), lanes of group g
                kern = [[[int(w[i, j, (g * lanes + lane) * mult + mi]) if g * lanes + lane < c else 0
                          for lane in range(lanes)] for j in range(s)] for i in range(r)]
                for slot, vals in enumerate(weight_slots(kern, spec.kmax)):
                    ctx.set(eng.w_en, 1)
                    ctx.set(eng.w_addr, slot)
                    ctx.set(eng.w_data, _pack(vals, spec.weight_bits))
                    await ctx.tick()
                ctx.set(eng.w_en, 0)
                if quant is not None:
                    for lane in range(lanes):
                        co = min(g * lanes + lane, c - 1) * mult + mi
                        ctx.set(eng.q_en, 1)
                        ctx.set(eng.q_lane, lane)
                        for name in ("bias", "mult", "shift"):
                            ctx.set(getattr(eng, f"q_{name}"), int(quant[name][co]))
                        await ctx.tick()
                    ctx.set(eng.q_en, 0)
                    for name in ("zero_point", "clamp_lo", "clamp_hi"):
                        ctx.set(getattr(eng, name), int(quant[name]))
                for port, val in (("in_h", h), ("in_w", wd), ("pad_t", pad[0]), ("pad_l", pad[1]),
                                  ("pad_b", pad[2]), ("pad_r", pad[3]), ("kernel_h", r), ("kernel_w", s),
                                  ("stride_h", stride[0]), ("stride_w", stride[1]), ("in_base", g),
                                  ("in_stride", groups), ("out_base", g * mult + mi), ("out_stride", out_groups)):
                    ctx.set(getattr(eng, port), val)
                ctx.set(eng.mode, mode)
                ctx.set(eng.start, 1)
                await ctx.tick()
                ctx.set(eng.start, 0)
                busy = 0
                while not ctx.get(eng.done):
                    busy += ctx.get(eng.busy)
                    await ctx.tick()
                busy_counts.append(busy)
        for oy in range(oh):
            for ox in range(ow):
                for og in range(out_groups):
                    word = ctx.get(outb.data[(oy * ow + ox) * out_groups + og])
                    g, mi = divmod(og, mult)
                    for lane, v in enumerate(_unpack(word, lanes, spec.out_bits)):
                        ch = g * lanes + lane
                        if ch < c:
                            result[oy, ox, ch * mult + mi] = v

    result = np.zeros((oh, ow, cm), dtype=np.int64)
    sim = Simulator(top)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    return result, busy_counts


CASES = [  # (H, W, C, mult, kernel, stride, padding t,l,b,r, kmax, lanes)
    (7, 6, 4, 1, (3, 3), (1, 1), (1, 1, 1, 1), 3, 4),  # MobileNet's 3x3 s1 "same"
    (9, 8, 6, 1, (3, 3), (2, 2), (0, 0, 1, 1), 3, 4),  # 3x3 s2 with TF-style asymmetric padding, 2 lane groups
    (5, 7, 3, 2, (3, 3), (1, 2), (2, 0, 1, 3), 3, 4),  # channel multiplier 2, mixed strides and paddings
    (8, 8, 4, 1, (5, 5), (2, 2), (2, 2, 2, 2), 5, 4),  # EfficientNet's 5x5 s2
    (6, 5, 5, 1, (3, 3), (1, 1), (1, 1, 1, 1), 5, 2),  # a 3x3 kernel on a 5x5 engine (corner placement)
    (4, 1, 2, 1, (1, 1), (1, 1), (0, 0, 0, 0), 3, 2),  # a one-column plane (the line buffer reads its own write)
    (6, 6, 4, 1, (1, 3), (3, 1), (0, 1, 0, 1), 3, 4),  # rectangular kernel, stride 3
]


@pytest.mark.parametrize("case", CASES, ids=[f"{c[4][0]}x{c[4][1]}s{c[5][0]}{c[5][1]}k{c[8]}" for c in CASES])
def test_depthwise_engine_matches_numpy_and_its_timing(case) -> None:
    h, wd, c, mult, kernel, stride, pad, kmax, lanes = case
    spec = DepthwiseSpec(lanes=lanes, kmax=kmax, width_max=16)
    spec.check_layer(in_h=h, in_w=wd, kernel=kernel, stride=stride, padding=pad)
    rng = np.random.default_rng(sum(map(hash, (h, wd, c, kmax))) & 0xFFFF)
    x = rng.integers(-128, 128, (h, wd, c))
    w = rng.integers(-128, 128, (*kernel, c * mult))
    got, busy = run_depthwise(spec, x, w, stride, pad)
    w_ref = np.repeat(np.arange(c), mult)  # output channel co reads input channel co // mult
    expect = reference(x[:, :, w_ref], w, stride, pad)
    assert np.array_equal(got, expect)
    h_pad, w_pad = h + pad[0] + pad[2], wd + pad[1] + pad[3]
    assert busy == [h_pad * w_pad + LATENCY_CYCLES] * (-(-c // lanes) * mult) == [pass_cycles(h_pad, w_pad)] * len(busy)


@pytest.mark.parametrize("signed_out", [True, False], ids=["int8", "uint8-relu"])
def test_requantized_write_back_is_intarith(signed_out) -> None:
    """With requantize the outputs are workloads.intarith.requantize(sum + bias) per channel, bit for
    bit (rounding half up, zero point, clamp), two more pipeline stages: H_pad * W_pad + 7 a pass."""
    from codesign.workloads.intarith import requantize

    spec = DepthwiseSpec(lanes=4, kmax=3, width_max=16, requantize=True)
    rng = np.random.default_rng(7)
    h, wd, c = 6, 7, 6
    x = rng.integers(-128, 128, (h, wd, c))
    w = rng.integers(-128, 128, (3, 3, c))
    quant = {"bias": rng.integers(-5000, 5000, c), "mult": rng.integers(1 << 14, 1 << 15, c),
             "shift": rng.integers(14, 24, c), "zero_point": 3 if signed_out else 10,
             "clamp_lo": -128 if signed_out else 0, "clamp_hi": 127 if signed_out else 255}
    quant["shift"][0] = 0  # no rounding term: a plain multiply (then clamped)
    got, busy = run_depthwise(spec, x, w, (2, 1), (1, 1, 1, 1), quant)
    acc = reference(x, w, (2, 1), (1, 1, 1, 1)) + quant["bias"]
    expect = requantize(acc, quant["mult"], quant["shift"], quant["zero_point"], quant["clamp_lo"],
                        quant["clamp_hi"])
    if not signed_out:  # the 8-bit lanes hold 0..255: read back as signed bytes by the test's unpacker
        expect = np.where(expect > 127, expect - 256, expect)
    assert np.array_equal(got, expect)
    assert len(np.unique(expect)) > 12  # the scales spread the outputs (not all clamped)
    assert busy == [pass_cycles(8, 9, requantize=True)] * 2 == [8 * 9 + 7] * 2


def pool_reference(x: np.ndarray, kernel: tuple[int, int], stride: tuple[int, int],
                   pad: tuple[int, int, int, int], op: str) -> np.ndarray:
    """TFLite's int8 MaxPool / AveragePool: over the kernel's taps inside the image only; the average
    divides the sum by their count, rounding half away from zero (C's division on the offset sum)."""
    h, w, c = x.shape
    r, s = kernel
    oh = (h + pad[0] + pad[2] - r) // stride[0] + 1
    ow = (w + pad[1] + pad[3] - s) // stride[1] + 1
    out = np.zeros((oh, ow, c), dtype=np.int64)
    for oy in range(oh):
        for ox in range(ow):
            y0, x0 = oy * stride[0] - pad[0], ox * stride[1] - pad[1]
            win = x[max(y0, 0):min(y0 + r, h), max(x0, 0):min(x0 + s, w)].reshape(-1, c).astype(np.int64)
            if op == "max":
                out[oy, ox] = win.max(axis=0)
            else:
                total, count = win.sum(axis=0), len(win)
                out[oy, ox] = [int((t + count // 2) / count) if t > 0 else -int((-t + count // 2) / count)
                               for t in total]
    return out


def test_average_pooling_division_is_exact() -> None:
    """The hardware's division (multiply by ceil(2**24 / c), shift) equals TFLite's rounded division
    for every count a 5x5 window has and every sum 8-bit activations can make."""
    for count in range(1, 26):
        for total in range(-128 * count, 127 * count + 1):
            expect = (total + count // 2) // count if total > 0 else -((-total + count // 2) // count)
            assert avg_divide(total, count) == expect, (total, count)


POOL_CASES = [  # (op, H, W, C, kernel, stride, padding, kmax)
    ("max", 9, 9, 6, (3, 3), (2, 2), (0, 0, 1, 1), 3),  # MobileNet-style 3x3 s2 SAME max pool
    ("avg", 7, 6, 4, (3, 3), (1, 1), (1, 1, 1, 1), 3),  # border windows average fewer taps
    ("avg", 8, 8, 4, (2, 2), (2, 2), (0, 0, 0, 0), 3),  # a 2x2 kernel on a 3x3 engine
    ("max", 6, 7, 3, (2, 3), (1, 2), (1, 0, 0, 2), 3),  # rectangular, asymmetric padding
    ("avg", 10, 10, 4, (5, 5), (5, 5), (0, 0, 0, 0), 5),  # DS-CNN's average pool, scaled down
]


@pytest.mark.parametrize("case", POOL_CASES, ids=[f"{c[0]}{c[4][0]}x{c[4][1]}s{c[5][0]}" for c in POOL_CASES])
def test_pooling_on_the_engine(case) -> None:
    op, h, wd, c, kernel, stride, pad, kmax = case
    spec = DepthwiseSpec(lanes=4, kmax=kmax, width_max=16, requantize=True, pooling=True)
    rng = np.random.default_rng(h * wd + c)
    x = rng.integers(-128, 128, (h, wd, c))
    x[0, 0, 0] = -128  # a corner of extremes: padding (zeros) must not win the max
    got, busy = run_depthwise(spec, x, np.zeros((*kernel, c), dtype=np.int64), stride, pad,
                              quant=None, mode=MODE_MAX if op == "max" else MODE_AVG)
    assert np.array_equal(got, pool_reference(x, kernel, stride, pad, op))
    h_pad, w_pad = h + pad[0] + pad[2], wd + pad[1] + pad[3]
    assert busy == [pass_cycles(h_pad, w_pad, requantize=True)] * (-(-c // 4))


def test_unsigned_activations_and_extreme_values() -> None:
    """Unsigned 8-bit activations at 255 against weights at -128: the sums need their full width."""
    spec = DepthwiseSpec(lanes=2, kmax=3, act_signed=False, width_max=8)
    x = np.full((4, 4, 2), 255)
    w = np.full((3, 3, 2), -128)
    got, _ = run_depthwise(spec, x, w, (1, 1), (1, 1, 1, 1))
    assert np.array_equal(got, reference(x, w, (1, 1), (1, 1, 1, 1)))
    assert got[1, 1, 0] == 9 * 255 * -128  # an inside pixel sees the whole kernel


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"kernel": (5, 5)}, "kernel must be at most 3x3 for this depthwise engine, not 5x5"),
    ({"dilation": (2, 2)}, "dilation must be 1 for the depthwise engine, not (2, 2)"),
    ({"in_w": 15, "padding": (1, 1, 1, 1)}, "padded input width must be at most 16 (the line buffer), not 17"),
])
def test_layers_the_engine_cannot_run_are_refused(kwargs, message) -> None:
    args = {"in_h": 8, "in_w": 8, "kernel": (3, 3), "stride": (1, 1), "padding": (0, 0, 0, 0), **kwargs}
    with pytest.raises(ConfigError) as e:
        DepthwiseSpec(lanes=4, kmax=3, width_max=16).check_layer(**args)
    assert str(e.value) == message


def test_the_simulators_depthwise_timing_is_the_engines() -> None:
    from codesign.hdl.engines.depthwise import latency_cycles
    from codesign.sim.vector_engine import DW_LATENCY_CYCLES, dw_pass_cycles

    # the model's engine writes requantized outputs
    assert DW_LATENCY_CYCLES == latency_cycles(requantize=True) == LATENCY_CYCLES + 2
    assert all(dw_pass_cycles(h, w) == pass_cycles(h, w, requantize=True) for h in (1, 3, 114) for w in (1, 18, 230))


MAX_ACC_CASES = [  # (H, W, C, kernel, stride, padding, kmax, act_signed)
    (9, 9, 6, (3, 3), (2, 2), (1, 1, 1, 1), 3, True),  # ResNet's 3x3 s2 p1 max pool, scaled down, 2 lane groups
    (7, 8, 4, (2, 3), (1, 2), (0, 2, 1, 0), 5, False),  # rectangular on a 5x5 window, unsigned activations
]


@pytest.mark.parametrize("case", MAX_ACC_CASES, ids=["int8-3x3s2", "uint8-2x3"])
def test_max_pooling_into_accumulators(case) -> None:
    """The whole-layer top's engine (no requantize stages): MAX writes the window's maximum into the
    lane's accumulator bits, sign-extended (a negative maximum reads back negative at 32 bits) and in
    a convolution's cycles; the padding's zeros never win (an all-negative map's border maxima are
    negative)."""
    h, wd, c, kernel, stride, pad, kmax, act_signed = case
    spec = DepthwiseSpec(lanes=4, kmax=kmax, act_signed=act_signed, width_max=16, pooling=True)
    assert spec.out_bits == 32
    rng = np.random.default_rng(h * wd)
    x = rng.integers(-128, 0, (h, wd, c)) if act_signed else rng.integers(0, 256, (h, wd, c))
    got, busy = run_depthwise(spec, x, np.zeros((*kernel, c), dtype=np.int64), stride, pad, mode=MODE_MAX)
    expect = pool_reference(x, kernel, stride, pad, "max")
    assert np.array_equal(got, expect)
    if act_signed:
        assert (got < 0).all()  # every maximum negative: the zeros of the padding lost
    else:
        assert got.max() > 127  # a maximum above int8's range: zero-extended, not sign-extended
    h_pad, w_pad = h + pad[0] + pad[2], wd + pad[1] + pad[3]
    assert busy == [h_pad * w_pad + LATENCY_CYCLES] * (-(-c // 4)) == [pass_cycles(h_pad, w_pad)] * len(busy)
