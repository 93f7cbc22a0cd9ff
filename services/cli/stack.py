"""The local stack: which processes make up logserver on one machine, and how to run them.

The same process list serves `make dev` (run in the foreground with honcho)
and `make test` (run in the background by :class:`ProcessGroup`, on free
ports, with logs in files). Backends are provisioned by `scripts/` into a
cache outside the repository.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from string import Template

from services.cli import apidocs, console
from services.core.secretfiles import private_dir, write_private

REPO = Path(__file__).resolve().parents[2]
SCRIPTS = REPO / "scripts"
SERVICES = ("auth", "tenant", "log", "worker", "broadcast")
CACHE = Path(os.environ.get("LOGSERVER_CACHE_DIR", Path.home() / ".cache" / "logserver"))


@dataclass
class Ports:
    gateway: int = 8080
    auth: int = 8001
    tenant: int = 8002
    log: int = 8003
    worker: int = 8004
    broadcast: int = 8005
    mongo: int = 27017
    sqs: int = 9324
    redis: int = 6379

    @classmethod
    def free(cls) -> Ports:
        """Ports the OS says are free now (for tests next to a running `make dev`)."""
        socks, ports = [], {}
        for name in cls.__dataclass_fields__:
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
            ports[name] = s.getsockname()[1]
        for s in socks:
            s.close()
        return cls(**ports)


@dataclass
class ProcSpec:
    """One process of the stack and how to tell it is ready."""

    name: str
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    probe: tuple[str, str] = ("tcp", "")  # ("tcp", "host:port") or ("http", url)


@dataclass
class StackConfig:
    data_dir: Path
    ports: Ports
    mongodb_url: str
    sqs_endpoint_url: str
    redis_url: str
    admin_client_id: str
    admin_client_secret: str
    procs: list[ProcSpec] = field(default_factory=list)

    @property
    def gateway_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.gateway}"

    def service_url(self, name: str) -> str:
        return f"http://127.0.0.1:{getattr(self.ports, name)}"

    def service_env(self) -> dict[str, str]:
        """Environment shared by the five services."""
        return {
            "LOGSERVER_MONGODB_URL": self.mongodb_url,
            "LOGSERVER_SQS_ENDPOINT_URL": self.sqs_endpoint_url,
            "LOGSERVER_REDIS_URL": self.redis_url,
            "LOGSERVER_AUTH_URL": self.service_url("auth"),
            "LOGSERVER_JWT_KEYS_DIR": str(self.data_dir / "jwt-keys"),
            "LOGSERVER_JWT_GENERATE_KEYS": "true",
            "LOGSERVER_BOOTSTRAP_ADMIN_CLIENT_ID": self.admin_client_id,
            "LOGSERVER_BOOTSTRAP_ADMIN_CLIENT_SECRET": self.admin_client_secret,
            "PYTHONUNBUFFERED": "1",
        }

    def save(self) -> None:
        """Write ``stack.json`` (it holds the admin secret: 0600, in the 0700 data dir)."""
        doc = asdict(self)
        doc["data_dir"] = str(self.data_dir)
        write_private(self.data_dir / "stack.json", json.dumps(doc, indent=2))

    @classmethod
    def load(cls, path: Path) -> StackConfig:
        doc = json.loads(path.read_text())
        doc["data_dir"] = Path(doc["data_dir"])
        doc["ports"] = Ports(**doc["ports"])
        doc["procs"] = [ProcSpec(**{**p, "probe": tuple(p["probe"])}) for p in doc["procs"]]
        return cls(**doc)


# --- provisioning -----------------------------------------------------------------


def _script(name: str) -> str:
    out = subprocess.run(
        ["bash", str(SCRIPTS / name)], check=True, stdout=subprocess.PIPE, text=True
    )
    return out.stdout.strip().splitlines()[-1] if out.stdout.strip() else ""


def provision() -> dict[str, str]:
    """Make sure every backend this machine has to run itself is installed; return paths."""
    tools: dict[str, str] = {}
    # chromium: the console's browser tests; npm: Swagger UI's files (/api/docs)
    system = ("nginx", "chromium", "npm")
    if not os.environ.get("LOGSERVER_REDIS_URL") or not all(map(shutil.which, system)):
        _script("provision-system.sh")
    if not os.environ.get("LOGSERVER_MONGODB_URL") and not shutil.which("mongod"):
        tools["ferretdb"] = _script("provision-ferretdb.sh")
    if not os.environ.get("LOGSERVER_SQS_ENDPOINT_URL"):
        tools["elasticmq_lib"] = _script("provision-elasticmq.sh")
    return tools


def _nginx() -> str:
    return shutil.which("nginx") or "/usr/sbin/nginx"


# --- building the process list -------------------------------------------------------


ELASTICMQ_CONF = """include classpath("application.conf")
node-address {{ protocol = http, host = 127.0.0.1, port = {port}, context-path = "" }}
rest-sqs {{ enabled = true, bind-port = {port}, bind-hostname = "127.0.0.1", sqs-limits = strict }}
rest-stats {{ enabled = false }}
messages-storage {{ enabled = true, uri = "jdbc:h2:{data}/elasticmq" }}
queues {{
  {queue} {{
    defaultVisibilityTimeout = {visibility} seconds
    receiveMessageWait = 0 seconds
    deadLettersQueue {{ name = "{dlq}", maxReceiveCount = {max_receives} }}
  }}
  {dlq} {{ }}
}}
"""


def build_stack(
    data_dir: Path,
    ports: Ports,
    tools: dict[str, str],
    *,
    admin: tuple[str, str],
    visibility_timeout: int = 30,
    max_receives: int = 5,
    extra_env: dict[str, str] | None = None,
) -> StackConfig:
    """Write backend configs under ``data_dir`` and return the full process list.

    ``data_dir`` is made 0700: it holds the stack's secrets (``stack.json``, the
    JWT signing keys) and its stored events.
    """
    private_dir(data_dir)
    procs: list[ProcSpec] = []
    mongodb_url = os.environ.get("LOGSERVER_MONGODB_URL", "")
    if not mongodb_url:
        mongo_dir = data_dir / "mongo"
        mongo_dir.mkdir(exist_ok=True)
        mongodb_url = f"mongodb://127.0.0.1:{ports.mongo}"
        if shutil.which("mongod"):
            argv = [
                "mongod",
                "--dbpath",
                str(mongo_dir),
                "--port",
                str(ports.mongo),
                "--bind_ip",
                "127.0.0.1",
                "--quiet",
            ]
        else:
            argv = [
                tools["ferretdb"],
                "--handler=sqlite",
                f"--sqlite-url=file:{mongo_dir}/",
                f"--listen-addr=127.0.0.1:{ports.mongo}",
                f"--state-dir={mongo_dir}",
                "--telemetry=disable",
                "--debug-addr=-",
                "--log-level=warn",
            ]
        procs.append(ProcSpec("mongodb", argv, probe=("tcp", f"127.0.0.1:{ports.mongo}")))

    sqs_url = os.environ.get("LOGSERVER_SQS_ENDPOINT_URL", "")
    queue = os.environ.get("LOGSERVER_SQS_QUEUE_NAME", "logserver-events")
    dlq = os.environ.get("LOGSERVER_SQS_DLQ_NAME", "logserver-events-dlq")
    if not sqs_url:
        emq_dir = data_dir / "elasticmq"
        emq_dir.mkdir(exist_ok=True)
        conf = emq_dir / "elasticmq.conf"
        conf.write_text(
            ELASTICMQ_CONF.format(
                port=ports.sqs,
                data=emq_dir,
                queue=queue,
                dlq=dlq,
                visibility=visibility_timeout,
                max_receives=max_receives,
            )
        )
        sqs_url = f"http://127.0.0.1:{ports.sqs}"
        argv = [
            "java",
            "-Xms64m",
            "-Xmx256m",
            "-XX:+UseSerialGC",
            f"-Dconfig.file={conf}",
            "-Dlogback.configurationFile=" + str(REPO / "scripts" / "elasticmq-logback.xml"),
            "-cp",
            f"{tools['elasticmq_lib']}/*",
            "org.elasticmq.server.Main",
        ]
        procs.append(ProcSpec("elasticmq", argv, probe=("sqs", f"{sqs_url}|{queue}")))

    redis_url = os.environ.get("LOGSERVER_REDIS_URL", "")
    if not redis_url:
        redis_dir = data_dir / "redis"
        redis_dir.mkdir(exist_ok=True)
        redis_url = f"redis://127.0.0.1:{ports.redis}/0"
        argv = [
            "redis-server",
            "--bind",
            "127.0.0.1",
            "--port",
            str(ports.redis),
            "--dir",
            str(redis_dir),
            "--save",
            "",
            "--appendonly",
            "no",
            "--protected-mode",
            "yes",
            "--loglevel",
            "warning",
        ]
        procs.append(ProcSpec("redis", argv, probe=("tcp", f"127.0.0.1:{ports.redis}")))

    cfg = StackConfig(data_dir, ports, mongodb_url, sqs_url, redis_url, *admin)
    env = cfg.service_env() | (extra_env or {})
    if "elasticmq" in {p.name for p in procs}:
        # The worker counts a message failing on its last receive as dead-lettered:
        # same number as the queue it runs against (it also reads the queue's).
        env["LOGSERVER_WORKER_MAX_RECEIVES"] = str(max_receives)
    for name in SERVICES:
        port = getattr(ports, name)
        procs.append(
            ProcSpec(
                name,
                [sys.executable, "-m", f"services.{name}"],
                env=env | {"LOGSERVER_PORT": str(port)},
                probe=("http", f"http://127.0.0.1:{port}/healthz"),
            )
        )

    procs.append(gateway_proc(data_dir / "nginx", ports))
    cfg.procs = procs
    return cfg


def gateway_proc(nginx_dir: Path, ports: Ports, name: str = "gateway") -> ProcSpec:
    """Render docker/nginx.conf.template for ``ports`` into ``nginx_dir``; its nginx process.

    The web console it serves at ``/`` is built into ``nginx_dir/console``, the
    API reference (``/api/docs``, ``/api/openapi.json``) into its ``api/``.
    """
    nginx_dir.mkdir(parents=True, exist_ok=True)
    console_dir = nginx_dir / "console"
    console.build(console_dir)
    # The API reference beside it (/api/docs, /api/openapi.json).
    apidocs.build(console_dir, Path(_script("provision-swagger-ui.sh")))
    template = Template((REPO / "docker" / "nginx.conf.template").read_text())
    conf = template.safe_substitute(
        user_directive="user root;" if os.geteuid() == 0 else "",
        data_dir=str(nginx_dir),
        console_dir=str(console_dir),
        console_headers=str(REPO / "docker" / "console-headers.conf"),
        apidocs_headers=str(REPO / "docker" / "apidocs-headers.conf"),
        gateway_port=ports.gateway,
        auth_port=ports.auth,
        tenant_port=ports.tenant,
        log_port=ports.log,
        broadcast_port=ports.broadcast,
    )
    (nginx_dir / "nginx.conf").write_text(conf)
    return ProcSpec(
        name,
        [_nginx(), "-p", str(nginx_dir), "-c", str(nginx_dir / "nginx.conf"), "-e", "stderr"],
        probe=("http", f"http://127.0.0.1:{ports.gateway}/healthz"),
    )


# --- readiness -------------------------------------------------------------------


def probe_once(probe: tuple[str, str]) -> bool:
    kind, target = probe
    try:
        if kind == "tcp":
            host, port = target.rsplit(":", 1)
            with socket.create_connection((host, int(port)), timeout=1):
                return True
        if kind == "http":
            with urllib.request.urlopen(target, timeout=2) as resp:
                return resp.status == 200
        if kind == "sqs":
            url, queue = target.split("|")
            req = urllib.request.Request(
                url + "/",
                data=json.dumps({"QueueName": queue}).encode(),
                method="POST",
                headers={
                    "Content-Type": "application/x-amz-json-1.0",
                    "X-Amz-Target": "AmazonSQS.GetQueueUrl",
                },
            )
            with urllib.request.urlopen(req, timeout=2) as resp:
                return resp.status == 200
    except (OSError, urllib.error.URLError, ValueError):
        return False
    return False


def wait_ready(
    specs: list[ProcSpec], timeout: float, alive: Callable[[str], bool] | None = None
) -> None:
    """Poll every probe until all pass; raise with the names still down at the deadline."""
    deadline = time.monotonic() + timeout
    pending = list(specs)
    while pending:
        pending = [s for s in pending if not probe_once(s.probe)]
        if alive:
            dead = [s.name for s in pending if not alive(s.name)]
            if dead:
                raise RuntimeError(f"process exited before it was ready: {', '.join(dead)}")
        if not pending:
            return
        if time.monotonic() > deadline:
            names = ", ".join(s.name for s in pending)
            raise TimeoutError(f"not ready after {timeout:.0f}s: {names}")
        time.sleep(0.2)


# --- background runner (tests) -------------------------------------------------------


class ProcessGroup:
    """Runs stack processes in the background with their output in ``<data>/logs``."""

    def __init__(self, cfg: StackConfig) -> None:
        self.cfg = cfg
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.specs = {s.name: s for s in cfg.procs}
        self.log_dir = cfg.data_dir / "logs"
        self.log_dir.mkdir(parents=True, exist_ok=True)

    def add(self, spec: ProcSpec) -> None:
        """Run an extra process (e.g. a second replica) under this group's control."""
        self.specs[spec.name] = spec
        self.cfg.procs.append(spec)

    def start(self, name: str) -> None:
        spec = self.specs[name]
        log = (self.log_dir / f"{name}.log").open("ab")
        self.procs[name] = subprocess.Popen(
            spec.argv,
            env=os.environ | spec.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=REPO,
            start_new_session=True,
        )
        log.close()

    def alive(self, name: str) -> bool:
        proc = self.procs.get(name)
        return proc is not None and proc.poll() is None

    def wait(self, names: list[str], timeout: float = 120) -> None:
        wait_ready([self.specs[n] for n in names], timeout, self.alive)

    def start_all(self, timeout: float = 180) -> None:
        for spec in self.cfg.procs:
            self.start(spec.name)
        try:
            self.wait([s.name for s in self.cfg.procs], timeout)
        except Exception:
            self.stop_all()
            raise

    def stop(self, name: str, sig: int = signal.SIGTERM, timeout: float = 15) -> int | None:
        proc = self.procs.pop(name, None)
        if proc is None or proc.poll() is not None:
            return proc.returncode if proc else None
        os.killpg(proc.pid, sig)
        try:
            return proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            return proc.wait(5)

    def restart(self, name: str, timeout: float = 60) -> None:
        self.stop(name)
        self.start(name)
        self.wait([name], timeout)

    def stop_all(self) -> None:
        # Reverse start order: gateway and services before the backends they hold
        # connections to (FerretDB waits for its clients to go before it exits).
        for spec in reversed(self.cfg.procs):
            self.stop(spec.name)

    def tail(self, name: str, lines: int = 40) -> str:
        path = self.log_dir / f"{name}.log"
        if not path.exists():
            return ""
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
