"""What makes up a local stack: its ports, its processes and the config it saves (stack.json)."""

from __future__ import annotations

import json
import os
import socket
from dataclasses import asdict, dataclass, field
from pathlib import Path

from services.core.secretfiles import write_private

REPO = Path(__file__).resolve().parents[3]
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
