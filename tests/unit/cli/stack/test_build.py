"""Rendering the local stack's configs: ElasticMQ queues and the nginx gateway."""

from __future__ import annotations

import os
import re
import shutil
import stat
import sys
from pathlib import Path
from string import Template

import pytest

from services.cli import stack
from services.cli.stack import ELASTICMQ_CONF, REPO, SERVICES, Ports, build_stack

TEMPLATE = REPO / "docker" / "nginx.conf.template"
NGINX_VARIABLES = (
    "$host",
    "$remote_addr",
    "$proxy_add_x_forwarded_for",
    "$request_id",
    "$http_upgrade",
    "$connection_upgrade",
)


def render_elasticmq(**overrides: object) -> str:
    params: dict[str, object] = {
        "port": 19324,
        "data": "/data/emq",
        "queue": "logserver-events",
        "dlq": "logserver-events-dlq",
        "visibility": 30,
        "max_receives": 5,
    }
    params.update(overrides)
    return ELASTICMQ_CONF.format(**params)


def test_elasticmq_conf_declares_queue_and_dlq() -> None:
    conf = render_elasticmq(queue="q-main", dlq="q-dead", visibility=45, max_receives=3)
    assert re.search(r"^\s*q-main \{$", conf, re.M)
    assert re.search(r"^\s*q-dead \{ \}$", conf, re.M)
    assert "defaultVisibilityTimeout = 45 seconds" in conf
    assert 'deadLettersQueue { name = "q-dead", maxReceiveCount = 3 }' in conf


def test_elasticmq_conf_binds_localhost_on_the_port() -> None:
    conf = render_elasticmq(port=19999)
    assert 'bind-hostname = "127.0.0.1"' in conf
    assert "bind-port = 19999" in conf
    assert "host = 127.0.0.1, port = 19999" in conf
    assert "0.0.0.0" not in conf


def test_elasticmq_conf_persists_under_data_dir() -> None:
    assert 'uri = "jdbc:h2:/data/emq/elasticmq"' in render_elasticmq(data="/data/emq")


def test_elasticmq_conf_braces_are_balanced() -> None:
    conf = render_elasticmq()
    assert conf.count("{") == conf.count("}")
    assert "{{" not in conf and "}}" not in conf
    assert not re.search(r"\{[a-z_]+\}", conf)  # no unfilled format field


# --- nginx template ----------------------------------------------------------------


def render_nginx(ports: Ports, data_dir: str = "/data/nginx") -> str:
    """Exactly the substitution build_stack performs."""
    return Template(TEMPLATE.read_text()).safe_substitute(
        user_directive="",
        data_dir=data_dir,
        console_dir="/data/console",
        console_headers="/repo/docker/console-headers.conf",
        apidocs_headers="/repo/docker/apidocs-headers.conf",
        gateway_port=ports.gateway,
        auth_port=ports.auth,
        tenant_port=ports.tenant,
        log_port=ports.log,
        broadcast_port=ports.broadcast,
    )


def distinct_ports() -> Ports:
    return Ports(
        gateway=18080,
        auth=18001,
        tenant=18002,
        log=18003,
        worker=18004,
        broadcast=18005,
        mongo=37017,
        sqs=19324,
        redis=16379,
    )


def test_nginx_template_fills_every_placeholder() -> None:
    assert "${" in TEMPLATE.read_text()
    conf = render_nginx(distinct_ports())
    assert "${" not in conf
    assert not re.search(r"\$\{?(user_directive|data_dir|console_\w+|apidocs_\w+|\w+_port)\b", conf)


def test_nginx_template_keeps_nginx_variables() -> None:
    conf = render_nginx(distinct_ports())
    for variable in NGINX_VARIABLES:
        assert variable in conf, variable


def test_nginx_template_routes_to_the_right_ports() -> None:
    conf = render_nginx(distinct_ports(), data_dir="/data/nginx")
    assert "listen 127.0.0.1:18080;" in conf
    for name, port in (("auth", 18001), ("tenant", 18002), ("log", 18003), ("broadcast", 18005)):
        assert re.search(rf"upstream {name}\s+\{{ server 127\.0\.0\.1:{port};", conf), name
    assert "pid /data/nginx/nginx.pid;" in conf
    assert "18004" not in conf  # the worker has no public route


def test_nginx_template_placeholders_are_the_substituted_ones() -> None:
    placeholders = set(re.findall(r"\$\{(\w+)\}", TEMPLATE.read_text()))
    assert placeholders == {
        "user_directive",
        "data_dir",
        "console_dir",
        "console_headers",
        "apidocs_headers",
        "gateway_port",
        "auth_port",
        "tenant_port",
        "log_port",
        "broadcast_port",
    }


# --- build_stack, with every side effect kept in tmp_path --------------------------


@pytest.fixture
def no_tools(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in (
        "LOGSERVER_MONGODB_URL",
        "LOGSERVER_SQS_ENDPOINT_URL",
        "LOGSERVER_REDIS_URL",
        "LOGSERVER_SQS_QUEUE_NAME",
        "LOGSERVER_SQS_DLQ_NAME",
    ):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(shutil, "which", lambda name: None)


def test_build_stack_writes_configs_and_process_list(tmp_path: Path, no_tools: None) -> None:
    cfg = build_stack(
        tmp_path,
        distinct_ports(),
        {"ferretdb": "/opt/ferretdb", "elasticmq_lib": "/opt/emq"},
        admin=("lsk_admin", "s3cret"),
        visibility_timeout=17,
        max_receives=4,
    )
    names = [p.name for p in cfg.procs]
    assert names == ["mongodb", "elasticmq", "redis", *SERVICES, "gateway"]

    nginx = (tmp_path / "nginx" / "nginx.conf").read_text()
    assert "${" not in nginx
    assert "$host" in nginx
    assert f"pid {tmp_path / 'nginx'}/nginx.pid;" in nginx

    emq = (tmp_path / "elasticmq" / "elasticmq.conf").read_text()
    assert "bind-port = 19324" in emq and 'bind-hostname = "127.0.0.1"' in emq
    assert 'deadLettersQueue { name = "logserver-events-dlq", maxReceiveCount = 4 }' in emq
    assert "defaultVisibilityTimeout = 17 seconds" in emq
    # the worker counts dead letters by the same number
    assert {p.name: p for p in cfg.procs}["worker"].env["LOGSERVER_WORKER_MAX_RECEIVES"] == "4"

    assert cfg.mongodb_url == "mongodb://127.0.0.1:37017"
    assert cfg.sqs_endpoint_url == "http://127.0.0.1:19324"
    assert cfg.redis_url == "redis://127.0.0.1:16379/0"

    by_name = {p.name: p for p in cfg.procs}
    assert by_name["mongodb"].argv[0] == "/opt/ferretdb"
    assert "--listen-addr=127.0.0.1:37017" in by_name["mongodb"].argv
    assert by_name["redis"].argv[by_name["redis"].argv.index("--bind") + 1] == "127.0.0.1"
    log_proc = by_name["log"]
    assert log_proc.argv == [sys.executable, "-m", "services.log"]
    assert log_proc.env["LOGSERVER_PORT"] == "18003"
    assert log_proc.env["LOGSERVER_AUTH_URL"] == "http://127.0.0.1:18001"
    assert log_proc.env["LOGSERVER_BOOTSTRAP_ADMIN_CLIENT_SECRET"] == "s3cret"
    assert log_proc.probe == ("http", "http://127.0.0.1:18003/healthz")


def test_build_stack_uses_external_backends_from_env(
    tmp_path: Path, no_tools: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LOGSERVER_MONGODB_URL", "mongodb://db.example:27017")
    monkeypatch.setenv("LOGSERVER_SQS_ENDPOINT_URL", "http://sqs.example:9324")
    monkeypatch.setenv("LOGSERVER_REDIS_URL", "redis://cache.example:6379/0")
    cfg = build_stack(tmp_path, distinct_ports(), {}, admin=("a", "b"), extra_env={"X": "1"})
    assert [p.name for p in cfg.procs] == [*SERVICES, "gateway"]
    assert not (tmp_path / "elasticmq").exists()
    env = cfg.procs[0].env
    assert env["LOGSERVER_MONGODB_URL"] == "mongodb://db.example:27017"
    assert env["X"] == "1"
    assert "LOGSERVER_WORKER_MAX_RECEIVES" not in env  # an external queue's: read from it


def test_stack_config_round_trips(tmp_path: Path, no_tools: None) -> None:
    cfg = build_stack(
        tmp_path,
        distinct_ports(),
        {"ferretdb": "/f", "elasticmq_lib": "/e"},
        admin=("lsk_admin", "s3cret"),
    )
    cfg.save()
    loaded = stack.StackConfig.load(tmp_path / "stack.json")
    assert loaded == cfg
    assert loaded.gateway_url == "http://127.0.0.1:18080"


def test_stack_json_and_data_dir_are_private(tmp_path: Path, no_tools: None) -> None:
    """stack.json holds the admin secret: 0600 (even over an older 0644 one), folder 0700."""
    data_dir = tmp_path / "dev"
    data_dir.mkdir(mode=0o755)
    (data_dir / "stack.json").write_text("{}")
    old = os.umask(0)
    try:
        cfg = build_stack(
            data_dir, distinct_ports(), {"ferretdb": "/f", "elasticmq_lib": "/e"}, admin=("a", "b")
        )
        cfg.save()
    finally:
        os.umask(old)
    assert stat.S_IMODE(data_dir.stat().st_mode) == 0o700
    assert stat.S_IMODE((data_dir / "stack.json").stat().st_mode) == 0o600
    assert stack.StackConfig.load(data_dir / "stack.json").admin_client_secret == "b"
