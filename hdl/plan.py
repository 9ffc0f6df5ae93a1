"""What the generated hardware is, in pure Python: buffer depths, widths, limits, layouts, timing.

This module does not import Amaranth. The components in :mod:`codesign.hdl.engines.gemm` are built from a
:class:`HardwarePlan`, the cocotb bench and :mod:`codesign.hdl.verify` pack operands with it, and
its timing is :mod:`codesign.sim.timing`'s native timing (one function, not a copy).

Buffer layouts (one word = one vector at the array edge, lane 0 in the low bits):

* WS, fold ``f = nf * KF + kf`` (N chunks outer, K chunks inner):
  activations ``A[m, kf*rows : +rows]`` at ``kf * M + m``; weights ``B[kf*rows + r, nf*cols : +cols]``
  at ``f * rows + r``; outputs ``C[m, nf*cols : +cols]`` at ``nf * M + m``.
* OS, fold ``f = mf * NF + nf`` (M chunks outer, N chunks inner):
  activations ``A[mf*rows : +rows, k]`` at ``mf * K + k``; weights ``B[k, nf*cols : +cols]`` at
  ``nf * K + k``; outputs ``C[mf*rows + r, nf*cols : +cols]`` at ``f * rows + r``.

Ragged edges are zero-padded in the buffers and masked by valid bits in the array.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from codesign.errors import ConfigError
from codesign.sim.config import AcceleratorConfig, Dataflow, ZeroHandling
from codesign.sim.tileplan import (
    HW_MAX_BITS,
    HW_MIN_BITS,
    accumulator_bits_needed,
    model_only_reason,
    nm_index_bits,
    skip_hardware,
)
from codesign.sim.timing import (
    NATIVE_START_CYCLES,
    PE_PRODUCT_CYCLES,
    ceil_div,
    map_gemm,
    native_fold_cycles,
    native_gemm_cycles,
    native_tail_cycles,
)

MIN_BITS = HW_MIN_BITS
MAX_BITS = HW_MAX_BITS


def _range(bits: int, signed: bool) -> tuple[int, int]:
    return (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)


def core_config(config: AcceleratorConfig) -> AcceleratorConfig:
    """The configuration of the WS/OS core that runs ``config``.

    IS (inputs stationary: K on rows, M on columns, N streams) is the WS machine on the transposed
    GEMM ``C^T = B^T A^T``: its stationary operand is A^T (activation bits, in the input buffer),
    its streaming operand B^T (weight bits, in the weight buffer). So the core is a WS array whose
    "weights" are activations: widths, signedness and buffer sizes swap. WS and OS are themselves.
    """
    c = config
    if c.dataflow is not Dataflow.IS:
        return c
    return c.replace(dataflow=Dataflow.WS, act_bits=c.weight_bits, weight_bits=c.act_bits,
                     act_signed=c.weight_signed, weight_signed=c.act_signed,
                     input_sram_bytes=c.weight_sram_bytes, weight_sram_bytes=c.input_sram_bytes)


@dataclass(frozen=True)
class HardwarePlan:
    """The generated accelerator for one :class:`AcceleratorConfig`."""

    config: AcceleratorConfig

    def __post_init__(self) -> None:
        c = self.config
        reason = model_only_reason(c)
        if reason:
            raise ConfigError(reason)
        from codesign.sim.fusion import design_reason as fusion_reason

        if fusion_reason(c):  # full: a mode the simulator models per layer, not built
            raise ConfigError(fusion_reason(c))
        if c.depthwise.value == "engine":
            from codesign.sim.dwplan import design_reason

            engine = design_reason(c)
            if engine:
                raise ConfigError(f"depthwise must be array for this design ({engine}), not {c.depthwise.value!r}")
        if c.dataflow is Dataflow.IS:  # built as the WS core of core_config: validate that
            HardwarePlan(core_config(c))
            return
        if self.k_max < 1 or self.m_max < 1 or self.n_max < 1:
            raise ConfigError(
                f"buffers too small for a {c.rows}x{c.cols} array: input_sram_bytes={c.input_sram_bytes}, "
                f"weight_sram_bytes={c.weight_sram_bytes}, output_sram_bytes={c.output_sram_bytes}"
            )

    # -- shape of the datapath ---------------------------------------------------------------
    @property
    def rows(self) -> int:
        return self.config.rows

    @property
    def cols(self) -> int:
        return self.config.cols

    @property
    def dataflow(self) -> Dataflow:
        return self.config.dataflow

    @property
    def gating(self) -> bool:
        """Zero operands disable their MAC (gating; the skipping PEs gate too)."""
        return self.config.zero_handling is not ZeroHandling.NONE

    @property
    def skip_nm(self) -> tuple[int, int] | None:
        """``(n, m)`` of n:m skipping (ws): each PE row takes a weight slot (value and index); the
        ``n`` rows of a group share ``m`` activation lanes and each PE selects by its index."""
        return skip_hardware(self.config)

    @property
    def index_bits(self) -> int:
        return nm_index_bits(self.skip_nm[1]) if self.skip_nm else 0

    @property
    def act_lanes(self) -> int:
        """Activations in a buffer word: one per row, or ``rows / n`` groups of ``m`` (skipping)."""
        if self.skip_nm:
            n, m = self.skip_nm
            return self.rows // n * m
        return self.rows

    @property
    def act_range(self) -> tuple[int, int]:
        return _range(self.config.act_bits, self.config.act_signed)

    @property
    def weight_range(self) -> tuple[int, int]:
        return _range(self.config.weight_bits, self.config.weight_signed)

    @property
    def product_range(self) -> tuple[int, int]:
        (alo, ahi), (wlo, whi) = self.act_range, self.weight_range
        p = [alo * wlo, alo * whi, ahi * wlo, ahi * whi]
        return min(p), max(p)

    @property
    def acc_bits(self) -> int:
        """Accumulator/output width: exact for ``k_max`` products of the extreme values."""
        return self.acc_shape[0]

    @property
    def acc_signed(self) -> bool:
        return self.acc_shape[1]

    @cached_property
    def acc_shape(self) -> tuple[int, bool]:
        """``acc_bits`` of the config (honoured: sums wrap at that width, so ``verify`` refuses a
        layer whose K could overflow it); signed when either operand is."""
        return self.config.acc_bits, self.config.weight_signed or self.config.act_signed

    def check_accumulator(self, k: int, what: str = "gemm") -> None:
        """Refuse a reduction of ``k`` products that ``acc_bits`` cannot hold exactly."""
        need = accumulator_bits_needed(self.config, k)
        if need > self.config.acc_bits:
            raise ConfigError(
                f"acc_bits must be at least {need} for {what} with K={k} ({self.config.weight_bits}-bit weights, "
                f"{self.config.act_bits}-bit activations), not {self.config.acc_bits}")

    # -- buffers -----------------------------------------------------------------------------
    @property
    def act_word_bits(self) -> int:
        return self.act_lanes * self.config.act_bits

    @property
    def weight_lane_bits(self) -> int:
        """A weight lane: the value, with skipping its index above it."""
        return self.config.weight_bits + self.index_bits

    @property
    def weight_word_bits(self) -> int:
        return self.cols * self.weight_lane_bits

    @property
    def out_word_bits(self) -> int:
        return self.cols * self.acc_bits

    @property
    def act_depth(self) -> int:
        return self.config.input_sram_bytes * 8 // self.act_word_bits

    @property
    def weight_depth(self) -> int:
        return self.config.weight_sram_bytes * 8 // self.weight_word_bits

    @cached_property
    def out_depth(self) -> int:
        # the accumulator width depends on k_max, which depends on the input buffers only
        return self.config.output_sram_bytes * 8 // self.out_word_bits

    @cached_property
    def k_max(self) -> int:
        r = self.rows
        if self.dataflow is Dataflow.WS:
            return min(self.act_depth * r, self.weight_depth // r * r)
        return min(self.act_depth, self.weight_depth)

    @property
    def m_max(self) -> int:
        if self.dataflow is Dataflow.WS:
            return min(self.act_depth, self.out_depth)
        return min(self.act_depth, self.out_depth // self.rows) * self.rows

    @property
    def n_max(self) -> int:
        if self.dataflow is Dataflow.WS:
            return min(self.weight_depth // self.rows, self.out_depth) * self.cols
        return min(self.weight_depth, self.out_depth // self.rows) * self.cols

    @property
    def dim_bits(self) -> int:
        """Width of the ``m``, ``n``, ``k`` ports."""
        return max(self.m_max, self.n_max, self.k_max).bit_length()

    @property
    def mac_counter_bits(self) -> int:
        return (self.m_max * self.n_max * self.k_max).bit_length()

    def words(self, m: int, n: int, k: int) -> tuple[int, int, int]:
        """Buffer words (activations, weights, outputs) a GEMM occupies."""
        r, c = self.rows, self.cols
        mf, nf, kf = ceil_div(m, r), ceil_div(n, c), ceil_div(k, r)
        if self.dataflow is Dataflow.WS:
            return kf * m, kf * nf * r, nf * m
        return mf * k, nf * k, mf * nf * r

    def fits(self, m: int, n: int, k: int) -> bool:
        if min(m, n, k) < 1:
            return False
        a, w, o = self.words(m, n, k)
        return a <= self.act_depth and w <= self.weight_depth and o <= self.out_depth and k <= self.k_max

    def check_fits(self, m: int, n: int, k: int) -> None:
        for name, v in (("m", m), ("n", n), ("k", k)):
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ConfigError(f"{name} must be a positive integer, not {v!r}")
        if not self.fits(m, n, k):
            a, w, o = self.words(m, n, k)
            raise ConfigError(
                f"gemm {m},{n},{k} does not fit the buffers: needs {a}/{self.act_depth} activation, "
                f"{w}/{self.weight_depth} weight, {o}/{self.out_depth} output words"
            )

    # -- timing (the native timing of codesign.sim.timing) -----------------------------------
    def fold_count(self, m: int, n: int, k: int) -> int:
        return map_gemm(self.dataflow, self.rows, self.cols, m, n, k).folds

    @property
    def start_cycles(self) -> int:
        return NATIVE_START_CYCLES

    def fold_cycles(self, t: int) -> int:
        """Issue interval of a fold whose streamed extent is ``t``."""
        return native_fold_cycles(self.config, t)

    def fill_cycles(self) -> int:
        """Cycles from a fold's first issue to its first array output (WS) / first drain (OS)."""
        if self.dataflow is Dataflow.WS:
            return 2 + self.rows + self.cols - 1 + PE_PRODUCT_CYCLES  # buffer read + register, skewed array
            # (its PEs' product register) + deskew
        return 1 + self.rows + self.cols  # buffer read, skew to the last PE, drain start

    def drain_cycles(self) -> int:
        """Cycles from a fold's last array output to its last output-buffer write."""
        return 1 if self.dataflow is Dataflow.WS else self.rows - 1

    def tail_cycles(self, t: int) -> int:
        return native_tail_cycles(self.config, t)

    def gemm_cycles(self, m: int, n: int, k: int) -> int:
        """Cycles from ``start`` to ``done`` (operands in the buffers)."""
        return native_gemm_cycles(self.config, m, n, k)

    # -- packing ------------------------------------------------------------------------------
    def _pack(self, vectors: np.ndarray, bits: int) -> list[int]:
        """Rows of ``vectors`` (lane 0 first) -> integers, each lane ``bits`` wide two's complement."""
        mask = (1 << bits) - 1
        out = []
        for row in vectors.tolist():
            word = 0
            for lane, v in enumerate(row):
                word |= (int(v) & mask) << (lane * bits)
            out.append(word)
        return out

    def pack_operands(self, a: np.ndarray, b: np.ndarray,
                      b_index: np.ndarray | None = None) -> tuple[list[int], list[int]]:
        """``a[M, K]``, ``b[K, N]`` -> (activation words, weight words) in buffer order.

        With n:m skipping, ``b[K', N]`` holds weight slots and ``b_index`` their indices, and ``a`` is
        ``[M, ceil(K'/n) * m]``: the groups of ``m`` activations the slots select from
        (:func:`codesign.hdl.host.skip_operands`)."""
        if self.skip_nm:
            return self._pack_skip(a, b, b_index)
        m, k = a.shape
        k2, n = b.shape
        if k2 != k:
            raise ConfigError(f"b must have {k} rows to match a, not {k2}")
        (alo, ahi), (wlo, whi) = self.act_range, self.weight_range
        if a.size and (a.min() < alo or a.max() > ahi):
            raise ConfigError(f"activations must lie in [{alo}, {ahi}], not [{a.min()}, {a.max()}]")
        if b.size and (b.min() < wlo or b.max() > whi):
            raise ConfigError(f"weights must lie in [{wlo}, {whi}], not [{b.min()}, {b.max()}]")
        r, c = self.rows, self.cols
        mf, nf, kf = ceil_div(m, r), ceil_div(n, c), ceil_div(k, r)
        ab, wb = self.config.act_bits, self.config.weight_bits
        if self.dataflow is Dataflow.WS:
            ap = np.zeros((m, kf * r), dtype=np.int64)
            ap[:, :k] = a
            bp = np.zeros((kf * r, nf * c), dtype=np.int64)
            bp[:k, :n] = b
            # A[m, kf*r:+r] at kf*M + m
            act = ap.reshape(m, kf, r).transpose(1, 0, 2).reshape(kf * m, r)
            # B[kf*r + rr, nf*c:+c] at (nf*KF + kf)*r + rr
            wt = bp.reshape(kf, r, nf, c).transpose(2, 0, 1, 3).reshape(nf * kf * r, c)
        else:
            ap = np.zeros((mf * r, k), dtype=np.int64)
            ap[:m] = a
            bp = np.zeros((k, nf * c), dtype=np.int64)
            bp[:, :n] = b
            # A[mf*r:+r, k] at mf*K + k
            act = ap.reshape(mf, r, k).transpose(0, 2, 1).reshape(mf * k, r)
            # B[k, nf*c:+c] at nf*K + k
            wt = bp.reshape(k, nf, c).transpose(1, 0, 2).reshape(nf * k, c)
        return self._pack(act, ab), self._pack(wt, wb)

    def _pack_skip(self, a: np.ndarray, b: np.ndarray, b_index: np.ndarray | None) -> tuple[list[int], list[int]]:
        assert self.skip_nm is not None
        gn, gm = self.skip_nm
        m, cols_a = a.shape
        k, n = b.shape
        if b_index is None or b_index.shape != b.shape:
            raise ConfigError("n:m skipping needs the weights' indices, shaped like the weight slots")
        if cols_a != ceil_div(k, gn) * gm:
            raise ConfigError(f"a must have {ceil_div(k, gn) * gm} columns (groups of {gm}) for {k} weight slots, "
                              f"not {cols_a}")
        r, c, lanes = self.rows, self.cols, self.act_lanes
        nf, kf = ceil_div(n, c), ceil_div(k, r)
        ap = np.zeros((m, kf * lanes), dtype=np.int64)
        ap[:, :cols_a] = a
        act = ap.reshape(m, kf, lanes).transpose(1, 0, 2).reshape(kf * m, lanes)
        wb = self.config.weight_bits
        lane = (np.asarray(b, dtype=np.int64) & ((1 << wb) - 1)) | (np.asarray(b_index, dtype=np.int64) << wb)
        bp = np.zeros((kf * r, nf * c), dtype=np.int64)
        bp[:k, :n] = lane
        wt = bp.reshape(kf, r, nf, c).transpose(2, 0, 1, 3).reshape(nf * kf * r, c)
        return self._pack(act, self.config.act_bits), self._pack(wt, self.weight_lane_bits)

    def output_addresses(self, m: int, n: int, k: int) -> list[int]:
        """Output-buffer words to read back, in the order :meth:`unpack_outputs` expects."""
        return list(range(self.words(m, n, k)[2]))

    def unpack_outputs(self, words: list[int], m: int, n: int, bits: int | None = None,
                       signed: bool | None = None) -> np.ndarray:
        """Output words (from address 0) -> ``C[M, N]`` as int64; lanes of ``bits`` (default: the
        accumulator's; requantized outputs have the activations' bits and signedness)."""
        r, c = self.rows, self.cols
        bits = bits or self.acc_bits
        signed = self.acc_signed if signed is None else signed
        mask = (1 << bits) - 1
        sign = 1 << (bits - 1)
        lanes = np.array(
            [[(w >> (i * bits)) & mask for i in range(c)] for w in words], dtype=object
        )
        if signed:
            lanes = np.where(lanes >= sign, lanes - (1 << bits), lanes)
        lanes = lanes.astype(np.int64)
        nf = ceil_div(n, c)
        if self.dataflow is Dataflow.WS:
            full = lanes.reshape(nf, m, c).transpose(1, 0, 2).reshape(m, nf * c)
        else:
            mf = ceil_div(m, r)
            full = lanes.reshape(mf, nf, r, c).transpose(0, 2, 1, 3).reshape(mf * r, nf * c)
        return np.ascontiguousarray(full[:m, :n])

    def to_dict(self) -> dict[str, object]:
        return {
            "rows": self.rows,
            "cols": self.cols,
            "dataflow": self.dataflow.value,
            "weight_bits": self.config.weight_bits,
            "weight_signed": self.config.weight_signed,
            "act_bits": self.config.act_bits,
            "act_signed": self.config.act_signed,
            "acc_bits": self.acc_bits,
            "acc_signed": self.acc_signed,
            "zero_gating": self.gating,
            "skip_pattern": self.config.skip_pattern if self.skip_nm else "",
            "act_depth_words": self.act_depth,
            "weight_depth_words": self.weight_depth,
            "out_depth_words": self.out_depth,
            "act_word_bits": self.act_word_bits,
            "weight_word_bits": self.weight_word_bits,
            "out_word_bits": self.out_word_bits,
            "m_max": self.m_max,
            "n_max": self.n_max,
            "k_max": self.k_max,
            "dim_bits": self.dim_bits,
            "mac_counter_bits": self.mac_counter_bits,
        }
