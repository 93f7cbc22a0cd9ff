"""The queue message body between the log service (producer) and the worker.

Three versions, all always readable:

- ``{"v":1,"tenant_id":"acme","events":[{...}, ...]}``
- ``{"v":2,"tenant_id":"acme","events_zlib":"<base64 of zlib('[{...}, ...]')>"}``
- ``{"v":3,"tenant_id":"acme","events_zstd":"<base64 of zstd('[{...}, ...]')>"}``

The producer compresses whenever that makes the body smaller (JSON logs shrink
4-6x): v3 (zstd) by default, v2 (zlib) when ``compression="zlib"`` (while
workers that cannot read v3 still run, see ``LOGSERVER_INGEST_QUEUE_COMPRESSION``).
Bytes are what the queue pays for: ElasticMQ with its H2 store spent ~0.09 ms
of CPU per KB sent, real SQS bills every 64 KB, and a smaller message lets one
``SendMessageBatch`` carry more events. zstd level 1 costs less than half of
zlib level 1 and makes a third less (1,000 benchmark events, 256 KB of JSON:
0.5 µs per event and 46 KB against 1.2 µs and 67 KB). v1 remains for bodies
that do not compress (never larger than the uncompressed form) and for
messages already queued by an older producer.
"""

from __future__ import annotations

import base64
import binascii
import zlib
from dataclasses import dataclass
from typing import Any, Literal

import cramjam
import orjson

Compression = Literal["zstd", "zlib"]

# SQS requires XML-valid characters; orjson already escapes control characters,
# only these two noncharacters can still appear in its UTF-8 output.
_NONCHARACTERS = ((b"\xef\xbf\xbe", b"\\ufffe"), (b"\xef\xbf\xbf", b"\\uffff"))
# Far above anything the producer makes (≤ 1 MiB of events per message, see
# services/log/batcher.py): a body that inflates beyond it is not ours (or is a
# zip bomb) and is refused.
MAX_INFLATED_BYTES = 8 * 1024 * 1024
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
# zstd costs ~10 µs more per call than zlib before it compresses a byte (its context),
# and is ~2x faster per byte: zlib (v2) is cheaper below about this much JSON (measured
# on events like the benchmark's), e.g. the few coalesced single events of a message.
ZSTD_FROM_BYTES = 16 * 1024


class EnvelopeError(ValueError):
    """The body is not a message this version understands."""


def encode(tenant_id: str, events: list[bytes], compression: Compression = "zstd") -> str:
    """The message body for events already serialized once (never parsed again)."""
    array = b"[%s]" % b",".join(events)
    tenant = tenant_id.encode()
    if compression == "zstd" and len(array) >= ZSTD_FROM_BYTES:
        compressed = base64.b64encode(cramjam.zstd.compress(array, level=1))
        if len(compressed) < len(array):
            return (b'{"v":3,"tenant_id":"%s","events_zstd":"%s"}' % (tenant, compressed)).decode()
    else:
        # cramjam's zlib: the same format the stdlib inflates, in ~60 % of stdlib's
        # level-1 time (2.5 -> 1.5 µs per event of a 1,000-event bulk, 4 % larger).
        compressed = base64.b64encode(cramjam.zlib.compress(array, level=1))
        if len(compressed) < len(array):
            return (b'{"v":2,"tenant_id":"%s","events_zlib":"%s"}' % (tenant, compressed)).decode()
    body = b'{"v":1,"tenant_id":"%s","events":%s}' % (tenant, array)
    for raw, escaped in _NONCHARACTERS:
        if raw in body:
            body = body.replace(raw, escaped)
    return body.decode()


@dataclass(frozen=True, slots=True)
class Opened:
    """A body whose events are not parsed yet (v2, v3) or came parsed with it (v1).

    ``size`` is the bytes of the events' JSON, known before the (larger) Python
    objects exist: a consumer can bound the memory of what it parses with it. A
    v3 body that declares its size (ours always do) is only inflated by
    :meth:`events`, so a consumer holds no more than the compressed bytes until
    it has room for the events.
    """

    tenant_id: str
    size: int
    raw: bytes | bytearray | None = None
    parsed: list[Any] | None = None
    zstd: bytes | None = None

    def events(self) -> list[Any]:
        if self.parsed is not None:
            return self.parsed
        raw = self.raw if self.zstd is None else _unzstd(self.zstd, self.size)
        try:
            events = orjson.loads(raw or b"")
        except orjson.JSONDecodeError as exc:
            raise EnvelopeError(f"the compressed events are not valid: {exc}") from None
        if not isinstance(events, list):
            raise EnvelopeError("tenant_id must be a string and events a list")
        return events


def open_body(body: str | bytes) -> Opened:
    """The tenant and the size of a v1, v2 or v3 body; :class:`EnvelopeError` otherwise.
    A v2 body is inflated here, a v3 body here only if its frame does not declare
    its size; the events are parsed (and a v3 body inflated) by :meth:`Opened.events`."""
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise EnvelopeError(f"not JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise EnvelopeError("the body is not a JSON object")
    tenant_id = doc.get("tenant_id")
    version = doc.get("v")
    if version not in (1, 2, 3):
        raise EnvelopeError(f"unknown message version {version!r}")
    if not isinstance(tenant_id, str):
        raise EnvelopeError("tenant_id must be a string and events a list")
    if version == 1:
        events = doc.get("events")
        if not isinstance(events, list):
            raise EnvelopeError("tenant_id must be a string and events a list")
        return Opened(tenant_id, len(body), parsed=events)
    if version == 2:
        raw = _inflate(doc.get("events_zlib"))
        return Opened(tenant_id, len(raw), raw=raw)
    frame = _b64(doc.get("events_zstd"), "events_zstd")
    declared = _zstd_content_size(frame)
    if declared is None:
        raw = _unzstd(frame, None)
        return Opened(tenant_id, len(raw), raw=raw)
    if declared > MAX_INFLATED_BYTES:
        raise EnvelopeError("events_zstd inflates beyond the limit")
    return Opened(tenant_id, declared, zstd=frame)


def decode(body: str | bytes) -> tuple[str, list[Any]]:
    """``(tenant_id, events)`` of a v1, v2 or v3 body; :class:`EnvelopeError` otherwise."""
    opened = open_body(body)
    return opened.tenant_id, opened.events()


def _b64(data: Any, name: str) -> bytes:
    if not isinstance(data, str):
        raise EnvelopeError(f"{name} must be a base64 string")
    try:
        return base64.b64decode(data, validate=True)
    except binascii.Error as exc:
        raise EnvelopeError(f"{name} is not valid: {exc}") from None


def _inflate(data: Any) -> bytes:
    compressed = _b64(data, "events_zlib")
    try:
        inflater = zlib.decompressobj()
        raw = inflater.decompress(compressed, MAX_INFLATED_BYTES)
        if inflater.unconsumed_tail or not inflater.eof:
            raise EnvelopeError("events_zlib is truncated or inflates beyond the limit")
        return raw
    except zlib.error as exc:
        raise EnvelopeError(f"events_zlib is not valid: {exc}") from None


def _zstd_content_size(frame: bytes) -> int | None:
    """The content size the first zstd frame's header declares (RFC 8878 §3.1.1.1),
    or None if it declares none (a streamed frame) or is not a zstd frame."""
    if len(frame) < 6 or frame[:4] != _ZSTD_MAGIC:
        return None
    descriptor = frame[4]
    fcs_flag, single_segment, dict_flag = descriptor >> 6, descriptor >> 5 & 1, descriptor & 3
    fcs_bytes = (single_segment, 2, 4, 8)[fcs_flag]
    if not fcs_bytes:
        return None
    start = 5 + (not single_segment) + (0, 1, 2, 4)[dict_flag]
    field = frame[start : start + fcs_bytes]
    if len(field) < fcs_bytes:
        return None
    return int.from_bytes(field, "little") + (256 if fcs_bytes == 2 else 0)


def _unzstd(frame: bytes, declared: int | None) -> bytearray:
    """Inflate into a buffer of fixed size: ``declared`` + 1 bytes, or
    MAX_INFLATED_BYTES + 1 for a frame that declares no size (our producer never
    makes one). cramjam stops with an error once the buffer is full, so a bomb
    costs at most that much, never its all (``cramjam.zstd.decompress`` and its
    ``Decompressor`` are not bounded)."""
    limit = MAX_INFLATED_BYTES if declared is None else declared
    out = bytearray(limit + 1)
    try:
        n = cramjam.zstd.decompress_into(frame, out)
    except cramjam.DecompressionError as exc:
        raise EnvelopeError(
            f"events_zstd is not valid or inflates beyond the limit ({limit:,} bytes): {exc}"
        ) from None
    if n > limit or (declared is not None and n != declared):
        raise EnvelopeError(f"events_zstd inflates beyond the limit ({limit:,} bytes)")
    del out[n:]
    return out
