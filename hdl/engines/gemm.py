"""The accelerator top: buffers, systolic array and the fold controller that runs a whole GEMM.

Ports (Verilog names come from the signature):

* ``load`` (stream in, payload ``{data, addr, sel}``): writes one word into the activation
  (``sel = 0``) or weight (``sel = 1``) buffer; ready while not busy.
* ``m``, ``n``, ``k``, ``start``: sampled when ``start`` is high and the controller is idle.
* ``busy``, ``done``: ``done`` rises after the last output word is written and stays high until
  the next ``start``. Cycles from the edge sampling ``start`` to the edge raising ``done`` are
  :meth:`Accelerator.gemm_cycles` (= ``codesign.sim.timing.native_gemm_cycles``).
* ``enabled_macs``: MACs enabled since ``start`` (see :mod:`codesign.hdl.engines.array`).
* ``rd_addr`` (stream in) -> ``rd_data`` (stream out): reads the output buffer, one word per
  request, with back-pressure.

Buffer layouts are those of :mod:`codesign.hdl.plan`.
"""

from __future__ import annotations

from amaranth.hdl import Module, Signal, unsigned
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from codesign.errors import ConfigError
from codesign.hdl.control.fold import fold_controller
from codesign.hdl.engines.array import SystolicArray
from codesign.hdl.plan import HardwarePlan
from codesign.sim.config import AcceleratorConfig


def _addr_bits(depth: int) -> int:
    return max(1, (depth - 1).bit_length())


def top_name(config: AcceleratorConfig) -> str:
    """Verilog module name of the top for a config (distinct per generated design)."""
    c = config
    sw = "s" if c.weight_signed else "u"
    sa = "s" if c.act_signed else "u"
    gate = "_gate" if c.zero_handling.value == "gate" else ""
    if c.skip_nm:
        gate = "_skip{}of{}".format(*c.skip_nm)
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
        if config.dataflow.value == "is":
            raise ConfigError("dataflow must be ws or os for the on-chip GEMM top, not 'is' (the whole-layer top "
                              "builds is)")
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
        ctl = fold_controller(m, p, array, act_rd, w_rd, out_rmw, out_wr, start=self.start,
                              dims=(self.m, self.n, self.k), offsets=(0, 0, 0), accumulate=0)
        count = Signal(p.mac_counter_bits)
        m.d.comb += [self.enabled_macs.eq(count), self.busy.eq(ctl.busy), self.done.eq(ctl.done)]
        m.d.sync += count.eq(count + array.enabled_count)
        with m.If(self.start & ~ctl.busy):
            m.d.sync += count.eq(0)
        return m
