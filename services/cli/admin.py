"""The admin flows over HTTP, written once for the `logserver` command, the benchmark
and the integration tests: a client-credentials token, a tenant, an API key, a change
to a tenant.

`AdminClient` (on an ``httpx.Client``: the CLI, the benchmark) and `AsyncAdminClient`
(on an ``httpx.AsyncClient``: the tests) send the same `Call`s, so each request and
the check of its answer live in one place and the three users cannot drift apart.
Every unexpected answer raises `AdminError` with the status and the server's detail.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from services.cli.errors import CliError, Unreachable

TOKEN_PATH = "/api/v1/auth/token"


class AdminError(CliError):
    """The server answered an admin call with another status than the call expects."""

    def __init__(self, what: str, resp: httpx.Response) -> None:
        self.status_code = resp.status_code
        self.text = resp.text
        super().__init__(f"{what} failed ({resp.status_code}): {_detail(resp)}")


def _detail(resp: httpx.Response) -> str:
    try:
        return str(resp.json().get("detail", resp.text))
    except (ValueError, AttributeError):
        text = resp.text.strip()
        return text.splitlines()[0] if text else ""


@dataclass(frozen=True)
class Call:
    """One request, the status that means success and what to return from the answer."""

    method: str
    path: str
    what: str  # for the error message: "creating tenant acme-1f2e"
    expect: int
    parse: Callable[[Any], Any]
    kwargs: dict[str, Any] = field(default_factory=dict)
    as_admin: bool = True  # sent with the admin's bearer token

    def result(self, resp: httpx.Response) -> Any:
        if resp.status_code != self.expect:
            raise AdminError(self.what, resp)
        try:
            body = resp.json()
        except ValueError:
            body = None
        return self.parse(body)


def _token_body(url: str) -> Callable[[Any], dict[str, Any]]:
    def parse(body: Any) -> dict[str, Any]:
        if not isinstance(body, dict) or "access_token" not in body:
            raise CliError(f"{url} did not answer with a token: is it a logserver gateway?")
        return body

    return parse


def token_call(url: str, client_id: str, secret: str) -> Call:
    """The client-credentials grant; returns the whole token response."""
    form = {"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret}
    return Call(
        "POST",
        TOKEN_PATH,
        f"token request to {url}",
        200,
        _token_body(url),
        {"data": form},
        as_admin=False,
    )


def tenant_call(prefix: str, fields: dict[str, Any]) -> Call:
    """A new tenant keyed ``<prefix>-<random hex>`` (unique per run); returns its key."""
    key = f"{prefix}-{secrets.token_hex(4)}"
    body = {"key": key, "name": key, **fields}
    return Call(
        "POST", "/api/v1/tenants", f"creating tenant {key}", 201, lambda _: key, {"json": body}
    )


def key_call(tenant: str, role: str, name: str | None) -> Call:
    """A new API key of ``tenant`` with ``role``; returns ``(client_id, client_secret)``."""
    return Call(
        "POST",
        f"/api/v1/tenants/{tenant}/api-keys",
        f"creating a {role} key of {tenant}",
        201,
        lambda body: (body["client_id"], body["client_secret"]),
        {"json": {"name": name or f"{role} key", "role": role}},
    )


def update_tenant_call(tenant: str, fields: dict[str, Any]) -> Call:
    """PATCH a tenant (name, retention_days, limits); returns the tenant as stored."""
    return Call(
        "PATCH",
        f"/api/v1/tenants/{tenant}",
        f"updating tenant {tenant}",
        200,
        dict,
        {"json": fields},
    )


class _Base:
    def __init__(self, http: httpx.Client | httpx.AsyncClient, admin_token: str | None) -> None:
        self.http = http
        self.admin: dict[str, str] = {}
        if admin_token:
            self.set_admin_token(admin_token)

    def set_admin_token(self, token: str) -> None:
        self.admin = {"Authorization": f"Bearer {token}"}

    @property
    def url(self) -> str:
        return str(self.http.base_url).rstrip("/")

    def _request(self, call: Call) -> dict[str, Any]:
        headers = self.admin if call.as_admin else {}
        return {"method": call.method, "url": call.path, "headers": headers, **call.kwargs}

    def _unreachable(self, exc: Exception) -> CliError:
        if isinstance(exc, httpx.InvalidURL):
            return CliError(f"not a usable URL: {self.url!r} ({exc})")
        return Unreachable(self.url, exc)


class AdminClient(_Base):
    """The admin flows on a blocking ``httpx.Client`` whose ``base_url`` is the gateway."""

    http: httpx.Client

    def __init__(self, http: httpx.Client, admin_token: str | None = None) -> None:
        super().__init__(http, admin_token)

    def send(self, call: Call) -> Any:
        try:
            resp = self.http.request(**self._request(call))
        except (httpx.TransportError, httpx.InvalidURL) as exc:
            raise self._unreachable(exc) from exc
        return call.result(resp)

    def login(self, client_id: str, secret: str) -> str:
        """Get a token for the (platform) admin credential and send it from now on."""
        token = self.token(client_id, secret)
        self.set_admin_token(token)
        return token

    def token_response(self, client_id: str, secret: str) -> dict[str, Any]:
        return self.send(token_call(self.url, client_id, secret))

    def token(self, client_id: str, secret: str) -> str:
        return self.token_response(client_id, secret)["access_token"]

    def tenant(self, prefix: str = "t", **fields: Any) -> str:
        return self.send(tenant_call(prefix, fields))

    def key(self, tenant: str, role: str, name: str | None = None) -> tuple[str, str]:
        return self.send(key_call(tenant, role, name))

    def update_tenant(self, tenant: str, **fields: Any) -> dict[str, Any]:
        return self.send(update_tenant_call(tenant, fields))


class AsyncAdminClient(_Base):
    """The same flows on an ``httpx.AsyncClient`` whose ``base_url`` is the gateway."""

    http: httpx.AsyncClient

    def __init__(self, http: httpx.AsyncClient, admin_token: str | None = None) -> None:
        super().__init__(http, admin_token)

    async def send(self, call: Call) -> Any:
        try:
            resp = await self.http.request(**self._request(call))
        except (httpx.TransportError, httpx.InvalidURL) as exc:
            raise self._unreachable(exc) from exc
        return call.result(resp)

    async def login(self, client_id: str, secret: str) -> str:
        token = await self.token(client_id, secret)
        self.set_admin_token(token)
        return token

    async def token_response(self, client_id: str, secret: str) -> dict[str, Any]:
        return await self.send(token_call(self.url, client_id, secret))

    async def token(self, client_id: str, secret: str) -> str:
        return (await self.token_response(client_id, secret))["access_token"]

    async def tenant(self, prefix: str = "t", **fields: Any) -> str:
        return await self.send(tenant_call(prefix, fields))

    async def key(self, tenant: str, role: str, name: str | None = None) -> tuple[str, str]:
        return await self.send(key_call(tenant, role, name))

    async def update_tenant(self, tenant: str, **fields: Any) -> dict[str, Any]:
        return await self.send(update_tenant_call(tenant, fields))

    async def role_tokens(self, tenant: str) -> dict[str, str]:
        """A token for each tenant-bound role of ``tenant``."""
        tokens = {}
        for role in ("admin", "auditor", "viewer", "writer"):
            tokens[role] = await self.token(*await self.key(tenant, role))
        return tokens
