"""The ``codesign`` command line.

Each subcommand lives in its own module of this package and exposes
``register(subparsers) -> None``; the parser it adds sets ``func`` (``args -> int``).
A :class:`~codesign.errors.CodesignError` anywhere becomes one line on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from typing import Any

from codesign.errors import CodesignError

# subcommand modules, in the order ``codesign --help`` lists them
COMMANDS = ("simulate", "zoo", "workload", "accuracy", "sweep", "config", "report", "generate", "verify", "synth")


class OneLineParser(argparse.ArgumentParser):
    """argparse that reports a usage error in one line (and exit status 2) and shows defaults in
    ``--help``."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        from codesign.cli.common import DefaultsHelpFormatter

        kwargs.setdefault("formatter_class", DefaultsHelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    from codesign import __version__

    parser = OneLineParser(
        prog="codesign",
        description="Accelerator simulator and hardware co-design for lightweight, quantized, sparse networks.",
    )
    parser.add_argument("--version", action="version", version=f"codesign {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=OneLineParser)
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"codesign.cli.{name}")
        except ModuleNotFoundError as e:
            if e.name == f"codesign.cli.{name}":
                continue
            raise
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except CodesignError as e:
        print(f"codesign {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"codesign {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0


def run() -> None:  # console-script entry point
    sys.exit(main())


if __name__ == "__main__":
    run()
