"""Prometheus metrics shared by all services (one registry per process)."""

from __future__ import annotations

import asyncio

from prometheus_client import Counter, Gauge, Histogram

HTTP_REQUESTS = Counter(
    "logserver_http_requests_total",
    "HTTP requests handled",
    ["service", "method", "route", "status"],
)
HTTP_LATENCY = Histogram(
    "logserver_http_request_duration_seconds",
    "HTTP request latency",
    ["service", "method", "route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
UNHANDLED_ERRORS = Counter(
    "logserver_unhandled_errors_total", "Exceptions that became a 500", ["service"]
)
LOOP_LAG = Histogram(
    "logserver_event_loop_lag_seconds",
    "How late a timer of the event loop fires: time a ready request waits for the CPU",
    ["service"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
)

# Per-tenant limits (services/core/limits.py). `reason` is the limit refused by (the
# tenant field, e.g. ingest_events_per_second) or a process cap (query_capacity,
# tail_capacity); the same names as the `refused` counts of GET /api/v1/logs/usage.
REFUSED = Counter("logserver_refused_total", "Requests refused by a limit", ["tenant", "reason"])
LIMIT_UTILISATION = Gauge(
    "logserver_limit_utilisation",
    "How much of a tenant's limit is in use (1 = at the limit), as last seen by this process",
    ["tenant", "limit"],
)
LIMITS_UNENFORCED = Counter(
    "logserver_limits_unenforced_total",
    "Limit checks skipped because their store (Redis) did not answer: the request was "
    "let through (limits fail open)",
    ["service", "check"],
)


async def watch_loop_lag(service: str, every: float = 0.25) -> None:
    """Sample the event loop's lag forever (a latency budget's first suspect)."""
    loop = asyncio.get_running_loop()
    histogram = LOOP_LAG.labels(service)
    while True:
        due = loop.time() + every
        await asyncio.sleep(every)
        histogram.observe(max(0.0, loop.time() - due))
