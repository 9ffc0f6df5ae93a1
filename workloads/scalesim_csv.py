"""SCALE-Sim topology CSVs as workloads.

Two formats, told apart by their header:

* convolution: ``Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels,
  Num Filter, Strides,``
* GEMM: ``Layer name, M, N, K,`` (SCALE-Sim maps it to a ``M x K`` ifmap and ``N`` filters of
  ``1 x K``: ``C[M, N] = A[M, K] @ B[K, N]``)

Trailing commas are accepted, and an optional last column with an N:M weight sparsity
(``2:4``) as SCALE-Sim v3 writes it. As in SCALE-Sim, a conv row whose name contains ``DP`` is a
depthwise convolution: it runs once per input channel with ``Num Filter`` filters (a Conv2d with
``groups = Channels`` and ``Channels * Num Filter`` outputs). Layers carry no padding (SCALE-Sim's convention: the
IFMAP size already includes it).
"""

from __future__ import annotations

import csv
from pathlib import Path

from codesign.errors import CodesignError, WorkloadError
from codesign.workloads.layers import Conv2d, Layer, Linear, Network
from codesign.workloads.operand import Operand

CONV_HEADER = ["layer name", "ifmap height", "ifmap width", "filter height", "filter width", "channels",
               "num filter", "strides"]
GEMM_HEADER = ["layer name", "m", "n", "k"]


def _norm(cell: str) -> str:
    return " ".join(cell.strip().lower().split())


def read_topology(path: str | Path, *, name: str | None = None) -> Network:
    p = Path(path)
    try:
        text = p.read_text()
    except OSError as e:
        raise WorkloadError(f"cannot read {str(path)!r}: {e.strerror or e}") from e
    rows = [[c.strip() for c in row] for row in csv.reader(text.splitlines())]
    rows = [r[: max((i + 1 for i, c in enumerate(r) if c), default=0)] for r in rows]  # drop trailing empties
    rows = [(i + 1, r) for i, r in enumerate(rows) if r]
    if not rows:
        raise WorkloadError(f"{p.name}: empty topology file")
    _, header = rows[0]
    head = [_norm(c) for c in header]
    if head[: len(CONV_HEADER)] == CONV_HEADER:
        fmt, ncols = "conv", len(CONV_HEADER)
    elif head[: len(GEMM_HEADER)] == GEMM_HEADER:
        fmt, ncols = "gemm", len(GEMM_HEADER)
    else:
        raise WorkloadError(
            f"{p.name}: header must start with 'Layer name, IFMAP Height, ...' (conv) or 'Layer name, M, N, K' "
            f"(GEMM), not {', '.join(header)!r}"
        )
    layers: list[Layer] = []
    for lineno, row in rows[1:]:
        if len(row) not in (ncols, ncols + 1):
            raise WorkloadError(f"{p.name}, line {lineno}: expected {ncols} columns ({fmt} format), got {len(row)}")
        lname = row[0]
        values: list[int] = []
        for col, cell in zip(header[1:ncols], row[1:ncols], strict=True):
            try:
                v = int(cell)
            except ValueError:
                msg = f"{p.name}, line {lineno}: {col.strip()} must be an integer, not {cell!r}"
                raise WorkloadError(msg) from None
            if v < 1:
                raise WorkloadError(f"{p.name}, line {lineno}: {col.strip()} must be a positive integer, not {v}")
            values.append(v)
        weights = Operand()
        if len(row) == ncols + 1 and row[ncols]:
            try:
                weights = weights.with_sparsity(row[ncols])
            except CodesignError as e:
                raise WorkloadError(f"{p.name}, line {lineno}: {e}") from None
        try:
            if fmt == "conv":
                h, w, r, s, c, f, stride = values
                # SCALE-Sim runs a row whose name contains "DP" once per input channel (depthwise):
                # Channels=1 and Num Filter filters each time, i.e. groups=C, C*F output channels
                groups = c if "DP" in lname else 1
                layers.append(Conv2d(lname, in_channels=c, out_channels=f * groups, in_h=h, in_w=w, kernel=(r, s),
                                     stride=stride, padding=0, bias=False, weights=weights, groups=groups))
            else:
                m, n, k = values
                layers.append(Linear(lname, in_features=k, out_features=n, tokens=m, bias=False, weights=weights))
        except CodesignError as e:
            raise WorkloadError(f"{p.name}, line {lineno}: {e}") from None
    if not layers:
        raise WorkloadError(f"{p.name}: no layers after the header")
    return Network(name or p.stem, tuple(layers), source=f"SCALE-Sim topology {p.name}")


def write_topology(net: Network) -> str:
    """A SCALE-Sim conv-format topology of a network's Conv2d layers (Linear as 1x1 convs).

    Depthwise convolutions become SCALE-Sim ``DP`` rows; other grouped convolutions have no
    SCALE-Sim form and are written as one group's channels with all the filters."""
    lines = ["Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, Num Filter, Strides,"]
    for layer in net.layers:
        if isinstance(layer, Conv2d):
            pt, pl, pb, pr = layer.padding  # type: ignore[misc]
            h, w = layer.in_h + pt + pb, layer.in_w + pl + pr
            if layer.is_depthwise:  # SCALE-Sim's depthwise rows: "DP" in the name, per-channel filters
                name = layer.name if "DP" in layer.name else f"DP_{layer.name}"
                chans, filters = layer.in_channels, layer.out_channels // layer.groups
            else:  # other grouped convs have no SCALE-Sim form: one group's channels, all filters
                name, chans, filters = layer.name, layer.in_channels // layer.groups, layer.out_channels
            lines.append(f"{name}, {h}, {w}, {layer.r}, {layer.s}, {chans}, {filters}, {layer.stride[0]},")  # type: ignore[index]
        elif isinstance(layer, Linear):
            lines.append(f"{layer.name}, 1, 1, 1, 1, {layer.in_features}, {layer.out_features}, 1,")
    return "\n".join(lines) + "\n"
