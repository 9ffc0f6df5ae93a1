"""The depthwise engine: lanes of channels, each with a ``K x K`` window of multipliers, fed by a
line buffer over a channels-last feature map.

Why its own engine: on the systolic array a depthwise convolution is ``C`` GEMMs with ``N = 1`` (one
column of ``cols`` busy) over an im2col'd input ``R * S`` times the feature map. Edge accelerators
(the Xilinx DPU, Edge TPU-class designs) give depthwise layers a datapath of their own; this is one.

**Datapath.** ``lanes`` channels at once (lane ``l`` is channel ``group * lanes + l`` of the input
buffer's channels-last words). The engine scans the *padded* input plane in raster order, one
position a cycle: position ``(y, x)`` reads the input word of pixel ``(y - pad_t, x - pad_l)`` from
the input buffer when it lies inside the image, and makes a zero when it lies in the padding
(padding is generated on chip, never stored). ``K - 1`` line buffers (one buffer word of ``lanes``
activations per column, ``width_max`` deep) hold the rows above; with the current word they give a
column of ``K`` values that shifts into a ``K x K`` window register per lane. Each lane multiplies
its window by its ``K x K`` weights (``K * K`` multipliers and an adder tree per lane, pipelined: the
products, then the sum, each in a register of their own) and, when the window's bottom-right
corner ``(y, x)`` is an output position, the sum is written to the output buffer.

A kernel smaller than ``K`` (``R x S``) is placed in the bottom-right corner of the ``K x K`` weight
registers, the other weights zero (:func:`weight_slots`): the window ending at ``(y, x)`` then
covers exactly the kernel's taps, with no multiplexers on the window. Output ``(oy, ox)`` is the
window ending at ``(oy * stride_h + R - 1, ox * stride_w + S - 1)``; positions in between (strides)
produce nothing. Window entries that belong to the previous row (left of the row's start) or to
rows above the plane only ever meet zero weights.

**Addresses.** Inside-image pixels are visited in raster order, so the input address is a pointer
that advances by ``in_stride`` words per inside pixel from ``in_base``; outputs are produced in
raster order, so the output address advances by ``out_stride`` words per output from ``out_base``.
A channels-last map with ``C`` channels and ``lanes`` per word has ``ceil(C / lanes)`` words per
pixel: lane group ``g`` reads from ``in_base + g`` with ``in_stride = ceil(C / lanes)``.

**Requantized write-back** (``requantize=True``): each lane's sum gets the channel's int32 bias, is
scaled by its 15-bit multiplier and shift with rounding half up, offset by the zero point and
clamped, exactly :func:`codesign.workloads.intarith.requantize` (TFLite's integer arithmetic, the
GEMM write-back's), in two more pipeline stages; outputs are then ``act_bits`` wide per lane. The
per-lane parameters are written before ``start`` like the weights.

**Pooling** (``pooling=True``): the same scan, windows and line buffers compute max pooling (``mode``
MAX: the largest activation among the kernel's taps inside the image; padding never wins) and, with
``requantize``, average pooling (``mode`` AVG: the sum of the kernel's taps inside the image divided by
their count, rounded half away from zero, as TFLite's ``AveragePool``). Each window entry carries an
*inside* bit through the line buffers for that. The division by the count (at most ``K * K``) is a
multiply by ``ceil(2**24 / count)`` and a shift, exact for every sum a window of 8-bit values can make
(:func:`avg_divide`, checked exhaustively in the tests). Without ``requantize`` (the whole-layer top's
engine, whose DMA write-back requantizes) pooling is MAX only: the maximum is written sign-extended (or
zero-extended, unsigned activations) into the lane's accumulator bits, in the same cycles as a
convolution's sums; the top passes it through the write-back's identity table. (A window wholly in the
padding has no maximum: the engine writes ``-2**act_bits``, which the identity table clamps; the
simulator's plan refuses such layers.)

**Timing** (:func:`pass_cycles`, the contract the simulator uses): ``busy`` rises the cycle after
``start`` is sampled and stays high for ``H_pad * W_pad + latency_cycles(requantize)`` cycles (one
position a cycle, then the pipeline drains: buffer read, window, products, sum, [scale, round and
clamp,] write); ``done`` is high for one cycle after ``busy`` falls. No stalls: the buffers are on chip.
An output is written ``latency_cycles(requantize) - 1`` cycles after its window's last position is
scanned (the cycle ``out_en`` is high; the last one's is the last cycle but one of ``busy``).

**Stream mode** (``stream=True`` builds the ports ``stream``, ``s_valid``, ``s_data``, ``out_rebase``;
the engine as a stage of a write-back, fed activations as they are produced, not from the input
buffer). ``stream``, sampled with ``start``, picks it for the pass: from the cycle after ``start`` the
scan takes one padded position per cycle in which ``s_valid`` is high and stands still in the others
(gaps of any length, anywhere; ``s_valid`` outside the scan is ignored). Each ``s_valid`` cycle is the
next padded position in raster order (:func:`stream_positions` a pass, the padding's included): inside
the image its activations are that cycle's ``s_data``; in the padding ``s_data`` is ignored (the
engine makes the zero). ``s_data`` is registered once, so it meets the pipeline where the buffer's read
data does, and the valid bits behind the scan follow ``s_valid``: a gap cycle writes no line buffer,
shifts no window, writes no output. So an output is written ``latency_cycles(requantize) - 1`` cycles
after its position's ``s_valid`` cycle; ``busy`` is high from the cycle after ``start`` to
``latency_cycles(requantize)`` cycles after the last position's ``s_valid`` cycle, ``done`` the cycle
after. The input buffer is never read (``in_en`` stays 0). ``out_rebase`` (either mode) sets the
output pointer to that cycle's ``out_base`` (next cycle's pointer), winning over an output's increment
in the same cycle; the driver pulses it with no output in flight (between passes, or in a gap of the
stream once the outputs so far are written: the line buffers and window carry on).

Dilation is 1 (no depthwise layer of the zoo dilates); the host refuses others in one line.
"""

from __future__ import annotations

from dataclasses import dataclass

from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import memory, wiring
from amaranth.lib.wiring import In, Out

from codesign.errors import ConfigError
from codesign.hdl.engines.array import popcount as adder_tree  # a balanced adder tree over any values

LATENCY_CYCLES = 5  # after the last position: read, window, products, sum, write; then done
MODE_MAC, MODE_MAX, MODE_AVG = 0, 1, 2  # depthwise convolution, max pooling, average pooling
AVG_SHIFT = 24  # average pooling divides by a count c <= K*K as (n * ceil(2**24 / c)) >> 24: exact here
REQUANT_STAGES = 2  # the requantizing write-back: (sum + bias) * mult, then round, shift, offset, clamp
SHIFT_BITS = 6  # requantize shifts 0..40 (codesign.workloads.intarith.MAX_SHIFT)


def avg_divide(total: int, count: int) -> int:
    """Average pooling's rounded division as the hardware does it: ``n = |total| + count // 2``,
    ``(n * ceil(2**AVG_SHIFT / count)) >> AVG_SHIFT``, the sign put back."""
    n = abs(total) + count // 2
    q = (n * -(-(1 << AVG_SHIFT) // count)) >> AVG_SHIFT
    return -q if total < 0 else q


def latency_cycles(requantize: bool = False) -> int:
    return LATENCY_CYCLES + (REQUANT_STAGES if requantize else 0)


def stream_positions(h_pad: int, w_pad: int) -> int:
    """``s_valid`` cycles of one stream-mode pass over a padded ``h_pad x w_pad`` plane: every padded
    position, the padding included."""
    return h_pad * w_pad


def pass_cycles(h_pad: int, w_pad: int, requantize: bool = False) -> int:
    """Cycles ``busy`` is high for one pass over a padded ``h_pad x w_pad`` plane."""
    return h_pad * w_pad + latency_cycles(requantize)


@dataclass(frozen=True)
class DepthwiseSpec:
    """What one depthwise engine is built for."""

    lanes: int = 8
    kmax: int = 3
    act_bits: int = 8
    act_signed: bool = True
    weight_bits: int = 8
    weight_signed: bool = True
    acc_bits: int = 32
    width_max: int = 256  # padded input width the line buffers hold
    requantize: bool = False  # write act_bits outputs (per-channel bias, multiplier, shift, zero point, clamp)
    pooling: bool = False  # also max pooling (mode MAX), and average pooling (mode AVG) with requantize
    addr_bits: int = 16  # input/output buffer word addresses
    dim_bits: int = 10  # heights, widths, paddings
    stream: bool = False  # also stream mode: ports stream, s_valid, s_data and out_rebase (module docstring)

    def __post_init__(self) -> None:
        for name, lo in (("lanes", 1), ("kmax", 1), ("act_bits", 2), ("weight_bits", 2), ("acc_bits", 8),
                         ("width_max", 1), ("addr_bits", 1), ("dim_bits", 2)):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < lo:
                raise ConfigError(f"depthwise engine {name} must be an integer of at least {lo}, not {v!r}")

    @property
    def out_bits(self) -> int:
        """Bits of an output lane: ``act_bits`` when requantizing, else the accumulator's."""
        return self.act_bits if self.requantize else self.acc_bits

    def check_layer(self, *, in_h: int, in_w: int, kernel: tuple[int, int], stride: tuple[int, int],
                    padding: tuple[int, int, int, int], dilation: tuple[int, int] = (1, 1)) -> None:
        """One line naming what this engine cannot run (``padding``: top, left, bottom, right)."""
        r, s = kernel
        if dilation != (1, 1):
            raise ConfigError(f"dilation must be 1 for the depthwise engine, not {dilation!r}")
        if max(r, s) > self.kmax:
            raise ConfigError(f"kernel must be at most {self.kmax}x{self.kmax} for this depthwise engine, "
                              f"not {r}x{s}")
        w_pad = in_w + padding[1] + padding[3]
        h_pad = in_h + padding[0] + padding[2]
        if w_pad > self.width_max:
            raise ConfigError(f"padded input width must be at most {self.width_max} (the line buffer), not {w_pad}")
        if h_pad < r or w_pad < s:
            raise ConfigError(f"padded input {h_pad}x{w_pad} must be at least the kernel {r}x{s}")
        for name, v in (("stride", stride[0]), ("stride", stride[1])):
            if not 1 <= v < (1 << self.dim_bits):
                raise ConfigError(f"{name} must be from 1 to {(1 << self.dim_bits) - 1}, not {v}")
        if max(h_pad, w_pad, *padding) >= 1 << self.dim_bits:
            raise ConfigError(f"padded input {h_pad}x{w_pad} needs more than {self.dim_bits} bits")


def weight_slots(w: list[list[list[int]]], kmax: int) -> list[list[int]]:
    """The ``kmax * kmax`` weight slots (each ``lanes`` values) for a kernel ``w[R][S][lanes]``: the
    kernel in the bottom-right corner, zeros elsewhere (slot ``i * kmax + j`` is window row ``i``,
    column ``j``)."""
    r, s = len(w), len(w[0])
    lanes = len(w[0][0])
    slots = [[0] * lanes for _ in range(kmax * kmax)]
    for i in range(r):
        for j in range(s):
            slots[(kmax - r + i) * kmax + (kmax - s + j)] = list(w[i][j])
    return slots


class DepthwiseEngine(wiring.Component):
    """One depthwise pass over a lane group's padded plane (see the module docstring)."""

    def __init__(self, spec: DepthwiseSpec) -> None:
        self.spec = spec
        sp = spec
        d, a = sp.dim_bits, sp.addr_bits
        super().__init__({
            "start": In(1),
            "busy": Out(1),
            "done": Out(1),
            # the pass, sampled with start
            "in_h": In(d), "in_w": In(d),
            "pad_t": In(d), "pad_l": In(d), "pad_b": In(d), "pad_r": In(d),
            "kernel_h": In(d), "kernel_w": In(d),
            "stride_h": In(d), "stride_w": In(d),
            "in_base": In(a), "in_stride": In(a), "out_base": In(a), "out_stride": In(a),
            # weight slots, written before start: slot i * kmax + j holds lanes weights
            "w_en": In(1), "w_addr": In(range(sp.kmax * sp.kmax)), "w_data": In(sp.lanes * sp.weight_bits),
            "w_clear": In(1),  # every slot to zero (a kernel smaller than kmax x kmax is written into a corner)
            # input buffer read port (data one cycle after the address)
            "in_addr": Out(a), "in_en": Out(1), "in_data": In(sp.lanes * sp.act_bits),
            # output buffer write port: lanes accumulators
            "out_addr": Out(a), "out_en": Out(1), "out_data": Out(sp.lanes * sp.out_bits),
            # requantization (with spec.requantize): per-lane parameters written before start, the
            # output zero point and clamp sampled at start
            "q_en": In(1), "q_lane": In(range(max(2, sp.lanes))), "q_bias": In(signed(32)),
            "q_mult": In(unsigned(15)), "q_shift": In(unsigned(SHIFT_BITS)),
            "zero_point": In(signed(sp.act_bits + 1)), "clamp_lo": In(signed(sp.act_bits + 1)),
            "clamp_hi": In(signed(sp.act_bits + 1)),
            "mode": In(2),  # MODE_MAC, MODE_MAX, MODE_AVG (pooling needs spec.pooling, AVG requantize), sampled
            # at start
            **({
                "stream": In(1),  # sampled at start: 1 the stream mode, 0 the buffer mode
                "s_valid": In(1), "s_data": In(sp.lanes * sp.act_bits),  # one padded position a valid cycle
                "out_rebase": In(1),  # the output pointer to out_base (next cycle's), over an increment
            } if sp.stream else {}),
        })

    def elaborate(self, platform: object) -> Module:
        sp = self.spec
        k, lanes = sp.kmax, sp.lanes
        m = Module()

        # -- the pass's parameters, sampled at start ---------------------------------------------
        d = sp.dim_bits
        h_pad, w_pad = Signal(d + 2), Signal(d + 2)
        pad_t, pad_l = Signal(d), Signal(d)
        top_end, left_end = Signal(d + 2), Signal(d + 2)  # first row/column past the image
        kh1, kw1 = Signal(d), Signal(d)  # kernel height/width - 1: first output row/column
        st_h, st_w = Signal(d), Signal(d)
        in_stride, out_stride = Signal(sp.addr_bits), Signal(sp.addr_bits)
        in_ptr, out_ptr = Signal(sp.addr_bits), Signal(sp.addr_bits)
        mode = Signal(2)

        # -- weights: kmax * kmax slots of lanes values ----------------------------------------
        weights = Array(Signal(sp.lanes * sp.weight_bits, name=f"w_slot{i}") for i in range(k * k))
        with m.If(self.w_clear):
            m.d.sync += [w.eq(0) for w in weights]
        with m.Elif(self.w_en):
            m.d.sync += weights[self.w_addr].eq(self.w_data)

        # -- the scan: one padded position a cycle ---------------------------------------------
        y, x = Signal(d + 2), Signal(d + 2)
        yph, xph = Signal(d), Signal(d)  # stride phase of the row / column (0: an output one)
        scanning = Signal()
        latency = latency_cycles(sp.requantize)
        drain = Signal(range(latency + 1))
        m.d.comb += self.busy.eq(scanning | (drain != 0))
        m.d.sync += self.done.eq(0)
        inside = Signal()
        m.d.comb += inside.eq((y >= pad_t) & (y < top_end) & (x >= pad_l) & (x < left_end))
        # step: the scan takes its position this cycle (stream mode: only with s_valid)
        step, stream_mode = scanning, Const(0, 1)
        if sp.stream:
            step, stream_mode = Signal(), Signal()
            m.d.comb += step.eq(scanning & (self.s_valid | ~stream_mode))
        out_here = Signal()
        m.d.comb += out_here.eq((y >= kh1) & (x >= kw1) & (yph == 0) & (xph == 0))
        last = Signal()
        m.d.comb += last.eq((y == h_pad - 1) & (x == w_pad - 1))

        with m.If(self.start & ~self.busy):
            m.d.sync += [
                pad_t.eq(self.pad_t), pad_l.eq(self.pad_l),
                top_end.eq(self.pad_t + self.in_h), left_end.eq(self.pad_l + self.in_w),
                h_pad.eq(self.pad_t + self.in_h + self.pad_b), w_pad.eq(self.pad_l + self.in_w + self.pad_r),
                kh1.eq(self.kernel_h - 1), kw1.eq(self.kernel_w - 1),
                st_h.eq(self.stride_h), st_w.eq(self.stride_w),
                in_stride.eq(self.in_stride), out_stride.eq(self.out_stride),
                in_ptr.eq(self.in_base), out_ptr.eq(self.out_base),
                y.eq(0), x.eq(0), yph.eq(0), xph.eq(0), scanning.eq(1),
                mode.eq(self.mode if sp.pooling else MODE_MAC),
            ]
            if sp.stream:
                m.d.sync += stream_mode.eq(self.stream)
        with m.Elif(step):
            with m.If(inside):
                m.d.sync += in_ptr.eq(in_ptr + in_stride)
            with m.If(last):
                m.d.sync += [scanning.eq(0), drain.eq(latency)]
            with m.Elif(x == w_pad - 1):
                m.d.sync += [x.eq(0), xph.eq(0), y.eq(y + 1)]
                with m.If(y >= kh1):  # the next row's phase: output rows are kh1, kh1 + st_h, ...
                    m.d.sync += yph.eq(Mux(yph + 1 == st_h, 0, yph + 1))
            with m.Else():
                m.d.sync += x.eq(x + 1)
                with m.If(x >= kw1):
                    m.d.sync += xph.eq(Mux(xph + 1 == st_w, 0, xph + 1))
        with m.Elif(drain != 0):
            m.d.sync += drain.eq(drain - 1)
            with m.If(drain == 1):
                m.d.sync += self.done.eq(1)
        m.d.comb += [self.in_addr.eq(in_ptr),
                     self.in_en.eq(scanning & inside & ~stream_mode if sp.stream else scanning & inside)]

        # -- stage B: the position's word (or padding zero) and the line buffers' column ---------
        b_valid, b_inside, b_out, b_x = Signal(), Signal(), Signal(), Signal(d + 2)
        m.d.sync += [b_valid.eq(step), b_inside.eq(step & inside), b_out.eq(step & out_here), b_x.eq(x)]
        word_bits = lanes * sp.act_bits
        word = self.in_data
        if sp.stream:  # s_data registered: stage B sees it where it sees the buffer's read data
            s_word = Signal(word_bits)
            m.d.sync += s_word.eq(self.s_data)
            word = Mux(stream_mode, s_word, self.in_data)
        v = Signal(word_bits + 1)  # the lanes' activations and the inside bit on top
        m.d.comb += v.eq(Mux(b_inside, Cat(word, Const(1, 1)), 0))
        column = [v]  # column[0]: row y (the window's bottom row), column[j]: row y - j
        for j in range(k - 1):
            m.submodules[f"line{j}"] = lb = memory.Memory(shape=unsigned(word_bits + 1), depth=sp.width_max,
                                                          init=[])
            wr = lb.write_port()
            rd = lb.read_port(transparent_for=(wr,))
            m.d.comb += [rd.addr.eq(x), rd.en.eq(1),
                         wr.addr.eq(b_x), wr.data.eq(column[j]), wr.en.eq(b_valid)]
            column.append(rd.data)
        # window[i][jj]: row i (0 top) and column jj (0 left) of the K x K window, per lane (+ inside bit)
        window = [[Signal(word_bits + 1, name=f"win{i}_{jj}") for jj in range(k)] for i in range(k)]
        with m.If(b_valid):
            for i in range(k):
                m.d.sync += [window[i][jj].eq(window[i][jj + 1]) for jj in range(k - 1)]
                m.d.sync += window[i][k - 1].eq(column[k - 1 - i])
        # a tap counts for pooling when it lies in the kernel (the bottom-right R x S corner) and inside
        taps = Signal(k * k)
        for i in range(k):
            for jj in range(k):
                m.d.comb += taps[i * k + jj].eq((i + kh1 >= k - 1) & (jj + kw1 >= k - 1) & window[i][jj][word_bits])

        # -- stage C: products (registered); stage D: sums (registered); stage E: the write ------
        c_out, c_inside = Signal(), Signal()
        m.d.sync += [c_out.eq(b_out), c_inside.eq(b_inside)]
        prod_shape = signed(sp.act_bits + sp.weight_bits + 1)
        products = [[Signal(prod_shape, name=f"p{lane}_{i}") for i in range(k * k)] for lane in range(lanes)]
        for lane in range(lanes):
            for i in range(k * k):
                a_val = window[i // k][i % k].word_select(lane, sp.act_bits).as_signed() if sp.act_signed \
                    else window[i // k][i % k].word_select(lane, sp.act_bits).as_unsigned()
                w_val = weights[i].word_select(lane, sp.weight_bits)
                w_val = w_val.as_signed() if sp.weight_signed else w_val.as_unsigned()
                pooled = Mux(taps[i], a_val, Const(-(1 << sp.act_bits), signed(sp.act_bits + 2)))
                m.d.sync += products[lane][i].eq(Mux(mode == MODE_MAC, a_val * w_val, pooled))
        d_out = Signal()
        m.d.sync += d_out.eq(c_out)
        sums = [Signal(signed(sp.acc_bits), name=f"sum{lane}") for lane in range(lanes)]
        count_d, count_e = Signal(range(k * k + 1)), Signal(range(k * k + 1))  # taps pooled
        m.d.sync += [count_d.eq(sum(taps[i] for i in range(k * k))), count_e.eq(count_d)]
        for lane in range(lanes):
            terms = [products[lane][i] for i in range(k * k)]
            if sp.pooling and sp.requantize:
                # average: the taps pooled, the others (below any activation: the max's sentinel) as 0
                avg_terms = [Mux(p_ < -(1 << (sp.act_bits - 1)), 0, p_) for p_ in terms]
                m.d.sync += sums[lane].eq(Mux(mode == MODE_MAX, _max_tree(terms),
                                              Mux(mode == MODE_AVG, adder_tree(avg_terms), adder_tree(terms))))
            elif sp.pooling:  # max only: the maximum into the accumulator lane (a signed value: extended)
                m.d.sync += sums[lane].eq(Mux(mode == MODE_MAX, _max_tree(terms), adder_tree(terms)))
            else:
                m.d.sync += sums[lane].eq(adder_tree(terms))
        e_out = Signal()
        m.d.sync += e_out.eq(d_out)
        results: list = sums
        if sp.requantize:
            e_out, results = self._requantize(m, e_out, sums, mode, count_e)
        m.d.comb += [self.out_en.eq(e_out), self.out_addr.eq(out_ptr),
                     self.out_data.eq(Cat(*(r[:sp.out_bits] for r in results)))]
        with m.If(e_out):
            m.d.sync += out_ptr.eq(out_ptr + out_stride)
        if sp.stream:
            with m.If(self.out_rebase):  # after the increment: the rebase wins
                m.d.sync += out_ptr.eq(self.out_base)
        return m


    def _requantize(self, m: Module, valid, sums: list, mode, count) -> tuple:
        """Two stages after the sums: ``(sum + bias) * mult``, then ``+ 2**(shift - 1)`` (when
        ``shift > 0``), ``>> shift``, ``+ zero_point``, clamp. With pooling, MAX passes the maximum
        through and AVG divides the sum by ``count`` (:func:`avg_divide`) in the same two stages.
        Returns (valid, lane results)."""
        sp = self.spec
        bias = [Signal(signed(32), name=f"q_bias{i}") for i in range(sp.lanes)]
        mult = [Signal(unsigned(15), name=f"q_mult{i}") for i in range(sp.lanes)]
        shift = [Signal(unsigned(SHIFT_BITS), name=f"q_shift{i}") for i in range(sp.lanes)]
        with m.If(self.q_en):
            with m.Switch(self.q_lane):
                for i in range(sp.lanes):
                    with m.Case(i):
                        m.d.sync += [bias[i].eq(self.q_bias), mult[i].eq(self.q_mult), shift[i].eq(self.q_shift)]
        zp, lo, hi = (Signal(signed(sp.act_bits + 1), name=n) for n in ("q_zp", "q_lo", "q_hi"))
        with m.If(self.start & ~self.busy):
            m.d.sync += [zp.eq(self.zero_point), lo.eq(self.clamp_lo), hi.eq(self.clamp_hi)]
        scaled = [Signal(signed(sp.acc_bits + 1 + 16), name=f"q_scaled{i}") for i in range(sp.lanes)]
        out = [Signal(signed(sp.act_bits + 1), name=f"q_out{i}") for i in range(sp.lanes)]
        mode_q = Signal(2)
        m.d.sync += mode_q.eq(mode)
        recip = Array(Const(-(-(1 << AVG_SHIFT) // c) if c else 0, unsigned(AVG_SHIFT + 1))
                      for c in range(sp.kmax * sp.kmax + 1))
        for i in range(sp.lanes):
            m.d.sync += scaled[i].eq((sums[i] + bias[i]) * mult[i])  # signed x unsigned: a signed product
            rounding = (Const(1, unsigned(2)) << shift[i]) >> 1  # 2**(shift - 1), or 0 when shift is 0
            y = Signal(signed(sp.acc_bits + 1 + 17), name=f"q_y{i}")
            m.d.comb += y.eq(((scaled[i] + rounding) >> shift[i]) + zp)
            requant = Mux(y < lo, lo, Mux(y > hi, hi, y))
            if not sp.pooling:
                m.d.sync += out[i].eq(requant)
                continue
            pooled, negative = Signal(signed(sp.acc_bits), name=f"q_pool{i}"), Signal(name=f"q_neg{i}")
            avg = Signal(unsigned(sp.act_bits + 6 + AVG_SHIFT + 2), name=f"q_avg{i}")
            magnitude = Mux(sums[i] < 0, -sums[i], sums[i])
            m.d.sync += [pooled.eq(sums[i]), negative.eq(sums[i] < 0),
                         avg.eq((magnitude + (count >> 1)) * recip[count])]
            quotient = avg >> AVG_SHIFT
            m.d.sync += out[i].eq(Mux(mode_q == MODE_MAC, requant,
                                      Mux(mode_q == MODE_MAX, pooled, Mux(negative, -quotient, quotient))))
        v1, v2 = Signal(name="q_valid1"), Signal(name="q_valid2")
        m.d.sync += [v1.eq(valid), v2.eq(v1)]
        return v2, out


def _max_tree(values: list) -> object:
    level = list(values)
    while len(level) > 1:
        nxt = [Mux(level[i] > level[i + 1], level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            nxt.append(level[-1])
        level = nxt
    return level[0]
