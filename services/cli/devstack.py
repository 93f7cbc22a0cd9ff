"""`logserver dev`: the whole system in the foreground, one prefixed output, Ctrl-C stops it.

Its ``ready`` process (which waits for the stack and prints where things are)
runs this module, ``python -m services.cli.devstack STACK_JSON --started T``: an
internal step of `logserver dev`, so it is not a `logserver` command.
"""

from __future__ import annotations

import argparse
import atexit
import json
import os
import secrets
import shlex
import signal
import socket
import sys
import time
import urllib.request
from pathlib import Path

from services.cli.stack import REPO, Ports, StackConfig, build_stack, provision, wait_ready
from services.core.secretfiles import private_dir, write_private

DATA = REPO / ".data"
DEV_DIR = DATA / "dev"
CREDENTIALS = DATA / "admin-credentials.json"


def admin_credential() -> tuple[str, str]:
    """The platform-admin credential: from the environment, the saved file, or new."""
    env_id = os.environ.get("LOGSERVER_BOOTSTRAP_ADMIN_CLIENT_ID")
    env_secret = os.environ.get("LOGSERVER_BOOTSTRAP_ADMIN_CLIENT_SECRET")
    if env_id and env_secret:
        return env_id, env_secret
    if CREDENTIALS.exists():
        doc = json.loads(CREDENTIALS.read_text())
        return doc["client_id"], doc["client_secret"]
    private_dir(DATA)
    client_id, secret = f"admin_{secrets.token_hex(6)}", secrets.token_urlsafe(32)
    write_private(
        CREDENTIALS, json.dumps({"client_id": client_id, "client_secret": secret}, indent=2)
    )
    return client_id, secret


def _already_running() -> int | None:
    pid_file = DEV_DIR / "dev.pid"
    if not pid_file.exists():
        return None
    try:
        pid = int(pid_file.read_text())
        os.kill(pid, 0)
        return pid
    except (ValueError, ProcessLookupError, PermissionError):
        return None


def _port_in_use(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def run_dev() -> int:
    from honcho.manager import Manager

    started = time.time()
    pid = _already_running()
    if pid:
        print(
            f"logserver dev is already running (pid {pid}); stop it with Ctrl-C in its "
            f"terminal or `kill {pid}`.",
            file=sys.stderr,
        )
        return 1
    ports = Ports(gateway=int(os.environ.get("LOGSERVER_GATEWAY_PORT", "8080")))
    busy = [f"{n}={p}" for n, p in vars(ports).items() if _port_in_use(p)]
    if busy:
        print(
            f"logserver dev: ports already in use: {', '.join(busy)}. Is another stack "
            "running? Set LOGSERVER_GATEWAY_PORT or stop what holds them.",
            file=sys.stderr,
        )
        return 1
    private_dir(DATA)
    private_dir(DEV_DIR)
    (DEV_DIR / "dev.pid").write_text(str(os.getpid()))
    atexit.register(lambda: (DEV_DIR / "dev.pid").unlink(missing_ok=True))

    tools = provision()
    cfg = build_stack(DEV_DIR, ports, tools, admin=admin_credential())
    cfg.save()
    manager = Manager()
    for spec in cfg.procs:
        manager.add_process(
            spec.name, shlex.join(spec.argv), env=os.environ | spec.env, cwd=str(REPO)
        )
    manager.add_process(
        "ready", shlex.join(ready_command(DEV_DIR / "stack.json", started)), cwd=str(REPO)
    )
    manager.loop()
    return manager.returncode or 0


def run_ready(stack_file: Path, started: float) -> int:
    """Wait for every process, print where things are, then idle until the stack stops."""
    cfg = StackConfig.load(stack_file)
    try:
        wait_ready(cfg.procs, timeout=300)
    except TimeoutError as exc:
        print(f"start-up failed: {exc}", flush=True)
        return 1
    states = {}
    for name in ("auth", "tenant", "log", "worker", "broadcast"):
        try:
            with urllib.request.urlopen(cfg.service_url(name) + "/readyz", timeout=5) as r:
                states[name] = "ready" if r.status == 200 else str(r.status)
        except OSError as exc:
            states[name] = f"not ready ({exc})"
    elapsed = time.time() - started
    print(
        f"""
logserver is up in {elapsed:.1f}s — gateway {cfg.gateway_url}
  services: {", ".join(f"{k} {v}" for k, v in states.items())}
  platform admin: client_id={cfg.admin_client_id} client_secret={cfg.admin_client_secret}
                  (saved in {CREDENTIALS.relative_to(REPO)})
  web console:    {cfg.gateway_url}/ (sign in with the platform admin above)
  get a token:    .venv/bin/logserver token
  Ctrl-C stops everything.
""",
        flush=True,
    )
    signal.pause()
    return 0


def ready_command(stack_file: Path, started: float) -> list[str]:
    """The `ready` process of `logserver dev`: this module, run on its own."""
    return [
        sys.executable,
        "-m",
        "services.cli.devstack",
        str(stack_file),
        "--started",
        str(started),
    ]


def _ready_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m services.cli.devstack",
        description="(internal to `logserver dev`) wait for the stack, then print its summary",
    )
    parser.add_argument("stack_file", type=Path)
    parser.add_argument("--started", type=float, required=True)
    return parser


def ready_main(argv: list[str] | None = None) -> int:
    args = _ready_parser().parse_args(argv)
    return run_ready(args.stack_file, args.started)


if __name__ == "__main__":
    sys.exit(ready_main())
