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

from collections.abc import Callable
from dataclasses import dataclass

from amaranth.hdl import Cat, Const, Module, Mux, Signal, Value, signed
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
class Windows:
    """Window mode's inputs (the layer descriptor's ``dw_*``/``cv_*`` fields and the tile's band),
    stable while a GEMM runs: A is read from the band of ``ks`` input planes in the buffer, one word
    a pixel and tap, the window made by the address; a word outside the image is a zero."""

    on: Value  # window mode (flags bit 6)
    in_w: Value  # input width
    out_w: Value  # output width
    r: Value
    s: Value
    sh: Value  # stride height
    sw: Value  # stride width
    dh: Value
    dw: Value
    pad_l: Value
    pad_t: Value  # the band's top padding rows (the first band's only)
    top_words: Value  # pad_t x in_w
    row_step: Value  # stride height x in_w
    dil_step: Value  # dilation height x in_w
    band_rows: Value  # input rows of the band in the buffer
    band_words: Value  # words of one plane's band (band_rows x in_w)
    ks: Value  # planes of the tile
    lanes_last: Value  # channels of the tile's last plane


@dataclass
class FoldControl:
    """The controller's outputs."""

    busy: Signal
    done: Signal
    finish: Signal  # the last output word is written this cycle


def fold_controller(m: Module, p: HardwarePlan, array: SystolicArray, act_rd, w_rd, out_rmw, out_wr, *,
                    start: Value, dims: tuple[Value, Value, Value], offsets: tuple[Value, Value, Value],
                    accumulate: Value, windows: Windows | None = None) -> FoldControl:
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
        _ws(m, p, array, act_rd, w_rd, out_rmw, out_wr, c, windows)
    else:
        _os(m, p, array, act_rd, w_rd, out_rmw, out_wr, c)
    return FoldControl(busy=busy, done=done, finish=finish)


def _ws(m: Module, p: HardwarePlan, array: SystolicArray, act_rd, w_rd, out_rmw, out_wr, c: _Ctl,
        win: Windows | None = None) -> None:
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
    kfirst = kbase == 0
    lane_ok = Cat(*[kbase + i < kk for i in range(R)])
    wv = _windows(m, p, act_rd, c, win) if win is not None else None
    if wv is not None:
        last_k = Mux(wv.on, wv.last_fold, last_k)
        kfirst = Mux(wv.on, wv.first_fold, kfirst)
        lane_ok = Mux(wv.on, wv.lanes, lane_ok)
    # weight issue: row j of the fold's weight block
    w_issue = running & (j < R)
    m.d.comb += w_rd.addr.eq(wbase + j)
    w_load = Signal()
    w_row = Signal(range(R))
    w_rowvalid = Signal()
    w_colmask = Signal(C)
    m.d.sync += [
        w_load.eq(w_issue), w_row.eq(j),
        w_rowvalid.eq(kbase + j < kk if wv is None else Mux(wv.on, j < wv.n_lanes, kbase + j < kk)),
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
    if wv is not None:
        with m.If(wv.on):
            m.d.comb += act_rd.addr.eq(wv.addr)
    meta = data.StructLayout({
        "valid": 1, "first": 1, "last": 1, "addr": out_wr.addr.shape().width, "kmask": R, "inside": 1,
    })
    meta0 = Signal(meta)
    m.d.comb += [
        meta0.valid.eq(a_issue),
        meta0.first.eq(kfirst & ~c.acc_r),
        meta0.last.eq(last_k & last_n & (j + 1 == mm)),
        meta0.addr.eq(obase + j),
        meta0.kmask.eq(lane_ok),
        meta0.inside.eq(1 if wv is None else (~wv.on | wv.inside)),
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
            a_vec[r].data.eq(Mux(meta1.inside, act_rd.data[lo:lo + gm * ab], 0)),  # a window's padding: zero
            a_vec[r].valid.eq(meta1.valid & meta1.kmask[r]),
        ]
    m.d.comb += array.a_vec.eq(a_vec)
    # output: read-modify-write, aligned with the array latency
    # The old sum is read two cycles before its write and held a cycle in a register: the buffer's
    # clock-to-out (5.6 ns on ECP5's DP16KD) and the add are then a cycle each (the 4x4 WS top's critical
    # path on ECP5 once the tile iterator's fields were registered: the read data through the 32-bit add
    # into the write, 12.9 ns). The write stays where it was, so the timing is unchanged. A pixel's next
    # fold reads it ``max(M, rows)`` cycles after this fold's read, at or after this fold's write when
    # ``rows >= 2`` (the read port is transparent for the write port); a one-row array reads a cycle before
    # its write, as before.
    lat = array.latency_cycles  # a_vec -> out_vec
    early = R >= 2
    meta_rd = delayed(m, meta2, lat - 1 - early, "meta_rd", meta)
    meta_wr = delayed(m, meta_rd, 1 + early, "meta_wr", meta)
    m.d.comb += out_rmw.addr.eq(meta_rd.addr)
    acc_bits = p.acc_bits
    old_word = out_rmw.data
    if early:
        old_word = Signal.like(out_rmw.data, name="rmw_old")
        m.d.sync += old_word.eq(out_rmw.data)
    lanes = []
    for col in range(C):
        old = old_word[col * acc_bits:(col + 1) * acc_bits]
        new = array.out_vec[col]
        lanes.append(Mux(meta_wr.first, new, old + new)[:acc_bits])
    m.d.comb += [
        out_wr.addr.eq(meta_wr.addr),
        out_wr.data.eq(Cat(*lanes)),
        out_wr.en.eq(meta_wr.valid),
        finish.eq(meta_wr.valid & meta_wr.last),
    ]
    if wv is not None:
        wv.walk(a_issue, running & (j + 1 == period), last_k)
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


@dataclass
class _WindowState:
    on: Value
    addr: Value  # the input-buffer word of this cycle's pixel and tap
    inside: Value  # the word is inside the image (else the window's padding: a zero)
    first_fold: Value
    last_fold: Value  # the tile's last plane and tap (its last K fold)
    n_lanes: Value  # channels of the fold's plane
    lanes: Value  # their lanes, valid
    walk: Callable[[Value, Value, Value], None]  # walk(issue, fold_end, last_k): the counters' steps


def _windows(m: Module, p: HardwarePlan, act_rd, c: _Ctl, w: Windows) -> _WindowState:
    """The window address generator (window mode): counters for the pixel (``wo``, the output row's
    offset in the band) and the fold (plane, ``ky``, ``kx``), whose sums are the read address:
    ``slot + plane * band_words + (ho * sh + ky * dh - pad_t) * W + wo * sw + kx * dw - pad_l``; the
    row and column of that sum against the band decide a zero. Adders and compares only."""
    R = p.rows
    aw = act_rd.addr.shape().width + 2
    sig = signed(aw + 2)
    # fold: plane base, kernel row/column offsets
    plane = Signal(range(1 << 16), name="win_plane")
    ky, kx = Signal(8, name="win_ky"), Signal(8, name="win_kx")
    fp_base = Signal(aw, name="win_plane_base")
    fk_row, fk_rowaddr, fk_col = Signal(sig, name="win_k_row"), Signal(sig, name="win_k_rowaddr"), Signal(
        sig, name="win_k_col")
    # pixel: output column, row offsets
    wo = Signal(16, name="win_wo")
    px_row, px_rowaddr, px_col = Signal(sig, name="win_px_row"), Signal(sig, name="win_px_rowaddr"), Signal(
        sig, name="win_px_col")
    hr = Signal(sig, name="win_hr")
    wc = Signal(sig, name="win_wc")
    addr = Signal(sig, name="win_addr")
    m.d.comb += [
        hr.eq(fk_row + px_row), wc.eq(fk_col + px_col),
        addr.eq(fp_base + fk_rowaddr + px_rowaddr + fk_col + px_col),
    ]
    inside = (hr >= 0) & (hr < w.band_rows) & (wc >= 0) & (wc < w.in_w)
    last_plane = plane + 1 == w.ks
    last_fold = last_plane & (ky + 1 == w.r) & (kx + 1 == w.s)
    first_fold = (plane == 0) & (ky == 0) & (kx == 0)
    n_lanes = Mux(last_plane, w.lanes_last, R)
    lanes = Cat(*[Const(i, 16) < n_lanes for i in range(R)])

    def reset_pixels() -> list:
        return [wo.eq(0), px_row.eq(0), px_rowaddr.eq(0), px_col.eq(0)]

    def reset_kernel() -> list:
        return [ky.eq(0), kx.eq(0), fk_row.eq(-w.pad_t), fk_rowaddr.eq(-w.top_words), fk_col.eq(-w.pad_l)]

    with m.If(c.go):
        m.d.sync += [plane.eq(0), fp_base.eq(c.a_off), *reset_kernel(), *reset_pixels()]

    def walk(issue: Value, fold_end: Value, last_k: Value) -> None:
        with m.If(fold_end):
            m.d.sync += reset_pixels()
            with m.If(kx + 1 < w.s):
                m.d.sync += [kx.eq(kx + 1), fk_col.eq(fk_col + w.dw)]
            with m.Elif(ky + 1 < w.r):
                m.d.sync += [kx.eq(0), fk_col.eq(-w.pad_l), ky.eq(ky + 1), fk_row.eq(fk_row + w.dh),
                             fk_rowaddr.eq(fk_rowaddr + w.dil_step)]
            with m.Else():
                m.d.sync += reset_kernel()
                with m.If(last_k):  # the next column chunk: the tile's first plane again
                    m.d.sync += [plane.eq(0), fp_base.eq(c.a_base)]
                with m.Else():
                    m.d.sync += [plane.eq(plane + 1), fp_base.eq(fp_base + w.band_words)]
        with m.Elif(issue):
            with m.If(wo + 1 == w.out_w):
                m.d.sync += [wo.eq(0), px_col.eq(0), px_row.eq(px_row + w.sh),
                             px_rowaddr.eq(px_rowaddr + w.row_step)]
            with m.Else():
                m.d.sync += [wo.eq(wo + 1), px_col.eq(px_col + w.sw)]

    return _WindowState(on=w.on, addr=addr[:act_rd.addr.shape().width], inside=inside, first_fold=first_fold,
                        last_fold=last_fold, n_lanes=n_lanes, lanes=lanes, walk=walk)


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
