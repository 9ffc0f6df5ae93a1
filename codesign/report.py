"""Reports: PNG + SVG plots (matplotlib, no pyplot state) and an ``index.html`` that shows them.

From a sweep results table (``codesign sweep`` Parquet/CSV):

* ``pareto_<workload>``: latency vs energy of every point, colour by dataflow, marker by bits,
  the Pareto front drawn as a step line and ringed;
* ``accuracy_energy`` (when the sweep has an ``accuracy`` column): top-1 accuracy vs energy, one
  panel per workload (sparsity), colour by weight bits, marker by activation bits;
* ``breakdown_<workload>``: energy by component (MAC, register, PE-to-PE, SRAMs, DRAM, vector,
  leakage) stacked for each Pareto point;
* for one chosen point (``point=``, default: the Pareto point of least EDP), re-simulated from
  the space stored in the results file: ``layers_latency``, ``layers_energy`` (per-layer bars)
  and ``roofline`` (the design's compute and DRAM roofs, its layers as dots);
* ``index.html`` with the plots and the Pareto table of each workload.

From one ``codesign simulate --out r.json`` result: the per-layer plots and the roofline.
"""

from __future__ import annotations

import contextlib
import contextvars
import html
import json
import math
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from codesign.errors import CodesignError, ConfigError
from codesign.sim.config import AcceleratorConfig
from codesign.sim.result import ENERGY_PARTS

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure

PART_COLOURS = {
    "mac": "#4e79a7", "register": "#a0cbe8", "pe_to_pe": "#59a14f", "input_sram": "#f28e2b",
    "weight_sram": "#ffbe7d", "output_sram": "#8cd17d", "dram": "#e15759", "vector": "#b07aa1",
    "leakage": "#9d7660",
}
DATAFLOW_COLOURS = {"ws": "#1f77b4", "os": "#d62728", "is": "#2ca02c"}
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*", "<", ">")
TABLE_COLUMNS = ("latency_ms", "clock_mhz_used", "clock_basis", "cycles", "energy_uj", "edp", "area_mm2",
                 "utilization", "peak_dram_bytes_per_cycle", "dram_bytes", "buildable", "clipped", "accuracy",
                 "fpga_luts", "fpga_dsps", "fpga_brams")


@dataclass
class Plot:
    name: str  # file stem: name.png and name.svg
    title: str
    caption: str = ""


@dataclass
class Section:
    title: str
    plots: list[Plot] = field(default_factory=list)
    html: str = ""  # tables etc., already escaped


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_") or "workload"


#: called after each plot is written (the progress bar of :func:`report`)
_ON_PLOT: contextvars.ContextVar[Callable[[str], None] | None] = contextvars.ContextVar("on_plot", default=None)
#: called with what the report does next when it is not a plot (the re-simulation of the chosen design)
_ON_STATUS: contextvars.ContextVar[Callable[[str], None] | None] = contextvars.ContextVar("on_status", default=None)
#: per-layer plots show at most this many bars; longer networks are grouped by block
MAX_LAYER_BARS = 60
#: without blocks to group by, the layers with the most cycles are shown and the rest summed
TOP_LAYERS = 40


def _save(fig: Figure, out_dir: Path, name: str) -> None:
    fig.savefig(out_dir / f"{name}.png", dpi=100, metadata={"Software": None})
    fig.savefig(out_dir / f"{name}.svg", metadata={"Date": None})
    tick = _ON_PLOT.get()
    if tick is not None:
        tick(name)


@contextlib.contextmanager
def _progress(enabled: bool, total: int) -> Iterator[None]:
    """A rich progress bar on a terminal's stderr, advanced by each plot written, erased at the end
    (so an error is still one line)."""
    from rich.console import Console

    if not enabled or not Console(stderr=True).is_terminal:
        yield
        return
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    bar = Progress(TextColumn("[bold]report"), BarColumn(), MofNCompleteColumn(), TextColumn("plots"),
                   TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(), TextColumn("{task.description}"),
                   console=Console(stderr=True), transient=True)
    task = bar.add_task("", total=total)
    token = _ON_PLOT.set(lambda name: bar.update(task, advance=1, description=name))
    status = _ON_STATUS.set(lambda text: bar.update(task, description=text))
    bar.start()
    try:
        yield
    finally:
        _ON_PLOT.reset(token)
        _ON_STATUS.reset(status)
        bar.stop()


def _outside_legend(ax: Any, **kwargs: Any) -> None:
    """The legend to the right of the axes, clear of the data."""
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0, fontsize=8, **kwargs)


def group_layers(layers: pd.DataFrame) -> tuple[pd.DataFrame, str]:
    """At most :data:`MAX_LAYER_BARS` rows for the per-layer plots, and a note saying how.

    Up to that many layers: unchanged. More: grouped by block, the deepest prefix of the dotted
    names (``layer1.0``, then ``layer1``) that gives at most that many groups, sums in network order;
    names without blocks: the :data:`TOP_LAYERS` layers with the most cycles in network order and
    one bar for the rest."""
    import pandas as pd

    n = len(layers)
    if n <= MAX_LAYER_BARS:
        return layers, ""
    names = [str(x) for x in layers["layer"]]
    numeric = [c for c in layers.columns if c != "layer" and pd.api.types.is_numeric_dtype(layers[c])]
    for depth in range(max(len(x.split(".")) for x in names) - 1, 0, -1):
        keys = [".".join(x.split(".")[:depth]) for x in names]
        groups = list(dict.fromkeys(keys))
        if 1 < len(groups) <= MAX_LAYER_BARS:
            g = layers.assign(layer=keys).groupby("layer", sort=False)[numeric].sum().reset_index()
            g["type"] = [("block" if keys.count(k) > 1 else str(layers["type"].iloc[keys.index(k)]))
                         if "type" in layers.columns else "block" for k in g["layer"]]
            return g.set_index(pd.Index(range(len(g)))), f"{n} layers grouped into {len(g)} blocks"
    top = set(layers["cycles"].nlargest(TOP_LAYERS).index)
    kept = layers[layers.index.isin(top)]
    rest = layers[~layers.index.isin(top)]
    other = {c: rest[c].sum() for c in numeric}
    other.update(layer=f"other ({len(rest)} layers)", type="other")
    out = pd.concat([kept, pd.DataFrame([other])], ignore_index=True)
    return out, f"the {TOP_LAYERS} of {n} layers with the most cycles, the other {len(rest)} summed"


def _figure(width: float = 7.5, height: float = 4.5, *, margins: dict[str, float] | None = None) -> Figure:
    """A figure without pyplot; fixed margins (``margins``) are much faster than a layout engine
    for plots with many tick labels."""
    import matplotlib

    matplotlib.rcParams["svg.hashsalt"] = "codesign"  # reproducible SVG ids
    from matplotlib.figure import Figure

    if margins is None:
        return Figure(figsize=(width, height), layout="constrained")
    fig = Figure(figsize=(width, height))
    fig.subplots_adjust(**margins)
    return fig


# ---------------------------------------------------------------------------------------------
# per-layer plots (a simulate result or a chosen sweep point)
# ---------------------------------------------------------------------------------------------


def layer_plots(layers: pd.DataFrame, config: Mapping[str, Any], out_dir: Path, title: str) -> list[Plot]:
    """Per-layer latency and energy bars and the roofline of ``config`` with its layers."""
    import numpy as np

    clock_mhz = float(config.get("clock_mhz", 200.0))
    all_layers = layers
    layers, note = group_layers(layers)
    names = [str(n) for n in layers["layer"]]
    x = np.arange(len(names))
    width = max(8.5, min(0.18 * len(names) + 3.6, 30))
    longest = max((len(n) for n in names), default=0)
    height = 4.2 + 0.075 * longest  # room for the rotated names
    margins = {"left": 0.9 / width, "right": 1 - 1.75 / width, "top": 1 - 0.4 / height,
               "bottom": (0.45 + 0.075 * longest) / height}
    suffix = f" ({note})" if note else ""
    plots = []

    fig = _figure(width, height, margins=margins)
    ax = fig.add_subplot()
    to_us = 1.0 / clock_mhz  # cycles -> microseconds
    compute = layers["compute_cycles"].to_numpy(dtype=float)
    total = layers["cycles"].to_numpy(dtype=float)
    other = np.maximum(total - compute, 0.0)
    ax.bar(x, compute * to_us, color="#4e79a7", label="compute")
    ax.bar(x, other * to_us, bottom=compute * to_us, color="#e15759", label="stall / fill / drain")
    ax.set_ylabel("latency (us)")
    ax.set_title(f"Per-layer latency — {title}")
    _layer_axis(ax, x, names)
    _outside_legend(ax)
    _save(fig, out_dir, "layers_latency")
    plots.append(Plot("layers_latency", "Per-layer latency",
                      f"{int(total.sum()):,} cycles = {total.sum() * to_us / 1e3:.4g} ms at {clock_mhz:g} MHz"
                      + suffix))

    fig = _figure(width, height, margins=margins)
    ax = fig.add_subplot()
    bottom = np.zeros(len(names))
    for part in ENERGY_PARTS:
        col = f"energy_{part}_pj"
        if col not in layers.columns:
            continue
        v = layers[col].to_numpy(dtype=float) * 1e-6
        if not v.any():
            continue
        ax.bar(x, v, bottom=bottom, color=PART_COLOURS.get(part), label=part)
        bottom += v
    ax.set_ylabel("energy (uJ)")
    ax.set_title(f"Per-layer energy by component — {title}")
    _layer_axis(ax, x, names)
    _outside_legend(ax)
    _save(fig, out_dir, "layers_energy")
    plots.append(Plot("layers_energy", "Per-layer energy",
                      f"{layers['energy_pj'].sum() * 1e-6:.4g} uJ in total" + suffix))

    plots.append(roofline_plot(all_layers, config, out_dir, title))
    return plots


def _layer_axis(ax: Any, x: Any, names: list[str]) -> None:
    ax.set_xticks(x)
    ax.set_xticklabels(names, rotation=90, fontsize=7 if len(names) > 30 else 8)
    ax.set_xlim(-0.6, len(names) - 0.4)
    ax.grid(axis="y", alpha=0.3)


def roofline_plot(layers: pd.DataFrame, config: Mapping[str, Any], out_dir: Path, title: str) -> Plot:
    """MACs per cycle against MACs per DRAM byte; roofs: the PE count and DRAM bandwidth."""
    import numpy as np

    pes = int(config.get("rows", 16)) * int(config.get("cols", 16))
    bw = float(config.get("dram_bytes_per_cycle", 16.0))
    df = layers[layers["macs"] > 0]
    dram = (df["dram_read_bytes"] + df["dram_write_bytes"]).to_numpy(dtype=float)
    macs = df["macs"].to_numpy(dtype=float)
    cycles = df["cycles"].to_numpy(dtype=float)
    intensity = macs / np.maximum(dram, 1.0)
    perf = macs / np.maximum(cycles, 1.0)
    fig = _figure(8.5, 4.8)
    ax = fig.add_subplot()
    lo = min(float(intensity.min()) if len(df) else 1.0, pes / bw) / 4
    hi = max(float(intensity.max()) if len(df) else 1.0, pes / bw) * 4
    xs = np.geomspace(lo, hi, 200)
    ax.plot(xs, np.minimum(pes, xs * bw), color="black", lw=1.5, label=f"roof: {pes} PEs, {bw:g} B/cycle")
    ax.axvline(pes / bw, color="grey", ls=":", lw=1)
    kinds = [str(k) for k in df["type"]] if "type" in df.columns else ["layer"] * len(df)
    for i, kind in enumerate(sorted(set(kinds))):
        sel = np.array([k == kind for k in kinds])
        ax.scatter(intensity[sel], perf[sel], s=22, marker=MARKERS[i % len(MARKERS)], label=kind, zorder=3)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("operational intensity (MACs per DRAM byte)")
    ax.set_ylabel("performance (MACs per cycle)")
    ax.set_title(f"Roofline — {title}")
    ax.grid(which="both", alpha=0.25)
    _outside_legend(ax)
    _save(fig, out_dir, "roofline")
    return Plot("roofline", "Roofline", f"ridge at {pes / bw:.3g} MACs/byte; one dot per GEMM layer")


# ---------------------------------------------------------------------------------------------
# sweep plots
# ---------------------------------------------------------------------------------------------


def _column_or_base(df: pd.DataFrame, meta: Mapping[str, Any], name: str) -> list[Any]:
    if name in df.columns:
        return list(df[name])
    base = (meta.get("space") or {}).get("base", {})
    default = getattr(AcceleratorConfig(), name)
    value = base.get(name, default)
    return [getattr(value, "value", value)] * len(df)


def pareto_plot(df: pd.DataFrame, meta: Mapping[str, Any], out_dir: Path, name: str, title: str) -> Plot:
    import numpy as np

    fig = _figure(9.0, 5.4)
    ax = fig.add_subplot()
    lat = df["latency_ms"].to_numpy(dtype=float)
    en = df["energy_pj"].to_numpy(dtype=float) * 1e-6
    flows = [str(v) for v in _column_or_base(df, meta, "dataflow")]
    wb = _column_or_base(df, meta, "weight_bits")
    ab = _column_or_base(df, meta, "act_bits")
    rows_, cols_ = _column_or_base(df, meta, "rows"), _column_or_base(df, meta, "cols")
    pes = np.array([int(r) * int(c) for r, c in zip(rows_, cols_, strict=True)], dtype=float)
    # marker area grows with the PE count (log scale), so the array size is visible on every point
    lo_pe, hi_pe = (float(pes.min()), float(pes.max())) if len(pes) else (1.0, 1.0)
    span = math.log2(hi_pe / lo_pe) if hi_pe > lo_pe else 1.0
    area = 12 + 100 * np.log2(pes / lo_pe) / span if len(pes) else pes
    bits = [f"W{w}A{a}" for w, a in zip(wb, ab, strict=True)]
    bit_keys = sorted(set(bits), key=lambda b: (len(b), b))
    for flow in sorted(set(flows)):
        for j, b in enumerate(bit_keys):
            sel = np.array([f == flow and bb == b for f, bb in zip(flows, bits, strict=True)])
            if sel.any():
                ax.scatter(lat[sel], en[sel], s=area[sel], alpha=0.6, color=DATAFLOW_COLOURS.get(flow),
                           marker=MARKERS[j % len(MARKERS)], label=f"{flow.upper()} {b}", linewidths=0)
    if "buildable" in df.columns and not df["buildable"].astype(bool).all():
        model_only = ~df["buildable"].astype(bool).to_numpy()
        ax.scatter(lat[model_only], en[model_only], s=area[model_only] + 25, marker="x", color="dimgrey",
                   lw=0.8, label="model-only (not built)", zorder=3)
    front = df["pareto"].to_numpy(dtype=bool)
    metrics = list(meta.get("pareto") or ("latency_ms", "energy_pj"))
    if front.any():
        order = np.argsort(lat[front], kind="stable")
        fx, fy = lat[front][order], en[front][order]
        if sorted(metrics) == ["energy_pj", "latency_ms"]:  # a 2-D front is a staircase in this plane
            ax.step(fx, fy, where="post", color="black", lw=1, alpha=0.8)
        ax.scatter(fx, fy, s=area[front][order] + 60, facecolors="none", edgecolors="black", lw=1.2,
                   label="Pareto front", zorder=4)
        labels = [f"{int(r)}x{int(c)}" for r, c, f in zip(rows_, cols_, front, strict=True) if f]
        labels = [labels[i] for i in order]
        step = max(1, math.ceil(len(labels) / 25))  # at most 25 labels
        for n, i in enumerate(range(0, len(labels), step)):  # alternately above and below the front
            ax.annotate(labels[i], (fx[i], fy[i]), xytext=(7, 7) if n % 2 == 0 else (7, -13),
                        textcoords="offset points", fontsize=7, zorder=5,
                        bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none", "alpha": 0.7})
    for p in sorted({int(v) for v in (lo_pe, math.sqrt(lo_pe * hi_pe), hi_pe)}):  # a size key
        ax.scatter([], [], s=12 + 100 * math.log2(p / lo_pe) / span, color="grey", alpha=0.6, linewidths=0,
                   label=f"{p} PEs")
    clock = latency_clock(df)
    ax.set_xlabel(f"latency (ms){', ' + clock if clock else ''}")
    ax.set_ylabel("energy (uJ)")
    if lat.size and lat.max() / max(lat.min(), 1e-30) > 20:
        ax.set_xscale("log")
    if en.size and en.max() / max(en.min(), 1e-30) > 20:
        ax.set_yscale("log")
    ax.set_title(f"Latency vs energy — {title}")
    ax.grid(alpha=0.3)
    _outside_legend(ax)
    _save(fig, out_dir, name)
    every = meta.get("include_model_only") or (meta.get("space") or {}).get("include_model_only")
    over = "all points" if every else "buildable points"
    return Plot(name, f"Pareto scatter — {title}",
                f"{len(df)} points, {int(front.sum())} on the Pareto front of {','.join(metrics)} over {over} "
                f"(ringed, labelled rows x cols; model-only points crossed); colour: dataflow, marker: "
                f"weight/activation bits, size: PEs{'; latency ' + clock if clock else ''}")


def latency_clock(df: pd.DataFrame) -> str:
    """'at each design's FPGA Fmax (...)' when a sweep's ``latency_ms`` is at the clocks the designs meet
    (an ``fpga`` section asking for an Fmax: :func:`codesign.sweeps.evaluation.at_fpga_clock`), else ''."""
    if "clock_basis" not in df.columns:
        return ""
    bases = sorted({str(b) for b in df["clock_basis"].dropna()} - {"config clock_mhz"})
    return f"at each design's FPGA Fmax ({', '.join(bases)})" if bases else ""


def accuracy_plot(df: pd.DataFrame, meta: Mapping[str, Any], out_dir: Path, name: str = "accuracy_energy") -> Plot:
    """Top-1 accuracy vs energy: a panel per workload, colour by weight bits, marker by activation bits."""
    import numpy as np
    from matplotlib import colormaps

    workloads = list(dict.fromkeys(str(w) for w in df["workload"]))
    cols = min(len(workloads), 4)
    rows_n = math.ceil(len(workloads) / cols)
    width = 3.2 * cols + 1.6
    fig = _figure(width, 3.0 * rows_n + 0.8, margins={"left": 0.07, "right": 1 - 1.3 / width, "bottom": 0.12,
                                                       "top": 0.9, "wspace": 0.3, "hspace": 0.45})
    wb_all = [int(v) for v in _column_or_base(df, meta, "weight_bits")]
    ab_all = [int(v) for v in _column_or_base(df, meta, "act_bits")]
    wbits = sorted(set(wb_all), reverse=True)
    abits = sorted(set(ab_all), reverse=True)
    cmap = colormaps["viridis"]
    colours = {b: cmap(i / max(1, len(wbits) - 1)) for i, b in enumerate(wbits)}
    wb_arr, ab_arr = np.array(wb_all), np.array(ab_all)
    for k, wl in enumerate(workloads):
        ax = fig.add_subplot(rows_n, cols, k + 1)
        mask = (df["workload"].astype(str) == wl).to_numpy()
        en = df["energy_pj"].to_numpy(dtype=float) * 1e-6
        acc = df["accuracy"].to_numpy(dtype=float) * 100
        for w in wbits:
            for j, a in enumerate(abits):
                sel = mask & (wb_arr == w) & (ab_arr == a)
                if sel.any():
                    ax.scatter(en[sel], acc[sel], s=22, color=colours[w], marker=MARKERS[j % len(MARKERS)],
                               label=f"W{w}A{a}" if k == 0 else None, alpha=0.85)
        front = mask & df["pareto"].to_numpy(dtype=bool)
        if front.any():
            ax.scatter(en[front], acc[front], s=80, facecolors="none", edgecolors="black", lw=1.0,
                       label="Pareto front" if k == 0 else None, zorder=4)
        ax.set_title(wl, fontsize=9)
        ax.set_xlabel("energy (uJ)", fontsize=8)
        if k % cols == 0:
            ax.set_ylabel("top-1 accuracy (%)", fontsize=8)
        ax.set_ylim(0, 100)
        ax.grid(alpha=0.3)
        ax.tick_params(labelsize=7)
    fig.legend(fontsize=6, loc="center right", ncol=1)
    _save(fig, out_dir, name)
    return Plot(name, "Accuracy vs energy",
                "top-1 accuracy of the integer network (codesign accuracy) against energy per inference; "
                "colour: weight bits, marker: activation bits, ringed: Pareto front")


def breakdown_plot(df: pd.DataFrame, out_dir: Path, name: str, title: str) -> Plot:
    import numpy as np

    rows = df[df["pareto"]].sort_values("latency_ms", kind="stable")
    if rows.empty:
        rows = df.nsmallest(min(len(df), 12), "edp")
    rows = rows.head(40)
    labels = [f"#{int(p)}" for p in rows["point"]]
    if "dataflow" in rows.columns:
        labels = [f"{lab} {str(f).upper()}" for lab, f in zip(labels, rows["dataflow"], strict=True)]
    if {"rows", "cols"} <= set(rows.columns):
        labels = [f"{lab} {int(r)}x{int(c)}" for lab, r, c in zip(labels, rows["rows"], rows["cols"], strict=True)]
    x = np.arange(len(rows))
    fig = _figure(max(8.0, 0.35 * len(rows) + 4.5), 4.5)
    ax = fig.add_subplot()
    bottom = np.zeros(len(rows))
    for part in ENERGY_PARTS:
        col = f"energy_{part}_pj"
        if col not in rows.columns:
            continue
        v = rows[col].to_numpy(dtype=float) * 1e-6
        if not v.any():
            continue
        ax.bar(x, v, bottom=bottom, color=PART_COLOURS.get(part), label=part)
        bottom += v
    ax.set_xticks(x)
    ax.set_xticklabels(labels, rotation=90, fontsize=8)
    ax.set_xlabel("design point (Pareto front, by latency)")
    ax.set_ylabel("energy (uJ)")
    ax.set_title(f"Energy breakdown — {title}")
    ax.grid(axis="y", alpha=0.3)
    _outside_legend(ax)
    _save(fig, out_dir, name)
    return Plot(name, f"Energy breakdown — {title}", "energy by component of each Pareto point")


# ---------------------------------------------------------------------------------------------
# HTML
# ---------------------------------------------------------------------------------------------


def _fmt(v: Any) -> str:
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        if math.isnan(v):
            return "–"
        if v != 0 and (abs(v) >= 1e6 or abs(v) < 1e-3):
            return f"{v:.4g}"
        return f"{v:,.4g}" if abs(v) >= 1000 else f"{v:.4g}"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)


def html_table(records: Sequence[Mapping[str, Any]], columns: Sequence[str], *, table_id: str = "",
               css: str = "") -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(_fmt(_plain(r.get(c))))}</td>" for c in columns) + "</tr>"
        for r in records
    )
    attrs = (f' id="{html.escape(table_id)}"' if table_id else "") + (f' class="{css}"' if css else "")
    return f"<table{attrs}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _plain(v: Any) -> Any:
    return v.item() if hasattr(v, "item") else v


def fields_table(record: Mapping[str, Any], *, table_id: str = "") -> str:
    """One record as a two-column (field, value) table: a config of 18 fields fits any page."""
    body = "".join(f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(_fmt(_plain(v)))}</td></tr>"
                   for k, v in record.items())
    attrs = f' id="{html.escape(table_id)}"' if table_id else ""
    return f'<table{attrs} class="meta fields"><tbody>{body}</tbody></table>'


STYLE = """
body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1200px;color:#222;padding:0 1em}
h1{font-size:1.6em}h2{border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:2em}
figure{margin:1em 0}figure img{max-width:100%;border:1px solid #eee}
figcaption{color:#555;font-size:.9em}
table{border-collapse:collapse;font-size:.85em;margin:.5em 0}
td,th{border:1px solid #ddd;padding:3px 8px;text-align:right}th{background:#f3f3f3}
.meta td,.meta th{text-align:left}
.wide{overflow-x:auto;max-width:100%}
.fields{display:inline-table;vertical-align:top;margin-right:2em}
"""


def write_html(out_dir: Path, title: str, intro: str, sections: Sequence[Section]) -> Path:
    parts = [f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{html.escape(title)}"
             f"</title><style>{STYLE}</style></head><body>", f"<h1>{html.escape(title)}</h1>", intro]
    for s in sections:
        parts.append(f"<section><h2>{html.escape(s.title)}</h2>")
        parts.append(f'<div class="wide">{s.html}</div>' if s.html else "")
        for p in s.plots:
            parts.append(
                f'<figure id="fig-{html.escape(p.name)}"><img src="{html.escape(p.name)}.png" '
                f'alt="{html.escape(p.title)}"><figcaption>{html.escape(p.title)}: {html.escape(p.caption)} '
                f'(<a href="{html.escape(p.name)}.svg">SVG</a>)</figcaption></figure>'
            )
        parts.append("</section>")
    parts.append("<footer><p>Generated by codesign.</p></footer></body></html>\n")
    path = out_dir / "index.html"
    path.write_text("\n".join(parts))
    return path


# ---------------------------------------------------------------------------------------------
# entry points
# ---------------------------------------------------------------------------------------------


def report(source: str | Path, out_dir: str | Path, *, point: int | None = None,
           workload: str | None = None, progress: bool = False, include_model_only: bool = False) -> Path:
    """Write the plots and ``index.html`` for a sweep table (.parquet/.csv) or a simulate result
    (.json) into ``out_dir``; returns the path of ``index.html``. ``progress``: a progress bar on
    stderr while the plots are drawn."""
    src = Path(source)
    if not src.exists():
        raise ConfigError(f"report source {str(source)!r} does not exist")
    suffix = src.suffix.lower()
    if suffix not in (".json", ".parquet", ".csv"):
        raise ConfigError(f"report source must be a .parquet/.csv sweep table or a .json simulate result, "
                          f"not {src.name!r}")
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"report directory {str(out_dir)!r} is a file, not a directory")
    if suffix == ".json":
        data = _read_simulate_result(src)
        _make_dir(out, out_dir)
        with _progress(progress, total=4):
            return simulate_report(src, out, data=data)
    from codesign.sweeps import read_results

    df = read_results(src)
    n_workloads = df["workload"].nunique() if "workload" in df.columns else 1
    _make_dir(out, out_dir)
    accuracy = int("accuracy" in df.columns and bool(df["accuracy"].notna().any()))
    with _progress(progress, total=2 * n_workloads + 3 + accuracy):
        return sweep_report(df, out, point=point, workload=workload, source_name=src.name,
                            include_model_only=include_model_only)


def _make_dir(out: Path, given: str | Path) -> None:
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ConfigError(f"cannot create report directory {str(given)!r}: {e.strerror or e}") from e


def _read_simulate_result(path: Path) -> tuple[dict[str, Any], dict[str, Any], pd.DataFrame]:
    import pandas as pd

    from codesign.safe_yaml import read_text

    text = read_text(path, what="simulate result")
    try:
        data = json.loads(text)
        summary, config, layers = data["summary"], data["config"], data["layers"]
        df = pd.DataFrame(layers)
        missing = {"layer", "macs", "cycles", "compute_cycles", "energy_pj", "dram_read_bytes",
                   "dram_write_bytes"} - set(df.columns)
        if missing:
            raise KeyError(sorted(missing)[0])
        if not isinstance(summary, dict) or not isinstance(config, dict):
            raise TypeError("summary and config must be objects")
    except (ValueError, KeyError, TypeError, AttributeError, IndexError) as e:
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise ConfigError(f"{path.name} must be a simulate result (codesign simulate --out r.json), "
                          f"not readable: {first}") from None
    return summary, config, df


def simulate_report(path: Path, out: Path, *, data: tuple[dict[str, Any], dict[str, Any], pd.DataFrame] | None = None
                    ) -> Path:
    summary, config, df = data if data is not None else _read_simulate_result(path)
    name = str(summary.get("network", path.stem))
    plots = layer_plots(df, config, out, name)
    plots.append(_layer_breakdown_total(summary, out, name))
    keys = ("network", "layers", "macs", "cycles", "latency_ms", "energy_uj", "edp", "utilization",
            "peak_dram_bytes_per_cycle", "dram_read_bytes", "dram_write_bytes", "buildable", "clip_bits")
    table = html_table([summary], [k for k in keys if k in summary], table_id="summary", css="meta")
    cfg = fields_table(config, table_id="config")
    sections = [Section("Summary", html=table + cfg), Section("Layers", plots=plots)]
    return write_html(out, f"codesign report — {name}", f"<p>Simulation result <code>{html.escape(path.name)}"
                      f"</code>.</p>", sections)


def _layer_breakdown_total(summary: Mapping[str, Any], out: Path, title: str) -> Plot:
    fig = _figure(6.5, 3.8)
    ax = fig.add_subplot()
    parts = [(p, float(summary.get(f"energy_{p}_pj", 0.0)) * 1e-6) for p in ENERGY_PARTS]
    parts = [(p, v) for p, v in parts if v > 0]
    ax.barh([p for p, _ in parts], [v for _, v in parts], color=[PART_COLOURS[p] for p, _ in parts])
    ax.invert_yaxis()
    ax.set_xlabel("energy (uJ)")
    ax.set_title(f"Energy breakdown — {title}")
    ax.grid(axis="x", alpha=0.3)
    _save(fig, out, "energy_breakdown")
    total = sum(v for _, v in parts)
    return Plot("energy_breakdown", "Energy breakdown", f"{total:.4g} uJ by component")


def choose_point(df: pd.DataFrame, workload: str) -> int:
    """The Pareto point of least EDP (least EDP among the buildable points if the front is empty,
    among all points if none is buildable)."""
    rows = df[df["workload"] == workload]
    if "buildable" in rows.columns and rows["buildable"].astype(bool).any():
        buildable = rows[rows["buildable"].astype(bool)]
    else:
        buildable = rows
    front = rows[rows["pareto"]] if rows["pareto"].any() else buildable
    best = front.sort_values(["edp", "point"], kind="stable").iloc[0]
    return int(best["point"])


def sweep_report(df: pd.DataFrame, out: Path, *, point: int | None = None, workload: str | None = None,
                 source_name: str = "results", include_model_only: bool = False) -> Path:
    from codesign.pareto import mark_pareto

    meta: dict[str, Any] = dict(df.attrs.get("codesign") or {})
    needed = {"point", "workload", "latency_ms", "energy_pj", "edp"}
    if not needed <= set(df.columns):
        raise ConfigError(f"{source_name} must be a sweep results table with columns "
                          f"{', '.join(sorted(needed))}, not {', '.join(map(str, df.columns))}")
    if df.empty:
        raise ConfigError(f"{source_name} has no rows")
    metrics = list(meta.get("pareto") or ("latency_ms", "energy_pj"))
    if include_model_only and not (meta.get("space") or {}).get("include_model_only"):
        df = df.drop(columns=["pareto"], errors="ignore")  # ranked again, over every point
        meta["include_model_only"] = True
    if "pareto" not in df.columns:
        keep = df["buildable"].astype(bool) if "buildable" in df.columns and not include_model_only else None
        front = mark_pareto(df if keep is None else df[keep], metrics)
        df = df.assign(pareto=front.reindex(df.index, fill_value=False))
    df = df.assign(pareto=df["pareto"].astype(bool))
    workloads = list(dict.fromkeys(str(w) for w in df["workload"]))
    if workload is not None and workload not in workloads:
        raise ConfigError(f"workload must be one of {', '.join(workloads)}, not {workload!r}")
    chosen_wl = workload or workloads[0]
    if point is not None and df[(df["workload"] == chosen_wl) & (df["point"] == point)].empty:
        raise ConfigError(f"point must be a point id of workload {chosen_wl!r} in {source_name}, not {point!r}")
    axes = [a for a in meta.get("axes", []) if a in df.columns]
    if not axes:
        known = set(AcceleratorConfig.field_names())
        axes = [c for c in df.columns if c in known]

    sections: list[Section] = []
    for wl in workloads:
        rows = df[df["workload"] == wl]
        s = slug(wl)
        plots = [pareto_plot(rows, meta, out, f"pareto_{s}", wl), breakdown_plot(rows, out, f"breakdown_{s}", wl)]
        front = rows[rows["pareto"]].sort_values(["latency_ms", "point"], kind="stable")
        cols = ["point", *axes, *[c for c in TABLE_COLUMNS if c in rows.columns]]
        table = (f"<p>{len(front)} of {len(rows)} points are on the Pareto front of "
                 f"{html.escape(', '.join(metrics))} "
                 f"({'accuracy maximized, the others minimized' if 'accuracy' in metrics else 'minimized'}).</p>"
                 + html_table(front.to_dict("records"), cols, table_id=f"pareto-{s}", css="pareto"))
        sections.append(Section(f"Workload {wl}", plots=plots, html=table))

    if "accuracy" in df.columns and df["accuracy"].notna().any():
        sections.insert(0, Section("Accuracy vs energy", plots=[accuracy_plot(df, meta, out)]))
    chosen = choose_point(df, chosen_wl) if point is None else point
    sel = df[(df["workload"] == chosen_wl) & (df["point"] == chosen)]
    sections.append(_chosen_section(sel.iloc[0].to_dict(), meta, out, chosen_wl, chosen, axes))

    space = meta.get("space") or {}
    intro = (f"<p>Sweep <code>{html.escape(source_name)}</code>: {df['point'].nunique()} design points × "
             f"{len(workloads)} workload(s) = {len(df)} rows; axes: {html.escape(', '.join(axes))}.</p>")
    if space.get("constraints"):
        intro += f"<p>Constraints: {html.escape(json.dumps(space['constraints']))}.</p>"
    return write_html(out, "codesign design-space report", intro, sections)


def _chosen_section(row: Mapping[str, Any], meta: Mapping[str, Any], out: Path, wl: str, point: int,
                    axes: Sequence[str]) -> Section:
    title = f"point #{point} on {wl}"
    cols = ["point", *axes, *[c for c in TABLE_COLUMNS if c in row]]
    html_parts = [html_table([row], cols, table_id="chosen", css="meta")]
    plots: list[Plot] = []
    space_dict = meta.get("space")
    if not space_dict:
        html_parts.append("<p>The results file does not carry its design space, so the point cannot be "
                          "re-simulated for per-layer plots.</p>")
        return Section(f"Chosen design: {title}", plots=plots, html="".join(html_parts))
    from codesign.space import DesignSpace
    from codesign.sweeps import evaluate

    say = _ON_STATUS.get()
    if say is not None:
        say(f"re-simulating point {point} on {wl} ({space_dict.get('engine', 'closed_form')} engine)")
    try:
        space = DesignSpace.from_dict(space_dict)
        spec = next(w for w in space.workloads if w.display_name == wl)
        config = space.config(point)
        result = evaluate(config, spec.load(), engine=space.engine)
    except (CodesignError, StopIteration) as e:
        raise ConfigError(f"cannot re-simulate point {point} of {wl!r}: {e}") from e
    layers = result.to_dataframe()
    plots = layer_plots(layers, config.to_dict(), out, title)
    html_parts.append(fields_table(config.to_dict(), table_id="chosen-config"))
    html_parts.append(f"<p>This config as a file for simulate, generate, verify and synth: <code>codesign config "
                      f"RESULTS --point {point} -o accel.yaml</code>"
                      + ("" if row.get("buildable", True) else " (model-only: generate and verify refuse it)")
                      + ".</p>")
    return Section(f"Chosen design: {title} (least EDP on the front unless --point)", plots=plots,
                   html="".join(html_parts))
