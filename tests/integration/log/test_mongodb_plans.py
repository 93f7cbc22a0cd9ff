"""On MongoDB, every query the repository builds walks an index and sorts nothing in
memory (collected only when `mongod` is on PATH: see conftest.py)."""

from __future__ import annotations

from typing import Any

import pytest
from pymongo import AsyncMongoClient

from services.cli.stack import StackConfig
from services.core.logs.model import LOGS
from tests.integration.conftest import Api, bearer
from tests.integration.helpers import ingest
from tests.unit.core.test_repository import every_query

pytestmark = pytest.mark.integration


def stages(plan: dict[str, Any]) -> list[str]:
    out = [plan.get("stage", "")]
    for key in ("inputStage", "queryPlan"):
        if key in plan:
            out += stages(plan[key])
    for child in plan.get("inputStages", []):
        out += stages(child)
    return out


async def test_every_query_uses_an_index_without_an_in_memory_sort(
    api: Api, cfg: StackConfig
) -> None:
    tenant = await api.tenant("plans")
    tokens = await api.role_tokens(tenant)
    events = [{"id": f"p{i}", "message": "x", "level": "info", "service": "s"} for i in range(50)]
    await ingest(api.http, bearer(tokens["writer"]), events, bearer(tokens["viewer"]))
    client = AsyncMongoClient(cfg.mongodb_url)
    db = client["logserver"]
    try:
        info = await client.admin.command("buildInfo")
        assert "ferretdbVersion" not in info, "the stack should run on the mongod on PATH"
        bad = []
        for op, coll, query, order in await every_query():
            if coll != LOGS:
                continue
            query = _retenant(query, tenant)
            if op == "aggregate":
                cmd = {"aggregate": coll, "pipeline": [{"$match": query}], "cursor": {}}
            elif op == "count":
                cmd = {"count": coll, "query": query}
            else:
                cmd = {"find": coll, "filter": query}
                if order:
                    cmd["sort"] = dict(order)
            explained = await db.command("explain", cmd, verbosity="queryPlanner")
            planner = (
                explained.get("queryPlanner") or explained["stages"][0]["$cursor"]["queryPlanner"]
            )
            found = stages(planner["winningPlan"])
            if "COLLSCAN" in found or "SORT" in found:
                bad.append(f"{op} {query} sort={order}: {found}")
        assert bad == []
    finally:
        await client.close()


def _retenant(query: Any, tenant: str) -> Any:
    if isinstance(query, dict):
        return {k: (tenant if k == "tenant_id" else _retenant(v, tenant)) for k, v in query.items()}
    if isinstance(query, list):
        return [_retenant(v, tenant) for v in query]
    return query
