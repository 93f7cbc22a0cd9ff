"""The stack under test: a private one on free ports (the process list of ``make dev``),
or a running one named by ``LOGSERVER_URL``; its processes' pids (for CPU and RSS) and
what its storage is."""

from __future__ import annotations

import json
import os
import resource
import secrets
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks.harness.parameters import REPO, log
from services.cli.stack import Ports, ProcessGroup, StackConfig, build_stack, provision


@dataclass
class Target:
    url: str
    admin: tuple[str, str]
    mongodb_url: str | None = None
    sqs_url: str | None = None
    worker_url: str | None = None
    log_url: str | None = None
    pids: dict[str, int] = field(default_factory=dict)
    group: ProcessGroup | None = None
    data_dir: Path | None = None


def raise_nofile() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def start_stack() -> Target:
    data_dir = REPO / ".data" / f"bench-{os.getpid()}"
    shutil.rmtree(data_dir, ignore_errors=True)
    log(f"starting a private stack under {data_dir.relative_to(REPO)}")
    tools = provision()
    admin = (f"admin_{secrets.token_hex(4)}", secrets.token_urlsafe(24))
    cfg = build_stack(data_dir, Ports.free(), tools, admin=admin)
    group = ProcessGroup(cfg)
    started = time.monotonic()
    try:
        group.start_all(timeout=240)
    except Exception as exc:
        logs = "\n".join(f"--- {n}\n{group.tail(n)}" for n in group.specs)
        raise SystemExit(f"stack did not start: {exc}\n{logs}") from exc
    log(f"stack up in {time.monotonic() - started:.1f}s at {cfg.gateway_url}")
    return Target(
        url=cfg.gateway_url,
        admin=admin,
        mongodb_url=cfg.mongodb_url,
        sqs_url=cfg.sqs_endpoint_url,
        worker_url=cfg.service_url("worker"),
        log_url=cfg.service_url("log"),
        pids={name: proc.pid for name, proc in group.procs.items()},
        group=group,
        data_dir=data_dir,
    )


def external_stack(url: str) -> Target:
    from services.cli.errors import CliError
    from services.cli.token import load_credential

    try:
        admin = load_credential(None, None, None)
    except CliError as exc:
        raise SystemExit(f"benchmark: {exc}") from exc
    target = Target(url=url.rstrip("/"), admin=admin)
    target.mongodb_url = os.environ.get("LOGSERVER_MONGODB_URL")
    target.sqs_url = os.environ.get("LOGSERVER_SQS_ENDPOINT_URL")
    stack_file = Path(os.environ.get("LOGSERVER_STACK_FILE", REPO / ".data" / "dev" / "stack.json"))
    if stack_file.exists():
        cfg = StackConfig.load(stack_file)
        target.mongodb_url = target.mongodb_url or cfg.mongodb_url
        target.sqs_url = target.sqs_url or cfg.sqs_endpoint_url
        target.worker_url = cfg.service_url("worker")
        target.log_url = cfg.service_url("log")
        ports = {
            name: getattr(cfg.ports, name)
            for name in ("auth", "tenant", "log", "worker", "broadcast", "gateway")
        }
        ports |= {"mongodb": cfg.ports.mongo, "elasticmq": cfg.ports.sqs, "redis": cfg.ports.redis}
        target.pids = pids_by_port(ports)
    log(f"using the running stack at {target.url} (pids found: {sorted(target.pids)})")
    return target


def pids_by_port(ports: dict[str, int]) -> dict[str, int]:
    """Which process listens on each port (own processes only: /proc/<pid>/fd)."""
    inodes: dict[str, int] = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            parts = line.split()
            if parts[3] == "0A":  # LISTEN
                inodes[parts[9]] = int(parts[1].rsplit(":", 1)[1], 16)
    by_port = {port: inode for inode, port in inodes.items()}
    wanted = {by_port[p]: name for name, p in ports.items() if p in by_port}
    found: dict[str, int] = {}
    for pid_dir in Path("/proc").iterdir():
        if not pid_dir.name.isdigit():
            continue
        try:
            for fd in (pid_dir / "fd").iterdir():
                link = os.readlink(fd)
                if link.startswith("socket:["):
                    name = wanted.get(link[8:-1])
                    if name and name not in found:
                        found[name] = int(pid_dir.name)
        except OSError:
            continue
    return found


def storage_name(target: Target) -> str:
    if not target.mongodb_url:
        return "unknown"
    try:
        from pymongo import MongoClient

        client = MongoClient(target.mongodb_url, serverSelectionTimeoutMS=5000)
        info = client.admin.command("buildInfo")
        client.close()
    except Exception as exc:
        return f"unknown ({type(exc).__name__})"
    if "ferretdbVersion" in info or "ferretdb" in json.dumps(info, default=str).lower():
        version = info.get("ferretdbVersion") or info.get("version")
        return f"FerretDB {version} (SQLite handler)"
    return f"MongoDB {info.get('version')}"
