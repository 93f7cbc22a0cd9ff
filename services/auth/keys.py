"""The signing key ring: RSA keys from PEM files, published as a JWKS.

Rotation without downtime: add a new key file (its name sorts last, e.g.
``key-20260101.pem``) and restart; it signs new tokens while the older keys
stay in the JWKS until every token they signed has expired, then remove them.
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa


def _b64uint(value: int) -> str:
    raw = value.to_bytes((value.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def public_jwk(key: rsa.RSAPrivateKey) -> dict[str, str]:
    numbers = key.public_key().public_numbers()
    jwk = {"e": _b64uint(numbers.e), "kty": "RSA", "n": _b64uint(numbers.n)}
    # RFC 7638 thumbprint: stable kid derived from the key itself.
    canonical = json.dumps(jwk, separators=(",", ":"), sort_keys=True).encode()
    kid = base64.urlsafe_b64encode(hashlib.sha256(canonical).digest()).rstrip(b"=").decode()
    return {**jwk, "kid": kid, "use": "sig", "alg": "RS256"}


@dataclass(frozen=True)
class SigningKey:
    kid: str
    private_pem: bytes
    jwk: dict[str, str]


class KeyRing:
    def __init__(self, keys: list[SigningKey]) -> None:
        if not keys:
            raise ValueError("no signing keys")
        self.keys = keys

    @property
    def signing(self) -> SigningKey:
        return self.keys[-1]

    def jwks(self) -> dict[str, Any]:
        return {"keys": [k.jwk for k in self.keys]}

    async def probe(self) -> None:
        """Readiness: a key to sign with and to publish."""
        if not self.keys:
            raise RuntimeError("no signing keys loaded")

    async def fetch_jwks(self) -> dict[str, Any]:
        """The JWKS as a token verifier's key source (same interface as the HTTP one)."""
        return self.jwks()

    @classmethod
    def from_pems(cls, pems: list[bytes]) -> KeyRing:
        keys = []
        for pem in pems:
            key = serialization.load_pem_private_key(pem, password=None)
            if not isinstance(key, rsa.RSAPrivateKey):
                raise ValueError("signing keys must be RSA")
            jwk = public_jwk(key)
            keys.append(SigningKey(jwk["kid"], pem, jwk))
        return cls(keys)

    @classmethod
    def load(cls, directory: Path, *, generate: bool) -> KeyRing:
        files = sorted(directory.glob("*.pem")) if directory.is_dir() else []
        if not files:
            if not generate:
                raise RuntimeError(
                    f"No signing keys in {directory}. Put RSA private keys there (PEM, e.g. "
                    "`openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048`) or set "
                    "LOGSERVER_JWT_GENERATE_KEYS=true for development."
                )
            directory.mkdir(parents=True, exist_ok=True)
            path = directory / f"key-{time.strftime('%Y%m%d%H%M%S')}.pem"
            path.write_bytes(generate_pem())
            path.chmod(0o600)
            files = [path]
        return cls.from_pems([f.read_bytes() for f in files])


def generate_pem(bits: int = 2048) -> bytes:
    key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
