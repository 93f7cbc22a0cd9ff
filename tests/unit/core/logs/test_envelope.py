"""The queue message body: v1 (plain JSON) and v2 (zlib + base64), both readable."""

from __future__ import annotations

import base64
import json
import random
import zlib

import orjson
import pytest

from services.core.logs import envelope
from services.core.logs.envelope import EnvelopeError


def events(n: int) -> list[bytes]:
    return [
        orjson.dumps({"id": f"e{i}", "level": "info", "message": f"user {i} logged in"})
        for i in range(n)
    ]


def test_compressible_events_are_sent_as_v2_and_read_back() -> None:
    evs = events(50)
    body = envelope.encode("acme", evs)
    doc = json.loads(body)
    assert doc["v"] == 2 and doc["tenant_id"] == "acme"
    assert len(body) < len(b",".join(evs)) / 3
    assert envelope.decode(body) == ("acme", [orjson.loads(e) for e in evs])


def test_incompressible_events_stay_v1_and_never_grow() -> None:
    noise = base64.b64encode(random.Random(1).randbytes(300)).decode()
    evs = [orjson.dumps({"id": "1", "message": noise})]
    body = envelope.encode("t", evs)
    assert json.loads(body) == {"v": 1, "tenant_id": "t", "events": [orjson.loads(evs[0])]}
    assert envelope.decode(body) == ("t", [orjson.loads(evs[0])])


def test_empty_event_list_round_trips() -> None:
    assert envelope.decode(envelope.encode("t", [])) == ("t", [])


def test_v1_escapes_noncharacters_sqs_refuses() -> None:
    event = orjson.dumps({"id": "1", "message": "a\ufffeb\uffffc é \u2028"})
    assert b"\xef\xbf\xbe" in event  # orjson leaves them raw
    body = envelope.encode("t", [event])
    assert "\ufffe" not in body and "\uffff" not in body
    assert envelope.decode(body)[1][0]["message"] == "a\ufffeb\uffffc é \u2028"


def test_v2_body_is_ascii() -> None:
    body = envelope.encode("t", [orjson.dumps({"id": "1", "message": "\ufffe é" * 50})])
    assert body.isascii()
    assert envelope.decode(body)[1][0]["message"] == "\ufffe é" * 50


def v2(payload: bytes, tenant: str = "t") -> str:
    return json.dumps(
        {"v": 2, "tenant_id": tenant, "events_zlib": base64.b64encode(payload).decode()}
    )


@pytest.mark.parametrize(
    "body",
    [
        "not json",
        "[1]",
        '{"v": 3, "tenant_id": "t", "events": []}',
        '{"v": 1, "tenant_id": 5, "events": []}',
        '{"v": 1, "tenant_id": "t", "events": {}}',
        '{"v": 2, "tenant_id": "t"}',
        '{"v": 2, "tenant_id": "t", "events_zlib": 5}',
        '{"v": 2, "tenant_id": "t", "events_zlib": "not base64!"}',
        v2(b"not zlib at all"),
        v2(zlib.compress(b"not json")),
        v2(zlib.compress(b'{"not": "a list"}')),
        v2(zlib.compress(b"[1, 2, 3]")[:-4]),  # truncated stream
    ],
)
def test_bad_bodies_are_refused(body: str) -> None:
    with pytest.raises(EnvelopeError):
        envelope.decode(body)


def test_a_zip_bomb_is_refused_without_inflating_it_all() -> None:
    bomb = zlib.compress(b"[" + b" " * (envelope.MAX_INFLATED_BYTES + 1024) + b"]", 9)
    with pytest.raises(EnvelopeError, match="beyond the limit"):
        envelope.decode(v2(bomb))
