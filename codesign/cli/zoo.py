"""``codesign zoo``: the networks of the zoo with their MACs and parameters."""

from __future__ import annotations

import argparse
import json


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("zoo", help="list the networks of the model zoo",
                       description="List the zoo's networks: layers, MACs, parameters, default input, source.")
    p.add_argument("--json", action="store_true", help="print a JSON list of objects")
    p.set_defaults(func=run)


def zoo_rows() -> list[dict[str, object]]:
    from codesign.workloads import zoo

    rows = []
    for e in zoo.entries():
        net = e.builder()
        rows.append({
            "name": e.name,
            "layers": len(net.layers),
            "macs": net.macs,
            "params": net.params,
            "default_input": e.default_input,
            "description": e.description,
            "source": e.source,
        })
    return rows


def run(args: argparse.Namespace) -> int:
    rows = zoo_rows()
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    from rich.console import Console

    from codesign.cli.simulate import print_table

    cols = ("name", "layers", "MMACs", "params (M)", "input", "description")
    body = [[str(r["name"]), str(r["layers"]), f"{int(r['macs']) / 1e6:,.1f}",  # type: ignore[call-overload]
             f"{int(r['params']) / 1e6:,.3f}", str(r["default_input"]), str(r["description"])]  # type: ignore[call-overload]
            for r in rows]
    print_table(Console(soft_wrap=True), "codesign model zoo", cols, body,
                text_columns=("name", "input", "description"))
    return 0
