"""The foundation's wiring: health, readiness, backends round-trips, gateway routes."""

from __future__ import annotations

import uuid

import httpx
import orjson
import pytest
import redis.asyncio as aioredis
from pymongo import AsyncMongoClient
from pymongo.errors import DuplicateKeyError

from services.cli.stack import SERVICES, ProcessGroup, StackConfig
from services.core.errorbus import ERRORS_CHANNEL
from tests.integration.conftest import Api, bearer
from tests.integration.helpers import eventually, sqs_client

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("service", SERVICES)
async def test_every_service_answers_health_ready_metrics(cfg: StackConfig, service: str) -> None:
    async with httpx.AsyncClient(base_url=cfg.service_url(service), timeout=10) as c:
        health = await c.get("/healthz")
        assert health.status_code == 200
        assert health.json() == {"status": "ok", "service": service}
        ready = await c.get("/readyz")
        assert ready.status_code == 200, ready.text
        assert all(v == "ok" for v in ready.json()["checks"].values())
        metrics = await c.get("/metrics")
        assert metrics.status_code == 200
        assert f'service="{service}"' in metrics.text
        assert "logserver_http_requests_total" in metrics.text


@pytest.mark.parametrize(
    ("backend", "service", "check"),
    [
        ("redis", "broadcast", "redis"),
        ("mongodb", "tenant", "mongodb"),
        ("elasticmq", "log", "sqs"),
    ],
)
async def test_readyz_follows_its_backend(
    stack: ProcessGroup, cfg: StackConfig, backend: str, service: str, check: str
) -> None:
    if backend not in stack.specs:
        pytest.fail(f"{backend} is external here; this test needs the stack to run it")
    async with httpx.AsyncClient(base_url=cfg.service_url(service), timeout=10) as c:

        async def up():
            r = await c.get("/readyz")
            return r if r.status_code == 200 else None

        await eventually(up, within=60)  # an earlier test may have restarted a backend
        stack.stop(backend)
        try:

            async def down():
                r = await c.get("/readyz")
                return r if r.status_code == 503 else None

            resp = await eventually(down, within=20)
            body = resp.json()
            assert resp.headers["content-type"] == "application/problem+json"
            assert body["checks"][check] != "ok"
            assert check in body["detail"]
        finally:
            stack.start(backend)
            stack.wait([backend], timeout=90)
        await eventually(up, within=60)


async def test_lost_backend_is_published_on_the_error_channel(
    stack: ProcessGroup, cfg: StackConfig
) -> None:
    r = aioredis.from_url(cfg.redis_url)
    pubsub = r.pubsub()
    await pubsub.subscribe(ERRORS_CHANNEL)
    await pubsub.get_message(timeout=1)  # subscribe confirmation
    stack.stop("mongodb")
    try:
        async with httpx.AsyncClient(base_url=cfg.service_url("auth"), timeout=10) as c:
            # auth stays ready (its JWKS needs only the keys) but reports the loss
            ready = await c.get("/readyz")
            assert ready.status_code == 200, ready.text
            assert ready.json()["checks"]["mongodb"] != "ok"

        async def message():
            msg = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1)
            if msg:
                event = orjson.loads(msg["data"])
                if event["service"] == "auth" and event.get("dependency") == "mongodb":
                    return event
            return None

        event = await eventually(message, within=15)
        assert event["kind"] == "dependency_lost"
    finally:
        stack.start("mongodb")
        stack.wait(["mongodb"], timeout=60)
        await pubsub.aclose()
        await r.aclose()


async def test_mongodb_wire_round_trip_and_unique_index(cfg: StackConfig) -> None:
    client = AsyncMongoClient(cfg.mongodb_url, serverSelectionTimeoutMS=20000)
    try:
        coll = client["wiring_test"][f"docs_{uuid.uuid4().hex[:8]}"]
        await coll.create_index([("tenant_id", 1), ("id", 1)], unique=True)
        await coll.insert_one({"tenant_id": "a", "id": "1", "message": "hello"})
        doc = await coll.find_one({"tenant_id": "a", "id": "1"})
        assert doc is not None and doc["message"] == "hello"
        with pytest.raises(DuplicateKeyError):
            await coll.insert_one({"tenant_id": "a", "id": "1", "message": "again"})
        await coll.insert_one({"tenant_id": "b", "id": "1", "message": "other tenant"})
        assert await coll.count_documents({}) == 2
    finally:
        await client.close()


async def test_queue_round_trip_and_dead_letter_after_configured_receives(
    cfg: StackConfig,
) -> None:
    async with sqs_client(cfg) as sqs:
        main_url = (await sqs.get_queue_url(QueueName="logserver-events"))["QueueUrl"]
        attrs = await sqs.get_queue_attributes(QueueUrl=main_url, AttributeNames=["All"])
        redrive = orjson.loads(attrs["Attributes"]["RedrivePolicy"])
        assert int(redrive["maxReceiveCount"]) == 5
        assert redrive["deadLetterTargetArn"].endswith("logserver-events-dlq")

        # Same redrive, on a private queue, so the running worker does not consume it.
        name = f"wiring-{uuid.uuid4().hex[:8]}"
        dlq_url = (await sqs.create_queue(QueueName=f"{name}-dlq"))["QueueUrl"]
        dlq_arn = (await sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"]))[
            "Attributes"
        ]["QueueArn"]
        url = (
            await sqs.create_queue(
                QueueName=name,
                Attributes={
                    "RedrivePolicy": orjson.dumps(
                        {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "5"}
                    ).decode()
                },
            )
        )["QueueUrl"]
        await sqs.send_message(QueueUrl=url, MessageBody='{"hello": "queue"}')
        for attempt in range(1, 6):
            resp = await sqs.receive_message(
                QueueUrl=url, WaitTimeSeconds=5, VisibilityTimeout=0, MaxNumberOfMessages=1
            )
            msgs = resp.get("Messages", [])
            assert len(msgs) == 1, f"receive {attempt} got nothing"
            assert orjson.loads(msgs[0]["Body"]) == {"hello": "queue"}
        resp = await sqs.receive_message(QueueUrl=url, WaitTimeSeconds=1, VisibilityTimeout=0)
        assert resp.get("Messages", []) == []
        dead = await sqs.receive_message(QueueUrl=dlq_url, WaitTimeSeconds=5)
        assert [orjson.loads(m["Body"]) for m in dead["Messages"]] == [{"hello": "queue"}]


async def test_redis_publish_reaches_a_subscriber(cfg: StackConfig) -> None:
    r = aioredis.from_url(cfg.redis_url)
    pubsub = r.pubsub()
    channel = f"wiring:{uuid.uuid4().hex}"
    try:
        await pubsub.subscribe(channel)
        assert (await pubsub.get_message(timeout=2))["type"] == "subscribe"
        assert await r.publish(channel, b"ping") == 1

        async def got():
            return await pubsub.get_message(ignore_subscribe_messages=True, timeout=1)

        msg = await eventually(got, within=5)
        assert msg["data"] == b"ping"
    finally:
        await pubsub.aclose()
        await r.aclose()


@pytest.mark.parametrize(
    ("path", "service"),
    [
        ("/api/v1/auth/does-not-exist", "auth"),
        ("/.well-known/jwks.json", "auth"),
        ("/api/v1/tenants/does-not-exist/x/y", "tenant"),
        ("/api/v1/logs/stream", "broadcast"),
        # An event id that starts like the stream's path is the log service's.
        ("/api/v1/logs/stream-1", "log"),
        ("/api/v1/logs/does-not-exist/x", "log"),
    ],
)
async def test_gateway_routes_each_prefix_to_its_service(
    gateway: httpx.AsyncClient, path: str, service: str
) -> None:
    resp = await gateway.get(path)
    assert resp.headers.get("x-served-by") == service, (resp.status_code, resp.text)


async def test_gateway_rejects_unknown_paths_with_problem_json(gateway: httpx.AsyncClient) -> None:
    resp = await gateway.get("/nowhere")
    assert resp.status_code == 404
    assert resp.headers["content-type"] == "application/problem+json"
    assert resp.json()["status"] == 404


async def test_a_mongodb_outage_keeps_ingest_in_the_load_balancer(
    stack: ProcessGroup, cfg: StackConfig, api: Api
) -> None:
    """Readiness follows what each service needs for its own traffic: without MongoDB
    the log service stays ready and keeps accepting into SQS on its cached token
    checks; the tenant service (all MongoDB) goes unready; every /readyz reports the loss."""
    if "mongodb" not in stack.specs:
        pytest.fail("mongodb is external here; this test needs the stack to run it")
    tenant = await api.tenant("outage")
    tokens = await api.role_tokens(tenant)
    writer, reader = bearer(tokens["writer"]), bearer(tokens["viewer"])
    # one accepted event first: the log service caches the writer's credential status
    first = await api.http.post("/api/v1/logs", json={"message": "before"}, headers=writer)
    assert first.status_code == 202, first.text
    stack.stop("mongodb")
    try:
        async with (
            httpx.AsyncClient(base_url=cfg.service_url("log"), timeout=10) as log_svc,
            httpx.AsyncClient(base_url=cfg.service_url("tenant"), timeout=10) as tenant_svc,
        ):

            async def tenant_unready():
                r = await tenant_svc.get("/readyz")
                return r if r.status_code == 503 else None

            await eventually(tenant_unready, within=20)
            ready = await log_svc.get("/readyz")
            assert ready.status_code == 200, ready.text
            body = ready.json()
            assert body["status"] == "degraded"
            assert body["checks"]["sqs"] == "ok" and body["checks"]["mongodb"] != "ok"
            assert body["required"] == ["sqs"] and "mongodb" in body["degraded"]
            metrics = (await log_svc.get("/metrics")).text
            assert (
                'logserver_dependency_up{dependency="mongodb",required="false",service="log"} 0.0'
                in metrics
            )
            during = await api.http.post(
                "/api/v1/logs", json={"message": "during the outage"}, headers=writer
            )
            assert during.status_code == 202, during.text
    finally:
        stack.start("mongodb")
        stack.wait(["mongodb"], timeout=90)

    # Both accepted events end up stored. Looked up by id: the storage's own `_id`
    # lookup, not a count that FerretDB answers by reading every event of the suite.
    ids = [first.json()["id"], during.json()["id"]]

    async def stored():
        for event_id in ids:
            try:
                resp = await api.http.get(f"/api/v1/logs/{event_id}", headers=reader)
            except httpx.TimeoutException:
                return False  # the log service may still be reconnecting
            if resp.status_code != 200:
                return False
        return True

    await eventually(stored, within=90)
