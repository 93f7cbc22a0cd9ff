"""Which log indexes a storage gets."""

from __future__ import annotations

from services.core.logstore import LOG_INDEXES, log_indexes_for


def test_ferretdb_v1_gets_no_secondary_log_indexes() -> None:
    assert log_indexes_for({"version": "7.0.42", "ferretdbVersion": "v1.24.2"}) == []


def test_mongodb_and_later_ferretdb_get_every_index() -> None:
    assert log_indexes_for({"version": "7.0.14"}) == LOG_INDEXES
    assert log_indexes_for({"version": "7.0.42", "ferretdbVersion": "v2.1.0"}) == LOG_INDEXES
