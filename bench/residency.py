"""On-chip residency (``sim/residency.py``) on the zoo's edge networks: each network with its outputs kept in
the input buffer where the hardware can, against the same machine with ``residency: false``.

    python bench/residency.py

Each row is ``codesign simulate`` (closed form, equal to the SimPy engine) on the default config with the array
and clock named: cycles, DRAM bytes and energy with and without residency, how many outputs stay on chip and how
many layers residency planned as one tile (``single_tile``). Writes ``bench/results/residency.{md,json}``.
"""

from __future__ import annotations

import json
from pathlib import Path

from edge_networks import CASES  # (the same networks on the same arrays and clocks)

RESULTS = Path(__file__).resolve().parent / "results"


def main() -> None:
    from codesign.sim.config import AcceleratorConfig
    from codesign.sim.engine import simulate_network
    from codesign.sim.fusion import plan_network
    from codesign.workloads import zoo

    rows = []
    for name, size, mhz in CASES:
        net = zoo.get(name)
        on_cfg = AcceleratorConfig(rows=size, cols=size, clock_mhz=mhz)
        off_cfg = on_cfg.replace(residency=False)
        on, off = (simulate_network(net, c, engine="closed_form") for c in (on_cfg, off_cfg))
        ctx = plan_network(net, on_cfg)

        def dram(r) -> int:  # type: ignore[no-untyped-def]
            s = r.summary()
            return int(s["dram_read_bytes"] + s["dram_write_bytes"])

        rows.append({"network": name, "array": f"{size}x{size}", "clock_mhz": mhz,
                     "cycles_off": off.cycles, "cycles": on.cycles,
                     "cycles_saved_pct": round(100 * (off.cycles - on.cycles) / off.cycles, 1),
                     "dram_bytes_off": dram(off), "dram_bytes": dram(on),
                     "energy_uj_off": round(off.energy_pj * 1e-6, 1), "energy_uj": round(on.energy_pj * 1e-6, 1),
                     "resident_outputs": sum(c.res_out for c in ctx), "one_tile_plans": sum(c.single_tile for c in ctx),
                     "layers": len(net.layers)})
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "residency.json").write_text(json.dumps(rows, indent=2) + "\n")
    cols = list(rows[0])
    md = ["# Outputs kept in the input buffer: the edge networks with and without residency", "",
          "`python bench/residency.py`", "",
          "Default config with the array and clock named (64 KiB buffers, 16 bytes a cycle, latency 100); `_off`: "
          "`residency: false`. A layer's output stays on chip when the next layer is its only reader and both read "
          "their input as one tile (`one_tile_plans`: convolutions planned so for it). MobileNetV2's and ResNet-18's "
          "maps mostly do not fit a 32 KiB slot, and their block outputs have two readers (the residual).", "",
          "| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    md += ["| " + " | ".join(f"{r[c]:,}" if isinstance(r[c], int) else str(r[c]) for c in cols) + " |" for r in rows]
    (RESULTS / "residency.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()
