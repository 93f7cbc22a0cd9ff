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
    token = sub.add_parser("token", help="print a bearer token for a client credential")
    token.add_argument("--url", default=None, help="gateway URL (default $LOGSERVER_URL or :8080)")
    token.add_argument("--client-id", help="API key id (default: the dev platform admin)")
    token.add_argument("--client-secret", help="API key secret")
    token.add_argument("--credentials", type=Path, help="JSON file with client_id/client_secret")
    token.add_argument("--json", action="store_true", help="print the whole token response")
    tail = sub.add_parser("tail", help="follow a tenant's events live")
    tail.add_argument("--url", default=None, help="gateway URL (default $LOGSERVER_URL or :8080)")
    tail.add_argument("--client-id", help="API key id (default: the dev platform admin)")
    tail.add_argument("--client-secret", help="API key secret")
    tail.add_argument("--credentials", type=Path, help="JSON file with client_id/client_secret")
    tail.add_argument("--tenant", help="tenant key (needed with a platform-admin credential)")
    tail.add_argument("--level", action="append", help="level filter (repeatable)")
    tail.add_argument("--min-level", dest="min_level", help="this level and above")
    tail.add_argument("--service", help="only this service")
    tail.add_argument("--action", help="only this audit action")
    tail.add_argument("--q", help="substring of the message")
    tail.add_argument("--attr", action="append", help="attribute filter key=value (repeatable)")
    tail.add_argument("--tail", type=int, default=0, help="replay the last N stored events first")
    tail.add_argument("--json", action="store_true", help="one JSON event per line")
    from services.cli.generate import add_parser as add_generate_parser

    add_generate_parser(sub)
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
    if args.command == "token":
        from services.cli.token import default_url, run_token

        args.url = args.url or default_url()
        return run_token(args)
    if args.command == "tail":
        from services.cli.tail import run_tail
        from services.cli.token import default_url

        args.url = args.url or default_url()
        return run_tail(args)
    if args.command == "generate":
        from services.cli.generate import run_generate
        from services.cli.token import default_url

        args.url = args.url or default_url()
        return run_generate(args)
    if args.command == "ready":
        from services.cli.devstack import run_ready

        return run_ready(args.stack_file, args.started)
    return 2


if __name__ == "__main__":
    sys.exit(main())
