"""Request and response models of the tenant service."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from services.core.limits import DESCRIPTIONS, MAX_LIMIT_VALUE
from services.core.rbac import Role

TENANT_KEY_PATTERN = r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$"


def _limit_field(name: str) -> Any:
    return Field(
        None,
        ge=0,
        le=MAX_LIMIT_VALUE,
        description=DESCRIPTIONS[name] + " null: back to the default.",
    )


class LimitsPatch(BaseModel):
    """Per-tenant overrides of the default limits (whole numbers ≥ 0; 0 = no limit,
    except ingest_burst). A field left out stays as it is; null restores the default."""

    # strict: "10" or 10.0 is not a limit someone meant to send
    model_config = ConfigDict(extra="forbid", strict=True)

    ingest_events_per_second: int | None = _limit_field("ingest_events_per_second")
    ingest_burst: int | None = _limit_field("ingest_burst")
    ingest_bytes_per_second: int | None = _limit_field("ingest_bytes_per_second")
    daily_events: int | None = _limit_field("daily_events")
    max_concurrent_queries: int | None = _limit_field("max_concurrent_queries")
    max_query_range_hours: int | None = _limit_field("max_query_range_hours")
    max_export_events: int | None = _limit_field("max_export_events")
    max_concurrent_tails: int | None = _limit_field("max_concurrent_tails")


class TenantCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    key: str = Field(
        pattern=TENANT_KEY_PATTERN,
        description="Slug: lower-case letters, digits and dashes, 1-63 characters.",
    )
    name: str = Field(min_length=1, max_length=200)
    retention_days: int = Field(30, ge=1, le=3650)
    description: str | None = Field(None, max_length=1000)
    limits: LimitsPatch | None = Field(None, description="Overrides of the default limits.")


class TenantUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(None, min_length=1, max_length=200)
    retention_days: int | None = Field(None, ge=1, le=3650)
    description: str | None = Field(None, max_length=1000)
    status: Literal["active", "disabled"] | None = None
    limits: LimitsPatch | None = Field(
        None,
        description="Changes to the tenant's limits (platform admin only): the fields given "
        "are set, a null field goes back to its default, the others stay; `limits: null` "
        "restores every default.",
    )

    @model_validator(mode="after")
    def not_empty(self) -> TenantUpdate:
        if not self.model_fields_set:
            raise ValueError(
                "send at least one of name, retention_days, description, status, limits"
            )
        nulls = [
            f
            for f in ("name", "retention_days", "status")
            if f in self.model_fields_set and getattr(self, f) is None
        ]
        if nulls:
            raise ValueError(f"{', '.join(nulls)} cannot be null (only description can)")
        return self


class TenantOut(BaseModel):
    key: str
    name: str
    retention_days: int
    status: str
    description: str | None = None
    limits: dict[str, int] = Field(
        description="The effective limits: the defaults, with this tenant's overrides."
    )
    limit_overrides: dict[str, int] = Field(description="The limits set for this tenant.")
    created_at: datetime
    updated_at: datetime


class ApiKeyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    role: Role


class ApiKeyOut(BaseModel):
    id: str
    tenant: str
    name: str
    role: str
    created_at: datetime
    last_used_at: datetime | None = None
    revoked_at: datetime | None = None


class ApiKeyCreated(ApiKeyOut):
    client_id: str
    client_secret: str = Field(description="Shown once; only its hash is stored.")


class PageMeta(BaseModel):
    total: int
    limit: int | None = None
    offset: int | None = None


class TenantPage(BaseModel):
    data: list[TenantOut]
    meta: PageMeta


class ApiKeyList(BaseModel):
    data: list[ApiKeyOut]
    meta: PageMeta
