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
    DepthwiseEngine,
    DepthwiseSpec,
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
                  pad: tuple[int, int, int, int]) -> tuple[np.ndarray, list[int]]:
    """x [H, W, C] int, w [R, S, C * mult]: the engine's outputs [OH, OW, C * mult] and busy cycles a pass."""
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
    top.submodules.outb = outb = memory.Memory(shape=unsigned(lanes * spec.acc_bits), depth=oh * ow * out_groups,
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
                for port, val in (("in_h", h), ("in_w", wd), ("pad_t", pad[0]), ("pad_l", pad[1]),
                                  ("pad_b", pad[2]), ("pad_r", pad[3]), ("kernel_h", r), ("kernel_w", s),
                                  ("stride_h", stride[0]), ("stride_w", stride[1]), ("in_base", g),
                                  ("in_stride", groups), ("out_base", g * mult + mi), ("out_stride", out_groups)):
                    ctx.set(getattr(eng, port), val)
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
                    for lane, v in enumerate(_unpack(word, lanes, spec.acc_bits)):
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
    from codesign.sim.vector_engine import DW_LATENCY_CYCLES, dw_pass_cycles

    assert DW_LATENCY_CYCLES == LATENCY_CYCLES
    assert all(dw_pass_cycles(h, w) == pass_cycles(h, w) for h in (1, 3, 114) for w in (1, 18, 230))
