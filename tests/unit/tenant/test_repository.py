"""How a tenant's limits are shown and how a limits patch becomes a MongoDB update."""

from __future__ import annotations

from datetime import UTC, datetime

from services.core.limits import Limits
from services.tenant.repository import limit_changes, tenant_out
from services.tenant.schemas import TenantUpdate

DEFAULTS = Limits(100, 200, 1000, 0, 8, 0, 1000, 50)
NOW = datetime(2026, 1, 1, tzinfo=UTC)


def test_limits_shown_are_the_effective_ones_and_the_overrides() -> None:
    doc = {
        "_id": "acme",
        "name": "Acme",
        "retention_days": 30,
        "status": "active",
        "created_at": NOW,
        "updated_at": NOW,
        "limits": {"daily_events": 500, "max_concurrent_tails": None},
    }
    out = tenant_out(doc, DEFAULTS)
    assert out["key"] == "acme" and "_id" not in out
    assert out["limits"] == {**DEFAULTS.as_dict(), "daily_events": 500}
    assert out["limit_overrides"] == {"daily_events": 500}
    bare = tenant_out({k: v for k, v in doc.items() if k != "limits"}, DEFAULTS)
    assert bare["limits"] == DEFAULTS.as_dict() and bare["limit_overrides"] == {}


def test_a_limits_patch_sets_given_fields_and_unsets_nulls() -> None:
    patch = TenantUpdate.model_validate(
        {"limits": {"daily_events": 10, "ingest_burst": None}}
    ).limits
    assert limit_changes(patch) == ({"limits.daily_events": 10}, {"limits.ingest_burst": ""})
    assert limit_changes(None) == ({}, {"limits": ""})  # `limits: null`: every default back
