"""RS256 token verification against a JWKS, its caches and the attacks it must refuse."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from jose import jwt

from services.auth.keys import KeyRing
from services.auth.repository import TokenIssuer
from services.core import tokens
from services.core.errors import Unauthorized, Unavailable
from services.core.principal import Principal
from services.core.tokens import TokenCache, TokenVerifier
from tests.support.fakes import FakeClock

ISS = "logserver-auth"
AUD = "logserver"


# --- helpers -----------------------------------------------------------------------


class Source:
    """An in-memory JWKS source that counts fetches and can be made to fail."""

    def __init__(self, keyring: KeyRing) -> None:
        self.keyring = keyring
        self.calls = 0
        self.fail = False

    async def __call__(self) -> dict[str, Any]:
        self.calls += 1
        if self.fail:
            raise ConnectionError("auth service unreachable")
        return self.keyring.jwks()


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64json(obj: dict[str, Any]) -> str:
    return b64(json.dumps(obj, separators=(",", ":")).encode())


def claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    base = {
        "sub": "lsk_abc",
        "tenant": "acme",
        "role": "viewer",
        "aud": AUD,
        "iss": ISS,
        "iat": now,
        "nbf": now,
        "exp": now + 300,
        "jti": "jti-1",
    }
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


def sign(keyring: KeyRing, payload: dict[str, Any], **headers: Any) -> str:
    key = keyring.signing
    return jwt.encode(
        payload, key.private_pem, algorithm="RS256", headers={"kid": key.kid, **headers}
    )


@pytest.fixture
def ring_a(pem_a: bytes) -> KeyRing:
    return KeyRing.from_pems([pem_a])


@pytest.fixture
def ring_b(pem_b: bytes) -> KeyRing:
    return KeyRing.from_pems([pem_b])


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    clock = FakeClock(now=10_000.0)
    monkeypatch.setattr(tokens, "time", clock)
    return clock


@pytest.fixture
def source(ring_a: KeyRing) -> Source:
    return Source(ring_a)


@pytest.fixture
def verifier(source: Source, clock: FakeClock) -> TokenVerifier:
    return TokenVerifier(source, issuer=ISS, audience=AUD, leeway=10, refresh_interval=5.0)


@pytest.fixture
def decode_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    calls: list[str] = []
    real = jwt.decode

    def counting(token: str, *args: Any, **kwargs: Any) -> dict[str, Any]:
        calls.append(token)
        return real(token, *args, **kwargs)

    monkeypatch.setattr(tokens.jwt, "decode", counting)
    return calls


async def reject(verifier: TokenVerifier, token: str) -> Unauthorized:
    with pytest.raises(Unauthorized) as info:
        await verifier.verify(token)
    assert info.value.status == 401
    return info.value


# --- accepting ---------------------------------------------------------------------


async def test_token_from_issuer_is_accepted(ring_a: KeyRing, verifier: TokenVerifier) -> None:
    issued = TokenIssuer(ring_a, issuer=ISS, audience=AUD, ttl=600).issue(
        sub="lsk_1", tenant="acme", role="writer"
    )
    principal = await verifier.verify(issued["access_token"])
    unverified = jwt.get_unverified_claims(issued["access_token"])
    assert principal == Principal(
        sub="lsk_1",
        tenant_claim="acme",
        role="writer",
        jti=unverified["jti"],
        expires_at=unverified["exp"],
        tenant=None,
    )


async def test_key_rotation_both_keys_accepted(
    pem_a: bytes, pem_b: bytes, clock: FakeClock
) -> None:
    ring = KeyRing.from_pems([pem_a, pem_b])
    verifier = TokenVerifier(Source(ring), issuer=ISS, audience=AUD)
    old = sign(KeyRing.from_pems([pem_a]), claims(sub="old"))
    new = sign(KeyRing.from_pems([pem_b]), claims(sub="new"))
    assert (await verifier.verify(old)).sub == "old"
    assert (await verifier.verify(new)).sub == "new"


# --- attacks and invalid tokens ----------------------------------------------------


async def test_alg_none_is_rejected(ring_a: KeyRing, verifier: TokenVerifier) -> None:
    header = {"alg": "none", "typ": "JWT", "kid": ring_a.signing.kid}
    token = f"{b64json(header)}.{b64json(claims(role='admin', tenant='*'))}."
    err = await reject(verifier, token)
    assert "algorithm" in err.detail


async def test_hs256_signed_with_public_key_is_rejected(
    ring_a: KeyRing, verifier: TokenVerifier, source: Source
) -> None:
    """The classic RS256 -> HS256 confusion: HMAC keyed with the published public key."""
    public_pem = (
        serialization.load_pem_private_key(ring_a.signing.private_pem, password=None)
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    header = {"alg": "HS256", "typ": "JWT", "kid": ring_a.signing.kid}
    signing_input = f"{b64json(header)}.{b64json(claims(role='admin', tenant='*'))}"
    for secret in (public_pem, json.dumps(ring_a.jwks()["keys"][0]).encode()):
        sig = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
        await reject(verifier, f"{signing_input}.{b64(sig)}")


async def test_alg_pinned_even_if_header_passes(
    ring_a: KeyRing, verifier: TokenVerifier, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Defence in depth: decode itself is called with the pinned algorithm list."""
    seen: dict[str, Any] = {}
    real = jwt.decode

    def spy(token: str, key: Any, **kwargs: Any) -> dict[str, Any]:
        seen.update(kwargs)
        return real(token, key, **kwargs)

    monkeypatch.setattr(tokens.jwt, "decode", spy)
    await verifier.verify(sign(ring_a, claims()))
    assert seen["algorithms"] == ["RS256"]
    assert seen["audience"] == AUD and seen["issuer"] == ISS


async def test_other_rsa_algorithm_is_rejected(ring_a: KeyRing, verifier: TokenVerifier) -> None:
    key = ring_a.signing
    token = jwt.encode(claims(), key.private_pem, algorithm="RS512", headers={"kid": key.kid})
    await reject(verifier, token)


async def test_token_signed_by_unknown_key_is_rejected(
    ring_b: KeyRing, verifier: TokenVerifier
) -> None:
    err = await reject(verifier, sign(ring_b, claims()))
    assert "unknown key" in err.detail


async def test_known_kid_but_wrong_key_is_rejected(
    ring_a: KeyRing, ring_b: KeyRing, verifier: TokenVerifier
) -> None:
    """Signed with key B but claiming key A's kid: the signature check must fail."""
    token = jwt.encode(
        claims(),
        ring_b.signing.private_pem,
        algorithm="RS256",
        headers={"kid": ring_a.signing.kid},
    )
    await reject(verifier, token)


async def test_expired_token_is_rejected(ring_a: KeyRing, verifier: TokenVerifier) -> None:
    now = int(time.time())
    token = sign(ring_a, claims(iat=now - 600, nbf=now - 600, exp=now - 60))
    await reject(verifier, token)


async def test_token_not_yet_valid_is_rejected(ring_a: KeyRing, verifier: TokenVerifier) -> None:
    now = int(time.time())
    await reject(verifier, sign(ring_a, claims(nbf=now + 60)))


async def test_leeway_honoured(ring_a: KeyRing, source: Source, clock: FakeClock) -> None:
    now = int(time.time())
    just_expired = sign(ring_a, claims(exp=now - 5))
    nbf_soon = sign(ring_a, claims(nbf=now + 5))
    lenient = TokenVerifier(source, issuer=ISS, audience=AUD, leeway=30)
    strict = TokenVerifier(source, issuer=ISS, audience=AUD, leeway=0)
    assert (await lenient.verify(just_expired)).sub == "lsk_abc"
    assert (await lenient.verify(nbf_soon)).sub == "lsk_abc"
    await reject(strict, just_expired)
    await reject(strict, nbf_soon)


@pytest.mark.parametrize(
    "override",
    [{"aud": "someone-else"}, {"aud": ["other", "another"]}, {"iss": "evil-issuer"}],
    ids=["wrong-aud", "wrong-aud-list", "wrong-iss"],
)
async def test_wrong_audience_or_issuer_is_rejected(
    ring_a: KeyRing, verifier: TokenVerifier, override: dict[str, Any]
) -> None:
    await reject(verifier, sign(ring_a, claims(**override)))


async def test_tampered_payload_is_rejected(ring_a: KeyRing, verifier: TokenVerifier) -> None:
    good = sign(ring_a, claims())
    header, _, signature = good.split(".")
    forged = f"{header}.{b64json(claims(role='admin', tenant='*'))}.{signature}"
    await reject(verifier, forged)
    # The untouched token is fine, so the rejection was the tampering.
    assert (await verifier.verify(good)).role == "viewer"


async def test_tampered_signature_is_rejected(ring_a: KeyRing, verifier: TokenVerifier) -> None:
    header, payload, signature = sign(ring_a, claims()).split(".")
    flipped = ("A" if signature[10] != "A" else "B").join((signature[:10], signature[11:]))
    await reject(verifier, f"{header}.{payload}.{flipped}")


async def test_rejection_detail_ends_with_one_period(
    ring_a: KeyRing, verifier: TokenVerifier
) -> None:
    header, payload, signature = sign(ring_a, claims()).split(".")
    flipped = ("A" if signature[10] != "A" else "B").join((signature[:10], signature[11:]))
    error = await reject(verifier, f"{header}.{payload}.{flipped}")
    # python-jose's message already ends with a period ("Signature verification failed.")
    assert error.detail == "The token is not valid: Signature verification failed."
    expired = await reject(verifier, sign(ring_a, claims(exp=int(time.time()) - 60)))
    assert expired.detail == "The token is not valid: Signature has expired."


@pytest.mark.parametrize("missing", ["sub", "tenant", "role", "exp", "iat", "iss"])
async def test_missing_claim_is_rejected(
    ring_a: KeyRing, verifier: TokenVerifier, missing: str
) -> None:
    await reject(verifier, sign(ring_a, claims(**{missing: None})))


async def test_missing_audience_is_rejected(ring_a: KeyRing, verifier: TokenVerifier) -> None:
    await reject(verifier, sign(ring_a, claims(aud=None)))


@pytest.mark.parametrize("token", ["", "garbage", "a.b.c", "a.b", "....."])
async def test_malformed_token_is_rejected(verifier: TokenVerifier, token: str) -> None:
    await reject(verifier, token)


async def test_token_without_kid_is_rejected(ring_a: KeyRing, verifier: TokenVerifier) -> None:
    token = jwt.encode(claims(), ring_a.signing.private_pem, algorithm="RS256")
    err = await reject(verifier, token)
    assert "kid" in err.detail


# --- JWKS fetching -----------------------------------------------------------------


async def test_jwks_fetched_once_then_reused(
    ring_a: KeyRing, verifier: TokenVerifier, source: Source, clock: FakeClock
) -> None:
    assert source.calls == 0  # lazy
    await verifier.verify(sign(ring_a, claims(jti="1")))
    clock.advance(3600)  # a known kid never needs a refetch, however old the keys
    await verifier.verify(sign(ring_a, claims(jti="2")))
    assert source.calls == 1


async def test_unknown_kid_refetches_at_most_every_refresh_interval(
    ring_a: KeyRing, ring_b: KeyRing, verifier: TokenVerifier, source: Source, clock: FakeClock
) -> None:
    await verifier.verify(sign(ring_a, claims()))
    assert source.calls == 1
    foreign = sign(ring_b, claims())

    await reject(verifier, foreign)  # keys fetched just now: no refetch yet
    assert source.calls == 1

    clock.advance(5.0)
    await reject(verifier, foreign)  # interval passed: refetched once
    assert source.calls == 2
    for _ in range(5):
        await reject(verifier, foreign)  # a flood of unknown kids does not hammer auth
    assert source.calls == 2

    clock.advance(4.9)
    await reject(verifier, foreign)
    assert source.calls == 2
    clock.advance(0.1)
    await reject(verifier, foreign)
    assert source.calls == 3


async def test_new_key_picked_up_by_one_refetch(
    pem_a: bytes, ring_a: KeyRing, ring_b: KeyRing, pem_b: bytes, clock: FakeClock
) -> None:
    source = Source(ring_a)
    verifier = TokenVerifier(source, issuer=ISS, audience=AUD, refresh_interval=5.0)
    await verifier.verify(sign(ring_a, claims()))
    source.keyring = KeyRing.from_pems([pem_a, pem_b])  # the auth service rotated
    clock.advance(6)
    principal = await verifier.verify(sign(ring_b, claims(sub="rotated")))
    assert principal.sub == "rotated"
    assert source.calls == 2


async def test_source_failure_without_keys_is_unavailable(
    ring_a: KeyRing, verifier: TokenVerifier, source: Source
) -> None:
    source.fail = True
    with pytest.raises(Unavailable) as info:
        await verifier.verify(sign(ring_a, claims()))
    assert info.value.status == 503
    assert "Retry-After" in info.value.headers


async def test_source_failure_with_cached_keys_keeps_working(
    ring_a: KeyRing, ring_b: KeyRing, verifier: TokenVerifier, source: Source, clock: FakeClock
) -> None:
    await verifier.verify(sign(ring_a, claims(jti="1")))
    source.fail = True
    clock.advance(10)
    await reject(verifier, sign(ring_b, claims()))  # refresh failed: unknown kid, not 503
    assert source.calls == 2
    assert (await verifier.verify(sign(ring_a, claims(jti="2")))).jti == "2"


async def test_source_recovers_after_failure(
    ring_a: KeyRing, verifier: TokenVerifier, source: Source, clock: FakeClock
) -> None:
    source.fail = True
    with pytest.raises(Unavailable):
        await verifier.verify(sign(ring_a, claims()))
    source.fail = False
    clock.advance(5)
    assert (await verifier.verify(sign(ring_a, claims()))).sub == "lsk_abc"


async def test_source_failure_without_keys_stays_unavailable_within_interval(
    ring_a: KeyRing, verifier: TokenVerifier, source: Source
) -> None:
    source.fail = True
    token = sign(ring_a, claims())
    with pytest.raises(Unavailable):
        await verifier.verify(token)
    with pytest.raises(Unavailable):
        await verifier.verify(token)


# --- verified-token cache ----------------------------------------------------------


async def test_verified_token_is_cached(
    ring_a: KeyRing, verifier: TokenVerifier, source: Source, decode_calls: list[str]
) -> None:
    token = sign(ring_a, claims())
    first = await verifier.verify(token)
    second = await verifier.verify(token)
    assert second is first
    assert decode_calls == [token]
    assert source.calls == 1
    other = sign(ring_a, claims(jti="other"))
    await verifier.verify(other)
    assert decode_calls == [token, other]


async def test_cached_token_is_reverified_after_it_expires(
    ring_a: KeyRing, verifier: TokenVerifier, clock: FakeClock, decode_calls: list[str]
) -> None:
    token = sign(ring_a, claims(exp=int(time.time()) + 60))
    await verifier.verify(token)
    clock.advance(59)
    await verifier.verify(token)
    assert len(decode_calls) == 1
    clock.advance(1)  # the verifier's clock says exp is reached: cache miss
    await verifier.verify(token)  # (jose's real clock still accepts it)
    assert len(decode_calls) == 2


async def test_rejected_token_is_not_cached(
    ring_a: KeyRing, verifier: TokenVerifier, decode_calls: list[str]
) -> None:
    token = sign(ring_a, claims(aud="other"))
    await reject(verifier, token)
    await reject(verifier, token)
    assert len(decode_calls) == 2


def _principal(exp: int, sub: str = "s") -> Principal:
    return Principal(sub=sub, tenant_claim="t", role="viewer", jti="j", expires_at=exp)


def test_token_cache_hit_and_expiry() -> None:
    cache = TokenCache()
    p = _principal(100)
    cache.put("tok", p)
    assert cache.get("tok", now=99.9) is p
    assert cache.get("tok", now=100) is None  # expired exactly at exp
    assert cache.get("tok", now=50) is None  # and evicted, not just hidden
    assert cache.get("missing", now=0) is None


def test_token_cache_is_a_bounded_lru() -> None:
    cache = TokenCache(max_entries=2)
    a, b, c = _principal(100, "a"), _principal(100, "b"), _principal(100, "c")
    cache.put("a", a)
    cache.put("b", b)
    assert cache.get("a", now=0) is a  # a becomes most recently used
    cache.put("c", c)  # evicts b, the least recently used
    assert cache.get("b", now=0) is None
    assert cache.get("a", now=0) is a
    assert cache.get("c", now=0) is c
    cache.put("d", _principal(100, "d"))  # now a is the oldest use
    assert cache.get("a", now=0) is None
    assert cache.get("c", now=0) is c


def test_token_cache_put_replaces_and_clear_empties() -> None:
    cache = TokenCache(max_entries=2)
    cache.put("a", _principal(100, "old"))
    cache.put("a", _principal(100, "new"))
    cache.put("b", _principal(100, "b"))
    assert cache.get("a", now=0).sub == "new"  # type: ignore[union-attr]
    cache.clear()
    assert cache.get("a", now=0) is None and cache.get("b", now=0) is None


async def test_a_burst_with_one_new_token_fetches_and_decodes_once(
    ring_a: KeyRing, verifier: TokenVerifier, source: Source, decode_calls: list[str]
) -> None:
    # A thousand clients reconnecting to a fresh process all present the same token.
    token = sign(ring_a, claims())
    principals = await asyncio.gather(*(verifier.verify(token) for _ in range(1000)))
    assert {p.sub for p in principals} == {"lsk_abc"}
    assert source.calls == 1
    assert decode_calls == [token]
