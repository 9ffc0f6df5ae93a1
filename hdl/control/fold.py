"""The fold controller: runs one on-chip GEMM from the buffers through the systolic array.

:func:`fold_controller` builds it into a module around the buffers' ports. It samples ``m``, ``n``,
``k``, the buffer offsets of the operands (``a_off``, ``w_off``, ``o_off``: a slot of a
double-buffered buffer, a group of a packed tile) and ``accumulate`` (add to the sums already in
the output buffer: the later K tiles of a layer) when ``start`` is high and it is idle; ``done``
rises after the last output word is written and stays high until the next ``start``.

Its timing is :func:`codesign.sim.timing.native_gemm_cycles`, from the edge sampling ``start`` to
the edge raising ``done`` (published by :class:`~codesign.hdl.plan.HardwarePlan`).

Buffer layouts are those of :mod:`codesign.hdl.plan`, from the offsets.
"""

from __future__ import annotations

from dataclasses import dataclass

from amaranth.hdl import Cat, Module, Mux, Signal, Value
from amaranth.lib import data

from codesign.hdl.engines.array import SystolicArray, act_lane_layout, delayed
from codesign.hdl.plan import HardwarePlan
from codesign.sim.config import Dataflow


@dataclass
class _Ctl:
    go: Value  # start sampled this cycle
    m: Value
    n: Value
    k: Value
    a_off: Value
    w_off: Value
    o_off: Value
    accumulate: Value
    mm: Signal
    nn: Signal
    kk: Signal
    a_base: Signal  # a_off, held for the run
    w_base: Signal
    acc_r: Signal  # accumulate, held for the run
    period: Signal
    j: Signal
    running: Signal
    finish: Signal


@dataclass
class FoldControl:
    """The controller's outputs."""

    busy: Signal
    done: Signal
    finish: Signal  # the last output word is written this cycle


def fold_controller(m: Module, p: HardwarePlan, array: SystolicArray, act_rd, w_rd, out_rmw, out_wr, *,
                    start: Value, dims: tuple[Value, Value, Value], offsets: tuple[Value, Value, Value],
                    accumulate: Value) -> FoldControl:
    """Build the controller into ``m``; ``act_rd``/``w_rd`` are the input buffers' read ports,
    ``out_rmw``/``out_wr`` the output buffer's read (transparent) and write ports."""
    dim = p.dim_bits
    aw = act_rd.addr.shape().width + 1
    ww = w_rd.addr.shape().width + 1
    busy, done, finish = Signal(name="gemm_busy"), Signal(name="gemm_done"), Signal(name="gemm_finish")
    go = start & ~busy
    c = _Ctl(go=go, m=dims[0], n=dims[1], k=dims[2], a_off=offsets[0], w_off=offsets[1], o_off=offsets[2],
             accumulate=accumulate, mm=Signal(dim), nn=Signal(dim), kk=Signal(dim), a_base=Signal(aw),
             w_base=Signal(ww), acc_r=Signal(), period=Signal(dim + 1), j=Signal(dim + 1), running=Signal(),
             finish=finish)
    with m.If(go):
        m.d.sync += [
            c.mm.eq(c.m), c.nn.eq(c.n), c.kk.eq(c.k), c.j.eq(0), c.running.eq(1), busy.eq(1), done.eq(0),
            c.a_base.eq(c.a_off), c.w_base.eq(c.w_off), c.acc_r.eq(accumulate),
        ]
    with m.If(finish):
        m.d.sync += [busy.eq(0), done.eq(1)]
    if p.dataflow is Dataflow.WS:
        _ws(m, p, array, act_rd, w_rd, out_rmw, out_wr, c)
    else:
        _os(m, p, array, act_rd, w_rd, out_rmw, out_wr, c)
    return FoldControl(busy=busy, done=done, finish=finish)


def _ws(m: Module, p: HardwarePlan, array: SystolicArray, act_rd, w_rd, out_rmw, out_wr, c: _Ctl) -> None:
    mm, nn, kk, period, j, running, finish = c.mm, c.nn, c.kk, c.period, c.j, c.running, c.finish
    R, C = p.rows, p.cols
    dim = p.dim_bits
    kbase, nbase = Signal(dim + 1), Signal(dim + 1)
    abase = Signal(act_rd.addr.shape().width + 1)
    wbase = Signal(w_rd.addr.shape().width + 1)
    obase = Signal(out_wr.addr.shape().width + 1)
    with m.If(c.go):
        m.d.sync += [
            period.eq(Mux(c.m > R, c.m, R)),
            kbase.eq(0), nbase.eq(0), abase.eq(c.a_off), wbase.eq(c.w_off), obase.eq(c.o_off),
        ]
    last_k = kbase + R >= kk
    last_n = nbase + C >= nn
    # weight issue: row j of the fold's weight block
    w_issue = running & (j < R)
    m.d.comb += w_rd.addr.eq(wbase + j)
    w_load = Signal()
    w_row = Signal(range(R))
    w_rowvalid = Signal()
    w_colmask = Signal(C)
    m.d.sync += [
        w_load.eq(w_issue), w_row.eq(j), w_rowvalid.eq(kbase + j < kk),
        w_colmask.eq(Cat(*[nbase + i < nn for i in range(C)])),
    ]
    m.d.comb += [array.w_load.eq(w_load), array.w_row.eq(w_row)]
    wb, lb = p.config.weight_bits, p.weight_lane_bits
    for col in range(C):
        m.d.comb += [
            array.w_vec[col].data.eq(w_rd.data[col * lb:col * lb + wb]),
            array.w_vec[col].valid.eq(w_rowvalid & w_colmask[col]),
        ]
        if p.skip_nm:  # the slot's index rides above its value
            m.d.comb += array.w_vec[col].index.eq(w_rd.data[col * lb + wb:(col + 1) * lb])
    # activation issue: row j (= m) of A for this K chunk
    a_issue = running & (j < mm)
    m.d.comb += act_rd.addr.eq(abase + j)
    meta = data.StructLayout({
        "valid": 1, "first": 1, "last": 1, "addr": out_wr.addr.shape().width, "kmask": R,
    })
    meta0 = Signal(meta)
    m.d.comb += [
        meta0.valid.eq(a_issue),
        meta0.first.eq((kbase == 0) & ~c.acc_r),
        meta0.last.eq(last_k & last_n & (j + 1 == mm)),
        meta0.addr.eq(obase + j),
        meta0.kmask.eq(Cat(*[kbase + i < kk for i in range(R)])),
    ]
    meta1 = Signal(meta)  # aligned with the buffer's read data
    meta2 = Signal(meta)  # aligned with a_vec
    m.d.sync += [meta1.eq(meta0), meta2.eq(meta1)]
    ab = p.config.act_bits
    a_vec = Signal(data.ArrayLayout(act_lane_layout(p), R))
    # a row's activation lane, or with n:m skipping the group of m its n rows select from
    gn, gm = p.skip_nm or (1, 1)
    for r in range(R):
        lo = r // gn * gm * ab
        m.d.sync += [
            a_vec[r].data.eq(act_rd.data[lo:lo + gm * ab]),
            a_vec[r].valid.eq(meta1.valid & meta1.kmask[r]),
        ]
    m.d.comb += array.a_vec.eq(a_vec)
    # output: read-modify-write, aligned with the array latency
    lat = array.latency_cycles  # a_vec -> out_vec
    meta_rd = delayed(m, meta2, lat - 1, "meta_rd", meta)
    meta_wr = Signal(meta)
    m.d.sync += meta_wr.eq(meta_rd)
    m.d.comb += out_rmw.addr.eq(meta_rd.addr)
    acc_bits = p.acc_bits
    lanes = []
    for col in range(C):
        old = out_rmw.data[col * acc_bits:(col + 1) * acc_bits]
        new = array.out_vec[col]
        lanes.append(Mux(meta_wr.first, new, old + new)[:acc_bits])
    m.d.comb += [
        out_wr.addr.eq(meta_wr.addr),
        out_wr.data.eq(Cat(*lanes)),
        out_wr.en.eq(meta_wr.valid),
        finish.eq(meta_wr.valid & meta_wr.last),
    ]
    # fold walk: N chunks outer, K chunks inner
    with m.If(running):
        with m.If(j + 1 == period):
            m.d.sync += [j.eq(0), wbase.eq(wbase + R)]
            with m.If(last_k):
                m.d.sync += [kbase.eq(0), abase.eq(c.a_base), nbase.eq(nbase + C), obase.eq(obase + mm)]
                with m.If(last_n):
                    m.d.sync += running.eq(0)
            with m.Else():
                m.d.sync += [kbase.eq(kbase + R), abase.eq(abase + mm)]
        with m.Else():
            m.d.sync += j.eq(j + 1)

def _os(m: Module, p: HardwarePlan, array: SystolicArray, act_rd, w_rd, out_rmw, out_wr, c: _Ctl) -> None:
    mm, nn, kk, period, j, running, finish = c.mm, c.nn, c.kk, c.period, c.j, c.running, c.finish
    R, C = p.rows, p.cols
    dim = p.dim_bits
    mbase, nbase = Signal(dim + 1), Signal(dim + 1)
    abase = Signal(act_rd.addr.shape().width + 1)
    wbase = Signal(w_rd.addr.shape().width + 1)
    obase = Signal(out_wr.addr.shape().width + 1)
    prev_obase = Signal(out_wr.addr.shape().width + 1)
    has_prev = Signal()
    flush = Signal()  # the pseudo fold after the last one
    with m.If(c.go):
        big = Mux(c.k > R, c.k, R)
        m.d.sync += [
            period.eq(Mux(big > C, big, C)),
            mbase.eq(0), nbase.eq(0), abase.eq(c.a_off), wbase.eq(c.w_off), obase.eq(c.o_off),
            prev_obase.eq(c.o_off), has_prev.eq(0), flush.eq(0),
        ]
    last_m = mbase + R >= mm
    last_n = nbase + C >= nn
    issue = running & ~flush & (j < kk)
    m.d.comb += [act_rd.addr.eq(abase + j), w_rd.addr.eq(wbase + j)]
    valid1, first1 = Signal(), Signal()
    rowmask1, colmask1 = Signal(R), Signal(C)
    m.d.sync += [
        valid1.eq(issue),
        first1.eq(running & (j == 0)),
        rowmask1.eq(Cat(*[mbase + i < mm for i in range(R)])),
        colmask1.eq(Cat(*[nbase + i < nn for i in range(C)])),
    ]
    ab, wb = p.config.act_bits, p.config.weight_bits
    for r in range(R):
        m.d.comb += [
            array.a_vec[r].data.eq(act_rd.data[r * ab:(r + 1) * ab]),
            array.a_vec[r].valid.eq(valid1 & rowmask1[r]),
            array.a_vec[r].first.eq(first1),
        ]
    for col in range(C):
        m.d.comb += [
            array.b_vec[col].data.eq(w_rd.data[col * wb:(col + 1) * wb]),
            array.b_vec[col].valid.eq(valid1 & colmask1[col]),
        ]
    # drain tokens: row d of the previous fold, issued at cycle d of a fold, C + 1 cycles later
    tok = data.StructLayout({"valid": 1, "last": 1, "row": range(R), "addr": out_wr.addr.shape().width})
    tok0 = Signal(tok)
    m.d.comb += [
        tok0.valid.eq(running & has_prev & (j < R)),
        tok0.last.eq(flush & (j + 1 == R)),
        tok0.row.eq(j),
        tok0.addr.eq(prev_obase + j),
    ]
    tok_rd = delayed(m, tok0, C, "drain_tok", tok)  # reads the old sums (partial K tiles)
    tokd = Signal(tok)
    m.d.sync += tokd.eq(tok_rd)
    m.d.comb += out_rmw.addr.eq(tok_rd.addr)
    acc_bits = p.acc_bits
    lanes = []
    for col in range(C):
        old = out_rmw.data[col * acc_bits:(col + 1) * acc_bits]
        new = array.out_vec[col]
        lanes.append(Mux(c.acc_r, old + new, new)[:acc_bits])
    m.d.comb += [
        array.drain_row.eq(tokd.row),
        out_wr.addr.eq(tokd.addr),
        out_wr.data.eq(Cat(*lanes)),
        out_wr.en.eq(tokd.valid),
        finish.eq(tokd.valid & tokd.last),
    ]
    # fold walk: M chunks outer, N chunks inner, then one flush interval
    with m.If(running):
        with m.If(flush & (j + 1 == R)):
            m.d.sync += running.eq(0)
        with m.Elif(j + 1 == period):
            m.d.sync += [j.eq(0), has_prev.eq(1), prev_obase.eq(obase), obase.eq(obase + R)]
            with m.If(last_n):
                m.d.sync += [nbase.eq(0), wbase.eq(c.w_base), mbase.eq(mbase + R), abase.eq(abase + kk)]
                with m.If(last_m):
                    m.d.sync += flush.eq(1)
            with m.Else():
                m.d.sync += [nbase.eq(nbase + C), wbase.eq(wbase + kk)]
        with m.Else():
            m.d.sync += j.eq(j + 1)
