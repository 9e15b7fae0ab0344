"""The ``gar-ros`` command: one entry point, one subcommand per task.

Each area registers its subcommands in a small ``cli`` module with a
``register(subparsers) -> None`` function; every subcommand sets ``func(args) -> int``.
Errors derived from :class:`gar_ros.errors.GarError` print as one line and exit 2.
"""
from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from gar_ros.errors import GarError

#: Modules that contribute subcommands, in help order. A module that is missing (a part not
#: installed) is skipped, so the CLI always starts.
SUBCOMMAND_MODULES: tuple[str, ...] = (
    "gar_ros.model.cli",
    "gar_ros.training.cli",
    "gar_ros.runtime.cli",
    "gar_ros.evaluation.cli",
    "gar_ros.ros.cli",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gar-ros",
        description="Region-level visual understanding with GAR (Grasp Any Region) for ROS 2.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in SUBCOMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as err:
            if err.name is not None and name.startswith(err.name):
                continue
            raise
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
    )
    if not getattr(args, "func", None):
        parser.print_help()
        return 0 if args.command is None else 2
    try:
        return int(args.func(args) or 0)
    except GarError as err:
        print(f"gar-ros {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
