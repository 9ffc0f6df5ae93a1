"""Amaranth-simulator tier: the depthwise engine's stream mode (``DepthwiseSpec(stream=True)``) against
its buffer mode, numpy and the contract's timing.

Each pass runs one lane group (``lanes`` channels) over a plane. In buffer mode the test serves the
input buffer (``in_data`` the cycle after ``in_addr``, garbage when nothing is read); in stream mode
it feeds the padded plane's positions on ``s_valid`` with gaps between them, garbage on ``s_data`` in
gap cycles and at padding positions, ``s_valid`` high in ``start``'s cycle and during the drain (both
outside the scan: ignored). Expected: the same sequence of output writes in both modes, numpy's
depthwise convolution (or max pool), and each output written ``L = latency_cycles(requantize) - 1``
cycles after its position is scanned (buffer mode: cycle ``start + 1 + t`` for position ``t``; stream
mode: its ``s_valid`` cycle). ``L`` is the pipeline behind the scan: the word's register (the buffer's
read, or ``s_data``'s), the window, the products, the sums, [two requantizing stages,] then ``out_en``:
4 cycles, 6 with ``requantize``.
"""

from __future__ import annotations

import numpy as np
import pytest
from amaranth.hdl import Fragment, Module
from amaranth.sim import Simulator

from codesign.hdl.engines.depthwise import (
    MODE_MAC,
    MODE_MAX,
    DepthwiseEngine,
    DepthwiseSpec,
    latency_cycles,
    pass_cycles,
    stream_positions,
    weight_slots,
)
from codesign.workloads.intarith import requantize

from .test_depthwise_engine import _pack, pool_reference, reference

pytestmark = pytest.mark.hdl

GEOMETRY_PORTS = ("in_h", "in_w", "pad_t", "pad_l", "pad_b", "pad_r", "kernel_h", "kernel_w", "stride_h", "stride_w")


def out_delay(requant: bool) -> int:
    """L: cycles from a position's scan (stream: its s_valid cycle) to its output's out_en cycle."""
    return latency_cycles(requant) - 1


def run_passes(spec: DepthwiseSpec, passes: list[dict], seed: int = 0) -> list[dict]:
    """Run ``passes`` one after the other on one engine; each pass: ``x`` [H, W, lanes], ``w`` [R, S, lanes],
    ``stride``, ``pad`` (t, l, b, r), ``quant`` (per-lane ``bias``/``mult``/``shift`` and the scalars) or
    None, ``mode``, ``out_base``, ``out_stride``, ``in_base``, ``in_stride``, ``stream`` and, in stream
    mode, ``schedule``: one dict a cycle from the cycle after start (``s_valid``, optionally
    ``out_rebase`` and ``out_base``). Returns per pass: ``start`` (the start cycle), ``writes`` [(cycle,
    addr, data)], ``busy`` (cycles busy was high), ``done`` (cycles done was high), ``reads`` [(cycle,
    addr)], ``valid`` (the cycles of the schedule's s_valid entries)."""
    lanes = spec.lanes
    top = Module()
    top.submodules.eng = eng = DepthwiseEngine(spec)
    garbage = np.random.default_rng(seed + 1000)
    records: list[dict] = []

    def noise() -> int:
        return int(garbage.integers(0, 1 << (lanes * spec.act_bits)))

    async def bench(ctx):
        cycle = 0
        words: dict[int, int] = {}  # the input buffer the test serves

        async def clock(rec: dict) -> None:
            nonlocal cycle
            en, addr = ctx.get(eng.in_en), ctx.get(eng.in_addr)
            if ctx.get(eng.out_en):
                rec["writes"].append((cycle, ctx.get(eng.out_addr), ctx.get(eng.out_data)))
            if ctx.get(eng.busy):
                rec["busy"].append(cycle)
            if ctx.get(eng.done):
                rec["done"].append(cycle)
            if en:
                rec["reads"].append((cycle, addr))
            await ctx.tick()
            cycle += 1
            ctx.set(eng.in_data, words[addr] if en else noise())  # read data one cycle after the address

        for p in passes:
            rec: dict = {"writes": [], "busy": [], "done": [], "reads": [], "valid": []}
            records.append(rec)
            x, w = p["x"], p["w"]
            h, wd = x.shape[:2]
            r, s = w.shape[:2]
            words.clear()
            for yy in range(h):
                for xx in range(wd):
                    words[p["in_base"] + (yy * wd + xx) * p["in_stride"]] = _pack(x[yy, xx], spec.act_bits)
            kern = [[[int(w[i, j, lane]) for lane in range(lanes)] for j in range(s)] for i in range(r)]
            for slot, vals in enumerate(weight_slots(kern, spec.kmax)):
                ctx.set(eng.w_en, 1)
                ctx.set(eng.w_addr, slot)
                ctx.set(eng.w_data, _pack(vals, spec.weight_bits))
                await clock(rec)
            ctx.set(eng.w_en, 0)
            if p["quant"] is not None:
                q = p["quant"]
                for lane in range(lanes):
                    ctx.set(eng.q_en, 1)
                    ctx.set(eng.q_lane, lane)
                    for name in ("bias", "mult", "shift"):
                        ctx.set(getattr(eng, f"q_{name}"), int(q[name][lane]))
                    await clock(rec)
                ctx.set(eng.q_en, 0)
                for name in ("zero_point", "clamp_lo", "clamp_hi"):
                    ctx.set(getattr(eng, name), int(q[name]))
            geometry = (h, wd, *p["pad"], r, s, *p["stride"])
            for port, val in zip(GEOMETRY_PORTS, geometry, strict=True):
                ctx.set(getattr(eng, port), val)
            for port in ("in_base", "in_stride", "out_base", "out_stride"):
                ctx.set(getattr(eng, port), p[port])
            ctx.set(eng.mode, p["mode"])
            ctx.set(eng.stream, int(p["stream"]))
            ctx.set(eng.start, 1)
            ctx.set(eng.s_valid, int(p["stream"]))  # outside the scan: ignored
            ctx.set(eng.s_data, noise())
            rec["start"] = cycle
            await clock(rec)
            ctx.set(eng.start, 0)
            h_pad, w_pad = h + p["pad"][0] + p["pad"][2], wd + p["pad"][1] + p["pad"][3]
            t = 0
            for entry in p.get("schedule", []):
                valid = entry["s_valid"]
                ctx.set(eng.s_valid, valid)
                data = noise()
                if valid and t < h_pad * w_pad:
                    yy, xx = divmod(t, w_pad)
                    yy, xx = yy - p["pad"][0], xx - p["pad"][1]
                    if 0 <= yy < h and 0 <= xx < wd:
                        data = _pack(x[yy, xx], spec.act_bits)
                    rec["valid"].append(cycle)
                    t += 1
                ctx.set(eng.s_data, data)
                ctx.set(eng.out_rebase, entry.get("out_rebase", 0))
                if "out_base" in entry:
                    ctx.set(eng.out_base, entry["out_base"])
                await clock(rec)
            ctx.set(eng.out_rebase, 0)
            for _ in range(4 * h_pad * w_pad + 40):
                if rec["done"]:
                    break
                ctx.set(eng.s_valid, int(garbage.integers(0, 2)) if p["stream"] else 0)  # ignored
                ctx.set(eng.s_data, noise())
                await clock(rec)
            ctx.set(eng.s_valid, 0)
            assert rec["done"], "the pass never finished"
            await clock(rec)  # done's cycle ends; the next pass starts after it

    sim = Simulator(top)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    return records


def expected_writes(spec: DepthwiseSpec, p: dict) -> list[tuple[int, int, int]]:
    """(padded position t, addr, data) of each output in order: numpy's depthwise convolution (with
    requantize: intarith.requantize of sum + bias), or the max pool in mode MAX."""
    x, w, stride, pad = p["x"], p["w"], p["stride"], p["pad"]
    r, s = w.shape[:2]
    if p["mode"] == MODE_MAX:
        out = pool_reference(x, (r, s), stride, pad, "max")
    else:
        out = reference(x, w, stride, pad)
        if p["quant"] is not None:
            q = p["quant"]
            out = requantize(out + q["bias"], q["mult"], q["shift"], q["zero_point"], q["clamp_lo"], q["clamp_hi"])
    w_pad = x.shape[1] + pad[1] + pad[3]
    rows = []
    for oy in range(out.shape[0]):
        for ox in range(out.shape[1]):
            t = (oy * stride[0] + r - 1) * w_pad + ox * stride[1] + s - 1
            rows.append((t, (p["out_base"] + len(rows) * p["out_stride"]) % (1 << spec.addr_bits),
                         _pack(out[oy, ox], spec.out_bits)))
    return rows


def gap_schedule(rng: np.random.Generator, n: int, w_pad: int, long_gap: int) -> list[dict]:
    """n s_valid cycles with gaps before them: mostly none, some of 1 to 3 cycles, some long (beyond the
    pipeline's depth); always a long gap in the middle of a row (when rows have two positions) and
    one before the first position."""
    schedule: list[dict] = []
    forced = {0, (n // 2) - ((n // 2) % w_pad) + w_pad // 2} if w_pad > 1 else {0, n // 2}
    for t in range(n):
        u = rng.random()
        gap = 0 if u < 0.55 else int(rng.integers(1, 4)) if u < 0.9 else int(rng.integers(long_gap, 3 * long_gap))
        if t in forced:
            gap = max(gap, long_gap)
        schedule += [{"s_valid": 0}] * gap + [{"s_valid": 1}]
    return schedule


def random_geometry(rng: np.random.Generator, spec: DepthwiseSpec) -> tuple:
    while True:
        r = int(rng.integers(1, spec.kmax + 1))
        s = r if rng.random() < 0.5 else int(rng.integers(1, spec.kmax + 1))
        stride = (int(rng.integers(1, 3)), int(rng.integers(1, 3)))
        pad = (int(rng.integers(0, r)), int(rng.integers(0, s)), int(rng.integers(0, r)), int(rng.integers(0, s)))
        h, wd = int(rng.integers(1, 10)), int(rng.integers(1, 10))
        h_pad, w_pad = h + pad[0] + pad[2], wd + pad[1] + pad[3]
        if h_pad >= r and w_pad >= s and w_pad <= spec.width_max:
            return h, wd, (r, s), stride, pad


FIXED = [  # (H, W, kernel, stride, padding): edges the random draw may miss
    (4, 1, (3, 1), (1, 1), (1, 0, 1, 0)),  # one column: the line buffer reads the word written the cycle before
    (5, 6, (3, 3), (2, 2), (0, 0, 1, 1)),  # TF-style SAME s2 (asymmetric)
    (3, 3, (3, 3), (1, 1), (2, 2, 2, 2)),  # padding of K - 1 all round: corner windows of one pixel
]

SPECS = {  # name: (spec, mode, requantize's quant: None / "int8" / "uint8")
    "k3-int8": (DepthwiseSpec(lanes=4, kmax=3, width_max=16, stream=True), MODE_MAC, None),
    "k3-requant": (DepthwiseSpec(lanes=4, kmax=3, width_max=16, requantize=True, stream=True), MODE_MAC, "mixed"),
    "k5-int8": (DepthwiseSpec(lanes=4, kmax=5, width_max=16, stream=True), MODE_MAC, None),
    "k3-uint8-act": (DepthwiseSpec(lanes=4, kmax=3, width_max=16, act_signed=False, stream=True), MODE_MAC, None),
    "k3-maxpool-top": (DepthwiseSpec(lanes=4, kmax=3, width_max=16, pooling=True, stream=True), MODE_MAX, None),
}


@pytest.mark.parametrize("name", list(SPECS))
def test_stream_mode_writes_the_buffer_modes_outputs_at_the_same_delay(name) -> None:
    """Per geometry (the fixed edges and 5 random ones, seeded): a buffer pass then a stream pass with
    random gaps. Both write numpy's outputs in raster order at out_base + i * out_stride; the stream's
    (addr, data) sequence is the buffer's; every write in both modes is L = latency_cycles - 1 cycles (4,
    6 with requantize) after its position's scan/s_valid cycle; busy is high from start + 1 to the last
    position's cycle + latency_cycles (buffer: pass_cycles cycles), done the one cycle after; stream
    mode never reads the input buffer, buffer mode reads each pixel once."""
    spec, mode, quant_kind = SPECS[name]
    rng = np.random.default_rng(list(SPECS).index(name) + 31)
    lanes, requant = spec.lanes, spec.requantize
    geometries = [*FIXED, *(random_geometry(rng, spec) for _ in range(5))]
    geometries = [g for g in geometries if max(g[2]) <= spec.kmax]
    lat = out_delay(requant)
    passes = []
    for gi, (h, wd, kernel, stride, pad) in enumerate(geometries):
        lo, hi = (0, 256) if not spec.act_signed else ((-128, 0) if mode == MODE_MAX and gi % 2 else (-128, 128))
        x = rng.integers(lo, hi, (h, wd, lanes))
        w = rng.integers(-128, 128, (*kernel, lanes)) if mode == MODE_MAC else np.zeros((*kernel, lanes), np.int64)
        quant = None
        if quant_kind:
            signed_out = gi % 2 == 0  # int8 outputs, and uint8 (ReLU-clamped) on every other geometry
            quant = {"bias": rng.integers(-5000, 5000, lanes), "mult": rng.integers(1 << 14, 1 << 15, lanes),
                     "shift": rng.integers(12, 20, lanes), "zero_point": 3 if signed_out else 10,
                     "clamp_lo": -128 if signed_out else 0, "clamp_hi": 127 if signed_out else 255}
        common = {"x": x, "w": w, "stride": stride, "pad": pad, "quant": quant, "mode": mode,
                  "out_base": int(rng.integers(0, 50)), "out_stride": int(rng.integers(1, 4)),
                  "in_base": int(rng.integers(0, 20)), "in_stride": int(rng.integers(1, 3))}
        h_pad, w_pad = h + pad[0] + pad[2], wd + pad[1] + pad[3]
        n = stream_positions(h_pad, w_pad)
        assert n == h_pad * w_pad
        passes.append({**common, "stream": False})
        passes.append({**common, "stream": True, "schedule": gap_schedule(rng, n, w_pad, lat + 2)})
    records = run_passes(spec, passes, seed=len(name))
    checked = 0
    for i in range(0, len(passes), 2):
        p, buf, stm = passes[i], records[i], records[i + 1]
        x, pad = p["x"], p["pad"]
        h_pad, w_pad = x.shape[0] + pad[0] + pad[2], x.shape[1] + pad[1] + pad[3]
        expect = expected_writes(spec, p)
        assert len(expect) >= 1
        assert [(a, dt) for _, a, dt in buf["writes"]] == [(a, dt) for _, a, dt in expect]
        assert [(a, dt) for _, a, dt in stm["writes"]] == [(a, dt) for _, a, dt in buf["writes"]]
        # L measured in buffer mode (position t scanned in cycle start + 1 + t), the same in stream mode
        scan = [buf["start"] + 1 + t for t, _, _ in expect]
        assert [c - sc for (c, _, _), sc in zip(buf["writes"], scan, strict=True)] == [lat] * len(expect)
        assert len(stm["valid"]) == h_pad * w_pad
        sv = [stm["valid"][t] for t, _, _ in expect]
        assert [c - v for (c, _, _), v in zip(stm["writes"], sv, strict=True)] == [lat] * len(expect)
        # busy and done: buffer pass_cycles; stream up to latency_cycles after the last s_valid cycle
        last_buf = buf["start"] + h_pad * w_pad
        assert buf["busy"] == list(range(buf["start"] + 1, last_buf + latency_cycles(requant) + 1))
        assert len(buf["busy"]) == pass_cycles(h_pad, w_pad, requant)
        assert buf["done"] == [last_buf + latency_cycles(requant) + 1]
        last_stm = stm["valid"][-1]
        assert stm["busy"] == list(range(stm["start"] + 1, last_stm + latency_cycles(requant) + 1))
        assert stm["done"] == [last_stm + latency_cycles(requant) + 1]
        assert stm["reads"] == []
        assert sorted(a for _, a in buf["reads"]) == sorted(
            p["in_base"] + k * p["in_stride"] for k in range(x.shape[0] * x.shape[1]))
        checked += len(expect)
    assert checked > 50  # enough outputs to mean something


def _one_plane(spec: DepthwiseSpec, seed: int) -> dict:
    """A 7x6 plane, 3x3 kernel, stride 1, SAME padding: 9 x 8 padded positions, 7 x 6 outputs."""
    rng = np.random.default_rng(seed)
    return {"x": rng.integers(-128, 128, (7, 6, spec.lanes)), "w": rng.integers(-128, 128, (3, 3, spec.lanes)),
            "stride": (1, 1), "pad": (1, 1, 1, 1), "quant": None, "mode": MODE_MAC, "out_base": 100,
            "out_stride": 2, "in_base": 0, "in_stride": 1, "stream": True}


def test_out_rebase_between_two_halves_of_a_stream() -> None:
    """The 72 positions streamed in two halves (36, the middle of padded row 4, then 36) with 10 idle
    cycles between them: the first half's last output is written L = 4 cycles after its s_valid, so
    at idle cycle 7 no output is in flight; out_rebase there with out_base 500. The first half's
    outputs (window corners up to position 35: padded rows 2, 3 and row 4's columns 2..3: 6 + 6 + 2 =
    14) go to 100, 102, ..., 126; the other 28 to 500, 502, ..., 554; all numpy's values (the line
    buffers and window carry on across the pause)."""
    spec = DepthwiseSpec(lanes=4, kmax=3, width_max=16, stream=True)
    p = _one_plane(spec, 5)
    lat = out_delay(False)
    assert lat == 4
    idle = [{"s_valid": 0}] * 10
    idle[7] = {"s_valid": 0, "out_rebase": 1, "out_base": 500}
    p["schedule"] = [{"s_valid": 1}] * 36 + idle + [{"s_valid": 1}] * 36
    (rec,) = run_passes(spec, [p])
    expect = expected_writes(spec, p)
    first = [e for e in expect if e[0] < 36]
    assert len(first) == 14 and len(expect) == 42
    assert rec["writes"][len(first) - 1][0] == rec["valid"][35] + lat < rec["valid"][35] + 1 + 7  # none in flight
    addrs = [a for _, a, _ in rec["writes"]]
    assert addrs == [100 + 2 * i for i in range(14)] + [500 + 2 * j for j in range(28)]
    assert [dt for _, _, dt in rec["writes"]] == [dt for _, _, dt in expect]
    assert rec["done"] == [rec["valid"][-1] + latency_cycles(False) + 1]


def test_out_rebase_wins_over_the_increment() -> None:
    """out_rebase in the very cycle output 5 is written (its position's s_valid + L): output 5 is
    written at the old pointer (100 + 5 * 2 = 110), the pointer then is out_base (300), not 300 + 2:
    outputs 6.. go to 300, 302, ..."""
    spec = DepthwiseSpec(lanes=4, kmax=3, width_max=16, stream=True)
    p = _one_plane(spec, 6)
    lat = out_delay(False)
    expect = expected_writes(spec, p)
    t5 = expect[5][0]  # output 5's position: its s_valid is schedule entry t5 (no gaps)
    p["schedule"] = [{"s_valid": 1} for _ in range(72)]
    p["schedule"][t5 + lat] = {"s_valid": 1, "out_rebase": 1, "out_base": 300}
    (rec,) = run_passes(spec, [p])
    assert rec["writes"][5][0] == rec["valid"][t5] + lat  # the rebase's cycle is output 5's write
    addrs = [a for _, a, _ in rec["writes"]]
    assert addrs == [100 + 2 * i for i in range(6)] + [300 + 2 * j for j in range(len(expect) - 6)]
    assert [dt for _, _, dt in rec["writes"]] == [dt for _, _, dt in expect]


@pytest.mark.parametrize("requant", [False, True], ids=["acc", "requant"])
def test_stream_busy_and_done_timing(requant) -> None:
    """A stream pass with 3 idle cycles before the first position, a 20-cycle gap before the last one
    and s_valid toggling after it: busy is high from start + 1 through every gap to last + 5 (last + 7
    with requantize: latency_cycles), done exactly at last + 6 (last + 8) for one cycle, the last
    output written at last + 4 (last + 6) when the last position is an output's (it is: 3x3 s1 SAME)."""
    spec = DepthwiseSpec(lanes=4, kmax=3, width_max=16, requantize=requant, stream=True)
    p = _one_plane(spec, 7)
    if requant:
        p["quant"] = {"bias": [0] * 4, "mult": [1 << 14] * 4, "shift": [16] * 4, "zero_point": 0,
                      "clamp_lo": -128, "clamp_hi": 127}
    p["schedule"] = [{"s_valid": 0}] * 3 + [{"s_valid": 1}] * 71 + [{"s_valid": 0}] * 20 + [{"s_valid": 1}]
    (rec,) = run_passes(spec, [p])
    last = rec["valid"][-1]
    assert last == rec["start"] + 1 + 3 + 71 + 20
    expected_latency = 7 if requant else 5
    assert latency_cycles(requant) == expected_latency
    assert rec["busy"] == list(range(rec["start"] + 1, last + expected_latency + 1))
    assert rec["done"] == [last + expected_latency + 1]
    assert rec["writes"][-1][0] == last + expected_latency - 1
    assert [(a, dt) for _, a, dt in rec["writes"]] == [(a, dt) for _, a, dt in expected_writes(spec, p)]


def test_stream_ports_only_with_spec_stream() -> None:
    """stream=False keeps the engine's ports (existing designs' Verilog unchanged); stream=True adds
    exactly stream, s_valid, s_data (lanes * act_bits = 32 bits here) and out_rebase."""
    plain_eng, streaming = DepthwiseEngine(DepthwiseSpec(lanes=4)), DepthwiseEngine(DepthwiseSpec(lanes=4, stream=True))
    for eng in (plain_eng, streaming):
        Fragment.get(eng, None)  # elaborated: both build
    plain = set(plain_eng.signature.members.keys())
    assert set(streaming.signature.members.keys()) - plain == {"stream", "s_valid", "s_data", "out_rebase"}
    assert plain <= set(streaming.signature.members.keys())
    assert len(streaming.s_data) == 32
