"""Request models of the tenant service: slugs, extra fields, empty patches, retention."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from services.tenant.schemas import ApiKeyCreate, TenantCreate, TenantUpdate


def create(**fields: Any) -> TenantCreate:
    return TenantCreate.model_validate({"key": "acme", "name": "Acme", **fields})


@pytest.mark.parametrize(
    "key", ["a", "0", "acme", "acme-prod", "a1", "1a", "a-b-c", "a--b", "x" * 63, "9" * 63]
)
def test_key_slug_accepted(key: str) -> None:
    assert create(key=key).key == key


@pytest.mark.parametrize(
    "key",
    [
        "",
        "-acme",
        "acme-",
        "-",
        "Acme",
        "ACME",
        "ac_me",
        "ac me",
        "acme.prod",
        "acme/prod",
        "*",
        "acmé",
        "x" * 64,
        "acme\n",
        " acme",
    ],
)
def test_key_slug_rejected(key: str) -> None:
    with pytest.raises(ValidationError) as info:
        create(key=key)
    assert info.value.errors()[0]["loc"] == ("key",)


def test_create_defaults() -> None:
    tenant = create()
    assert tenant.retention_days == 30
    assert tenant.description is None


@pytest.mark.parametrize("days", [1, 30, 3650])
def test_retention_bounds_accepted(days: int) -> None:
    assert create(retention_days=days).retention_days == days
    assert TenantUpdate(retention_days=days).retention_days == days


@pytest.mark.parametrize("days", [0, -1, 3651, 100_000])
def test_retention_bounds_rejected(days: int) -> None:
    with pytest.raises(ValidationError):
        create(retention_days=days)
    with pytest.raises(ValidationError):
        TenantUpdate(retention_days=days)


@pytest.mark.parametrize("name", ["", "x" * 201])
def test_name_length(name: str) -> None:
    with pytest.raises(ValidationError):
        create(name=name)


@pytest.mark.parametrize(
    ("model", "data"),
    [
        (TenantCreate, {"key": "acme", "name": "Acme", "status": "active"}),
        (TenantCreate, {"key": "acme", "name": "Acme", "tenant_id": "other"}),
        (TenantUpdate, {"name": "Acme", "key": "renamed"}),
        (ApiKeyCreate, {"name": "ci", "role": "writer", "tenant": "other"}),
    ],
)
def test_extra_fields_forbidden(model: type, data: dict[str, Any]) -> None:
    with pytest.raises(ValidationError) as info:
        model.model_validate(data)
    assert any(e["type"] == "extra_forbidden" for e in info.value.errors())


def test_create_requires_key_and_name() -> None:
    with pytest.raises(ValidationError) as info:
        TenantCreate.model_validate({})
    assert {e["loc"] for e in info.value.errors()} == {("key",), ("name",)}


def test_empty_update_rejected() -> None:
    with pytest.raises(ValidationError) as info:
        TenantUpdate.model_validate({})
    assert "at least one" in str(info.value)


@pytest.mark.parametrize(
    "data",
    [
        {"name": "New name"},
        {"retention_days": 7},
        {"description": "d"},
        {"description": None},  # clearing the description is a real change
        {"status": "disabled"},
        {"status": "active", "name": "n"},
    ],
)
def test_update_with_fields_accepted(data: dict[str, Any]) -> None:
    update = TenantUpdate.model_validate(data)
    assert update.model_dump(exclude_unset=True) == data


def test_update_status_values() -> None:
    with pytest.raises(ValidationError):
        TenantUpdate.model_validate({"status": "deleted"})


@pytest.mark.parametrize("field", ["name", "retention_days", "status"])
def test_update_rejects_null_for_required_fields(field: str) -> None:
    with pytest.raises(ValidationError):
        TenantUpdate.model_validate({field: None})


@pytest.mark.parametrize("role", ["admin", "auditor", "viewer", "writer"])
def test_api_key_roles(role: str) -> None:
    assert ApiKeyCreate(name="ci", role=role).role == role  # type: ignore[arg-type]


@pytest.mark.parametrize("role", ["root", "Admin", "", "reader"])
def test_api_key_unknown_role_rejected(role: str) -> None:
    with pytest.raises(ValidationError):
        ApiKeyCreate.model_validate({"name": "ci", "role": role})


# --- limits ---------------------------------------------------------------------------


def test_limits_patch_keeps_what_was_sent_and_nulls() -> None:
    patch = TenantUpdate.model_validate({"limits": {"daily_events": 10, "ingest_burst": None}})
    assert patch.limits is not None
    assert patch.limits.model_fields_set == {"daily_events", "ingest_burst"}
    assert TenantUpdate.model_validate({"limits": None}).model_fields_set == {"limits"}
    assert TenantUpdate.model_validate({"limits": {}}).limits is not None


@pytest.mark.parametrize(
    "limits",
    [
        {"daily_events": -1},
        {"daily_events": 1.5},
        {"daily_events": 10.0},
        {"daily_events": "10"},
        {"daily_events": 10**13},
        {"unknown_limit": 1},
        [1],
    ],
)
def test_limits_patch_refuses_what_is_not_a_whole_number_or_null(limits: Any) -> None:
    with pytest.raises(ValidationError):
        TenantUpdate.model_validate({"limits": limits})
    with pytest.raises(ValidationError):
        create(limits=limits)
