"""The vector unit: element-wise layers on lanes of quantized activations, one word a cycle.

What it computes (``op``), per lane, exactly as :mod:`codesign.workloads.eltwise_arith` (TFLite's
8-bit reference kernels with gemmlowp's fixed-point primitives):

* ``ADD`` — the residual add of two quantized tensors with their own scales and zero points:
  each input offset, shifted left by ``left_shift`` (20), scaled by its Q31 multiplier (a saturating
  rounding doubling high multiply, then a rounding right shift), the two summed, scaled to the
  output's scale the same way, offset by the output zero point and clamped;
* ``MUL`` — the channel-wise multiply of squeeze-excite (the second operand is the channel's scale,
  repeated over the pixels by whoever streams it): ``(a + off1) * (b + off2)`` scaled to the output;
* ``TABLE`` — any ``act_bits -> act_bits`` function as a table of ``2**act_bits`` entries, one copy
  per lane (ReLU6, hard-swish, SiLU, sigmoid: exact, since the table is the function on every input).

**Pipeline.** Seven stages, the same for every op, so a word presented with ``in_valid`` leaves
``LATENCY_CYCLES`` cycles later with ``out_valid``: (1) offsets and the left shift, or the MUL's
product, or the table read; (2) the inputs' Q31 products; (3) their high halves; (4) the rounding
shifts and the sum; (5) the output's Q31 product (after the output's left shift, when positive);
(6) its high half; (7) the rounding shift, the zero point and the clamp. Each multiply has a register
stage of its own, as FPGA DSP blocks want. No back-pressure: the unit accepts a word every cycle.

``op``, the parameters and the table are held stable by the control while a stream runs.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import memory, wiring
from amaranth.lib.wiring import In, Out

from codesign.errors import ConfigError

LATENCY_CYCLES = 7
Q31_BITS = 31  # multipliers in [0, 2**31)
SHIFT_BITS = 6  # signed shifts -31..31


class VectorOp(enum.IntEnum):
    ADD = 0
    MUL = 1
    TABLE = 2


@dataclass(frozen=True)
class VectorSpec:
    lanes: int = 8
    act_bits: int = 8

    def __post_init__(self) -> None:
        if not isinstance(self.lanes, int) or self.lanes < 1:
            raise ConfigError(f"vector unit lanes must be a positive integer, not {self.lanes!r}")
        if not isinstance(self.act_bits, int) or not 2 <= self.act_bits <= 8:
            raise ConfigError(f"vector unit act_bits must be from 2 to 8 (a table per lane), not {self.act_bits!r}")


def _srdhm(m: Module, p, name: str):
    """gemmlowp's high half of a doubled product ``p = x * mult`` (``mult`` >= 0, so no saturation):
    ``(p + nudge) / 2**31`` truncated toward zero."""
    v = Signal(signed(len(p) + 1), name=f"{name}_nudged")
    m.d.comb += v.eq(p + Mux(p >= 0, Const(1 << 30, signed(32)), Const(1 - (1 << 30), signed(32))))
    neg = Signal(unsigned(len(v)), name=f"{name}_neg")
    m.d.comb += neg.eq(-v)
    return Mux(v >= 0, v >> 31, -(neg >> 31).as_signed())


def _rdbp(m: Module, x, e, name: str):
    """gemmlowp's ``RoundingDivideByPOT(x, e)``: ``x >> e`` rounded half away from zero."""
    mask = Signal(unsigned(33), name=f"{name}_mask")
    m.d.comb += mask.eq((Const(1, unsigned(33)) << e) - 1)
    rem = Signal(unsigned(33), name=f"{name}_rem")
    m.d.comb += rem.eq(x.as_unsigned() & mask)
    thr = Signal(unsigned(34), name=f"{name}_thr")
    m.d.comb += thr.eq((mask >> 1) + (x < 0))
    return (x >> e) + (rem > thr)


class VectorUnit(wiring.Component):
    """``lanes`` element-wise lanes (see the module docstring)."""

    def __init__(self, spec: VectorSpec) -> None:
        self.spec = spec
        b = spec.act_bits
        q = signed(Q31_BITS + 1)
        super().__init__({
            "op": In(2),
            "in_valid": In(1), "in_a": In(spec.lanes * b), "in_b": In(spec.lanes * b),
            "out_valid": Out(1), "out_data": Out(spec.lanes * b),
            "input1_offset": In(signed(b + 2)), "input2_offset": In(signed(b + 2)),
            "left_shift": In(range(32)),
            "input1_multiplier": In(q), "input1_shift": In(signed(SHIFT_BITS)),
            "input2_multiplier": In(q), "input2_shift": In(signed(SHIFT_BITS)),
            "output_multiplier": In(q), "output_shift": In(signed(SHIFT_BITS)),
            "output_offset": In(signed(b + 2)), "act_min": In(signed(b + 2)), "act_max": In(signed(b + 2)),
            "t_en": In(1), "t_addr": In(unsigned(b)), "t_data": In(unsigned(b)),
        })

    def elaborate(self, platform: object) -> Module:
        sp = self.spec
        b = sp.act_bits
        m = Module()
        valid = [Signal(name=f"valid{i}") for i in range(LATENCY_CYCLES)]
        op = [Signal(2, name=f"op{i}") for i in range(LATENCY_CYCLES)]
        m.d.sync += [valid[0].eq(self.in_valid), op[0].eq(self.op)]
        for i in range(1, LATENCY_CYCLES):
            m.d.sync += [valid[i].eq(valid[i - 1]), op[i].eq(op[i - 1])]
        m.d.comb += self.out_valid.eq(valid[-1])
        # the output's shift: left before the high multiply when positive, rounding right after
        out_left = Signal(range(32))
        out_right = Signal(range(33))
        m.d.comb += [out_left.eq(Mux(self.output_shift > 0, self.output_shift, 0)),
                     out_right.eq(Mux(self.output_shift < 0, -self.output_shift, 0))]
        in1_right = Signal(range(33))
        in2_right = Signal(range(33))
        m.d.comb += [in1_right.eq(Mux(self.input1_shift < 0, -self.input1_shift, 0)),
                     in2_right.eq(Mux(self.input2_shift < 0, -self.input2_shift, 0))]
        outs = []
        for lane in range(sp.lanes):
            a = self.in_a.word_select(lane, b).as_signed()
            bb = self.in_b.word_select(lane, b).as_signed()
            n = f"l{lane}"
            # table: one copy per lane, written together
            m.submodules[f"table{lane}"] = tab = memory.Memory(shape=unsigned(b), depth=1 << b, init=[])
            tw = tab.write_port()
            tr = tab.read_port()
            m.d.comb += [tw.addr.eq(self.t_addr), tw.data.eq(self.t_data), tw.en.eq(self.t_en),
                         tr.addr.eq(self.in_a.word_select(lane, b)), tr.en.eq(1)]
            # stage 1: the offset inputs (b + 3 bits)
            d1, d2 = Signal(signed(b + 3), name=f"{n}_d1"), Signal(signed(b + 3), name=f"{n}_d2")
            prod = Signal(signed(2 * b + 6), name=f"{n}_prod")
            m.d.sync += [d1.eq(a + self.input1_offset), d2.eq(bb + self.input2_offset),
                         prod.eq((a + self.input1_offset) * (bb + self.input2_offset))]
            # stage 2: the inputs' Q31 products, ((d << left_shift) * mult) as (d * mult) << left_shift: the
            # same number from a (b + 3) x 32-bit multiplier (two DSP blocks, not six)
            p1, p2 = Signal(signed(b + 3 + 32 + 31), name=f"{n}_p1"), Signal(signed(b + 3 + 32 + 31), name=f"{n}_p2")
            prod2 = Signal.like(prod, name=f"{n}_prod2")
            m.d.sync += [p1.eq((d1 * self.input1_multiplier) << self.left_shift),
                         p2.eq((d2 * self.input2_multiplier) << self.left_shift), prod2.eq(prod)]
            table2 = Signal(unsigned(b), name=f"{n}_table2")
            m.d.sync += table2.eq(tr.data)
            # stage 3: high halves
            h1, h2 = Signal(signed(b + 3 + 32 + 31 - 30), name=f"{n}_h1"), Signal(signed(b + 3 + 32 + 31 - 30),
                                                                                  name=f"{n}_h2")
            prod3 = Signal.like(prod, name=f"{n}_prod3")
            table3 = Signal.like(table2, name=f"{n}_table3")
            m.d.sync += [h1.eq(_srdhm(m, p1, f"{n}_s1")), h2.eq(_srdhm(m, p2, f"{n}_s2")), prod3.eq(prod2),
                         table3.eq(table2)]
            # stage 4: rounding shifts and the sum (ADD) or the product (MUL)
            raw = Signal(signed(44), name=f"{n}_raw")
            table4 = Signal.like(table2, name=f"{n}_table4")
            m.d.sync += [raw.eq(Mux(op[2] == VectorOp.ADD,
                                    _rdbp(m, h1, in1_right, f"{n}_r1") + _rdbp(m, h2, in2_right, f"{n}_r2"),
                                    prod3)),
                         table4.eq(table3)]
            # stage 5: the output's Q31 product
            po = Signal(signed(112), name=f"{n}_po")
            table5 = Signal.like(table2, name=f"{n}_table5")
            # ((raw << out_left) * mult) as (raw * mult) << out_left: the same number from a 44 x 32-bit
            # multiplier (the shift after it is wiring and multiplexers, not DSP blocks)
            m.d.sync += [po.eq((raw * self.output_multiplier) << out_left), table5.eq(table4)]
            # stage 6: its high half
            ho = Signal(signed(82), name=f"{n}_ho")
            table6 = Signal.like(table2, name=f"{n}_table6")
            m.d.sync += [ho.eq(_srdhm(m, po, f"{n}_so")), table6.eq(table5)]
            # stage 7: rounding shift, zero point, clamp (or the table's entry)
            y = Signal(signed(84), name=f"{n}_y")
            m.d.comb += y.eq(_rdbp(m, ho, out_right, f"{n}_ro") + self.output_offset)
            res = Signal(unsigned(b), name=f"{n}_out")
            clamped = Mux(y < self.act_min, self.act_min, Mux(y > self.act_max, self.act_max, y))
            m.d.sync += res.eq(Mux(op[5] == VectorOp.TABLE, table6, clamped[:b]))
            outs.append(res)
        m.d.comb += self.out_data.eq(Cat(*outs))
        return m
