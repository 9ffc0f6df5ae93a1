"""The edge networks on the machine as built, against the array-only machine: cycles, DRAM bytes,
energy and layers left model-only, with and without the depthwise engine and the vector unit.

    python bench/edge_networks.py

Each row is ``codesign simulate`` (closed form, equal to the SimPy engine) on the config named: the
default fields except those given. "engines" is the default (``depthwise: auto``, ``vector_unit: true``:
depthwise layers on the depthwise engine, residual adds on the vector unit, average pools as GEMMs, a max
pool after a stem in the stem's write-back, outputs kept in the input buffer for the next layer where both
read their input as one tile, a depthwise layer in its 1x1 convolution's write-back where that is faster);
"no depthwise stage" is the default with ``dw_writeback: false``; "array only" is ``depthwise: array,
vector_unit: false, pool_writeback: false, dw_writeback: false, residency: false``. Writes
``bench/results/edge_networks.{md,json}``.
"""

from __future__ import annotations

import json
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
CASES = [  # network, rows = cols, clock MHz
    ("mobilenet_v2", 32, 200.0), ("resnet18", 32, 200.0), ("efficientnet_b0", 32, 200.0),
    ("mobilenet_v3_large", 32, 200.0), ("ds_cnn_kws", 8, 100.0), ("mobilenet_v1_vww", 8, 100.0),
    ("resnet8_cifar", 8, 100.0),
]


def main() -> None:
    from codesign.sim.config import AcceleratorConfig
    from codesign.sim.engine import simulate_network
    from codesign.workloads import zoo

    rows = []
    for net, size, mhz in CASES:
        for machine, extra in (("engines", {}), ("no depthwise stage", {"dw_writeback": False}),
                               ("array only", {"depthwise": "array", "vector_unit": False, "pool_writeback": False,
                                               "dw_writeback": False, "residency": False})):
            cfg = AcceleratorConfig(rows=size, cols=size, clock_mhz=mhz, **extra)  # type: ignore[arg-type]
            r = simulate_network(zoo.get(net), cfg, engine="closed_form")
            s = r.summary()
            rows.append({"network": net, "array": f"{size}x{size}", "clock_mhz": mhz, "machine": machine,
                         "cycles": r.cycles, "latency_ms": round(r.cycles / (mhz * 1e3), 3),
                         "dram_bytes": s["dram_read_bytes"] + s["dram_write_bytes"],
                         "energy_uj": round(r.energy_pj * 1e-6, 1),
                         "model_only_layers": sum(1 for lr in r.layers if lr.model_only)})
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "edge_networks.json").write_text(json.dumps(rows, indent=2) + "\n")
    cols = list(rows[0])
    md = ["# Edge networks: the built engines against the array alone", "", "`python bench/edge_networks.py`", "",
          "| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    md += ["| " + " | ".join(f"{r[c]:,}" if isinstance(r[c], int) else str(r[c]) for c in cols) + " |" for r in rows]
    (RESULTS / "edge_networks.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()
