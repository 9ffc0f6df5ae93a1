"""``codesign workload show``: the layer table of a zoo network or a model file."""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from typing import Any

from codesign.errors import WorkloadError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("workload", help="inspect a workload (zoo name or .onnx/.yaml/.csv file)",
                       description="Inspect a workload: zoo name, gemm:M,N,K, or a .onnx/.yaml/.csv file.")
    wsub = p.add_subparsers(dest="workload_command", metavar="ACTION", parser_class=type(p))
    s = wsub.add_parser("show", help="print the layer table",
                        description="Print the layer table: shapes, GEMM M/N/K, groups/repeats, MACs, params, "
                                    "bits and density per operand.")
    s.add_argument("workload", metavar="NAME|FILE", help="zoo name, gemm:M,N,K or a .onnx/.yaml/.csv file")
    fmt = s.add_mutually_exclusive_group()
    fmt.add_argument("--json", action="store_true", help="print JSON instead of a table")
    fmt.add_argument("--yaml", action="store_true", help="print the network in the YAML network format")
    add_workload_flags(s)
    s.set_defaults(func=run_show)
    p.set_defaults(func=lambda args: _usage(p, wsub))


def add_workload_flags(p: argparse.ArgumentParser) -> None:
    """Flags that shape the workload (read by :func:`load`): batch, zoo arguments, ONNX, presets."""
    g = p.add_argument_group("workload")
    g.add_argument("--batch", type=int, default=None, help="batch size")
    g.add_argument("--arg", action="append", default=[], metavar="KEY=VALUE",
                   help="zoo builder argument, e.g. --arg seq_len=128 (repeatable)")
    g.add_argument("--input-shape", default=None, metavar="N,C,H,W", help="ONNX input shape (dynamic models)")
    g.add_argument("--skip-unsupported", action="store_true",
                   help="ONNX: skip unsupported ops with a warning instead of failing")
    g.add_argument("--preset", default=None, help="compression preset (int8, w4a8, w4a16, binary, 2:4, ...)")
    g.add_argument("--sparsity", default=None, help="weight sparsity: 2:4 or a density such as 0.5")
    g.add_argument("--act-density", type=float, default=None, help="activation density (fraction non-zero)")
    g.add_argument("--mixed", default=None, metavar="bits.yaml", help="YAML map layer name -> bits")


def _usage(p: argparse.ArgumentParser, actions: argparse._SubParsersAction) -> int:
    print(f"{p.prog}: error: an action is required: {', '.join(actions.choices)} "
          f"(e.g. {p.prog} show resnet18)", file=sys.stderr)
    return 2


def _value(text: str) -> Any:
    for conv in (int, float):
        try:
            return conv(text)
        except ValueError:
            pass
    return {"none": None, "true": True, "false": False}.get(text.lower(), text)


def _builder_kwargs(items: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in items:
        key, sep, val = item.partition("=")
        if not sep or not key:
            raise WorkloadError(f"--arg must be KEY=VALUE, not {item!r}")
        out[key.strip().replace("-", "_")] = _value(val.strip())
    return out


def _input_shape(text: str | None) -> tuple[int, ...] | None:
    if text is None:
        return None
    try:
        dims = tuple(int(d) for d in text.replace("x", ",").split(",") if d.strip())
    except ValueError:
        raise WorkloadError(f"--input-shape must be integers like 1,3,224,224, not {text!r}") from None
    if not dims or any(d < 1 for d in dims):
        raise WorkloadError(f"--input-shape must be positive integers like 1,3,224,224, not {text!r}")
    return dims


def load(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    """The network the arguments name, with presets applied."""
    from pathlib import Path

    from codesign.api import load_workload
    from codesign.workloads import zoo

    if args.batch is not None and args.batch < 1:
        raise WorkloadError(f"--batch must be a positive integer, not {args.batch!r}")
    kwargs = _builder_kwargs(args.arg)
    spec = args.workload
    suffix = Path(spec).suffix.lower()
    is_zoo = suffix not in (".onnx", ".yaml", ".yml", ".csv") and not spec.lower().startswith("gemm:")
    kind = "an ONNX model" if suffix == ".onnx" else "a zoo network" if is_zoo else \
        "a GEMM" if spec.lower().startswith("gemm:") else f"a {suffix} file"
    if suffix != ".onnx":
        for flag, given in (("--input-shape", args.input_shape is not None),
                            ("--skip-unsupported", args.skip_unsupported)):
            if given:
                value = f" {args.input_shape}" if flag == "--input-shape" else ""
                raise WorkloadError(f"{flag}{value} applies to .onnx models only, not to {spec!r} ({kind})"
                                    + ("; zoo networks take --arg, e.g. --arg resolution=160" if is_zoo else ""))
    if args.arg and not is_zoo:
        raise WorkloadError(f"--arg {args.arg[0]} applies to zoo networks only, not to {spec!r} ({kind})")
    if suffix == ".onnx":
        net = load_workload(spec, batch=args.batch, input_shape=_input_shape(args.input_shape),
                            skip_unsupported=args.skip_unsupported)
    elif suffix in (".yaml", ".yml", ".csv") or spec.lower().startswith("gemm:"):
        net = load_workload(spec, batch=args.batch)
    else:
        entry = zoo.entry(spec)
        try:
            net = entry.builder(batch=args.batch or 1, **kwargs)
        except TypeError as e:
            raise WorkloadError(f"zoo network {entry.name!r} does not take {sorted(kwargs)} ({e})") from None
    if args.preset or args.sparsity or args.act_density is not None or args.mixed:
        from codesign.workloads import presets

        net = presets.apply(net, preset=args.preset, sparsity=args.sparsity, act_density=args.act_density,
                            mixed=args.mixed)
    return net


def layer_rows(net) -> list[dict[str, Any]]:  # type: ignore[no-untyped-def]
    rows = []
    for layer in net:
        g = layer.gemm(net.batch)
        rows.append({
            "name": layer.name,
            "type": layer.kind.value,
            "shape": layer.shape_str(),
            "activation": layer.activation,  # a table activation in its write-back ('' for none or ReLU)
            "m": g.m if g else None,
            "n": g.n if g else None,
            "k": g.k if g else None,
            "repeats": g.repeats if g else None,
            "macs": layer.macs(net.batch),
            "vector_ops": layer.vector_ops(net.batch),
            "params": layer.params,
            "input_bits": layer.inputs.bits,
            "weight_bits": layer.weights.bits,
            "output_bits": layer.outputs.bits,
            "input_density": layer.inputs.density,
            "weight_density": layer.weights.density,
            "weight_sparsity": layer.weights.sparsity_label,
        })
    return rows


def run_show(args: argparse.Namespace) -> int:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        net = load(args)
    for w in caught:
        print(f"codesign workload: warning: {w.message}", file=sys.stderr)
    if args.yaml:
        from codesign.workloads.yaml_io import write_network_yaml

        sys.stdout.write(write_network_yaml(net))
        return 0
    rows = layer_rows(net)
    if args.json:
        print(json.dumps({"name": net.name, "batch": net.batch, "input_shape": list(net.input_shape),
                          "layers": rows, "macs": net.macs, "params": net.params}, indent=2))
        return 0
    from rich.console import Console

    from codesign.cli.simulate import print_table

    cols = ("layer", "type", "shape", "M", "N", "K", "g/rep", "MACs", "params", "bits w/a", "density w/a")
    body = []
    for r in rows:
        gemm = [str(r[c]) if r[c] is not None else "" for c in ("m", "n", "k", "repeats")]
        w_bits, w_sp = (r["weight_bits"], r["weight_sparsity"]) if r["m"] is not None else ("-", "-")
        shape = r["shape"] + (f" +{r['activation']}" if r["activation"] else "")
        body.append([r["name"], r["type"], shape, *gemm, f"{r['macs']:,}", f"{r['params']:,}",
                     f"{w_bits}/{r['input_bits']}", f"{w_sp}/{r['input_density']:g}"])
    total = ["total", "", "", "", "", "", "", f"{net.macs:,}", f"{net.params:,}", "", ""]
    print_table(Console(soft_wrap=True), f"{net.name}  (batch {net.batch}, {len(net)} layers)", cols, body,
                total=total, text_columns=("layer", "type", "shape"))
    return 0
