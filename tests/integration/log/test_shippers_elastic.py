"""Elasticsearch-compatible ingest (``/es``) through the gateway, with real clients:
the official Python client (``helpers.bulk``, with its product check) and rsyslog's
``omelasticsearch`` (Debian's rsyslog-elasticsearch), started here on a free port.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from elasticsearch import AuthenticationException, Elasticsearch, helpers

from services.cli.stack import StackConfig
from tests.integration.conftest import Api, bearer
from tests.integration.helpers import (
    basic,
    eventually,
    free_port,
    queue_drained,
    stored_total,
)

pytestmark = pytest.mark.integration


def ship_with_helpers_bulk(url: str, **auth: object) -> tuple[int, list]:
    client = Elasticsearch(url, request_timeout=30, **auth)
    now = datetime.now(UTC).replace(microsecond=0)  # recent: old events meet retention
    try:
        assert client.info()["version"]["number"].startswith("8.")  # product check passed
        actions = [
            {
                "_index": "orders",
                "_id": f"order-{n}",
                "_source": {
                    "@timestamp": now + timedelta(seconds=n),
                    "message": f"order {n} {word}",
                    "log": {"level": level},
                    "service": {"name": "orders", "version": "2.1"},
                    "http": {"request": {"method": method}},
                    "customer.tier": "gold",
                },
            }
            for n, (word, level, method) in enumerate(
                [("placed", "info", "POST"), ("late", "warn", "GET"), ("lost", "error", "GET")]
            )
        ]
        return helpers.bulk(client, actions)
    finally:
        client.close()


async def test_the_official_client_bulk_indexes_into_the_keys_tenant(
    api: Api, cfg: StackConfig
) -> None:
    tenant = await api.tenant("es")
    key = await api.key(tenant, "writer")
    viewer = bearer(await api.token(*await api.key(tenant, "viewer")))
    other = await api.tenant("es-other")
    other_viewer = bearer(await api.token(*await api.key(other, "viewer")))
    url = f"{cfg.gateway_url}/es"

    assert await asyncio.to_thread(ship_with_helpers_bulk, url, basic_auth=key) == (3, [])
    # the same documents again, with the ApiKey scheme: their _id makes them no-ops
    assert await asyncio.to_thread(ship_with_helpers_bulk, url, api_key=key) == (3, [])

    async def three():
        return await stored_total(api.http, viewer) == 3

    await eventually(three, within=60)
    assert await stored_total(api.http, viewer, service="orders") == 3
    assert await stored_total(api.http, viewer, level="WARNING") == 1
    # nested as the client wrote it, found by its dotted name; a dotted key likewise
    assert await stored_total(api.http, viewer, **{"attributes.http.request.method": "GET"}) == 2
    assert await stored_total(api.http, viewer, **{"attributes.customer.tier": "gold"}) == 3
    resp = await api.http.get("/api/v1/logs/order-1", headers=viewer)
    event = resp.json()
    assert event["tenant_id"] == tenant and event["message"] == "order 1 late"
    assert event["attributes"] == {
        "service": {"version": "2.1"},
        "http": {"request": {"method": "GET"}},
        "customer.tier": "gold",
        "_index": "orders",
    }
    assert await stored_total(api.http, other_viewer) == 0

    with pytest.raises(AuthenticationException):
        await asyncio.to_thread(ship_with_helpers_bulk, url, basic_auth=(key[0], "wrong"))
    await queue_drained(cfg)
    assert await stored_total(api.http, viewer) == 3


async def test_bulk_errors_per_item_and_malformed_bodies(api: Api, cfg: StackConfig) -> None:
    tenant = await api.tenant("es-raw")
    writer = basic(*await api.key(tenant, "writer"))
    viewer = bearer(await api.token(*await api.key(tenant, "viewer")))
    body = (
        b'{"create":{"_index":"a","_id":"ok-1"}}\n{"message":"kept"}\n'
        b'{"index":{"_index":"a"}}\n{"no_message":true}\n'
        b'{"delete":{"_index":"a","_id":"ok-1"}}\n'
    )
    resp = await api.http.post("/es/_bulk", content=body, headers=writer)
    assert resp.status_code == 200
    assert resp.headers["x-elastic-product"] == "Elasticsearch"
    statuses = [next(iter(item.values()))["status"] for item in resp.json()["items"]]
    assert statuses == [201, 400, 400] and resp.json()["errors"] is True

    bomb = gzip.compress(b"\n" * (11 * 1024 * 1024))
    for content, headers, status in (
        (b"{broken\n", {}, 400),
        (b'{"index":{}}\n', {}, 400),
        (bomb, {"Content-Encoding": "gzip"}, 413),
        (b"not gzip", {"Content-Encoding": "gzip"}, 400),
        (b'{"index":{}}\n{"message":"m"}\n' * 10_001, {}, 413),
    ):
        resp = await api.http.post("/es/logs/_bulk", content=content, headers=writer | headers)
        assert resp.status_code == status, (status, resp.text)
        assert resp.headers["x-elastic-product"] == "Elasticsearch"
        assert resp.json()["error"]["type"]
    await queue_drained(cfg)
    assert await stored_total(api.http, viewer) == 1


# --- rsyslog ------------------------------------------------------------------------------

RSYSLOG_CONF = """
global(workDirectory="{work}")
module(load="imtcp")
module(load="omelasticsearch")
template(name="ecs" type="list" option.jsonf="on") {{
  property(outname="@timestamp" name="timereported" dateFormat="rfc3339" format="jsonf")
  property(outname="host.name" name="hostname" format="jsonf")
  property(outname="service.name" name="programname" format="jsonf")
  property(outname="log.level" name="syslogseverity-text" format="jsonf")
  property(outname="syslog.facility" name="syslogfacility-text" format="jsonf")
  property(outname="message" name="msg" format="jsonf")
}}
ruleset(name="ship") {{
  action(type="omelasticsearch" server="{gateway}/es/" searchIndex="syslog" template="ecs"
         bulkmode="on" uid="{uid}" pwd="{pwd}" errorFile="{work}/es-errors.json"
         action.resumeRetryCount="-1" action.resumeInterval="1")
}}
input(type="imtcp" address="127.0.0.1" port="{port}" ruleset="ship")
"""


@contextlib.contextmanager
def rsyslogd(work: Path, gateway: str, uid: str, pwd: str) -> Iterator[int]:
    """rsyslogd in the foreground with its own config and work directory; its TCP port."""
    port = free_port()
    work.mkdir(parents=True, exist_ok=True)
    conf = work / "rsyslog.conf"
    conf.write_text(RSYSLOG_CONF.format(work=work, gateway=gateway, uid=uid, pwd=pwd, port=port))
    log = (work / "rsyslogd.log").open("wb")
    proc = subprocess.Popen(
        ["rsyslogd", "-n", "-f", str(conf), "-i", str(work / "rsyslogd.pid")],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        yield port
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
        log.close()


async def send_syslog(port: int, lines: list[str]) -> None:
    async def connect():
        with contextlib.suppress(OSError):
            return await asyncio.open_connection("127.0.0.1", port)
        return None

    _, writer = await eventually(connect, within=30)
    writer.write("".join(line + "\n" for line in lines).encode())
    await writer.drain()
    writer.close()
    await writer.wait_closed()


async def test_rsyslog_ships_syslog_lines_with_omelasticsearch(
    api: Api, cfg: StackConfig, tmp_path: Path
) -> None:
    tenant = await api.tenant("rsyslog")
    uid, pwd = await api.key(tenant, "writer")
    viewer = bearer(await api.token(*await api.key(tenant, "viewer")))
    now = datetime.now(UTC)  # RFC 3164 has no year: rsyslog assumes this one
    stamp = f"{now:%b} {now.day:>2} {now:%H:%M:%S}"
    lines = [
        f"<131>{stamp} web-1 checkout[42]: payment declined for o-2",  # local0.err
        f"<14>{stamp} web-1 checkout[42]: order placed o-1",  # user.info
        f"<12>{stamp} web-2 cron[7]: job took 93s",  # user.warning
    ]
    with rsyslogd(tmp_path / "ok", cfg.gateway_url, uid, pwd) as port:
        await send_syslog(port, lines)

        async def three():
            return await stored_total(api.http, viewer) == 3

        await eventually(three, within=60)
    assert await stored_total(api.http, viewer, service="checkout") == 2
    assert await stored_total(api.http, viewer, level="ERROR") == 1
    assert await stored_total(api.http, viewer, level="WARNING") == 1
    assert await stored_total(api.http, viewer, **{"attributes.syslog.facility": "local0"}) == 1
    assert await stored_total(api.http, viewer, host="web-2") == 1

    # A wrong password: rsyslog is refused (its error file has Elasticsearch's 401).
    with rsyslogd(tmp_path / "wrong", cfg.gateway_url, uid, "wrong") as port:
        await send_syslog(port, [f"<11>{stamp} web-1 intruder[1]: should not land"])
        errors = tmp_path / "wrong" / "es-errors.json"

        async def refused():
            return errors.exists() and "security_exception" in errors.read_text()

        await eventually(refused, within=60)
    await queue_drained(cfg)
    assert await stored_total(api.http, viewer) == 3
