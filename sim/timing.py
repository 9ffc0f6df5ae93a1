"""Closed-form timing of GEMMs on a systolic array: the contract shared by simulator and RTL.

Mapping (SCALE-Sim's conventions). A GEMM ``C[M,N] = A[M,K] @ B[K,N]`` puts two dimensions
on the array and streams the third in time:

============  ==============  ==============  ===========
dataflow      on rows (Sr)    on cols (Sc)    in time (T)
============  ==============  ==============  ===========
WS            K               N               M
OS            M               N               K
IS            K               M               N
============  ==============  ==============  ===========

The array of ``rows x cols`` PEs covers ``ceil(Sr/rows) * ceil(Sc/cols)`` folds.

Two timing models live here:

* ``scalesim_*``: SCALE-Sim 2/3 compute ("CALC") cycles, reproduced exactly:
  per fold ``L = T + rows + cols - 2`` (OS) or ``T + 2*rows + cols - 2`` (WS, IS), folds back
  to back, total ``folds * L - 1``; with N:M weights skipped, the GEMM's ``K`` is first cut to
  SCALE-Sim's compressed length (``scalesim_sparse_k``).
* ``native_*``: what the generated RTL (``codesign.hdl``) does from ``start`` to ``done`` for a
  GEMM whose operands are already in its on-chip buffers. The RTL publishes the same numbers
  as properties and the RTL tests check it cycle for cycle.
"""

from __future__ import annotations

from dataclasses import dataclass

from codesign.errors import CodesignError
from codesign.sim.config import AcceleratorConfig, Dataflow


def ceil_div(a: int, b: int) -> int:
    return -(-a // b)


@dataclass(frozen=True)
class FoldMap:
    """How one GEMM lies on the array."""

    sr: int  # extent of the dimension on the rows
    sc: int  # extent of the dimension on the columns
    t: int  # extent of the dimension streamed in time
    row_folds: int
    col_folds: int

    @property
    def folds(self) -> int:
        return self.row_folds * self.col_folds


def map_gemm(dataflow: Dataflow | str, rows: int, cols: int, m: int, n: int, k: int) -> FoldMap:
    df = Dataflow(dataflow)
    if df is Dataflow.WS:
        sr, sc, t = k, n, m
    elif df is Dataflow.OS:
        sr, sc, t = m, n, k
    else:
        sr, sc, t = k, m, n
    return FoldMap(sr=sr, sc=sc, t=t, row_folds=ceil_div(sr, rows), col_folds=ceil_div(sc, cols))


# --------------------------------------------------------------------------------------------
# SCALE-Sim compatible timing
# --------------------------------------------------------------------------------------------
def scalesim_fold_cycles(dataflow: Dataflow | str, rows: int, cols: int, t: int) -> int:
    """SCALE-Sim's per-fold latency ``L``."""
    if Dataflow(dataflow) is Dataflow.OS:
        return t + rows + cols - 2
    return t + 2 * rows + cols - 2


def scalesim_gemm_cycles(dataflow: Dataflow | str, rows: int, cols: int, m: int, n: int, k: int) -> int:
    """SCALE-Sim CALC-mode "Total Cycles" of one GEMM: ``folds * L - 1``."""
    fm = map_gemm(dataflow, rows, cols, m, n, k)
    return fm.folds * scalesim_fold_cycles(dataflow, rows, cols, fm.t) - 1


def scalesim_sparse_k(k: int, n: int, m: int) -> int:
    """The reduction length SCALE-Sim 3 streams for weights with ``n`` non-zeros in every ``m``.

    With ``SparsitySupport`` on, SCALE-Sim keeps the first ``n`` of every ``m`` rows of each filter
    column (``operand_matrix.create_filter_matrix``, the last group cut at ``K``) and drops the
    matching ifmap columns, so the GEMM it times has ``K' = floor(K/m)*n + min(K mod m, n)``.
    """
    if not 1 <= n <= m:
        raise CodesignError(f"an n:m pattern needs 1 <= n <= m, not {n}:{m}")
    return (k // m) * n + min(k % m, n)


def scalesim_conv_out(size: int, kernel: int, stride: int) -> int:
    """SCALE-Sim's output size convention (no padding): ``ceil((H - R + S) / S)``."""
    return ceil_div(size - kernel + stride, stride)


# --------------------------------------------------------------------------------------------
# Native timing: the RTL's schedule (owned by codesign.hdl; the hardware publishes these numbers)
# --------------------------------------------------------------------------------------------
# Cycles are counted from the clock edge that samples ``start`` high to the edge after which
# ``done`` reads high; the operands are already in the on-chip buffers.
#
# WS (``rows`` x ``cols`` PEs hold a K x N block of weights; the M activation rows stream):
#   folds ``F = ceil(K/rows) * ceil(N/cols)`` issue back to back every ``P = max(M, rows)`` cycles
#   (the weights of the next fold are written in a wave right behind the last activation of the
#   current one, so weight loading is hidden when ``M >= rows``); the last fold then takes
#   ``M + rows + cols + 2`` cycles to its last output write (2 cycles buffer read + register, ``rows +
#   cols - 1`` through the skewed array and the output deskew, 2 the PEs' multiplier registers, 1 cycle
#   read-modify-write).
#   ``cycles = 1 + (F - 1) * P + M + rows + cols + 2``
# OS (``rows`` x ``cols`` PEs accumulate an M x N block of outputs; K streams):
#   folds ``F = ceil(M/rows) * ceil(N/cols)`` every ``P = max(K, rows, cols)`` cycles; a PE
#   hands its sum to an output register when the next fold's first operands reach it, so each
#   fold's ``rows`` output rows drain while the next fold computes; after the last fold, a flush
#   wave (one more interval) and the drain of ``rows`` rows ``cols + 1`` cycles behind it.
#   ``cycles = 1 + F * P + rows + cols``
# IS: not generated as hardware; timed as the WS machine on the transposed GEMM
#   (``C^T = B^T A^T``: M and N swap roles).
NATIVE_START_CYCLES = 1  # controller: start sampled -> first fold issues
#: WS/IS: a PE's multiplier operands and its product are registered before the accumulate
#: (``hdl.engines.array.WSProcessingElement``), so a fold's sums leave the array two cycles later (its tail
#: grows by two; folds still issue back to back)
PE_PRODUCT_CYCLES = 2


def native_fold_cycles(config: AcceleratorConfig, t: int) -> int:
    """Issue interval of one fold (cycles between consecutive fold starts), ``t`` = streamed extent.

    WS/IS: ``max(t, rows)``. OS: ``max(t, rows, cols)``.
    """
    if config.dataflow is Dataflow.OS:
        return max(t, config.rows, config.cols)
    return max(t, config.rows)


def native_tail_cycles(config: AcceleratorConfig, t: int) -> int:
    """Cycles from the last fold's issue to ``done`` (fill + drain of the last fold).

    WS/IS: ``t + rows + cols + PE_PRODUCT_CYCLES`` (the last fold's full latency). OS: ``P + rows + cols``
    (the flush interval and the drain of the last fold).
    """
    if config.dataflow is Dataflow.OS:
        return native_fold_cycles(config, t) + config.rows + config.cols
    return t + config.rows + config.cols + PE_PRODUCT_CYCLES


def native_gemm_cycles(config: AcceleratorConfig, m: int, n: int, k: int) -> int:
    """Cycles from ``start`` to ``done`` for one GEMM whose operands are in the on-chip buffers.

    ``NATIVE_START_CYCLES + (F - 1) * native_fold_cycles(t) + native_tail_cycles(t)``, i.e.
    WS: ``1 + (F-1)*max(M, rows) + M + rows + cols + 2``; OS: ``1 + F*max(K, rows, cols) + rows + cols``;
    IS: the WS form with M and N swapped.
    """
    fm = map_gemm(config.dataflow, config.rows, config.cols, m, n, k)
    return (
        NATIVE_START_CYCLES
        + (fm.folds - 1) * native_fold_cycles(config, fm.t)
        + native_tail_cycles(config, fm.t)
    )
