"""Accuracy on the Pareto front: digits_cnn swept over bits x sparsity x activation signedness.

Runs the design-space sweep (``codesign.sweep``, metric ``accuracy`` next to latency and energy)
of ``examples/space_digits_accuracy.yaml`` (an 8x8 WS array with zero gating), and writes
``bench/results/digits_accuracy.csv`` (one row per point and workload) and ``.md`` (the tables).
Usage::

    python bench/digits_accuracy.py            # about a minute; --workers N to change the pool
    python bench/digits_accuracy.py --rtl      # also the integer reference's GEMMs on the RTL (cocotb)

``codesign sweep examples/space_digits_accuracy.yaml`` gives the same rows.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import yaml

from codesign.accuracy import accuracy
from codesign.sweeps import sweep

RESULTS = Path(__file__).resolve().parent / "results"
SPACE_FILE = Path(__file__).resolve().parent.parent / "examples" / "space_digits_accuracy.yaml"
SPACE = yaml.safe_load(SPACE_FILE.read_text())
BITS = list(SPACE["axes"]["weight_bits"])
SPARSITY = ["dense", *(w["sparsity"] for w in SPACE["workloads"][1:])]
FINETUNE_EPOCHS = 10
COLUMNS = ["point", "workload", "sparsity", "weight_bits", "act_bits", "act_signed", "accuracy", "cycles",
           "latency_ms", "energy_pj", "pareto"]


def sparsity_of(label: str) -> str:
    return label.split("[", 1)[1].rstrip("]") if "[" in label else "dense"


def table(df, rows: list[tuple[int, int]], signed: bool, title: str) -> list[str]:  # type: ignore[no-untyped-def]
    out = [f"### {title}", "", "| W/A bits | " + " | ".join(SPARSITY) + " | energy dense (uJ) |",
           "|---|" + "---:|" * (len(SPARSITY) + 1)]
    for w, a in rows:
        sel = df[(df["weight_bits"] == w) & (df["act_bits"] == a) & (df["act_signed"] == signed)]
        cells = []
        for s in SPARSITY:
            v = sel[sel["sparsity"] == s]["accuracy"]
            cells.append(f"{100 * float(v.iloc[0]):.1f}" if len(v) else "")
        en = sel[sel["sparsity"] == "dense"]["energy_pj"]
        out.append(f"| W{w}A{a} | " + " | ".join(cells) + f" | {float(en.iloc[0]) / 1e6:.3f} |")
    return [*out, ""]


def rtl_section() -> list[str]:
    """The INT8 integer reference of 8 test images, layer by layer, through ``hdl.verify.verify_layers``."""
    from codesign.accuracy import integer_reference
    from codesign.hdl.verify import verify_layers
    from codesign.sim.config import AcceleratorConfig

    cfg = AcceleratorConfig(rows=8, cols=8, input_sram_bytes=4096, weight_sram_bytes=4096, output_sram_bytes=4096)
    ref = integer_reference("digits_cnn", cfg, images=8)
    t0 = time.perf_counter()
    res = verify_layers(ref.gemm_operands(), cfg, batch=8)
    seconds = time.perf_counter() - t0
    out = ["### The INT8 reference's GEMMs on the RTL (8 images, raw sums)", "",
           "`integer_reference('digits_cnn', images=8).gemm_operands()` through `hdl.verify.verify_layers` "
           f"(8x8 WS, 4 KiB SRAMs, whole layers from DRAM; {seconds:.0f} s). The accumulator sums before bias "
           "and requantization (the write-back requantization is not in the RTL yet).", "",
           "| layer | M | K | N | outputs match | RTL cycles | sim cycles |", "|---|---:|---:|---:|---|---:|---:|"]
    for r in res:
        out.append(f"| {r.layer} | {r.m} | {r.k} | {r.n} | {r.outputs_match} | {r.rtl_cycles:,} | {r.sim_cycles:,} |")
    return [*out, ""]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--out", type=Path, default=RESULTS / "digits_accuracy.csv")
    ap.add_argument("--rtl", action="store_true",
                    help="run the INT8 reference's 8-image GEMMs through the whole-layer RTL (raw sums)")
    args = ap.parse_args()
    t0 = time.perf_counter()
    df = sweep(SPACE_FILE, workers=args.workers)
    seconds = time.perf_counter() - t0
    df["sparsity"] = [sparsity_of(w) for w in df["workload"]]
    df = df[COLUMNS]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    df.to_csv(args.out, index=False)
    ref = accuracy("digits_cnn", simulate=False)
    t1 = time.perf_counter()
    tuned = {(b, s): accuracy("digits_cnn", weight_bits=b, act_bits=b, sparsity=None if s == "dense" else s,
                              finetune_epochs=FINETUNE_EPOCHS, simulate=False).accuracy
             for b in BITS for s in SPARSITY[1:]}
    tuned_seconds = time.perf_counter() - t1
    diag = [(b, b) for b in BITS]
    lines = [
        "# digits_cnn: top-1 accuracy vs bits and sparsity (integer inference)",
        "",
        f"Made by `python bench/digits_accuracy.py --workers {args.workers}{' --rtl' if args.rtl else ''}` "
        f"(sweep {seconds:.0f} s, "
        f"{len(df)} rows); the rows are in `{args.out.name}`.",
        "",
        f"Test set: the last 25 % of scikit-learn's digits ({ref.images} images). Float accuracy "
        f"{100 * ref.float_accuracy:.2f} % ({ref.float_correct}/{ref.images}). Accuracy in % of the test set; "
        "post-training quantization (per-channel symmetric weights with least-squares clipping, per-tensor "
        "activations calibrated by min/max on the 1,348 training images), magnitude pruning without "
        "fine-tuning, every layer pruned. Energy: 8x8 WS array with zero gating, per inference.",
        "",
        *table(df, diag, True, "Signed activations (act_signed: true, the default): W = A bits"),
        *table(df, diag, False, "Unsigned activations (act_signed: false): W = A bits"),
        f"### Pruned, then fine-tuned {FINETUNE_EPOCHS} epochs with the zeros kept (signed activations, W = A bits)",
        "",
        f"`codesign accuracy --weight-bits B --act-bits B --sparsity S --finetune-epochs {FINETUNE_EPOCHS}` "
        f"(masked Adam on the training split, seeded; {tuned_seconds:.0f} s for the table). Not in the sweep: "
        "its accuracy column is post-training only.",
        "",
        "| W/A bits | " + " | ".join(SPARSITY[1:]) + " |",
        "|---|" + "---:|" * (len(SPARSITY) - 1),
        *(f"| W{b}A{b} | " + " | ".join(f"{100 * tuned[(b, s)]:.1f}" for s in SPARSITY[1:]) + " |" for b in BITS),
        "",
        *table(df, [(b, 8) for b in BITS], True, "Weight bits alone (A8, signed)"),
        *table(df, [(8, b) for b in BITS], True, "Activation bits alone (W8, signed)"),
        "Space: `examples/space_digits_accuracy.yaml` (`codesign sweep examples/space_digits_accuracy.yaml "
        "-o digits.csv` gives the same accuracy column):",
        "",
        "```yaml",
        SPACE_FILE.read_text().rstrip(),
        "```",
        "",
    ]
    if args.rtl:
        lines += rtl_section()
    md = args.out.with_suffix(".md")
    md.write_text("\n".join(lines))
    print(f"wrote {args.out.name} and {md.name} ({seconds:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
