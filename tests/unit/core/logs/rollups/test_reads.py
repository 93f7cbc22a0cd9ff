"""Rollup reads: which counts come from the rollups and which ranges from the events."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

from services.core.logs.filters import LogFilter, parse_params
from services.core.logs.rollups import (
    answerable,
    count_key,
    current,
    delta_docs,
    dirty_minutes,
    plan,
)

H = 1_780_000_200 - 1_780_000_200 % 3600  # an hour boundary
T = datetime.fromtimestamp(H, UTC)


def delta(tenant: str, tok: str, **counts: int) -> dict:
    """A delta from keyword counts named like m<offset minutes>_<LEVEL>[_<service>]."""
    c: Counter[str] = Counter()
    for name, n in counts.items():
        span, level, *service = name.split("_")
        epoch = H + int(span[1:]) * (60 if span[0] == "m" else 3600)
        c[count_key(span[0], epoch, level, service[0] if service else None)] += n
    docs = delta_docs(tenant, tok, c)
    assert len(docs) == 1
    return docs[0]


def flt(**params: str) -> LogFilter:
    return parse_params(list(params.items()), frozenset()).filter


def total(p) -> int:
    return sum(p.counts.values())


def test_answerable_filters() -> None:
    assert answerable(flt(level="error", service="api", **{"from": "2026-01-01T00:00:00Z"}))
    assert answerable(flt(min_level="warning"), "service")
    assert not answerable(flt(host="h1"))
    assert not answerable(flt(q="boom"))
    assert not answerable(flt(**{"attributes.k": "v"}))
    assert not answerable(flt(), "action")


def test_whole_minutes_come_from_rollups_and_cut_edges_from_events() -> None:
    docs = [delta("t", "a", m0_INFO=2, m1_ERROR=3, m2_INFO_api=4, m5_INFO=1)]
    assert total(plan(docs, set(), flt(), None)) == 10
    aligned = flt(
        **{
            "from": (T + timedelta(minutes=1)).isoformat(),
            "to": (T + timedelta(minutes=3)).isoformat(),
        }
    )
    p = plan(docs, set(), aligned, None)
    assert (total(p), p.event_ranges) == (7, [])
    cut = flt(
        **{
            "from": (T + timedelta(seconds=30)).isoformat(),
            "to": (T + timedelta(minutes=5, seconds=1)).isoformat(),
        }
    )
    p = plan(docs, set(), cut, None)
    assert total(p) == 7  # minutes 1 and 2 whole
    assert p.event_ranges == [
        (T + timedelta(seconds=30), T + timedelta(minutes=1)),
        (T + timedelta(minutes=5), T + timedelta(minutes=5, seconds=1)),
    ]


def test_level_and_service_filters_select_keys() -> None:
    docs = [delta("t", "a", m0_INFO=2, m1_ERROR_api=3, m2_CRITICAL_api=4, m3_WARNING=5)]
    assert total(plan(docs, set(), flt(level="error,critical"), None)) == 7
    assert total(plan(docs, set(), flt(min_level="warning"), None)) == 12
    assert total(plan(docs, set(), flt(service="api", level="error"), None)) == 3


def test_dirty_minutes_are_counted_from_events_and_not_from_rollups() -> None:
    docs = [delta("t", "a", m0_INFO=2, m1_INFO=3)]
    p = plan(docs, {H + 60, H + 600}, flt(), None)
    assert total(p) == 2
    assert p.event_ranges == [
        (T + timedelta(minutes=1), T + timedelta(minutes=2)),
        (T + timedelta(minutes=10), T + timedelta(minutes=11)),
    ]


def test_hours_serve_coarse_histograms_only() -> None:
    docs = [delta("t", "a", h0_INFO=10, h1_ERROR=5)]
    p = plan(docs, set(), flt(), 3600)
    assert p.counts == Counter({(H, "INFO", None): 10, (H + 3600, "ERROR", None): 5})
    assert p.event_ranges == []
    fine = plan(docs, set(), flt(), 300)
    assert total(fine) == 0
    assert fine.event_ranges == [(T, T + timedelta(hours=2))]


def test_an_hour_with_a_dirty_minute_goes_to_the_events_whole() -> None:
    docs = [delta("t", "a", h0_INFO=10, m3_INFO=2, h1_INFO=1)]  # a late minute inside hour 0
    p = plan(docs, {H + 180}, flt(), None)
    assert total(p) == 1
    assert p.event_ranges == [(T, T + timedelta(hours=1))]


def test_current_takes_the_newest_base_and_unabsorbed_deltas() -> None:
    d1, d2, d3 = delta("t", "a", m0_INFO=1), delta("t", "b", m0_INFO=2), delta("t", "c", m0_INFO=4)
    old = {
        **d1,
        "_id": "t:x:b:1",
        "v": 1,
        "absorbed": [],
        "c": {count_key("m", H, "INFO", None): 100},
    }
    base = {
        **d1,
        "_id": "t:x:b:2",
        "v": 2,
        "absorbed": [d1["_id"], d2["_id"]],
        "c": {count_key("m", H, "INFO", None): 3},
    }
    got = current([old, d1, d2, d3, base])
    assert sorted(d["_id"] for d in got) == sorted([base["_id"], d3["_id"]])
    assert total(plan(got, set(), flt(), None)) == 7


def test_negative_deltas_subtract() -> None:
    docs = [delta("t", "a", m0_INFO=5), delta("t", "c", m0_INFO=-2)]
    assert total(plan(docs, set(), flt(), None)) == 3


def test_dirty_minutes_of_dead_batches_and_cleanups_in_progress() -> None:
    now = datetime.now(UTC)
    pending = [
        {"_id": "t:i:live", "at": now, "minutes": [H]},
        {"_id": "t:i:dead", "at": now - timedelta(minutes=10), "minutes": [H + 60]},
        {
            "_id": "t:c:x",
            "at": now,
            "ids": ["t:1"],
            "c": {count_key("m", H + 120, "INFO", None): -1},
        },
        {"_id": "t:lock", "at": now - timedelta(hours=1), "lock": 1},
        {"_id": "t:r:y", "at": now - timedelta(hours=1), "receipt": 1, "c": {}},
    ]
    assert dirty_minutes(pending, now - timedelta(minutes=2)) == {H + 60, H + 120}
