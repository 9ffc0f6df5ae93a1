"""The zoo's stems with the max pool after them: the pool in the stem's write-back against the two layers alone.

    python bench/pool_writeback.py

For each network whose first max pool follows its stem (ResNet-18, ShuffleNetV2, SqueezeNet 1.1, AlexNet), on
square WS arrays of 8 to 64 and DRAM bandwidths of 4 to 64 bytes a cycle (the other fields the defaults): the
stem's cycles and energy with the pool in its write-back (``sim.poolfuse``) against the stem's and the pool's
(on the depthwise engine) alone, each the closed form (equal to the SimPy engine). Writes
``bench/results/pool_writeback_pairs.{md,json}``.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
NETWORKS = ("resnet18", "shufflenet_v2", "squeezenet1_1", "alexnet")


def main() -> None:
    from codesign.sim.config import AcceleratorConfig
    from codesign.sim.engine import simulate_layer
    from codesign.sim.fusion import DEFAULT
    from codesign.sim.poolfuse import pair_reason
    from codesign.workloads import zoo
    from codesign.workloads.layers import Pool, PoolKind

    rows = []
    for name in NETWORKS:
        net = zoo.get(name)
        conv, pool = next((a, b) for a, b in zip(net.layers, net.layers[1:], strict=False)
                          if isinstance(b, Pool) and b.op is PoolKind.MAX)
        for size in (8, 16, 32, 64):
            for bw in (4, 16, 64):
                cfg = AcceleratorConfig(rows=size, cols=size, dram_bytes_per_cycle=bw)
                why = pair_reason(conv, pool, 1, cfg)
                row: dict[str, object] = {"network": name, "array": f"{size}x{size}", "dram_bytes_per_cycle": bw,
                                          "fused": not why, "reason": why}
                if not why:
                    f = simulate_layer(conv, 1, cfg, "native", "closed_form", replace(DEFAULT, pool=pool))
                    a = simulate_layer(conv, 1, cfg, "native", "closed_form")
                    p = simulate_layer(pool, 1, cfg, "native", "closed_form")
                    row.update(fused_cycles=f.cycles, alone_cycles=a.cycles + p.cycles,
                               fused_dram_bytes=(f.counts.dram_read_bits + f.counts.dram_write_bits) // 8,
                               alone_dram_bytes=(a.counts.dram_read_bits + a.counts.dram_write_bits
                                                 + p.counts.dram_read_bits + p.counts.dram_write_bits) // 8,
                               energy_ratio=round(f.energy_pj / (a.energy_pj + p.energy_pj), 3))
                rows.append(row)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "pool_writeback_pairs.json").write_text(json.dumps(rows, indent=2) + "\n")
    cols = ["network", "array", "dram_bytes_per_cycle", "fused_cycles", "alone_cycles", "fused_dram_bytes",
            "alone_dram_bytes", "energy_ratio"]
    md = ["# A stem's max pool in its write-back against the two layers alone", "", "`python bench/pool_writeback.py`",
          "", "| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for r in rows:
        if r["fused"]:
            md.append("| " + " | ".join(f"{r[c]:,}" if isinstance(r[c], int) else str(r[c]) for c in cols) + " |")
        else:
            md.append(f"| {r['network']} | {r['array']} | {r['dram_bytes_per_cycle']} | not fused: {r['reason']} |")
    (RESULTS / "pool_writeback_pairs.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()
