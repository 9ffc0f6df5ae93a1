"""DRAM traffic against the compulsory bytes, per network: what the edge-datapath issue measures.

For each network on one config (default: the default config, 16x16 WS INT8, requantized 8-bit
outputs, the depthwise engine where built), the bytes ``codesign simulate`` moves for each class of
layer beside its *compulsory* bytes: every input element read once, every weight once, every output
written once, at the bits the hardware holds them (``min(layer bits, config bits)``; outputs at
``act_bits`` when requantized). Classes: the non-depthwise convolutions and linear layers (the array:
feature maps read in place with the windows made on chip where that is the better way, im2col laid out
by the host for the others, a 3-channel stem or a strided 1x1 convolution: ``sim.convplan``), the
depthwise convolutions (on the engine: planes with a halo per band, read about once), average pools
(GEMMs), and the model-only layers (element-wise, max pools). A residual add fused into its producer's
write-back (``fusion: auto``, built) counts with its producer: the residual is one more compulsory input; so
does a max pool in its stem's write-back: the pair's compulsory output is the pooled map.

    python bench/dram_traffic.py [--rows 16 --cols 16] [--networks resnet18 mobilenet_v2 ...]

Writes ``bench/results/dram_traffic.{md,json}``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
NETWORKS = ["resnet18", "mobilenet_v2", "efficientnet_b0", "mobilenet_v3_large", "ds_cnn_kws", "resnet8_cifar",
            "mobilenet_v1_vww"]


def compulsory_bytes(layer, cfg, batch: int) -> int:  # type: ignore[no-untyped-def]
    ab = min(layer.inputs.bits, cfg.act_bits)
    wb = min(layer.weights.bits, cfg.weight_bits)
    ob = cfg.act_bits if cfg.requantize else min(layer.outputs.bits, cfg.acc_bits)
    bits = layer.input_elements(batch) * ab + layer.weight_elements * wb + layer.output_elements(batch) * ob
    return -(-bits // 8)


def layer_class(layer) -> str:  # type: ignore[no-untyped-def]
    from codesign.workloads.layers import Conv2d, Linear, Pool

    if isinstance(layer, Conv2d) and layer.is_depthwise:
        return "depthwise"
    if isinstance(layer, (Conv2d, Linear)):
        return "conv_linear"
    if isinstance(layer, Pool):
        return "pool"
    return "other"


def measure(net_name: str, cfg) -> dict[str, object]:  # type: ignore[no-untyped-def]
    from codesign.sim.engine import simulate_network
    from codesign.workloads import zoo
    from codesign.workloads.layers import Pool

    net = zoo.get(net_name)
    r = simulate_network(net, cfg, engine="closed_form")
    row: dict[str, object] = {"network": net_name, "cycles": r.cycles, "energy_uj": round(r.energy_pj * 1e-6, 1),
                              "model_only_layers": sum(1 for lr in r.layers if lr.model_only)}
    by_name = {layer.name: layer for layer in net.layers}
    for cls in ("conv_linear", "depthwise", "pool", "other"):
        moved = comp = 0
        for layer, lr in zip(net.layers, r.layers, strict=True):
            if lr.fused_into:  # its output is the head's; the head reads its other operands (the residual)
                if layer_class(by_name[lr.fused_into]) == cls:
                    ab = min(layer.inputs.bits, cfg.act_bits)
                    if isinstance(layer, Pool):  # a max pool in the write-back: the head writes the pooled map
                        head = by_name[lr.fused_into]
                        comp += -(-(layer.output_elements(net.batch) - head.output_elements(net.batch)) * ab // 8)
                    else:
                        comp += -(-sum(layer.operand_sizes(net.batch)[1:]) * ab // 8)
                    moved += (lr.counts.dram_read_bits + lr.counts.dram_write_bits) // 8
                continue
            if layer_class(layer) != cls:
                continue
            moved += (lr.counts.dram_read_bits + lr.counts.dram_write_bits) // 8
            comp += compulsory_bytes(layer, cfg, net.batch)
        row[f"{cls}_moved_bytes"] = moved
        row[f"{cls}_compulsory_bytes"] = comp
        row[f"{cls}_ratio"] = round(moved / comp, 2) if comp else None
    return row


def main() -> None:
    from codesign.sim.config import AcceleratorConfig

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=16)
    ap.add_argument("--cols", type=int, default=16)
    ap.add_argument("--networks", nargs="+", default=NETWORKS)
    args = ap.parse_args()
    cfg = AcceleratorConfig(rows=args.rows, cols=args.cols)
    rows = [measure(n, cfg) for n in args.networks]
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "dram_traffic.json").write_text(json.dumps({"config": cfg.to_dict(), "rows": rows}, indent=2) + "\n")
    cols = ["network", "cycles", "energy_uj", "conv_linear_ratio", "conv_linear_moved_bytes",
            "conv_linear_compulsory_bytes", "depthwise_ratio", "depthwise_moved_bytes", "pool_ratio",
            "other_moved_bytes", "model_only_layers"]
    md = [f"# DRAM traffic against compulsory bytes ({args.rows}x{args.cols} WS INT8, default config)", "",
          f"`python bench/dram_traffic.py --rows {args.rows} --cols {args.cols}`", "",
          "ratio = bytes moved / (inputs + weights + outputs once, at the hardware's bits); conv_linear: the "
          "non-depthwise convolutions and linear layers (windows made on chip, or im2col laid out by the host "
          "where it is the better way: sim.convplan); depthwise: on the "
          "depthwise engine (planes, a halo per band); other: element-wise layers and max pools (model-only). "
          "A ratio below 1: outputs kept in the input buffer for the next layer (residency: neither stored nor "
          "loaded; DS-CNN keeps every map but the pooled one on chip).", "",
          "| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for r in rows:
        md.append("| " + " | ".join(f"{r[c]:,}" if isinstance(r[c], int) else str(r[c]) for c in cols) + " |")
    (RESULTS / "dram_traffic.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()
