"""The ``fsad`` command. Each sub-command group lives in its own module of this package and
exposes ``register(subparsers)``; a user error (:class:`fsad.errors.FsadError`) is printed as
one line on stderr with exit status 2.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from fsad import __version__
from fsad.errors import FsadError

# module name in fsad.cli -> registers these sub-commands
COMMAND_MODULES = ("data_cmd", "detect_cmd", "synth_cmd", "run_cmd", "model_cmd", "cache_cmd")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fsad",
        description="Few-shot anomaly multi-classification: PatchCore residuals + few-shot heads.",
    )
    parser.add_argument("--version", action="version", version=f"fsad {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(f"fsad.cli.{name}")
        except ModuleNotFoundError as exc:  # a command group not yet present in this checkout
            if exc.name == f"fsad.cli.{name}":
                continue
            raise
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``fsad`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except FsadError as exc:
        print(f"fsad: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("fsad: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
