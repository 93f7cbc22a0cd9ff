"""The signing key ring: RSA keys from PEM files, published as a JWKS, rotated in two phases.

A key is *published* (in the JWKS) as soon as any auth replica has seen it, and
*signs* only from ``signs_from`` on: a time recorded once, by the first replica
that saw the key, in the shared key schedule (MongoDB, see
:mod:`services.auth.rotation`) as that moment plus the activation delay. The
delay is longer than any verifier takes to see a published key, so no token
ever names a key a verifier cannot find. A key that stopped signing stays
published until its last token has expired, even where its file is gone.

Rotation for an operator: add a new key file (name it so it sorts last, e.g.
``key-20260101.pem``) next to the old one, wait for the activation delay, and
remove the old file once the log says its tokens have expired. No restart is
needed: every replica re-reads its key directory and the schedule periodically.
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from services.core.secretfiles import private_dir, write_private


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
    name: str = ""  # file name: the order of keys nobody has scheduled yet


@dataclass(frozen=True)
class Scheduled:
    """A key's entry in the shared schedule: public half and its signing window."""

    kid: str
    jwk: dict[str, str]
    signs_from: datetime
    signed_until: datetime | None = None  # last time a replica reported signing with it

    def published_until(self, retain: timedelta) -> datetime:
        last = max(self.signs_from, self.signed_until or self.signs_from)
        return last + retain


def key_from_pem(pem: bytes, name: str = "") -> SigningKey:
    key = serialization.load_pem_private_key(pem, password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError("signing keys must be RSA")
    jwk = public_jwk(key)
    return SigningKey(jwk["kid"], pem, jwk, name)


def choose_signing(
    keys: list[SigningKey], schedule: Mapping[str, Scheduled], now: datetime
) -> SigningKey:
    """The key that signs at ``now``.

    Of the keys whose ``signs_from`` has come, the one whose time came last. If
    none has come, the one published longest; if the schedule is not known yet
    (first moments of a start), the first by file name: in a rotation that is the
    old key, which every verifier already has.
    """
    due = [k for k in keys if k.kid in schedule and schedule[k.kid].signs_from <= now]
    if due:
        return max(due, key=lambda k: (schedule[k.kid].signs_from, k.name))
    known = [k for k in keys if k.kid in schedule]
    if known:
        return min(known, key=lambda k: (schedule[k.kid].signs_from, k.name))
    return keys[0]


class KeyRing:
    """The private keys this replica holds (from files) and the shared schedule.

    ``retain`` is how long a key stays published after its last signature: the
    token lifetime plus the verifiers' clock leeway plus the schedule's refresh.
    """

    def __init__(self, keys: list[SigningKey], retain: timedelta = timedelta(0)) -> None:
        if not keys:
            raise ValueError("no signing keys")
        self.keys = keys
        self.retain = retain
        self.schedule: dict[str, Scheduled] = {}

    def signing_at(self, now: datetime) -> SigningKey:
        return choose_signing(self.keys, self.schedule, now)

    @property
    def signing(self) -> SigningKey:
        return self.signing_at(datetime.now(UTC))

    def published(self, now: datetime) -> list[dict[str, str]]:
        """Every key held, plus every scheduled key that is coming, is the one due to
        sign now, or may still have live tokens: a replica whose copy of a key file
        has not arrived yet publishes the key all the same."""
        jwks = {k.kid: k.jwk for k in self.keys}
        due = [e for e in self.schedule.values() if e.signs_from <= now]
        current = max(due, key=lambda e: e.signs_from).kid if due else None
        for entry in self.schedule.values():
            if entry.kid in jwks:
                continue
            if entry.kid == current or entry.published_until(self.retain) > now:
                jwks[entry.kid] = entry.jwk
        return list(jwks.values())

    def jwks(self) -> dict[str, Any]:
        return {"keys": self.published(datetime.now(UTC))}

    async def fetch_jwks(self) -> dict[str, Any]:
        """The JWKS as a token verifier's key source (same interface as the HTTP one)."""
        return self.jwks()

    async def probe(self) -> None:
        """Readiness: a key to sign with and to publish."""
        if not self.keys:
            raise RuntimeError("no signing keys loaded")

    def replace_keys(self, keys: list[SigningKey]) -> None:
        """Take the keys of a re-read directory; an empty read keeps the current ones."""
        if keys:
            self.keys = keys

    def apply_schedule(self, entries: Iterable[Scheduled]) -> None:
        self.schedule = {e.kid: e for e in entries}

    @classmethod
    def from_pems(cls, pems: list[bytes], retain: timedelta = timedelta(0)) -> KeyRing:
        return cls([key_from_pem(pem, f"{i:04d}") for i, pem in enumerate(pems)], retain)

    @classmethod
    def load(cls, directory: Path, *, generate: bool, retain: timedelta = timedelta(0)) -> KeyRing:
        keys = read_keys(directory)
        if not keys:
            if not generate:
                raise RuntimeError(
                    f"No signing keys in {directory}. Put RSA private keys there (PEM, e.g. "
                    "`openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048`) or set "
                    "LOGSERVER_JWT_GENERATE_KEYS=true for development."
                )
            private_dir(directory)
            path = directory / f"key-{time.strftime('%Y%m%d%H%M%S')}.pem"
            write_private(path, generate_pem())
            keys = read_keys(directory)
        return cls(keys, retain)


def read_keys(directory: Path, known: Mapping[bytes, SigningKey] | None = None) -> list[SigningKey]:
    """The ``*.pem`` keys of ``directory`` in name order (blocking: file reads).

    ``known`` maps PEM bytes to keys already parsed, so a periodic re-read parses
    only what changed.
    """
    files = sorted(directory.glob("*.pem")) if directory.is_dir() else []
    keys = []
    for path in files:
        pem = path.read_bytes()
        cached = (known or {}).get(pem)
        keys.append(
            SigningKey(cached.kid, pem, cached.jwk, path.name)
            if cached
            else key_from_pem(pem, path.name)
        )
    return keys


def generate_pem(bits: int = 2048) -> bytes:
    key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
