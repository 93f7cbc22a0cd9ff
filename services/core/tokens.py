"""Verifying RS256 bearer tokens against the auth service's JWKS, with caches.

Auth is never a network hop per request: the JWKS is fetched once and cached
(refreshed when a token names an unknown ``kid``, at most every few seconds),
and a verified token is remembered until it expires so RS256 is not re-run on
every request of a busy client.

Concurrent requests that need the same JWKS fetch or the same token check
share one in-flight call (:class:`SingleFlight`) instead of queueing on a lock.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any

from jose import jwt
from jose.exceptions import JWTError

from services.core.errors import Unauthorized, Unavailable
from services.core.principal import Principal
from services.core.singleflight import SingleFlight

log = logging.getLogger(__name__)
ALGORITHMS = ["RS256"]  # pinned: never taken from the token header

JwksSource = Callable[[], Awaitable[dict[str, Any]]]
# A verifier refetches the JWKS for an unknown kid at most this often. Auth's key
# activation delay must exceed it (services/auth/settings.py checks).
JWKS_REFRESH_SECONDS = 5.0


class TokenCache:
    """A bounded LRU of verified tokens, each kept until its own expiry."""

    def __init__(self, max_entries: int = 10_000) -> None:
        self.max_entries = max_entries
        self._items: OrderedDict[str, Principal] = OrderedDict()

    def get(self, token: str, now: float) -> Principal | None:
        principal = self._items.get(token)
        if principal is None:
            return None
        if principal.expires_at <= now:
            del self._items[token]
            return None
        self._items.move_to_end(token)
        return principal

    def put(self, token: str, principal: Principal) -> None:
        self._items[token] = principal
        self._items.move_to_end(token)
        while len(self._items) > self.max_entries:
            self._items.popitem(last=False)

    def clear(self) -> None:
        self._items.clear()


class TokenVerifier:
    def __init__(
        self,
        jwks_source: JwksSource,
        *,
        issuer: str,
        audience: str,
        leeway: int = 10,
        refresh_interval: float = JWKS_REFRESH_SECONDS,
    ) -> None:
        self._source = jwks_source
        self.issuer = issuer
        self.audience = audience
        self.leeway = leeway
        self.refresh_interval = refresh_interval
        self._keys: dict[str, dict[str, Any]] = {}
        self._fetched_at = float("-inf")
        self._refreshing: SingleFlight[None] = SingleFlight()
        self._verifying: SingleFlight[Principal] = SingleFlight()
        self.cache = TokenCache()

    async def _refresh(self) -> None:
        """Fetch the JWKS unless fetched within ``refresh_interval``; callers that
        arrive during a fetch wait for that same fetch."""
        fresh = time.monotonic() - self._fetched_at < self.refresh_interval
        if fresh and "jwks" not in self._refreshing:
            return
        await self._refreshing.run("jwks", self._fetch)

    async def _fetch(self) -> None:
        try:
            jwks = await self._source()
        except Exception as exc:
            if not self._keys:
                raise Unavailable(
                    "Cannot fetch the signing keys from the auth service; retry shortly."
                ) from exc
            log.warning("JWKS refresh failed; keeping cached keys", extra={"error": str(exc)})
            return
        finally:
            self._fetched_at = time.monotonic()
        self._keys = {k["kid"]: k for k in jwks.get("keys", []) if "kid" in k}

    async def _key_for(self, kid: str) -> dict[str, Any]:
        if kid not in self._keys:
            await self._refresh()
        key = self._keys.get(kid)
        if key is None:
            if not self._keys:  # the auth service never answered: not the token's fault
                raise Unavailable(
                    "Cannot fetch the signing keys from the auth service; retry shortly."
                )
            raise Unauthorized("The token was signed with an unknown key.")
        return key

    def cached(self, token: str) -> Principal | None:
        """The principal of a token verified before and not expired (no await), or None."""
        return self.cache.get(token, time.time())

    async def verify(self, token: str) -> Principal:
        cached = self.cache.get(token, time.time())
        if cached is not None:
            return cached
        return await self._verifying.run(token, lambda: self._verify(token))

    async def _verify(self, token: str) -> Principal:
        try:
            header = jwt.get_unverified_header(token)
        except JWTError as exc:
            raise Unauthorized("The bearer token is malformed.") from exc
        if header.get("alg") not in ALGORITHMS:
            raise Unauthorized("The token's signing algorithm is not accepted.")
        kid = header.get("kid")
        if not isinstance(kid, str):
            raise Unauthorized("The token header has no key id (kid).")
        key = await self._key_for(kid)
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=ALGORITHMS,
                audience=self.audience,
                issuer=self.issuer,
                options={
                    "leeway": self.leeway,
                    "require_exp": True,
                    "require_iat": True,
                    "require_aud": True,
                },
            )
        except JWTError as exc:
            # python-jose's messages mostly end with a period already.
            raise Unauthorized(f"The token is not valid: {str(exc).rstrip('.')}.") from exc
        try:
            principal = Principal(
                sub=str(claims["sub"]),
                tenant_claim=str(claims["tenant"]),
                role=str(claims["role"]),
                jti=str(claims.get("jti", "")),
                expires_at=int(claims["exp"]),
            )
        except KeyError as exc:
            raise Unauthorized(f"The token lacks the '{exc.args[0]}' claim.") from exc
        self.cache.put(token, principal)
        return principal
