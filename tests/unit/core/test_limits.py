"""Limits: defaults from settings, a tenant's overrides, the sizes of the ingest buckets."""

from __future__ import annotations

import pytest

from services.core.limits import DESCRIPTIONS, LIMIT_FIELDS, MAX_LIMIT_VALUE, Limits, LimitSettings

BASE = Limits(
    ingest_events_per_second=100,
    ingest_burst=300,
    ingest_bytes_per_second=1000,
    daily_events=0,
    max_concurrent_queries=4,
    max_query_range_hours=0,
    max_export_events=10,
    max_concurrent_tails=2,
)


def test_the_eight_fields_of_the_design_each_described() -> None:
    assert LIMIT_FIELDS == (
        "ingest_events_per_second",
        "ingest_burst",
        "ingest_bytes_per_second",
        "daily_events",
        "max_concurrent_queries",
        "max_query_range_hours",
        "max_export_events",
        "max_concurrent_tails",
    )
    assert set(DESCRIPTIONS) == set(LIMIT_FIELDS)


def test_defaults_come_from_the_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOGSERVER_LIMIT_MAX_CONCURRENT_TAILS", "7")
    limits = LimitSettings().default_limits
    assert limits.max_concurrent_tails == 7
    assert limits.daily_events == 0  # the daily quota is off by default


def test_overrides_replace_only_the_fields_they_name() -> None:
    limits = BASE.with_overrides({"max_concurrent_queries": 1, "daily_events": 0, "other": 5})
    assert limits == Limits(**{**BASE.as_dict(), "max_concurrent_queries": 1})
    assert BASE.with_overrides(None) is BASE
    assert BASE.with_overrides({}) is BASE


@pytest.mark.parametrize("bad", [-1, "10", 1.5, True, None, [3]])
def test_invalid_stored_values_keep_the_default(bad: object) -> None:
    assert BASE.with_overrides({"max_export_events": bad}).max_export_events == 10


def test_huge_values_are_held_to_the_maximum() -> None:
    assert BASE.with_overrides({"daily_events": 10**20}).daily_events == MAX_LIMIT_VALUE


def test_bucket_sizes() -> None:
    assert BASE.event_capacity == 300
    assert BASE.burst_seconds == 3.0
    assert BASE.byte_capacity == 3000  # as many seconds as the events bucket
    no_burst = BASE.with_overrides({"ingest_burst": 0})
    assert no_burst.event_capacity == 100 and no_burst.burst_seconds == 1.0
    small_burst = BASE.with_overrides({"ingest_burst": 10})
    assert small_burst.burst_seconds == 1.0  # the bytes bucket holds at least a second
    assert small_burst.byte_capacity == 1000
    unlimited_events = BASE.with_overrides({"ingest_events_per_second": 0})
    assert unlimited_events.byte_capacity == 1000
