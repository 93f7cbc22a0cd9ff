"""OTLP/HTTP logs through the gateway, driven by the OpenTelemetry Python SDK.

Python's stdlib ``logging`` → OpenTelemetry's ``LoggingHandler`` →
``OTLPLogExporter`` (HTTP/protobuf, gzip), configured only by the standard
``OTEL_EXPORTER_OTLP_*`` variables — the Python recipe of docs/shipping.md.
Hand-built requests cover what no client sends on purpose.
"""

from __future__ import annotations

import asyncio
import base64
import gzip
import logging

import pytest
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.instrumentation.logging.handler import LoggingHandler
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import LogRecordExportResult, SimpleLogRecordProcessor
from opentelemetry.sdk.resources import Resource

from services.cli.stack import StackConfig
from tests.integration.conftest import Api, bearer
from tests.integration.helpers import basic, eventually, queue_drained, stored_total

pytestmark = pytest.mark.integration

PROTOBUF = {"Content-Type": "application/x-protobuf"}


class RecordingExporter(OTLPLogExporter):
    """The SDK's exporter, remembering what each export returned."""

    def __init__(self) -> None:
        super().__init__()
        self.results: list[LogRecordExportResult] = []

    def export(self, batch):  # type: ignore[no-untyped-def]
        result = super().export(batch)
        self.results.append(result)
        return result


def ship_with_stdlib_logging(name: str, records: list[tuple[int, str, dict]]) -> list:
    """Log ``records`` through stdlib logging into OTLP; what each export returned."""
    provider = LoggerProvider(
        resource=Resource.create({"service.name": "checkout", "deployment.environment": "test"})
    )
    exporter = RecordingExporter()
    provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
    handler = LoggingHandler(logger_provider=provider, log_code_attributes=True)
    logger = logging.getLogger(name)
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    logger.addHandler(handler)
    try:
        for level, message, extra in records:
            logger.log(level, message, extra=extra)
        provider.force_flush()
    finally:
        logger.removeHandler(handler)
        provider.shutdown()
    return exporter.results


def otlp_env(monkeypatch: pytest.MonkeyPatch, cfg: StackConfig, key: tuple[str, str]) -> None:
    token = base64.b64encode(f"{key[0]}:{key[1]}".encode()).decode()
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", f"{cfg.gateway_url}/otlp")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", f"Authorization=Basic%20{token}")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip")


async def test_stdlib_logging_through_the_opentelemetry_sdk(
    api: Api, cfg: StackConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    tenant = await api.tenant("otel")
    viewer = bearer(await api.token(*await api.key(tenant, "viewer")))
    other = await api.tenant("otel-other")
    other_viewer = bearer(await api.token(*await api.key(other, "viewer")))

    otlp_env(monkeypatch, cfg, await api.key(tenant, "writer"))
    records = [
        (logging.INFO, "order placed", {"order_id": "o-1"}),
        (logging.WARNING, "payment declined", {"order_id": "o-2", "http.request.method": "POST"}),
        (logging.ERROR, "gateway timeout", {"order_id": "o-3"}),
    ]
    results = await asyncio.to_thread(ship_with_stdlib_logging, f"shop.{tenant}", records)
    assert results and all(r == LogRecordExportResult.SUCCESS for r in results)

    async def three():
        return await stored_total(api.http, viewer) == 3

    await eventually(three, within=60)
    assert await stored_total(api.http, viewer, service="checkout") == 3
    assert await stored_total(api.http, viewer, level="WARNING") == 1
    assert await stored_total(api.http, viewer, **{"attributes.order_id": "o-3"}) == 1
    assert await stored_total(api.http, viewer, **{"attributes.http.request.method": "POST"}) == 1
    resp = await api.http.get("/api/v1/logs", params={"attributes.order_id": "o-2"}, headers=viewer)
    [event] = resp.json()["data"]
    assert event["message"] == "payment declined" and event["level"] == "WARNING"
    assert event["tenant_id"] == tenant
    assert event["attributes"]["otel.scope.name"] == f"shop.{tenant}"
    assert event["attributes"]["deployment.environment"] == "test"
    assert event["attributes"]["code.function.name"] == "ship_with_stdlib_logging"
    assert await stored_total(api.http, other_viewer) == 0  # the key's tenant, no other

    # A wrong secret: the exporter is refused, nothing is stored anywhere.
    writer_id, _ = await api.key(tenant, "writer")
    otlp_env(monkeypatch, cfg, (writer_id, "not-the-secret"))
    refused = await asyncio.to_thread(
        ship_with_stdlib_logging, f"shop.{tenant}", [(logging.ERROR, "intruder", {})]
    )
    assert refused == [LogRecordExportResult.FAILURE]
    await queue_drained(cfg)
    assert await stored_total(api.http, viewer) == 3  # each stored once, the intruder not


def otlp_request(*records: dict) -> ExportLogsServiceRequest:
    request = ExportLogsServiceRequest()
    rl = request.resource_logs.add()
    rl.resource.attributes.append(KeyValue(key="service.name", value=AnyValue(string_value="raw")))
    log_records = rl.scope_logs.add().log_records
    for record in records:
        entry = log_records.add()
        entry.body.string_value = record["body"]
        for key, value in record.get("attributes", {}).items():
            entry.attributes.append(KeyValue(key=key, value=AnyValue(string_value=value)))
    return request


async def test_idempotency_partial_success_and_malformed_requests(
    api: Api, cfg: StackConfig
) -> None:
    tenant = await api.tenant("otel-raw")
    writer = basic(*await api.key(tenant, "writer"))
    viewer = bearer(await api.token(*await api.key(tenant, "viewer")))
    url = "/otlp/v1/logs"

    # log.record.uid is the event id: the same record sent twice is stored once
    twice = otlp_request({"body": "once", "attributes": {"log.record.uid": "uid-1"}})
    for _ in range(2):
        resp = await api.http.post(
            url, content=twice.SerializeToString(), headers=writer | PROTOBUF
        )
        assert resp.status_code == 200, resp.text

    # a record the store cannot hold is refused alone, in partial_success
    partial = otlp_request({"body": "kept"}, {"body": "x" * 70_000})
    resp = await api.http.post(url, content=partial.SerializeToString(), headers=writer | PROTOBUF)
    assert resp.status_code == 200
    answer = ExportLogsServiceResponse.FromString(resp.content)
    assert answer.partial_success.rejected_log_records == 1

    bomb = gzip.compress(b"\0" * (11 * 1024 * 1024))
    oversized = otlp_request(*({"body": "m"} for _ in range(10_001))).SerializeToString()
    for content, headers, status in (
        (b"\xff\xff not protobuf", PROTOBUF, 400),
        (b"not gzip", PROTOBUF | {"Content-Encoding": "gzip"}, 400),
        (bomb, PROTOBUF | {"Content-Encoding": "gzip"}, 413),
        (oversized, PROTOBUF, 413),
        (b"{", {"Content-Type": "application/json"}, 400),
        (b"hello", {"Content-Type": "text/plain"}, 415),
    ):
        resp = await api.http.post(url, content=content, headers=writer | headers)
        assert resp.status_code == status, (status, resp.text)

    await queue_drained(cfg)
    assert await stored_total(api.http, viewer) == 2  # "once" and "kept"
    assert await stored_total(api.http, viewer, q="once") == 1
