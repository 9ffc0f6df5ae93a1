"""The accelerator top: buffers, systolic array and the fold controller that runs a whole GEMM.

Ports (Verilog names come from the signature):

* ``load`` (stream in, payload ``{data, addr, sel}``): writes one word into the activation
  (``sel = 0``) or weight (``sel = 1``) buffer; ready while not busy.
* ``m``, ``n``, ``k``, ``start``: sampled when ``start`` is high and the controller is idle.
* ``busy``, ``done``: ``done`` rises after the last output word is written and stays high until
  the next ``start``. Cycles from the edge sampling ``start`` to the edge raising ``done`` are
  :meth:`Accelerator.gemm_cycles` (= ``codesign.sim.timing.native_gemm_cycles``).
* ``enabled_macs``: MACs enabled since ``start`` (see :mod:`codesign.hdl.array`).
* ``rd_addr`` (stream in) -> ``rd_data`` (stream out): reads the output buffer, one word per
  request, with back-pressure.

Buffer layouts are those of :mod:`codesign.hdl.plan`.
"""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal, unsigned
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from codesign.hdl.array import SystolicArray, delayed, lane_layout, operand_shape
from codesign.hdl.plan import HardwarePlan
from codesign.sim.config import AcceleratorConfig, Dataflow


def _addr_bits(depth: int) -> int:
    return max(1, (depth - 1).bit_length())


def top_name(config: AcceleratorConfig) -> str:
    """Verilog module name of the top for a config (distinct per generated design)."""
    c = config
    sw = "s" if c.weight_signed else "u"
    sa = "s" if c.act_signed else "u"
    gate = "_gate" if c.zero_handling.value == "gate" else ""
    return f"codesign_{c.dataflow.value}_{c.rows}x{c.cols}_w{sw}{c.weight_bits}_a{sa}{c.act_bits}{gate}"


def load_layout(p: HardwarePlan) -> data.StructLayout:
    """Payload of the ``load`` stream (``data`` in the low bits)."""
    return data.StructLayout({
        "data": max(p.act_word_bits, p.weight_word_bits),
        "addr": _addr_bits(max(p.act_depth, p.weight_depth)),
        "sel": 1,
    })


def accelerator_members(p: HardwarePlan) -> dict[str, wiring.Member]:
    """The top's signature members (Verilog ports ``<name>`` / ``<name>__<field>``)."""
    return {
        "load": In(stream.Signature(load_layout(p))),
        "m": In(p.dim_bits),
        "n": In(p.dim_bits),
        "k": In(p.dim_bits),
        "start": In(1),
        "busy": Out(1),
        "done": Out(1),
        "enabled_macs": Out(p.mac_counter_bits),
        "rd_addr": In(stream.Signature(unsigned(_addr_bits(p.out_depth)))),
        "rd_data": Out(stream.Signature(unsigned(p.out_word_bits))),
    }


class Accelerator(wiring.Component):
    """A systolic GEMM accelerator for one :class:`AcceleratorConfig` (WS or OS)."""

    def __init__(self, config: AcceleratorConfig):
        self.plan = HardwarePlan(config)
        super().__init__(accelerator_members(self.plan))

    # -- published timing (same functions as the simulator's native timing) ------------------
    @property
    def start_cycles(self) -> int:
        return self.plan.start_cycles

    @property
    def fill_cycles(self) -> int:
        return self.plan.fill_cycles()

    @property
    def drain_cycles(self) -> int:
        return self.plan.drain_cycles()

    def fold_cycles(self, t: int) -> int:
        return self.plan.fold_cycles(t)

    def gemm_cycles(self, m: int, n: int, k: int) -> int:
        return self.plan.gemm_cycles(m, n, k)

    # -- hardware --------------------------------------------------------------------------------
    def elaborate(self, platform):
        p = self.plan
        m = Module()
        m.submodules.array = array = SystolicArray(p)
        m.submodules.act_mem = act_mem = memory.Memory(
            shape=unsigned(p.act_word_bits), depth=p.act_depth, init=[])
        m.submodules.w_mem = w_mem = memory.Memory(
            shape=unsigned(p.weight_word_bits), depth=p.weight_depth, init=[])
        m.submodules.out_mem = out_mem = memory.Memory(
            shape=unsigned(p.out_word_bits), depth=p.out_depth, init=[])

        # -- load interface ----------------------------------------------------------------------
        act_wr = act_mem.write_port()
        w_wr = w_mem.write_port()
        m.d.comb += self.load.ready.eq(~self.busy)
        fire = self.load.valid & self.load.ready
        m.d.comb += [
            act_wr.addr.eq(self.load.payload.addr), act_wr.data.eq(self.load.payload.data),
            act_wr.en.eq(fire & (self.load.payload.sel == 0)),
            w_wr.addr.eq(self.load.payload.addr), w_wr.data.eq(self.load.payload.data),
            w_wr.en.eq(fire & (self.load.payload.sel == 1)),
        ]

        # -- output buffer: controller write + RMW read, host read ------------------------------
        out_wr = out_mem.write_port()
        out_rmw = out_mem.read_port(transparent_for=(out_wr,))
        out_host = out_mem.read_port()
        advance = ~self.rd_data.valid | self.rd_data.ready
        m.d.comb += [
            out_host.addr.eq(self.rd_addr.payload),
            out_host.en.eq(advance),
            self.rd_addr.ready.eq(advance),
            self.rd_data.payload.eq(out_host.data),
        ]
        with m.If(advance):
            m.d.sync += self.rd_data.valid.eq(self.rd_addr.valid)

        act_rd = act_mem.read_port()
        w_rd = w_mem.read_port()

        # -- controller state ---------------------------------------------------------------------
        dim = p.dim_bits
        mm, nn, kk = Signal(dim), Signal(dim), Signal(dim)
        period = Signal(dim + 1)
        j = Signal(dim + 1)
        running = Signal()  # issuing folds
        count = Signal(p.mac_counter_bits)
        m.d.comb += self.enabled_macs.eq(count)
        m.d.sync += count.eq(count + array.enabled_count)
        finish = Signal()  # the last output word is written this cycle
        pending = Signal()  # started, done not yet raised
        m.d.comb += self.busy.eq(pending)
        with m.If(self.start & ~pending):
            m.d.sync += [
                mm.eq(self.m), nn.eq(self.n), kk.eq(self.k), j.eq(0), running.eq(1),
                pending.eq(1), self.done.eq(0), count.eq(0),
            ]
        with m.If(finish):
            m.d.sync += [pending.eq(0), self.done.eq(1)]

        if p.dataflow is Dataflow.WS:
            self._ws(m, p, array, act_rd, w_rd, out_rmw, out_wr, mm, nn, kk, period, j, running, finish)
        else:
            self._os(m, p, array, act_rd, w_rd, out_wr, mm, nn, kk, period, j, running, finish)
        return m

    def _ws(self, m, p, array, act_rd, w_rd, out_rmw, out_wr, mm, nn, kk, period, j, running, finish):
        R, C = p.rows, p.cols
        dim = p.dim_bits
        kbase, nbase = Signal(dim + 1), Signal(dim + 1)
        abase = Signal(act_rd.addr.shape().width + 1)
        wbase = Signal(w_rd.addr.shape().width + 1)
        obase = Signal(out_wr.addr.shape().width + 1)
        with m.If(self.start & ~self.busy):
            m.d.sync += [
                period.eq(Mux(self.m > R, self.m, R)),
                kbase.eq(0), nbase.eq(0), abase.eq(0), wbase.eq(0), obase.eq(0),
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
            w_colmask.eq(Cat_bits([nbase + c < nn for c in range(C)])),
        ]
        m.d.comb += [array.w_load.eq(w_load), array.w_row.eq(w_row)]
        wb = p.config.weight_bits
        for c in range(C):
            m.d.comb += [
                array.w_vec[c].data.eq(w_rd.data[c * wb:(c + 1) * wb]),
                array.w_vec[c].valid.eq(w_rowvalid & w_colmask[c]),
            ]
        # activation issue: row j (= m) of A for this K chunk
        a_issue = running & (j < mm)
        m.d.comb += act_rd.addr.eq(abase + j)
        meta = data.StructLayout({
            "valid": 1, "first": 1, "last": 1, "addr": out_wr.addr.shape().width, "kmask": R,
        })
        meta0 = Signal(meta)
        m.d.comb += [
            meta0.valid.eq(a_issue),
            meta0.first.eq(kbase == 0),
            meta0.last.eq(last_k & last_n & (j + 1 == mm)),
            meta0.addr.eq(obase + j),
            meta0.kmask.eq(Cat_bits([kbase + r < kk for r in range(R)])),
        ]
        meta1 = Signal(meta)  # aligned with the buffer's read data
        meta2 = Signal(meta)  # aligned with a_vec
        m.d.sync += [meta1.eq(meta0), meta2.eq(meta1)]
        ab = p.config.act_bits
        s_act = operand_shape(ab, p.config.act_signed)
        a_vec = Signal(data.ArrayLayout(lane_layout(s_act), R))
        for r in range(R):
            m.d.sync += [
                a_vec[r].data.eq(act_rd.data[r * ab:(r + 1) * ab]),
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
        for c in range(C):
            old = out_rmw.data[c * acc_bits:(c + 1) * acc_bits]
            new = array.out_vec[c]
            lanes.append(Mux(meta_wr.first, new, old + new)[:acc_bits])
        m.d.comb += [
            out_wr.addr.eq(meta_wr.addr),
            out_wr.data.eq(Cat_bits(lanes)),
            out_wr.en.eq(meta_wr.valid),
            finish.eq(meta_wr.valid & meta_wr.last),
        ]
        # fold walk: N chunks outer, K chunks inner
        with m.If(running):
            with m.If(j + 1 == period):
                m.d.sync += [j.eq(0), wbase.eq(wbase + R)]
                with m.If(last_k):
                    m.d.sync += [kbase.eq(0), abase.eq(0), nbase.eq(nbase + C), obase.eq(obase + mm)]
                    with m.If(last_n):
                        m.d.sync += running.eq(0)
                with m.Else():
                    m.d.sync += [kbase.eq(kbase + R), abase.eq(abase + mm)]
            with m.Else():
                m.d.sync += j.eq(j + 1)

    def _os(self, m, p, array, act_rd, w_rd, out_wr, mm, nn, kk, period, j, running, finish):
        R, C = p.rows, p.cols
        dim = p.dim_bits
        mbase, nbase = Signal(dim + 1), Signal(dim + 1)
        abase = Signal(act_rd.addr.shape().width + 1)
        wbase = Signal(w_rd.addr.shape().width + 1)
        obase = Signal(out_wr.addr.shape().width + 1)
        prev_obase = Signal(out_wr.addr.shape().width + 1)
        has_prev = Signal()
        flush = Signal()  # the pseudo fold after the last one
        with m.If(self.start & ~self.busy):
            big = Mux(self.k > R, self.k, R)
            m.d.sync += [
                period.eq(Mux(big > C, big, C)),
                mbase.eq(0), nbase.eq(0), abase.eq(0), wbase.eq(0), obase.eq(0), prev_obase.eq(0),
                has_prev.eq(0), flush.eq(0),
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
            rowmask1.eq(Cat_bits([mbase + r < mm for r in range(R)])),
            colmask1.eq(Cat_bits([nbase + c < nn for c in range(C)])),
        ]
        ab, wb = p.config.act_bits, p.config.weight_bits
        for r in range(R):
            m.d.comb += [
                array.a_vec[r].data.eq(act_rd.data[r * ab:(r + 1) * ab]),
                array.a_vec[r].valid.eq(valid1 & rowmask1[r]),
                array.a_vec[r].first.eq(first1),
            ]
        for c in range(C):
            m.d.comb += [
                array.b_vec[c].data.eq(w_rd.data[c * wb:(c + 1) * wb]),
                array.b_vec[c].valid.eq(valid1 & colmask1[c]),
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
        tokd = delayed(m, tok0, C + 1, "drain_tok", tok)
        m.d.comb += [
            array.drain_row.eq(tokd.row),
            out_wr.addr.eq(tokd.addr),
            out_wr.data.eq(array.out_vec.as_value()),
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
                    m.d.sync += [nbase.eq(0), wbase.eq(0), mbase.eq(mbase + R), abase.eq(abase + kk)]
                    with m.If(last_m):
                        m.d.sync += flush.eq(1)
                with m.Else():
                    m.d.sync += [nbase.eq(nbase + C), wbase.eq(wbase + kk)]
            with m.Else():
                m.d.sync += j.eq(j + 1)


def Cat_bits(bits):
    from amaranth.hdl import Cat

    return Cat(*bits)
