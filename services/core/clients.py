"""Backend clients, created once per process by the app lifespan and closed on shutdown."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aioboto3
import redis.asyncio as redis
from botocore.config import Config
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

from services.core.settings import CoreSettings


def make_mongo(settings: CoreSettings) -> AsyncMongoClient:
    # Short server selection: a lost MongoDB must surface as a 503 quickly, not hang a request.
    return AsyncMongoClient(
        settings.mongodb_url,
        serverSelectionTimeoutMS=2000,
        connectTimeoutMS=2000,
        tz_aware=True,
        appname=settings.service_name,
    )


def make_redis(settings: CoreSettings) -> redis.Redis:
    return redis.from_url(
        settings.redis_url,
        socket_connect_timeout=2,
        health_check_interval=15,
        retry_on_timeout=True,
    )


class SqsQueues:
    """An aioboto3 SQS client plus the resolved URLs of the main and dead-letter queues."""

    def __init__(self, settings: CoreSettings) -> None:
        self.settings = settings
        self._stack = contextlib.AsyncExitStack()
        self.client: Any = None
        self._urls: dict[str, str] = {}
        self._lock = asyncio.Lock()

    async def open(self) -> None:
        s = self.settings
        session = aioboto3.Session()
        creds = {}
        if s.sqs_access_key_id:
            creds = {
                "aws_access_key_id": s.sqs_access_key_id,
                "aws_secret_access_key": s.sqs_secret_access_key or "",
            }
        elif s.sqs_endpoint:
            # ElasticMQ ignores credentials but botocore refuses to sign without some.
            creds = {"aws_access_key_id": "local", "aws_secret_access_key": "local"}
        config = Config(
            connect_timeout=2,
            read_timeout=30,  # above the 20 s long poll
            retries={"max_attempts": 2, "mode": "standard"},
            max_pool_connections=64,
        )
        self.client = await self._stack.enter_async_context(
            session.client(
                "sqs", endpoint_url=s.sqs_endpoint, region_name=s.sqs_region, config=config, **creds
            )
        )

    async def close(self) -> None:
        await self._stack.aclose()

    async def url(self, name: str | None = None) -> str:
        name = name or self.settings.sqs_queue_name
        if name not in self._urls:
            async with self._lock:
                if name not in self._urls:
                    resp = await self.client.get_queue_url(QueueName=name)
                    self._urls[name] = resp["QueueUrl"]
        return self._urls[name]

    async def dlq_url(self) -> str:
        return await self.url(self.settings.sqs_dlq_name)


@dataclass
class Clients:
    """The backends a service opened. Absent ones stay ``None``."""

    mongo: AsyncMongoClient | None = None
    db: AsyncDatabase | None = None
    sqs: SqsQueues | None = None
    redis: redis.Redis | None = None
    closers: list[Callable[[], Awaitable[Any]]] = field(default_factory=list)

    @classmethod
    async def open(cls, settings: CoreSettings, needs: frozenset[str]) -> Clients:
        clients = cls()
        if "mongo" in needs:
            clients.mongo = make_mongo(settings)
            clients.db = clients.mongo[settings.mongodb_database]
        if "sqs" in needs:
            clients.sqs = SqsQueues(settings)
            await clients.sqs.open()
        # Every service gets Redis, at least to publish its errors on `logserver:errors`.
        clients.redis = make_redis(settings)
        return clients

    async def close(self) -> None:
        for closer in reversed(self.closers):
            await closer()
        if self.sqs:
            await self.sqs.close()
        if self.redis:
            await self.redis.aclose()
        if self.mongo:
            await self.mongo.close()
