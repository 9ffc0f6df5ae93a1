"""Processing elements and the systolic array (Amaranth 0.5 ``wiring.Component``s).

Two dataflows, built from a :class:`~codesign.hdl.plan.HardwarePlan`:

* **WS** (weight stationary). PE ``(r, c)`` holds a weight; activations enter row ``r`` from the
  left (skewed by ``r`` cycles inside the array) and move right one PE per cycle; partial sums
  move down one PE per cycle, each at the width the sum of the rows above needs (:func:`psum_shape`:
  12 bits down a 16-row INT4 column, not ``acc_bits``); column ``c``'s sums are deskewed by
  ``cols - 1 - c`` cycles, so the vector of an activation row presented at cycle ``t`` leaves at
  ``t + latency_cycles``.
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
from codesign.sim.tileplan import accumulator_bits_needed
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


def psum_shape(plan: HardwarePlan, n: int) -> Shape:
    """The shape of a WS column's partial sum after ``n`` PEs: a sum of ``n`` products held exactly
    (its extremes, :func:`~codesign.sim.tileplan.accumulator_bits_needed`), at most ``acc_bits`` (where
    sums wrap anyway). The column's sum starts at 0 above row 0, so row ``r``'s ``psum_out`` is a sum of
    ``r + 1`` products; sign- (or zero-) extended to ``acc_bits`` at the bottom it is the value a chain of
    ``acc_bits`` registers would hold, bit for bit. A 16-row INT4 column's sums need 12 bits, not 32."""
    return operand_shape(min(plan.acc_bits, accumulator_bits_needed(plan.config, n)), plan.acc_signed)


def _psum_ports(plan: HardwarePlan, row: int | None) -> tuple[Shape, Shape]:
    """A PE's partial sum in and out at row ``row`` (:func:`psum_shape`); without a row, ``acc_bits``."""
    if row is None:
        acc = _Shapes(plan).acc
        return acc, acc
    return psum_shape(plan, row), psum_shape(plan, row + 1)


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

    def __init__(self, plan: HardwarePlan, row: int | None = None):
        self._plan = plan
        s = _Shapes(plan)
        lane = act_lane_layout(plan)
        psum_in, psum_out = _psum_ports(plan, row)
        members: dict[str, object] = {
            "a_in": In(lane),
            "a_out": Out(lane),
            "w_data": In(s.weight),
            "w_valid": In(1),
            "w_load": In(1),
            "w_load_out": Out(1),
            "psum_in": In(psum_in),
            "psum_out": Out(psum_out),
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


#: operand width of the DSP blocks a packed multiply must fit (ECP5 MULT18X18D; Xilinx DSP48's B port)
PACK_OPERAND_BITS = 18


def packs_pairs(plan: HardwarePlan) -> bool:
    """Whether the WS array of ``plan`` builds its PEs in pairs sharing one multiplier
    (:class:`WSPairElement`): ``pack_products``, WS, no n:m skipping (a PE of a pair would select its
    own activation), at least two columns, and the packed multiply within an 18 x 18 block."""
    cfg = plan.config
    return (cfg.pack_products and plan.dataflow is Dataflow.WS and not plan.skip_nm and plan.cols >= 2
            and 2 * cfg.weight_bits + cfg.act_bits + 1 <= PACK_OPERAND_BITS)


class WSPairElement(wiring.Component):
    """Two neighbouring weight-stationary PEs of a row, ``L`` (column ``c``) and ``R`` (``c + 1``),
    sharing one multiplier; ports and cycles are those of two :class:`WSProcessingElement` s chained
    (``a_in``/``w_load`` enter ``L``, ``a_out``/``w_load_out`` leave ``R``; ``*_l`` and ``*_r`` the
    rest).

    ``R`` multiplies in cycle ``t + 1`` the activation ``L`` multiplies in cycle ``t``, so in cycle
    ``t`` one multiply ``P = a * (wl + wr * 2**k)`` gives both products: ``wl`` is ``L``'s weight
    (0 when ``L``'s MAC is disabled) and ``wr`` the weight ``R`` will hold in ``t + 1`` (its next
    value, 0 when ``R``'s MAC will be disabled). With ``k = weight_bits + act_bits`` a product fits
    in ``k`` bits, so ``P``'s low ``k`` bits are ``a * wl`` (signed where the product is) and
    ``(P - a * wl) >> k`` is ``a * wr``. ``P`` is ``L``'s product register (the same cycle as a PE's
    ``prod``); ``R``'s product is that high part a register later, as ``R``'s ``prod`` would be. So
    the sums and their cycles are exactly two PEs'; the multiply is ``act_bits x (2 * weight_bits +
    act_bits + 1)`` bits, one 18 x 18 DSP block for INT4 (two INT4 products a block)."""

    def __init__(self, plan: HardwarePlan, row: int | None = None):
        self._plan = plan
        s = _Shapes(plan)
        lane = act_lane_layout(plan)
        p_in, p_out = _psum_ports(plan, row)
        super().__init__({
            "a_in": In(lane), "a_out": Out(lane),
            "w_data_l": In(s.weight), "w_valid_l": In(1), "w_data_r": In(s.weight), "w_valid_r": In(1),
            "w_load": In(1), "w_load_out": Out(1),
            "psum_in_l": In(p_in), "psum_out_l": Out(p_out), "psum_in_r": In(p_in), "psum_out_r": Out(p_out),
            "enabled_l": Out(1), "enabled_r": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        plan = self._plan
        s = _Shapes(plan)
        k = plan.config.weight_bits + plan.config.act_bits
        wl, wr = Signal(s.weight, name="w_l"), Signal(s.weight, name="w_r")
        wl_valid, wr_valid = Signal(name="w_valid_l"), Signal(name="w_valid_r")
        a_mid = Signal.like(self.a_in, name="a_mid")  # R's activation (L's a_out)
        load_r = Signal(name="w_load_r")  # R's w_load (L's w_load_out)
        with m.If(self.w_load):
            m.d.sync += [wl.eq(self.w_data_l), wl_valid.eq(self.w_valid_l)]
        with m.If(load_r):
            m.d.sync += [wr.eq(self.w_data_r), wr_valid.eq(self.w_valid_r)]
        m.d.sync += [a_mid.eq(self.a_in), self.a_out.eq(a_mid), load_r.eq(self.w_load),
                     self.w_load_out.eq(load_r)]
        gating = plan.gating
        en_l = _enable(gating, self.a_in.valid, wl_valid, self.a_in.data, wl)
        m.d.comb += [self.enabled_l.eq(en_l),
                     self.enabled_r.eq(_enable(gating, a_mid.valid, wr_valid, a_mid.data, wr))]
        # R's weight and enable in the next cycle, when it multiplies this cycle's activation
        wr_next = Mux(load_r, self.w_data_r, wr)
        en_r_next = _enable(gating, self.a_in.valid, Mux(load_r, self.w_valid_r, wr_valid), self.a_in.data, wr_next)
        x = Signal(s.act, name="mul_a")
        packed = Mux(en_l, wl, 0) + Mux(en_r_next, wr_next, 0).shift_left(k)
        y = Signal(packed.shape(), name="mul_w")
        prod = Signal((x * y).shape(), name="prod")
        low = prod[:k].as_signed() if (s.act.signed or s.weight.signed) else prod[:k]
        high = prod.shift_right(k) + prod[k - 1] if low.shape().signed else prod.shift_right(k)
        prod_r = Signal(operand_shape(k, low.shape().signed), name="prod_r")
        m.d.sync += [x.eq(self.a_in.data), y.eq(packed), prod.eq(x * y), prod_r.eq(high),
                     self.psum_out_l.eq(self.psum_in_l + low), self.psum_out_r.eq(self.psum_in_r + prod_r)]
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
        # each row: its elements left to right, a PE or a pair (two columns, one multiplier)
        pair = packs_pairs(plan)
        spans = [(c, min(2, C - c) if pair else 1) for c in range(0, C, 2 if pair else 1)]
        # per PE (r, c): its weight (data, valid[, index]), partial sum in / out and enable ports
        w_ports: dict[tuple[int, int], tuple] = {}
        psum: dict[tuple[int, int], tuple] = {}
        enabled = []
        for r in range(R):
            prev = None
            for c, width in spans:
                if width == 2:
                    e = m.submodules[f"pe_{r}_{c}_{c + 1}"] = WSPairElement(plan, r)
                    w_ports[r, c] = (e.w_data_l, e.w_valid_l)
                    w_ports[r, c + 1] = (e.w_data_r, e.w_valid_r)
                    psum[r, c] = (e.psum_in_l, e.psum_out_l)
                    psum[r, c + 1] = (e.psum_in_r, e.psum_out_r)
                    enabled += [e.enabled_l, e.enabled_r]
                else:
                    e = m.submodules[f"pe_{r}_{c}"] = WSProcessingElement(plan, r)
                    w_ports[r, c] = (e.w_data, e.w_valid, e.w_index) if plan.skip_nm else (e.w_data, e.w_valid)
                    psum[r, c] = (e.psum_in, e.psum_out)
                    enabled.append(e.enabled)
                if prev is None:  # left edge: activation row r delayed by r
                    a = delayed(m, self.a_vec[r], r, f"a_skew{r}", act_lane_layout(plan))
                    m.d.comb += [e.a_in.eq(a), e.w_load.eq(self.w_load & (self.w_row == r))]
                else:
                    m.d.comb += [e.a_in.eq(prev.a_out), e.w_load.eq(prev.w_load_out)]
                prev = e
        # top edge: weight bus of column c delayed by c, shared by the column's PEs
        for c in range(C):
            w = delayed(m, self.w_vec[c], c, f"w_skew{c}", weight_lane_layout(plan))
            for r in range(R):
                m.d.comb += [w_ports[r, c][0].eq(w.data), w_ports[r, c][1].eq(w.valid)]
                if plan.skip_nm:
                    m.d.comb += w_ports[r, c][2].eq(w.index)
            m.d.comb += psum[0, c][0].eq(0)
            for r in range(1, R):
                m.d.comb += psum[r, c][0].eq(psum[r - 1, c][1])
            # deskewed at the column's width, then extended to acc_bits (psum_shape)
            out = delayed(m, psum[R - 1, c][1], C - 1 - c, f"deskew{c}")
            m.d.comb += self.out_vec[c].eq(out)
        m.d.comb += self.enabled_count.eq(popcount(enabled))
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
