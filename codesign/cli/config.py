"""``codesign config RESULTS --point N``: the full AcceleratorConfig of a sweep row, as YAML."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "config", help="the full accelerator config of a sweep row (YAML for simulate, generate, verify, synth)",
        description="Write the AcceleratorConfig of one design point of a sweep results table (.parquet or .csv, "
                    "which carry their design space) as YAML: every field, the space's base and the point's axis "
                    "values. `codesign simulate -w WORKLOAD --config p.yaml` reproduces the row's cycles; "
                    "generate, verify and synth take the file too (model-only points are refused by them).",
    )
    p.add_argument("results", metavar="RESULTS", help="sweep results table (.parquet or .csv)")
    from codesign.cli.sweep import _natural

    p.add_argument("--point", required=True, type=_natural, metavar="N", help="the point id (column point)")
    p.add_argument("-o", "--out", default=None, metavar="accel.yaml",
                   help="write the YAML here (default: standard output)")
    p.set_defaults(func=run)


def point_config_yaml(results: str | Path, point: int) -> str:
    """The YAML of point ``point`` of a sweep results table: a comment naming the point, its rows'
    metrics and what to pass to simulate, then every AcceleratorConfig field."""
    from codesign.errors import ConfigError
    from codesign.space import DesignSpace
    from codesign.sweeps import read_results

    path = Path(results)
    df = read_results(path)
    meta: dict[str, Any] = df.attrs.get("codesign") or {}
    if "point" not in df.columns:
        raise ConfigError(f"{path.name} must be a sweep results table with a point column, not columns "
                          f"{', '.join(map(str, df.columns))}")
    rows = df[df["point"] == point]
    if rows.empty:
        ids = df["point"]
        raise ConfigError(f"point must be a point id of {path.name} ({len(set(ids))} points, from {int(ids.min())} "
                          f"to {int(ids.max())}), not {point}")
    if not meta.get("space"):
        raise ConfigError(f"{path.name} does not carry its design space (written by an older codesign or edited "
                          f"outside it), so the config of point {point} is not known; sweep it again")
    space_dict = dict(meta["space"])
    order = meta.get("axes") or list(space_dict.get("axes") or {})
    if isinstance(space_dict.get("axes"), dict) and set(order) == set(space_dict["axes"]):
        space_dict["axes"] = {a: space_dict["axes"][a] for a in order}  # the order that numbers the points
    space = DesignSpace.from_dict(space_dict, source=path.name)
    config = space.config(point)
    lines = [f"# point {point} of {path.name}"]
    specs = {w.display_name: w for w in space.workloads}
    for rec in rows.to_dict("records"):
        built = "" if rec.get("buildable", True) else "; model-only (generate refuses it)"
        lines.append(f"#   {rec['workload']}: {int(rec['cycles']):,} cycles, {float(rec['latency_ms']):.6g} ms, "
                     f"{float(rec['energy_pj']) * 1e-6:.6g} uJ{built}")
        spec = specs.get(str(rec["workload"]))
        if spec is not None and spec.network is None:  # a named workload: the command that gives these numbers
            lines.append(f"#   reproduce: codesign simulate {_workload_flags(spec)} --config THIS.yaml"
                         + (" --clip-bits" if space.clip_bits else ""))
    return "\n".join(lines) + "\n" + config.to_yaml()


def _workload_flags(spec: Any) -> str:
    """``-w NAME`` and the compression flags of a sweep's workload (``--preset``, ``--sparsity``, ...)."""
    import shlex

    parts = ["-w", spec.name]
    for flag, value in (("--preset", spec.preset), ("--sparsity", spec.sparsity), ("--act-density", spec.act_density),
                        ("--batch", spec.batch), ("--mixed", spec.mixed if isinstance(spec.mixed, str) else None)):
        if value is not None:
            parts += [flag, str(value)]
    return " ".join(shlex.quote(p) for p in parts)


def run(args: argparse.Namespace) -> int:
    from codesign.errors import CodesignError

    text = point_config_yaml(args.results, args.point)
    if args.out is None:
        sys.stdout.write(text)
        return 0
    out = Path(args.out)
    if out.suffix.lower() not in (".yaml", ".yml"):
        from codesign.errors import ConfigError

        raise ConfigError(f"--out must end in .yaml or .yml, not {args.out!r}")
    if out.is_dir():
        from codesign.errors import ConfigError

        raise ConfigError(f"--out {args.out!r} is a directory, not a file")
    tmp = out.with_name(out.name + ".tmp")
    try:
        tmp.write_text(text)
        tmp.replace(out)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise CodesignError(f"cannot write {args.out!r}: {e.strerror or e}") from None
    print(f"wrote {out}", file=sys.stderr)
    return 0
