"""One error hierarchy, rendered as RFC 9457 ``application/problem+json``."""

from __future__ import annotations

from typing import Any

PROBLEM_BASE = "https://logserver.dev/problems/"


class LogServerError(Exception):
    """An error with an HTTP status, a stable title and a detail a person can act on."""

    status: int = 500
    title: str = "Internal Server Error"
    slug: str = "internal"

    def __init__(
        self,
        detail: str,
        *,
        errors: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = errors
        self.headers = headers or {}

    @property
    def type(self) -> str:
        return PROBLEM_BASE + self.slug

    def to_problem(self, instance: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": self.type,
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
        }
        if instance:
            body["instance"] = instance
        if self.errors:
            body["errors"] = self.errors
        return body


class BadRequest(LogServerError):
    status, title, slug = 400, "Bad Request", "bad-request"


class Unauthorized(LogServerError):
    status, title, slug = 401, "Unauthorized", "unauthorized"

    def __init__(self, detail: str = "A valid bearer token is required.", **kw: Any) -> None:
        kw.setdefault("headers", {"WWW-Authenticate": 'Bearer realm="logserver"'})
        super().__init__(detail, **kw)


class Forbidden(LogServerError):
    status, title, slug = 403, "Forbidden", "forbidden"


class NotFound(LogServerError):
    status, title, slug = 404, "Not Found", "not-found"


class Conflict(LogServerError):
    status, title, slug = 409, "Conflict", "conflict"


class PayloadTooLarge(LogServerError):
    status, title, slug = 413, "Payload Too Large", "payload-too-large"


class UnsupportedMediaType(LogServerError):
    status, title, slug = 415, "Unsupported Media Type", "unsupported-media-type"


class ValidationFailed(LogServerError):
    status, title, slug = 422, "Unprocessable Content", "validation"


class Unavailable(LogServerError):
    status, title, slug = 503, "Service Unavailable", "unavailable"

    def __init__(self, detail: str, *, retry_after: int = 5, **kw: Any) -> None:
        kw.setdefault("headers", {"Retry-After": str(retry_after)})
        super().__init__(detail, **kw)


class ServerBusy(Unavailable):
    """503: a cap of this process (not one of the tenant's limits) is reached: the
    server is busy with other tenants' work, retry shortly."""

    slug = "server-busy"


class RateLimited(LogServerError):
    """429: the tenant is over one of its limits (``services/core/limits.py``).

    ``slug`` names the kind of limit (``ingest-rate-limited``, ``query-concurrency``,
    ...), ``limit`` the tenant limit field and ``value`` its value; the problem body
    carries both, and ``Retry-After`` says when trying again can succeed.
    """

    status, title, slug = 429, "Too Many Requests", "rate-limited"

    def __init__(
        self, detail: str, *, slug: str, limit: str, value: int, retry_after: int, **kw: Any
    ) -> None:
        self.retry_after = max(1, int(retry_after))
        kw.setdefault("headers", {"Retry-After": str(self.retry_after)})
        super().__init__(detail, **kw)
        self.slug = slug
        self.limit = limit
        self.value = value

    def to_problem(self, instance: str | None = None) -> dict[str, Any]:
        body = super().to_problem(instance)
        body["limit"] = self.limit
        body["limit_value"] = self.value
        body["retry_after"] = self.retry_after
        return body


class QueryTimeout(LogServerError):
    status, title, slug = 504, "Gateway Timeout", "query-timeout"


def http_status_problem(status: int, detail: str) -> dict[str, Any]:
    """Problem body for errors raised by the framework itself (404 route, 405 method...)."""
    from http import HTTPStatus

    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = "Error"
    slug = phrase.lower().replace(" ", "-")
    return {"type": PROBLEM_BASE + slug, "title": phrase, "status": status, "detail": detail}


def validation_errors(raw: list[Any]) -> list[dict[str, Any]]:
    """Shape pydantic/FastAPI validation errors as ``[{"field", "message"}]``.

    The input value is deliberately not echoed back: it may hold a secret.
    """
    out = []
    for err in raw:
        loc = [str(p) for p in err.get("loc", ()) if p not in ("body", "query", "path", "header")]
        out.append({"field": ".".join(loc) or "body", "message": err.get("msg", "invalid")})
    return out
