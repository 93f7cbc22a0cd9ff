"""The msgspec fast path agrees with the exact path wherever it answers, and leaves
everything else (every error) to it."""

from __future__ import annotations

import itertools
import json
import random
import uuid
from datetime import datetime

import orjson
import pytest

from services.cli.synthetic import EventGenerator
from services.core.errors import LogServerError, ValidationFailed
from services.log import fastdecode
from services.log.events import (
    MAX_EVENT_BYTES,
    MAX_FIELD_CHARS,
    MAX_ID_CHARS,
    MAX_KEYS,
    MAX_MESSAGE_CHARS,
    TimeWindow,
    new_event_ids,
)
from services.log.ingest import (
    check_duplicate_keys,
    check_event_sizes,
    is_ndjson,
    normalize_all,
    parse_bulk,
)
from tests.support.event_shapes import UNCOMMON_EVENTS

RECEIVED = "2026-02-01T08:00:00.000Z"
WINDOW_DAYS = 30


def fast(body: bytes, lines: bool = False) -> list[dict] | None:
    decoded = fastdecode.decode_bulk(body, lines)
    if not decoded:
        return None
    done = fastdecode.finish(body, decoded, RECEIVED, TimeWindow(RECEIVED, WINDOW_DAYS))
    return None if done is None else [orjson.loads(e) for e in done[0]]


def exact(body: bytes, lines: bool = False) -> list[dict] | LogServerError:
    """What ingest_bulk's exact path makes of ``body``, or the error it answers."""
    ctype = "application/x-ndjson" if lines else "application/json"
    try:
        raw = parse_bulk(body, ctype)
        if not isinstance(raw, list) or not raw:
            raise ValidationFailed("not a list of events")
        check_event_sizes(raw, len(body))
        events = normalize_all(raw, RECEIVED, TimeWindow(RECEIVED, WINDOW_DAYS))
        check_duplicate_keys(body, raw, is_ndjson(body, ctype))
    except LogServerError as exc:
        return exc
    return [orjson.loads(orjson.dumps(e)) for e in events]


def agree(body: bytes, lines: bool = False, *, taken: bool | None = None) -> None:
    """The fast path answers nothing, or what the exact path answers; never an error."""
    got, expected = fast(body, lines), exact(body, lines)
    if taken is not None:
        assert (got is not None) == taken, body[:300]
    if got is None:
        return
    assert not isinstance(expected, LogServerError), (body[:300], expected)
    assert len(got) == len(expected)
    for mine, theirs in zip(got, expected, strict=True):
        if mine["id"] != theirs["id"]:  # both made one: the same kind
            assert uuid.UUID(mine["id"]).version == uuid.UUID(theirs["id"]).version == 7
            mine.pop("id"), theirs.pop("id")
        assert mine == theirs


def dumps(value: object) -> bytes:
    """JSON of any value, integers beyond 64 bits included (orjson refuses them)."""
    return json.dumps(value).encode()


def generated(n: int, seed: int = 5) -> list[dict]:
    base = datetime(2026, 2, 1, 7, 0).timestamp()
    return EventGenerator(seed, base_time=base, spread_seconds=3600).batch(n)


def test_generated_events_take_the_fast_path_and_agree_with_the_exact_one():
    events = generated(500)
    agree(orjson.dumps(events), taken=True)
    agree(b"\n".join(orjson.dumps(e) for e in events) + b"\n\n", lines=True, taken=True)
    with_ids = [{**e, "id": f"ev-{i}"} for i, e in enumerate(events)]
    got = fast(orjson.dumps(with_ids))
    assert got is not None and [e["id"] for e in got] == [e["id"] for e in with_ids]


def test_ids_made_for_a_bulk_are_uuid7_in_order_and_unique():
    body = orjson.dumps([{"message": str(i)} for i in range(700)])  # crosses 256-id runs
    got = fast(body)
    assert got is not None
    ids = [e["id"] for e in got]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    assert {uuid.UUID(i).version for i in ids} == {7}
    assert all(e["timestamp"] == e["received_at"] == RECEIVED for e in got)
    assert {e["level"] for e in got} == {"INFO"}


def test_new_event_ids_count_up_like_single_ids():
    ids = new_event_ids(1000)
    values = [uuid.UUID(i).int for i in ids]
    assert len(ids) == 1000
    # Within one millisecond each id is the previous plus one; a new one starts afresh.
    steps = [b - a for a, b in itertools.pairwise(values)]
    assert steps.count(1) >= 990 and all(s != 0 for s in steps)


@pytest.mark.parametrize(
    "event",
    [
        *UNCOMMON_EVENTS,
        {"message": "m", "severity": "warn"},
        {"message": "m", "received_at": "2020-01-01T00:00:00.000Z"},  # ignored
        {"message": "m", "received_at": {"a": 1}},
        {"message": "m", "level": None},
        {"message": None, "action": "a"},
        {"message": "m", "before": {}},
        {"message": "m", "attributes": {"n": 1 << 63}},
        {"message": "m", "attributes": {"n": (1 << 63) - 1, "m": -(1 << 63)}},
        {"message": "m", "attributes": {"f": 1.5e300, "z": -0.0, "b": False, "x": None}},
        {"message": "m", "attributes": {"a.b": "x", "": "empty", "ü": 1}},
        {"message": "m", "attributes": {"a\x00b": "x"}},
        {"message": "m", "metadata": {"a": [1, 2]}},
        {"message": "m", "metadata": {"a": {"b": 1}}},
        {"message": "m", "before": {f"k{i}": i for i in range(MAX_KEYS)}},
        {
            "message": "m",
            "before": {f"k{i}": i for i in range(MAX_KEYS // 2)},
            "attributes": {f"k{i}": i for i in range(MAX_KEYS // 2 + 1)},
        },
        {"message": "m" * MAX_MESSAGE_CHARS},
        {"message": "m" * (MAX_MESSAGE_CHARS + 1)},
        {"message": "m", "host": "h" * MAX_FIELD_CHARS},
        {"message": 'm\x00\n\t"\\ \u2028 \ufffe \U0001f600'},
        {"message": "m", "level": "warn"},
        {"message": "m", "level": ""},
        {"message": "m", "timestamp": "2026-01-31T12:00:00.000Z"},
        {"message": "m", "id": "a\x7fb"},
        {"message": "m", "id": "x" * MAX_ID_CHARS},
        {"action": "login"},
        [],
        "text",
        None,
    ],
)
def test_every_other_shape_is_left_to_the_exact_path_or_agrees(event):
    agree(dumps([event]))
    agree(dumps([*generated(3), event, *generated(2, seed=6)]))
    agree(dumps(event) + b"\n", lines=True)


@pytest.mark.parametrize(
    "body",
    [
        b'[{"message": "a", "message": "b"}]',
        b'[{"message": "a", "attributes": {"k": 1, "k": 2}}]',
        b'{"message": "a"}\n{"message": "b", "host": "x", "host": "x"}\n',
        b'[{"message": "\\ud800"}]',  # a lone surrogate: invalid for orjson
        b'[{"message": "\xff"}]',
        b'[{"message": "a", "attributes": {"x": 1e999}}]',
        b'[{"message": "a", "attributes": {"x": NaN}}]',
        b'[{"message": "a", "attributes": {"x": 123456789012345678901234567890}}]',
        b'[{"message": "a"}] trailing',
        b'[{"message": "a"},]',
        b"[]",
        b"",
        b"\n\n",
        b'  [ {"message" : "spaced" ,"level":"error"} ]  ',
        b'{"message": "a"}\r\n{"message": "b"}\r\n',
        b'[{"message": "esc \\" \\\\ \\/ \\u0041"}]',
        b'[{"message": "a"}, {"message": "b", "id": "a"}, {"message": "c", "id": "a"}]',
    ],
)
def test_bodies_the_exact_path_refuses_or_must_read_closely(body):
    lines = not body.lstrip().startswith(b"[")
    agree(body, lines)


def test_an_event_over_the_size_limit_is_left_to_the_exact_path():
    big = {
        "message": "m" * MAX_MESSAGE_CHARS,
        "attributes": {f"k{i}": "v" * 3000 for i in range(80)},
    }
    body = orjson.dumps([big])
    assert len(body) > MAX_EVENT_BYTES
    agree(body, taken=False)
    agree(orjson.dumps(big), lines=True, taken=False)


def test_randomly_altered_events_never_pass_what_the_exact_path_refuses():
    rng = random.Random(18)
    alterations = [
        lambda e: e.update(severity=rng.choice(["warn", "oops", 3])),
        lambda e: e.update(host=rng.choice([None, 7, "", "h" * (MAX_FIELD_CHARS + 1)])),
        lambda e: e.update(attributes=rng.choice([{}, {"a": {"b": 1}}, {"$x": 1}, {"k": 2**70}])),
        lambda e: e.update(timestamp=rng.choice(["2026-02-01T07:59:59.999Z", "yesterday", 1.5])),
        lambda e: e.update(id=rng.choice(["stats", "ok-id", "", 12])),
        lambda e: e.pop("message", None) and e.pop("action", None),
        lambda e: e.update(extra_field=rng.random()),
        lambda e: e.update(level=rng.choice(["fatal", "FATAL", " info", None])),
    ]
    for _ in range(150):
        events = generated(rng.randint(1, 6), seed=rng.randint(0, 1000))
        for event in rng.sample(events, rng.randint(0, len(events))):
            rng.choice(alterations)(event)
        body = dumps(events)
        if rng.random() < 0.2:  # a repeated key, in the text only
            body = body.replace(b'"service":', b'"service":"x","service":', 1)
        agree(body)
