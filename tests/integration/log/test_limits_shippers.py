"""The ingest limits on the shipper protocols: each answers 429 the way its clients retry."""

from __future__ import annotations

import time

import orjson
import pytest

from tests.integration.conftest import Api, bearer
from tests.integration.helpers import eventually, stored_total

pytestmark = pytest.mark.integration
JSON = {"Content-Type": "application/json"}


def otlp_body(n: int) -> bytes:
    now = str(time.time_ns())
    records = [{"timeUnixNano": now, "body": {"stringValue": f"otlp {i}"}} for i in range(n)]
    return orjson.dumps({"resourceLogs": [{"scopeLogs": [{"logRecords": records}]}]})


def loki_body(n: int) -> bytes:
    now = time.time_ns()
    values = [[str(now + i), f"loki {i}"] for i in range(n)]
    return orjson.dumps({"streams": [{"stream": {"job": "lim"}, "values": values}]})


def es_body(n: int) -> bytes:
    return b"".join(
        b'{"index":{}}\n' + orjson.dumps({"message": f"es {i}"}) + b"\n" for i in range(n)
    )


PROTOCOLS = {
    "otlp": ("/otlp/v1/logs", otlp_body),
    "loki": ("/loki/api/v1/push", loki_body),
    "es": ("/es/_bulk", es_body),
}


@pytest.mark.parametrize("protocol", sorted(PROTOCOLS))
async def test_a_shipper_over_its_tenants_rate_gets_429_with_retry_after(
    api: Api, protocol: str
) -> None:
    tenant = await api.tenant("ship", limits={"ingest_events_per_second": 2, "ingest_burst": 5})
    tokens = await api.role_tokens(tenant)
    writer = bearer(tokens["writer"]) | JSON
    path, body = PROTOCOLS[protocol]
    first = await api.http.post(path, content=body(5), headers=writer)
    assert first.status_code in (200, 204), first.text
    refused = await api.http.post(path, content=body(5), headers=writer)
    assert refused.status_code == 429, refused.text
    assert 1 <= int(refused.headers["retry-after"]) <= 3
    if protocol == "es":  # Elasticsearch's shape, which its clients read and retry
        assert refused.headers["x-elastic-product"] == "Elasticsearch"
        assert refused.json()["error"]["type"] == "es_rejected_execution_exception"
        assert "ingest_events_per_second" in refused.json()["error"]["reason"]
    else:
        assert refused.json()["type"].endswith("/ingest-rate-limited")
    viewer = bearer(tokens["viewer"])

    async def stored() -> bool:
        return await stored_total(api.http, viewer) >= 5

    await eventually(stored, within=60)
    assert await stored_total(api.http, viewer) == 5  # nothing of the refused push
    seen = await api.http.get("/api/v1/logs/usage", headers=viewer)
    assert seen.json()["refused"] == {"ingest_events_per_second": 1}
