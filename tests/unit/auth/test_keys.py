"""The signing key ring: RFC 7638 kids, two-phase rotation (published first, signing from
its scheduled time, published until its tokens expired), a public-only JWKS."""

from __future__ import annotations

import base64
import hashlib
import os
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from services.auth.keys import (
    KeyRing,
    Scheduled,
    SigningKey,
    generate_pem,
    public_jwk,
    read_keys,
)

PRIVATE_MEMBERS = {"d", "p", "q", "dp", "dq", "qi", "oth", "k"}


def b64url_uint(value: int) -> str:
    raw = value.to_bytes((value.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def rfc7638_thumbprint(pem: bytes) -> str:
    """Computed independently: required members in lexicographic order, no whitespace."""
    key = serialization.load_pem_private_key(pem, password=None)
    numbers = key.public_key().public_numbers()  # type: ignore[union-attr]
    e, n = b64url_uint(numbers.e), b64url_uint(numbers.n)
    canonical = '{"e":"' + e + '","kty":"RSA","n":"' + n + '"}'
    digest = hashlib.sha256(canonical.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def test_rfc7638_example_vector() -> None:
    """The worked example of RFC 7638 §3.1, through the library's own function."""
    n = int.from_bytes(
        base64.urlsafe_b64decode(
            "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tS"
            "oc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65"
            "YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyr"
            "dkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzK"
            "nqDKgw=="
        ),
        "big",
    )
    key = rsa.RSAPublicNumbers(65537, n)

    class Fake:  # public_jwk only needs .public_key().public_numbers()
        def public_key(self) -> Fake:
            return self

        def public_numbers(self) -> rsa.RSAPublicNumbers:
            return key

    jwk = public_jwk(Fake())  # type: ignore[arg-type]
    assert jwk["kid"] == "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
    assert jwk["e"] == "AQAB"


def test_kid_is_the_rfc7638_thumbprint(pem_a: bytes) -> None:
    ring = KeyRing.from_pems([pem_a])
    assert ring.signing.kid == rfc7638_thumbprint(pem_a)
    assert ring.signing.jwk["kid"] == ring.signing.kid


def test_kid_is_stable_across_loads(pem_a: bytes, pem_b: bytes) -> None:
    first = KeyRing.from_pems([pem_a, pem_b])
    second = KeyRing.from_pems([pem_a, pem_b])
    assert [k.kid for k in first.keys] == [k.kid for k in second.keys]
    assert first.keys[0].kid != first.keys[1].kid


def test_without_a_schedule_the_first_key_signs(pem_a: bytes, pem_b: bytes) -> None:
    """Before the shared schedule is known, a rotation's old key signs: every verifier has it."""
    ring = KeyRing.from_pems([pem_a, pem_b])
    assert ring.signing.kid == rfc7638_thumbprint(pem_a)
    assert ring.signing.private_pem == pem_a


# --- two-phase rotation: published first, signing from `signs_from` on -------------

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)


def scheduled(key: SigningKey, signs_from: datetime, signed_until: datetime | None = None):
    return Scheduled(key.kid, key.jwk, signs_from, signed_until)


def test_a_new_key_signs_only_from_its_scheduled_time(pem_a: bytes, pem_b: bytes) -> None:
    ring = KeyRing.from_pems([pem_a, pem_b])
    old, new = ring.keys
    ring.apply_schedule([scheduled(old, T0 - HOUR), scheduled(new, T0 + HOUR)])
    assert ring.signing_at(T0).kid == old.kid
    assert ring.signing_at(T0 + HOUR - timedelta(seconds=1)).kid == old.kid
    assert ring.signing_at(T0 + HOUR).kid == new.kid
    # published from the start, while it does not sign yet
    assert {k["kid"] for k in ring.published(T0)} == {old.kid, new.kid}


def test_the_key_whose_time_came_last_signs_whatever_its_name(pem_a: bytes, pem_b: bytes) -> None:
    ring = KeyRing.from_pems([pem_a, pem_b])
    first, second = ring.keys
    ring.apply_schedule([scheduled(first, T0 - timedelta(minutes=1)), scheduled(second, T0 - HOUR)])
    assert ring.signing_at(T0).kid == first.kid


def test_when_no_key_is_due_the_one_published_longest_signs(pem_a: bytes, pem_b: bytes) -> None:
    """A first start (every key just scheduled) signs with the longest-known key."""
    ring = KeyRing.from_pems([pem_a, pem_b])
    first, second = ring.keys
    ring.apply_schedule([scheduled(first, T0 + 2 * HOUR), scheduled(second, T0 + HOUR)])
    assert ring.signing_at(T0).kid == second.kid


def test_a_scheduled_key_without_its_file_is_published_not_signing(
    pem_a: bytes, pem_b: bytes
) -> None:
    """A replica whose copy of the key file has not arrived yet still publishes the key."""
    holds_a = KeyRing.from_pems([pem_a])
    b = KeyRing.from_pems([pem_b]).keys[0]
    holds_a.apply_schedule([scheduled(holds_a.keys[0], T0 - HOUR), scheduled(b, T0 - 1 * HOUR / 2)])
    assert holds_a.signing_at(T0).kid == holds_a.keys[0].kid  # it cannot sign with b
    published = holds_a.published(T0)
    assert [k["kid"] for k in published] == [holds_a.keys[0].kid, b.kid]
    assert not PRIVATE_MEMBERS & set(published[1])


def test_a_retired_key_stays_published_until_its_last_token_expired(
    pem_a: bytes, pem_b: bytes
) -> None:
    ring = KeyRing.from_pems([pem_b], retain=HOUR)  # the old key's file is gone already
    old = KeyRing.from_pems([pem_a]).keys[0]
    last_signed = T0 - timedelta(minutes=10)
    ring.apply_schedule(
        [scheduled(old, T0 - 5 * HOUR, signed_until=last_signed), scheduled(ring.keys[0], T0)]
    )
    assert old.kid in {k["kid"] for k in ring.published(last_signed + HOUR - timedelta(seconds=1))}
    assert old.kid not in {k["kid"] for k in ring.published(last_signed + HOUR)}
    # never used to sign: published for `retain` after its signing time
    assert Scheduled(old.kid, old.jwk, T0).published_until(HOUR) == T0 + HOUR


def test_replace_keys_keeps_the_ring_when_a_read_finds_nothing(pem_a: bytes, pem_b: bytes) -> None:
    ring = KeyRing.from_pems([pem_a])
    ring.replace_keys([])
    assert [k.kid for k in ring.keys] == [rfc7638_thumbprint(pem_a)]
    ring.replace_keys(KeyRing.from_pems([pem_b]).keys)
    assert [k.kid for k in ring.keys] == [rfc7638_thumbprint(pem_b)]


def test_read_keys_reuses_parsed_keys_and_names_them(
    tmp_path: Path, pem_a: bytes, pem_b: bytes
) -> None:
    (tmp_path / "key-1.pem").write_bytes(pem_a)
    first = read_keys(tmp_path)
    (tmp_path / "key-2.pem").write_bytes(pem_b)
    again = read_keys(tmp_path, {k.private_pem: k for k in first})
    assert [k.name for k in again] == ["key-1.pem", "key-2.pem"]
    assert again[0].jwk is first[0].jwk  # not parsed again
    assert again[1].kid == rfc7638_thumbprint(pem_b)


def test_jwks_lists_every_key_without_private_parts(pem_a: bytes, pem_b: bytes) -> None:
    ring = KeyRing.from_pems([pem_a, pem_b])
    jwks = ring.jwks()
    assert [k["kid"] for k in jwks["keys"]] == [
        rfc7638_thumbprint(pem_a),
        rfc7638_thumbprint(pem_b),
    ]
    for key in jwks["keys"]:
        assert set(key) == {"kty", "n", "e", "kid", "use", "alg"}
        assert not PRIVATE_MEMBERS & set(key)
        assert (key["kty"], key["use"], key["alg"], key["e"]) == ("RSA", "sig", "RS256", "AQAB")
    assert b"PRIVATE" not in repr(jwks).encode()


def test_jwk_is_the_key_public_half(pem_a: bytes) -> None:
    jwk = KeyRing.from_pems([pem_a]).signing.jwk
    private = serialization.load_pem_private_key(pem_a, password=None)
    expected = private.public_key().public_numbers()  # type: ignore[union-attr]
    assert jwk["n"] == b64url_uint(expected.n)
    assert int.from_bytes(base64.urlsafe_b64decode(jwk["n"] + "=="), "big") == expected.n
    assert "=" not in jwk["n"] and "+" not in jwk["n"] and "/" not in jwk["n"]


async def test_fetch_jwks_is_the_jwks(pem_a: bytes) -> None:
    ring = KeyRing.from_pems([pem_a])
    assert await ring.fetch_jwks() == ring.jwks()


def test_empty_ring_is_refused() -> None:
    with pytest.raises(ValueError):
        KeyRing([])


def test_non_rsa_key_is_refused() -> None:
    ec_pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    with pytest.raises(ValueError, match="RSA"):
        KeyRing.from_pems([ec_pem])


def test_generate_pem_is_an_unencrypted_rsa_private_key() -> None:
    pem = generate_pem(bits=1024)
    key = serialization.load_pem_private_key(pem, password=None)
    assert isinstance(key, rsa.RSAPrivateKey)
    assert key.key_size == 1024
    assert pem.startswith(b"-----BEGIN PRIVATE KEY-----")


# --- loading from a directory ------------------------------------------------------


def test_load_orders_the_keys_by_file_name(tmp_path: Path, pem_a: bytes, pem_b: bytes) -> None:
    # Written newest-first, so only the name order can put a first.
    (tmp_path / "key-20260101.pem").write_bytes(pem_b)
    (tmp_path / "key-20250101.pem").write_bytes(pem_a)
    (tmp_path / "README.txt").write_text("not a key")
    ring = KeyRing.load(tmp_path, generate=False)
    assert [k.kid for k in ring.keys] == [rfc7638_thumbprint(pem_a), rfc7638_thumbprint(pem_b)]
    assert [k.name for k in ring.keys] == ["key-20250101.pem", "key-20260101.pem"]
    # the old key signs until the schedule says the new one may
    assert ring.signing.kid == rfc7638_thumbprint(pem_a)


def test_load_is_stable(tmp_path: Path, pem_a: bytes) -> None:
    (tmp_path / "key-1.pem").write_bytes(pem_a)
    assert KeyRing.load(tmp_path, generate=False).signing.kid == (
        KeyRing.load(tmp_path, generate=True).signing.kid
    )
    assert len(list(tmp_path.glob("*.pem"))) == 1  # existing keys: nothing generated


def test_load_empty_dir_without_generate_explains(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError) as info:
        KeyRing.load(tmp_path, generate=False)
    message = str(info.value)
    assert str(tmp_path) in message
    assert "LOGSERVER_JWT_GENERATE_KEYS" in message
    assert "openssl" in message
    assert list(tmp_path.iterdir()) == []


def test_load_missing_dir_without_generate_raises(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    with pytest.raises(RuntimeError):
        KeyRing.load(missing, generate=False)
    assert not missing.exists()


def test_load_generates_a_private_key_file_when_asked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the key file must be created 0600, not chmod-ed after")

    monkeypatch.setattr(os, "chmod", refuse)
    directory = tmp_path / "jwt-keys"
    old = os.umask(0)  # the modes are the code's choice, not the umask's
    try:
        ring = KeyRing.load(directory, generate=True)
    finally:
        os.umask(old)
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    files = list(directory.glob("*.pem"))
    assert len(files) == 1
    assert stat.S_IMODE(files[0].stat().st_mode) == 0o600
    assert ring.signing.private_pem == files[0].read_bytes()
    assert ring.signing.kid == rfc7638_thumbprint(files[0].read_bytes())
    # A second start reuses it.
    assert KeyRing.load(directory, generate=True).signing.kid == ring.signing.kid
    assert len(list(directory.glob("*.pem"))) == 1
