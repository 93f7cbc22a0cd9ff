"""Building a stack: backend configs in its data dir, the gateway's nginx.conf, its processes."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path
from string import Template

from services.cli import apidocs, console
from services.cli.stack.config import REPO, SERVICES, Ports, ProcSpec, StackConfig
from services.cli.stack.provisioning import _script
from services.core.secretfiles import private_dir


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
