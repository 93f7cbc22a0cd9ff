"""What the auth service keeps on its app, typed; set at start-up (app.py)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends

from services.auth.keys import KeyRing
from services.auth.repository import TokenIssuer
from services.auth.settings import AuthSettings
from services.core.web.state import state_dependency


@dataclass(frozen=True, slots=True)
class AuthState:
    settings: AuthSettings
    keyring: KeyRing
    issuer: TokenIssuer
    key_keeper: asyncio.Task[None]  # keeps the key ring in step with the others


AuthService = Annotated[AuthState, Depends(state_dependency(AuthState))]
