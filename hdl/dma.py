"""The memory system's DMA: an AXI4 master that moves buffer words between DRAM and the buffers.

One read command moves up to two *ranges* (the A blocks into the input buffer, then the B blocks
into the weight buffer); one write command moves one range (C blocks out of the output buffer).
A range is ``blocks`` contiguous blocks of ``block_beats`` beats each, starting at a bus-aligned
byte address, written to / read from consecutive buffer words from ``word``.

* Bursts: INCR, at most 256 beats, never crossing 4 KiB, one per block piece; read addresses are
  issued one per cycle, back to back, ahead of the data (the memory returns data in order).
* Words and beats: a buffer word narrower than the bus travels alone in one beat (low bits); a
  wider word takes ``beats_per_word`` consecutive beats, low part first.
* Timing (published in :mod:`codesign.sim.tileplan`): a command accepted in cycle ``d``
  (``rd_go``/``wr_go`` high) drives its first address in ``d + 1``. The read command ends with
  the edge that accepts its last data beat (``rd_last`` high in that cycle); the write command with
  the edge that accepts its last write response (``wr_last``). With a memory whose first beat
  comes ``latency`` cycles after the address and whose channel moves ``bw`` bytes a cycle, that
  is ``DMA_READ_OVERHEAD_CYCLES + latency + ceil(bytes / bw)`` cycles from ``d`` for a read and
  ``DMA_WRITE_OVERHEAD_CYCLES + latency + ceil(bytes / bw)`` for a write.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

ADDR_BITS = 32
LEN_BITS = 8  # AXI4 arlen/awlen
BLOCK_BEAT_BITS = 20  # words (and beats) of one block
BLOCK_COUNT_BITS = 16


def axi_master_members(data_bits: int, addr_bits: int = ADDR_BITS) -> dict[str, wiring.Member]:
    """AXI4 master ports (``m_axi_*``), the signals this DMA drives and reads."""
    strb = max(1, data_bits // 8)
    return {
        "m_axi_araddr": Out(addr_bits), "m_axi_arlen": Out(LEN_BITS), "m_axi_arsize": Out(3),
        "m_axi_arburst": Out(2), "m_axi_arvalid": Out(1), "m_axi_arready": In(1),
        "m_axi_rdata": In(data_bits), "m_axi_rresp": In(2), "m_axi_rlast": In(1),
        "m_axi_rvalid": In(1), "m_axi_rready": Out(1),
        "m_axi_awaddr": Out(addr_bits), "m_axi_awlen": Out(LEN_BITS), "m_axi_awsize": Out(3),
        "m_axi_awburst": Out(2), "m_axi_awvalid": Out(1), "m_axi_awready": In(1),
        "m_axi_wdata": Out(data_bits), "m_axi_wstrb": Out(strb), "m_axi_wlast": Out(1),
        "m_axi_wvalid": Out(1), "m_axi_wready": In(1),
        "m_axi_bresp": In(2), "m_axi_bvalid": In(1), "m_axi_bready": Out(1),
    }


class _Bursts:
    """Walks a range as bursts: ``addr``, ``len_beats`` of the current burst, ``step()`` to the next."""

    def __init__(self, m: Module, name: str, bus_bytes: int):
        self.m = m
        self.bus_bytes = bus_bytes
        self.addr = Signal(ADDR_BITS, name=f"{name}_addr")
        self.left = Signal(BLOCK_BEAT_BITS + 4, name=f"{name}_left")  # beats left in the block
        self.blocks = Signal(BLOCK_COUNT_BITS, name=f"{name}_blocks")  # blocks after this one
        self.block_beats = Signal(BLOCK_BEAT_BITS + 3, name=f"{name}_block_beats")
        shift = (bus_bytes - 1).bit_length()
        to_4k = Signal(13, name=f"{name}_to4k")
        m.d.comb += to_4k.eq((4096 - (self.addr & 4095)) >> shift)
        self.len_beats = Signal(BLOCK_BEAT_BITS + 4, name=f"{name}_len")
        lim = Signal(BLOCK_BEAT_BITS + 4, name=f"{name}_lim")
        m.d.comb += [
            lim.eq(Mux(self.left > 256, 256, self.left)),
            self.len_beats.eq(Mux(lim > to_4k, to_4k, lim)),
        ]
        self.last_burst = (self.len_beats == self.left) & (self.blocks == 0)

    def load(self, addr, block_beats, blocks) -> list:
        """Start a range of ``blocks`` (>= 1) blocks."""
        return [self.addr.eq(addr), self.left.eq(block_beats), self.blocks.eq(blocks - 1),
                self.block_beats.eq(block_beats)]

    def step(self) -> list:
        nxt_left = self.left - self.len_beats
        return [
            self.addr.eq(self.addr + self.len_beats * self.bus_bytes),
            self.left.eq(Mux(nxt_left == 0, self.block_beats, nxt_left)),
            self.blocks.eq(Mux(nxt_left == 0, self.blocks - 1, self.blocks)),
        ]


class DmaEngine(wiring.Component):
    """AXI4 master + buffer ports. Widths: ``bus_bytes`` data, buffer words of the plan."""

    def __init__(self, *, bus_bytes: int, a_word_bits: int, b_word_bits: int, c_word_bits: int,
                 a_addr_bits: int, b_addr_bits: int, c_addr_bits: int, bpw: tuple[int, int, int]):
        self.bus_bytes = bus_bytes
        self.bus_bits = bus_bytes * 8
        self.word_bits = (a_word_bits, b_word_bits, c_word_bits)
        self.bpw = bpw
        members = {
            **axi_master_members(self.bus_bits),
            # read command: A range then B range (blocks = 0: no range)
            "rd_go": In(1), "rd_busy": Out(1), "rd_last": Out(1),
            "rd_a_addr": In(ADDR_BITS), "rd_a_block_words": In(BLOCK_BEAT_BITS),
            "rd_a_blocks": In(BLOCK_COUNT_BITS), "rd_a_word": In(a_addr_bits),
            "rd_b_addr": In(ADDR_BITS), "rd_b_block_words": In(BLOCK_BEAT_BITS),
            "rd_b_blocks": In(BLOCK_COUNT_BITS), "rd_b_word": In(b_addr_bits),
            # write command: C range
            "wr_go": In(1), "wr_busy": Out(1), "wr_last": Out(1),
            "wr_addr": In(ADDR_BITS), "wr_block_words": In(BLOCK_BEAT_BITS), "wr_blocks": In(BLOCK_COUNT_BITS),
            "wr_word": In(c_addr_bits),
            # buffer ports
            "a_wr_addr": Out(a_addr_bits), "a_wr_data": Out(a_word_bits), "a_wr_en": Out(1),
            "b_wr_addr": Out(b_addr_bits), "b_wr_data": Out(b_word_bits), "b_wr_en": Out(1),
            "c_rd_addr": Out(c_addr_bits), "c_rd_en": Out(1), "c_rd_data": In(c_word_bits),
            # beats moved this cycle (for the byte counters)
            "r_beat": Out(1), "w_beat": Out(1),
        }
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        size = (self.bus_bytes - 1).bit_length()
        m.d.comb += [
            self.m_axi_arsize.eq(size), self.m_axi_awsize.eq(size), self.m_axi_arburst.eq(1),
            self.m_axi_awburst.eq(1), self.m_axi_rready.eq(1), self.m_axi_bready.eq(1),
            self.m_axi_wstrb.eq(Const(-1, self.m_axi_wstrb.shape())),
        ]
        self._read(m)
        self._write(m)
        return m

    # -- reads ---------------------------------------------------------------------------------
    def _read(self, m: Module) -> None:
        ar = _Bursts(m, "ar", self.bus_bytes)
        ar_active = Signal()
        ar_b_pending = Signal()  # the B range follows the A range
        b_addr, b_beats, b_blocks = Signal(ADDR_BITS), Signal(BLOCK_BEAT_BITS + 3), Signal(BLOCK_COUNT_BITS)
        m.d.comb += [
            self.m_axi_arvalid.eq(ar_active), self.m_axi_araddr.eq(ar.addr),
            self.m_axi_arlen.eq(ar.len_beats - 1),
        ]
        # data side: which range, beats left in it, word position
        busy = Signal()
        in_b = Signal()
        r_left = Signal(BLOCK_BEAT_BITS + 4)  # beats left in the current block
        r_blocks = Signal(BLOCK_COUNT_BITS)  # blocks of the current range after this one
        a_word, b_word = Signal.like(self.rd_a_word), Signal.like(self.rd_b_word)
        m.d.comb += [self.rd_busy.eq(busy), self.r_beat.eq(self.m_axi_rvalid & busy)]
        has_a = self.rd_a_blocks != 0
        has_b = self.rd_b_blocks != 0
        ar_a_beats = Signal(BLOCK_BEAT_BITS + 3)  # A's block beats, held for the data side
        pa, pb, _pc = self.bpw
        a_beats = Signal(BLOCK_BEAT_BITS + 3)
        b_beats_in = Signal(BLOCK_BEAT_BITS + 3)
        m.d.comb += [a_beats.eq(self.rd_a_block_words * pa), b_beats_in.eq(self.rd_b_block_words * pb)]
        with m.If(self.rd_go & ~busy):
            m.d.sync += [busy.eq(has_a | has_b), ar_active.eq(has_a | has_b), in_b.eq(~has_a),
                         r_left.eq(Mux(has_a, a_beats, b_beats_in)),
                         r_blocks.eq(Mux(has_a, self.rd_a_blocks, self.rd_b_blocks) - 1),
                         a_word.eq(self.rd_a_word), b_word.eq(self.rd_b_word),
                         ar_b_pending.eq(has_a & has_b),
                         b_addr.eq(self.rd_b_addr), b_beats.eq(b_beats_in),
                         b_blocks.eq(Mux(has_a, self.rd_b_blocks, 0)), ar_a_beats.eq(a_beats)]
            with m.If(has_a):
                m.d.sync += ar.load(self.rd_a_addr, a_beats, self.rd_a_blocks)
            with m.Else():
                m.d.sync += ar.load(self.rd_b_addr, b_beats_in, self.rd_b_blocks)
        with m.If(ar_active & self.m_axi_arready):
            with m.If(ar.last_burst):
                with m.If(ar_b_pending):
                    m.d.sync += [ar.load(b_addr, b_beats, b_blocks), ar_b_pending.eq(0)]
                with m.Else():
                    m.d.sync += ar_active.eq(0)
            with m.Else():
                m.d.sync += ar.step()
        # beats -> words
        fire = self.m_axi_rvalid & busy
        wa, wb, _wc = self.word_bits
        self._unpack(m, fire & ~in_b, pa, wa, a_word, self.a_wr_addr, self.a_wr_data, self.a_wr_en, "ra")
        self._unpack(m, fire & in_b, pb, wb, b_word, self.b_wr_addr, self.b_wr_data, self.b_wr_en, "rb")
        last = Signal()
        range_end = (r_left == 1) & (r_blocks == 0)
        b_follows = ~in_b & (b_blocks != 0)
        m.d.comb += [last.eq(fire & range_end & ~b_follows), self.rd_last.eq(last)]
        with m.If(fire):
            with m.If(r_left != 1):
                m.d.sync += r_left.eq(r_left - 1)
            with m.Elif(r_blocks != 0):
                m.d.sync += [r_left.eq(Mux(in_b, b_beats, ar_a_beats)), r_blocks.eq(r_blocks - 1)]
            with m.Elif(b_follows):
                m.d.sync += [in_b.eq(1), r_left.eq(b_beats), r_blocks.eq(b_blocks - 1)]
        with m.If(last):
            m.d.sync += busy.eq(0)

    def _unpack(self, m: Module, fire, bpw: int, word_bits: int, word: Signal, addr, data, en, name: str) -> None:
        """Write words into a buffer from beats (``bpw`` beats per word)."""
        bus = self.bus_bits
        m.d.comb += addr.eq(word)
        if bpw == 1:
            m.d.comb += [data.eq(self.m_axi_rdata[:word_bits]), en.eq(fire)]
            with m.If(fire):
                m.d.sync += word.eq(word + 1)
            return
        sub = Signal(range(bpw), name=f"{name}_sub")
        held = Signal(bus * (bpw - 1), name=f"{name}_held")
        m.d.comb += [data.eq(Cat(held, self.m_axi_rdata)[:word_bits]), en.eq(fire & (sub == bpw - 1))]
        with m.If(fire):
            with m.If(sub == bpw - 1):
                m.d.sync += [sub.eq(0), word.eq(word + 1)]
            with m.Else():
                m.d.sync += sub.eq(sub + 1)
            # beats arrive low part first: shift the held beats down
            m.d.sync += held.eq(Cat(held[bus:], self.m_axi_rdata) if bpw > 2 else self.m_axi_rdata)

    # -- writes --------------------------------------------------------------------------------
    def _write(self, m: Module) -> None:
        aw = _Bursts(m, "aw", self.bus_bytes)
        wq = _Bursts(m, "wq", self.bus_bytes)  # the same burst walk, for wlast
        busy = Signal()
        aw_active = Signal()
        w_active = Signal()
        bursts_out = Signal(BLOCK_BEAT_BITS + BLOCK_COUNT_BITS)  # issued, response not yet seen
        m.d.comb += [
            self.wr_busy.eq(busy), self.m_axi_awvalid.eq(aw_active), self.m_axi_awaddr.eq(aw.addr),
            self.m_axi_awlen.eq(aw.len_beats - 1),
        ]
        go = self.wr_go & ~busy & (self.wr_blocks != 0)
        # word fetch from the output buffer: one word ahead of the data channel
        _pa, _pb, pc = self.bpw
        bus = self.bus_bits
        word = Signal.like(self.wr_word)
        sub = Signal(range(max(2, pc)))
        w_valid = Signal()
        beat_in_burst = Signal(BLOCK_BEAT_BITS + 4)
        fire = w_valid & self.m_axi_wready
        last_sub = (sub == pc - 1) if pc > 1 else Const(1)
        fetch = Signal()
        m.d.comb += [
            fetch.eq(go | (fire & last_sub & ~(self.m_axi_wlast & wq.last_burst))),
            self.c_rd_en.eq(fetch), self.c_rd_addr.eq(Mux(go, self.wr_word, word)),
            self.m_axi_wvalid.eq(w_valid), self.w_beat.eq(fire),
            self.m_axi_wlast.eq(beat_in_burst + 1 == wq.len_beats),
        ]
        if pc == 1:
            m.d.comb += self.m_axi_wdata.eq(self.c_rd_data)
        else:
            pieces = [self.c_rd_data[i * bus:(i + 1) * bus] for i in range(pc)]
            from amaranth.hdl import Array

            m.d.comb += self.m_axi_wdata.eq(Array(pieces)[sub])
        c_beats = Signal(BLOCK_BEAT_BITS + 3)
        m.d.comb += c_beats.eq(self.wr_block_words * pc)
        with m.If(go):
            m.d.sync += [busy.eq(1), aw_active.eq(1), w_active.eq(1), bursts_out.eq(0), sub.eq(0),
                         beat_in_burst.eq(0), word.eq(self.wr_word + 1),
                         w_valid.eq(1),
                         aw.load(self.wr_addr, c_beats, self.wr_blocks),
                         wq.load(self.wr_addr, c_beats, self.wr_blocks)]
        with m.If(fetch & ~go):
            m.d.sync += word.eq(word + 1)
        aw_fire = aw_active & self.m_axi_awready
        with m.If(aw_fire):
            with m.If(aw.last_burst):
                m.d.sync += aw_active.eq(0)
            with m.Else():
                m.d.sync += aw.step()
        b_fire = self.m_axi_bvalid & busy
        m.d.sync += bursts_out.eq(bursts_out + aw_fire - b_fire)
        with m.If(fire):
            if pc > 1:
                m.d.sync += sub.eq(Mux(last_sub, 0, sub + 1))
            with m.If(self.m_axi_wlast):
                m.d.sync += beat_in_burst.eq(0)
                with m.If(wq.last_burst):
                    m.d.sync += [w_active.eq(0), w_valid.eq(0)]
                with m.Else():
                    m.d.sync += wq.step()
            with m.Else():
                m.d.sync += beat_in_burst.eq(beat_in_burst + 1)
        last = Signal()
        m.d.comb += [last.eq(b_fire & ~aw_active & ~w_active & (bursts_out == 1)), self.wr_last.eq(last)]
        with m.If(last):
            m.d.sync += busy.eq(0)
