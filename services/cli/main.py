"""Entry point of the `logserver` command."""

from __future__ import annotations

import argparse
import sys
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from services.cli.errors import CliError

DESCRIPTION = """\
logserver: a multi-tenant log server. Run the whole system on this machine,
get bearer tokens, follow a tenant's events live and generate test events.

Commands that talk to a server use the gateway at --url (default
$LOGSERVER_URL, else http://127.0.0.1:8080) and a client credential:
--client-id with --client-secret, $LOGSERVER_CLIENT_ID with
$LOGSERVER_CLIENT_SECRET, or --credentials FILE; with none of them, the dev
platform admin that `logserver dev` saved in .data/admin-credentials.json."""

EPILOG = """\
examples:
  logserver dev                                  # backends, services, gateway on :8080
  TOKEN=$(logserver token)                       # the dev platform admin's token
  logserver token --client-id ID --client-secret SECRET
  logserver tail --tenant acme --min-level WARNING --tail 20
  logserver generate --tenant acme --count 5000

`logserver COMMAND --help` describes each command."""


def package_version() -> str:
    try:
        return version("logserver")
    except PackageNotFoundError:  # running from a source tree that was never installed
        return "unknown"


class _HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Keeps the description's line breaks; commands and their help on one line each."""

    def __init__(self, prog: str) -> None:
        super().__init__(prog, max_help_position=30)

    def add_argument(self, action: argparse.Action) -> None:
        super().add_argument(action)
        # argparse measures commands one indent level short of where it prints them,
        # so a long command name ("provision") would push its help to the next line.
        for choice in getattr(action, "_choices_actions", []):
            width = len(choice.dest) + self._current_indent + 2 * self._indent_increment + 2
            self._action_max_length = max(self._action_max_length, width)


def _credential_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--url", default=None, help="gateway URL (default $LOGSERVER_URL or :8080)")
    parser.add_argument("--client-id", help="API key id (default: the dev platform admin)")
    parser.add_argument("--client-secret", help="API key secret (or $LOGSERVER_CLIENT_SECRET)")
    parser.add_argument("--credentials", type=Path, help="JSON file with client_id/client_secret")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="logserver",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=_HelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {package_version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    sub.add_parser("provision", help="fetch/build the local backends into the tool cache")
    sub.add_parser("dev", help="run backends, the five services and the gateway")
    token = sub.add_parser(
        "token",
        help="print a bearer token for a client credential",
        description="Exchange a client credential for a bearer token and print it.",
    )
    _credential_args(token)
    token.add_argument("--json", action="store_true", help="print the whole token response")
    tail = sub.add_parser(
        "tail",
        help="follow a tenant's events live",
        description="Follow a tenant's events live. Reconnects by itself after a service "
        "restart or a lost connection (waiting 0.5 s, doubling up to 10 s), shows the "
        "events that arrived meanwhile once, and renews its token before it expires.",
    )
    _credential_args(tail)
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
    return parser


DEV_STACK_MISSING = """\
`logserver {command}` runs the local dev stack, which this installation does not
have ({module} is missing): it needs a source checkout with the devstack extra
(`make install`, or `pip install -e '.[devstack]'`). The runtime image and an
installed wheel carry only the services."""


def _run_dev_stack(command: str) -> int:
    """`provision` and `dev`: imported only here, so the rest works without them."""
    try:
        from services.cli import devstack, stack

        if command == "dev":
            import honcho.manager  # noqa: F401  (run_dev's process manager)
    except ModuleNotFoundError as exc:
        raise CliError(DEV_STACK_MISSING.format(command=command, module=exc.name)) from None
    if command == "provision":
        for tool, path in stack.provision().items():
            print(f"{tool}: {path}")
        return 0
    return devstack.run_dev()


def _run(args: argparse.Namespace) -> int:
    if args.command in ("provision", "dev"):
        return _run_dev_stack(args.command)
    from services.cli.token import default_url

    args.url = args.url or default_url()
    if args.command == "token":
        from services.cli.token import run_token

        return run_token(args)
    if args.command == "tail":
        from services.cli.tail import run_tail

        return run_tail(args)
    if args.command == "generate":
        from services.cli.generate import run_generate

        return run_generate(args)
    return 2


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return _run(args)
    except CliError as exc:
        print(f"logserver: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
