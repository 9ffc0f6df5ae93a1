"""The memory system's DMA: an AXI4 master that moves buffer words between DRAM and the buffers.

One read command moves up to two *ranges* (the A blocks into the input buffer, then the B blocks
into the weight buffer); one write command moves one range (C blocks out of the output buffer).
A range is ``blocks`` contiguous blocks of ``block_beats`` beats each, starting at a bus-aligned
byte address, written to / read from consecutive buffer words from ``word``.

* Bursts: INCR, at most 256 beats, never crossing 4 KiB, one per block piece; read addresses are
  issued one per cycle, back to back, ahead of the data (the memory returns data in order).
* Two read commands at once (``tileplan.DMA_READ_SLOTS``): a command is accepted into a free slot
  (``rd_ready``); the address side walks the commands in order, the next one's first burst right after
  the last one's, so a load's address and latency hide behind the previous load's data; the data side
  takes their beats in the same order and ends each command with ``rd_last``. ``m_axi_aruser`` marks a
  command's first burst (the testbench memory paces each command's data from its start; other slaves
  may ignore it).
* Words and beats: a buffer word narrower than the bus travels alone in one beat (low bits); a
  wider word takes ``beats_per_word`` consecutive beats, low part first.
* Reads and writes at once: the read side (``rd_*``) and the write side (``wr_*``) are independent
  machines on AXI's independent channels; the layer's sequencers keep a command queue for each
  (:mod:`codesign.hdl.layer`). The memory shares its bandwidth between them (the testbench's
  ``axi_mem_model.v``: write data first, read data in the cycles writes leave).
* Timing alone (published in :mod:`codesign.sim.tileplan`): a command accepted in cycle ``d``
  (``rd_go``/``wr_go`` high) is held in registers and drives its first address in ``d + 2`` (a read
  command, when the address side has no earlier command's bursts left). The read
  command ends with the edge that accepts its last data beat (``rd_last`` high in that cycle); the
  write command with the edge that accepts its last write response (``wr_last``). With a memory whose first beat
  comes ``latency`` cycles after the address and whose channel moves ``bw`` bytes a cycle, that
  is ``DMA_READ_OVERHEAD_CYCLES + latency + ceil(bytes / bw)`` cycles from ``d`` for a read and
  ``DMA_WRITE_OVERHEAD_CYCLES + latency + ceil(bytes / bw)`` for a write.
"""

from __future__ import annotations

from typing import Any

from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal, Value, signed
from amaranth.lib import fifo, wiring
from amaranth.lib.wiring import In, Out

from codesign.sim.tileplan import DMA_READ_SLOTS, REQUANT_STAGES

#: the AXI address ports' width (``m_axi_araddr``, ``m_axi_awaddr``): 32 bits whatever the config; the DMA's
#: addresses are the config's ``dram_addr_bits`` (``DmaEngine(addr_bits=)``) and the bits above them are zero
AXI_ADDR_BITS = 32
LEN_BITS = 8  # AXI4 arlen/awlen
BLOCK_BEAT_BITS = 20  # words (and beats) of one block
BLOCK_COUNT_BITS = 16
#: bits of the requantization shift the write-back uses (entry bits 48.. of a table entry): shifts up to 63
#: (codesign.workloads.intarith.MAX_SHIFT is 40)
SHIFT_BITS = 6


def requantize_lane(acc, entry, zero_point, clamp_lo, clamp_hi, out_bits: int, bounds=None, stage=None,
                    m: Module | None = None, name: str = "rq"):
    """One lane of the write-back (:func:`codesign.workloads.intarith.requantize` on ``acc + bias``):
    ``acc`` the accumulator (signed), ``entry`` its 56-bit table entry (bias 31..0, mult 47..32, shift
    from bit 48), the zero point and the clamps signed, each within ``out_bits + 1`` bits two's
    complement (``regs.SIGNED_FIELDS``: the descriptor's registers hold no more, and the host refuses
    more). Returns the low ``out_bits`` bits of the clamped value.

    The shift's low :data:`SHIFT_BITS` bits (the host refuses larger shifts: ``hdl.host.Requant``).
    Rounding half up as a shift by one less, an increment and a halving: ``(p + 2**(s-1)) >> s ==
    ((2p >> s) + 1) >> 1`` for every ``s >= 0`` (``s = 0``: ``(2p + 1) >> 1 = p``), so there is no
    ``2**(s-1)`` term and no adder wider than the product. The clamps compare the rounded value ``t``
    with ``clamp_lo - zero_point`` and ``clamp_hi - zero_point`` (``bounds``: the lanes share them,
    :func:`requantize_bounds`), so ``t + zero_point`` is only added at the output's width.

    Only a window of the shifted product is built. The bounds lie within ``+-(2**(out_bits + 1) - 1)``, so
    the shifter makes the low ``out_bits + 3`` bits of ``h = 2p >> s`` (its cone, the shift's bits taken from
    the top), and a flag says ``h`` lies outside that window: a bit of ``2p`` at or above ``out_bits + 2 +
    s`` differs from its sign (a suffix OR of the differing bits, the one at ``s`` chosen). Outside, ``t =
    (h + 1) >> 1`` is at least ``2**(out_bits + 1)`` or at most ``-2**(out_bits + 1)``, beyond both
    bounds, so the product's sign alone clamps; inside, ``t`` and the compares are ``out_bits + 3`` bits,
    not 51.

    ``stage(value, name)`` (None: combinational) registers the :data:`REQUANT_STAGES` cuts of the
    write-back's pipeline: the sum ``acc + bias``, the product, the shifted window, the result; each
    cut is one carry chain or one multiplier deep (:class:`DmaEngine`). With ``m``, the shifter's levels
    and the suffix OR are named signals of ``m`` (``name`` their prefix): one node each in a simulator,
    where the nested expressions would copy each level's inputs into it."""
    if stage is None:
        def stage(v, _name):
            return v

    def wire(value, label: str):
        if m is None:
            return value
        sig = Signal(Value.cast(value).shape(), name=f"{name}_{label}")
        m.d.comb += sig.eq(value)
        return sig
    lo_rel, hi_rel = requantize_bounds(zero_point, clamp_lo, clamp_hi) if bounds is None else bounds
    bias, mult, shift = entry[0:32].as_signed(), entry[32:48], entry[48:48 + SHIFT_BITS]
    total = stage(acc + bias, "sum")
    mult, shift = stage(mult, "mult"), stage(shift, "shift")
    prod = stage(total * mult, "prod")
    shift = stage(shift, "shift_p")
    x = Cat(Const(0, 1), prod).as_signed()  # 2p
    hb = out_bits + 3  # the window of h = 2p >> s
    top = len(x) - 1  # x's sign bit
    # h lies outside the window when a bit of x at or above hb - 1 + s differs from x's sign: the OR of the
    # differing bits from each position up (a suffix OR, no carry chain), the one at hb - 1 + s chosen
    diff = [x[i] ^ x[top] for i in range(hb - 1, top)]
    above_or = [Const(0, 1)] * (len(diff) + 1)
    for i in reversed(range(len(diff))):
        above_or[i] = diff[i] | above_or[i + 1]
        if i % 8 == 0:
            above_or[i] = wire(above_or[i], f"or{i}")
    suffix = wire(Cat(*above_or), "suffix_or")
    outside = Array([suffix[i] for i in range(len(above_or))]
                    + [Const(0, 1)] * max(0, (1 << len(shift)) - len(above_or)))[shift]
    # the window, a barrel shifter taking the shift's bits from the top: after bit k only the low
    # hb + 2**k - 1 bits are still needed (129 two-way choices for 8-bit outputs, not 6 x 51)
    v = x.as_signed()
    for k in reversed(range(len(shift))):
        d, n = 1 << k, hb + (1 << k) - 1
        ext = Cat(v, v[-1].replicate(max(0, n + d - len(v))))  # sign-extended as far as the shift reads
        v = wire(Mux(shift[k], ext[d:d + n], ext[:n]), f"sh{k}").as_signed()
    window = stage(Cat(v[:hb], outside, x[top]), "shifted")
    hw, outside, neg = window[:hb].as_signed(), window[hb], window[hb + 1]
    t = (hw + 1) >> 1
    y = (t[:out_bits] + zero_point[:out_bits])[:out_bits]
    below = Mux(outside, neg, t < lo_rel)
    above = Mux(outside, ~neg, t > hi_rel)
    return stage(Mux(below, clamp_lo[:out_bits], Mux(above, clamp_hi[:out_bits], y)), "out")


def requantize_bounds(zero_point, clamp_lo, clamp_hi):
    """``(clamp_lo - zero_point, clamp_hi - zero_point)``: what :func:`requantize_lane` compares with."""
    return clamp_lo - zero_point, clamp_hi - zero_point


def axi_master_members(data_bits: int, addr_bits: int = AXI_ADDR_BITS) -> dict[str, wiring.Member]:
    """AXI4 master ports (``m_axi_*``), the signals this DMA drives and reads."""
    strb = max(1, data_bits // 8)
    return {
        "m_axi_araddr": Out(addr_bits), "m_axi_arlen": Out(LEN_BITS), "m_axi_arsize": Out(3),
        "m_axi_arburst": Out(2), "m_axi_arvalid": Out(1), "m_axi_arready": In(1), "m_axi_aruser": Out(1),
        "m_axi_rdata": In(data_bits), "m_axi_rresp": In(2), "m_axi_rlast": In(1),
        "m_axi_rvalid": In(1), "m_axi_rready": Out(1),
        "m_axi_awaddr": Out(addr_bits), "m_axi_awlen": Out(LEN_BITS), "m_axi_awsize": Out(3),
        "m_axi_awburst": Out(2), "m_axi_awvalid": Out(1), "m_axi_awready": In(1),
        "m_axi_wdata": Out(data_bits), "m_axi_wstrb": Out(strb), "m_axi_wlast": Out(1),
        "m_axi_wvalid": Out(1), "m_axi_wready": In(1),
        "m_axi_bresp": In(2), "m_axi_bvalid": In(1), "m_axi_bready": Out(1),
    }


class _Bursts:
    """Walks a range as bursts: ``addr``, ``len_beats`` of the current burst, ``step()`` to the next.

    The walk is a recurrence (the next address is this one plus this burst's length, which the 4 KiB
    boundary ahead of this address limits), so it is kept one carry chain deep a cycle: the beats to the
    next 4 KiB boundary (``to4k``) are a register, the next block's start (``nxt``) is kept a block ahead,
    and the next state is one of three computed side by side: the burst ends its block (the next block
    from ``nxt``), it ends at the boundary (``to4k`` beats: the next address is aligned), or it is 256
    beats long (AXI4's limit). The comparisons only choose. The bursts are those of
    ``min(left, 256, to4k)`` beats, as before (the walk took 16.4 ns on ECP5 with the boundary worked out
    of the address and the length into the adder in one cycle). On a bus of 16 bytes or more a page is at
    most 256 beats, and the 256-beat case is not built. Addresses are ``addr_bits`` wide (at least 13: a 4 KiB
    page and more) and wrap there."""

    def __init__(self, m: Module, name: str, bus_bytes: int, addr_bits: int):
        assert addr_bits > 12, "a 4 KiB page and more"
        self.shift = (bus_bytes - 1).bit_length()
        self.page = 4096 >> self.shift  # beats of a 4 KiB page
        self.addr = Signal(addr_bits, name=f"{name}_addr")
        self.left = Signal(BLOCK_BEAT_BITS + 4, name=f"{name}_left")  # beats left in the block
        self.blocks = Signal(BLOCK_COUNT_BITS, name=f"{name}_blocks")  # blocks after this one
        self.block_beats = Signal(BLOCK_BEAT_BITS + 3, name=f"{name}_block_beats")
        self.step_bytes = Signal(addr_bits, name=f"{name}_block_step")  # from a block's start to the next's
        self.nxt = Signal(addr_bits, name=f"{name}_next_block")  # the next block's first byte
        self.to4k = Signal(13, name=f"{name}_to4k")  # beats from addr to the next 4 KiB boundary
        self.ends = Signal(name=f"{name}_ends_block")  # this burst is the block's last
        self.len_beats = Signal(BLOCK_BEAT_BITS + 4, name=f"{name}_len")
        # a bus of 16 bytes or more has pages of at most 256 beats: no burst is cut at 256 beats but at the page
        self.cut_at_256 = self.page > 256
        if self.cut_at_256:
            self.at_page = Signal(name=f"{name}_at_page")  # else: it is 256 beats long
            m.d.comb += [
                self.ends.eq((self.left <= 256) & (self.left <= self.to4k)),
                self.at_page.eq(self.to4k <= 256),
                self.len_beats.eq(Mux(self.ends, self.left, Mux(self.at_page, self.to4k, 256))),
            ]
        else:
            m.d.comb += [self.ends.eq(self.left <= self.to4k),
                         self.len_beats.eq(Mux(self.ends, self.left, self.to4k))]
        self.last_burst = self.ends & (self.blocks == 0)

    def _to4k(self, addr) -> Value:
        return self.page - ((addr & 4095) >> self.shift)

    def load(self, addr, block_beats, blocks, stride=0) -> list:
        """Start a range of ``blocks`` (>= 1) blocks, ``stride`` bytes apart (0: one after the other).
        ``addr``, ``block_beats`` and ``stride`` should come from registers: the next block's start is
        one adder from them."""
        return self.load_prepared(addr, block_beats, blocks, *self.prepare(addr, block_beats, stride))

    def prepare(self, addr, block_beats, stride) -> tuple[Value, Value, Value]:
        """``(step, next block, to4k)`` of a range, for :meth:`load_prepared` (computed ahead, into registers)."""
        step = Mux(stride != 0, stride, block_beats << self.shift)
        return step, addr + step, self._to4k(addr)

    def load_prepared(self, addr, block_beats, blocks, step, nxt, to4k) -> list:
        """:meth:`load` from the values of :meth:`prepare` held in registers: no adder in front of the walk."""
        return [self.addr.eq(addr), self.left.eq(block_beats), self.blocks.eq(blocks - 1),
                self.block_beats.eq(block_beats), self.step_bytes.eq(step), self.nxt.eq(nxt), self.to4k.eq(to4k)]

    def step(self) -> list:
        page_end = self.addr + (self.to4k << self.shift)
        if self.cut_at_256:
            full = self.addr + (256 << self.shift)
            addr, to4k = Mux(self.at_page, page_end, full), Mux(self.at_page, self.page, self.to4k - 256)
            left = Mux(self.at_page, self.left - self.to4k, self.left - 256)
        else:
            addr, to4k, left = page_end, Const(self.page), self.left - self.to4k
        return [
            self.addr.eq(Mux(self.ends, self.nxt, addr)),
            self.to4k.eq(Mux(self.ends, self._to4k(self.nxt), to4k)),
            self.left.eq(Mux(self.ends, self.block_beats, left)),
            self.blocks.eq(Mux(self.ends, self.blocks - 1, self.blocks)),
            self.nxt.eq(Mux(self.ends, self.nxt + self.step_bytes, self.nxt)),
        ]


class DmaEngine(wiring.Component):
    """AXI4 master + buffer ports. Widths: ``bus_bytes`` data, buffer words of the plan.

    ``q_word_bits`` > 0 builds the requantizing write-back: a read command may start with a Q
    range (the per-channel table, into the Q buffer), and each output word is requantized on its
    way out (:mod:`codesign.workloads.intarith`'s arithmetic) to ``out_bits`` lanes. With
    ``q_per_lane`` lane ``i`` takes entry ``i`` of its table word (WS, OS); without, every lane takes
    the word's one entry (IS: the word is one output channel's row of ``C^T``).

    DRAM byte addresses and strides (the commands' fields, the held commands, the burst walks) are
    ``addr_bits`` wide (the config's ``dram_addr_bits``); the AXI address ports stay :data:`AXI_ADDR_BITS`
    wide, the bits above ``addr_bits`` zero.
    """

    def __init__(self, *, bus_bytes: int, addr_bits: int, a_word_bits: int, b_word_bits: int, c_word_bits: int,
                 a_addr_bits: int, b_addr_bits: int, c_addr_bits: int, bpw: tuple[int, int, int],
                 q_word_bits: int = 0, q_addr_bits: int = 1, cols: int = 1, acc_bits: int = 32, out_bits: int = 0,
                 out_signed: bool = True, q_per_lane: bool = True, residual: bool = False, y_addr_bits: int = 1,
                 post_latency: int = 0, pool: bool = False, resident: bool = False):
        self.bus_bytes = bus_bytes
        self.bus_bits = bus_bytes * 8
        self.addr_bits = addr_bits
        self.word_bits = (a_word_bits, b_word_bits, c_word_bits)
        self.bpw = bpw
        self.requant = q_word_bits > 0
        # table words: an entry per lane (WS, OS: a lane per output channel), or one entry for the
        # whole word (IS: an output word is a row of C^T, one channel in every lane)
        self.q_per_lane = q_per_lane
        self.q_word_bits = q_word_bits
        self.cols, self.acc_bits, self.out_bits, self.out_signed = cols, acc_bits, out_bits, out_signed
        self.out_word_bits = cols * out_bits if self.requant else c_word_bits
        from codesign.sim.tileplan import beats_per_word

        self.bpw_q = beats_per_word(q_word_bits, bus_bytes) if self.requant else 1
        self.bpw_out = beats_per_word(self.out_word_bits, bus_bytes)
        # the residual add in the write-back (requantize only): a Y range on the read side, and each
        # requantized word through an outside pipeline of ``post_latency`` stages (the vector unit)
        self.residual = residual and self.requant
        self.post_latency = post_latency
        # a max pool in the write-back (requantize only, codesign.sim.poolfuse): a write command is a pass
        # (``wr_pass``: the requantized words to the pool stage, ``pool_*``, not the bus) or reads its words
        # from the stage's rows (``wr_pool_src``: through the cuts unchanged)
        self.pool = pool and self.requant
        # residency (requantize only, codesign.sim.residency): a write command is resident (``wr_res``): its
        # words go into the input buffer (``res_wr_*``) from word ``wr_addr`` on (blocks ``wr_stride`` words
        # apart, 0: contiguous), not to the bus
        self.resident = resident and self.requant
        self.a_addr_bits = a_addr_bits
        yb = self.out_word_bits if self.residual else 1
        pb = self.out_word_bits if self.pool else 1
        # the zero point and clamps: out_bits + 1 bits two's complement (regs.SIGNED_FIELDS)
        zb = out_bits + 1 if self.requant else 1
        members = {
            **axi_master_members(self.bus_bits),
            # read command: Q range (requantize), A range, B range (blocks = 0: no range)
            "rd_go": In(1), "rd_busy": Out(1), "rd_ready": Out(1), "rd_last": Out(1),
            "rd_a_addr": In(addr_bits), "rd_a_block_words": In(BLOCK_BEAT_BITS),
            "rd_a_blocks": In(BLOCK_COUNT_BITS), "rd_a_word": In(a_addr_bits),
            "rd_a_stride": In(addr_bits),  # bytes from an A block to the next (0: contiguous)
            "rd_b_addr": In(addr_bits), "rd_b_block_words": In(BLOCK_BEAT_BITS),
            "rd_b_blocks": In(BLOCK_COUNT_BITS), "rd_b_word": In(b_addr_bits),
            "rd_q_addr": In(addr_bits), "rd_q_words": In(BLOCK_BEAT_BITS),  # one block of q_words (0: none)
            # write command: C range
            "wr_go": In(1), "wr_busy": Out(1), "wr_last": Out(1),
            "wr_addr": In(addr_bits), "wr_block_words": In(BLOCK_BEAT_BITS), "wr_blocks": In(BLOCK_COUNT_BITS),
            "wr_word": In(c_addr_bits), "wr_stride": In(addr_bits),  # bytes between C blocks (0: contiguous)
            # requantize: the table word of the block's first column chunk, words per chunk run
            # (WS: the tile's M; OS: rows), chunks per block, table words per group, output params
            "wr_q": In(BLOCK_BEAT_BITS), "wr_run": In(BLOCK_BEAT_BITS), "wr_nf": In(BLOCK_BEAT_BITS),
            "q_nf": In(BLOCK_BEAT_BITS), "zero_point": In(signed(zb)), "clamp_lo": In(signed(zb)),
            "clamp_hi": In(signed(zb)),
            # buffer ports
            "a_wr_addr": Out(a_addr_bits), "a_wr_data": Out(a_word_bits), "a_wr_en": Out(1),
            "b_wr_addr": Out(b_addr_bits), "b_wr_data": Out(b_word_bits), "b_wr_en": Out(1),
            "c_rd_addr": Out(c_addr_bits), "c_rd_en": Out(1), "c_rd_data": In(c_word_bits),
            "q_wr_addr": Out(q_addr_bits), "q_wr_data": Out(max(1, q_word_bits)), "q_wr_en": Out(1),
            "q_rd_addr": Out(q_addr_bits), "q_rd_en": Out(1), "q_rd_data": In(max(1, q_word_bits)),
            # beats moved this cycle (for the byte counters)
            "r_beat": Out(1), "w_beat": Out(1),
            # residual add: the read command's Y range (after B) into the residual buffer; the write
            # command's residual words from ``wr_y_word`` on, through the post pipeline when ``wr_post``
            "rd_y_addr": In(addr_bits), "rd_y_block_words": In(BLOCK_BEAT_BITS), "rd_y_blocks": In(BLOCK_COUNT_BITS),
            "rd_y_word": In(y_addr_bits), "rd_y_stride": In(addr_bits),
            "y_wr_addr": Out(y_addr_bits), "y_wr_data": Out(yb), "y_wr_en": Out(1),
            "y_rd_addr": Out(y_addr_bits), "y_rd_en": Out(1), "y_rd_data": In(yb),
            "wr_post": In(1), "wr_y_word": In(y_addr_bits),
            "post_valid": Out(1), "post_x": Out(yb), "post_y": Out(yb),
            "post_out_valid": In(1), "post_out_data": In(yb),
            "wr_pass": In(1), "wr_pool_src": In(1), "pool_start": Out(1), "pool_valid": Out(1),
            "pool_data": Out(pb), "pool_rd_data": In(pb),
            "wr_res": In(1), "res_wr_addr": Out(a_addr_bits), "res_wr_data": Out(self.out_word_bits if self.resident
                                                                                else 1), "res_wr_en": Out(1),
        }
        super().__init__(members)

    # -- published timing (codesign.sim.tileplan's functions: one definition, not a copy) ------------
    @staticmethod
    def read_cycles(nbytes: int, config: Any) -> int:
        """Cycles of a read command of ``nbytes`` from the sequencer's decision to its last beat."""
        from codesign.sim.tileplan import dma_read_cycles

        return dma_read_cycles(nbytes, config)

    @staticmethod
    def write_cycles(nbytes: int, config: Any) -> int:
        """Cycles of a write command of ``nbytes`` from the decision to its last response."""
        from codesign.sim.tileplan import dma_write_cycles

        return dma_write_cycles(nbytes, config)

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
        pa, pb, _pc = self.bpw
        wa, wb, _wc = self.word_bits
        # the ranges of a command, in order: (name, beats per word, word bits, write port)
        ranges = [("a", pa, wa, (self.a_wr_addr, self.a_wr_data, self.a_wr_en), self.rd_a_word),
                  ("b", pb, wb, (self.b_wr_addr, self.b_wr_data, self.b_wr_en), self.rd_b_word)]
        starts = [(self.rd_a_addr, self.rd_a_block_words * pa, self.rd_a_blocks, self.rd_a_stride),
                  (self.rd_b_addr, self.rd_b_block_words * pb, self.rd_b_blocks, Const(0, 1))]
        if self.residual:
            ranges.append(("y", self.bpw_out, self.out_word_bits, (self.y_wr_addr, self.y_wr_data, self.y_wr_en),
                           self.rd_y_word))
            starts.append((self.rd_y_addr, self.rd_y_block_words * self.bpw_out, self.rd_y_blocks, self.rd_y_stride))
        if self.requant:
            ranges.insert(0, ("q", self.bpw_q, self.q_word_bits, (self.q_wr_addr, self.q_wr_data, self.q_wr_en),
                              Const(0, 1)))
            starts.insert(0, (self.rd_q_addr, self.rd_q_words * self.bpw_q, Mux(self.rd_q_words != 0, 1, 0),
                              Const(0, 1)))
        nr = len(ranges)
        slots = DMA_READ_SLOTS
        # the commands held (two: tileplan.DMA_READ_SLOTS), each its ranges' fields and first buffer words
        addr = [[Signal(self.addr_bits, name=f"rs{s}_rg{i}_addr") for i in range(nr)] for s in range(slots)]
        beats = [[Signal(BLOCK_BEAT_BITS + 3, name=f"rs{s}_rg{i}_beats") for i in range(nr)] for s in range(slots)]
        blocks = [[Signal(BLOCK_COUNT_BITS, name=f"rs{s}_rg{i}_blocks") for i in range(nr)] for s in range(slots)]
        # the burst walk's start of each range, worked out as the command is accepted (the step between its
        # blocks, its second block's address, the beats to its first 4 KiB boundary) and whether it moves
        # anything: a walk moves from a range (or a command) to the next by choosing registers, no adder
        steps = [[Signal(self.addr_bits, name=f"rs{s}_rg{i}_step") for i in range(nr)] for s in range(slots)]
        nxts = [[Signal(self.addr_bits, name=f"rs{s}_rg{i}_next") for i in range(nr)] for s in range(slots)]
        to4ks = [[Signal(13, name=f"rs{s}_rg{i}_to4k") for i in range(nr)] for s in range(slots)]
        nonempty = [[Signal(name=f"rs{s}_rg{i}_any") for i in range(nr)] for s in range(slots)]
        words0 = [[Signal(r[3][0].shape(), name=f"rs{s}_r{r[0]}_word0") for r in ranges] for s in range(slots)]
        valid = Signal(slots, name="rd_held")  # a command is in the slot: accepted, its data not all in
        ar_pend = Signal(slots, name="rd_ar_pend")  # ... and its addresses not started
        r_pend = Signal(slots, name="rd_r_pend")  # ... and its data not started
        wp = Signal(name="rd_wp")  # the slot the next command goes into
        m.d.comb += [self.rd_busy.eq(valid.any()), self.rd_ready.eq(~Array(valid)[wp])]
        any_range = Cat(*[st[2] != 0 for st in starts]).any()
        # a command is accepted into a free slot's registers (its ranges, and each range's first buffer word);
        # its addresses start in the next cycle at the earliest, from them: its fields come from the layer's
        # tile iterator, whose arithmetic otherwise ran through the choice of the first range into the burst
        # walk in the same cycle (the 4x4 WS top's critical path on ECP5 once the store command was
        # registered: 16.7 ns). One cycle of ``DMA_READ_OVERHEAD_CYCLES``.
        accept = self.rd_go & self.rd_ready & any_range
        ar = _Bursts(m, "ar", self.bus_bytes, self.addr_bits)
        with m.If(accept):
            m.d.sync += wp.eq(~wp)
            for s in range(slots):
                with m.If(wp == s):
                    m.d.sync += [valid[s].eq(1), ar_pend[s].eq(1), r_pend[s].eq(1)]
                    for i, (a, bt, bl, sd) in enumerate(starts):
                        step, nxt, to4k = ar.prepare(a, bt, sd)
                        m.d.sync += [addr[s][i].eq(a), beats[s][i].eq(bt), blocks[s][i].eq(bl), steps[s][i].eq(step),
                                     nxts[s][i].eq(nxt), to4ks[s][i].eq(to4k), nonempty[s][i].eq(bl != 0),
                                     words0[s][i].eq(ranges[i][4])]

        def pick(regs, slot):
            """The field of ``regs`` (one per slot) of ``slot``."""
            return Mux(slot, regs[1], regs[0])

        def first_after(slot, idx: int):
            """(exists, index) of the first non-empty range after ``idx`` (-1: from the start) of the command in
            ``slot``."""
            found = Const(0, 1)
            which = Const(0, 2)
            for j in reversed(range(idx + 1, nr)):
                nz = pick([nonempty[s][j] for s in range(slots)], slot)
                which = Mux(nz, j, which)
                found = found | nz
            return found, which

        def range_of(slot, j: int):
            return [pick([f[s][j] for s in range(slots)], slot) for f in (addr, beats, blocks, steps, nxts, to4ks)]

        def enter(slot, which, candidates, load) -> None:
            """Enter range ``which`` (one of ``candidates``) of the command in ``slot``: ``load(*its fields)``."""
            with m.Switch(which):
                for j in candidates:
                    with m.Case(j):
                        m.d.sync += load(*range_of(slot, j))

        def clear(bits, slot) -> None:
            """Clear ``slot``'s bit of ``bits``."""
            for s in range(slots):
                with m.If(slot == s):
                    m.d.sync += bits[s].eq(0)

        # address side: walks the commands in order, the next one's first burst right after the last one's
        ar_active = Signal()
        ar_idx = Signal(2)
        ap = Signal(name="rd_ap")  # the slot walked (or walked next)
        ar_first = Signal(name="ar_first")  # this burst is its command's first (aruser: the memory model's pacing)
        m.d.comb += [self.m_axi_arvalid.eq(ar_active), self.m_axi_araddr.eq(ar.addr),
                     self.m_axi_arlen.eq(ar.len_beats - 1), self.m_axi_aruser.eq(ar_first)]
        ar_fire = ar_active & self.m_axi_arready
        with m.If(ar_fire):
            m.d.sync += ar_first.eq(0)
        ar_done = Signal()  # the walk's last burst goes out
        with m.If(ar_fire & ar.last_burst):
            with m.Switch(ar_idx):
                for j in range(nr):
                    with m.Case(j):
                        found, which = first_after(ap, j)
                        m.d.comb += ar_done.eq(~found)
                        with m.If(found):
                            m.d.sync += ar_idx.eq(which)
                            enter(ap, which, range(j + 1, nr), ar.load_prepared)
        with m.Elif(ar_fire):
            m.d.sync += ar.step()
        nxt_ap = Mux(ar_done, ~ap, ap)
        with m.If(ar_done):
            m.d.sync += [ap.eq(~ap), ar_active.eq(0)]
        with m.If((~ar_active | ar_done) & Array(ar_pend)[nxt_ap]):  # the next command's walk starts
            found, which = first_after(nxt_ap, -1)
            m.d.sync += [ar_active.eq(1), ar_idx.eq(which), ar_first.eq(1)]
            clear(ar_pend, nxt_ap)
            enter(nxt_ap, which, range(nr), ar.load_prepared)
        # data side: the commands' data in the same order (the memory answers in order)
        r_active = Signal(name="rd_r_active")
        rp = Signal(name="rd_rp")  # the slot whose data comes (or comes next)
        fire = self.m_axi_rvalid & r_active
        m.d.comb += self.r_beat.eq(fire)
        r_idx = Signal(2)
        r_left = Signal(BLOCK_BEAT_BITS + 4)
        r_blocks = Signal(BLOCK_COUNT_BITS)
        last = Signal()  # the command's last beat

        def r_load(_addr, bt, bl, *_walk) -> list:
            return [r_left.eq(bt), r_blocks.eq(bl - 1)]

        with m.If(fire):
            with m.If(r_left != 1):
                m.d.sync += r_left.eq(r_left - 1)
            with m.Elif(r_blocks != 0):
                with m.Switch(r_idx):
                    for j in range(nr):
                        with m.Case(j):
                            m.d.sync += r_left.eq(pick([beats[s][j] for s in range(slots)], rp))
                m.d.sync += r_blocks.eq(r_blocks - 1)
            with m.Else():
                with m.Switch(r_idx):
                    for j in range(nr):
                        with m.Case(j):
                            found, which = first_after(rp, j)
                            m.d.comb += last.eq(~found)
                            m.d.sync += r_idx.eq(which)
                            enter(rp, which, range(j + 1, nr), r_load)
        m.d.comb += self.rd_last.eq(last)
        nxt_rp = Mux(last, ~rp, rp)
        with m.If(last):
            m.d.sync += [rp.eq(~rp), r_active.eq(0)]
            clear(valid, rp)
        words = []
        for j, (name, bpw, bits, port, _word0) in enumerate(ranges):
            word = Signal(port[0].shape(), name=f"r{name}_word")
            words.append(word)
            self._unpack(m, fire & (r_idx == j), bpw, bits, word, *port, f"r{name}")
        r_start = (~r_active | last) & Array(r_pend)[nxt_rp]  # the next command's data side starts
        with m.If(r_start):
            found, which = first_after(nxt_rp, -1)
            m.d.sync += [r_active.eq(1), r_idx.eq(which)]
            clear(r_pend, nxt_rp)
            enter(nxt_rp, which, range(nr), r_load)
            for j, word in enumerate(words):
                m.d.sync += word.eq(pick([words0[s][j] for s in range(slots)], nxt_rp))

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
        aw = _Bursts(m, "aw", self.bus_bytes, self.addr_bits)
        wq = _Bursts(m, "wq", self.bus_bytes, self.addr_bits)  # the same burst walk, for wlast
        busy = Signal()
        aw_active = Signal()
        w_active = Signal()
        bursts_out = Signal(BLOCK_BEAT_BITS + BLOCK_COUNT_BITS)  # issued, response not yet seen
        m.d.comb += [
            self.wr_busy.eq(busy), self.m_axi_awvalid.eq(aw_active), self.m_axi_awaddr.eq(aw.addr),
            self.m_axi_awlen.eq(aw.len_beats - 1),
        ]
        # a command is accepted into registers, and starts in the next cycle (``go``) from them: its fields come
        # from the layer's store queue (LUT RAM read asynchronously), which otherwise fed the first fetch's
        # table-index adders and the burst walk in the same cycle (the 4x4 WS top's critical path on ECP5 once
        # the write-back was cut: 17.9 ns). One cycle of ``DMA_WRITE_OVERHEAD_CYCLES``.
        accept = self.wr_go & ~busy & (self.wr_blocks != 0)
        go = Signal(name="wr_start")
        m.d.sync += go.eq(accept)
        cmd = {n: Signal.like(getattr(self, f"wr_{n}"), name=f"wr_cmd_{n}")
               for n in ("addr", "block_words", "blocks", "stride", "post", "pass", "pool_src", "res")}  # at accept
        with m.If(accept):
            m.d.sync += [busy.eq(1), *(cmd[n].eq(getattr(self, f"wr_{n}")) for n in cmd)]
        pc = self.bpw_out
        bus = self.bus_bits
        sub = Signal(range(max(2, pc)))
        w_valid = Signal()  # the data register holds a word
        fire = w_valid & self.m_axi_wready
        last_sub = (sub == pc - 1) if pc > 1 else Const(1)
        word_out = Signal(self.out_word_bits)  # the word on the data channel
        pieces = [word_out[i * bus:(i + 1) * bus] for i in range(pc)]
        from amaranth.hdl import Array

        m.d.comb += [self.m_axi_wvalid.eq(w_valid), self.w_beat.eq(fire),
                     self.m_axi_wdata.eq(Array(pieces)[sub] if pc > 1 else pieces[0])]
        c_beats = Signal(BLOCK_BEAT_BITS + 3)
        m.d.comb += c_beats.eq(cmd["block_words"] * pc)
        beat_in_burst = Signal(BLOCK_BEAT_BITS + 4)
        m.d.comb += self.m_axi_wlast.eq(beat_in_burst + 1 == wq.len_beats)
        pass_on = cmd["pass"] if self.pool else Const(0, 1)  # the command is a pass: no bus
        res_on = cmd["res"] if self.resident else Const(0, 1)  # the command is resident: no bus
        m.d.comb += self.pool_start.eq(accept & self.wr_pass if self.pool else 0)
        with m.If(go):
            m.d.sync += [aw_active.eq(~pass_on & ~res_on), w_active.eq(~pass_on & ~res_on), bursts_out.eq(0), sub.eq(0),
                         beat_in_burst.eq(0), aw.load(cmd["addr"], c_beats, cmd["blocks"], cmd["stride"]),
                         wq.load(cmd["addr"], c_beats, cmd["blocks"], cmd["stride"])]
        # the word fetch: output-buffer word (and its table word) in the order of the blocks
        f_word = Signal.like(self.wr_word)
        f_left = Signal(BLOCK_BEAT_BITS + 1)  # words left to fetch in the block
        f_blocks = Signal(BLOCK_COUNT_BITS)  # blocks after this one
        f_more = Signal()  # words left to fetch
        f_end = Signal(name="wb_block_end")  # this fetch is its block's last word (f_left == 1)
        bw_one = Signal()  # blocks of one word
        free = Signal()  # the data register is free, or frees this cycle
        m.d.comb += free.eq(~w_valid | (fire & last_sub))
        # The fetch state is loaded when the command is accepted, so the first fetch (at ``go``, when the
        # data register is free and nothing is in flight) is an ordinary one: no choice between the command's
        # fields and the registers runs into the table index's compares and adds (the 4x4 WS top's critical
        # path on ECP5 once the PEs' multipliers were registered: ``go`` through that choice, the chunk
        # compares and the index add, 12.7 ns).
        pass_last_sig = Signal(name="pass_last")  # a pass's last word is in the pool stage's rows
        if not self.requant:
            fetch = Signal()
            m.d.comb += [fetch.eq(f_more & free & busy),
                         self.c_rd_en.eq(fetch), self.c_rd_addr.eq(f_word),
                         word_out.eq(self.c_rd_data)]
            # one stage: the buffer's read register is the data register
            with m.If(fetch):
                m.d.sync += w_valid.eq(1)
            with m.Elif(fire & last_sub):
                m.d.sync += w_valid.eq(0)
        else:
            fetch = Signal()
            s1 = Signal()  # the buffers' read registers hold a word (and its table word)
            take = Signal()  # stage 1 -> the data register (or the post pipeline)
            credit = Signal(name="wb_credit")  # the pipeline's queue has room for every word in flight
            m.d.comb += take.eq(s1 & (credit | pass_on))  # (a pass's words go to the stage, which never waits)
            m.d.comb += fetch.eq(f_more & busy & (~s1 | take))
            q_idx, q_blk = Signal(BLOCK_BEAT_BITS), Signal(BLOCK_BEAT_BITS)
            run, nf = Signal(BLOCK_BEAT_BITS), Signal(BLOCK_BEAT_BITS)
            # the positions' ends are flags kept a fetch ahead (``f_end``: this fetch is its block's last
            # word; ``r_end``: its chunk's run's last; ``n_end``: the block's last chunk), each set from a
            # compare of registers with the end minus one, so ``fetch`` only chooses among values computed
            # beside it (the 4x4 WS top's critical path on ECP5 once the DSP blocks took their registers:
            # ``s1`` through ``fetch`` and the chunk compares into the table index, 14.2 ns)
            run_end_m1, nf_end_m1 = Signal(BLOCK_BEAT_BITS), Signal(BLOCK_BEAT_BITS)
            run_end0, nf_end0 = Signal(), Signal()  # a run of one word, a block of one chunk
            r_end, n_end = Signal(name="wb_run_end"), Signal(name="wb_chunk_end")
            m.d.comb += [self.c_rd_en.eq(fetch), self.c_rd_addr.eq(f_word),
                         self.q_rd_en.eq(fetch), self.q_rd_addr.eq(q_idx)]
            with m.If(accept):
                m.d.sync += [run_end_m1.eq(self.wr_run - 2), nf_end_m1.eq(self.wr_nf - 2),
                             run_end0.eq(self.wr_run == 1), nf_end0.eq(self.wr_nf == 1),
                             r_end.eq(self.wr_run == 1), n_end.eq(self.wr_nf == 1),
                             q_blk.eq(self.wr_q), q_idx.eq(self.wr_q), run.eq(0), nf.eq(0)]
            # the table word of the next fetch: chunk nf of the block's group; a chunk's words are a
            # run of run_len consecutive buffer words (WS: the tile's M rows; OS: the array's rows)
            with m.If(fetch):
                m.d.sync += s1.eq(1)
                with m.If(f_end):  # the block ends: the next group's table words
                    m.d.sync += [run.eq(0), nf.eq(0), q_blk.eq(q_blk + self.q_nf), q_idx.eq(q_blk + self.q_nf),
                                 r_end.eq(run_end0), n_end.eq(nf_end0)]
                with m.Elif(r_end):  # the chunk ends: the next chunk's table word (or the first again)
                    m.d.sync += [run.eq(0), r_end.eq(run_end0)]
                    with m.If(n_end):
                        m.d.sync += [nf.eq(0), q_idx.eq(q_blk), n_end.eq(nf_end0)]
                    with m.Else():
                        m.d.sync += [nf.eq(nf + 1), q_idx.eq(q_idx + 1), n_end.eq(nf == nf_end_m1)]
                with m.Else():
                    m.d.sync += [run.eq(run + 1), r_end.eq(run == run_end_m1)]
            with m.Elif(take):
                m.d.sync += s1.eq(0)
            # the write-back arithmetic (codesign.workloads.intarith.requantize), per lane, in REQUANT_STAGES
            # cuts that move every cycle (no stalls: the queue after them absorbs a stalled bus)
            lanes = []
            accb, ob = self.acc_bits, self.out_bits
            zp, lo, hi = self.zero_point, self.clamp_lo, self.clamp_hi
            bounds = [Signal(signed(ob + 2), name=f"requant_{n}_rel") for n in ("lo", "hi")]  # shared by the lanes
            # registered: the descriptor's fields are steady long before the first word leaves
            m.d.sync += [b.eq(v) for b, v in zip(bounds, requantize_bounds(zp, lo, hi), strict=True)]
            for i in range(self.cols):
                acc = self.c_rd_data[i * accb:(i + 1) * accb].as_signed()
                e = i if self.q_per_lane else 0
                entry = self.q_rd_data[e * 56:(e + 1) * 56]
                lanes.append(requantize_lane(acc, entry, zp, lo, hi, ob, bounds, stage=_stager(m, f"rq{i}"), m=m,
                                             name=f"rq{i}"))
            valid = Signal(REQUANT_STAGES, name="rq_valid")  # a word in each cut
            m.d.sync += valid.eq(Cat(take, valid[:-1]))
            requantized = Cat(*lanes)
            if self.pool:
                # a pass ends when its last word is in the stage's rows: the stage's latency after the cuts
                from codesign.hdl.engines.pool import LATENCY_CYCLES as POOL_LATENCY

                s1_last = Signal(name="wb_s1_last")  # stage 1 holds the command's last word
                with m.If(fetch):
                    m.d.sync += s1_last.eq(f_end & (f_blocks == 0))
                tail = Signal(REQUANT_STAGES + POOL_LATENCY, name="pass_tail")
                m.d.sync += tail.eq(Cat(take & s1_last & pass_on, tail[:-1]))
                m.d.comb += pass_last_sig.eq(tail[-1])
                m.d.comb += [self.pool_valid.eq(valid[-1] & pass_on), self.pool_data.eq(requantized)]
                # a word of the stage's rows, delayed as an accumulator through the cuts
                requantized = Mux(cmd["pool_src"], _delayed(m, self.pool_rd_data, REQUANT_STAGES, "rq_p"), requantized)
            res_last = self._queue(m, cmd, go, accept, fetch, free, fire, last_sub, take & ~pass_on, credit,
                                   requantized, valid[-1] & ~pass_on, word_out, w_valid, res_on)
        with m.If(accept):  # before the first fetch: block 0's first word, the blocks after it
            m.d.sync += [f_word.eq(self.wr_word), f_left.eq(self.wr_block_words), f_blocks.eq(self.wr_blocks - 1),
                         f_more.eq(1), f_end.eq(self.wr_block_words == 1), bw_one.eq(self.wr_block_words == 1)]
        with m.Elif(fetch):
            m.d.sync += f_word.eq(f_word + 1)
            with m.If(f_end):
                m.d.sync += [f_left.eq(cmd["block_words"]), f_blocks.eq(f_blocks - 1), f_end.eq(bw_one)]
                with m.If(f_blocks == 0):
                    m.d.sync += f_more.eq(0)
            with m.Else():
                m.d.sync += [f_left.eq(f_left - 1), f_end.eq(f_left == 2)]
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
                    m.d.sync += w_active.eq(0)
                with m.Else():
                    m.d.sync += wq.step()
            with m.Else():
                m.d.sync += beat_in_burst.eq(beat_in_burst + 1)
        last = Signal()
        if not self.requant:
            res_last = Const(0, 1)
        m.d.comb += [last.eq((b_fire & ~aw_active & ~w_active & (bursts_out == 1)) | pass_last_sig | res_last),
                     self.wr_last.eq(last)]
        with m.If(last):
            m.d.sync += busy.eq(0)

    def _queue(self, m: Module, cmd: dict, go, accept, fetch, free, fire, last_sub, take, credit, requantized,
               valid, word_out, w_valid, res_on) -> Value:
        """After the arithmetic: each requantized word (``valid`` as it leaves the last cut) goes into a
        FIFO the data register takes from; with a residual add (or a table activation) built, the
        command's words first go, each with its residual word (read from the residual buffer beside its
        accumulator and delayed with it), through the outside pipeline (``post_*``: the vector unit,
        ``post_latency`` stages, no stalls). A word enters the arithmetic only when the FIFO has room for
        every word in flight (credits), so nothing is dropped when the bus stalls; at one word a cycle the
        queue never runs dry. A command's first beat comes ``REQUANT_STAGES + 1`` cycles after its first
        word's stage 1 (``codesign.sim.tileplan.REQUANT_WRITE_CYCLES``), and ``post_latency`` more with the
        vector unit (``codesign.sim.tileplan.WRITEBACK_ADD_CYCLES``). A resident command's words leave the
        queue a word a cycle into the input buffer instead (``res_wr_*``); returns its last word's cycle."""
        post_lat = self.post_latency if self.residual else 0
        depth = REQUANT_STAGES + post_lat + 3
        m.submodules.wb_q = q = fifo.SyncFIFO(width=self.out_word_bits, depth=depth)
        # the words in the queue and in flight to it (the FIFO's level plus the arithmetic's and the post
        # pipeline's words): one register, so the credit is a compare of it, not an add in front of ``fetch``
        occupied = Signal(range(depth + 2), name="wb_occupied")
        post = Signal(name="post_on")  # the command in flight goes through the vector unit
        if self.residual:
            with m.If(go):
                m.d.sync += post.eq(cmd["post"])
            y_word = Signal.like(self.wr_y_word)
            m.d.comb += [self.y_rd_en.eq(fetch), self.y_rd_addr.eq(y_word)]
            with m.If(accept):
                m.d.sync += y_word.eq(self.wr_y_word)
            with m.Elif(fetch):
                m.d.sync += y_word.eq(y_word + 1)
            y_late = _delayed(m, self.y_rd_data, REQUANT_STAGES, "rq_y")  # the residual word, as its accumulator
            m.d.comb += [self.post_valid.eq(valid & post), self.post_x.eq(requantized), self.post_y.eq(y_late)]
            enq, enq_data = Mux(post, self.post_out_valid, valid), Mux(post, self.post_out_data, requantized)
        else:
            enq, enq_data = valid, requantized
        pop = q.r_rdy & (free | res_on)
        m.d.comb += [credit.eq(occupied < depth), q.w_en.eq(enq), q.w_data.eq(enq_data), q.r_en.eq(pop)]
        m.d.sync += occupied.eq(occupied + take - pop)
        with m.If(pop & ~res_on):
            m.d.sync += [word_out.eq(q.r_data), w_valid.eq(1)]
        with m.Elif(fire & last_sub):
            m.d.sync += w_valid.eq(0)
        if not self.resident:
            return Const(0, 1)
        # a resident command: each word into the input buffer at its word address, the blocks' starts
        # wr_stride words apart (0: one contiguous range)
        r_addr = Signal(self.a_addr_bits, name="res_addr")
        r_blk = Signal(self.a_addr_bits, name="res_block")
        r_left = Signal(BLOCK_BEAT_BITS + 1, name="res_left")  # words left in the block
        r_blocks = Signal(BLOCK_COUNT_BITS, name="res_blocks")  # blocks after this one
        r_fire = pop & res_on
        block_end = r_left == 1
        m.d.comb += [self.res_wr_en.eq(r_fire), self.res_wr_addr.eq(r_addr), self.res_wr_data.eq(q.r_data)]
        with m.If(accept):
            m.d.sync += [r_addr.eq(self.wr_addr), r_blk.eq(self.wr_addr), r_left.eq(self.wr_block_words),
                         r_blocks.eq(self.wr_blocks - 1)]
        with m.Elif(r_fire):
            with m.If(block_end):
                nxt = Mux(cmd["stride"] == 0, r_addr + 1, r_blk + cmd["stride"])
                m.d.sync += [r_addr.eq(nxt), r_blk.eq(nxt), r_left.eq(cmd["block_words"]), r_blocks.eq(r_blocks - 1)]
            with m.Else():
                m.d.sync += [r_addr.eq(r_addr + 1), r_left.eq(r_left - 1)]
        return r_fire & block_end & (r_blocks == 0)


def _delayed(m: Module, value: Signal, stages: int, prefix: str) -> Signal:
    """``value`` through ``stages`` registers (``<prefix>0`` ...): a word kept beside its accumulator's cuts."""
    for j in range(stages):
        reg = Signal.like(value, name=f"{prefix}{j}")
        m.d.sync += reg.eq(value)
        value = reg
    return value


def _stager(m: Module, prefix: str):
    """A ``stage(value, name)`` for :func:`requantize_lane` that registers each cut in ``m``."""
    def stage(value, name: str):
        reg = Signal(Value.cast(value).shape(), name=f"{prefix}_{name}")
        m.d.sync += reg.eq(value)
        return reg
    return stage
