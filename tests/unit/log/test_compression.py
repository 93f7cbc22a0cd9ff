"""Compressed bodies are inflated within a bound, and broken ones are 400."""

from __future__ import annotations

import gzip
import zlib

import cramjam
import pytest

from services.core.errors import BadRequest, PayloadTooLarge, UnsupportedMediaType
from services.log.compression import decode_content, gunzip, unsnappy

BODY = b'{"message": "hello"}\n' * 100


def test_gzip_round_trip_and_several_members():
    assert gunzip(gzip.compress(BODY), 10_000) == BODY
    assert gunzip(gzip.compress(b"a") + gzip.compress(b"b"), 10) == b"ab"


def test_gzip_bomb_is_refused_without_inflating_it_all():
    bomb = gzip.compress(b"\0" * 50_000_000)  # 50 MB of zeros in ~50 KB
    assert len(bomb) < 100_000
    with pytest.raises(PayloadTooLarge):
        gunzip(bomb, 10 * 1024 * 1024)


def test_gzip_exactly_at_the_limit_is_fine():
    assert len(gunzip(gzip.compress(b"x" * 1000), 1000)) == 1000
    with pytest.raises(PayloadTooLarge):
        gunzip(gzip.compress(b"x" * 1001), 1000)


@pytest.mark.parametrize(
    "data",
    [
        b"not gzip at all",
        gzip.compress(BODY)[:-12],  # truncated
        zlib.compress(BODY),  # zlib framing, not gzip
        gzip.compress(BODY) + b"garbage",
    ],
)
def test_broken_gzip_is_400(data):
    with pytest.raises(BadRequest):
        gunzip(data, 1_000_000)


def test_snappy_block_round_trip():
    assert unsnappy(bytes(cramjam.snappy.compress_raw(BODY)), 10_000) == BODY


def test_snappy_bomb_is_refused_from_its_header():
    bomb = bytes(cramjam.snappy.compress_raw(b"\0" * 20_000_000))
    with pytest.raises(PayloadTooLarge):
        unsnappy(bomb, 10 * 1024 * 1024)


@pytest.mark.parametrize(
    "data",
    [
        b"\xff\xff\xff\xff\xff\xff",
        b"\x10abc",
        bytes(cramjam.snappy.compress(BODY)),  # the framed format is not what Loki sends
    ],
)
def test_broken_snappy_is_400(data):
    with pytest.raises(BadRequest):
        unsnappy(data, 1_000_000)


def test_decode_content():
    assert decode_content(BODY, None, 10) == BODY  # no encoding: no bound here (read_body's)
    assert decode_content(BODY, "identity", 10) == BODY
    assert decode_content(gzip.compress(BODY), " GZIP ", 10_000) == BODY
    for other in ("br", "snappy", "deflate"):
        with pytest.raises(UnsupportedMediaType):
            decode_content(BODY, other, 10_000)
