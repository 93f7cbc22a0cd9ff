"""The shipper routes through a tiny app: credentials, tenants, encodings, replies.

No I/O: the batcher, the token verifier and the key checks are fakes; the real
stack is exercised in tests/integration/log/test_shippers_*.py.
"""

from __future__ import annotations

import base64
import gzip
from collections.abc import AsyncIterator

import httpx
import orjson
import pytest
from fastapi import FastAPI
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)

from services.core.apikeys import MachineCredential
from services.core.errors import NotFound, Unauthorized
from services.core.principal import Principal
from services.core.web.app import install_error_handlers
from services.core.web.state import set_service_state
from services.log.shippers.routes import es_router, loki_router, otlp_router
from services.log.state import LogState
from tests.support.fakes import FakePolicies

WRITER = "Basic " + base64.b64encode(b"lsk_w:pw").decode()
ADMIN = "ApiKey " + base64.b64encode(b"lsk_admin:pw").decode()
VIEWER_TOKEN = "Bearer viewer"


class Batcher:
    def __init__(self) -> None:
        self.submitted: list[tuple[str, list[dict]]] = []

    async def submit(self, tenant: str, events: list[bytes]) -> None:
        self.submitted.append((tenant, [orjson.loads(e) for e in events]))


class ApiKeys:
    async def authenticate(self, credential: MachineCredential) -> Principal:
        if credential == MachineCredential("lsk_w", "pw"):
            return Principal("lsk_w", "acme", "writer", "", 0)
        if credential == MachineCredential("lsk_admin", "pw"):
            return Principal("lsk_admin", "*", "admin", "", 0)
        raise Unauthorized("Invalid API key.")


class Verifier:
    def cached(self, token: str) -> Principal | None:
        return None  # always the awaited path

    async def verify(self, token: str) -> Principal:
        if token == "viewer":
            return Principal("lsk_v", "acme", "viewer", "j", 2**31)
        raise Unauthorized("bad token")


class Credentials:
    def known_active(self, principal: Principal) -> bool:
        return False  # always the awaited path

    async def ensure_active(self, principal: Principal) -> None:
        return None

    async def ensure_tenant(self, tenant: str) -> None:
        if tenant not in ("acme", "globex"):
            raise NotFound(f"No tenant '{tenant}'.")


@pytest.fixture
def batcher() -> Batcher:
    return Batcher()


@pytest.fixture
async def client(batcher: Batcher) -> AsyncIterator[httpx.AsyncClient]:
    app = FastAPI()
    install_error_handlers(app)
    for router in (otlp_router, loki_router, es_router):
        app.include_router(router)
    app.state.apikeys = ApiKeys()
    app.state.verifier = Verifier()
    app.state.credentials = Credentials()
    # Only what the shipper routes use: the batcher and the tenant policies (no
    # retention: nothing is too old).
    shipping = {"batcher": batcher, "policies": FakePolicies()}
    unused = dict.fromkeys(("settings", "repo", "limit_guard", "admission", "query_gate"))
    set_service_state(app, LogState(**shipping, **unused))
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
        yield c


def loki_json(*lines: str, labels: dict | None = None) -> bytes:
    values = [[str(1_767_225_600_000_000_000 + i), line] for i, line in enumerate(lines)]
    return orjson.dumps({"streams": [{"stream": labels or {"job": "api"}, "values": values}]})


# --- Loki -----------------------------------------------------------------------------


async def test_loki_push_is_204_into_the_keys_tenant(client, batcher):
    resp = await client.post(
        "/loki/api/v1/push",
        content=loki_json("a", "b"),
        headers={"Authorization": WRITER, "Content-Type": "application/json"},
    )
    assert resp.status_code == 204, resp.text
    [(tenant, events)] = batcher.submitted
    assert tenant == "acme" and [e["message"] for e in events] == ["a", "b"]


@pytest.mark.parametrize(("org", "status"), [("acme", 204), ("globex", 403)])
async def test_loki_scope_org_id_must_be_the_keys_tenant(client, batcher, org, status):
    resp = await client.post(
        "/loki/api/v1/push",
        content=loki_json("a"),
        headers={"Authorization": WRITER, "X-Scope-OrgID": org, "Content-Type": "application/json"},
    )
    assert resp.status_code == status
    assert bool(batcher.submitted) == (status == 204)


async def test_a_platform_admin_key_names_the_tenant_with_scope_org_id(client, batcher):
    headers = {"Authorization": ADMIN, "Content-Type": "application/json"}
    resp = await client.post("/loki/api/v1/push", content=loki_json("a"), headers=headers)
    assert resp.status_code == 400 and "X-Tenant-ID" in resp.json()["detail"]
    for extra, status in (
        ({"X-Scope-OrgID": "globex"}, 204),
        ({"X-Tenant-ID": "globex", "X-Scope-OrgID": "acme"}, 400),
        ({"X-Scope-OrgID": "nope"}, 404),
    ):
        resp = await client.post(
            "/loki/api/v1/push", content=loki_json("a"), headers={**headers, **extra}
        )
        assert resp.status_code == status, (extra, resp.text)
    assert [tenant for tenant, _ in batcher.submitted] == ["globex"]


async def test_loki_refused_entries_are_400_and_the_others_kept(client, batcher):
    body = loki_json("fine", "x" * 70_000)
    resp = await client.post(
        "/loki/api/v1/push",
        content=body,
        headers={"Authorization": WRITER, "Content-Type": "application/json"},
    )
    assert resp.status_code == 400
    assert "1 of 2 entries refused" in resp.json()["detail"]
    assert [e["message"] for e in batcher.submitted[0][1]] == ["fine"]


async def test_loki_gzip_json_and_a_gzip_bomb(client, batcher):
    headers = {
        "Authorization": WRITER,
        "Content-Type": "application/json",
        "Content-Encoding": "gzip",
    }
    ok = await client.post(
        "/loki/api/v1/push", content=gzip.compress(loki_json("z")), headers=headers
    )
    assert ok.status_code == 204
    bomb = gzip.compress(b" " * 11 * 1024 * 1024)
    resp = await client.post("/loki/api/v1/push", content=bomb, headers=headers)
    assert resp.status_code == 413
    assert len(batcher.submitted) == 1


async def test_shipper_routes_need_a_credential_that_may_write(client, batcher):
    for auth, status in (
        (None, 401),
        ("Basic " + base64.b64encode(b"lsk_w:no").decode(), 401),
        (VIEWER_TOKEN, 403),
    ):
        headers = {"Content-Type": "application/json"} | ({"Authorization": auth} if auth else {})
        resp = await client.post("/loki/api/v1/push", content=loki_json("a"), headers=headers)
        assert resp.status_code == status
    assert batcher.submitted == []


# --- OTLP -----------------------------------------------------------------------------


def otlp_request(*bodies: str) -> ExportLogsServiceRequest:
    req = ExportLogsServiceRequest()
    records = req.resource_logs.add().scope_logs.add().log_records
    for body in bodies:
        records.add().body.string_value = body
    return req


async def test_otlp_protobuf_partial_success(client, batcher):
    resp = await client.post(
        "/otlp/v1/logs",
        content=otlp_request("ok", "y" * 70_000).SerializeToString(),
        headers={"Authorization": WRITER, "Content-Type": "application/x-protobuf"},
    )
    assert resp.status_code == 200
    assert resp.headers["content-type"] == "application/x-protobuf"
    partial = ExportLogsServiceResponse.FromString(resp.content).partial_success
    assert partial.rejected_log_records == 1 and "message" in partial.error_message
    assert [e["message"] for e in batcher.submitted[0][1]] == ["ok"]


async def test_otlp_json_answers_json(client):
    body = b'{"resourceLogs": [{"scopeLogs": [{"logRecords": [{"body": {"stringValue": "hi"}}]}]}]}'
    resp = await client.post(
        "/otlp/v1/logs",
        content=body,
        headers={"Authorization": WRITER, "Content-Type": "application/json; charset=utf-8"},
    )
    assert resp.status_code == 200 and resp.json() == {}
    assert resp.headers["content-type"].startswith("application/json")


@pytest.mark.parametrize(
    ("ctype", "body", "status"),
    [
        ("text/plain", b"hi", 415),
        ("application/x-protobuf", b"\xff\xff\xff", 400),
        ("application/json", b"{", 400),
    ],
)
async def test_otlp_bad_requests_store_nothing(client, batcher, ctype, body, status):
    resp = await client.post(
        "/otlp/v1/logs", content=body, headers={"Authorization": WRITER, "Content-Type": ctype}
    )
    assert resp.status_code == status
    assert batcher.submitted == []


async def test_an_oversized_batch_is_413(client, batcher):
    resp = await client.post(
        "/otlp/v1/logs",
        content=otlp_request(*(["m"] * 10_001)).SerializeToString(),
        headers={"Authorization": WRITER, "Content-Type": "application/x-protobuf"},
    )
    assert resp.status_code == 413 and batcher.submitted == []


# --- Elasticsearch ----------------------------------------------------------------------


async def test_es_info_head_health_and_product_header(client):
    for method, path in (
        ("GET", "/es/"),
        ("GET", "/es"),
        ("HEAD", "/es/"),
        ("GET", "/es/_cluster/health"),
        ("GET", "/es/_license"),
        ("HEAD", "/es/_cat/health"),
    ):
        resp = await client.request(method, path, headers={"Authorization": WRITER})
        assert resp.status_code == 200, (method, path)
        assert resp.headers["x-elastic-product"] == "Elasticsearch"
    info = (await client.get("/es/", headers={"Authorization": WRITER})).json()
    assert info["version"]["number"].startswith("8.")


async def test_es_errors_are_es_shaped_with_the_product_header(client):
    for path, auth, status in (
        ("/es/", None, 401),
        ("/es/_bulk", VIEWER_TOKEN, 403),
        ("/es/_search", WRITER, 404),
        ("/es/logs/_doc/1", WRITER, 404),
    ):
        headers = {"Authorization": auth} if auth else {}
        method = "POST" if path.endswith("_bulk") else "GET"
        resp = await client.request(method, path, headers=headers, content=b"")
        assert resp.status_code == status, path
        assert resp.headers["x-elastic-product"] == "Elasticsearch"
        assert resp.json()["error"]["type"] and resp.json()["status"] == status
    unauthorized = await client.get("/es/")
    assert "Basic" in unauthorized.headers["www-authenticate"]


async def test_es_bulk_per_item(client, batcher):
    body = b'{"index":{"_id":"a"}}\n{"message":"one","log.level":"error"}\n{"delete":{"_id":"b"}}\n'
    resp = await client.post(
        "/es/app-logs/_bulk",
        content=body,
        headers={"Authorization": WRITER, "Content-Type": "application/x-ndjson"},
    )
    assert resp.status_code == 200
    assert resp.headers["x-elastic-product"] == "Elasticsearch"
    doc = resp.json()
    assert doc["errors"] is True
    assert [next(iter(i.values()))["status"] for i in doc["items"]] == [201, 400]
    [(tenant, [event])] = batcher.submitted
    assert tenant == "acme" and event["id"] == "a" and event["level"] == "ERROR"
    assert event["attributes"] == {"_index": "app-logs"}


async def test_es_malformed_bulk_is_400_es_shaped(client, batcher):
    resp = await client.post("/es/_bulk", content=b"{nope\n", headers={"Authorization": WRITER})
    assert resp.status_code == 400
    assert resp.json()["error"]["type"] == "illegal_argument_exception"
    assert resp.headers["x-elastic-product"] == "Elasticsearch"
    assert batcher.submitted == []
