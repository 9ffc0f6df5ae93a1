"""``codesign accuracy``: top-1 accuracy of a trained network compressed as asked, in integer arithmetic."""

from __future__ import annotations

import argparse
import json


def register(sub: argparse._SubParsersAction) -> None:
    from codesign.cli.common import add_config_flags

    p = sub.add_parser("accuracy", help="top-1 accuracy of a compressed trained network (integer inference)",
                       description="Prune and quantize a trained zoo network's real weights (preset, bits, "
                                   "sparsity), run it with the accelerator's integer arithmetic on the test images "
                                   "(or --data FILE.npz with x and y) and print the top-1 accuracy next to the "
                                   "float accuracy, and the latency and energy of the compressed network "
                                   "(measured densities) on the accelerator. Bits: the smaller of the preset's "
                                   "and the accelerator's (--weight-bits/--act-bits), as in simulate.")
    p.add_argument("--workload", "-w", default="digits_cnn", metavar="NAME",
                   help="trained zoo network (default digits_cnn)")
    p.add_argument("--preset", default=None, help="compression preset (int8, w4a8, w2a8, 2:4, sparse-0.5, ...)")
    p.add_argument("--sparsity", default=None, help="weight sparsity: 2:4 or a density such as 0.5")
    p.add_argument("--mixed", default=None, metavar="bits.yaml", help="YAML map layer name -> bits")
    p.add_argument("--data", default=None, metavar="FILE.npz",
                   help="test data: x (raw inputs, e.g. digits intensities 0..16) and y (labels)")
    p.add_argument("--calibration", choices=["minmax", "percentile"], default="minmax",
                   help="activation scales from the calibration images' max |x| or its 99.99th percentile")
    p.add_argument("--weight-calibration", choices=["mse", "minmax"], default="mse",
                   help="per-channel weight scales: least squared error clipping or max |w|")
    p.add_argument("--finetune-epochs", type=int, default=0, metavar="N",
                   help="after pruning, fine-tune the float weights N epochs with their zeros kept (default 0: "
                        "post-training compression only)")
    p.add_argument("--seed", type=int, default=0, help="seed of the fine-tuning's batch order (default 0)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    add_config_flags(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from codesign.accuracy import accuracy
    from codesign.cli.common import config_from_args
    from codesign.workloads.quantize import check_bits

    for flag in ("weight_bits", "act_bits"):
        value = getattr(args, f"cfg_{flag}", None)
        if value is not None:
            check_bits(flag, value)
    config = config_from_args(args)
    result = accuracy(args.workload, config, preset=args.preset, sparsity=args.sparsity, mixed=args.mixed,
                      data=args.data, act_calibration=args.calibration,
                      weight_calibration=args.weight_calibration, finetune_epochs=args.finetune_epochs,
                      seed=args.seed)
    d = result.to_dict()
    if args.json:
        print(json.dumps(d, indent=2))
        return 0
    print(f"{d['workload']}: accuracy {d['accuracy']:.4f} ({d['correct']}/{d['images']}), "
          f"float {d['float_accuracy']:.4f} ({d['float_correct']}/{d['images']}) on {d['data']}")
    print(f"  weights {d['weight_bits']} bits, {d['weight_sparsity']}; activations {d['act_bits']} bits "
          f"{'signed' if d['act_signed'] else 'unsigned'}")
    print("  measured density  " + "  ".join(
        f"{k} w {v:.3f} a {d['input_density'][k]:.3f}" for k, v in d["weight_density"].items()))
    if "cycles" in d:
        print(f"  on the accelerator: {d['cycles']:,} cycles, {d['latency_ms']:.4f} ms, "
              f"{d['energy_pj'] / 1e6:.4f} uJ")
    return 0
