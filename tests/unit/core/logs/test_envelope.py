"""The queue message body: v1 (plain JSON), v2 (zlib + base64), v3 (zstd + base64)."""

from __future__ import annotations

import base64
import json
import random
import zlib

import cramjam
import orjson
import pytest

from services.core.logs import envelope
from services.core.logs.envelope import EnvelopeError


def events(n: int) -> list[bytes]:
    return [
        orjson.dumps({"id": f"e{i}", "level": "info", "message": f"user {i} logged in"})
        for i in range(n)
    ]


def test_compressible_events_are_sent_as_v3_and_read_back() -> None:
    evs = events(400)
    body = envelope.encode("acme", evs)
    doc = json.loads(body)
    assert doc["v"] == 3 and doc["tenant_id"] == "acme" and "events_zstd" in doc
    assert len(body) < len(b",".join(evs)) / 3
    assert envelope.decode(body) == ("acme", [orjson.loads(e) for e in evs])


def test_a_v3_body_is_inflated_only_when_its_events_are_read() -> None:
    evs = events(400)
    opened = envelope.open_body(envelope.encode("acme", evs))
    assert opened.raw is None  # the worker holds the compressed bytes until it has room
    assert opened.size == len(b"[%s]" % b",".join(evs))
    assert opened.events() == [orjson.loads(e) for e in evs]


def test_a_small_body_is_zlib_where_zstd_would_cost_more() -> None:
    # zstd's fixed cost per call exceeds what it saves on a few events (v2 reads anywhere).
    small, large = events(20), events(400)
    assert len(b",".join(small)) < envelope.ZSTD_FROM_BYTES <= len(b",".join(large))
    assert json.loads(envelope.encode("acme", small))["v"] == 2
    assert json.loads(envelope.encode("acme", large))["v"] == 3
    assert envelope.decode(envelope.encode("acme", small)) == (
        "acme",
        [orjson.loads(e) for e in small],
    )


def test_zlib_compression_still_sends_v2() -> None:
    evs = events(50)
    body = envelope.encode("acme", evs, compression="zlib")
    doc = json.loads(body)
    assert doc["v"] == 2 and doc["tenant_id"] == "acme" and "events_zlib" in doc
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


@pytest.mark.parametrize("compression", ["zstd", "zlib"])
def test_compressed_body_is_ascii(compression: envelope.Compression) -> None:
    event = orjson.dumps({"id": "1", "message": "\ufffe é" * 50})
    body = envelope.encode("t", [event], compression)
    assert body.isascii()
    assert envelope.decode(body)[1][0]["message"] == "\ufffe é" * 50


def test_bodies_of_an_older_producer_are_still_read() -> None:
    evs = [{"id": "1", "message": "hello"}, {"id": "2", "message": "world"}]
    array = json.dumps(evs).encode()
    v1 = json.dumps({"v": 1, "tenant_id": "t", "events": evs})
    assert envelope.decode(v1) == ("t", evs)
    assert envelope.decode(v2(zlib.compress(array))) == ("t", evs)


def v2(payload: bytes, tenant: str = "t") -> str:
    return json.dumps(
        {"v": 2, "tenant_id": tenant, "events_zlib": base64.b64encode(payload).decode()}
    )


def v3(payload: bytes, tenant: str = "t") -> str:
    return json.dumps(
        {"v": 3, "tenant_id": tenant, "events_zstd": base64.b64encode(payload).decode()}
    )


def zstd(data: bytes) -> bytes:
    return bytes(cramjam.zstd.compress(data, level=1))


def streamed_zstd(*chunks: bytes) -> bytes:
    """A frame that does not declare its content size (as a streaming writer makes)."""
    compressor = cramjam.zstd.Compressor(level=1)
    for chunk in chunks:
        compressor.compress(chunk)
    return bytes(compressor.finish())


def test_a_v3_frame_without_a_declared_size_is_read() -> None:
    frame = streamed_zstd(b'[{"id": "1"},', b'{"id": "2"}]')
    assert envelope._zstd_content_size(frame) is None
    assert envelope.decode(v3(frame)) == ("t", [{"id": "1"}, {"id": "2"}])


@pytest.mark.parametrize(
    "body",
    [
        "not json",
        "[1]",
        '{"v": 4, "tenant_id": "t", "events": []}',
        '{"v": 3, "tenant_id": "t", "events": []}',
        '{"v": 3, "tenant_id": "t", "events_zstd": 5}',
        '{"v": 3, "tenant_id": "t", "events_zstd": "not base64!"}',
        '{"v": 1, "tenant_id": 5, "events": []}',
        '{"v": 1, "tenant_id": "t", "events": {}}',
        '{"v": 2, "tenant_id": "t"}',
        '{"v": 2, "tenant_id": "t", "events_zlib": 5}',
        '{"v": 2, "tenant_id": "t", "events_zlib": "not base64!"}',
        v2(b"not zlib at all"),
        v2(zlib.compress(b"not json")),
        v2(zlib.compress(b'{"not": "a list"}')),
        v2(zlib.compress(b"[1, 2, 3]")[:-4]),  # truncated stream
        v3(b"not zstd at all"),
        v3(zstd(b"not json")),
        v3(zstd(b'{"not": "a list"}')),
        v3(zstd(b"[1, 2, 3]" * 50)[:-6]),  # truncated frame
        v3(streamed_zstd(b"[1, 2, 3]" * 50)[:-6]),  # truncated, no declared size
        v3(zstd(b"[1, 2, 3]") + b"trailing garbage"),
        v3(zstd(b"[1,") + zstd(b"2]")),  # two frames: more than the first declares
        v3(b"garbage" + zstd(b"[1, 2, 3]")),
        base64.b64encode(zstd(b"[1, 2, 3]")).decode()[:-2],  # not even an envelope
        v3(zstd(b"[1, 2, 3]"))[:-10] + '"}',  # truncated base64
    ],
)
def test_bad_bodies_are_refused(body: str) -> None:
    with pytest.raises(EnvelopeError):
        envelope.decode(body)


def test_a_zip_bomb_is_refused_without_inflating_it_all() -> None:
    bomb = zlib.compress(b"[" + b" " * (envelope.MAX_INFLATED_BYTES + 1024) + b"]", 9)
    with pytest.raises(EnvelopeError, match="beyond the limit"):
        envelope.decode(v2(bomb))


def test_a_zstd_bomb_declaring_its_size_is_refused_before_inflating() -> None:
    bomb = zstd(b"[" + b" " * (envelope.MAX_INFLATED_BYTES + 1024) + b"]")
    assert envelope._zstd_content_size(bomb) == envelope.MAX_INFLATED_BYTES + 1026
    with pytest.raises(EnvelopeError, match="beyond the limit"):
        envelope.open_body(v3(bomb))


def test_a_zstd_bomb_without_a_declared_size_is_refused_without_inflating_it_all() -> None:
    chunk = b" " * 2**20
    bomb = streamed_zstd(b"[", *[chunk] * 64, b"]")  # 64 MiB, 8x the limit
    assert len(bomb) < 10_000 and envelope._zstd_content_size(bomb) is None
    with pytest.raises(EnvelopeError, match="beyond the limit"):
        envelope.open_body(v3(bomb))


def test_a_zstd_frame_lying_about_its_size_is_refused() -> None:
    frame = bytearray(zstd(b"[" + b" " * 1000 + b"]"))
    assert frame[4] & 0x20 and envelope._zstd_content_size(bytes(frame)) == 1002
    frame[5:7] = (10).to_bytes(2, "little")  # declares 10 + 256 bytes
    opened = envelope.open_body(v3(bytes(frame)))
    assert opened.size == 266
    with pytest.raises(EnvelopeError):
        opened.events()
