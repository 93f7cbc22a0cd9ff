"""Compressed request bodies, inflated within a bound (a small bomb must not become 1 GB).

Shippers compress: the OpenTelemetry exporters, Fluent Bit and Vector send
``Content-Encoding: gzip``; Promtail, Alloy and Fluent Bit's loki output send
Loki's protobuf as a snappy block. Every body is inflated to at most ``limit``
bytes (the same 10 MiB as an uncompressed bulk body); past that it is a 413
without inflating the rest, and a body that is not what it claims is a 400.
"""

from __future__ import annotations

import zlib

import cramjam

from services.core.errors import BadRequest, PayloadTooLarge, UnsupportedMediaType

GZIP = frozenset({"gzip", "x-gzip"})
IDENTITY = frozenset({"", "identity"})


def _too_large(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(f"The body inflates to more than {limit:,} bytes; send smaller batches.")


def gunzip(data: bytes, limit: int) -> bytes:
    """Inflate gzip ``data`` (one member or several, as gzip allows) to at most ``limit``."""
    out: list[bytes] = []
    size = 0
    rest = data
    while rest:
        inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)  # gzip framing only
        try:
            chunk = inflater.decompress(rest, limit - size + 1)
        except zlib.error as exc:
            raise BadRequest(f"The body is not valid gzip: {exc}.") from None
        size += len(chunk)
        if size > limit or inflater.unconsumed_tail:
            raise _too_large(limit)
        if not inflater.eof:
            raise BadRequest("The gzip body is truncated.")
        out.append(chunk)
        rest = inflater.unused_data
    return b"".join(out)


def unsnappy(data: bytes, limit: int) -> bytes:
    """Inflate one snappy block (Loki's push format: not the framed stream format).

    The block starts with its inflated length, so an oversized one is refused
    before anything is inflated.
    """
    try:
        size = cramjam.snappy.decompress_raw_len(data)
    except cramjam.DecompressionError:
        raise BadRequest("The body is not a snappy-compressed block.") from None
    if size > limit:
        raise _too_large(limit)
    try:
        return bytes(cramjam.snappy.decompress_raw(data))
    except cramjam.DecompressionError:
        raise BadRequest("The body is not a valid snappy-compressed block.") from None


def decode_content(data: bytes, content_encoding: str | None, limit: int) -> bytes:
    """The body without its ``Content-Encoding`` (identity or gzip), at most ``limit`` bytes."""
    encoding = (content_encoding or "").strip().lower()
    if encoding in IDENTITY:
        return data
    if encoding in GZIP:
        return gunzip(data, limit)
    raise UnsupportedMediaType(
        f"Content-Encoding '{encoding}' is not supported; send gzip or no encoding."
    )
