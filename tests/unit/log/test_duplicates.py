"""Duplicate JSON keys: the counting pre-check and the exact search that names them."""

from __future__ import annotations

import json
import random

import orjson
import pytest

from services.cli.synthetic import EventGenerator
from services.log.duplicates import duplicate_key_errors, strings_in, strings_in_text


def errors_of(body: bytes, lines: bool = False) -> list[dict]:
    """What ingest sees: orjson's (last-wins) parse of the same body."""
    if lines:
        events = [orjson.loads(line) for line in body.splitlines() if line.strip()]
    else:
        parsed = orjson.loads(body)
        events = parsed if isinstance(parsed, list) else [parsed]
    return duplicate_key_errors(body, events, lines)


def fields(body: bytes, lines: bool = False) -> list[tuple[int, str]]:
    return [(e["index"], e["field"]) for e in errors_of(body, lines)]


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b'{"message":"a","message":"b"}', [(0, "message")]),
        (b'{"message":"m","level":"INFO","level":"ERROR"}', [(0, "level")]),
        (b'{"message":"m","attributes":{"x":1,"x":2}}', [(0, "attributes.x")]),
        (b'{"message":"m","a":{"b":{"c":"1","c":"1"}}}', [(0, "a.b.c")]),
        (b'{"message":"m","l":[{"a":1},{"a":1,"a":1}]}', [(0, "l[1].a")]),
        (b'{"message":"m","n":1,"n":{"deep":["x"]}}', [(0, "n")]),
        (b'{"message":"m","n":null,"n":null}', [(0, "n")]),
    ],
)
def test_duplicates_in_one_event_are_named(body, expected):
    assert fields(body) == expected


def test_error_message_names_the_key():
    [error] = errors_of(b'{"message":"m","attributes":{"x":1,"x":2}}')
    assert error["message"] == (
        "the key 'x' appears more than once in one object; JSON keys must be unique"
    )


def test_duplicates_in_an_array_are_reported_per_index():
    body = b'[{"message":"ok"},{"message":"a","k":1,"k":2},{"message":"ok"},{"a":{"b":1,"b":1}}]'
    assert fields(body) == [(1, "k"), (3, "a.b")]


def test_duplicates_in_ndjson_lines_are_reported_per_event_not_per_line():
    body = (
        b'{"message":"ok"}\n\n{"message":"a","k":1,"k":2}\r\n'
        b'   \n{"message":"ok","m":{"z":1,"z":1}}\n'
    )
    assert fields(body, lines=True) == [(1, "k"), (2, "m.z")]


def test_same_key_in_different_objects_is_not_a_duplicate():
    body = b'[{"message":"m","a":{"k":1},"b":{"k":1},"l":[{"k":1},{"k":2}]},{"message":"m"}]'
    assert errors_of(body) == []


@pytest.mark.parametrize(
    "body",
    [
        # escaped quotes in keys and values
        rb'{"message":"say \"hi\"","k\"ey":"v\"","k\"":1}',
        # escaped backslashes, also right before a closing quote and before an escaped quote
        rb'{"message":"C:\\dir\\","path":"\\\\server\\share","q":"\\\"x\\\""}',
        # unicode escapes, a raw multi-byte key, an escaped solidus and control escapes
        '{"message":"\\u00e9\\ud83d\\ude00","ключ":"é","\\/":"\\n\\t\\r\\b\\f"}'.encode(),
        # strings that look like JSON
        rb'{"message":"{\"a\":1,\"a\":2}","raw":"[\"x\",\"x\"]"}',
        # keys that differ only after decoding are not equal: \u0061 vs A
        rb'{"message":"m","\u0061":1,"A":2}',
    ],
)
def test_no_false_positive_with_escapes(body):
    assert errors_of(body) == []
    # and the count is exact, not just "no duplicates found later"
    assert strings_in_text(body) == strings_in(orjson.loads(body))


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (rb'{"message":"m","k\"ey":1,"k\"ey":2}', 'k"ey'),
        (rb'{"message":"m","k\\":1,"k\\":2}', "k\\"),
        (rb'{"message":"m","a":"x\\\"y","a":"\\"}', "a"),
        # the same key spelled two ways: equal once decoded
        (rb'{"message":"m","\u0061":1,"a":2}', "a"),
        (b'{"message":"m","\\u00e9":1,"\xc3\xa9":2}', "\u00e9"),
        (rb'{"message":"m","\/":1,"/":2}', "/"),
    ],
)
def test_duplicates_hidden_behind_escapes_are_found(body, field):
    assert fields(body) == [(0, field)]


def test_generated_events_have_no_duplicates():
    events = EventGenerator(seed=3).batch(500)
    assert errors_of(orjson.dumps(events)) == []
    assert errors_of(b"\n".join(orjson.dumps(e) for e in events), lines=True) == []


def test_strings_in_counts_keys_and_string_values_at_every_depth():
    assert strings_in({"a": "x", "b": 1, "c": [1, "y", {"d": None, "e": ["z"]}]}) == 8
    assert strings_in([]) == 0
    assert strings_in("s") == 1


# --- randomized: the pre-check agrees with an exact parse -------------------------------

KEY_PARTS = ["a", "b", '"', "\\", "é", "😀", "\n", "/", "\\u", "\x7f", ""]


def _key(rng: random.Random) -> str:
    return "".join(rng.choice(KEY_PARTS) for _ in range(rng.randrange(0, 3)))


def _value(rng: random.Random, depth: int) -> str:
    """JSON text of a random value; objects may repeat keys (the text is what counts)."""
    kind = rng.randrange(6 if depth < 4 else 3)
    if kind == 0:
        return json.dumps(_key(rng), ensure_ascii=rng.random() < 0.5)
    if kind == 1:
        return rng.choice(["1", "-0.5", "true", "null", "12345678901234567890"])
    if kind == 2:
        return json.dumps(_key(rng) * 3, ensure_ascii=False)
    if kind == 3:
        return "[" + ",".join(_value(rng, depth + 1) for _ in range(rng.randrange(4))) + "]"
    keys = [_key(rng) for _ in range(rng.randrange(5))]
    if keys and rng.random() < 0.2:
        keys.append(rng.choice(keys))  # a real duplicate
    members = [
        f"{json.dumps(k, ensure_ascii=rng.random() < 0.5)}:{_value(rng, depth + 1)}" for k in keys
    ]
    return "{" + ",".join(members) + "}"


def _has_duplicate(text: str) -> bool:
    found = False

    def hook(pairs: list) -> dict:
        nonlocal found
        found = found or len({k for k, _ in pairs}) != len(pairs)
        return dict(pairs)

    json.loads(text, object_pairs_hook=hook)
    return found


def test_randomized_bodies_agree_with_an_exact_parse():
    rng = random.Random(20261130)
    seen_duplicates = 0
    for _ in range(3000):
        events = [_value(rng, 1) for _ in range(rng.randrange(1, 4))]
        events = [e for e in events if e.startswith("{")] or ["{}"]
        body = ("[" + ",".join(events) + "]").encode()
        expected = [i for i, e in enumerate(events) if _has_duplicate(e)]
        assert [e["index"] for e in errors_of(body)] == expected, body
        assert [e["index"] for e in errors_of(b"\n".join(e.encode() for e in events), True)] == (
            expected
        )
        seen_duplicates += bool(expected)
    assert seen_duplicates > 300  # the generator does make duplicates


@pytest.mark.parametrize("duplicate", [False, True])
def test_objects_deeper_than_orjson_writes_are_still_counted(duplicate):
    # The parsed events are counted in orjson's text of them; orjson writes at most
    # 255 levels (it parses 1,024), so deeper ones are walked instead.
    inner = '{"k": 1, "k": 2}' if duplicate else '{"k": 1}'
    body = ('{"a": [' * 300 + inner + "]}" * 300).encode()
    with pytest.raises(orjson.JSONEncodeError):
        orjson.dumps(orjson.loads(body))
    assert bool(errors_of(b"[" + body + b"]")) is duplicate
