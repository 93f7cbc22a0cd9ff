"""`logserver token`: exchange a client credential for a bearer token to paste into curl."""

from __future__ import annotations

import base64
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from services.cli.admin import AdminClient
from services.cli.errors import CliError

# Where `logserver dev` saves its platform admin (services/cli/devstack.py), in the
# source checkout; not imported from there: the dev stack is not in the runtime image.
DEV_ADMIN_CREDENTIALS = Path(__file__).resolve().parents[2] / ".data" / "admin-credentials.json"


def default_url() -> str:
    return os.environ.get("LOGSERVER_URL", "http://127.0.0.1:8080")


def load_credential(
    client_id: str | None, secret: str | None, path: Path | None
) -> tuple[str, str]:
    """The credential to use: flags, else the environment, else a file, else the dev admin.

    Half a credential is refused: falling back to the dev platform admin when a
    client id was named would hand out a far stronger token than asked for.
    """
    client_id = client_id or os.environ.get("LOGSERVER_CLIENT_ID")
    secret = secret or os.environ.get("LOGSERVER_CLIENT_SECRET")
    if client_id and secret:
        return client_id, secret
    if client_id:
        raise CliError(
            f"no secret for client id {client_id!r}: pass --client-secret or set "
            "LOGSERVER_CLIENT_SECRET"
        )
    if secret:
        raise CliError(
            "a client secret without a client id: pass --client-id or set LOGSERVER_CLIENT_ID"
        )
    if path is None:
        path = DEV_ADMIN_CREDENTIALS
        if not path.exists():
            raise CliError(
                "no credential: pass --client-id and --client-secret, set "
                "LOGSERVER_CLIENT_ID and LOGSERVER_CLIENT_SECRET, or run `make dev` once "
                f"to create {path}"
            )
    try:
        doc = json.loads(path.read_text())
        return doc["client_id"], doc["client_secret"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise CliError(f"cannot read a client_id and client_secret from {path}: {exc}") from exc


@dataclass(frozen=True)
class Token:
    """A bearer token and when it was obtained (``time.monotonic()``)."""

    value: str
    lifetime: float
    obtained_at: float
    response: dict[str, Any]

    @property
    def refresh_at(self) -> float:
        """When to get a new one: once 60 s or 10% of its lifetime remain, whichever is
        sooner, but never before half of it is used (so short tokens are not re-fetched
        in a loop)."""
        margin = min(max(60.0, self.lifetime / 10), self.lifetime / 2)
        return self.obtained_at + self.lifetime - margin

    def needs_refresh(self, now: float) -> bool:
        return now >= self.refresh_at


def fetch_token(url: str, client_id: str, secret: str) -> dict[str, Any]:
    """POST the client-credentials grant; a clear `CliError` for every way it can fail."""
    with httpx.Client(base_url=url, timeout=10) as http:
        return AdminClient(http).token_response(client_id, secret)


def get_token(url: str, client_id: str, secret: str) -> Token:
    body = fetch_token(url, client_id, secret)
    return Token(
        value=body["access_token"],
        lifetime=float(body.get("expires_in") or 3600),
        obtained_at=time.monotonic(),
        response=body,
    )


def token_claims(token: str) -> dict[str, Any]:
    """The JWT's claims, unverified: only to tell the user something before connecting."""
    try:
        payload = token.split(".")[1]
        return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError):
        return {}


def run_token(args) -> int:
    client_id, secret = load_credential(args.client_id, args.client_secret, args.credentials)
    token = fetch_token(args.url, client_id, secret)
    if args.json:
        json.dump(token, sys.stdout)
        print()
    else:
        print(token["access_token"])
    return 0
