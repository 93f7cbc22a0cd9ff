"""The auth service: signing keys, token issue and verify, JWKS, forward-auth."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from fastapi import FastAPI

from services.auth.keys import KeyRing
from services.auth.repository import TokenIssuer, bootstrap_admin
from services.auth.rotation import KeyKeeper, KeySchedule
from services.auth.routes import TokenRequest, router, well_known
from services.auth.settings import AuthSettings
from services.auth.state import AuthState
from services.core.web.app import create_service_app
from services.core.web.state import (
    clients,
    readiness,
    service_state,
    set_service_state,
    startup_tasks,
)


def create_app(settings: AuthSettings | None = None) -> FastAPI:
    settings = settings or AuthSettings()

    async def startup(app: FastAPI) -> None:
        keyring = KeyRing.load(
            settings.jwt_keys_dir,
            generate=settings.jwt_generate_keys,
            retain=settings.key_retention,
        )
        db = clients(app).db
        schedule = KeySchedule(
            db, activation=timedelta(seconds=settings.jwt_key_activation_seconds)
        )
        keeper = KeyKeeper(keyring, settings.jwt_keys_dir, schedule)
        readiness(app).add("signing-keys", keeper.probe)
        issuer = TokenIssuer(
            keyring,
            issuer=settings.jwt_issuer,
            audience=settings.jwt_audience,
            ttl=settings.token_ttl_seconds,
        )
        key_keeper = asyncio.create_task(keeper.run(settings.jwt_keys_sync_seconds))
        set_service_state(app, AuthState(settings, keyring, issuer, key_keeper))
        client_id, secret = (
            settings.bootstrap_admin_client_id,
            settings.bootstrap_admin_client_secret,
        )
        if client_id and secret:
            startup_tasks(app).add(
                "bootstrap-admin",
                lambda: bootstrap_admin(db, client_id, secret.get_secret_value()),
            )

    async def shutdown(app: FastAPI) -> None:
        key_keeper = service_state(app, AuthState).key_keeper
        key_keeper.cancel()
        await asyncio.gather(key_keeper, return_exceptions=True)

    return create_service_app(
        name="auth",
        settings=settings,
        routers=[router, well_known],
        api_models=[TokenRequest],
        needs=("mongo",),
        on_startup=startup,
        on_shutdown=shutdown,
        # The auth service verifies its own tokens from its key ring, not over HTTP.
        jwks_source=lambda app: service_state(app, AuthState).keyring.fetch_jwks,
        # The JWKS is every verifier's key source and needs only the keys. Token
        # issue needs MongoDB, but so does every other auth replica: taking them
        # all out of the load balancer in a MongoDB outage would not issue one
        # more token, and would take the JWKS away from services that restart.
        ready_needs=("signing-keys",),
    )
