"""The network top: the whole-layer accelerator with a network sequencer, a whole network from one start.

The host writes a descriptor list into DRAM (:func:`codesign.hdl.host.place_network` lays out every
tensor once and builds it; the record format is :func:`codesign.sim.program.record_layout`, published in
the register map), then ``PROG_BASE``, ``PROG_LAYERS`` and ``PROG_CTRL`` bit 0. The sequencer reads each
record's descriptor through the AXI master (the layer's DMA owns the bus while the layer runs, the
sequencer while it is idle) and loads each beat's ``bus_bytes / 4`` fields into the layer's register file
in the cycle the beat comes (the layer's ``program_port`` hook: its descriptor beat port; no buffer),
writes the layer's CTRL start the cycle after the last beat (the layer decides on its registered
descriptor checks in the next and starts at its end), and waits for ``done``. Then, from the cycle after the one
that sees ``done`` (and latches the counters), it writes the layer's counters into the record and fetches
the next record's descriptor at once: the AXI read and write channels are independent (the memory gives
the write's beats the bus, the read's beats take the other cycles). The next layer starts once both its
descriptor's last beat and the write's response have come, so it runs on an idle memory, in its own
cycles. ``irq`` rises after the last record's counter write (PROG_STATUS ``done``), or when a layer's
descriptor checks refuse it (PROG_STATUS ``error``, PROG_LAYER the record's index, the layer's ERROR
register the reason). Timing: :mod:`codesign.sim.program` (the simulator's ``program_cycles``).

The AXI4-Lite port is the layer's map (:mod:`codesign.hdl.control.regs`: a host may still run one
layer by writing its descriptor and CTRL; writes here are whole words) plus the network registers
(:data:`NETWORK_REGISTERS`); the layer's registers cannot be written while a program runs.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import wiring

from codesign.errors import ConfigError
from codesign.hdl.control import regs
from codesign.hdl.control.regs import COUNTERS, DESCRIPTOR_FIELDS, MAP_VERSION, REGISTER_OFFSETS, Register
from codesign.sim.config import AcceleratorConfig
from codesign.sim.program import design_reason, record_layout
from codesign.sim.tileplan import bus_bytes

PROGRAM_STATUS_BITS = (("busy", "running a program"), ("done", "the last program finished (cleared by its start)"),
                       ("error", "a layer's descriptor was refused: PROG_LAYER is its record, ERROR the reason"))


def _network_registers() -> tuple[Register, ...]:
    off = (regs.REGISTERS[-1].offset + 4 + 0x1F) & ~0x1F
    out = []
    for name, access, desc in (
            ("prog_ctrl", "w", "bit 0: start the program (ignored while a program or a layer runs)"),
            ("prog_base", "w", "byte address of the descriptor list (aligned to the record size)"),
            ("prog_layers", "w", "records in the list (layers to run; 0: done at once)"),
            ("prog_status", "r", "; ".join(f"bit {i}: {d}" for i, (_, d) in enumerate(PROGRAM_STATUS_BITS))),
            ("prog_layer", "r", "the record running, or the one refused (error)"),
            ("prog_cycles_lo", "r", "cycles from the program's start to its done (bits 31..0)"),
            ("prog_cycles_hi", "r", "cycles from the program's start to its done (bits 63..32)")):
        out.append(Register(name, off, access, desc))
        off += 4
    assert off <= 1 << regs.REGS_ADDR_BITS
    return tuple(out)


NETWORK_REGISTERS: tuple[Register, ...] = _network_registers()
NETWORK_OFFSETS: dict[str, int] = {r.name: r.offset for r in NETWORK_REGISTERS}
LAYER_INDEX_BITS = 16  # prog_layers and prog_layer


def network_top_name(config: AcceleratorConfig) -> str:
    from codesign.hdl.layer import layer_top_name

    return layer_top_name(config).replace("codesign_layer_", "codesign_net_", 1)


def record_description(config: AcceleratorConfig) -> dict[str, object]:
    """The descriptor list's format for ``config``'s bus, as plain data (the register map's ``program``)."""
    lay = record_layout(bus_bytes(config))
    return {
        "record_bytes": lay.record_bytes, "descriptor_offset": 0, "descriptor_bytes": lay.descriptor_bytes,
        "descriptor_fields": [name for name, _ in DESCRIPTOR_FIELDS],
        "counters_offset": lay.counters_offset, "counter_bytes": lay.counter_bytes,
        "counters": [name for name, _ in COUNTERS],
        "registers": [{"name": r.name, "offset": r.offset, "access": r.access, "description": r.description}
                      for r in NETWORK_REGISTERS],
        "status_bits": {name: i for i, (name, _) in enumerate(PROGRAM_STATUS_BITS)},
    }


def c_header_lines(config: AcceleratorConfig, prefix: str = "CODESIGN") -> list[str]:
    """The network program's part of the C header (registers of the network top, the record format)."""
    lay = record_layout(bus_bytes(config))
    lines = ["", "/* network program (the network top): a list of records in DRAM, one per layer; each record holds",
             "   the layer's descriptor (the registers from A_BASE on, in order, 32 bits each, little-endian) and room",
             "   for the layer's counters (written by the sequencer after the layer, 64 bits each, in the order",
             "   of the counter registers) */"]
    for r in NETWORK_REGISTERS:
        lines.append(f"#define {prefix}_{r.name.upper():<20} 0x{r.offset:03X}u  /* {r.access}: {r.description} */")
    for i, (name, _) in enumerate(PROGRAM_STATUS_BITS):
        lines.append(f"#define {prefix}_PROG_STATUS_{name.upper():<8} (1u << {i})")
    lines += [f"#define {prefix}_PROG_RECORD_BYTES      {lay.record_bytes}u",
              f"#define {prefix}_PROG_DESCRIPTOR_OFFSET 0u",
              f"#define {prefix}_PROG_DESCRIPTOR_WORDS  {lay.fields}u",
              f"#define {prefix}_PROG_COUNTERS_OFFSET   {lay.counters_offset}u",
              f"#define {prefix}_PROG_COUNTER_WORDS64   {len(COUNTERS)}u"]
    for i, (name, _) in enumerate(COUNTERS):
        lines.append(f"#define {prefix}_PROG_COUNTER_{name.upper():<17} {i}u  /* 64-bit word index */")
    return lines


def python_lines(config: AcceleratorConfig) -> list[str]:
    """The network program's part of the Python register map."""
    d = record_description(config)
    return ["# network program (the network top): a list of records in DRAM, one per layer",
            "PROGRAM_OFFSETS = {" + ", ".join(f"{r.name!r}: 0x{r.offset:03X}" for r in NETWORK_REGISTERS) + "}",
            "PROGRAM_STATUS_BITS = {" + ", ".join(f"{n!r}: {i}" for i, (n, _) in enumerate(PROGRAM_STATUS_BITS))
            + "}",
            f"PROGRAM_RECORD = {{'record_bytes': {d['record_bytes']}, 'descriptor_offset': 0, "
            f"'descriptor_words': {len(DESCRIPTOR_FIELDS)}, 'counters_offset': {d['counters_offset']}, "
            f"'counters': {d['counters']!r}}}"]


class NetworkAccelerator(wiring.Component):
    """The whole-layer accelerator for ``config`` behind a network sequencer (same ports)."""

    def __init__(self, config: AcceleratorConfig):
        from codesign.hdl.layer import layer_members

        reason = design_reason(config)
        if reason:
            raise ConfigError(reason)
        self.config = config
        self.bus_bytes = bus_bytes(config)
        self.layout = record_layout(self.bus_bytes)
        super().__init__(layer_members(config))

    def elaborate(self, platform):
        from codesign.hdl.layer import LayerAccelerator

        m = Module()
        cfg, bus, lay = self.config, self.bus_bytes, self.layout
        m.submodules.layer = layer = LayerAccelerator(cfg, program_port=True)
        first = REGISTER_OFFSETS[DESCRIPTOR_FIELDS[0][0]]
        assert all(REGISTER_OFFSETS[name] == first + 4 * i for i, (name, _) in enumerate(DESCRIPTOR_FIELDS))
        for name in ("s_axil_awvalid", "s_axil_wvalid", "s_axil_arvalid", "s_axil_bready", "s_axil_rready",
                     "s_axil_awaddr", "s_axil_wdata", "s_axil_wstrb", "s_axil_araddr"):
            m.d.comb += getattr(layer, name).eq(0)  # the layer's own port is idle: the hook carries the writes

        # -- program registers and state -------------------------------------------------------------
        # the list's and a record's byte address: the config's dram_addr_bits (a wider PROG_BASE write keeps its
        # low bits: the host refuses a list beyond them, codesign.sim.widths)
        base = Signal(cfg.dram_addr_bits, name="prog_base")
        count = Signal(LAYER_INDEX_BITS, name="prog_layers")
        busy, done, error = Signal(name="prog_busy"), Signal(name="prog_done"), Signal(name="prog_error")
        index = Signal(LAYER_INDEX_BITS, name="prog_layer")
        cycles = Signal(64, name="prog_cycles")
        mode = Signal(name="prog_mode")  # the last start was a program's (irq follows it, not the layer's)
        rec = Signal(cfg.dram_addr_bits, name="prog_record")  # the record's byte address
        start = Signal()  # a host write of PROG_CTRL bit 0
        seq_wr, seq_addr, seq_data = Signal(), Signal(regs.REGS_ADDR_BITS), Signal(32)
        host_wr, host_addr, host_data = Signal(), Signal(regs.REGS_ADDR_BITS), Signal(32)
        layer_busy = layer.ext_status[0]
        self._axil(m, layer, base, count, Cat(busy, done, error), index, cycles, start, host_wr, host_addr,
                   host_data)
        m.d.comb += [
            layer.ext_wr_en.eq(seq_wr | (host_wr & ~busy)), layer.ext_wr_addr.eq(Mux(seq_wr, seq_addr, host_addr)),
            layer.ext_wr_data.eq(Mux(seq_wr, seq_data, host_data)),
            self.irq.eq(Mux(mode, done | error, layer.irq)),
        ]
        with m.If(host_wr & ~busy & (host_addr == REGISTER_OFFSETS["ctrl"]) & host_data[0]):
            m.d.sync += mode.eq(0)
        with m.If(busy):
            m.d.sync += cycles.eq(cycles + 1)

        # -- the sequencer's AXI master, and the bus between it and the layer's DMA ----------------------
        own = Signal(name="prog_owns_bus")
        ar_valid, r_ready = Signal(), Signal()
        aw_valid, w_valid, w_last = Signal(), Signal(), Signal()
        w_data = Signal(bus * 8)
        wrec = Signal(cfg.dram_addr_bits, name="prog_write_record")  # the record whose counters are written back
        from codesign.hdl.memory.dma import axi_master_members

        for name, member in axi_master_members(bus * 8).items():
            port, lport = getattr(self, name), getattr(layer, name)
            if member.flow is wiring.Out:
                mine = {"m_axi_araddr": rec, "m_axi_arlen": lay.descriptor_beats - 1,
                        "m_axi_arsize": (bus - 1).bit_length(), "m_axi_arburst": 1, "m_axi_arvalid": ar_valid,
                        "m_axi_aruser": 1,
                        "m_axi_rready": r_ready, "m_axi_awaddr": wrec + lay.counters_offset,
                        "m_axi_awlen": lay.counter_beats - 1, "m_axi_awsize": (bus - 1).bit_length(),
                        "m_axi_awburst": 1, "m_axi_awvalid": aw_valid, "m_axi_wdata": w_data,
                        "m_axi_wstrb": Const(-1, len(port)), "m_axi_wlast": w_last, "m_axi_wvalid": w_valid,
                        "m_axi_bready": 1}[name]
                m.d.comb += port.eq(Mux(own, mine, lport))
            elif name in ("m_axi_arready", "m_axi_rvalid", "m_axi_awready", "m_axi_wready", "m_axi_bvalid"):
                m.d.comb += lport.eq(port & ~own)
            else:
                m.d.comb += lport.eq(port)

        # -- the transfers: the next record's descriptor (read) and the last layer's counters (write) -------
        # the fetch: each beat goes into the layer's registers in the cycle it is accepted (bus / 4 fields)
        ar_wait, r_open = Signal(), Signal()  # its address not yet accepted; beats to come
        r_beat = Signal(range(max(2, lay.descriptor_beats)))
        fetching = Signal()  # this transfer phase fetches a record (else it ends the program)
        r_last = r_beat == lay.descriptor_beats - 1
        m.d.comb += [layer.ext_ld_beat.eq(r_beat), layer.ext_ld_data.eq(self.m_axi_rdata)]
        # the counter write: the counters' beats (a shift register, a beat out per accepted beat)
        cnt = Signal(lay.counter_beats * bus * 8, name="prog_counters")
        w_left = Signal(range(lay.counter_beats + 1))
        aw_wait, b_wait = Signal(), Signal()  # its address not yet accepted; its response to come
        m.d.comb += [w_data.eq(cnt[:bus * 8]), w_last.eq(w_left == 1)]

        go = start & ~busy & ~layer_busy
        with m.FSM(name="program"):
            with m.State("IDLE"):
                with m.If(go):
                    m.d.sync += [busy.eq(count != 0), done.eq(count == 0), error.eq(0), mode.eq(1), index.eq(0),
                                 rec.eq(base), cycles.eq(0), fetching.eq(1), ar_wait.eq(1), r_open.eq(1),
                                 r_beat.eq(0)]
                    with m.If(count != 0):
                        m.next = "XFER"
            with m.State("XFER"):  # the read and the write channel at once, each at its own pace
                m.d.comb += [own.eq(1), ar_valid.eq(ar_wait), r_ready.eq(r_open), aw_valid.eq(aw_wait),
                             w_valid.eq(w_left != 0), layer.ext_ld_en.eq(r_open & self.m_axi_rvalid)]
                with m.If(ar_wait & self.m_axi_arready):
                    m.d.sync += ar_wait.eq(0)
                with m.If(r_open & self.m_axi_rvalid):
                    m.d.sync += [r_beat.eq(r_beat + 1), r_open.eq(~r_last)]
                with m.If(aw_wait & self.m_axi_awready):
                    m.d.sync += aw_wait.eq(0)
                with m.If((w_left != 0) & self.m_axi_wready):
                    m.d.sync += [w_left.eq(w_left - 1), cnt.eq(cnt >> (bus * 8))]
                with m.If(self.m_axi_bvalid):  # the response (after the address and the last beat)
                    m.d.sync += b_wait.eq(0)
                # both finish in this cycle at the latest: the descriptor's last beat, the write's response
                with m.If((~r_open | (self.m_axi_rvalid & r_last)) & (~b_wait | self.m_axi_bvalid)):
                    with m.If(fetching):
                        m.next = "START"
                    with m.Else():
                        m.d.sync += [busy.eq(0), done.eq(1)]
                        m.next = "IDLE"
            with m.State("START"):  # CTRL bit 0
                m.d.comb += [seq_wr.eq(1), seq_addr.eq(REGISTER_OFFSETS["ctrl"]), seq_data.eq(1)]
                m.next = "DECIDE"
            with m.State("DECIDE"):  # the layer decides on its registered checks: it starts (or refuses) at this edge
                m.next = "CHECK"
            with m.State("CHECK"):  # refused: the program stops at this record
                with m.If(layer.ext_status[2]):
                    m.d.sync += [busy.eq(0), error.eq(1)]
                    m.next = "IDLE"
                with m.Else():
                    m.next = "WAIT"
            with m.State("WAIT"):
                with m.If(layer.ext_status[1]):  # done: its counters are final; the next record's fetch too
                    nxt = index + 1 != count
                    m.d.sync += [cnt.eq(layer.ext_counters), w_left.eq(lay.counter_beats), aw_wait.eq(1),
                                 b_wait.eq(1), wrec.eq(rec), fetching.eq(nxt), ar_wait.eq(nxt), r_open.eq(nxt),
                                 r_beat.eq(0)]
                    with m.If(nxt):
                        m.d.sync += [index.eq(index + 1), rec.eq(rec + lay.record_bytes)]
                    m.next = "XFER"
        return m

    def _axil(self, m: Module, layer, base, count, status, index, cycles, start, host_wr, host_addr,
              host_data) -> None:
        """The host's AXI4-Lite slave: the layer's protocol (write when address and data are both valid,
        read one cycle later), the network registers here, the layer's forwarded through its hook."""
        from codesign.hdl.layer import axil_write_handshake

        wr = axil_write_handshake(m, self)
        addr, data = self.s_axil_awaddr, self.s_axil_wdata
        ours = Cat(*[addr == r.offset for r in NETWORK_REGISTERS]).any()
        m.d.comb += [host_wr.eq(wr & ~ours), host_addr.eq(addr), host_data.eq(data),
                     start.eq(wr & (addr == NETWORK_OFFSETS["prog_ctrl"]) & data[0])]
        with m.If(wr & (addr == NETWORK_OFFSETS["prog_base"])):
            m.d.sync += base.eq(data)
        with m.If(wr & (addr == NETWORK_OFFSETS["prog_layers"])):
            m.d.sync += count.eq(data[:len(count)])
        values = {"status": layer.ext_status, "error": layer.ext_error, "version": Const(MAP_VERSION, 32),
                  "prog_status": status, "prog_layer": index, "prog_cycles_lo": cycles[:32],
                  "prog_cycles_hi": cycles[32:]}
        for i, (name, _) in enumerate(COUNTERS):
            word = layer.ext_counters[i * 64:(i + 1) * 64]
            values[f"{name}_lo"], values[f"{name}_hi"] = word[:32], word[32:]
        offsets = {**REGISTER_OFFSETS, **NETWORK_OFFSETS}
        rd = self.s_axil_arvalid & ~self.s_axil_rvalid
        with m.If(rd):
            m.d.sync += self.s_axil_rvalid.eq(1)
            with m.Switch(self.s_axil_araddr):
                for name, value in values.items():
                    with m.Case(offsets[name]):
                        m.d.sync += self.s_axil_rdata.eq(value)
                with m.Default():
                    m.d.sync += self.s_axil_rdata.eq(0)
        with m.Elif(self.s_axil_rready):
            m.d.sync += self.s_axil_rvalid.eq(0)
