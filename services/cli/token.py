"""`logserver token`: exchange a client credential for a bearer token to paste into curl."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import httpx

from services.cli.stack import REPO


def default_url() -> str:
    return os.environ.get("LOGSERVER_URL", "http://127.0.0.1:8080")


def load_credential(
    client_id: str | None, secret: str | None, path: Path | None
) -> tuple[str, str]:
    client_id = client_id or os.environ.get("LOGSERVER_CLIENT_ID")
    secret = secret or os.environ.get("LOGSERVER_CLIENT_SECRET")
    if client_id and secret:
        return client_id, secret
    path = path or REPO / ".data" / "admin-credentials.json"
    if not path.exists():
        raise SystemExit(
            f"No credential: pass --client-id/--client-secret, set LOGSERVER_CLIENT_ID and "
            f"LOGSERVER_CLIENT_SECRET, or run `make dev` once to create {path}."
        )
    doc = json.loads(path.read_text())
    return doc["client_id"], doc["client_secret"]


def fetch_token(url: str, client_id: str, secret: str) -> dict:
    resp = httpx.post(
        url.rstrip("/") + "/api/v1/auth/token",
        data={"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret},
        timeout=10,
    )
    if resp.status_code != 200:
        try:
            detail = resp.json().get("detail", resp.text)
        except ValueError:
            detail = resp.text
        raise SystemExit(f"token request failed ({resp.status_code}): {detail}")
    return resp.json()


def run_token(args) -> int:
    client_id, secret = load_credential(args.client_id, args.client_secret, args.credentials)
    token = fetch_token(args.url, client_id, secret)
    if args.json:
        json.dump(token, sys.stdout)
        print()
    else:
        print(token["access_token"])
    return 0
