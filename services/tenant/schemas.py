"""Request and response models of the tenant service."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from services.core.rbac import Role

TENANT_KEY_PATTERN = r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$"


class TenantCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    key: str = Field(
        pattern=TENANT_KEY_PATTERN,
        description="Slug: lower-case letters, digits and dashes, 1-63 characters.",
    )
    name: str = Field(min_length=1, max_length=200)
    retention_days: int = Field(30, ge=1, le=3650)
    description: str | None = Field(None, max_length=1000)


class TenantUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(None, min_length=1, max_length=200)
    retention_days: int | None = Field(None, ge=1, le=3650)
    description: str | None = Field(None, max_length=1000)
    status: Literal["active", "disabled"] | None = None

    @model_validator(mode="after")
    def not_empty(self) -> TenantUpdate:
        if not self.model_fields_set:
            raise ValueError("send at least one of name, retention_days, description, status")
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
