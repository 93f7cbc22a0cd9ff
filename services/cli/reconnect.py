"""How `logserver tail` rides out restarts: which closes to retry, how long to wait, what to
show again. Pure policy (no I/O), so that it can be tested on its own.
"""

from __future__ import annotations

import random
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import Any

# Close codes after which the same request will work again (README, Live tail).
RETRY_CLOSES = {
    1001: "the server is going away",
    1006: "connection lost",
    1011: "server error",
    1012: "service restart",
    1013: "backend unavailable",
    4408: "too slow: the server dropped this reader",
    4429: "too many live tails open for this tenant",
}
CLOSE_TOO_MANY = 4429
# Gateway answers while the broadcast service is down or restarting.
RETRY_HTTP = frozenset({502, 503, 504})
CLOSE_UNAUTHORIZED = 4401
CLOSE_NORMAL = 1000
# Events replayed (`tail=N`) on a reconnect, to show what arrived during the gap.
RESUME_TAIL = 100


class Action(Enum):
    RETRY = "retry"  # wait (backoff), then connect again
    REAUTH = "reauth"  # get a new token, then connect again
    STOP = "stop"


@dataclass(frozen=True)
class Closed:
    """How one connection ended."""

    code: int | None  # WebSocket close code; None when no WebSocket was opened
    reason: str  # for a person: "service restart", "connection refused", "HTTP 502", ...
    established: bool = False  # the server sent events or a heartbeat (not only an error)
    http_status: int | None = None  # the gateway answered the upgrade with plain HTTP
    detail: str | None = None  # the server's error frame, if it sent one
    retry_after: float | None = None  # seconds the error frame asked to wait (4429)


def decide(closed: Closed) -> Action:
    if closed.code is None:
        if closed.http_status is None or closed.http_status in RETRY_HTTP:
            return Action.RETRY
        return Action.STOP
    if closed.code in RETRY_CLOSES:
        return Action.RETRY
    if closed.code == CLOSE_UNAUTHORIZED:
        return Action.REAUTH
    return Action.STOP


def retry_delay(closed: Closed, backoff: Backoff) -> float:
    """How long to wait before connecting again: the backoff, but never less than what
    the server asked for (a 4429 says when a slot may be free)."""
    delay = backoff.next()
    if closed.retry_after:
        delay = max(delay, closed.retry_after)
    return delay


class Backoff:
    """0.5 s doubling to 10 s; each wait is drawn between half and all of that (jitter,
    so that many readers dropped by one restart do not all come back at once)."""

    def __init__(
        self, first: float = 0.5, cap: float = 10.0, rng: Callable[[], float] = random.random
    ) -> None:
        self.first, self.cap, self.rng = first, cap, rng
        self.attempt = 0

    def next(self) -> float:
        ceiling = min(self.cap, self.first * 2**self.attempt)
        self.attempt += 1
        return ceiling / 2 + self.rng() * ceiling / 2

    def reset(self) -> None:
        self.attempt = 0


def _epoch(value: Any) -> float | None:
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


class Resume:
    """Which events to print so that a reconnect neither repeats nor (within reason) skips.

    Every printed id is remembered (the last ``keep``). A reconnect asks for the
    last ``RESUME_TAIL`` events; of those it prints the ones not printed yet that
    the server received after this session started (the user did not ask for
    older ones). If all of them are new, more may have arrived than were replayed.
    """

    def __init__(self, started: float, keep: int = 5000) -> None:
        self.started = started
        self.keep = keep
        self.seen: OrderedDict[str, None] = OrderedDict()
        self.resuming = False

    def replay_size(self, first_tail: int) -> int:
        return RESUME_TAIL if self.resuming else first_tail

    def _remember(self, event_id: str) -> None:
        self.seen[event_id] = None
        while len(self.seen) > self.keep:
            self.seen.popitem(last=False)

    def events(self, frame: dict[str, Any]) -> tuple[list[dict[str, Any]], str | None]:
        """The events of an ``events`` frame to print, and a note for stderr (or None)."""
        replay = bool(frame.get("replay"))
        out: list[dict[str, Any]] = []
        for event in frame.get("data", []):
            event_id = str(event.get("id", ""))
            if event_id and event_id in self.seen:
                continue
            if replay and self.resuming:
                received = _epoch(event.get("received_at"))
                if received is not None and received < self.started:
                    continue
            if event_id:
                self._remember(event_id)
            out.append(event)
        note = None
        data = frame.get("data", [])
        if replay and self.resuming and data and len(out) == len(data) >= RESUME_TAIL:
            note = (
                f"more than {RESUME_TAIL} events may have arrived while reconnecting; "
                "only the last ones are shown (search for the rest)"
            )
        return out, note
