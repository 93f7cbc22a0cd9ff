"""Bulk POSTs of 1,000 events: accepted events/s, then the persisted rate (the worker's
stored-events counter from the first request until the queue is empty again) as a
ratio of the storage's raw ``insert_many`` rate, measured in the same run (PyMongo
straight into a scratch database, the same document shape, batches of 1,000).

Load: ``benchmarks/locust_bulk.py``.
"""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from benchmarks.harness.parameters import Params, log
from benchmarks.harness.sampling import metric_sum
from benchmarks.harness.tables import Row, Target, fmt, summary_row, target

if TYPE_CHECKING:
    from benchmarks.harness.runner import Runner

NAME = "bulk"
LETTER = "b"
TITLE = "bulk POST, 1,000 events/request"
LOG_CPU_US_PER_EVENT_TARGET = 8
STORED = "logserver_worker_events_stored_total"


def raw_insert_rate(r: Runner) -> dict[str, Any] | None:
    if not r.target.mongodb_url:
        return None
    from pymongo import MongoClient

    from services.cli.generate import EventGenerator
    from services.core.logs.model import wire_to_document
    from services.core.logs.repository import log_indexes_for
    from services.log.events import normalize

    gen = EventGenerator(r.p.seed + 99)
    received = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    docs = [wire_to_document("bench-raw", normalize(e, received)) for e in gen.batch(r.p.raw_docs)]
    client: MongoClient[dict[str, Any]] = MongoClient(
        r.target.mongodb_url, serverSelectionTimeoutMS=10_000
    )
    db_name = f"bench_scratch_{os.getpid()}"
    try:
        coll = client[db_name]["logs"]
        indexes = log_indexes_for(client.admin.command("buildInfo"))  # as the worker does
        if indexes:
            coll.create_indexes(indexes)
        start = time.perf_counter()
        for i in range(0, len(docs), 1000):
            coll.insert_many(docs[i : i + 1000], ordered=False)
        seconds = time.perf_counter() - start
    finally:
        client.drop_database(db_name)
        client.close()
    rate = len(docs) / seconds
    log(f"  raw insert_many: {len(docs):,} docs in {seconds:.2f}s = {rate:,.0f} docs/s")
    return {"docs": len(docs), "seconds": round(seconds, 3), "docs_per_s": round(rate, 1)}


def run(r: Runner) -> dict[str, Any]:
    p = r.p
    raw = raw_insert_rate(r)
    r.drain(NAME)
    stored_before = metric_sum(r.target.worker_url, STORED)
    t0 = time.time()
    bulk = r.locust(
        f"{NAME}_bulk",
        "locust_bulk.py",
        p.bulk_users,
        run_time=900,
        requests=p.bulk_requests,
        batch=1000,
    )
    log(
        f"  bulk: {bulk['events_per_s']:,.0f} events/s accepted, "
        f"p99 {bulk['latency_ms']['p99']} ms, errors {bulk['errors']}"
    )
    drained = r.drain(NAME)
    t1 = time.time()
    stored_after = metric_sum(r.target.worker_url, STORED)
    persisted: dict[str, Any] = {"drained": drained is not None}
    if stored_before is not None and stored_after is not None:
        stored = int(stored_after - stored_before)
        # from the first request to the moment the queue was empty again
        seconds = t1 - (bulk.get("started") or t0)
        persisted |= {
            "events": stored,
            "seconds": round(seconds, 2),
            "events_per_s": round(stored / seconds, 1) if seconds else None,
        }
        if raw:
            persisted["ratio_of_raw_insert_many"] = round(
                persisted["events_per_s"] / raw["docs_per_s"], 3
            )
        log(
            f"  persisted: {stored:,} events in {seconds:.1f}s = "
            f"{persisted['events_per_s']:,.0f}/s "
            f"(ratio {persisted.get('ratio_of_raw_insert_many')})"
        )
    return {"bulk": bulk, "raw_insert_many": raw, "persisted": persisted}


def rows(result: dict[str, Any]) -> list[Row]:
    per = result["persisted"]
    return summary_row(
        f"{NAME} x1000",
        result["bulk"],
        f"persisted {fmt(per.get('events_per_s'))}/s = "
        f"{fmt(per.get('ratio_of_raw_insert_many'), 2)} x raw insert_many "
        f"({fmt((result.get('raw_insert_many') or {}).get('docs_per_s'))}/s)",
    )


def cpu_phases(result: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return [(f"{NAME} x1000", result["bulk"])]


def targets(result: dict[str, Any], params: Params, storage: str) -> list[Target]:
    out = []
    bulk = result["bulk"]
    log_us = (bulk.get("cpu_us_per_event") or {}).get("log")
    if log_us is not None:
        out.append(
            target(
                "log service CPU per event in 1,000-event bulks "
                f"≤ {LOG_CPU_US_PER_EVENT_TARGET} µs",
                f"{log_us:.1f} µs at {bulk['events_per_s']:,.0f} events/s, "
                f"p99 {bulk['latency_ms']['p99']} ms",
                log_us <= LOG_CPU_US_PER_EVENT_TARGET,
            )
        )
    out.append(
        target(
            "bulk POST 1,000 events/request: ≥ 50,000 events/s accepted",
            f"{bulk['events_per_s']:,.0f} events/s",
            bulk["events_per_s"] >= 50_000,
        )
    )
    ratio = result["persisted"].get("ratio_of_raw_insert_many")
    raw = (result.get("raw_insert_many") or {}).get("docs_per_s")
    out.append(
        target(
            "persisted throughput ≥ 80% of raw insert_many",
            f"{result['persisted'].get('events_per_s', 0):,.0f}/s vs raw {raw or 0:,.0f}/s "
            f"= {ratio if ratio is not None else 'n/a'}",
            ratio is not None and ratio >= 0.8,
            storage,
        )
    )
    return out
