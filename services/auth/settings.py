"""Settings of the auth service (env prefix `LOGSERVER_`)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr

from services.core.settings import CoreSettings


class AuthSettings(CoreSettings):
    service_name: str = Field("auth", description="Name used in logs and metrics.")
    port: int = Field(8001, description="Port of the auth service.")
    jwt_keys_dir: Path = Field(
        Path(".data/jwt-keys"),
        description="Directory of RSA private keys (PEM, one per file). Every key is "
        "published in the JWKS; the newest file (by name) signs new tokens.",
    )
    jwt_generate_keys: bool = Field(
        False, description="Generate a first key into an empty key directory (dev only)."
    )
    token_ttl_seconds: int = Field(3600, ge=60, le=86400, description="Access token lifetime.")
    bootstrap_admin_client_id: str | None = Field(
        None,
        description="Client id of the platform-admin credential created at the first start. "
        "Created once: a later start never resets it, so a revoked or rotated admin stays so.",
    )
    bootstrap_admin_client_secret: SecretStr | None = Field(
        None, description="Its secret (no default: set it, or let `make dev` generate one)."
    )
