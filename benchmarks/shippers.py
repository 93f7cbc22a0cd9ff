"""Scenario shippers: log shipper protocols beside our own bulk, accepted events/s and the
log service's CPU per 1,000 events, 1,000 records per request.

The same generated events (``logserver generate``'s generator) are encoded once
per protocol as its shippers send them: our bulk JSON (bearer token, and again
with the API key sent as HTTP Basic, to show the cost of a secret check), OTLP
protobuf, Loki snappy protobuf, Elasticsearch NDJSON (all three with HTTP
Basic). The protocols run in interleaved rounds, so a change of background load
on the shared machine hits them alike. CPU is the log service process's own
(utime + stime from ``/proc/<pid>/stat``) over each protocol's requests, so the
load generator's CPU is not counted.

    BENCH_CONFIG=cfg.json python benchmarks/shippers.py
"""

from __future__ import annotations

import asyncio
import base64
import os
import time
from collections import Counter
from pathlib import Path
from typing import Any

import cramjam
import httpx
import orjson
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue

from benchmarks.common import load_config, percentiles, write_summary
from services.cli.generate import EventGenerator
from services.core.logs.model import parse_iso
from services.log.shippers.loki import PushRequest

PROTOCOLS = ("bulk", "bulk_basic", "otlp", "loki", "elastic")
SEVERITY = {"DEBUG": 5, "INFO": 9, "WARNING": 13, "ERROR": 17, "CRITICAL": 21}
LIFTED = ("timestamp", "level", "message", "service", "host", "trace_id", "span_id")


def _nanos(event: dict[str, Any]) -> int:
    return int(parse_iso(event["timestamp"]).timestamp() * 1000) * 1_000_000


def _rest(event: dict[str, Any]) -> dict[str, Any]:
    """Everything but the lifted fields, flattened one level as shippers send them."""
    out: dict[str, Any] = {}
    for key, value in event.items():
        if key in LIFTED:
            continue
        if key == "attributes":
            out.update(value)
        else:
            out[key] = value
    return out


def _any(value: Any, into: AnyValue) -> None:
    if isinstance(value, bool):
        into.bool_value = value
    elif isinstance(value, int):
        into.int_value = value
    elif isinstance(value, float):
        into.double_value = value
    elif isinstance(value, dict):
        for k, v in value.items():
            kv = into.kvlist_value.values.add(key=k)
            _any(v, kv.value)
    elif isinstance(value, list):
        for v in value:
            _any(v, into.array_value.values.add())
    else:
        into.string_value = str(value)


def otlp_body(events: list[dict[str, Any]]) -> bytes:
    request = ExportLogsServiceRequest()
    by_service: dict[tuple[str, str], Any] = {}
    for event in events:
        key = (event.get("service", "unknown"), event.get("host", ""))
        if key not in by_service:
            rl = request.resource_logs.add()
            rl.resource.attributes.add(key="service.name").value.string_value = key[0]
            rl.resource.attributes.add(key="host.name").value.string_value = key[1]
            by_service[key] = rl.scope_logs.add().log_records
        record = by_service[key].add()
        record.time_unix_nano = _nanos(event)
        record.severity_number = SEVERITY[event.get("level", "INFO")]
        record.severity_text = event.get("level", "INFO")
        record.body.string_value = event.get("message") or event.get("action", "")
        if "trace_id" in event:
            record.trace_id = bytes.fromhex(event["trace_id"])
            record.span_id = bytes.fromhex(event["span_id"])
        for key, value in _rest(event).items():
            _any(value, record.attributes.add(key=key).value)
    return request.SerializeToString()


def loki_body(events: list[dict[str, Any]]) -> bytes:
    request = PushRequest()
    streams: dict[tuple[str, str], Any] = {}
    for event in events:
        labels = (event.get("service", "unknown"), event.get("level", "INFO").lower())
        if labels not in streams:
            stream = request.streams.add()
            stream.labels = f'{{service_name="{labels[0]}", level="{labels[1]}"}}'.encode()
            streams[labels] = stream
        entry = streams[labels].entries.add()
        entry.timestamp.seconds, entry.timestamp.nanos = divmod(_nanos(event), 1_000_000_000)
        entry.line = (event.get("message") or event.get("action", "")).encode()
        for key, value in _rest(event).items():
            if isinstance(value, str):
                entry.structuredMetadata.add(name=key.encode(), value=value.encode())
    return bytes(cramjam.snappy.compress_raw(request.SerializeToString()))


def elastic_body(events: list[dict[str, Any]]) -> bytes:
    lines = []
    for event in events:
        doc = {
            "@timestamp": event["timestamp"],
            "message": event.get("message") or event.get("action", ""),
            "log.level": event.get("level", "INFO").lower(),
            "service.name": event.get("service", "unknown"),
            "host.name": event.get("host", ""),
            **({"trace.id": event["trace_id"]} if "trace_id" in event else {}),
            **_rest(event),
        }
        lines.append(b'{"create":{"_index":"bench"}}')
        lines.append(orjson.dumps(doc))
    return b"\n".join(lines) + b"\n"


def bodies(seed: int, batch: int, count: int) -> dict[str, list[bytes]]:
    sets = [EventGenerator(seed + i).batch(batch) for i in range(count)]
    # our bulk gets the generator's own shape; the others what their shippers send
    return {
        "bulk": [orjson.dumps(events) for events in sets],
        "bulk_basic": [orjson.dumps(events) for events in sets],
        "otlp": [otlp_body(events) for events in sets],
        "loki": [loki_body(events) for events in sets],
        "elastic": [elastic_body(events) for events in sets],
    }


def request_for(protocol: str, token: str, basic: str) -> tuple[str, dict[str, str]]:
    bearer = {"Authorization": f"Bearer {token}"}
    key = {"Authorization": f"Basic {basic}"}
    return {
        "bulk": ("/api/v1/logs/bulk", bearer | {"Content-Type": "application/json"}),
        "bulk_basic": ("/api/v1/logs/bulk", key | {"Content-Type": "application/json"}),
        "otlp": ("/otlp/v1/logs", key | {"Content-Type": "application/x-protobuf"}),
        "loki": ("/loki/api/v1/push", key | {"Content-Type": "application/x-protobuf"}),
        "elastic": ("/es/_bulk", key | {"Content-Type": "application/x-ndjson"}),
    }[protocol]


def cpu_seconds(pid: int | None) -> float | None:
    """utime + stime of ``pid`` (the log service), in seconds."""
    if not pid:
        return None
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Tally:
    def __init__(self) -> None:
        self.requests = 0
        self.events = 0
        self.errors: Counter[str] = Counter()
        self.seconds = 0.0
        self.cpu = 0.0
        self.latencies: list[float] = []

    def summary(self, batch: int) -> dict[str, Any]:
        per_k = self.cpu / (self.events / 1000) * 1000 if self.events else None
        return {
            "requests": self.requests,
            "events": self.events,
            "errors": sum(self.errors.values()),
            "error_samples": dict(self.errors),
            "seconds": round(self.seconds, 3),
            "events_per_s": round(self.events / self.seconds, 1) if self.seconds else None,
            "log_cpu_seconds": round(self.cpu, 3),
            "log_cpu_ms_per_1000_events": round(per_k, 2) if per_k is not None else None,
            "latency_ms": percentiles(self.latencies),
            "batch": batch,
        }


async def run_round(
    http: httpx.AsyncClient,
    protocol: str,
    payloads: list[bytes],
    requests: int,
    users: int,
    headers: tuple[str, dict[str, str]],
    tally: Tally,
    pid: int | None,
    batch: int,
) -> None:
    path, head = headers
    queue = iter(range(requests))

    async def user(offset: int) -> None:
        for i in queue:
            body = payloads[(i + offset) % len(payloads)]
            started = time.perf_counter()
            try:
                resp = await http.post(path, content=body, headers=head)
            except httpx.HTTPError as exc:
                tally.errors[type(exc).__name__] += 1
                continue
            tally.latencies.append((time.perf_counter() - started) * 1000)
            tally.requests += 1
            ok = resp.status_code in (200, 202, 204)
            if ok and protocol == "elastic":
                ok = not resp.json().get("errors")
            if ok and protocol == "otlp":
                answer = ExportLogsServiceResponse.FromString(resp.content)
                ok = answer.partial_success.rejected_log_records == 0
            if ok:
                tally.events += batch
            else:
                tally.errors[f"{resp.status_code} {resp.text[:120]}"] += 1

    cpu_before = cpu_seconds(pid)
    started = time.perf_counter()
    await asyncio.gather(*(user(n) for n in range(users)))
    tally.seconds += time.perf_counter() - started
    cpu_after = cpu_seconds(pid)
    if cpu_before is not None and cpu_after is not None:
        tally.cpu += cpu_after - cpu_before


async def main() -> None:
    cfg = load_config()
    batch, users, rounds = cfg.get("batch", 1000), cfg.get("users", 4), cfg.get("rounds", 3)
    per_round = max(1, cfg["requests"] // rounds)
    payloads = bodies(cfg.get("seed", 1), batch, 4)
    client_id, secret = cfg["writer_key"]
    basic = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    token = cfg["writer_tokens"][0]
    tallies = {p: Tally() for p in PROTOCOLS}
    limits = httpx.Limits(max_connections=users, max_keepalive_connections=users)
    async with httpx.AsyncClient(base_url=cfg["url"], timeout=120, limits=limits) as http:
        for p in PROTOCOLS:  # warm up: first requests pay for imports and caches
            await run_round(
                http, p, payloads[p], 1, 1, request_for(p, token, basic), Tally(), None, batch
            )
        for _ in range(rounds):
            for p in PROTOCOLS:
                await run_round(
                    http,
                    p,
                    payloads[p],
                    per_round,
                    users,
                    request_for(p, token, basic),
                    tallies[p],
                    cfg.get("log_pid"),
                    batch,
                )
    summary = {p: t.summary(batch) for p, t in tallies.items()}
    base = summary["bulk"]["log_cpu_ms_per_1000_events"]
    for s in summary.values():
        mine = s["log_cpu_ms_per_1000_events"]
        s["cpu_ratio_to_bulk"] = round(mine / base, 2) if mine and base else None
    write_summary(
        cfg["summary_path"],
        {"protocols": summary, "rounds": rounds, "users": users, "log_pid": cfg.get("log_pid")},
    )


if __name__ == "__main__":
    asyncio.run(main())
