"""The pool stage: a max pool in a convolution's write-back (:mod:`codesign.sim.poolfuse`).

The DMA's write-back hands it a tile's requantized output words in a *pass* (one output row of the
convolution: a plane of ``lanes`` channels after another, ``ow`` words each, one a cycle at most). The
stage pools them on the way:

* **Across the row** it keeps the window in progress and the next one (``stride <= kernel <= 2 *
  stride``: a column is in one or two windows) and *emits* a window's maximum at the window's last
  column (clipped to the row), one register stage later;
* **Across rows** it keeps two rows of pooled maxima (``slot`` 0 and 1, one memory each, ``depth`` words of
  ``planes * pw`` used): the oldest pooled row still open and the next one (a convolution row is in one or
  two windows). Each emitted maximum is read from both memories and written back as the larger (or alone,
  the window's first row) into the rows whose windows hold the convolution row, a read and a write a cycle
  later: :data:`LATENCY_CYCLES` from a word to its maximum in memory.

The control starts a pass (``start``: the row's roles are fixed then from the rows seen) and ends it
(``finish``, once the pass's last word is in memory). A pass on the last row of a pooled row's window
raises ``row_done`` (from the cycle after ``start``); at ``finish`` the completed row's slot and DRAM address
(``done_slot``, ``done_addr``) are kept for its write, which reads the slot through ``rd_*`` while no pass
runs (``{slot, word}`` addresses, one-cycle reads that hold their word while ``rd_en`` is low). Padding
never wins: the windows are clipped to the map. Rows and columns after the last window are passed over.
``init`` (a layer's start) clears the rows seen.
"""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal, signed, unsigned
from amaranth.lib import memory, wiring
from amaranth.lib.wiring import In, Out

LATENCY_CYCLES = 3  # a word in (cycle t) -> its window's maximum emitted (t + 1) -> read (t + 1), written (t + 2)
DIM = 16  # rows, columns, widths and heights (the descriptor's 16-bit halves)


class PoolStage(wiring.Component):
    """The stage for ``lanes`` lanes of ``bits``-bit values, ``depth`` words a row slot; DRAM byte addresses
    (``base``, ``row_bytes``, ``image_bytes``, ``done_addr``) ``addr_bits`` wide (the config's ``dram_addr_bits``)."""

    def __init__(self, *, lanes: int, bits: int, signed_values: bool, depth: int, addr_bits: int):
        assert depth & (depth - 1) == 0, "depth must be a power of two"
        self.lanes, self.bits, self.signed_values, self.depth = lanes, bits, signed_values, depth
        self.addr_bits = addr_bits
        self.word_bits = lanes * bits
        self.abits = max(1, (depth - 1).bit_length())
        super().__init__({
            "kh": In(8), "kw": In(8), "sh": In(8), "sw": In(8), "pt": In(8), "pl": In(8),
            "oh": In(DIM), "ow": In(DIM), "ph": In(DIM), "pw": In(DIM),
            "row_bytes": In(addr_bits), "image_bytes": In(addr_bits), "base": In(addr_bits),
            "init": In(1), "start": In(1), "finish": In(1),
            "in_valid": In(1), "in_data": In(self.word_bits),
            "row_done": Out(1), "done_slot": Out(1), "done_addr": Out(addr_bits),
            "rd_addr": In(self.abits + 1), "rd_en": In(1), "rd_data": Out(self.word_bits),
        })

    def _max(self, a, b):
        """Lane-wise maximum of two words (signed or unsigned lanes)."""
        from amaranth.hdl import Cat

        bits = self.bits
        out = []
        for i in range(self.lanes):
            x, y = a[i * bits:(i + 1) * bits], b[i * bits:(i + 1) * bits]
            if self.signed_values:
                out.append(Mux(x.as_signed() > y.as_signed(), x, y))
            else:
                out.append(Mux(x > y, x, y))
        return Cat(*out)

    def elaborate(self, platform):
        m = Module()
        wb = self.word_bits
        mems = []
        for s in range(2):
            mem = memory.Memory(shape=unsigned(wb), depth=self.depth, init=[])
            m.submodules[f"rows{s}"] = mem
            mems.append((mem.read_port(), mem.write_port()))

        # -- across the row: the window in progress (a) and the next (n) ------------------------------
        col, px, plane_base = Signal(DIM), Signal(DIM), Signal(self.abits + 1)
        a, n = Signal(wb), Signal(wb)
        a_v, n_v = Signal(), Signal()
        wend, nstart = Signal(signed(DIM + 2)), Signal(signed(DIM + 2))  # window px's last column, px + 1's first
        v = self.in_data
        active = px < self.pw
        in_n = (px + 1 < self.pw) & (col.as_signed() >= nstart)
        a_new = Mux(a_v, self._max(a, v), v)
        n_new = Mux(n_v, self._max(n, v), v)
        row_end = col == self.ow - 1
        emit = self.in_valid & active & ((col.as_signed() == wend) | row_end)
        e_valid, e_addr, e_val = Signal(), Signal(self.abits), Signal(wb)
        m.d.sync += e_valid.eq(emit)
        with m.If(emit):
            m.d.sync += [e_addr.eq(plane_base + px), e_val.eq(a_new)]

        def row_reset():
            return [col.eq(0), px.eq(0), a_v.eq(0), n_v.eq(0),
                    wend.eq(self.kw.as_signed() - 1 - self.pl.as_signed()),
                    nstart.eq(self.sw.as_signed() - self.pl.as_signed())]

        with m.If(self.start):
            m.d.sync += [*row_reset(), plane_base.eq(0)]
        with m.Elif(self.in_valid):
            with m.If(row_end):
                m.d.sync += [*row_reset(), plane_base.eq(plane_base + self.pw)]
            with m.Else():
                m.d.sync += col.eq(col + 1)
                with m.If(emit):
                    m.d.sync += [px.eq(px + 1), a.eq(n_new), a_v.eq(in_n), n_v.eq(0), wend.eq(wend + self.sw),
                                 nstart.eq(nstart + self.sw)]
                with m.Elif(active):
                    m.d.sync += [a.eq(a_new), a_v.eq(1)]
                    with m.If(in_n):
                        m.d.sync += [n.eq(n_new), n_v.eq(1)]

        # -- across rows: the oldest open pooled row (slot cur) and the next ---------------------------
        r, py = Signal(DIM), Signal(DIM)
        cur, cur_v, nxt_v = Signal(), Signal(), Signal()
        start_n, end_c = Signal(signed(DIM + 2)), Signal(signed(DIM + 2))  # row py + 1's first, row py's last
        img_addr, row_addr = Signal(self.addr_bits), Signal(self.addr_bits)
        f_act, f_first_c, f_in_n, f_first_n, f_final = (Signal(name=f"pool_{x}") for x in
                                                        ("act", "first_c", "in_n", "first_n", "final"))
        m.d.comb += self.row_done.eq(f_final)

        def image_reset(base):  # an image's first row: no pooled row open, its rows from ``base``
            return [r.eq(0), py.eq(0), cur.eq(0), cur_v.eq(0), nxt_v.eq(0),
                    start_n.eq(self.sh.as_signed() - self.pt.as_signed()),
                    end_c.eq(self.kh.as_signed() - 1 - self.pt.as_signed()), img_addr.eq(base), row_addr.eq(base)]

        with m.If(self.init):
            m.d.sync += [*image_reset(self.base), f_final.eq(0)]
        with m.Elif(self.start):
            act = py < self.ph
            m.d.sync += [f_act.eq(act), f_first_c.eq(~cur_v), f_first_n.eq(~nxt_v),
                         f_in_n.eq((py + 1 < self.ph) & (r.as_signed() >= start_n)),
                         f_final.eq(act & ((r.as_signed() == end_c) | (r == self.oh - 1)))]
        with m.Elif(self.finish):
            m.d.sync += [r.eq(r + 1), f_final.eq(0)]
            with m.If(f_final):
                m.d.sync += [self.done_slot.eq(cur), self.done_addr.eq(row_addr), py.eq(py + 1), cur.eq(~cur),
                             cur_v.eq(nxt_v | f_in_n), nxt_v.eq(0), start_n.eq(start_n + self.sh),
                             end_c.eq(end_c + self.sh), row_addr.eq(row_addr + self.row_bytes)]
            with m.Else():
                m.d.sync += [cur_v.eq(cur_v | f_act), nxt_v.eq(nxt_v | f_in_n)]
            with m.If(r == self.oh - 1):  # the image's last row: the next image's rows
                m.d.sync += image_reset(img_addr + self.image_bytes)

        # -- the read-modify-write of each emitted maximum, and the reads of a completed row -----------
        e2_valid, e2_addr, e2_val = Signal(), Signal(self.abits), Signal(wb)
        m.d.sync += [e2_valid.eq(e_valid), e2_addr.eq(e_addr), e2_val.eq(e_val)]
        rd_slot = Signal()  # the slot of the word read last cycle
        m.d.sync += rd_slot.eq(self.rd_addr[self.abits])
        for s, (rd, wr) in enumerate(mems):
            is_cur = cur == s
            first = Mux(is_cur, f_first_c, f_first_n)
            use = Mux(is_cur, f_act, f_in_n)
            m.d.comb += [rd.addr.eq(Mux(e_valid, e_addr, self.rd_addr[:self.abits])), rd.en.eq(e_valid | self.rd_en),
                         wr.addr.eq(e2_addr), wr.en.eq(e2_valid & use),
                         wr.data.eq(Mux(first, e2_val, self._max(rd.data, e2_val)))]
        m.d.comb += self.rd_data.eq(Mux(rd_slot, mems[1][0].data, mems[0][0].data))
        return m
