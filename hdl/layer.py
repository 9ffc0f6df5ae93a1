"""The whole-layer accelerator: AXI4-Lite registers, tile sequencers, DMA (AXI4 master), buffers, array.

One ``start`` (CTRL bit 0) runs a layer's whole tile program from DRAM to DRAM: the DMA loads
tile ``i + 1`` while tile ``i`` computes (double-buffered) and stores tile ``i - 1`` at the same time
(a read queue and a write queue on AXI's two channels), partial sums of K tiles stay in the output
buffer, results are written back requantized to the activations' bits (or as accumulators). The
host writes the descriptor (:mod:`codesign.hdl.control.regs`, values from
:meth:`codesign.sim.tileplan.TilePlan.descriptor`) and
lays out A (im2col'd), B and C as the plan says; :mod:`codesign.hdl.host` does both.

Ports: ``s_axil_*`` (AXI4-Lite slave, 32-bit), ``m_axi_*`` (AXI4 master, ``bus_bytes`` wide,
32-bit addresses: the bits above the config's ``dram_addr_bits`` are zero), ``irq`` (high while ``done``).
Inside, DRAM byte addresses and strides are ``dram_addr_bits`` wide and GEMM dimensions and tile counts
``dim_bits`` (:func:`codesign.hdl.control.regs.field_bits`).

Cycles from the edge that accepts the start write to the edge that raises ``done`` are the
simulator's layer cycles (``codesign.sim.engine``) for the same config and layer; the counters
give cycles, stall cycles (the array idle), DRAM bytes read/written and enabled MACs.
"""

from __future__ import annotations

from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal, unsigned
from amaranth.lib import fifo, memory, wiring
from amaranth.lib.wiring import In, Out

from codesign.hdl.control import regs
from codesign.hdl.control.fold import Windows, fold_controller
from codesign.hdl.control.regs import COUNTERS, DESCRIPTOR_FIELDS, ERROR_BITS, MAP_VERSION, REGISTERS, REGS_ADDR_BITS
from codesign.hdl.control.sequencer import TileIterator
from codesign.hdl.engines.array import SystolicArray
from codesign.hdl.engines.vector import LATENCY_CYCLES as VEC_LATENCY
from codesign.hdl.memory.dma import DmaEngine, axi_master_members
from codesign.hdl.plan import HardwarePlan, core_config
from codesign.sim.config import AcceleratorConfig, Dataflow
from codesign.sim.dwfuse import DWS_DRAIN_CYCLES
from codesign.sim.dwplan import DW_DIM_BITS, DW_WIDTH_MAX, MODE_MAX, b_words
from codesign.sim.tileplan import QUANT_ENTRY_BITS, act_table_words, beats_per_word, bus_bytes, q_table_words


def _addr_bits(depth: int) -> int:
    return max(1, (depth - 1).bit_length())


def layer_top_name(config: AcceleratorConfig) -> str:
    from codesign.hdl.engines.gemm import top_name

    return top_name(config).replace("codesign_", "codesign_layer_", 1) + f"_bus{bus_bytes(config)}" + (
        "" if config.double_buffered else "_sb") + ("_dw" if has_depthwise_engine(config) else "")


def axil_members() -> dict[str, wiring.Member]:
    a = REGS_ADDR_BITS
    return {
        "s_axil_awaddr": In(a), "s_axil_awvalid": In(1), "s_axil_awready": Out(1),
        "s_axil_wdata": In(32), "s_axil_wstrb": In(4), "s_axil_wvalid": In(1), "s_axil_wready": Out(1),
        "s_axil_bresp": Out(2), "s_axil_bvalid": Out(1), "s_axil_bready": In(1),
        "s_axil_araddr": In(a), "s_axil_arvalid": In(1), "s_axil_arready": Out(1),
        "s_axil_rdata": Out(32), "s_axil_rresp": Out(2), "s_axil_rvalid": Out(1), "s_axil_rready": In(1),
    }


def axil_write_handshake(m: Module, port: object):  # type: ignore[no-untyped-def]
    """The AXI4-Lite slave's handshake on ``port``'s ``s_axil_*`` members (:func:`axil_members`): a write is
    taken when address and data are both valid (and no response is pending), answered OKAY the next cycle;
    a read is accepted when no read data is pending. Returns the write-this-cycle signal."""
    p = port
    wr = p.s_axil_awvalid & p.s_axil_wvalid & ~p.s_axil_bvalid  # type: ignore[attr-defined]
    m.d.comb += [p.s_axil_awready.eq(wr), p.s_axil_wready.eq(wr), p.s_axil_bresp.eq(0),  # type: ignore[attr-defined]
                 p.s_axil_rresp.eq(0), p.s_axil_arready.eq(~p.s_axil_rvalid)]  # type: ignore[attr-defined]
    with m.If(wr):
        m.d.sync += p.s_axil_bvalid.eq(1)  # type: ignore[attr-defined]
    with m.Elif(p.s_axil_bready):  # type: ignore[attr-defined]
        m.d.sync += p.s_axil_bvalid.eq(0)  # type: ignore[attr-defined]
    return wr


def has_depthwise_engine(config: AcceleratorConfig) -> bool:
    """Whether the whole-layer top for ``config`` builds the depthwise engine."""
    from codesign.sim.dwplan import design_reason

    return config.depthwise_on_engine and not design_reason(config)


def has_vector_unit(config: AcceleratorConfig) -> bool:
    """Whether the whole-layer top for ``config`` builds the vector unit (residual adds)."""
    from codesign.sim.vecplan import design_reason

    return not design_reason(config)


def has_pool_stage(config: AcceleratorConfig) -> bool:
    """Whether the whole-layer top for ``config`` builds the pool stage in the write-back (``sim.poolfuse``)."""
    from codesign.sim.poolfuse import design_reason

    return not design_reason(config)


def has_residency(config: AcceleratorConfig) -> bool:
    """Whether the whole-layer top for ``config`` builds residency (``sim.residency``: the write-back writes
    a resident output into the input buffer's other slot)."""
    from codesign.sim.residency import design_reason

    return not design_reason(config)


def pool_stage_words(config: AcceleratorConfig) -> int:
    """Words of one row of pooled maxima in the pool stage: half the output buffer's address space."""
    from codesign.hdl.plan import HardwarePlan, core_config

    return 1 << (_addr_bits(HardwarePlan(core_config(config)).out_depth) - 1)


def has_dw_stage(config: AcceleratorConfig) -> bool:
    """Whether the whole-layer top for ``config`` builds the depthwise stage in the write-back (``sim.dwfuse``:
    the depthwise engine fed by the write-back's pass)."""
    from codesign.sim.dwfuse import design_reason

    return has_depthwise_engine(config) and not design_reason(config)


def has_conv_windows(config: AcceleratorConfig) -> bool:
    """Whether the whole-layer top for ``config`` makes convolution windows on chip (``sim.convplan``)."""
    from codesign.sim.convplan import design_reason

    return not design_reason(config)


def program_members(config: AcceleratorConfig) -> dict[str, wiring.Member]:
    """The network sequencer's hook on the layer (``LayerAccelerator(program_port=True)``): a register
    write port (``ext_wr_*``, a full-word write at a register offset, as one through AXI4-Lite), a descriptor
    beat port (``ext_ld_*``: beat ``ext_ld_beat`` of a record's descriptor, ``bus_bytes / 4`` fields of
    ``DESCRIPTOR_FIELDS`` in its 32-bit lanes, all written at once, as full-word writes) and the readable state
    (STATUS bits, ERROR, the counters concatenated in ``regs.COUNTERS`` order, 64 bits each)."""
    from codesign.sim.program import record_layout

    bus = bus_bytes(config)
    beats = record_layout(bus).descriptor_beats
    return {"ext_wr_en": In(1), "ext_wr_addr": In(REGS_ADDR_BITS), "ext_wr_data": In(32),
            "ext_ld_en": In(1), "ext_ld_beat": In(range(max(2, beats))), "ext_ld_data": In(bus * 8),
            "ext_status": Out(3), "ext_error": Out(len(ERROR_BITS)), "ext_counters": Out(64 * len(COUNTERS))}


def layer_members(config: AcceleratorConfig) -> dict[str, wiring.Member]:
    return {**axil_members(), **axi_master_members(bus_bytes(config) * 8), "irq": Out(1)}


def _product_exceeds(a, b, limit: int):
    """``a * b > limit`` for unsigned ``a``, ``b`` and a constant ``limit``, multiplying only ``limit``'s
    bits of each: a factor above ``limit`` exceeds it unless the other is 0 (a 16 x 24-bit product into the
    start's checks was the 4x4 WS top's critical path on ECP5, through a MULT18X18D and its adders)."""
    n = max(1, limit.bit_length())
    nz_a, nz_b = a.any(), b.any()
    return ((a[n:].any() & nz_b) | (b[n:].any() & nz_a) | (a[:n] * b[:n] > limit))


def _not_sign_copies(word, w: int):
    """Bits ``w - 1`` and up of a 32-bit ``word`` are not all equal: the word is not a ``w``-bit two's
    complement value."""
    upper = word[w - 1:32]
    return upper.any() & ~upper.all()


class LayerAccelerator(wiring.Component):
    """The whole-layer accelerator for one :class:`AcceleratorConfig` (WS, OS, or IS on the WS core)."""

    def __init__(self, config: AcceleratorConfig, *, program_port: bool = False):
        HardwarePlan(config)  # validates
        self.is_ = config.dataflow is Dataflow.IS
        # the core (WS for IS, with the operands' roles swapped: see codesign.hdl.plan.core_config)
        self.plan = HardwarePlan(core_config(config))
        self.config = config
        self.bus_bytes = bus_bytes(config)
        self.slots = 2 if config.double_buffered else 1
        # DRAM byte addresses and strides, GEMM dimensions and tile counts (the descriptor's fields, the tile
        # iterator, the queues, the DMA)
        self.addr_bits, self.dim_bits = config.dram_addr_bits, config.dim_bits
        p = self.plan
        # the buffers holding A, B and C (for IS, A^T sits in the core's stationary buffer)
        depths = (p.act_depth, p.weight_depth, p.out_depth)
        bits = (p.act_word_bits, p.weight_word_bits, p.out_word_bits)
        order = (1, 0, 2) if self.is_ else (0, 1, 2)
        self.slot_words = tuple(depths[i] // self.slots for i in order)
        self.bpw = tuple(beats_per_word(bits[i], self.bus_bytes) for i in order)
        self.word_bits = tuple(bits[i] for i in order)
        self.depths = tuple(depths[i] for i in order)
        # requantizing write-back: a table of one word per column chunk of output channels (WS, OS),
        # of one word per output channel (IS: see TilePlan.q_entries_per_word)
        self.requant = config.requantize
        self.q_depth = q_table_words(config)
        self.q_word_bits = (QUANT_ENTRY_BITS if self.is_ else config.cols * QUANT_ENTRY_BITS) if self.requant else 0
        # the depthwise engine beside the array (depthwise: engine on a square WS array: codesign.sim.dwplan)
        self.depthwise = has_depthwise_engine(config)
        self.dw_kmax = config.depthwise_kernel
        self.vector = has_vector_unit(config)
        self.windows = has_conv_windows(config)
        # a residual add in the write-back (codesign.sim.fusion): the vector unit's ADD on the way out
        self.residual = self.vector and self.requant
        # a table activation in the write-back (flags bit 10): the vector unit's TABLE on the way out, its
        # table read with the requantization table and written into the unit an entry a cycle
        self.act_table_words = act_table_words(config) if self.residual else 0
        # a max pool in the write-back (flags bit 11, codesign.sim.poolfuse): the pool stage after the
        # requantization, two rows of pooled maxima of pool_words words each
        self.pool = has_pool_stage(config)
        self.pool_words = pool_stage_words(config) if self.pool else 0
        # residency (flags bits 12..14, codesign.sim.residency): the write-back's second target, the input buffer
        self.resident = has_residency(config)  # (requantizing WS designs only: sim.residency.design_reason)
        # a depthwise convolution in the write-back (flags bit 15, codesign.sim.dwfuse): the engine fed by the
        # write-back's pass, its output rows in a buffer of their own, stored through the write-back
        self.dws = has_dw_stage(config)
        # the network sequencer's hook (codesign.hdl.control.network): register writes beside the AXI4-Lite
        # port's, a descriptor beat's fields at once, and the readable state as ports
        self.program_port = program_port
        super().__init__({**layer_members(config), **(program_members(config) if program_port else {})})

    # -- published timing (codesign.sim.tileplan: what the simulator uses) -----------------------------
    def tile_compute_cycles(self, groups: int, m: int, n: int, k: int) -> int:
        """Cycles the compute sequencer spends on a tile of ``groups`` on-chip GEMMs."""
        from codesign.sim.tileplan import tile_compute_cycles

        return tile_compute_cycles(self.config, groups, m, n, k)

    def dma_read_cycles(self, nbytes: int) -> int:
        return DmaEngine.read_cycles(nbytes, self.config)

    def dma_write_cycles(self, nbytes: int) -> int:
        return DmaEngine.write_cycles(nbytes, self.config)

    def elaborate(self, platform):
        p = self.plan
        m = Module()
        words_bits = regs.words_bits(self.config)
        assert words_bits == max(_addr_bits(d) for d in self.depths) + 1

        # -- buffers and array ------------------------------------------------------------------
        m.submodules.array = array = SystolicArray(p)
        m.submodules.act_mem = act_mem = memory.Memory(shape=unsigned(p.act_word_bits), depth=p.act_depth, init=[])
        m.submodules.w_mem = w_mem = memory.Memory(shape=unsigned(p.weight_word_bits), depth=p.weight_depth, init=[])
        # the buffers are SRAM macros in an ASIC and block RAM on an FPGA: a shallow, wide output
        # buffer (8x8: 32 words of 256 bits) would otherwise go to LUT RAM, whose write wiring
        # congests ECP5's router (the 8x8 whole-layer top did not route with it)
        ram = {"ram_style": "block"}
        m.submodules.out_mem = out_mem = memory.Memory(shape=unsigned(p.out_word_bits), depth=p.out_depth, init=[],
                                                       attrs=ram)
        core_act_wr, core_w_wr = act_mem.write_port(), w_mem.write_port()
        # the DMA's A range fills the buffer holding A (the core's stationary one for IS)
        a_wr, b_wr = (core_w_wr, core_act_wr) if self.is_ else (core_act_wr, core_w_wr)
        act_rd, w_rd = act_mem.read_port(), w_mem.read_port()
        out_wr = out_mem.write_port()
        out_rmw = out_mem.read_port(transparent_for=(out_wr,))
        out_dma = out_mem.read_port()
        if self.requant:
            m.submodules.q_mem = q_mem = memory.Memory(shape=unsigned(self.q_word_bits), depth=self.q_depth, init=[])
            q_wr, q_rd = q_mem.write_port(), q_mem.read_port()
        # the residual buffer: 2B output slots of the residual's words (a tile's residual is loaded with
        # its loads and read by its store; loads run at most 2B - 1 tiles ahead of the stores)
        y_slots = 2 * self.slots
        y_depth = y_slots * self.slot_words[2]
        if self.residual:
            m.submodules.y_mem = y_mem = memory.Memory(shape=unsigned(self.config.cols * self.config.act_bits),
                                                       depth=y_depth, init=[])
            y_wr, y_rd = y_mem.write_port(), y_mem.read_port()

        if self.dws:  # the depthwise stage's output rows (accumulators), stored through the write-back
            from codesign.sim.dwfuse import row_words

            self.dws_depth = row_words(self.config)
            m.submodules.dws_mem = dws_mem = memory.Memory(shape=unsigned(p.out_word_bits), depth=self.dws_depth,
                                                           init=[], attrs=ram)
            dws_wr, dws_rd = dws_mem.write_port(), dws_mem.read_port()

        # -- registers ----------------------------------------------------------------------------
        # each field at its width in this design (regs.field_bits): the fields of engines the design does
        # not build (and the requantization fields without requantize) are constants 0; a narrower field
        # has a flag: bits above its width were written (ERROR too_wide)
        widths = regs.field_bits(self.config)
        if widths["q_nf"] > words_bits + 8:  # the tile iterator's table index
            raise ValueError(f"requantization table of {self.q_depth} words needs a wider table index")
        desc = {name: Const(0, 32) if widths[name] == 0 else Signal(widths[name], name=f"reg_{name}")
                for name, _ in DESCRIPTOR_FIELDS}
        wide = {name: Signal(name=f"wide_{name}") for name, b in widths.items() if 0 < b < 32}
        counters = {name: Signal(regs.COUNTER_BITS, name=f"cnt_{name}") for name, _ in COUNTERS}
        busy, done, error = Signal(), Signal(), Signal()
        error_code = Signal(len(ERROR_BITS))
        start_req = Signal()  # a write of CTRL bit 0 this cycle
        m.d.comb += self.irq.eq(done)
        if self.program_port:
            m.d.comb += [self.ext_status.eq(Cat(busy, done, error)), self.ext_error.eq(error_code),
                         # each counter zero-extended to its 64-bit word of the record
                         self.ext_counters.eq(Cat(*[Cat(c, Const(0, 64 - len(c))) for c in counters.values()]))]
        self._axil(m, desc, wide, counters, Cat(busy, done, error), error_code, start_req)

        # -- descriptor checks (combinational, sampled at start) ---------------------------------
        d = desc
        bus_mask = self.bus_bytes - 1
        sa, sb, sc = self.slot_words
        checks = {
            "zero_size": Cat(*[d[f] == 0 for f in ("m", "n", "k", "groups", "mt", "nt", "kt", "gt")]).any(),
            "tile_too_large": (d["mt"] > d["m"]) | (d["nt"] > d["n"]) | (d["kt"] > d["k"]) | (d["gt"] > d["groups"]),
            "unaligned": Cat(*[(d[f] & bus_mask) != 0 for f in (
                "a_base", "b_base", "a_stride_g", "a_stride_m", "a_stride_k", "b_stride_g", "b_stride_n",
                "b_stride_k")]).any() | (~d["flags"][14] & Cat(*[(d[f] & bus_mask) != 0 for f in (
                    "c_base", "c_stride_g", "c_stride_m", "c_stride_n")]).any()),
            "gt_not_power_of_two": (d["gt"] & (d["gt"] - 1)) != 0,
        }
        dim_bits = self.dim_bits
        lg = Signal(range(dim_bits), name="log2_gt")  # gt is a power of two: gt * w is w << lg
        # its one set bit's index, each bit of it an OR of gt's bits (not a 24-deep priority chain: it was
        # on the critical path of the 4x4 WS top on ECP5 without requantize); a gt that is not a power of two
        # is refused (gt_not_power_of_two)
        m.d.comb += lg.eq(Cat(*[Cat(*[d["gt"][i] for i in range(dim_bits) if i >> b & 1]).any()
                                for b in range(len(lg))]))
        for op, slot in zip("abc", (sa, sb, sc), strict=True):
            words = [d[f"{op}_words_{i}{j}"] for i in (0, 1) for j in (0, 1)]
            # words << lg > slot, as words > slot >> lg (the same for integers): no shifter, a table of constants
            checks[f"{op}_overflow"] = ((words[0] > Array([slot >> i for i in range(dim_bits)])[lg])
                                        | Cat(*[w > slot for w in words]).any())
        checks["q_overflow"] = (d["q_words"] > self.q_depth) if self.requant else Const(0, 1)
        win_mode = d["flags"][6]
        checks["a_overflow"] = checks["a_overflow"] | (win_mode & (d["cv_a_tile_words"] > sa))
        checks["unaligned"] = checks["unaligned"] | (win_mode & (((d["cv_a_block"] & bus_mask) != 0) | (
            ~d["flags"][14] & ((d["cv_c_block"] & bus_mask) != 0))))
        dw_mode = d["flags"][3]
        kernel_h, kernel_w, stride_h, stride_w = (d["dw_kernel"][i:i + 8] for i in (0, 8, 16, 24))
        pad_l, pad_r = d["dw_pad"][8:16], d["dw_pad"][24:32]
        dw_op = d["flags"][8:10]  # the engine's mode: 0 a depthwise convolution, 1 a max pool
        if self.depthwise:
            checks["dw_unsupported"] = (dw_mode & (
                (kernel_h > self.dw_kmax) | (kernel_w > self.dw_kmax) | (kernel_h == 0) | (kernel_w == 0)
                | (stride_h == 0) | (stride_w == 0) | (d["dw_in_w"] + pad_l + pad_r > DW_WIDTH_MAX) | (dw_op > 1))
                | (~dw_mode & (dw_op != 0)))
        else:
            checks["dw_unsupported"] = dw_mode | (dw_op != 0)
        vec_mode = d["flags"][4]
        checks["vec_unsupported"] = vec_mode & (dw_mode | Const(int(not self.vector), 1))
        checks["cv_unsupported"] = win_mode & (dw_mode | vec_mode | (d["gt"] != 1) | Const(int(not self.windows), 1)
                                               | (d["dw_kernel"][0:8] == 0) | (d["dw_kernel"][8:16] == 0)
                                               | (d["dw_kernel"][16:24] == 0) | (d["dw_kernel"][24:32] == 0))
        # planes out (a network program's GEMM feeding planes: codesign.hdl.host.restride_output): outside window
        # mode, a non-zero cv_c_block writes a WS GEMM's column chunks as planes cv_c_block apart, as window mode
        # writes them (one group a tile)
        planes_out = (win_mode | (d["cv_c_block"] != 0)) if self.windows else win_mode
        checks["cv_unsupported"] = checks["cv_unsupported"] | (planes_out & ~win_mode & (dw_mode | vec_mode
                                                                                         | (d["gt"] != 1)))
        checks["unaligned"] = checks["unaligned"] | (planes_out & ~d["flags"][14]
                                                     & ((d["cv_c_block"] & bus_mask) != 0))
        res_mode = d["flags"][7]
        checks["res_unsupported"] = res_mode & (dw_mode | vec_mode | Const(int(not self.residual), 1))
        checks["unaligned"] = checks["unaligned"] | (res_mode & ((d["res_base"] & bus_mask) != 0))
        # a table activation in the write-back (flags bit 10): the table is the last words of q_words
        act_mode = d["flags"][10] if self.residual else Const(0, 1)
        checks["act_unsupported"] = d["flags"][10] & (vec_mode | res_mode | Const(int(not self.residual), 1)
                                                      | (d["q_words"] < self.act_table_words))
        checks["too_wide"] = Cat(*wide.values()).any() if wide else Const(0, 1)
        # a max pool in the write-back (flags bit 11): tiles of one output row (mt = the convolution's width)
        # of every channel, one group, with planes out; its pooled row of every plane within the stage's rows
        pool_mode = d["flags"][11] if self.pool else Const(0, 1)
        pl_ow, pl_pw = d["pl_conv"][16:32], d["pl_out"][16:32]
        checks["pool_unsupported"] = d["flags"][11] & (
            Const(int(not self.pool), 1) | dw_mode | vec_mode | win_mode | res_mode | d["flags"][10]
            | (d["mt"] != pl_ow) | (d["nt"] != d["n"]) | (d["groups"] != 1) | (d["gt"] != 1) | ~planes_out
            | _product_exceeds(pl_pw, d["c_nf_0"], self.pool_words))
        # residency (flags bits 12..14): a resident output's C fields are input-buffer words, not bus-aligned bytes
        res_in, res_out = d["flags"][12], d["flags"][14]
        checks["resident_unsupported"] = ((res_in | res_out | d["flags"][13]) & Const(int(not self.resident), 1)) | (
            res_out & (vec_mode | res_mode | pool_mode)) | (res_in & vec_mode)
        if not self.resident:
            res_in, res_out = Const(0, 1), Const(0, 1)
        # a depthwise convolution in the write-back (flags bit 15): a 1x1 GEMM in tiles of one row of one plane
        dws_mode = d["flags"][15] if self.dws else Const(0, 1)
        dws_bad = dws_mode & (
            dw_mode | vec_mode | win_mode | res_mode | d["flags"][10] | d["flags"][11]
            | d["flags"][12] | d["flags"][13] | d["flags"][14] | ~d["flags"][2] | (d["mt"] != d["dw_in_w"])
            | (d["nt"] != Mux(d["n"] < self.config.cols, d["n"], self.config.cols)) | (d["kt"] != d["k"])
            | (d["k"] > self.config.rows) | (d["groups"] != 1) | (d["gt"] != 1) | (dw_op != 0)
            | (kernel_h > self.dw_kmax) | (kernel_w > self.dw_kmax) | (kernel_h == 0) | (kernel_w == 0)
            | (stride_h == 0) | (stride_w == 0) | (d["dw_in_w"] + pad_l + pad_r > DW_WIDTH_MAX))
        checks["dw_unsupported"] = checks["dw_unsupported"] | dws_bad
        code = Cat(*[checks[name] for name, _ in ERROR_BITS])
        # the checks' result is registered, and a start decides in the cycle after its CTRL write (in a
        # program, one of ``codesign.sim.program.START_CYCLES``): the checks' carry chains and the error code
        # are off the path into the launch's fan-out (the tile iterator's and the DMA's resets). The
        # descriptor never changes in the start's own cycle (one AXI4-Lite write a cycle; the network
        # sequencer starts the cycle after its last descriptor beat), so the registered code is the started
        # descriptor's.
        code_q = Signal.like(code, name="check_code")
        m.d.sync += code_q.eq(code)
        deciding = Signal()  # the cycle after an accepted start
        go = start_req & ~busy & ~deciding
        m.d.sync += deciding.eq(go)
        with m.If(go):  # a poller sees neither the last layer's done nor its error while this one decides
            m.d.sync += [done.eq(0), error.eq(0)]
        with m.If(deciding):
            m.d.sync += [error_code.eq(code_q), error.eq(code_q.any())]
            with m.If(~code_q.any()):
                m.d.sync += [busy.eq(1), *(c.eq(0) for c in counters.values())]
        launch = deciding & ~code_q.any()

        # -- tile iterator ------------------------------------------------------------------------
        m.submodules.tiles = it = TileIterator(slots=self.slots, words_bits=words_bits, dim_bits=dim_bits,
                                               addr_bits=self.addr_bits)
        for name in ("m", "n", "k", "groups", "mt", "nt", "kt", "gt", "a_base", "b_base", "c_base", "a_stride_g",
                     "a_stride_m", "a_stride_k", "b_stride_g", "b_stride_n", "b_stride_k", "c_stride_g", "c_stride_m",
                     "c_stride_n", *(f"{o}_words_{i}{j}" for o in "abc" for i in (0, 1) for j in (0, 1))):
            m.d.comb += getattr(it, name).eq(d[name])
        m.d.comb += [it.flags.eq(d["flags"]), it.res_in.eq(res_in), it.in_slot.eq(d["flags"][13]),
                     it.init.eq(launch), it.q_nf.eq(d["q_nf"]), it.a_skew.eq(d["dw_skew"]),
                     it.b_stride_m.eq(d["vec_b_stride_m"]),
                     it.q_stride_n.eq(d["q_stride_n"]), it.gt_log2.eq(lg)]

        # -- FIFOs between the DMA program and the compute sequencer ------------------------------
        comp_fields = [("gs", dim_bits), ("ms", dim_bits), ("ns", dim_bits), ("ks", dim_bits), ("first_k", 1),
                       ("a_slot", 1), ("b_slot", 1), ("c_slot", 1), ("a_words", words_bits),
                       ("b_words", words_bits), ("c_words", words_bits), ("first_m", 1), ("last_m", 1),
                       ("last_k", 1)]
        # a run is a tile's M (dim_bits) or a block's words (depthwise, vector: words_bits)
        run_bits = max(dim_bits, words_bits)
        store_fields = [("has", 1), ("addr", self.addr_bits), ("gs", dim_bits), ("c_words", words_bits),
                        ("c_slot", 1), ("q", words_bits + 8), ("run", run_bits), ("nf", dim_bits), ("y_slot", 2)]
        comp_w = sum(w for _, w in comp_fields)
        store_w = sum(w for _, w in store_fields)
        m.submodules.comp_q = comp_q = fifo.SyncFIFO(width=comp_w, depth=self.slots + 1)
        # stores lag loads by at most 2B tiles (L(j) waits for tile j - B's compute, which waits for
        # tile j - 2B's store)
        m.submodules.store_q = store_q = fifo.SyncFIFO(width=store_w, depth=2 * self.slots + 2)

        def unpack(word, fields):
            out, pos = {}, 0
            for name, w in fields:
                out[name] = word[pos:pos + w]
                pos += w
            return out

        # the tile being loaded goes into the compute queue when its load is issued; the compute sequencer
        # takes it once its load's data is in (``loaded``: loads done, not yet taken; at most the B slots)
        m.d.comb += comp_q.w_data.eq(Cat(*[getattr(it, name) for name, _ in comp_fields]))
        loaded = Signal(range(self.slots + 2), name="tiles_loaded")
        # a column chunk of the output is a run of M words (WS) or of the array's rows (OS); for IS
        # each word is its own channel (a run of one word; the block's N channels are its chunks)
        if self.is_:
            run = Const(1, run_bits)
        elif self.config.dataflow is Dataflow.WS:
            run = Mux(dw_mode | vec_mode, it.c_words, it.ms)  # depthwise, vector: a block is one chunk
        else:
            run = Const(self.config.rows, run_bits)
        chunks = Mux(it.ns == d["nt"], d["c_nf_0"], d["c_nf_1"])  # of this tile's columns
        # windows: the C blocks are the tile's column chunks (planes of the output), ms pixels each, a
        # plane apart in DRAM; the A blocks its ks input planes' bands, a plane apart
        c_blocks = Mux(planes_out, chunks, it.gs)[:dim_bits]
        c_block_words = Mux(planes_out, it.ms, it.c_words)[:words_bits]
        y_slot = Signal(2, name="y_slot")  # the residual slot of the tile being loaded: tiles mod 2B
        m.d.comb += store_q.w_data.eq(Cat(it.last_k, it.c_addr, c_blocks, c_block_words, it.c_slot,
                                          it.q_index[:words_bits + 8], run[:run_bits], chunks[:dim_bits], y_slot))
        head = unpack(store_q.r_data, store_fields)

        # -- DMA -------------------------------------------------------------------------------------
        m.submodules.dma = dma = DmaEngine(
            bus_bytes=self.bus_bytes, addr_bits=self.addr_bits, a_word_bits=self.word_bits[0],
            b_word_bits=self.word_bits[1], c_word_bits=self.word_bits[2], a_addr_bits=_addr_bits(self.depths[0]),
            b_addr_bits=_addr_bits(self.depths[1]), c_addr_bits=_addr_bits(self.depths[2]), bpw=self.bpw,
            q_word_bits=self.q_word_bits, q_addr_bits=_addr_bits(self.q_depth), cols=self.config.cols,
            acc_bits=p.acc_bits, out_bits=self.config.act_bits if self.requant else 0,
            out_signed=self.config.act_signed, q_per_lane=not self.is_, residual=self.residual,
            y_addr_bits=_addr_bits(y_depth), post_latency=VEC_LATENCY, pool=self.pool or self.dws,
            resident=self.resident)
        q_prologue = Signal()  # the read command in flight is the requantization table
        # the depthwise stage (flags bit 15): the write FSM's state of it, wired to the engine further down
        dws_src = Signal(name="dws_src")  # the write command in flight stores depthwise rows (from dws_mem)
        dws_rgo = Signal(name="dws_rgo")  # a row store's command this cycle
        dws_nout = Signal(words_bits, name="dws_nout")  # depthwise outputs the pass wrote (rows x out width)
        # DRAM address of the next depthwise output row (planes in order)
        dws_ptr = Signal(self.addr_bits, name="dws_ptr")
        dws_qread = Signal(name="dws_qread")  # the weight loader reads the table buffer this cycle
        dws_qw = Signal(range(max(2, self.q_depth + 1)), name="dws_qw")  # its table word
        dws_ctl = {n: Signal(name=f"dws_{n}") for n in ("emit", "rebase", "start", "w_clear", "w_en", "out_en",
                                                         "chan_en")}
        k_dw = self.dw_kmax
        dws_ctl["w_addr"] = Signal(range(k_dw * k_dw), name="dws_w_addr")
        dws_ctl["w_data"] = Signal(self.config.cols * self.config.weight_bits, name="dws_w_data")
        dws_ctl["chan"] = Signal(16, name="dws_chan")
        # the activation table's load (TLOAD): entry t_i, at position t_p of table word t_w, t_per a word
        t_entries, t_per = 1 << self.config.act_bits, max(1, self.q_word_bits // self.config.act_bits)
        t_i = Signal(range(t_entries + 1), name="t_i")
        t_w = Signal(range(max(2, self.q_depth)), name="t_w")
        t_p = Signal(range(t_per + 1), name="t_p")
        t_read = Signal(name="t_read")  # TLOAD reads the table word holding entry t_i
        t_wr = {"en": Signal(name="t_wr_en"), "addr": Signal(self.config.act_bits, name="t_wr_addr"),
                "pos": Signal.like(t_p, name="t_wr_pos")}
        m.d.sync += [t_wr["en"].eq(t_read), t_wr["addr"].eq(t_i), t_wr["pos"].eq(t_p)]
        if self.requant:
            m.d.comb += [q_wr.addr.eq(dma.q_wr_addr), q_wr.data.eq(dma.q_wr_data), q_wr.en.eq(dma.q_wr_en),
                         q_rd.addr.eq(Mux(dws_qread, dws_qw, Mux(t_read, t_w, dma.q_rd_addr))),
                         q_rd.en.eq(dma.q_rd_en | t_read | dws_qread),
                         dma.q_rd_data.eq(q_rd.data)]
        for name, member in axi_master_members(self.bus_bytes * 8).items():
            port, dport = getattr(self, name), getattr(dma, name)
            m.d.comb += port.eq(dport) if member.flow is Out else dport.eq(port)
        if self.residual:  # the residual: the blocks of the tile's store, at res_base, when the tile stores
            m.d.comb += [
                y_wr.addr.eq(dma.y_wr_addr), y_wr.data.eq(dma.y_wr_data), y_wr.en.eq(dma.y_wr_en),
                y_rd.addr.eq(dma.y_rd_addr), y_rd.en.eq(dma.y_rd_en), dma.y_rd_data.eq(y_rd.data),
                dma.rd_y_addr.eq(it.c_addr - d["c_base"] + d["res_base"]), dma.rd_y_block_words.eq(c_block_words),
                dma.rd_y_blocks.eq(Mux(res_mode & it.last_k & ~q_prologue, c_blocks, 0)),
                dma.rd_y_stride.eq(Mux(planes_out, d["cv_c_block"], 0)), dma.rd_y_word.eq(y_slot * sc),
                dma.wr_post.eq(res_mode | act_mode), dma.wr_y_word.eq(head["y_slot"] * sc),
            ]
        if self.resident:  # the input buffer's second writer: a resident store (never beside an A load)
            assert self.word_bits[0] == dma.out_word_bits, "a resident output word is an input word"
            m.d.comb += [a_wr.addr.eq(Mux(dma.res_wr_en, dma.res_wr_addr, dma.a_wr_addr)),
                         a_wr.data.eq(Mux(dma.res_wr_en, dma.res_wr_data, dma.a_wr_data)),
                         a_wr.en.eq(dma.a_wr_en | dma.res_wr_en), dma.wr_res.eq(res_out)]
        else:
            m.d.comb += [a_wr.addr.eq(dma.a_wr_addr), a_wr.data.eq(dma.a_wr_data), a_wr.en.eq(dma.a_wr_en)]
        m.d.comb += [
            b_wr.addr.eq(dma.b_wr_addr), b_wr.data.eq(dma.b_wr_data), b_wr.en.eq(dma.b_wr_en),
            out_dma.addr.eq(dma.c_rd_addr), out_dma.en.eq(dma.c_rd_en),
            dma.c_rd_data.eq(Mux(dws_src, dws_rd.data, out_dma.data) if self.dws else out_dma.data),
            dma.rd_a_addr.eq(it.a_addr), dma.rd_a_block_words.eq(it.a_words),
            dma.rd_a_blocks.eq(Mux(it.load_a & ~q_prologue, Mux(win_mode, it.ks, it.gs), 0)),
            dma.rd_a_word.eq(it.a_slot * sa), dma.rd_a_stride.eq(Mux(win_mode, d["cv_a_block"], 0)),
            dma.wr_stride.eq(Mux(planes_out, d["cv_c_block"], 0)),
            dma.rd_b_addr.eq(it.b_addr), dma.rd_b_block_words.eq(it.b_words),
            dma.rd_b_blocks.eq(Mux(it.load_b & ~q_prologue, it.gs, 0)), dma.rd_b_word.eq(it.b_slot * sb),
            dma.rd_q_addr.eq(d["q_base"]), dma.rd_q_words.eq(Mux(q_prologue, d["q_words"], 0)),
            dma.q_nf.eq(d["q_nf"]),
        ]
        rows = dws_src | dws_rgo  # a row store's command fields (at its accept), its table and output parameters
        if self.dws:
            m.d.comb += [
                dws_rd.addr.eq(dma.c_rd_addr), dws_rd.en.eq(dma.c_rd_en),
                dma.wr_q.eq(Mux(rows, head["q"] + d["q_nf"], head["q"])),
                dma.wr_run.eq(Mux(rows, dws_nout, head["run"])),
                dma.wr_nf.eq(Mux(rows, 1, head["nf"])),
                dma.zero_point.eq(Mux(dws_src, d["dws_zero_point"], d["zero_point"]).as_signed()),
                dma.clamp_lo.eq(Mux(dws_src, d["dws_clamp_lo"], d["clamp_lo"]).as_signed()),
                dma.clamp_hi.eq(Mux(dws_src, d["dws_clamp_hi"], d["clamp_hi"]).as_signed()),
            ]
        else:
            m.d.comb += [
                dma.wr_q.eq(head["q"]), dma.wr_run.eq(head["run"]), dma.wr_nf.eq(head["nf"]),
                dma.zero_point.eq(d["zero_point"].as_signed()), dma.clamp_lo.eq(d["clamp_lo"].as_signed()),
                dma.clamp_hi.eq(d["clamp_hi"].as_signed()),
            ]
        pool_write = Signal(name="pool_write")  # the write command is a pooled row's (from the pool stage)
        if self.pool:
            from codesign.hdl.engines.pool import PoolStage

            m.submodules.pool = pool = PoolStage(lanes=self.config.cols, bits=self.config.act_bits,
                                                 signed_values=self.config.act_signed, depth=self.pool_words,
                                                 addr_bits=self.addr_bits)
            m.d.comb += [
                pool.kh.eq(d["pl_kernel"][0:8]), pool.kw.eq(d["pl_kernel"][8:16]), pool.sh.eq(d["pl_kernel"][16:24]),
                pool.sw.eq(d["pl_kernel"][24:32]), pool.pt.eq(d["pl_pad"][0:8]), pool.pl.eq(d["pl_pad"][8:16]),
                pool.oh.eq(d["pl_conv"][0:16]), pool.ow.eq(pl_ow), pool.ph.eq(d["pl_out"][0:16]), pool.pw.eq(pl_pw),
                pool.row_bytes.eq(d["pl_row_bytes"]), pool.image_bytes.eq(d["pl_image_bytes"]),
                pool.base.eq(d["c_base"]), pool.init.eq(launch), pool.start.eq(dma.pool_start),
                pool.in_valid.eq(dma.pool_valid), pool.in_data.eq(dma.pool_data),
                pool.rd_addr.eq(dma.c_rd_addr), pool.rd_en.eq(dma.c_rd_en), dma.pool_rd_data.eq(pool.rd_data),
                dma.wr_pool_src.eq(pool_write),
            ]
            wr = {"addr": Mux(pool_write, pool.done_addr, head["addr"]),
                  "block_words": Mux(pool_write, pl_pw, head["c_words"]),
                  "blocks": Mux(pool_write, d["c_nf_0"], head["gs"]),
                  "word": Mux(pool_write, pool.done_slot * self.pool_words, head["c_slot"] * sc)}
            wr_pass = pool_mode & ~pool_write
        else:
            wr = {"addr": head["addr"], "block_words": head["c_words"], "blocks": head["gs"],
                  "word": head["c_slot"] * sc}
            wr_pass = Const(0, 1)
            if self.dws:
                m.d.comb += [dma.wr_pool_src.eq(0), dma.pool_rd_data.eq(0)]
        if self.dws:  # a row store: the pass's depthwise outputs from dws_mem, one block at the next rows' address
            wr = {"addr": Mux(rows, dws_ptr, wr["addr"]), "block_words": Mux(rows, dws_nout, wr["block_words"]),
                  "blocks": Mux(rows, 1, wr["blocks"]), "word": Mux(rows, 0, wr["word"])}
            wr_pass = wr_pass | (dws_mode & ~rows)
        m.d.comb += [dma.wr_addr.eq(wr["addr"]), dma.wr_block_words.eq(wr["block_words"]),
                     dma.wr_blocks.eq(wr["blocks"]), dma.wr_word.eq(wr["word"])]
        if self.pool or self.dws:
            m.d.comb += dma.wr_pass.eq(wr_pass)

        # -- the DMA program: a read queue L0, L1, ... and a write queue S0, S1, ... at once ------------
        # L(j) waits for tile j - B's compute (its slots), S(i) for tile i's; the AXI read and write
        # channels run together (the memory shares its bandwidth between them: hdl/bench/axi_mem_model.v)
        # tiles computed minus j - B of the next load L(j) after the first B (in [0, B]), and minus i of
        # the next store S(i) (in [-B, B]: stores retire only tiles loaded, at most B ahead of computes):
        # the sequencers compare only these differences, so they are counters of a few bits, not 32
        r_ahead = Signal(range(self.slots + 2), name="r_ahead")
        w_ahead = Signal(range(-self.slots - 2, self.slots + 2), name="w_ahead")
        c_inc, r_inc, w_inc = Signal(name="computed_inc"), Signal(name="rstep_inc"), Signal(name="wstep_inc")
        with m.If(launch):
            m.d.sync += [r_ahead.eq(0), w_ahead.eq(0)]
        with m.Else():
            m.d.sync += [r_ahead.eq(r_ahead + c_inc - r_inc), w_ahead.eq(w_ahead + c_inc - w_inc)]
        prologue = Signal(range(self.slots + 1))  # initial loads still to issue
        issue_load = Signal()
        with m.FSM(name="dma_reads") as reads_fsm:
            with m.State("IDLE"):
                with m.If(launch):
                    m.d.sync += prologue.eq(self.slots)
                    m.next = "QTABLE" if self.requant else "STEP"
            with m.State("QTABLE"):  # requantize: the table first, in a read command of its own
                with m.If(d["q_words"] != 0):
                    m.d.comb += [q_prologue.eq(1), dma.rd_go.eq(1)]
                    m.next = "QLOAD"
                with m.Else():
                    m.next = "STEP"
            with m.State("QLOAD"):
                with m.If(dma.rd_last):
                    m.next = "STEP"
                    if self.residual:
                        with m.If(act_mode):  # then the activation table, an entry a cycle
                            m.d.sync += [t_i.eq(0), t_w.eq(d["q_words"] - self.act_table_words), t_p.eq(0)]
                            m.next = "TLOAD"
            if self.residual:
                with m.State("TLOAD"):
                    m.d.comb += t_read.eq(1)
                    m.d.sync += [t_i.eq(t_i + 1), t_p.eq(Mux(t_p == t_per - 1, 0, t_p + 1)),
                                 t_w.eq(t_w + (t_p == t_per - 1))]
                    with m.If(t_i == t_entries - 1):
                        m.next = "STEP"
            with m.State("STEP"):
                with m.If(~it.valid):  # every load issued (the last ones may still move data)
                    m.next = "IDLE"
                with m.Elif(store_q.w_rdy & dma.rd_ready & ((prologue != 0) | (r_ahead != 0))):
                    m.d.comb += issue_load.eq(1)
                    with m.If(prologue != 0):
                        m.d.sync += prologue.eq(prologue - 1)
                    with m.Else():
                        m.d.comb += r_inc.eq(1)
                    m.next = "LOAD"
            with m.State("LOAD"):  # the iterator's fields of the next tile are registered a cycle after it moves
                m.next = "STEP"
        # the engine's weight slots, loaded by the compute sequencer (depthwise mode) or the write FSM (the stage)
        wl = self._weight_slots(m, kernel_h, kernel_w) if self.depthwise else {}
        if self.dws:
            dws = self._dws_setup(m, d, launch, dws_mode, dws_ctl, wl, pad_l, pad_r, q_rd.data,
                                  {"src": dws_src, "rgo": dws_rgo, "nout": dws_nout, "ptr": dws_ptr,
                                   "qread": dws_qread, "qw": dws_qw})
        with m.FSM(name="dma_writes"):
            with m.State("IDLE"):
                with m.If(launch):
                    m.next = "STEP"
            with m.State("STEP"):
                with m.If(store_q.r_rdy & head["has"]):
                    with m.If(w_ahead > 0):
                        if self.dws:
                            with m.If(dws_mode):  # the pass through the depthwise engine (below)
                                m.d.comb += dws_ctl["rebase"].eq(1)
                                m.d.sync += [dws_nout.eq(0), dws["cnt"].eq(0),
                                             dws["left"].eq(pad_l + Mux(dws["first"], dws["top"], 0))]
                                with m.If(dws["first"]):
                                    m.next = "DWS_W"
                                with m.Else():
                                    m.next = "DWS_PRE"
                        with m.If(~dws_mode):
                            m.d.comb += dma.wr_go.eq(1)
                            m.next = "STORE"
                            if self.pool:
                                with m.If(pool_mode):  # first the pass through the pool stage
                                    m.next = "PASS"
                with m.Elif(store_q.r_rdy):  # S(i) moves nothing (a partial-sum tile)
                    m.d.comb += [store_q.r_en.eq(1), w_inc.eq(1)]
                with m.Elif(~it.valid):  # every store done: the layer is done
                    m.d.sync += [busy.eq(0), done.eq(1)]
                    m.next = "IDLE"
            def retire():
                m.d.comb += [store_q.r_en.eq(1), w_inc.eq(1)]
                if self.dws:
                    with m.If(dws_mode):  # the next row (of the next plane after the map's last), its rows' address
                        m.d.sync += [dws_src.eq(0), dws["row"].eq(Mux(dws["last"], 0, dws["row"] + 1)),
                                     dws_ptr.eq(dws_ptr + dws_nout * (dma.bpw_out * self.bus_bytes))]
                with m.If(~it.valid & (store_q.level == 1)):  # that was the last store
                    m.d.sync += [busy.eq(0), done.eq(1)]
                    m.next = "IDLE"
                with m.Else():
                    m.next = "STEP"

            with m.State("STORE"):
                with m.If(dma.wr_last):
                    retire()
            if self.dws:
                self._dws_states(m, dma, dws_ctl, dws, wl, retire)
            if self.pool:
                with m.State("PASS"):  # the tile's words through the pool stage, then its pooled row if it ends one
                    with m.If(dma.wr_last):
                        m.d.comb += pool.finish.eq(1)
                        with m.If(pool.row_done):
                            m.next = "POOLW"
                        with m.Else():
                            retire()
                with m.State("POOLW"):
                    m.d.comb += [pool_write.eq(1), dma.wr_go.eq(1)]
                    m.next = "STORE"
        with m.If(issue_load):
            m.d.comb += dma.rd_go.eq(1)
        with m.If(launch):
            m.d.sync += y_slot.eq(0)
        with m.Elif(issue_load):
            m.d.sync += y_slot.eq(Mux(y_slot == y_slots - 1, 0, y_slot + 1))
        m.d.comb += [it.advance.eq(issue_load), store_q.w_en.eq(issue_load), comp_q.w_en.eq(issue_load)]
        tile_loaded = dma.rd_last & ~reads_fsm.ongoing("QLOAD")  # (the table's command is not a tile's)
        with m.If(launch):
            m.d.sync += loaded.eq(0)
        with m.Else():
            m.d.sync += loaded.eq(loaded + tile_loaded - comp_q.r_en)

        # -- the compute sequencer: a tile's groups as back-to-back on-chip GEMMs ----------------------
        cur = unpack(comp_q.r_data, comp_fields)
        t = {name: Signal(w, name=f"ct_{name}") for name, w in comp_fields}
        groups_left = Signal(self.dim_bits)
        offs = [Signal(_addr_bits(dd) + 1, name=f"ct_off{i}") for i, dd in enumerate(self.depths)]
        gemm_start = Signal()
        # IS: the core computes C^T = B^T A^T (M and N swap, A's buffer is its stationary one)
        dims = (t["ns"], t["ms"], t["ks"]) if self.is_ else (t["ms"], t["ns"], t["ks"])
        core_offs = (offs[1], offs[0], offs[2]) if self.is_ else (offs[0], offs[1], offs[2])
        # a band of rows (depthwise, windows): its input rows and top padding by its kind (first, last)
        kind = Cat(t["first_m"], t["last_m"])
        band_rows = Mux(kind == 3, d["dw_rows_11"], Mux(kind == 2, d["dw_rows_10"],
                                                         Mux(kind == 1, d["dw_rows_01"], d["dw_rows_00"])))
        band_pad_t = Mux(t["first_m"], d["dw_pad"][0:8], 0)
        windows = None
        if self.windows:
            windows = Windows(
                on=win_mode, in_w=d["dw_in_w"][:16], out_w=d["cv_out_w"][:16], r=d["dw_kernel"][0:8],
                s=d["dw_kernel"][8:16], sh=d["dw_kernel"][16:24], sw=d["dw_kernel"][24:32], dh=d["cv_dil"][0:8],
                dw=d["cv_dil"][8:16], pad_l=d["dw_pad"][8:16], pad_t=band_pad_t,
                top_words=Mux(t["first_m"], d["cv_top_words"], 0), row_step=d["cv_row_step"],
                dil_step=d["cv_dil_step"], band_rows=band_rows, band_words=t["a_words"], ks=t["ks"],
                lanes_last=Mux(t["last_k"], d["cv_lanes"], self.config.rows))
        ctl = fold_controller(m, p, array, act_rd, w_rd, out_rmw, out_wr, start=gemm_start, dims=dims,
                              offsets=core_offs, accumulate=~t["first_k"], windows=windows)
        computing = Signal()
        eng = None
        per_word = Signal(32, name="dw_macs_per_word")  # R * S * the plane's channels (a max pool: 0)
        dw_pool = d["flags"][8]  # a max pool: no weight slots, its block is the plane's channel count alone
        if self.depthwise:
            eng, w_cnt = self._depthwise(m, p, t, offs, act_rd, w_rd, out_wr, d, band_rows, band_pad_t)
            if self.dws:  # the depthwise stage: the write FSM drives the engine; its outputs go to dws_mem
                m.d.comb += [
                    eng.stream.eq(dws_mode), eng.s_valid.eq(dws_ctl["emit"] | (dma.pool_valid & dws_mode & ~dws_src)),
                    eng.s_data.eq(dma.pool_data), eng.out_rebase.eq(dws_ctl["rebase"]),
                    dws_ctl["out_en"].eq(eng.out_en),
                    dws_wr.addr.eq(eng.out_addr), dws_wr.data.eq(eng.out_data), dws_wr.en.eq(eng.out_en & dws_mode),
                ]
                with m.If(dws_mode):
                    m.d.comb += [eng.in_h.eq(d["dw_rows_00"]), eng.pad_t.eq(d["dw_pad"][0:8]),
                                 eng.pad_b.eq(d["dw_pad"][16:24]), eng.out_base.eq(0),
                                 eng.start.eq(dws_ctl["start"]), eng.w_clear.eq(dws_ctl["w_clear"]),
                                 eng.w_en.eq(dws_ctl["w_en"]), eng.w_addr.eq(dws_ctl["w_addr"]),
                                 eng.w_data.eq(dws_ctl["w_data"])]
            w_slot, dw_taps = wl["slot"], wl["taps"]
        vec = None
        if self.vector:
            vec, vec_i, vec_o, vec_issue = self._vector_unit(m, p, offs, act_rd, w_rd, out_wr, d, dma,
                                                             (t_wr, q_rd.data if self.requant else None))
        with m.FSM(name="compute"):
            with m.State("IDLE"):
                # tile i = computed takes its output slot once tile i - B is stored (wstep counts the
                # write queue's retired entries; a tile without a store retires at once)
                with m.If(comp_q.r_rdy & (loaded != 0) & busy & (w_ahead < self.slots)):
                    m.d.comb += [comp_q.r_en.eq(1), computing.eq(1)]
                    m.d.sync += [*(t[name].eq(cur[name]) for name, _ in comp_fields), groups_left.eq(cur["gs"]),
                                 offs[0].eq(cur["a_slot"] * sa), offs[1].eq(cur["b_slot"] * sb),
                                 offs[2].eq(cur["c_slot"] * sc)]
                    if self.depthwise:
                        m.d.sync += w_cnt.eq(0)
                    if self.vector:
                        m.d.sync += [vec_i.eq(0), vec_o.eq(0)]
                    m.next = "START"
                    if self.depthwise:
                        with m.If(dw_mode):
                            m.next = "DW_WEIGHTS"
                    if self.vector:
                        with m.If(vec_mode):
                            m.next = "VEC_RUN"
            with m.State("START"):
                m.d.comb += [gemm_start.eq(1), computing.eq(1)]
                m.next = "RUN"

            def group_done(again: str, *extra) -> None:
                """A group of the tile is computed: the tile is done, or the next group starts at ``again``."""
                with m.If(groups_left == 1):
                    m.d.comb += c_inc.eq(1)
                    m.next = "IDLE"
                with m.Else():
                    m.d.sync += [groups_left.eq(groups_left - 1), offs[0].eq(offs[0] + t["a_words"]),
                                 offs[1].eq(offs[1] + t["b_words"]), offs[2].eq(offs[2] + t["c_words"]), *extra]
                    m.next = again

            with m.State("RUN"):
                m.d.comb += computing.eq(1)
                with m.If(ctl.finish):
                    group_done("START")
            if eng is not None:
                # depthwise: per plane, the weight slots from the weight buffer, then one engine pass (a max
                # pool: its one-word block, then the pass)
                with m.State("DW_WEIGHTS"):
                    # the block's R x S tap words, row by row, into the bottom-right corner of the cleared
                    # kmax x kmax slots (w_slot: the next tap's slot, w_col its column), then the channel count
                    tap = ~dw_pool & (w_cnt != 0) & (w_cnt <= dw_taps)
                    m.d.comb += [computing.eq(1), w_rd.addr.eq(offs[1] + w_cnt), w_rd.en.eq(1),
                                 eng.w_clear.eq(w_cnt == 0), eng.w_en.eq(tap), eng.w_addr.eq(w_slot),
                                 eng.w_data.eq(w_rd.data)]
                    m.d.sync += w_cnt.eq(w_cnt + 1)
                    wl["walk"](w_cnt == 0, tap)
                    last_word = Mux(dw_pool, b_words(0, MODE_MAX), dw_taps + 1)
                    with m.If(w_cnt == last_word):  # the block's last word: the plane's channels
                        m.d.sync += per_word.eq(Mux(dw_pool, 0, kernel_h * kernel_w * w_rd.data[0:16]))
                        m.next = "DW_GO"
                with m.State("DW_GO"):
                    m.d.comb += [computing.eq(1), eng.start.eq(1)]
                    m.next = "DW_RUN"
                with m.State("DW_RUN"):
                    m.d.comb += computing.eq(1)
                    with m.If(eng.done):
                        group_done("DW_WEIGHTS", w_cnt.eq(0))
            if vec is not None:
                # vector: the chunk's words through the unit, a word a cycle, one group a tile
                with m.State("VEC_RUN"):
                    issue = vec_i < t["ms"]
                    scale = d["flags"][5]  # a squeeze-excite scale: the plane's one word for every pixel
                    m.d.comb += [computing.eq(1), act_rd.addr.eq(offs[0] + vec_i), act_rd.en.eq(issue),
                                 w_rd.addr.eq(offs[1] + Mux(scale, 0, vec_i)), w_rd.en.eq(issue),
                                 vec_issue.eq(issue)]
                    m.d.sync += vec_i.eq(vec_i + issue)
                    with m.If(vec.out_valid):
                        m.d.sync += vec_o.eq(vec_o + 1)
                        with m.If(vec_o + 1 == t["ms"]):
                            group_done("VEC_RUN", vec_i.eq(0), vec_o.eq(0))

        if self.dws:
            with m.If(dws_ctl["chan_en"]):  # the depthwise stage's plane: every tap of its channels a word
                m.d.sync += per_word.eq(kernel_h * kernel_w * dws_ctl["chan"])

        # -- counters ----------------------------------------------------------------------------
        dw_macs = Const(0, 1)
        if eng is not None:  # at each output word the engine writes: every tap of its plane's channels
            dw_macs = Mux(eng.out_en, per_word, 0)
        with m.If(busy):
            m.d.sync += [
                counters["cycles"].eq(counters["cycles"] + 1),
                counters["stall_cycles"].eq(counters["stall_cycles"] + ~computing),
                counters["dram_read_bytes"].eq(counters["dram_read_bytes"] + Mux(dma.r_beat, self.bus_bytes, 0)),
                counters["dram_write_bytes"].eq(counters["dram_write_bytes"] + Mux(dma.w_beat, self.bus_bytes, 0)),
                counters["enabled_macs"].eq(counters["enabled_macs"] + array.enabled_count + dw_macs),
            ]
        return m

    def _weight_slots(self, m: Module, kernel_h, kernel_w) -> dict:  # type: ignore[no-untyped-def]
        """The walk over the engine's ``kmax x kmax`` weight slots that a loader writes a kernel's taps into, row by
        row, into the bottom-right ``R x S`` corner (``slot``: the next tap's slot, ``col`` its column): the kernel's
        taps and its corner's first slot, registered from the descriptor (steady long before the first plane's
        weights: a multiply off the loader's path), and ``walk(first, tap)``, the loader's step (the first word
        clears the slots and starts at the corner; each tap moves one slot on, past the window's left columns at a
        kernel row's end). The compute sequencer's depthwise mode and the depthwise stage's loader share it."""
        k = self.dw_kmax
        wl = {"slot": Signal(range(k * k), name="dw_w_slot"), "col": Signal(range(k), name="dw_w_col"),
              "taps": Signal(range(k * k + 1), name="dw_taps"), "corner": Signal(range(k * k), name="dw_corner")}
        m.d.sync += [wl["taps"].eq(kernel_h * kernel_w), wl["corner"].eq((k - kernel_h) * k + (k - kernel_w))]

        def walk(first, tap) -> None:  # type: ignore[no-untyped-def]
            slot, col = wl["slot"], wl["col"]
            with m.If(first):
                m.d.sync += [slot.eq(wl["corner"]), col.eq(0)]
            with m.Elif(tap):
                with m.If(col == kernel_w - 1):
                    m.d.sync += [slot.eq(slot + (k + 1) - kernel_w), col.eq(0)]
                with m.Else():
                    m.d.sync += [slot.eq(slot + 1), col.eq(col + 1)]

        wl["walk"] = walk
        return wl

    def _dws_setup(self, m: Module, d: dict, launch, dws_mode, ctl: dict, wl: dict, pad_l, pad_r, q_data,  # type: ignore[no-untyped-def]
                   sig: dict) -> dict:
        """The depthwise stage's state besides the write FSM's (flags bit 15, ``codesign.sim.dwfuse``): the image
        row of the next store (``row``: ``first``, ``last``), the padding rows' positions (``top``, ``bot``: pt or
        pb rows of the padded width, registered from the descriptor), the pass's outputs (``nout``), the rows'
        running DRAM address, the weight loader's place in the table buffer (``qw`` a word, ``qp`` a tap in it; the
        weights follow the two tables of q_nf words each). ``sig``: the signals the layer's muxes read."""
        from codesign.sim.dwfuse import weight_entries_per_word

        cfg = self.config
        per = weight_entries_per_word(cfg.weight_bits)
        dws = {**sig, **{n: Signal(16, name=f"dws_{n}") for n in ("cnt", "left", "top", "bot", "row")},
               "qp": Signal(range(max(2, per)), name="dws_qp"), "qp_d": Signal(range(max(2, per)), name="dws_qp_d"),
               "qnext": Signal.like(sig["qw"], name="dws_qnext"), "per": per, "pad_r": pad_r}
        w_pad = d["dw_in_w"][:16] + pad_l + pad_r
        m.d.sync += [dws["top"].eq(d["dw_pad"][0:8] * w_pad), dws["bot"].eq(d["dw_pad"][16:24] * w_pad)]
        dws["first"], dws["last"] = dws["row"] == 0, dws["row"] == d["dw_rows_00"][:16] - 1
        with m.If(launch):
            m.d.sync += [dws["row"].eq(0), dws["ptr"].eq(d["c_base"]), dws["src"].eq(0), dws["qw"].eq(d["q_nf"] * 2),
                         dws["qp"].eq(0)]
        with m.Elif(dws_mode & ctl["out_en"]):
            m.d.sync += dws["nout"].eq(dws["nout"] + 1)
        dws["data"] = q_data.word_select(dws["qp_d"], cfg.cols * cfg.weight_bits)  # the tap read last cycle
        m.d.comb += ctl["w_addr"].eq(wl["slot"])
        return dws

    def _dws_states(self, m: Module, dma, ctl: dict, dws: dict, wl: dict, retire) -> None:  # type: ignore[no-untyped-def]
        """The write FSM's states of a depthwise stage store (flags bit 15, ``codesign.sim.dwfuse``): at a plane's
        first row the engine's weight slots from the table buffer (``DWS_W``: a tap a cycle, ``56 // weight_bits``
        taps a table word, then the plane's channel count) and its start (``DWS_GO``); the padding positions before
        the row (``DWS_PRE``: the top padding rows at the first row, the left columns); the pass of the tile's words
        through the requantization into the engine (``DWS_PASS``); the positions after it (``DWS_POST``: the right
        columns, the bottom padding rows at the last row); the engine's pipeline (``DWS_DRAIN``); then the rows the
        pass completed, stored from the rows buffer through the write-back with the depthwise table, or none."""
        cnt, left, qp, data = dws["cnt"], dws["left"], dws["qp"], dws["data"]
        with m.State("DWS_W"):
            tap = (cnt != 0) & (cnt <= wl["taps"])
            m.d.comb += [dws["qread"].eq(1), ctl["w_clear"].eq(cnt == 0), ctl["w_en"].eq(tap), ctl["w_data"].eq(data)]
            m.d.sync += [cnt.eq(cnt + 1), dws["qp_d"].eq(qp)]
            with m.If(qp == dws["per"] - 1):
                m.d.sync += [dws["qw"].eq(dws["qw"] + 1), qp.eq(0)]
            with m.Else():
                m.d.sync += qp.eq(qp + 1)
            with m.If(cnt == wl["taps"]):  # reading the channel count: the next plane's weights from the next word
                m.d.sync += dws["qnext"].eq(dws["qw"] + 1)
            wl["walk"](cnt == 0, tap)
            with m.If(cnt == wl["taps"] + 1):  # the plane's channel count
                m.d.comb += [ctl["chan_en"].eq(1), ctl["chan"].eq(data[0:16])]
                m.d.sync += [dws["qw"].eq(dws["qnext"]), qp.eq(0)]
                m.next = "DWS_GO"
        with m.State("DWS_GO"):
            m.d.comb += ctl["start"].eq(1)
            m.next = "DWS_PRE"
        with m.State("DWS_PRE"):  # the padding positions before the row's words, then the pass's command
            emit = left != 0
            m.d.comb += ctl["emit"].eq(emit)
            m.d.sync += left.eq(left - emit)
            with m.If(~emit):
                m.d.comb += dma.wr_go.eq(1)
                m.next = "DWS_PASS"
        with m.State("DWS_PASS"):
            with m.If(dma.wr_last):
                m.d.sync += left.eq(dws["pad_r"] + Mux(dws["last"], dws["bot"], 0))
                m.next = "DWS_POST"
        with m.State("DWS_POST"):
            emit = left != 0
            m.d.comb += ctl["emit"].eq(emit)
            m.d.sync += left.eq(left - emit)
            with m.If(~emit):
                m.d.sync += cnt.eq(DWS_DRAIN_CYCLES)
                m.next = "DWS_DRAIN"
        with m.State("DWS_DRAIN"):  # the last position's output into the rows buffer
            m.d.sync += cnt.eq(cnt - 1)
            with m.If(cnt == 0):
                with m.If(dws["nout"] != 0):
                    m.next = "DWS_ROWS"
                with m.Else():  # no row: the store ends here (as a pool pass that ends no pooled row)
                    retire()
        with m.State("DWS_ROWS"):  # the rows' store, decided in the cycle after the pass
            m.d.comb += [dws["rgo"].eq(1), dma.wr_go.eq(1)]
            m.d.sync += dws["src"].eq(1)
            m.next = "STORE"

    def _depthwise(self, m: Module, p: HardwarePlan, t: dict, offs: list, act_rd, w_rd, out_wr, d: dict, band_rows,
                   band_pad_t):
        """The depthwise engine on the layer's buffers: it reads the input buffer and writes the output
        buffer (accumulators; the DMA's write-back requantizes them as the array's) in place of the
        fold controller, whose ports are idle in depthwise mode. The pass's parameters come from the
        descriptor and the tile's band (``band_rows``, ``band_pad_t``: by its kind, first and last).

        Max pooling (``flags`` bits 9..8 = 1) is the engine's MAX mode on the same scan: the window's
        maximum, sign-extended (unsigned activations: zero-extended) into the accumulator lanes, goes
        through the write-back like a convolution's sums, with an identity table (the host writes it:
        ``bias 0, mult 2**14, shift 14``, the vector unit's) and the activations' clamps. Why there and
        not in act_bits lanes: the output buffer, the DMA's word fetch and the per-plane table are then
        the depthwise convolution's, unchanged; the identity entry costs one table word a plane (the
        table a convolution reads anyway), and TFLite's MAX_POOL_2D has its input's scale and zero point
        on its output, so the identity is the exact requantization, not an approximation. (Without
        ``requantize`` the maxima are written as accumulators, as a convolution's sums are.) The
        engine's average mode needs its own divider stages and is not built here: an average pool runs
        as its convolution."""
        from codesign.hdl.engines.depthwise import DepthwiseEngine, DepthwiseSpec

        cfg = self.config
        spec = DepthwiseSpec(lanes=cfg.cols, kmax=self.dw_kmax, act_bits=cfg.act_bits, act_signed=cfg.act_signed,
                             weight_bits=cfg.weight_bits, weight_signed=cfg.weight_signed, acc_bits=p.acc_bits,
                             width_max=DW_WIDTH_MAX, requantize=False, pooling=True, stream=self.dws,
                             addr_bits=max(_addr_bits(p.act_depth), _addr_bits(p.out_depth)) + 1,
                             dim_bits=DW_DIM_BITS)
        m.submodules.depthwise = eng = DepthwiseEngine(spec)
        k = self.dw_kmax
        w_cnt = Signal(range(b_words(k * k) + 1), name="dw_w_cnt")
        m.d.comb += [
            eng.in_h.eq(band_rows), eng.in_w.eq(d["dw_in_w"]),
            eng.pad_t.eq(band_pad_t), eng.pad_l.eq(d["dw_pad"][8:16]),
            eng.pad_b.eq(Mux(t["last_m"], d["dw_pad"][16:24], 0)), eng.pad_r.eq(d["dw_pad"][24:32]),
            eng.kernel_h.eq(d["dw_kernel"][0:8]), eng.kernel_w.eq(d["dw_kernel"][8:16]),
            eng.stride_h.eq(d["dw_kernel"][16:24]), eng.stride_w.eq(d["dw_kernel"][24:32]),
            eng.in_base.eq(offs[0]), eng.in_stride.eq(1), eng.out_base.eq(offs[2]), eng.out_stride.eq(1),
            eng.mode.eq(d["flags"][8:10]), eng.in_data.eq(act_rd.data),
        ]
        with m.If(d["flags"][3]):  # the engine owns the input buffer's read port and the output's write port
            m.d.comb += [act_rd.addr.eq(eng.in_addr), act_rd.en.eq(eng.in_en),
                         out_wr.addr.eq(eng.out_addr), out_wr.data.eq(eng.out_data), out_wr.en.eq(eng.out_en)]
        return eng, w_cnt

    def _vector_unit(self, m: Module, p: HardwarePlan, offs: list, act_rd, w_rd, out_wr, d: dict, dma, table):
        """The vector unit on the layer's buffers in vector mode: X from the input buffer, Y from the
        weight buffer (read by the compute sequencer's VEC_RUN state), the results sign-extended into
        the output buffer's accumulator lanes (the write-back's identity table passes them on). With a
        residual add (flags bit 7) the DMA's write-back feeds it instead (``dma.post_*``)."""
        from codesign.hdl.engines.vector import VectorOp, VectorSpec, VectorUnit

        cfg = self.config
        m.submodules.vector = vec = VectorUnit(VectorSpec(lanes=cfg.cols, act_bits=cfg.act_bits))
        words_bits = max(_addr_bits(p.act_depth), _addr_bits(p.out_depth)) + 1
        vec_i = Signal(words_bits, name="vec_issue")
        vec_o = Signal(words_bits, name="vec_out")
        issue = Signal(name="vec_issue_now")  # VEC_RUN addresses a word this cycle
        issued = Signal(name="vec_issued")  # the buffers' data is the word addressed last cycle
        m.d.sync += issued.eq(issue)
        ab = cfg.act_bits
        # the write-back's post pipeline: a residual add (flags bit 7) or a table activation (bit 10)
        post = (d["flags"][7] | d["flags"][10]) if self.residual else Const(0, 1)
        res = post
        if self.residual:
            t_wr, q_data = table
            m.d.comb += [dma.post_out_valid.eq(vec.out_valid & post), dma.post_out_data.eq(vec.out_data),
                         vec.t_en.eq(t_wr["en"]), vec.t_addr.eq(t_wr["addr"]),
                         vec.t_data.eq(q_data.word_select(t_wr["pos"], ab))]
        m.d.comb += [
            vec.op.eq(Mux(d["flags"][10] & post, VectorOp.TABLE, Mux(d["flags"][5], VectorOp.MUL, VectorOp.ADD))),
            vec.in_valid.eq(Mux(res, dma.post_valid, issued)),
            vec.in_a.eq(Mux(res, dma.post_x, act_rd.data)),
            vec.in_b.eq(Mux(res, dma.post_y, w_rd.data[:cfg.cols * ab])),
            vec.input1_offset.eq(d["vec_input1_offset"]), vec.input2_offset.eq(d["vec_input2_offset"]),
            vec.left_shift.eq(d["vec_left_shift"]), vec.input1_multiplier.eq(d["vec_input1_multiplier"]),
            vec.input1_shift.eq(d["vec_input1_shift"]), vec.input2_multiplier.eq(d["vec_input2_multiplier"]),
            vec.input2_shift.eq(d["vec_input2_shift"]), vec.output_multiplier.eq(d["vec_output_multiplier"]),
            vec.output_shift.eq(d["vec_output_shift"]), vec.output_offset.eq(d["vec_output_offset"]),
            vec.act_min.eq(d["vec_act_min"]), vec.act_max.eq(d["vec_act_max"]),
        ]
        lanes = [vec.out_data.word_select(i, ab) for i in range(cfg.cols)]
        ext = [Signal(p.acc_bits, name=f"vec_ext{i}") for i in range(cfg.cols)]
        for i, ln in enumerate(lanes):
            m.d.comb += ext[i].eq(ln.as_signed() if cfg.act_signed else ln)
        with m.If(d["flags"][4]):  # the unit owns the output buffer's write port
            m.d.comb += [out_wr.addr.eq(offs[2] + vec_o), out_wr.data.eq(Cat(*ext)), out_wr.en.eq(vec.out_valid)]
        return vec, vec_i, vec_o, issue

    def _axil(self, m: Module, desc: dict, wide: dict, counters: dict, status, error_code, start_req) -> None:
        """AXI4-Lite slave: write when address and data are both valid; read one cycle later. A descriptor
        field keeps the bits of its width (``regs.field_bits``) and, if narrower than 32, a flag ``wide``:
        the bits above its width are not all zero (a byte left unwritten keeps a set flag). Only STATUS,
        ERROR, VERSION and the counters are readable (``regs.READABLE``): the read multiplexer has 13
        inputs, not one per register."""
        wr = axil_write_handshake(m, self)
        waddr = self.s_axil_awaddr
        strb = self.s_axil_wstrb
        data = self.s_axil_wdata
        if self.program_port:  # a write of the network sequencer (whole words): as the port's, without a response
            ext = self.ext_wr_en
            waddr, strb, data = Mux(ext, self.ext_wr_addr, waddr), Mux(ext, 0xF, strb), Mux(ext, self.ext_wr_data, data)
            wr = wr | ext
        field_index = {name: i for i, (name, _) in enumerate(DESCRIPTOR_FIELDS)}
        per = self.bus_bytes // 4  # descriptor fields a beat of the sequencer's load port
        for r in REGISTERS:
            if r.name == "ctrl":
                m.d.comb += start_req.eq(wr & (waddr == r.offset) & data[0] & strb[0])
            elif isinstance(desc.get(r.name), Signal):
                reg = desc[r.name]
                w = len(reg)
                with m.If(wr & (waddr == r.offset)):
                    for b in range(4):
                        if b * 8 < w:
                            with m.If(strb[b]):
                                m.d.sync += reg[b * 8:min(w, b * 8 + 8)].eq(data[b * 8:min(w, b * 8 + 8)])
                    if r.name in regs.SIGNED_FIELDS:
                        # two's complement: the bits above the top one copies of it, from a write of every
                        # byte holding them (a write of some of those bytes sets the flag: conservative)
                        top = [b for b in range(4) if b * 8 + 8 > w - 1]
                        strobed = Cat(*[strb[b] for b in top])
                        with m.If(strobed.any()):
                            m.d.sync += wide[r.name].eq(~strobed.all() | _not_sign_copies(data, w))
                    elif r.name in wide:
                        high = [b for b in range(4) if b * 8 + 8 > w]  # bytes holding bits above the width
                        written = Cat(*[strb[b] & data[max(w, b * 8):b * 8 + 8].any() for b in high]).any()
                        kept = wide[r.name] & Cat(*[~strb[b] for b in high]).any()
                        m.d.sync += wide[r.name].eq(written | kept)
                if self.program_port:  # the descriptor beat holding the field (never with a write above)
                    f = field_index[r.name]
                    lane = self.ext_ld_data[(f % per) * 32:(f % per + 1) * 32]
                    with m.If(self.ext_ld_en & (self.ext_ld_beat == f // per)):
                        m.d.sync += reg.eq(lane[:w])
                        if r.name in regs.SIGNED_FIELDS:
                            m.d.sync += wide[r.name].eq(_not_sign_copies(lane, w))
                        elif r.name in wide:
                            m.d.sync += wide[r.name].eq(lane[w:].any())
        values = {"status": status, "error": error_code, "version": Const(MAP_VERSION, 32)}
        for name in counters:
            values[f"{name}_lo"], values[f"{name}_hi"] = counters[name][:32], counters[name][32:]
        assert set(values) == set(regs.READABLE)
        rd = self.s_axil_arvalid & ~self.s_axil_rvalid
        with m.If(rd):
            m.d.sync += self.s_axil_rvalid.eq(1)
            with m.Switch(self.s_axil_araddr):
                for r in REGISTERS:
                    if r.name in values:
                        with m.Case(r.offset):
                            m.d.sync += self.s_axil_rdata.eq(values[r.name])
                with m.Default():
                    m.d.sync += self.s_axil_rdata.eq(0)
        with m.Elif(self.s_axil_rready):
            m.d.sync += self.s_axil_rvalid.eq(0)
