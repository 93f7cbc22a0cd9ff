"""`logserver generate`: synthetic, realistic events for a tenant, posted in bulk.

Three kinds of events, mixed like a real tenant's traffic: application logs
(levels weighted towards INFO, a handful of services and hosts, trace ids),
audit events (``action``, ``resource_type``/``resource_id``, ``user_id``,
``ip_address``, ``user_agent``, sometimes ``before``/``after``) and CI/CD
pipeline events (``attributes`` with ``processId``, ``stage``, ``version``,
``projectId``). The content is a pure function of ``--seed`` (and of the base
time), so a benchmark's preload is reproducible; ids are left to the server,
so two runs never collide.

Used by ``make benchmark`` to preload a tenant and handy for demos::

    logserver generate --tenant acme --count 100000          # as fast as it goes
    logserver generate --tenant acme --rate 200 --duration 60
"""

from __future__ import annotations

import asyncio
import json
import random
import sys
import time
from dataclasses import dataclass
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


# --- posting -------------------------------------------------------------------------


# A 429 asking to wait longer than this (a daily quota used up) ends the run.
MAX_RATE_LIMIT_WAIT = 60.0
NOTE_EVERY = 5.0  # seconds between two "rate limited" notes


def rate_limit_wait(headers: Any) -> float:
    """Seconds a 429's ``Retry-After`` asks for (1 s when it says nothing usable)."""
    try:
        return max(0.1, float(headers.get("retry-after", "1")))
    except ValueError:
        return 1.0


def problem_detail(resp: Any) -> str:
    try:
        body = resp.json()
        return str(body.get("detail") or body.get("title") or resp.text)[:300]
    except ValueError:
        return resp.text[:300]


def note(message: str) -> None:
    print(f"logserver generate: {message}", file=sys.stderr, flush=True)


@dataclass
class Result:
    sent: int = 0
    requests: int = 0
    errors: int = 0
    retries: int = 0
    rate_limited: int = 0  # 429 answers, each waited out and retried
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        rate = self.sent / self.seconds if self.seconds else 0.0
        return {
            "events": self.sent,
            "requests": self.requests,
            "errors": self.errors,
            "retries": self.retries,
            "rate_limited": self.rate_limited,
            "seconds": round(self.seconds, 3),
            "events_per_second": round(rate, 1),
        }


class Progress:
    """A one-line progress bar on stderr (a line every few seconds when not a TTY)."""

    def __init__(self, total: int | None, enabled: bool = True) -> None:
        self.total = total
        self.enabled = enabled
        self.tty = sys.stderr.isatty()
        self.start = time.monotonic()
        self._last = 0.0

    def update(self, done: int, force: bool = False) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if not force and now - self._last < (0.25 if self.tty else 5.0):
            return
        self._last = now
        elapsed = max(now - self.start, 1e-9)
        rate = done / elapsed
        if self.total:
            frac = min(done / self.total, 1.0)
            bar = "#" * int(frac * 30)
            line = f"[{bar:<30}] {done:,}/{self.total:,} events {frac:5.1%} {rate:,.0f}/s"
        else:
            line = f"{done:,} events {rate:,.0f}/s {elapsed:.0f}s"
        if self.tty:
            sys.stderr.write("\r" + line + " " * 4)
            if force:
                sys.stderr.write("\n")
        else:
            sys.stderr.write(line + "\n")
        sys.stderr.flush()


async def generate(
    url: str,
    token_fn: Any,
    *,
    tenant: str | None = None,
    count: int | None = None,
    rate: float | None = None,
    duration: float | None = None,
    batch_size: int = 500,
    concurrency: int = 4,
    seed: int = 1,
    spread_seconds: float = 0.0,
    progress: bool = True,
    transport: Any = None,
    notify: Any = note,
) -> Result:
    """Post generated events in bulk until ``count`` events or ``duration`` seconds.

    ``token_fn()`` returns a bearer token (called again after a 401). ``rate`` paces
    the events per second; without it the batches go as fast as the server takes them
    with ``concurrency`` requests in flight. A ``429`` (the tenant's ingest limit) is
    waited out as its ``Retry-After`` says and the batch sent again, with a note on
    stderr (``notify``) at most every few seconds; one asking to wait more than a
    minute (the daily quota) ends the run with the server's reason.
    """
    import httpx

    if count is None and duration is None:
        raise ValueError("give count or duration")
    gen = EventGenerator(seed, spread_seconds=spread_seconds)
    if rate:
        # at least ~10 batches a second so a low rate is smooth
        batch_size = max(1, min(batch_size, int(rate / 10) or 1))
    result = Result()
    bar = Progress(count, progress)
    token = token_fn()
    sem = asyncio.Semaphore(concurrency)
    tasks: set[asyncio.Task[None]] = set()
    failure: list[BaseException] = []
    start = time.monotonic()
    deadline = start + duration if duration else None
    noted_at = -NOTE_EVERY

    async def back_off(resp: httpx.Response) -> None:
        nonlocal noted_at
        wait = rate_limit_wait(resp.headers)
        if wait > MAX_RATE_LIMIT_WAIT:
            raise RuntimeError(
                f"the server refuses more events for {wait:,.0f} s: {problem_detail(resp)}"
            )
        result.rate_limited += 1
        now = time.monotonic()
        if now - noted_at >= NOTE_EVERY:
            noted_at = now
            notify(f"rate limited by the server, backing off {wait:g} s: {problem_detail(resp)}")
        await asyncio.sleep(wait)

    async def post(client: httpx.AsyncClient, events: list[dict[str, Any]]) -> None:
        nonlocal token
        try:
            attempt = 0
            while attempt < 6:
                headers = {"Authorization": f"Bearer {token}"}
                if tenant:
                    headers["X-Tenant-ID"] = tenant
                try:
                    resp = await client.post("/api/v1/logs/bulk", json=events, headers=headers)
                except httpx.HTTPError:
                    status = 0
                else:
                    status = resp.status_code
                if status == 202:
                    result.sent += len(events)
                    result.requests += 1
                    bar.update(result.sent)
                    return
                if status == 429:  # over the tenant's limit: expected, not an error
                    await back_off(resp)
                    continue
                if status == 401 and attempt == 0:
                    attempt += 1
                    token = await asyncio.to_thread(token_fn)
                    continue
                if status and status < 500:
                    raise RuntimeError(f"bulk POST failed ({status}): {resp.text[:300]}")
                result.retries += 1
                await asyncio.sleep(min(0.2 * 2**attempt, 5))
                attempt += 1
            result.errors += 1
        except BaseException as exc:
            failure.append(exc)
        finally:
            sem.release()

    async with httpx.AsyncClient(base_url=url, timeout=60, transport=transport) as client:
        produced = 0
        while not failure:
            if count is not None and produced >= count:
                break
            if deadline is not None and time.monotonic() >= deadline:
                break
            n = batch_size if count is None else min(batch_size, count - produced)
            if rate:
                due = start + produced / rate
                delay = due - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
            await sem.acquire()
            events = gen.batch(n)
            produced += n
            task = asyncio.create_task(post(client, events))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        if tasks:
            await asyncio.gather(*tasks)
    result.seconds = time.monotonic() - start
    bar.update(result.sent, force=True)
    if failure:
        raise failure[0]
    return result


def run_generate(args: Any) -> int:
    from services.cli.token import fetch_token, load_credential

    client_id, secret = load_credential(args.client_id, args.client_secret, args.credentials)
    count, duration = args.count, args.duration
    if count is None and duration is None:
        if args.rate:
            duration = 10.0**9  # until Ctrl-C
        else:
            count = 1000

    def token_fn() -> str:
        return fetch_token(args.url, client_id, secret)["access_token"]

    try:
        result = asyncio.run(
            generate(
                args.url,
                token_fn,
                tenant=args.tenant,
                count=count,
                rate=args.rate,
                duration=duration,
                batch_size=args.batch_size,
                concurrency=args.concurrency,
                seed=args.seed,
                spread_seconds=args.spread,
                progress=not args.quiet,
            )
        )
    except KeyboardInterrupt:
        return 130
    except RuntimeError as exc:
        print(f"generate: {exc}", file=sys.stderr)
        return 1
    summary = result.as_dict()
    if args.json:
        json.dump(summary, sys.stdout)
        print()
    elif not args.quiet:
        print(
            f"generated {summary['events']:,} events in {summary['seconds']:.1f}s "
            f"({summary['events_per_second']:,.0f}/s, {summary['errors']} failed requests"
            + (f", rate limited {result.rate_limited} times" if result.rate_limited else "")
            + ")",
            file=sys.stderr,
        )
    return 0 if result.errors == 0 else 1


def add_parser(sub: Any) -> None:
    from pathlib import Path

    gen = sub.add_parser("generate", help="post synthetic, realistic events for a tenant")
    gen.add_argument("--url", default=None, help="gateway URL (default $LOGSERVER_URL or :8080)")
    gen.add_argument("--tenant", help="tenant key (sent as X-Tenant-ID; needed with an admin key)")
    gen.add_argument("--client-id", help="API key id (default: the dev platform admin)")
    gen.add_argument("--client-secret", help="API key secret")
    gen.add_argument("--credentials", type=Path, help="JSON file with client_id/client_secret")
    gen.add_argument("--count", type=int, help="number of events (default 1000 without --rate)")
    gen.add_argument("--rate", type=float, help="events per second (default: as fast as it goes)")
    gen.add_argument("--duration", type=float, help="stop after this many seconds")
    gen.add_argument("--batch-size", type=int, default=500, help="events per bulk request")
    gen.add_argument("--concurrency", type=int, default=4, help="bulk requests in flight")
    gen.add_argument("--seed", type=int, default=1, help="random seed (same seed, same events)")
    gen.add_argument(
        "--spread",
        type=float,
        default=0.0,
        help="spread timestamps over this many seconds before now (a history, not a burst)",
    )
    gen.add_argument("--json", action="store_true", help="print a JSON summary on stdout")
    gen.add_argument("--quiet", action="store_true", help="no progress bar")
