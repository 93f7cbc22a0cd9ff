"""The auth service through the gateway: token issue, JWKS, verify, me, and every forgery."""

from __future__ import annotations

import base64
import time
import uuid

import httpx
import orjson
import pytest
from jose import jwt

from services.cli.stack import StackConfig
from tests.integration.conftest import Api, bearer

pytestmark = pytest.mark.integration


def _signing_key(cfg: StackConfig) -> tuple[bytes, str]:
    """The stack's newest private key and its kid (tests forge tokens with it)."""
    from services.auth.keys import KeyRing

    ring = KeyRing.load(cfg.data_dir / "jwt-keys", generate=False)
    return ring.signing.private_pem, ring.signing.kid


def _claims(**over: object) -> dict:
    now = int(time.time())
    claims = {
        "sub": "nobody",
        "tenant": "nobody",
        "role": "admin",
        "aud": "logserver",
        "iss": "logserver-auth",
        "iat": now,
        "nbf": now,
        "exp": now + 600,
        "jti": uuid.uuid4().hex,
    }
    claims.update(over)
    return {k: v for k, v in claims.items() if v is not None}


async def test_token_from_form_json_and_basic(api: Api, cfg: StackConfig) -> None:
    form = await api.http.post(
        "/api/v1/auth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": cfg.admin_client_id,
            "client_secret": cfg.admin_client_secret,
        },
    )
    assert form.status_code == 200
    body = form.json()
    assert body["token_type"] == "Bearer" and body["expires_in"] > 0
    assert form.headers["cache-control"] == "no-store"
    as_json = await api.http.post(
        "/api/v1/auth/token",
        json={
            "grant_type": "client_credentials",
            "client_id": cfg.admin_client_id,
            "client_secret": cfg.admin_client_secret,
        },
    )
    assert as_json.status_code == 200
    basic = await api.http.post(
        "/api/v1/auth/token",
        data={"grant_type": "client_credentials"},
        auth=(cfg.admin_client_id, cfg.admin_client_secret),
    )
    assert basic.status_code == 200
    header = jwt.get_unverified_header(body["access_token"])
    claims = jwt.get_unverified_claims(body["access_token"])
    assert header["alg"] == "RS256" and header["kid"]
    assert claims["aud"] == "logserver" and claims["tenant"] == "*" and claims["role"] == "admin"
    assert {"sub", "iss", "iat", "exp", "jti"} <= set(claims)


async def test_jwks_is_published_at_both_paths(gateway: httpx.AsyncClient) -> None:
    a = (await gateway.get("/api/v1/auth/jwks")).json()
    b = (await gateway.get("/.well-known/jwks.json")).json()
    assert a == b
    assert a["keys"] and all(k["kty"] == "RSA" and k["alg"] == "RS256" for k in a["keys"])
    assert all("d" not in k for k in a["keys"]), "private part must never be published"


@pytest.mark.parametrize(
    "body",
    [
        {"grant_type": "client_credentials", "client_id": "lsk_nope", "client_secret": "x"},
        {"grant_type": "client_credentials", "client_id": "ADMIN", "client_secret": "wrong"},
    ],
)
async def test_wrong_credentials_get_one_opaque_401(
    gateway: httpx.AsyncClient, cfg: StackConfig, body: dict
) -> None:
    if body["client_id"] == "ADMIN":
        body = {**body, "client_id": cfg.admin_client_id}
    resp = await gateway.post("/api/v1/auth/token", data=body)
    assert resp.status_code == 401
    assert resp.headers["content-type"] == "application/problem+json"
    assert resp.json()["detail"] == "Invalid client credentials."
    assert cfg.admin_client_secret not in resp.text


async def test_token_request_bad_input(gateway: httpx.AsyncClient, cfg: StackConfig) -> None:
    missing = await gateway.post(
        "/api/v1/auth/token", json={"grant_type": "client_credentials", "client_id": "x"}
    )
    assert missing.status_code == 422
    assert missing.json()["errors"][0]["field"] == "client_secret"
    grant = await gateway.post(
        "/api/v1/auth/token",
        data={"grant_type": "password", "client_id": "a", "client_secret": "b"},
    )
    assert grant.status_code == 400 and "client_credentials" in grant.json()["detail"]
    ctype = await gateway.post(
        "/api/v1/auth/token", content=b"x", headers={"content-type": "text/plain"}
    )
    assert ctype.status_code == 400


async def test_me_and_forward_auth_verify(api: Api) -> None:
    tenant = await api.tenant()
    viewer = await api.token(*await api.key(tenant, "viewer"))
    me = await api.http.get("/api/v1/auth/me", headers=bearer(viewer))
    assert me.status_code == 200
    assert me.json()["tenant"] == tenant and me.json()["role"] == "viewer"
    for how in (
        {"headers": bearer(viewer)},
        {"params": {"token": viewer}},
        {"headers": {"Sec-WebSocket-Protocol": f"bearer, {viewer}"}},
        {"headers": {"X-Original-URL": f"https://x/api/v1/logs/stream?token={viewer}"}},
    ):
        resp = await api.http.get("/api/v1/auth/verify", **how)
        assert resp.status_code == 200, (how, resp.text)
        assert resp.headers["x-auth-tenant"] == tenant
        assert resp.headers["x-auth-role"] == "viewer"
        assert resp.headers["x-auth-sub"].startswith("lsk_")
    assert (await api.http.get("/api/v1/auth/verify")).status_code == 401
    other = await api.http.get(
        "/api/v1/auth/verify", headers=bearer(viewer, **{"X-Tenant-ID": "someone-else"})
    )
    assert other.status_code == 403


def _forgeries(cfg: StackConfig) -> dict[str, str]:
    pem, kid = _signing_key(cfg)
    good = _claims()
    signed = jwt.encode(good, pem, algorithm="RS256", headers={"kid": kid})
    head, payload, sig = signed.split(".")
    tampered_payload = (
        base64.urlsafe_b64encode(orjson.dumps({**good, "tenant": "*"})).rstrip(b"=").decode()
    )
    none_header = (
        base64.urlsafe_b64encode(orjson.dumps({"alg": "none", "kid": kid})).rstrip(b"=").decode()
    )
    from services.auth.keys import KeyRing

    public_pem = KeyRing.from_pems([pem]).signing.jwk["n"]  # any public material as HMAC secret
    now = int(time.time())
    return {
        "malformed": "not.a.jwt",
        "garbage": "abc",
        "alg none": f"{none_header}.{payload}.",
        "HS256 with public key": jwt.encode(
            good, public_pem, algorithm="HS256", headers={"kid": kid}
        ),
        "unknown kid": jwt.encode(good, pem, algorithm="RS256", headers={"kid": "unknown"}),
        "expired": jwt.encode(
            _claims(iat=now - 7200, nbf=now - 7200, exp=now - 3600),
            pem,
            algorithm="RS256",
            headers={"kid": kid},
        ),
        "not yet valid": jwt.encode(
            _claims(nbf=now + 3600), pem, algorithm="RS256", headers={"kid": kid}
        ),
        "wrong aud": jwt.encode(_claims(aud="other"), pem, algorithm="RS256", headers={"kid": kid}),
        "wrong iss": jwt.encode(_claims(iss="evil"), pem, algorithm="RS256", headers={"kid": kid}),
        "tampered payload": f"{head}.{tampered_payload}.{sig}",
        # Well signed, but the API key behind it does not exist: revoked-equivalent.
        "no such key": signed,
    }


@pytest.mark.parametrize(
    "case",
    [
        "malformed",
        "garbage",
        "alg none",
        "HS256 with public key",
        "unknown kid",
        "expired",
        "not yet valid",
        "wrong aud",
        "wrong iss",
        "tampered payload",
        "no such key",
    ],
)
@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/auth/me",
        "/api/v1/tenants",
        "/api/v1/auth/verify",
        "/api/v1/logs",
        "/api/v1/logs/stats",
    ],
)
async def test_forged_tokens_are_401_everywhere(
    gateway: httpx.AsyncClient, cfg: StackConfig, case: str, path: str
) -> None:
    token = _forgeries(cfg)[case]
    resp = await gateway.get(path, headers=bearer(token))
    assert resp.status_code == 401, (case, path, resp.status_code, resp.text)
    assert resp.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize("path", ["/api/v1/auth/me", "/api/v1/tenants", "/api/v1/logs"])
async def test_missing_token_is_401(gateway: httpx.AsyncClient, path: str) -> None:
    resp = await gateway.get(path)
    assert resp.status_code == 401
    assert resp.headers["www-authenticate"].startswith("Bearer")
