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
  to back, total ``folds * L - 1``.
* ``native_*``: what the generated RTL (``codesign.hdl``) does from ``start`` to ``done`` for a
  GEMM whose operands are already in its on-chip buffers. The RTL publishes the same numbers
  as properties and the RTL tests check it cycle for cycle.
"""

from __future__ import annotations

from dataclasses import dataclass

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


def scalesim_conv_out(size: int, kernel: int, stride: int) -> int:
    """SCALE-Sim's output size convention (no padding): ``ceil((H - R + S) / S)``."""
    return ceil_div(size - kernel + stride, stride)


# --------------------------------------------------------------------------------------------
# Native timing: the RTL's schedule
# --------------------------------------------------------------------------------------------
def native_fold_cycles(config: AcceleratorConfig, t: int) -> int:
    """Cycles of one fold in the generated hardware (operands on chip), ``t`` = streamed extent.

    WS/IS: ``rows`` cycles to shift the stationary operand in, then ``t`` streamed vectors
    reach the last PE after ``rows + cols - 2`` cycles of skew.
    OS: ``t`` products per PE plus the skew, then ``rows`` cycles to shift the outputs out.
    """
    rows, cols = config.rows, config.cols
    if config.dataflow is Dataflow.OS:
        return t + rows + cols - 2 + rows
    return rows + t + rows + cols - 2


NATIVE_START_CYCLES = 1  # controller: start -> first fold
NATIVE_DONE_CYCLES = 1  # controller: last fold -> done


def native_gemm_cycles(config: AcceleratorConfig, m: int, n: int, k: int) -> int:
    """Cycles from ``start`` to ``done`` for one GEMM whose operands are in the on-chip buffers."""
    fm = map_gemm(config.dataflow, config.rows, config.cols, m, n, k)
    return NATIVE_START_CYCLES + fm.folds * native_fold_cycles(config, fm.t) + NATIVE_DONE_CYCLES
