"""Searches, counts and stats are bounded by maxTimeMS; a stopped query is a 504."""

from __future__ import annotations

from typing import Any

import pytest
from pymongo.errors import ExecutionTimeout

from services.core.errors import QueryTimeout
from services.core.logs.filters import parse_params
from services.log.repository import LogRepository


class Cursor:
    def __init__(self, fail: bool) -> None:
        self.fail = fail

    def sort(self, *_: Any) -> Cursor:
        return self

    def skip(self, _: int) -> Cursor:
        return self

    def limit(self, _: int) -> Cursor:
        return self

    async def to_list(self) -> list[dict[str, Any]]:
        if self.fail:
            raise ExecutionTimeout("operation exceeded time limit", 50)
        return []


class Logs:
    def __init__(self, fail: bool = False, fail_count: bool = False) -> None:
        self.fail = fail
        self.fail_count = fail_count
        self.max_times: list[int] = []

    def find(self, _query: dict[str, Any], max_time_ms: int) -> Cursor:
        self.max_times.append(max_time_ms)
        return Cursor(self.fail)

    async def count_documents(self, _query: dict[str, Any], limit: int, maxTimeMS: int) -> int:
        self.max_times.append(maxTimeMS)
        if self.fail_count:
            raise ExecutionTimeout("operation exceeded time limit", 50)
        return 0

    async def aggregate(self, _pipeline: list[Any], maxTimeMS: int) -> Cursor:
        self.max_times.append(maxTimeMS)
        return Cursor(self.fail)


def repo(logs: Logs, seconds: float = 2.5) -> LogRepository:
    # the event path: rollups are covered by tests/unit/core/logs/rollups/
    return LogRepository({"logs": logs}, query_timeout_seconds=seconds, use_rollups=False)  # type: ignore[arg-type]


FILTER = parse_params([("service", "api")], frozenset()).filter


async def test_every_query_carries_the_time_limit() -> None:
    logs = Logs()
    r = repo(logs)
    await r.search("acme", FILTER, with_total=True)
    await r.stats("acme", FILTER, by="level", interval="1h")  # one aggregation
    assert logs.max_times == [2500, 2500, 2500]


@pytest.mark.parametrize("call", ["search", "count", "stats"])
async def test_a_stopped_query_is_a_504_with_advice(call: str) -> None:
    r = repo(Logs(fail=call != "count", fail_count=call == "count"))
    with pytest.raises(QueryTimeout) as info:
        if call == "stats":
            await r.stats("acme", FILTER, by="level", interval=None)
        else:
            await r.search("acme", FILTER, with_total=call == "count")
    assert info.value.status == 504
    assert "2.5 s" in info.value.detail and "time range" in info.value.detail
