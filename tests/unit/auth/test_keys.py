"""The signing key ring: RFC 7638 kids, the newest key signs, a public-only JWKS."""

from __future__ import annotations

import base64
import hashlib
import os
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from services.auth.keys import KeyRing, generate_pem, public_jwk

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


def test_last_key_signs(pem_a: bytes, pem_b: bytes) -> None:
    ring = KeyRing.from_pems([pem_a, pem_b])
    assert ring.signing.kid == rfc7638_thumbprint(pem_b)
    assert ring.signing.private_pem == pem_b


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


def test_load_picks_the_newest_file_name_to_sign(
    tmp_path: Path, pem_a: bytes, pem_b: bytes
) -> None:
    # Written newest-first, so only the name order can make b the signing key.
    (tmp_path / "key-20260101.pem").write_bytes(pem_b)
    (tmp_path / "key-20250101.pem").write_bytes(pem_a)
    (tmp_path / "README.txt").write_text("not a key")
    ring = KeyRing.load(tmp_path, generate=False)
    assert [k.kid for k in ring.keys] == [rfc7638_thumbprint(pem_a), rfc7638_thumbprint(pem_b)]
    assert ring.signing.kid == rfc7638_thumbprint(pem_b)


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
