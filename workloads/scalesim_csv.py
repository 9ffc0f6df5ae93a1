"""SCALE-Sim topology CSVs as workloads.

Two formats, told apart by their header:

* convolution: ``Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels,
  Num Filter, Strides,``
* GEMM: ``Layer name, M, N, K,`` (SCALE-Sim maps it to a ``M x K`` ifmap and ``N`` filters of
  ``1 x K``: ``C[M, N] = A[M, K] @ B[K, N]``)

Both may end with one more column, an N:M weight sparsity (``2:4``, N nonzeros in every M) as
SCALE-Sim v3 writes it (a density such as ``0.5`` or ``dense`` is accepted too). As in SCALE-Sim, a
conv row whose name contains ``DP`` is a depthwise convolution: it runs once per input channel with
``Num Filter`` filters (a Conv2d with ``groups = Channels`` and ``Channels * Num Filter`` outputs).
Layers carry no padding (SCALE-Sim's convention: the IFMAP size already includes it).

SCALE-Sim itself ignores the header and reads cells by position; the variants of the files it ships
(``topologies/`` of scale-sim-v2/v3) are read here the same way:

* the first cell of the header is free (``Layer name``, ``Layer``, ``L``); the others are matched
  without case and spacing, with ``Channel``/``Num Filters``/``Stride`` for ``Channels``/``Num
  Filter``/``Strides`` and DeepBench's ``IFMAP Width, IFMAP Width`` typo (by position, the first is
  the height); the header may name more columns than the rows fill (``batch size``); a ``Batch Size``
  column after ``Strides`` (SCALE-Sim v3's ``llama/llama3b.csv``) is the network's batch, the same on
  every line;
* a cell may be wrapped in one pair of double quotes; any other quote is an error;
* a cell above 2^24 (16,777,216) is refused (a slip, and hours to simulate);
* a UTF-8 byte-order mark, CRLF line ends, no-break spaces, tab-separated files;
* ``#`` starts a comment that runs to the end of the line (``..., 1,#dw``);
* blank lines and lines of only commas are skipped; the trailing comma is optional (SCALE-Sim needs
  it: it drops the last cell of every line);
* repeated layer names (SCALE-Sim does not need them unique; a Network does) get a suffix: the
  second ``fc`` becomes ``fc_2``, the third ``fc_3`` (skipping names already in the file).
"""

from __future__ import annotations

from pathlib import Path

from codesign.errors import CodesignError, WorkloadError
from codesign.workloads.layers import Conv2d, Layer, Linear, Network
from codesign.workloads.operand import Operand

CONV_HEADER = ["layer name", "ifmap height", "ifmap width", "filter height", "filter width", "channels",
               "num filter", "strides"]
GEMM_HEADER = ["layer name", "m", "n", "k"]
#: other spellings of the header cells (after the first) in SCALE-Sim's shipped topologies
HEADER_ALIASES = {"ifmap width": ("ifmap height",),  # DeepBench files: "Layer, IFMAP Width, IFMAP Width, ..."
                  "channel": ("channels",), "num filters": ("num filter",), "stride": ("strides",)}
SPARSITY_HEADERS = ("sparsity", "")
BATCH_HEADERS = ("batch size", "batch")
#: the largest size a cell may give (M, N, K, channels, filters, a side of the IFMAP): beyond it a layer is a
#: typo or a unit slip, and simulating it would take hours (the engine's time grows with the tiles). SCALE-Sim's
#: shipped topologies stay below 2^15.
MAX_DIM = 1 << 24


def _norm(cell: str) -> str:
    return " ".join(cell.lower().split())  # str.split also splits on no-break spaces


def _header_matches(head: list[str], expected: list[str]) -> bool:
    if len(head) < len(expected):
        return False
    return all(h == e or e in HEADER_ALIASES.get(h, ()) for h, e in zip(head[1:], expected[1:], strict=False))


def _rows(text: str) -> list[tuple[int, list[str]]]:
    """(line number, cells) of the non-blank lines: comments cut, cells stripped, trailing empty cells dropped."""
    lines = text.splitlines()
    first = next((ln for ln in lines if ln.split("#", 1)[0].strip(" \t,\u00a0")), "")
    sep = "\t" if "," not in first and "\t" in first else ","
    rows = []
    for i, line in enumerate(lines, 1):
        cells = [_unquote(c.strip(), i) for c in line.split("#", 1)[0].split(sep)]
        while cells and not cells[-1]:
            cells.pop()
        if cells:
            rows.append((i, cells))
    return rows


def _unquote(cell: str, line: int) -> str:
    """A cell in double quotes loses them (``"conv1"`` is ``conv1``); any other quote (an unbalanced one,
    or one inside the cell) is an error: SCALE-Sim splits on every comma, so a quoted comma cannot exist."""
    if '"' not in cell:
        return cell
    if len(cell) >= 2 and cell[0] == cell[-1] == '"' and '"' not in cell[1:-1]:
        return cell[1:-1].strip()
    raise WorkloadError(f"line {line}: unbalanced or inner quote in cell {cell!r} (SCALE-Sim topologies quote "
                        f"nothing; a name may be wrapped in one pair of double quotes)")


def _unique_names(names: list[str]) -> list[str]:
    """Names with repeats suffixed ``_2``, ``_3``, ... (never a name the file already has)."""
    taken = set(names)
    seen: dict[str, int] = {}
    out = []
    for n in names:
        if n not in seen:
            seen[n] = 1
            out.append(n)
            continue
        k = seen[n]
        while True:
            k += 1
            cand = f"{n}_{k}"
            if cand not in taken:
                break
        seen[n] = k
        taken.add(cand)
        out.append(cand)
    return out


def read_topology(path: str | Path, *, name: str | None = None) -> Network:
    p = Path(path)
    try:
        data = p.read_bytes()
    except OSError as e:
        raise WorkloadError(f"cannot read {str(path)!r}: {e.strerror or e}") from e
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data[:e.start].count(b"\n") + 1
        raise WorkloadError(f"{p.name}, line {line}: not UTF-8 text, byte {data[e.start:e.start + 1]!r}") from None
    try:
        rows = _rows(text)
    except WorkloadError as e:
        raise WorkloadError(f"{p.name}, {e}") from None
    if not rows:
        raise WorkloadError(f"{p.name}: empty topology file")
    _, header = rows[0]
    head = [_norm(c) for c in header]
    if _header_matches(head, GEMM_HEADER):
        fmt, ncols, names = "gemm", len(GEMM_HEADER), ["M", "N", "K"]
    elif _header_matches(head, CONV_HEADER):
        fmt, ncols = "conv", len(CONV_HEADER)
        names = ["IFMAP Height", "IFMAP Width", "Filter Height", "Filter Width", "Channels", "Num Filter", "Strides"]
    else:
        raise WorkloadError(
            f"{p.name}: header must start with 'Layer name, IFMAP Height, ...' (conv) or 'Layer name, M, N, K' "
            f"(GEMM), not {', '.join(header)!r}"
        )
    extra = header[ncols].strip() if len(header) > ncols else ""
    # SCALE-Sim v3's topologies (llama/llama3b.csv) add a Batch Size column, which SCALE-Sim reads past
    batch_col = _norm(extra) in BATCH_HEADERS
    batches: set[int] = set()
    layer_names = _unique_names([row[0] for _, row in rows[1:]])
    layers: list[Layer] = []
    for (lineno, row), lname in zip(rows[1:], layer_names, strict=True):
        where = f"{p.name}, line {lineno}"
        if len(row) not in (ncols, ncols + 1):
            opt = "" if len(row) < ncols else " and an optional Sparsity"
            raise WorkloadError(f"{where}: expected {ncols} columns ({fmt} format){opt}, got {len(row)}")
        if not row[0]:
            raise WorkloadError(f"{where}: layer name must not be empty")
        values: list[int] = []
        for col, cell in zip(names, row[1:ncols], strict=True):
            try:
                v = int(cell)
            except ValueError:
                raise WorkloadError(f"{where}: {col} must be an integer, not {cell!r}") from None
            if v < 1:
                raise WorkloadError(f"{where}: {col} must be a positive integer, not {v}")
            if v > MAX_DIM:
                raise WorkloadError(f"{where}: {col} must be at most {MAX_DIM:,} (2^24), not {v:,}: a layer this "
                                    f"size is a slip, and would take hours to simulate")
            values.append(v)
        weights = Operand()
        if len(row) == ncols + 1 and batch_col:
            try:
                batch = int(row[ncols])
            except ValueError:
                batch = 0
            if not 1 <= batch <= MAX_DIM:
                raise WorkloadError(f"{where}: {extra} must be a positive integer, not {row[ncols]!r}")
            batches.add(batch)
        elif len(row) == ncols + 1:
            if _norm(extra) not in SPARSITY_HEADERS:
                raise WorkloadError(f"{where}: {extra} is not a SCALE-Sim topology column (only Sparsity may "
                                    f"follow {names[-1]}), not {row[ncols]!r}")
            try:
                weights = weights.with_sparsity(row[ncols])
            except CodesignError as e:
                raise WorkloadError(f"{where}: {e}") from None
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
            raise WorkloadError(f"{where}: {e}") from None
    if not layers:
        raise WorkloadError(f"{p.name}: no layers after the header")
    if len(batches) > 1:
        raise WorkloadError(f"{p.name}: {extra} must be the same on every line (a network has one batch), not "
                            f"{', '.join(map(str, sorted(batches)))}")
    batch = batches.pop() if batches else 1
    return Network(name or p.stem, tuple(layers), batch=batch, source=f"SCALE-Sim topology {p.name}")


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
