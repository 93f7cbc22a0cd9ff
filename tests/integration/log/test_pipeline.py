"""The pipeline's promises: accepted ⇒ stored exactly once; poison ⇒ dead-letter queue;
retention sweeps; stored events are published for live tail."""

from __future__ import annotations

import asyncio
import signal
from datetime import UTC, datetime, timedelta

import httpx
import orjson
import pytest
import redis.asyncio as aioredis
from prometheus_client.parser import text_string_to_metric_families

from services.cli.stack import ProcessGroup, StackConfig
from services.core.logs import envelope
from tests.integration.conftest import Api, bearer
from tests.integration.helpers import eventually, ingest, sqs_client, stored_total

pytestmark = pytest.mark.integration


async def test_accepted_is_stored_exactly_once_across_a_worker_crash(
    api: Api, stack: ProcessGroup
) -> None:
    tenant = await api.tenant("x")
    tokens = await api.role_tokens(tenant)
    writer, reader = bearer(tokens["writer"]), bearer(tokens["viewer"])
    # 10,000 events; every 10th repeats an earlier id (a client retry).
    events = []
    for i in range(10_000):
        event_id = f"r{i - 5}" if i % 10 == 9 else f"r{i}"
        events.append({"id": event_id, "message": f"event {i}", "service": "load"})
    unique = {e["id"] for e in events}
    assert len(unique) == 9_000

    async def post(chunk: list[dict]) -> list[str]:
        resp = await api.http.post("/api/v1/logs/bulk", json=chunk, headers=writer)
        assert resp.status_code == 202, resp.text
        return resp.json()["ids"]

    chunks = [events[i : i + 500] for i in range(0, len(events), 500)]
    accepted: list[str] = []
    for ids in await asyncio.gather(*(post(c) for c in chunks[:10])):
        accepted += ids
    stack.stop("worker", sig=signal.SIGKILL)  # mid-stream, batches in hand are lost
    for ids in await asyncio.gather(*(post(c) for c in chunks[10:])):
        accepted += ids
    stack.start("worker")
    stack.wait(["worker"], timeout=60)
    assert set(accepted) == unique

    async def all_stored():
        return await stored_total(api.http, reader) == len(unique)

    await eventually(all_stored, within=180, every=1.0)
    # and nothing more arrives later from redeliveries
    assert await stored_total(api.http, reader, service="load") == len(unique)


async def test_poison_message_reaches_the_dead_letter_queue(cfg: StackConfig) -> None:
    async with sqs_client(cfg) as sqs:
        url = (await sqs.get_queue_url(QueueName="logserver-events"))["QueueUrl"]
        dlq = (await sqs.get_queue_url(QueueName="logserver-events-dlq"))["QueueUrl"]
        marker = f"poison-{datetime.now(UTC).timestamp()}"
        await sqs.send_message(QueueUrl=url, MessageBody=f'{{"v": 1, "oops": "{marker}"}}')

        async def dead_lettered():
            resp = await sqs.receive_message(
                QueueUrl=dlq, WaitTimeSeconds=1, MaxNumberOfMessages=10, VisibilityTimeout=0
            )
            return any(marker in m["Body"] for m in resp.get("Messages", []))

        # 5 receives by the worker, 2 s visibility each
        await eventually(dead_lettered, within=90, every=1.0)


async def test_retention_sweep_deletes_only_expired_events(api: Api) -> None:
    # Ingest refuses events older than the retention, so both are stored under a
    # longer one, which is then shortened: the sweep applies the new one.
    tenant = await api.tenant("ret", retention_days=7)
    tokens = await api.role_tokens(tenant)
    now = datetime.now(UTC)
    old = (now - timedelta(days=3)).isoformat()
    fresh = (now - timedelta(days=1)).isoformat()
    await ingest(
        api.http,
        bearer(tokens["writer"]),
        [
            {"id": "expired", "timestamp": old, "message": "old"},
            {"id": "kept", "timestamp": fresh, "message": "new"},
        ],
        bearer(tokens["viewer"]),
    )
    resp = await api.http.patch(
        f"/api/v1/tenants/{tenant}", json={"retention_days": 2}, headers=api.admin
    )
    assert resp.status_code == 200

    async def only_fresh_left():
        r = await api.http.get("/api/v1/logs", headers=bearer(tokens["viewer"]))
        ids = [e["id"] for e in r.json()["data"]]
        return ids == ["kept"]

    # The test stack sweeps every 5 s, yet this took 68 s in a full run of this file
    # (FerretDB, holding the other tests' 10,000 events): a generous bound.
    await eventually(only_fresh_left, within=180)


async def worker_metric(cfg: StackConfig, name: str) -> float:
    async with httpx.AsyncClient(base_url=cfg.service_url("worker"), timeout=10) as http:
        text = (await http.get("/metrics")).text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and not sample.labels:
                return sample.value
    raise AssertionError(f"{name} is not in the worker's /metrics")


async def test_messages_the_storage_refuses_are_counted_as_dead_lettered(
    api: Api, cfg: StackConfig, stack: ProcessGroup
) -> None:
    """A message that fails on its last receive is counted, the DLQ's depth is shown,
    and the worker goes on storing (an unencodable one used to kill its consumer loop)."""
    dead = "logserver_worker_messages_dead_lettered_total"
    dead_before = await worker_metric(cfg, dead)
    marker = f"refused-{datetime.now(UTC).timestamp()}"
    stamp = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")

    def body(event_id: str, attributes: dict) -> str:
        event = {"id": event_id, "timestamp": stamp, "received_at": stamp, "level": "INFO"}
        event |= {"message": marker, "attributes": attributes}
        return envelope.encode("dlq-test", [orjson.dumps(event)])

    bodies = {f"{marker}-int": body(f"{marker}-int", {"n": 2**63})}  # the driver refuses
    storage = stack.specs.get("mongodb")
    if storage is not None and "ferretdb" in storage.argv[0]:
        # FerretDB v1 refuses arrays inside arrays (MongoDB would store this one)
        bodies[f"{marker}-nested"] = body(f"{marker}-nested", {"x": [[1, 2]]})
    async with sqs_client(cfg) as sqs:
        url = (await sqs.get_queue_url(QueueName="logserver-events"))["QueueUrl"]
        dlq = (await sqs.get_queue_url(QueueName="logserver-events-dlq"))["QueueUrl"]
        for text in bodies.values():
            await sqs.send_message(QueueUrl=url, MessageBody=text)

        async def counted():
            return await worker_metric(cfg, dead) >= dead_before + len(bodies)

        await eventually(counted, within=90, every=1.0)  # 5 receives, 2 s visibility each

        in_dlq: set[str] = set()

        async def all_in_dlq():
            resp = await sqs.receive_message(
                QueueUrl=dlq, WaitTimeSeconds=1, MaxNumberOfMessages=10, VisibilityTimeout=0
            )
            for m in resp.get("Messages", []):
                try:
                    _, events = envelope.decode(m["Body"])
                except envelope.EnvelopeError:  # another test's poison message
                    continue
                in_dlq.update(
                    e["id"] for e in events if isinstance(e, dict) and e.get("id") in bodies
                )
            return in_dlq == set(bodies)

        await eventually(all_in_dlq, within=60, every=0.5)

    async def depth_shown():
        return await worker_metric(cfg, "logserver_dead_letter_messages") >= len(bodies)

    await eventually(depth_shown, within=30)  # sampled every second in the test stack

    tenant = await api.tenant("after-dlq")
    tokens = await api.role_tokens(tenant)
    await ingest(
        api.http,
        bearer(tokens["writer"]),
        [{"id": "still-stored", "message": "m"}],
        bearer(tokens["viewer"]),
    )


async def test_stored_events_are_published_to_the_tenant_channel(
    api: Api, cfg: StackConfig
) -> None:
    tenant = await api.tenant("pub")
    writer = await api.token(*await api.key(tenant, "writer"))
    r = aioredis.from_url(cfg.redis_url)
    pubsub = r.pubsub()
    try:
        await pubsub.subscribe(f"logs:{tenant}")
        await pubsub.get_message(timeout=2)
        resp = await api.http.post(
            "/api/v1/logs", json={"id": "live-1", "message": "hi"}, headers=bearer(writer)
        )
        assert resp.status_code == 202

        async def published():
            msg = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1)
            return orjson.loads(msg["data"]) if msg else None

        events = await eventually(published, within=30)
        assert [e["id"] for e in events] == ["live-1"]
        assert events[0]["message"] == "hi"
    finally:
        await pubsub.aclose()
        await r.aclose()
