"""`logserver tail`'s reconnect policy: what to retry, how long to wait, what to print again."""

from __future__ import annotations

import pytest

from services.cli.reconnect import RESUME_TAIL, Action, Backoff, Closed, Resume, decide


@pytest.mark.parametrize(
    ("closed", "action"),
    [
        (Closed(1012, "service restart"), Action.RETRY),
        (Closed(1013, "backend unavailable"), Action.RETRY),
        (Closed(4408, "too slow"), Action.RETRY),
        (Closed(4429, "too many streams"), Action.RETRY),
        (Closed(1006, "connection lost"), Action.RETRY),
        (Closed(1001, "going away"), Action.RETRY),
        (Closed(1011, "server error"), Action.RETRY),
        (Closed(None, "connection refused"), Action.RETRY),
        (Closed(None, "HTTP 502", http_status=502), Action.RETRY),
        (Closed(None, "HTTP 503", http_status=503), Action.RETRY),
        (Closed(None, "HTTP 504", http_status=504), Action.RETRY),
        (Closed(4401, "token expired"), Action.REAUTH),
        (Closed(4403, "forbidden"), Action.STOP),
        (Closed(4404, "unknown tenant"), Action.STOP),
        (Closed(4422, "bad filter"), Action.STOP),
        (Closed(1000, "bye"), Action.STOP),
        (Closed(None, "HTTP 404", http_status=404), Action.STOP),
        (Closed(None, "HTTP 401", http_status=401), Action.STOP),
    ],
)
def test_decide(closed: Closed, action: Action) -> None:
    assert decide(closed) is action


def test_backoff_doubles_from_half_a_second_to_ten() -> None:
    top = Backoff(rng=lambda: 1.0)
    assert [top.next() for _ in range(8)] == [0.5, 1.0, 2.0, 4.0, 8.0, 10.0, 10.0, 10.0]
    bottom = Backoff(rng=lambda: 0.0)
    assert [bottom.next() for _ in range(7)] == [0.25, 0.5, 1.0, 2.0, 4.0, 5.0, 5.0]


def test_backoff_jitter_stays_within_its_band() -> None:
    import random

    rng = random.Random(7)
    backoff = Backoff(rng=rng.random)
    waits = [backoff.next() for _ in range(200)]
    ceilings = [min(10.0, 0.5 * 2**i) for i in range(200)]
    assert all(c / 2 <= w <= c for w, c in zip(waits, ceilings, strict=True))
    assert len({round(w, 6) for w in waits[10:]}) > 100  # really random, not a constant


def test_backoff_reset_starts_over() -> None:
    backoff = Backoff(rng=lambda: 1.0)
    for _ in range(5):
        backoff.next()
    backoff.reset()
    assert backoff.next() == 0.5


STARTED = 1_772_355_600.0  # 2026-03-01T09:00:00Z


def event(i: int, seconds_after_start: float = 1.0) -> dict:
    from datetime import UTC, datetime

    at = datetime.fromtimestamp(STARTED + seconds_after_start, UTC)
    return {"id": f"e{i}", "received_at": at.isoformat().replace("+00:00", "Z")}


def test_first_connection_replays_what_the_user_asked_for() -> None:
    resume = Resume(started=STARTED)
    assert resume.replay_size(20) == 20
    old = [event(i, seconds_after_start=-3600) for i in range(3)]
    printed, note = resume.events({"type": "events", "replay": True, "data": old})
    assert printed == old  # --tail N: older events are what was asked for
    assert note is None


def test_live_duplicates_are_dropped() -> None:
    resume = Resume(started=STARTED)
    resume.events({"type": "events", "replay": False, "data": [event(1)]})
    printed, _ = resume.events({"type": "events", "replay": False, "data": [event(1), event(2)]})
    assert [e["id"] for e in printed] == ["e2"]


def test_a_reconnect_prints_only_the_gap() -> None:
    resume = Resume(started=STARTED)
    resume.events({"type": "events", "replay": False, "data": [event(1), event(2)]})
    resume.resuming = True
    assert resume.replay_size(0) == RESUME_TAIL
    replay = [event(0, seconds_after_start=-10), event(1), event(2), event(3), event(4)]
    printed, note = resume.events({"type": "events", "replay": True, "data": replay})
    # e0 is older than this session (never asked for), e1/e2 were printed already.
    assert [e["id"] for e in printed] == ["e3", "e4"]
    assert note is None


def test_a_gap_longer_than_the_replay_is_reported() -> None:
    resume = Resume(started=STARTED)
    resume.events({"type": "events", "replay": False, "data": [event(1)]})
    resume.resuming = True
    replay = [event(100 + i) for i in range(RESUME_TAIL)]
    printed, note = resume.events({"type": "events", "replay": True, "data": replay})
    assert len(printed) == RESUME_TAIL
    assert note and str(RESUME_TAIL) in note


def test_remembered_ids_are_bounded() -> None:
    resume = Resume(started=STARTED, keep=10)
    resume.events({"type": "events", "data": [event(i) for i in range(25)]})
    assert len(resume.seen) == 10
    assert next(iter(resume.seen)) == "e15"  # the oldest kept
