"""Rollup storage: count keys and the delta documents a batch writes."""

from __future__ import annotations

from collections import Counter

import pytest

from services.core.logs.rollups import count_key, delta_docs, parse_key

H = 1_780_000_200 - 1_780_000_200 % 3600  # an hour boundary


@pytest.mark.parametrize("service", [None, "", "api", "db.main", "a:b", "$x", "50%", "ü/ß"])
def test_count_keys_round_trip_and_are_valid_document_keys(service: str | None) -> None:
    key = count_key("m", H, "INFO", service)
    assert "." not in key and not key.startswith("$")
    assert parse_key(key) == ("m", H, "INFO", service)


def test_deltas_are_split_by_day() -> None:
    c = Counter({count_key("m", H, "INFO", None): 1, count_key("m", H + 86400, "INFO", None): 2})
    docs = delta_docs("t", "tok", c)
    assert len(docs) == 2
    assert all(d["_id"].startswith("t:") and d["_id"].endswith(":d:tok") for d in docs)
