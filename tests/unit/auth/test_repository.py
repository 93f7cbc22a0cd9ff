"""Token issuance: the claims, the kid header and expires_in."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest
from jose import jwt

from services.auth import repository
from services.auth.keys import KeyRing, Scheduled
from services.auth.repository import InvalidClient, TokenIssuer

NOW = int(time.time())


class FrozenTime:
    @staticmethod
    def time() -> float:
        return NOW + 0.75


@pytest.fixture
def frozen(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(repository, "time", FrozenTime)


@pytest.fixture
def ring(pem_a: bytes, pem_b: bytes) -> KeyRing:
    """Mid-rotation, after the new key's activation: the newer key signs."""
    ring = KeyRing.from_pems([pem_a, pem_b])
    old, new = ring.keys
    ring.apply_schedule(
        [
            Scheduled(old.kid, old.jwk, datetime(2020, 1, 1, tzinfo=UTC)),
            Scheduled(new.kid, new.jwk, datetime(2021, 1, 1, tzinfo=UTC)),
        ]
    )
    return ring


@pytest.fixture
def issuer(ring: KeyRing) -> TokenIssuer:
    return TokenIssuer(ring, issuer="logserver-auth", audience="logserver", ttl=900)


def test_issue_response_shape(issuer: TokenIssuer, frozen: None) -> None:
    out = issuer.issue(sub="lsk_1", tenant="acme", role="writer")
    assert set(out) == {"access_token", "token_type", "expires_in"}
    assert out["token_type"] == "Bearer"
    assert out["expires_in"] == 900


def test_issue_claims(issuer: TokenIssuer, ring: KeyRing, frozen: None) -> None:
    token = issuer.issue(sub="lsk_1", tenant="acme", role="writer")["access_token"]
    claims = jwt.decode(
        token,
        ring.signing.jwk,
        algorithms=["RS256"],
        audience="logserver",
        issuer="logserver-auth",
        # NOW is frozen at import; a long suite must not turn it into an expired token.
        options={"verify_exp": False, "verify_iat": False, "verify_nbf": False},
    )
    jti = claims.pop("jti")
    assert claims == {
        "sub": "lsk_1",
        "tenant": "acme",
        "role": "writer",
        "aud": "logserver",
        "iss": "logserver-auth",
        "iat": NOW,
        "nbf": NOW,
        "exp": NOW + 900,
    }
    assert isinstance(jti, str) and len(jti) >= 16


def test_header_names_the_signing_key(issuer: TokenIssuer, ring: KeyRing) -> None:
    header = jwt.get_unverified_header(
        issuer.issue(sub="s", tenant="t", role="viewer")["access_token"]
    )
    assert header["alg"] == "RS256"
    assert header["kid"] == ring.signing.kid
    assert header["kid"] == ring.keys[-1].kid != ring.keys[0].kid


def test_signed_by_the_signing_key_only(issuer: TokenIssuer, ring: KeyRing) -> None:
    token = issuer.issue(sub="s", tenant="t", role="viewer")["access_token"]
    opts = {"audience": "logserver", "issuer": "logserver-auth"}
    jwt.decode(token, ring.keys[-1].jwk, algorithms=["RS256"], **opts)
    with pytest.raises(jwt.JWTError):
        jwt.decode(token, ring.keys[0].jwk, algorithms=["RS256"], **opts)


def test_every_token_gets_a_new_jti(issuer: TokenIssuer, frozen: None) -> None:
    jtis = {
        jwt.get_unverified_claims(issuer.issue(sub="s", tenant="t", role="viewer")["access_token"])[
            "jti"
        ]
        for _ in range(20)
    }
    assert len(jtis) == 20


def test_invalid_client_says_nothing_specific() -> None:
    err = InvalidClient()
    body = err.to_problem("/api/v1/auth/token")
    assert err.status == 401
    assert body["error"] == "invalid_client"
    assert body["detail"] == "Invalid client credentials."
    assert body["type"].endswith("/invalid-client")
