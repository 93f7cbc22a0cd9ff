"""Synthetic, realistic events for a tenant: what `logserver generate` posts.

Three kinds of events, mixed like a real tenant's traffic: application logs
(levels weighted towards INFO, a handful of services and hosts, trace ids),
audit events (``action``, ``resource_type``/``resource_id``, ``user_id``,
``ip_address``, ``user_agent``, sometimes ``before``/``after``) and CI/CD
pipeline events (``attributes`` with ``processId``, ``stage``, ``version``,
``projectId``). The content is a pure function of the seed (and of the base
time), so a benchmark's preload is reproducible; ids are left to the server,
so two runs never collide.
"""

from __future__ import annotations

import random
import time
from datetime import UTC, datetime
from typing import Any

LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
LEVEL_WEIGHTS = (12, 62, 14, 10, 2)
SERVICES = ("api", "web", "auth-gw", "billing", "search", "jobs", "payments", "notifications")
KINDS = ("app", "audit", "cicd")
KIND_WEIGHTS = (70, 18, 12)

APP_MESSAGES: dict[str, tuple[str, ...]] = {
    "DEBUG": (
        "cache lookup {key} hit={hit}",
        "sql {table} rows={n} in {ms}ms",
        "feature flag {key} evaluated to {hit}",
    ),
    "INFO": (
        "GET /{table}/{n} 200 in {ms}ms",
        "POST /{table} 201 in {ms}ms",
        "job {key} finished in {ms}ms",
        "user session refreshed for {user}",
        "request completed status=200 duration={ms}ms",
    ),
    "WARNING": (
        "slow query on {table}: {ms}ms",
        "retrying upstream call to {table} (attempt {n})",
        "rate limit at 80% for {user}",
    ),
    "ERROR": (
        "payment failed for order {key}: card declined",
        "upstream {table} returned 502 after {ms}ms",
        "GET /{table}/{n} 500 in {ms}ms",
        "timeout talking to {table} after {ms}ms",
    ),
    "CRITICAL": (
        "database connection pool exhausted ({n} waiting)",
        "disk usage at 97% on {table}",
        "unhandled exception in worker {key}",
    ),
}
TABLES = ("orders", "users", "invoices", "products", "carts", "sessions", "reports")

# (action, resource_type, level)
AUDIT_ACTIONS = (
    ("user.login", "session", "INFO"),
    ("user.logout", "session", "INFO"),
    ("user.login_failed", "session", "WARNING"),
    ("user.password_change", "user", "INFO"),
    ("role.grant", "user", "WARNING"),
    ("api_key.create", "api_key", "INFO"),
    ("api_key.revoke", "api_key", "WARNING"),
    ("document.update", "document", "INFO"),
    ("document.delete", "document", "WARNING"),
    ("invoice.create", "invoice", "INFO"),
    ("settings.update", "settings", "INFO"),
)
USER_AGENTS = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.5 Safari/605.1.15",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:127.0) Gecko/20100101 Firefox/127.0",
    "curl/8.5.0",
    "python-httpx/0.28.1",
    "okhttp/4.12.0",
)
CI_STAGES = ("checkout", "build", "test", "package", "deploy", "release")
CI_MESSAGES = {
    "INFO": (
        "stage {stage} started",
        "stage {stage} succeeded in {ms}ms",
        "artifact {version} pushed",
    ),
    "WARNING": ("stage {stage} flaky test retried", "stage {stage} took {ms}ms (slow)"),
    "ERROR": ("stage {stage} failed: exit code {n}", "deploy of {version} rolled back"),
}


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class EventGenerator:
    """Deterministic given ``seed`` and ``base_time``: the same calls give the same events.

    ``base_time`` (epoch seconds) is the newest timestamp; ``None`` means "now" at each
    event (live generation). ``spread_seconds`` spreads timestamps uniformly over the
    window before ``base_time`` (a preloaded history rather than a burst).
    """

    def __init__(
        self, seed: int = 1, *, base_time: float | None = None, spread_seconds: float = 0.0
    ) -> None:
        self.rng = random.Random(seed)
        self.base_time = base_time
        self.spread = spread_seconds
        self.count = 0
        # stable per-seed populations, so filters on user/resource/project find repeats
        self.users = [f"u-{self.rng.randrange(10_000, 99_999)}" for _ in range(200)]
        self.ips = [
            f"{self.rng.choice((10, 172, 192, 203))}.{self.rng.randrange(256)}."
            f"{self.rng.randrange(256)}.{self.rng.randrange(1, 255)}"
            for _ in range(300)
        ]
        self.projects = [f"proj-{self.rng.randrange(100, 999)}" for _ in range(12)]

    def _timestamp(self) -> str:
        base = time.time() if self.base_time is None else self.base_time
        if self.spread:
            base -= self.rng.random() * self.spread
        return _iso(base)

    def _hex(self, bits: int) -> str:
        return f"{self.rng.getrandbits(bits):0{bits // 4}x}"

    def _fill(self, template: str) -> str:
        r = self.rng
        return template.format(
            key=self._hex(32),
            hit=r.choice(("true", "false")),
            table=r.choice(TABLES),
            n=r.randrange(1, 5000),
            ms=r.randrange(1, 3000),
            user=r.choice(self.users),
            stage=r.choice(CI_STAGES),
            version=f"1.{r.randrange(40)}.{r.randrange(20)}",
        )

    def event(self) -> dict[str, Any]:
        r = self.rng
        self.count += 1
        kind = r.choices(KINDS, KIND_WEIGHTS)[0]
        if kind == "audit":
            return self._audit()
        if kind == "cicd":
            return self._cicd()
        level = r.choices(LEVELS, LEVEL_WEIGHTS)[0]
        service = r.choice(SERVICES)
        event: dict[str, Any] = {
            "timestamp": self._timestamp(),
            "level": level,
            "service": service,
            "host": f"{service}-{r.randrange(1, 5)}",
            "message": self._fill(r.choice(APP_MESSAGES[level])),
            "trace_id": self._hex(128),
            "span_id": self._hex(64),
        }
        if r.random() < 0.5:
            event["user_id"] = r.choice(self.users)
        if level in ("ERROR", "CRITICAL"):
            event["attributes"] = {"error_code": f"E{r.randrange(1000, 1100)}", "retryable": False}
        elif r.random() < 0.3:
            event["attributes"] = {"region": r.choice(("eu-west-1", "us-east-1", "ap-south-1"))}
        return event

    def _audit(self) -> dict[str, Any]:
        r = self.rng
        action, resource_type, level = r.choice(AUDIT_ACTIONS)
        user = r.choice(self.users)
        event: dict[str, Any] = {
            "timestamp": self._timestamp(),
            "level": level,
            "service": "auth-gw" if resource_type in ("session", "api_key") else "api",
            "message": f"{action} by {user}",
            "action": action,
            "resource_type": resource_type,
            "resource_id": f"{resource_type}-{r.randrange(1, 5000)}",
            "user_id": user,
            "ip_address": r.choice(self.ips),
            "user_agent": r.choice(USER_AGENTS),
        }
        if action.endswith(".update") or action == "role.grant":
            old = r.choice(("viewer", "writer", "draft", "v1"))
            event["before"] = {"value": old}
            event["after"] = {"value": r.choice(("admin", "auditor", "published", "v2"))}
        return event

    def _cicd(self) -> dict[str, Any]:
        r = self.rng
        level = r.choices(("INFO", "WARNING", "ERROR"), (80, 12, 8))[0]
        stage = r.choice(CI_STAGES)
        version = f"1.{r.randrange(40)}.{r.randrange(20)}"
        return {
            "timestamp": self._timestamp(),
            "level": level,
            "service": "ci",
            "host": f"runner-{r.randrange(1, 9)}",
            "message": r.choice(CI_MESSAGES[level]).format(
                stage=stage, version=version, ms=r.randrange(1, 600_000), n=r.randrange(1, 128)
            ),
            "attributes": {
                "processId": r.randrange(1000, 65000),
                "stage": stage,
                "version": version,
                "projectId": r.choice(self.projects),
                "pipeline": f"#{r.randrange(1, 20000)}",
            },
        }

    def batch(self, n: int) -> list[dict[str, Any]]:
        return [self.event() for _ in range(n)]
