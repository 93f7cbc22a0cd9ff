"""`logserver generate`: synthetic events for a tenant (services/cli/synthetic.py), posted in bulk.

Posting honours the server's limits: a 429 is waited out (its Retry-After, up
to a minute, noted at most every few seconds); a longer wait (a daily quota
used up) ends the run with the reason.

Used by ``make benchmark`` to preload a tenant and handy for demos::

    logserver generate --tenant acme --count 100000          # as fast as it goes
    logserver generate --tenant acme --rate 200 --duration 60
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from dataclasses import dataclass
from typing import Any

from services.cli.synthetic import EventGenerator

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
