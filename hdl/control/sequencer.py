"""Control of a whole layer: the tile iterator and the two sequencers (DMA program, compute).

:class:`TileIterator` walks the tiles of :class:`codesign.sim.tileplan.TilePlan` from the layer
descriptor (the same loop nest, reuse flags, slots and DRAM block addresses), with adders only.

The sequencers run the program the simulator times (:mod:`codesign.sim.engine`):

* **DMA reads**: ``L0, L1, ...``; ``L(j)`` (``j >= B``) waits for the compute of tile ``j - B`` (the
  load overwrites the slots it used). **DMA writes**, at the same time: ``S0, S1, ...``, ``S(i)`` (its C
  blocks, after its last K tile) waits for the compute of tile ``i``. ``B`` = 2 double-buffered, else 1.
* **Compute**: tile ``i`` starts when its load is done and tile ``i - B`` is stored (its output slot);
  its ``gs`` groups run as back-to-back on-chip GEMMs of the fold controller.

Published timing (:mod:`codesign.sim.tileplan`): each sequencer decides in the cycle its
conditions hold and acts in the next; a tile's compute takes
``tile_compute_cycles = gs * (native_gemm_cycles + GEMM_ISSUE_CYCLES) + TILE_ISSUE_CYCLES``.
"""

from __future__ import annotations

from amaranth.hdl import Array, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

__all__ = ["TileIterator"]


class TileIterator(wiring.Component):
    """The current tile of the descriptor's loop nest; ``advance`` steps to the next one.

    Inputs are the descriptor fields; ``init`` (re)starts at the first tile. GEMM dimensions and tile sizes
    are ``dim_bits`` wide, DRAM byte addresses, strides and offsets ``addr_bits`` (the config's ``dim_bits``
    and ``dram_addr_bits``: the sums wrap at that width, and the host refuses a layout beyond it).
    """

    def __init__(self, *, slots: int, words_bits: int, dim_bits: int, addr_bits: int):
        self.slots = slots
        self.dim_bits, self.addr_bits = dim_bits, addr_bits
        d = {f: In(dim_bits) for f in ("m", "n", "k", "groups", "mt", "nt", "kt", "gt")}
        a = {f: In(addr_bits) for f in ("a_base", "b_base", "c_base", "a_stride_g", "a_stride_m", "a_stride_k",
                                        "b_stride_g", "b_stride_n", "b_stride_k", "c_stride_g", "c_stride_m",
                                        "c_stride_n")}
        w = {f"{o}_words_{i}{j}": In(words_bits) for o in "abc" for i in (0, 1) for j in (0, 1)}
        out = {
            "valid": Out(1), "last": Out(1),
            "gs": Out(dim_bits), "ms": Out(dim_bits), "ns": Out(dim_bits), "ks": Out(dim_bits),
            "first_k": Out(1), "last_k": Out(1), "load_a": Out(1), "load_b": Out(1),
            "a_slot": Out(1), "b_slot": Out(1), "c_slot": Out(1),
            "a_addr": Out(addr_bits), "b_addr": Out(addr_bits), "c_addr": Out(addr_bits),
            "a_words": Out(words_bits), "b_words": Out(words_bits), "c_words": Out(words_bits),
        }
        q = {"q_nf": In(words_bits + 8), "q_stride_n": In(words_bits + 8), "gt_log2": In(range(dim_bits)),
             "q_index": Out(words_bits + 8)}
        dw = {"a_skew": In(addr_bits), "first_m": Out(1), "last_m": Out(1), "b_stride_m": In(addr_bits)}
        super().__init__({**d, **a, **w, **q, **dw, "flags": In(7), "res_in": In(1), "in_slot": In(1),
                          "init": In(1), "advance": In(1), **out})

    def elaborate(self, platform):
        m = Module()
        g0, m0, n0, k0 = (Signal(self.dim_bits + 1, name=n) for n in ("g0", "m0", "n0", "k0"))
        # DRAM byte offsets; the table's (qg, qn) at the table index's width, its bits above never read
        offs = {n: Signal(len(self.q_index) if n[0] == "q" else self.addr_bits, name=f"off_{n}")
                for n in ("ag", "am", "ak", "bg", "bm", "bn", "bk", "cg", "cm", "cn", "qg", "qn")}
        valid = Signal()
        prev = {n: Signal(name=f"{n}_prev") for n in ("a", "b", "c")}
        a_reuse, b_reuse, weights_outer, depthwise = self.flags[0], self.flags[1], self.flags[2], self.flags[3]
        vector = self.flags[4] & ~self.flags[5]  # B's chunks follow A's (an add; bit 5: a broadcast scale)
        window = self.flags[6]  # on-chip convolution windows: bands like depthwise, one table for all images

        def size(x0, t, total):
            return Mux(x0 + t > total, total - x0, t)

        def derive(g0, m0, n0, k0, offs, prev) -> dict:
            """The tile's fields from its position (the registers, or the first tile's zeros)."""
            last_m = m0 + self.mt >= self.m
            last_n = n0 + self.nt >= self.n
            last_k = k0 + self.kt >= self.k
            load_a = ~(a_reuse & (n0 != 0)) & ~self.res_in  # (a resident input: in its slot already)
            load_b = ~(b_reuse & (m0 != 0))
            first_k = k0 == 0
            two = self.slots == 2
            a_words = Array([self.a_words_00, self.a_words_01, self.a_words_10,
                             self.a_words_11])[last_m * 2 + Mux(depthwise | window, m0 == 0, last_k)]
            last_g = g0 + self.gt >= self.groups
            return {
                "last_g": last_g, "last_n": last_n,  # the walk's own (not ports)
                "last": last_g & last_m & last_n & last_k,
                "gs": size(g0, self.gt, self.groups), "ms": size(m0, self.mt, self.m),
                "ns": size(n0, self.nt, self.n), "ks": size(k0, self.kt, self.k),
                "first_k": first_k, "last_k": last_k, "load_a": load_a, "load_b": load_b,
                "a_slot": (prev["a"] ^ load_a) if two else 0,
                "b_slot": (prev["b"] ^ load_b) if two else 0,
                "c_slot": (prev["c"] ^ first_k) if two else 0,
                # depthwise, windows: a band after the first starts pad_top rows before its outputs' first row
                "a_addr": self.a_base + offs["ag"] + offs["am"] + offs["ak"] - Mux(m0 != 0, self.a_skew, 0),
                "first_m": m0 == 0, "last_m": last_m,
                "b_addr": self.b_base + offs["bg"] + offs["bm"] + offs["bn"] + offs["bk"],
                "c_addr": self.c_base + offs["cg"] + offs["cm"] + offs["cn"],
                "q_index": offs["qg"] + offs["qn"],
                "a_words": a_words,
                "b_words": Mux(vector, a_words,
                               Array([self.b_words_00, self.b_words_01, self.b_words_10,
                                      self.b_words_11])[last_k * 2 + last_n]),
                "c_words": Array([self.c_words_00, self.c_words_01, self.c_words_10,
                                  self.c_words_11])[last_m * 2 + last_n],
            }

        # the fields are registers, a cycle behind the position (at ``init``, the first tile's straight from
        # the descriptor): the position's sums, compares and address adds end in them, not in the DMA's
        # command and the queues' entries (the 4x4 WS top's critical path on ECP5 once the PEs' product was
        # registered: ``n0`` through ``ns`` and the chunk count into the store queue, 13.3 ns). Nothing
        # reads them in the cycle after ``advance``: a load's command takes several cycles
        # (``DMA_READ_OVERHEAD_CYCLES``) before the DMA program can issue the next.
        zero = {n: 0 for n in offs}
        # the A slot before the first tile: the first load goes to in_slot, a resident input stays in it
        a_before = Mux(self.res_in, self.in_slot, ~self.in_slot)
        first = derive(0, 0, 0, 0, zero, {"a": a_before, "b": 1, "c": 1})
        now = derive(g0, m0, n0, k0, offs, prev)
        last_g, last_m, last_n, last_k = now["last_g"], now["last_m"], now["last_n"], now["last_k"]
        m.d.comb += self.valid.eq(valid)
        for name, value in now.items():
            if name in ("last_g", "last_n"):
                continue
            port = getattr(self, name)
            with m.If(self.init):
                m.d.sync += port.eq(first[name])
            with m.Else():
                m.d.sync += port.eq(value)

        def step_m():
            return [m0.eq(m0 + self.mt), offs["am"].eq(offs["am"] + self.a_stride_m),
                    offs["bm"].eq(offs["bm"] + self.b_stride_m), offs["cm"].eq(offs["cm"] + self.c_stride_m)]

        def wrap_m():
            return [m0.eq(0), offs["am"].eq(0), offs["bm"].eq(0), offs["cm"].eq(0)]

        def step_n():
            return [n0.eq(n0 + self.nt), offs["bn"].eq(offs["bn"] + self.b_stride_n),
                    offs["cn"].eq(offs["cn"] + self.c_stride_n), offs["qn"].eq(offs["qn"] + self.q_stride_n)]

        def wrap_n():
            return [n0.eq(0), offs["bn"].eq(0), offs["cn"].eq(0), offs["qn"].eq(0)]

        def step_g():
            return [g0.eq(g0 + self.gt), offs["ag"].eq(offs["ag"] + self.a_stride_g),
                    offs["bg"].eq(offs["bg"] + self.b_stride_g), offs["cg"].eq(offs["cg"] + self.c_stride_g),
                    offs["qg"].eq(offs["qg"] + Mux(window, 0, self.q_nf << self.gt_log2))]

        with m.If(self.init):
            m.d.sync += [g0.eq(0), m0.eq(0), n0.eq(0), k0.eq(0), valid.eq(1),
                         *(o.eq(0) for o in offs.values()), prev["a"].eq(a_before), prev["b"].eq(1),
                         prev["c"].eq(1)]
        with m.Elif(self.advance & valid):
            m.d.sync += [prev["a"].eq(self.a_slot), prev["b"].eq(self.b_slot), prev["c"].eq(self.c_slot)]
            with m.If(~last_k):
                m.d.sync += [k0.eq(k0 + self.kt), offs["ak"].eq(offs["ak"] + self.a_stride_k),
                             offs["bk"].eq(offs["bk"] + self.b_stride_k)]
            with m.Else():
                m.d.sync += [k0.eq(0), offs["ak"].eq(0), offs["bk"].eq(0)]
                with m.If(weights_outer):  # inner M, outer N
                    with m.If(~last_m):
                        m.d.sync += step_m()
                    with m.Else():
                        m.d.sync += wrap_m()
                        with m.If(~last_n):
                            m.d.sync += step_n()
                        with m.Else():
                            m.d.sync += wrap_n()
                            with m.If(~last_g):
                                m.d.sync += step_g()
                            with m.Else():
                                m.d.sync += valid.eq(0)
                with m.Else():  # inner N, outer M
                    with m.If(~last_n):
                        m.d.sync += step_n()
                    with m.Else():
                        m.d.sync += wrap_n()
                        with m.If(~last_m):
                            m.d.sync += step_m()
                        with m.Else():
                            m.d.sync += wrap_m()
                            with m.If(~last_g):
                                m.d.sync += step_g()
                            with m.Else():
                                m.d.sync += valid.eq(0)
        return m
