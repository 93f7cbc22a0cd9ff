"""Entry point of the `logserver` command."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="logserver", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("provision", help="fetch/build the local backends into the tool cache")
    sub.add_parser("dev", help="run backends, the five services and the gateway")
    ready = sub.add_parser("ready", help=argparse.SUPPRESS)
    ready.add_argument("stack_file", type=Path)
    ready.add_argument("--started", type=float, required=True)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "provision":
        from services.cli.stack import provision

        for tool, path in provision().items():
            print(f"{tool}: {path}")
        return 0
    if args.command == "dev":
        from services.cli.devstack import run_dev

        return run_dev()
    if args.command == "ready":
        from services.cli.devstack import run_ready

        return run_ready(args.stack_file, args.started)
    return 2


if __name__ == "__main__":
    sys.exit(main())
