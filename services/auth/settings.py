"""Settings of the auth service (env prefix `LOGSERVER_`)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from pydantic import Field, SecretStr, model_validator

from services.core.settings import CoreSettings
from services.core.tokens import JWKS_REFRESH_SECONDS


class AuthSettings(CoreSettings):
    service_name: str = Field("auth", description="Name used in logs and metrics.")
    port: int = Field(8001, description="Port of the auth service.")
    jwt_keys_dir: Path = Field(
        Path(".data/jwt-keys"),
        description="Directory of RSA private keys (PEM, one per file; name new ones to sort "
        "last). Every key is published in the JWKS at once; a new key signs "
        "`jwt_key_activation_seconds` after the first replica saw it.",
    )
    jwt_generate_keys: bool = Field(
        False, description="Generate a first key into an empty key directory (dev only)."
    )
    jwt_key_activation_seconds: float = Field(
        600,
        gt=0,
        description="Two-phase rotation: a new key is published this long before it signs, "
        "so every verifier has it first. At least `jwt_keys_sync_seconds` + "
        "`jwks_max_age_seconds` + the verifiers' 5 s JWKS refresh.",
    )
    jwt_keys_sync_seconds: float = Field(
        15,
        gt=0,
        description="How often auth re-reads its key directory and the key schedule shared "
        "by its replicas (MongoDB collection `signing_keys`); no restart is needed to rotate.",
    )
    jwks_max_age_seconds: int = Field(
        300, ge=0, description="Cache-Control max-age of the JWKS (HTTP caches may keep it)."
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

    @model_validator(mode="after")
    def _activation_outlasts_propagation(self) -> AuthSettings:
        needed = self.jwt_keys_sync_seconds + self.jwks_max_age_seconds + JWKS_REFRESH_SECONDS
        if self.jwt_key_activation_seconds < needed:
            raise ValueError(
                f"jwt_key_activation_seconds ({self.jwt_key_activation_seconds:g}) must be at "
                f"least {needed:g}: jwt_keys_sync_seconds + jwks_max_age_seconds + the "
                f"verifiers' {JWKS_REFRESH_SECONDS:g} s JWKS refresh, or a verifier may meet a "
                "token signed with a key it cannot see yet"
            )
        return self

    @property
    def key_retention(self) -> timedelta:
        """How long a key stays published after it last signed: its tokens' lifetime."""
        seconds = self.token_ttl_seconds + self.jwt_leeway_seconds + self.jwt_keys_sync_seconds
        return timedelta(seconds=seconds)
