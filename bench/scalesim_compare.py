"""codesign ``--timing scalesim`` against the real SCALE-Sim: per-layer cycles, wall time, peak RSS.

SCALE-Sim is not a dependency of codesign: install it in a separate environment and name its
interpreter (scalesim 3.0.0 needs ``numpy<2.4``: its memory model calls ``int()`` on 1-element
arrays, which numpy 2.4 refuses)::

    python -m venv ENV && ENV/bin/pip install scalesim==3.0.0 "numpy<2.4"
    python bench/scalesim_compare.py --scalesim-python ENV/bin/python

Without ``--scalesim-python`` only codesign is measured. Each tool runs in a fresh process; the
wall time is the simulation call alone (``sim_wall_s``: no interpreter start, no imports) and the
whole process (``process_wall_s``); peak RSS is the process's. SCALE-Sim runs through its Python
API in CALC mode (``InterfaceBandwidth: CALC``, SCALE-Sim's shipped ``scale.cfg`` memory settings),
without writing traces (its CLI always writes them, which is slower still); codesign runs
``simulate_network(..., timing="scalesim")``, the median of ``--repeat`` fresh processes.

``--sparse`` turns SCALE-Sim's ``SparsitySupport`` on (it then compresses every filter to the
topology's N:M column) and runs codesign with ``--zero-handling skip``.

``--reference`` instead runs SCALE-Sim on every topology in ``tests/data/scalesim`` on the arrays
and dataflows of ``tests/sim/test_scalesim_reference.py``, and on three of SCALE-Sim's shipped
topologies (``SHIPPED_REFERENCE_RUNS``), and prints the tables that test holds (minutes to tens of
minutes on two cores); ``--reference --sparse`` does the same for the sparse
table (``SPARSE_REFERENCE_RUNS``, under a minute). ``--parse-topologies`` prints the layer counts
SCALE-Sim's own parser reads from its shipped topologies (``tests/data/scalesim/topologies``), the
table of ``tests/unit/test_scalesim_csv.py``.

    python bench/scalesim_compare.py [--scalesim-python PATH] [--topology CSV] [--rows 32 --cols 32
        --dataflow ws] [--sparse] [--repeat 5] [--out bench/results/scalesim_compare.csv]
"""

from __future__ import annotations

import argparse
import csv
import itertools
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "data" / "scalesim"
REFERENCE_RUNS = {  # topology -> arrays; every array runs ws, os, is
    "alexnet.csv": ("32x32",),
    "gemm_ragged.csv": ("8x8", "32x32", "16x4"),
    "conv_odd.csv": ("8x8", "32x32", "16x4"),
    "conv_extras.csv": ("8x8", "32x32", "16x4"),
}
SHIPPED_REFERENCE_RUNS = {  # SCALE-Sim's own files in header variants the reader once refused; WS only (minutes each)
    "topologies/GEMM_mnk/vit_s.csv": ("32x32",),  # "Layer,M,N,K," with CRLF
    "topologies/dlrm/dlrm_fwd.csv": ("32x32",),  # byte-order mark, lower-case header, "num filters"
    "topologies/deepbench/DeepBenchConv/OCR.csv": ("32x32",),  # "Layer, IFMAP Width, IFMAP Width"
}
SPARSE_REFERENCE_RUNS = {  # the same, SCALE-Sim with SparsitySupport on
    "sparse/nm_conv.csv": ("8x8", "32x32"),
    "sparse/nm_gemm.csv": ("8x8", "32x32"),
    "topologies/sparsity/conv.csv": ("8x8", "32x32"),
    "topologies/sparsity/gemm.csv": ("8x8", "32x32"),
    "topologies/sparsity/alexnet_part.csv": ("32x32",),
}

# SCALE-Sim 3 config: its shipped configs/scale.cfg (64 KiB SRAMs, 512-entry request buffers,
# CALC bandwidth mode) with the array and dataflow filled in, and the [layout]/[sparsity]
# sections that 3.0.0's reader requires set to their defaults (no custom layout; sparsity off, or
# on with ``--sparse``: SCALE-Sim then compresses each filter column to the topology's N:M ratio,
# ELLPACK-block representation, no optimized mapping).
SCALESIM_CFG = """[general]
run_name = {name}

[architecture_presets]
ArrayHeight:    {rows}
ArrayWidth:     {cols}
IfmapSramSzkB:    64
FilterSramSzkB:   64
OfmapSramSzkB:    64
IfmapOffset:    0
FilterOffset:   10000000
OfmapOffset:    20000000
Bandwidth : 10
Dataflow : {df}
MemoryBanks:   1
ReadRequestBuffer: 512
WriteRequestBuffer: 512

[layout]
IfmapCustomLayout: False
IfmapSRAMBankBandwidth: 10
IfmapSRAMBankNum: 10
IfmapSRAMBankPort: 2
FilterCustomLayout: False
FilterSRAMBankBandwidth: 10
FilterSRAMBankNum: 10
FilterSRAMBankPort: 2

[sparsity]
SparsitySupport : {sparsity}
SparseRep : ellpack_block
OptimizedMapping : false
BlockSize : 8
RandomNumberGeneratorSeed : 40

[run_presets]
InterfaceBandwidth: CALC
UseRamulatorTrace: False
"""

# Runs inside the SCALE-Sim interpreter: argv = cfg topology gemm|conv outdir layout.
SCALESIM_DRIVER = r"""
import contextlib, io, json, os, resource, sys, time
cfg, topo, fmt, out, layout = sys.argv[1:6]
from importlib.metadata import version
from scalesim.scale_sim import scalesim
t0, c0 = time.perf_counter(), time.process_time()
with contextlib.redirect_stdout(io.StringIO()):
    s = scalesim(save_disk_space=True, verbose=False, config=cfg, topology=topo, layout=layout,
                 input_type_gemm=(fmt == "gemm"))
    s.run_scale(top_path=out)
wall, cpu = time.perf_counter() - t0, time.process_time() - c0
layers = []
report = os.path.join(out, s.config.get_run_name(), "COMPUTE_REPORT.csv")
with open(report) as f:
    header = [c.strip() for c in f.readline().split(",")]
    total, stall = header.index("Total Cycles"), header.index("Stall Cycles")
    for line in f:
        cells = [c.strip() for c in line.split(",")]
        if len(cells) > stall and cells[0]:
            layers.append({"total_cycles": int(cells[total]), "stall_cycles": int(cells[stall])})
names = s.topo.get_layer_names()
for d, n in zip(layers, names):
    d["layer"] = n
print(json.dumps({"version": version("scalesim"), "numpy": version("numpy"), "sim_wall_s": wall, "sim_cpu_s": cpu,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "layers": layers}))
"""

# Runs inside the SCALE-Sim interpreter: argv = topology folder. SCALE-Sim's own parser on every CSV,
# in the mode its header asks for (``-i gemm`` for ``..., M, N, K``; conv otherwise); SCALE-Sim
# itself never looks at the header.
PARSE_DRIVER = r"""
import contextlib, io, json, sys
from pathlib import Path
from scalesim.topology_utils import topologies
root = Path(sys.argv[1])
out = {}
for f in sorted(root.rglob("*.csv")):
    head = [c.strip().lower() for c in f.read_text(encoding="utf-8-sig").splitlines()[0].split(",")]
    t = topologies()
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            t.load_arrays(str(f), mnk_inputs=head[1:4] == ["m", "n", "k"])
            macs = t.get_all_mac_ops()
    except Exception as e:
        out[f.relative_to(root).as_posix()] = f"{type(e).__name__}: {e}"
        continue
    out[f.relative_to(root).as_posix()] = {"layers": t.get_num_layers(), "macs": macs,
        "sparsity": [f"{a[9]}:{a[10]}" for a in t.topo_arrays]}
print(json.dumps(out))
"""

CODESIGN_DRIVER = r"""
import json, resource, sys, time
topo, rows, cols, df, zero_handling = sys.argv[1:6]
from codesign.sim.config import AcceleratorConfig
from codesign.sim.engine import simulate_network
from codesign.workloads.scalesim_csv import read_topology
t0, c0 = time.perf_counter(), time.process_time()
net = read_topology(topo)
config = AcceleratorConfig(rows=int(rows), cols=int(cols), dataflow=df, zero_handling=zero_handling)
r = simulate_network(net, config, timing="scalesim")
wall, cpu = time.perf_counter() - t0, time.process_time() - c0
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"sim_wall_s": wall, "sim_cpu_s": cpu, "peak_rss_mb": rss,
                  "layers": [{"layer": x.layer, "total_cycles": x.cycles} for x in r.layers]}))
"""


def topology_format(path: Path) -> str:
    head = [c.strip().lower() for c in path.read_text().splitlines()[0].split(",")]
    return "gemm" if head[1:4] == ["m", "n", "k"] else "conv"


def _run(cmd: list[str], cwd: str | None = None) -> tuple[dict, float, float, float]:
    """Run ``cmd``: its JSON on stdout, the process's wall time, CPU time (user + system) and peak RSS
    (MB), the last two from ``wait4``."""
    t0 = time.perf_counter()
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        p = subprocess.Popen(cmd, stdout=out, stderr=err, cwd=cwd, text=True)
        _, status, usage = os.wait4(p.pid, 0)
        p.returncode = os.waitstatus_to_exitcode(status)
        wall = time.perf_counter() - t0
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    if p.returncode != 0:
        raise RuntimeError(f"{cmd[0]} exited {p.returncode}:\n{stderr[-3000:]}")
    return json.loads(stdout.strip().splitlines()[-1]), wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024


def run_scalesim(python: str, topo: Path, rows: int, cols: int, df: str, sparse: bool = False) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        cfg = Path(tmp) / "scale.cfg"
        cfg.write_text(SCALESIM_CFG.format(name=f"r{rows}x{cols}_{df}", rows=rows, cols=cols, df=df,
                                           sparsity="true" if sparse else "false"))
        layout = Path(tmp) / "layout.csv"  # 3.0.0 opens a layout file even when no custom layout is used
        layout.write_text("Layer name, IFMAP Height Intraline Factor,\n")
        driver = Path(tmp) / "driver.py"
        driver.write_text(SCALESIM_DRIVER)
        res, wall, cpu, rss = _run([python, str(driver), str(cfg), str(topo.resolve()), topology_format(topo),
                               str(Path(tmp) / "out"), str(layout)], cwd=tmp)
    res["process_wall_s"], res["process_cpu_s"], res["process_peak_rss_mb"] = wall, cpu, rss
    return res


def run_codesign(topo: Path, rows: int, cols: int, df: str, repeat: int, sparse: bool = False) -> dict:
    cmd = [sys.executable, "-c", CODESIGN_DRIVER, str(topo.resolve()), str(rows), str(cols), df,
           "skip" if sparse else "none"]
    runs = [_run(cmd) for _ in range(repeat)]
    res = runs[0][0]
    res["sim_wall_s"] = statistics.median(r[0]["sim_wall_s"] for r in runs)
    res["sim_cpu_s"] = statistics.median(r[0]["sim_cpu_s"] for r in runs)
    res["peak_rss_mb"] = max(r[0]["peak_rss_mb"] for r in runs)
    res["process_wall_s"] = statistics.median(r[1] for r in runs)
    res["process_cpu_s"] = statistics.median(r[2] for r in runs)
    res["process_peak_rss_mb"] = max(r[3] for r in runs)
    res["repeat"] = repeat
    return res


def reference(python: str, sparse: bool = False) -> int:
    """SCALE-Sim's Total Cycles per row of the reference runs: a list per run, or with ``sparse`` a pair
    (SparsitySupport false, SparsitySupport true) per run."""
    table: dict[str, dict[str, dict[str, object]]] = {}
    for topo, arrays in (SPARSE_REFERENCE_RUNS if sparse else REFERENCE_RUNS | SHIPPED_REFERENCE_RUNS).items():
        for arr in arrays:
            rows, cols = map(int, arr.split("x"))
            for df in ("ws",) if topo in SHIPPED_REFERENCE_RUNS else ("ws", "os", "is"):
                runs = []
                for on in ((False, True) if sparse else (False,)):
                    res = run_scalesim(python, DATA / topo, rows, cols, df, sparse=on)
                    assert all(x["stall_cycles"] == 0 for x in res["layers"]), res
                    runs.append([x["total_cycles"] for x in res["layers"]])
                    print(f"{topo} {arr} {df} sparsity={on}: {runs[-1]} ({res['sim_wall_s']:.1f} s)", file=sys.stderr)
                table.setdefault(topo, {}).setdefault(arr, {})[df] = tuple(runs) if sparse else runs[0]
    print(json.dumps(table, indent=1))
    return 0


def parse_topologies(python: str) -> int:
    """Print SCALE-Sim's layer count and MACs for every topology under tests/data/scalesim/topologies
    (the table tests/unit/test_scalesim_csv.py holds), and the files its parser refuses."""
    with tempfile.TemporaryDirectory() as tmp:
        driver = Path(tmp) / "parse.py"
        driver.write_text(PARSE_DRIVER)
        res, *_ = _run([python, str(driver), str(DATA / "topologies")], cwd=tmp)
    read = {k: (v["layers"], v["macs"]) for k, v in res.items() if isinstance(v, dict)}
    print("SCALESIM_PARSES = {")
    for k, v in read.items():
        print(f"    {k!r}: {v},")
    print("}")
    print(f"# {len(read)} of {len(res)} read; refused by SCALE-Sim's parser:")
    for k, v in res.items():
        if not isinstance(v, dict):
            print(f"#   {k}: {v}")
    sparse = {k: v["sparsity"] for k, v in res.items() if isinstance(v, dict) and set(v["sparsity"]) != {"1:1"}}
    print(f"# layers' N:M: {json.dumps(sparse)}")
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scalesim-python", metavar="PATH", help="interpreter of an environment with scalesim installed")
    ap.add_argument("--topology", type=Path, default=DATA / "alexnet.csv")
    ap.add_argument("--rows", type=int, default=32)
    ap.add_argument("--cols", type=int, default=32)
    ap.add_argument("--dataflow", default="ws", choices=["ws", "os", "is"])
    ap.add_argument("--repeat", type=int, default=5, help="codesign runs (fresh processes); the median is kept")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "scalesim_compare.csv")
    ap.add_argument("--reference", action="store_true", help="print the reference table of the test instead")
    ap.add_argument("--sparse", action="store_true",
                    help="SCALE-Sim with SparsitySupport on, codesign with --zero-handling skip")
    ap.add_argument("--parse-topologies", action="store_true",
                    help="print SCALE-Sim's layer counts of its shipped topologies (the unit test's table) instead")
    args = ap.parse_args()
    if (args.reference or args.parse_topologies) and not args.scalesim_python:
        ap.error("--reference and --parse-topologies need --scalesim-python")
    if args.parse_topologies:
        return parse_topologies(args.scalesim_python)
    if args.reference:
        return reference(args.scalesim_python, sparse=args.sparse)

    cs = run_codesign(args.topology, args.rows, args.cols, args.dataflow, args.repeat, sparse=args.sparse)
    ss = run_scalesim(args.scalesim_python, args.topology, args.rows, args.cols, args.dataflow, sparse=args.sparse) \
        if args.scalesim_python else None
    layers = []
    ss_rows = iter(ss["layers"] if ss else [])
    for c in cs["layers"]:
        # SCALE-Sim's rows in order: one per topology row, except that a row whose name contains
        # "DP" runs once per channel, as "<name>Channel_<i>" (codesign: one grouped layer). Taken
        # by position: codesign suffixes repeated names ("fc", "fc_2"), SCALE-Sim keeps them.
        s = []
        if ss:
            s.append(next(ss_rows))
            if re.search(r"Channel_0$", s[0]["layer"]):
                prefix = s[0]["layer"].removesuffix("0")
                while (nxt := next(ss_rows, None)) is not None:
                    if not nxt["layer"].startswith(prefix):
                        ss_rows = itertools.chain([nxt], ss_rows)
                        break
                    s.append(nxt)
        layers.append({"layer": c["layer"], "codesign_cycles": c["total_cycles"],
                       "scalesim_cycles": sum(x["total_cycles"] for x in s) if s else "",
                       "scalesim_stall_cycles": sum(x["stall_cycles"] for x in s) if s else "",
                       "scalesim_rows": len(s) if ss else "",
                       "match": (sum(x["total_cycles"] for x in s) == c["total_cycles"]) if ss else ""})
    keys = ("sim_wall_s", "sim_cpu_s", "process_wall_s", "process_cpu_s", "peak_rss_mb", "process_peak_rss_mb")
    tools = {"codesign": {k: cs[k] for k in (*keys, "repeat")}}
    if ss:
        tools["scalesim"] = {k: ss[k] for k in ("version", "numpy", *keys)}
    topo_name = args.topology.name
    summary = {
        "topology": topo_name, "array": f"{args.rows}x{args.cols}", "dataflow": args.dataflow,
        "sparse": args.sparse,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "tools": tools,
        "total_cycles": {"codesign": sum(x["codesign_cycles"] for x in layers),
                         "scalesim": sum(x["scalesim_cycles"] for x in layers) if ss else None},
        "all_layers_match": all(x["match"] for x in layers) if ss else None,
        "load_average_after": os.getloadavg(),
        "speedup_sim_wall": (ss["sim_wall_s"] / cs["sim_wall_s"]) if ss else None,
        "speedup_sim_cpu": (ss["sim_cpu_s"] / cs["sim_cpu_s"]) if ss else None,
        "layers": layers,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with args.out.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["topology", "array", "dataflow", "layer", "scalesim_cycles",
                                          "codesign_cycles", "match", "scalesim_stall_cycles", "scalesim_rows"])
        w.writeheader()
        for x in layers:
            w.writerow({"topology": topo_name, "array": summary["array"], "dataflow": args.dataflow, **x})
    args.out.with_suffix(".json").write_text(json.dumps(summary, indent=2) + "\n")

    print(f"{topo_name} {summary['array']} {args.dataflow}")
    print(f"{'layer':12s} {'scalesim':>10s} {'codesign':>10s} match")
    for x in layers:
        print(f"{x['layer']:12s} {x['scalesim_cycles']!s:>10s} {x['codesign_cycles']:>10d} {x['match']}")
    print(f"{'tool':9s} {'sim_wall_s':>10s} {'sim_cpu_s':>10s} {'proc_wall_s':>11s} {'peak_rss_MB':>11s}")
    for name, t in tools.items():
        print(f"{name:9s} {t['sim_wall_s']:10.4f} {t['sim_cpu_s']:10.4f} {t['process_wall_s']:11.3f} "
              f"{t['process_peak_rss_mb']:11.1f}")
    print(f"wrote {args.out} and {args.out.with_suffix('.json')}")
    return 0 if (ss is None or summary["all_layers_match"]) else 1


if __name__ == "__main__":
    sys.exit(main())
