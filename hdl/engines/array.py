"""Processing elements and the systolic array (Amaranth 0.5 ``wiring.Component``s).

Two dataflows, built from a :class:`~codesign.hdl.plan.HardwarePlan`:

* **WS** (weight stationary). PE ``(r, c)`` holds a weight; activations enter row ``r`` from the
  left (skewed by ``r`` cycles inside the array) and move right one PE per cycle; partial sums
  move down one PE per cycle; column ``c``'s sums are deskewed by ``cols - 1 - c`` cycles, so the
  vector of an activation row presented at cycle ``t`` leaves at ``t + latency_cycles``.
  Weights are written in a wave: a row-load strobe enters row ``r`` at the left and moves right
  with the weight bus of column ``c`` delayed by ``c`` cycles, so the weights of the next fold
  follow the last activations of the current fold through the array.
* **OS** (output stationary). PE ``(r, c)`` accumulates ``C[r, c]``; A lanes enter from the left
  (row ``r`` skewed by ``r``), B lanes from the top (column ``c`` skewed by ``c``). A lane's
  ``first`` flag marks the first product of a fold: the PE then hands its sum to a result
  register and restarts the sum. ``drain_row`` selects one row of result registers for output.

A MAC is *enabled* when both of its operands are valid (inside M, N, K, not padding) and, with
zero-gating, both are non-zero. ``enabled_count`` is the number of PEs enabled in this cycle.
"""

from __future__ import annotations

from amaranth.hdl import Array, Const, Module, Mux, Shape, Signal, signed, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from codesign.hdl.plan import HardwarePlan
from codesign.sim.config import Dataflow
from codesign.sim.timing import PE_PRODUCT_CYCLES


def operand_shape(bits: int, is_signed: bool) -> Shape:
    return signed(bits) if is_signed else unsigned(bits)


def lane_layout(shape: Shape, *, first: bool = False, index_bits: int = 0) -> data.StructLayout:
    fields: dict[str, object] = {"data": shape, "valid": 1}
    if first:
        fields["first"] = 1
    if index_bits:
        fields["index"] = unsigned(index_bits)
    return data.StructLayout(fields)


def group_layout(shape: Shape, m: int) -> data.StructLayout:
    """An activation lane of the n:m skipping array: the ``m`` activations of a group."""
    return data.StructLayout({"data": data.ArrayLayout(shape, m), "valid": 1})


def act_lane_layout(plan: HardwarePlan) -> data.StructLayout:
    """What enters a WS PE row: one activation, or with skipping its group of ``m``."""
    s = _Shapes(plan)
    return group_layout(s.act, plan.skip_nm[1]) if plan.skip_nm else lane_layout(s.act)


def weight_lane_layout(plan: HardwarePlan) -> data.StructLayout:
    """What a WS PE column's weight bus carries: the value, with skipping its index."""
    return lane_layout(_Shapes(plan).weight, index_bits=plan.index_bits)


def popcount(bits: list) -> object:
    """Balanced adder tree over 1-bit values."""
    if not bits:
        return Const(0, 1)
    level = list(bits)
    while len(level) > 1:
        nxt = [level[i] + level[i + 1] for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            nxt.append(level[-1])
        level = nxt
    return level[0]


def delayed(m: Module, value, cycles: int, name: str, shape=None):
    """``value`` delayed by ``cycles`` registers (``cycles == 0``: the value itself)."""
    cur = value
    for i in range(cycles):
        reg = Signal(shape if shape is not None else value.shape(), name=f"{name}_d{i + 1}")
        m.d.sync += reg.eq(cur)
        cur = reg
    return cur


class _Shapes:
    def __init__(self, plan: HardwarePlan):
        cfg = plan.config
        self.act = operand_shape(cfg.act_bits, cfg.act_signed)
        self.weight = operand_shape(cfg.weight_bits, cfg.weight_signed)
        self.acc = operand_shape(plan.acc_bits, plan.acc_signed)


def _enable(gating: bool, a_valid, w_valid, a, w):
    en = a_valid & w_valid
    if gating:
        en = en & (a != 0) & (w != 0)
    return en


class WSProcessingElement(wiring.Component):
    """One weight-stationary PE: ``x <= enabled ? a : 0`` and ``y <= w``, ``prod <= x * y``, then
    ``psum_out <= psum_in + prod``.

    The multiplier's operands and its product are registered (``sim.timing.PE_PRODUCT_CYCLES``): the
    multiply and the accumulate's carry chain are a cycle each, and the multiplier's inputs come from
    registers that only feed it, so place and route puts them beside the DSP block. On ECP5 the 4x4 WS
    top's critical path was the weight register through the multiply and the 32-bit add into
    ``psum_out`` (13.6 ns); with the product alone registered it was the weight register's 4.6 ns route
    to the DSP block and the block's 7.9 ns to the product (12.4 ns). Every PE's sum comes two cycles
    later, the partial sum from the PE above too, so the skew is unchanged and the array's latency grows
    by two cycles.

    With n:m skipping the PE holds a weight slot (value and index) and its row carries the group
    of ``m`` activations; the PE multiplies the one its index selects (as sparse tensor cores do)."""

    def __init__(self, plan: HardwarePlan):
        self._plan = plan
        s = _Shapes(plan)
        lane = act_lane_layout(plan)
        members: dict[str, object] = {
            "a_in": In(lane),
            "a_out": Out(lane),
            "w_data": In(s.weight),
            "w_valid": In(1),
            "w_load": In(1),
            "w_load_out": Out(1),
            "psum_in": In(s.acc),
            "psum_out": Out(s.acc),
            "enabled": Out(1),
        }
        if plan.skip_nm:
            members["w_index"] = In(plan.index_bits)
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        s = _Shapes(self._plan)
        w = Signal(s.weight)
        w_valid = Signal()
        with m.If(self.w_load):
            m.d.sync += [w.eq(self.w_data), w_valid.eq(self.w_valid)]
        m.d.sync += [self.a_out.eq(self.a_in), self.w_load_out.eq(self.w_load)]
        if self._plan.skip_nm:
            idx = Signal(self._plan.index_bits)
            with m.If(self.w_load):
                m.d.sync += idx.eq(self.w_index)
            a = self.a_in.data[idx]
        else:
            a = self.a_in.data
        en = _enable(self._plan.gating, self.a_in.valid, w_valid, a, w)
        m.d.comb += self.enabled.eq(en)
        x = Signal(s.act, name="mul_a")  # the multiplier's operands: a disabled MAC multiplies a zero
        y = Signal(s.weight, name="mul_w")
        prod = Signal((x * y).shape(), name="prod")
        m.d.sync += [x.eq(Mux(en, a, 0)), y.eq(w), prod.eq(x * y), self.psum_out.eq(self.psum_in + prod)]
        return m


class OSProcessingElement(wiring.Component):
    """One output-stationary PE: accumulates ``a * b``; on ``first`` hands the sum to ``result``."""

    def __init__(self, plan: HardwarePlan):
        self._plan = plan
        s = _Shapes(plan)
        a_lane = lane_layout(s.act, first=True)
        b_lane = lane_layout(s.weight)
        super().__init__({
            "a_in": In(a_lane),
            "a_out": Out(a_lane),
            "b_in": In(b_lane),
            "b_out": Out(b_lane),
            "result": Out(s.acc),
            "enabled": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        s = _Shapes(self._plan)
        acc = Signal(s.acc)
        m.d.sync += [self.a_out.eq(self.a_in), self.b_out.eq(self.b_in)]
        en = _enable(self._plan.gating, self.a_in.valid, self.b_in.valid, self.a_in.data, self.b_in.data)
        m.d.comb += self.enabled.eq(en)
        prod = Mux(en, self.a_in.data * self.b_in.data, 0)
        with m.If(self.a_in.first):
            m.d.sync += [acc.eq(prod), self.result.eq(acc)]
        with m.Else():
            m.d.sync += acc.eq(acc + prod)
        return m


class SystolicArray(wiring.Component):
    """``rows x cols`` PEs of the plan's dataflow, with the edge skew/deskew registers inside.

    WS ports: ``a_vec`` (rows lanes: data, valid), ``w_vec`` (cols lanes: data, valid),
    ``w_load`` + ``w_row`` (write ``w_vec`` into that PE row, as a wave), ``out_vec`` (cols sums).
    OS ports: ``a_vec`` (rows lanes: data, valid, first), ``b_vec`` (cols lanes: data, valid),
    ``drain_row`` (selects a row of result registers onto ``out_vec``, combinationally).
    Both: ``enabled_count`` (PEs enabled this cycle).
    """

    def __init__(self, plan: HardwarePlan):
        self._plan = plan
        s = _Shapes(plan)
        r, c = plan.rows, plan.cols
        members: dict[str, object] = {}
        if plan.dataflow is Dataflow.WS:
            members["a_vec"] = In(data.ArrayLayout(act_lane_layout(plan), r))
            members["w_vec"] = In(data.ArrayLayout(weight_lane_layout(plan), c))
            members["w_load"] = In(1)
            members["w_row"] = In(range(r))
        else:
            members["a_vec"] = In(data.ArrayLayout(lane_layout(s.act, first=True), r))
            members["b_vec"] = In(data.ArrayLayout(lane_layout(s.weight), c))
            members["drain_row"] = In(range(r))
        members["out_vec"] = Out(data.ArrayLayout(s.acc, c))
        members["enabled_count"] = Out(range(r * c + 1))
        super().__init__(members)

    # -- published timing -----------------------------------------------------------------------
    @property
    def latency_cycles(self) -> int:
        """WS: cycles from an activation row at ``a_vec`` to its sums at ``out_vec``.
        OS: cycles from a ``first`` wave at ``a_vec`` to the captured row ``rows - 1`` of the last
        column being readable (the earliest full drain start is this many cycles later)."""
        if self._plan.dataflow is Dataflow.WS:
            return self._plan.rows + self._plan.cols - 1 + PE_PRODUCT_CYCLES
        return self._plan.rows + self._plan.cols - 1

    def elaborate(self, platform):
        if self._plan.dataflow is Dataflow.WS:
            return self._elaborate_ws()
        return self._elaborate_os()

    def _elaborate_ws(self):
        plan = self._plan
        m = Module()
        R, C = plan.rows, plan.cols
        s = _Shapes(plan)
        pes = [[WSProcessingElement(plan) for _ in range(C)] for _ in range(R)]
        for r in range(R):
            for c in range(C):
                m.submodules[f"pe_{r}_{c}"] = pes[r][c]
        # left edge: activation row r delayed by r
        for r in range(R):
            a = delayed(m, self.a_vec[r], r, f"a_skew{r}", act_lane_layout(plan))
            m.d.comb += pes[r][0].a_in.eq(a)
            m.d.comb += pes[r][0].w_load.eq(self.w_load & (self.w_row == r))
            for c in range(1, C):
                m.d.comb += [pes[r][c].a_in.eq(pes[r][c - 1].a_out),
                             pes[r][c].w_load.eq(pes[r][c - 1].w_load_out)]
        # top edge: weight bus of column c delayed by c, shared by the column's PEs
        for c in range(C):
            w = delayed(m, self.w_vec[c], c, f"w_skew{c}", weight_lane_layout(plan))
            for r in range(R):
                m.d.comb += [pes[r][c].w_data.eq(w.data), pes[r][c].w_valid.eq(w.valid)]
                if plan.skip_nm:
                    m.d.comb += pes[r][c].w_index.eq(w.index)
            m.d.comb += pes[0][c].psum_in.eq(0)
            for r in range(1, R):
                m.d.comb += pes[r][c].psum_in.eq(pes[r - 1][c].psum_out)
            out = delayed(m, pes[R - 1][c].psum_out, C - 1 - c, f"deskew{c}", s.acc)
            m.d.comb += self.out_vec[c].eq(out)
        m.d.comb += self.enabled_count.eq(popcount([pes[r][c].enabled for r in range(R) for c in range(C)]))
        return m

    def _elaborate_os(self):
        plan = self._plan
        m = Module()
        R, C = plan.rows, plan.cols
        s = _Shapes(plan)
        pes = [[OSProcessingElement(plan) for _ in range(C)] for _ in range(R)]
        for r in range(R):
            for c in range(C):
                m.submodules[f"pe_{r}_{c}"] = pes[r][c]
        for r in range(R):
            a = delayed(m, self.a_vec[r], r, f"a_skew{r}", lane_layout(s.act, first=True))
            m.d.comb += pes[r][0].a_in.eq(a)
            for c in range(1, C):
                m.d.comb += pes[r][c].a_in.eq(pes[r][c - 1].a_out)
        for c in range(C):
            b = delayed(m, self.b_vec[c], c, f"b_skew{c}", lane_layout(s.weight))
            m.d.comb += pes[0][c].b_in.eq(b)
            for r in range(1, R):
                m.d.comb += pes[r][c].b_in.eq(pes[r - 1][c].b_out)
            column = Array([pes[r][c].result for r in range(R)])
            m.d.comb += self.out_vec[c].eq(column[self.drain_row])
        m.d.comb += self.enabled_count.eq(popcount([pes[r][c].enabled for r in range(R) for c in range(C)]))
        return m
