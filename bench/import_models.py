"""Real models through the importers: torchvision/timm architectures exported with torch's default (dynamo,
external data) and legacy ONNX exporters, imported from another working directory, and through the
PyTorch importer; MACs against the module's own count, cycles against the zoo network.

Every model is built with ``weights=None`` (random init) in eval mode. For each one:

* ``ref_macs``: :func:`codesign.workloads.torch_models.module_macs` on a 1x3x224x224 input (forward
  hooks on Conv/Linear/MultiheadAttention plus matmul/SDPA calls; bias, norm, pooling excluded);
* ``dynamo_macs``: ``torch.onnx.export(..., dynamo=True)`` (torch's default: weights in
  ``model.onnx.data``), read by :func:`read_onnx` with the working directory elsewhere and the model
  named by a relative path;
* ``legacy_macs``: ``torch.onnx.export(..., dynamo=False)`` with a dynamic batch axis, read with
  ``input_shape=(1, 3, 224, 224)`` binding it;
* ``torch_macs``: :func:`from_torch` (``torch.export``);
* ``cycles`` of the dynamo import and of the zoo network (where the zoo has it) on the default
  16x16 WS array (SimPy engine), and their ratio;
* under each fusion mode (``none``, ``eltwise``, ``full``): cycles and DRAM bytes of the dynamo, legacy
  and PyTorch imports and of the zoo network (``{kind}_cycles_{mode}``, ``{kind}_dram_bytes_{mode}``,
  ``zoo_cycles_{mode}``, ``zoo_dram_bytes_{mode}``) and the import/zoo cycle ratios
  (``{kind}_cycles_ratio_{mode}``).

    python bench/import_models.py [--models timm:resnet18,...] [--out bench/results/import_models.csv]

Writes the CSV, a JSON twin (with the machine and versions) and a markdown table of the fusion modes
(``import_fusion.md`` next to them). Exit status 1 if any MAC count differs.
An exporter's own failure (torch's legacy exporter on ``nn.TransformerEncoderLayer``) is recorded in
``*_export_error`` and that import is not compared.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

# (model spec, zoo network or "", input shape)
MODELS: list[tuple[str, str, tuple[int, ...]]] = [
    ("timm:resnet18", "resnet18", (1, 3, 224, 224)),
    ("torchvision:resnet50", "resnet50", (1, 3, 224, 224)),
    ("timm:mobilenetv2_100", "mobilenet_v2", (1, 3, 224, 224)),
    ("torchvision:mobilenet_v3_small", "mobilenet_v3_small", (1, 3, 224, 224)),
    ("torchvision:mobilenet_v3_large", "mobilenet_v3_large", (1, 3, 224, 224)),
    ("torchvision:shufflenet_v2_x1_0", "shufflenet_v2", (1, 3, 224, 224)),
    ("torchvision:squeezenet1_1", "squeezenet1_1", (1, 3, 224, 224)),
    ("torchvision:alexnet", "alexnet", (1, 3, 224, 224)),
    ("timm:efficientnet_b0", "efficientnet_b0", (1, 3, 224, 224)),
    ("timm:ghostnet_100", "ghostnet", (1, 3, 224, 224)),
    ("timm:deit_tiny_patch16_224", "deit_tiny", (1, 3, 224, 224)),
    ("timm:mobilevit_xxs", "", (1, 3, 256, 256)),
    ("torch:TransformerEncoderLayer", "bert_base_layer", (1, 128, 768)),  # d_model 768, 12 heads, FFN 3072
]


def _build(spec: str) -> Any:
    import torch

    from codesign.workloads.torch_models import build_model

    if spec.startswith("torch:TransformerEncoderLayer"):
        return torch.nn.TransformerEncoderLayer(768, 12, 3072, batch_first=True).eval()
    return build_model(spec)


def _export(model: Any, shape: tuple[int, ...], folder: Path) -> dict[str, Any]:
    """Both exports; {kind: path or None, kind_export_s, kind_export_error}."""
    import torch

    x = torch.randn(*shape)
    folder.mkdir(parents=True, exist_ok=True)
    out: dict[str, Any] = {}
    for kind, path, kwargs in (
            ("dynamo", folder / "model.onnx", {"dynamo": True, "verbose": False}),
            ("legacy", folder / "legacy.onnx", {"dynamo": False, "input_names": ["x"],
                                                "dynamic_axes": {"x": {0: "batch"}}})):
        t = time.perf_counter()
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                torch.onnx.export(model, (x,), path, **kwargs)
            out[kind] = path
        except Exception as e:  # the exporter's own failure, recorded (not an import failure)
            out[kind] = None
            out[f"{kind}_export_error"] = f"{type(e).__name__}: {str(e).strip().splitlines()[-1][:200]}"
        out[f"{kind}_export_s"] = round(time.perf_counter() - t, 2)
    return out


def _row(spec: str, zoo_name: str, shape: tuple[int, ...], exports: Path, elsewhere: Path) -> dict[str, Any]:
    from codesign.errors import CodesignError
    from codesign.sim.config import AcceleratorConfig
    from codesign.sim.engine import simulate_network
    from codesign.workloads import zoo
    from codesign.workloads.onnx_import import read_onnx
    from codesign.workloads.torch_import import from_torch
    from codesign.workloads.torch_models import module_macs

    model = _build(spec)
    ref = module_macs(model, __import__("torch").zeros(*shape))
    row: dict[str, Any] = {"model": spec, "input_shape": "x".join(map(str, shape)), "ref_macs": ref.total,
                           "ref_conv_macs": ref.conv, "ref_linear_macs": ref.linear, "ref_matmul_macs": ref.matmul}
    folder = exports / spec.replace(":", "_").replace("(", "_").replace(")", "").replace(",", "_")
    exported = _export(model, shape, folder)
    row.update({k: v for k, v in exported.items() if k not in ("dynamo", "legacy")})
    row["dynamo_data_file"] = exported["dynamo"] is not None and (folder / "model.onnx.data").is_file()
    here = os.getcwd()
    os.chdir(elsewhere)  # the model is named relative to another folder: its .data must be found next to it
    nets = {}
    try:
        for kind, kwargs in (("dynamo", {}), ("legacy", {"input_shape": shape})):
            path = exported[kind]
            if path is None:
                row[f"{kind}_macs"] = None
                continue
            rel = os.path.relpath(path, elsewhere)
            t = time.perf_counter()
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    nets[kind] = read_onnx(rel, **kwargs)
                row[f"{kind}_macs"] = nets[kind].macs
                row[f"{kind}_layers"] = len(nets[kind])
            except CodesignError as e:
                row[f"{kind}_macs"], row[f"{kind}_error"] = None, str(e)
            row[f"{kind}_import_s"] = round(time.perf_counter() - t, 3)
    finally:
        os.chdir(here)
    t = time.perf_counter()
    try:
        net = from_torch(model, shape)
        row["torch_macs"], row["torch_layers"] = net.macs, len(net)
    except CodesignError as e:
        row["torch_macs"], row["torch_error"] = None, str(e)
    row["torch_import_s"] = round(time.perf_counter() - t, 3)
    for k in ("dynamo", "legacy", "torch"):
        row[f"{k}_macs_equal"] = row.get(f"{k}_macs") == ref.total if f"{k}_export_error" not in row else None
    if row["torch_macs"] is not None:
        nets["torch"] = net
    if zoo_name:
        nets["zoo"] = zoo.get(zoo_name) if zoo_name != "bert_base_layer" else zoo.get(zoo_name, seq_len=shape[1])
        row["zoo"], row["zoo_macs"] = zoo_name, nets["zoo"].macs
    for mode in FUSION_MODES:
        cfg = AcceleratorConfig(fusion=mode)
        for kind, n in nets.items():
            res = simulate_network(n, cfg)
            row[f"{kind}_cycles_{mode}"] = res.cycles
            row[f"{kind}_dram_bytes_{mode}"] = sum(x.dram_bytes for x in res.layers)
        for kind in KINDS:
            if f"{kind}_cycles_{mode}" in row and "zoo" in nets:
                row[f"{kind}_cycles_ratio_{mode}"] = round(row[f"{kind}_cycles_{mode}"] / row[f"zoo_cycles_{mode}"], 4)
    if "dynamo" in nets:
        row["cycles"] = row["dynamo_cycles_none"]
    if "zoo" in nets:
        row["zoo_cycles"] = row["zoo_cycles_none"]
        if row.get("cycles"):
            row["cycles_ratio"] = row["dynamo_cycles_ratio_none"]
    return row


FUSION_MODES = ("none", "eltwise", "full")
KINDS = ("dynamo", "legacy", "torch")


COLUMNS = ["model", "input_shape", "ref_macs", "dynamo_macs", "legacy_macs", "torch_macs", "dynamo_macs_equal",
           "legacy_macs_equal", "torch_macs_equal", "dynamo_layers", "legacy_layers", "torch_layers",
           "dynamo_data_file", "cycles", "zoo", "zoo_macs", "zoo_cycles", "cycles_ratio", "ref_conv_macs",
           "ref_linear_macs", "ref_matmul_macs", "dynamo_export_s", "legacy_export_s", "dynamo_import_s",
           "legacy_import_s", "torch_import_s", "dynamo_error", "legacy_error", "torch_error", "dynamo_export_error",
           "legacy_export_error"]
COLUMNS += [f"{kind}_{what}_{mode}" for mode in FUSION_MODES for kind in (*KINDS, "zoo")
            for what in ("cycles", "dram_bytes")]
COLUMNS += [f"{kind}_cycles_ratio_{mode}" for mode in FUSION_MODES for kind in KINDS]


def fusion_table(rows: list[dict[str, Any]]) -> str:
    """Markdown: per model and fusion mode, cycles and DRAM bytes of each import and of the zoo network."""
    lines = ["| model | fusion | dynamo cycles | legacy cycles | torch cycles | zoo cycles | dynamo/zoo | legacy/zoo "
             "| torch/zoo | dynamo DRAM bytes | zoo DRAM bytes |", "|" + "---|" * 11]

    def cell(v: Any) -> str:
        if v is None or v == "":
            return ""
        if isinstance(v, int) or (isinstance(v, float) and v.is_integer() and v > 100):
            return f"{int(v):,}"  # counts (DRAM bytes come back from the model as floats)
        return f"{v:.4f}"

    for r in rows:
        if not r.get("zoo"):
            continue
        for mode in FUSION_MODES:
            vals = [r.get(f"{k}_cycles_{mode}") for k in (*KINDS, "zoo")]
            vals += [r.get(f"{k}_cycles_ratio_{mode}") for k in KINDS]
            vals += [r.get(f"dynamo_dram_bytes_{mode}"), r.get(f"zoo_dram_bytes_{mode}")]
            lines.append(f"| {r['model']} (zoo {r['zoo']}) | {mode} | " + " | ".join(cell(v) for v in vals) + " |")
    return "\n".join(lines) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", default=None, help="comma-separated specs (default: all of MODELS)")
    ap.add_argument("--out", default="bench/results/import_models.csv")
    args = ap.parse_args()
    chosen = MODELS if not args.models else [m for m in MODELS if m[0] in args.models.split(",")]
    import onnx
    import onnxruntime
    import torch

    from codesign.workloads.torch_models import import_torchvision

    import_torchvision()  # before timm, which imports it
    import timm

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        exports, elsewhere = Path(tmp) / "exports", Path(tmp) / "elsewhere" / "cwd"
        elsewhere.mkdir(parents=True)
        for spec, zoo_name, shape in chosen:
            row = _row(spec, zoo_name, shape, exports, elsewhere)
            rows.append(row)
            print(f"{spec:44s} ref {row['ref_macs']:>14,}  dynamo {row.get('dynamo_macs') or 0:>14,}  "
                  f"legacy {row.get('legacy_macs') or 0:>14,}  torch {row.get('torch_macs') or 0:>14,}  "
                  f"cycles {row.get('cycles') or 0:>12,}  zoo {row.get('zoo_cycles') or 0:>12,}  "
                  f"ratio {row.get('cycles_ratio', '')}", flush=True)
            for mode in FUSION_MODES:
                print(f"    fusion {mode:8s}" + "".join(f"  {k}/zoo {row.get(f'{k}_cycles_ratio_{mode}', '-')}"
                                                  for k in KINDS), flush=True)
            for k in ("dynamo_error", "legacy_error", "torch_error", "dynamo_export_error", "legacy_export_error"):
                if k in row:
                    print(f"    {k}: {row[k]}", flush=True)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=COLUMNS)
        w.writeheader()
        for r in rows:
            w.writerow({c: r.get(c, "") for c in COLUMNS})
    meta = {"python": platform.python_version(), "machine": platform.machine(), "torch": torch.__version__,
            "onnx": onnx.__version__, "onnxruntime": onnxruntime.__version__, "timm": timm.__version__,
            "config": "AcceleratorConfig() (16x16 WS, 8-bit, 64 KiB SRAMs), SimPy engine",
            "mac_convention": "Conv/Linear/matmul/SDPA multiply-accumulates; bias, norm, pooling, eltwise excluded"}
    out.with_suffix(".json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=2) + "\n")
    md = out.with_name("import_fusion.md")
    md.write_text("# Imports against the zoo under each fusion mode\n\n"
                  f"`python bench/import_models.py`; {meta['config']} with `fusion` set; torch {meta['torch']}, "
                  f"onnx {meta['onnx']}, timm {meta['timm']}. Ratios are import cycles / zoo cycles.\n\n"
                  + fusion_table(rows))
    print(f"wrote {out}, {out.with_suffix('.json')} and {md}", file=sys.stderr)
    bad = [r["model"] for r in rows if False in (r["dynamo_macs_equal"], r["legacy_macs_equal"], r["torch_macs_equal"])]
    if bad:
        print(f"MACs differ from the module's count: {', '.join(bad)}", file=sys.stderr)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
