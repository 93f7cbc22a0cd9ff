"""Events that are not the common shape: aliases, attributes at the top level, wrong
types, values out of range, bad ids, timestamps and levels. Each fast path of ingest
(``events._plain``, ``fastdecode``) must leave every one of them to the exact path or
agree with it; some are valid (the exact path takes them), most are refused."""

from __future__ import annotations

from typing import Any

from services.log.events import MAX_FIELD_CHARS, MAX_ID_CHARS, MAX_KEYS

UNCOMMON_EVENTS: list[dict[str, Any]] = [
    {"msg": "alias"},
    {"message": "m", "custom": 1},  # a top-level attribute
    {"message": "m", "tenant_id": "other"},
    {"message": "m", "service": 42},  # a number for a string field
    {"message": "m", "service": True},
    {"message": "m", "service": None},
    {"message": "m", "service": {"a": 1}},
    {"message": "m", "attributes": "x"},
    {"message": "m", "attributes": {}},
    {"message": "m", "attributes": {"n": 1 << 64}},
    {"message": "m", "attributes": {"$where": "x"}},
    {"message": "m", "attributes": {"a\uff0eb": "x"}},
    {"message": "m", "metadata": {"a": [[1]]}},
    {"message": "m", "before": {f"k{i}": i for i in range(MAX_KEYS + 1)}},
    {"message": "m" * (MAX_FIELD_CHARS + 1)},  # valid: the exact path takes it
    {"message": "m", "host": "h" * (MAX_FIELD_CHARS + 1)},
    {"message": "m", "level": "Info"},
    {"message": "m", "level": "loud"},
    {"message": "m", "timestamp": "2026-01-31T12:00:00Z"},
    {"message": "m", "timestamp": "2026-04-31T12:00:00.000Z"},
    {"message": "m", "timestamp": "2026-01-31T25:00:00.000Z"},
    {"message": "m", "timestamp": "2026-01-31T12:00:00.\u0661\u0662\u0663Z"},
    {"message": "m", "timestamp": 1_769_860_800},
    {"message": "m", "timestamp": "2025-01-01T00:00:00.000Z"},  # older than the window
    {"message": "m", "timestamp": "2026-02-03T00:00:00.000Z"},  # too far ahead
    {"message": "m", "id": ""},
    {"message": "m", "id": "stats"},
    {"message": "m", "id": "a/b"},
    {"message": "m", "id": "x" * (MAX_ID_CHARS + 1)},
    {"message": "m", "id": 7},
    {"service": "s"},  # neither message nor action
    {},
]
