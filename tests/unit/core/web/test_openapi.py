"""A service's OpenAPI document follows the project's conventions (core/web/openapi.py)."""

from __future__ import annotations

from typing import Annotated

import pytest
from fastapi import APIRouter, FastAPI, Query
from pydantic import BaseModel

from services.core.web.openapi import RouteDoc, describe, service_openapi
from services.core.web.security import Authenticated, LogsRead, LogsWrite


class Thing(BaseModel):
    name: str


def _app(docs: dict[tuple[str, str], RouteDoc] | None = None) -> tuple[FastAPI, set[type]]:
    router = APIRouter(prefix="/api/v1/things")

    @router.get("")
    async def read(principal: LogsRead, limit: Annotated[int, Query(ge=1)] = 5) -> None: ...

    @router.post("")
    async def write(principal: LogsWrite) -> None: ...

    @router.get("/me")
    async def me(principal: Authenticated) -> None: ...

    @router.get("/public")
    async def public() -> None: ...

    models = describe(router.routes, docs or {})
    app = FastAPI()
    app.include_router(router)
    return app, models


def test_validation_errors_are_problem_json_and_fastapis_shape_is_not_advertised() -> None:
    app, _ = _app()
    spec = service_openapi(app)
    op = spec["paths"]["/api/v1/things"]["get"]
    assert op["responses"]["422"]["content"] == {
        "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}
    }
    assert "HTTPValidationError" not in spec["components"]["schemas"]
    assert "ValidationError" not in spec["components"]["schemas"]
    assert "Problem" in spec["components"]["schemas"]


def test_security_comes_from_the_auth_dependency() -> None:
    app, _ = _app()
    paths = service_openapi(app)["paths"]
    assert paths["/api/v1/things"]["get"]["security"] == [{"bearer": []}]
    assert paths["/api/v1/things"]["post"]["security"] == [
        {"bearer": []},
        {"basic": []},
        {"apiKey": []},
    ]
    assert paths["/api/v1/things/me"]["get"]["security"] == [{"bearer": []}]
    public = paths["/api/v1/things/public"]["get"]
    assert "security" not in public
    assert "401" not in public["responses"] and "500" in public["responses"]
    secured = paths["/api/v1/things"]["get"]
    assert {"401", "403"} <= set(secured["responses"])
    assert "X-Tenant-ID" in {p["name"] for p in secured["parameters"]}


def test_a_route_doc_adds_body_response_and_errors() -> None:
    doc = RouteDoc(body={"application/json": Thing}, response=Thing, errors={413: "Too big."})
    app, models = _app({("POST", "/api/v1/things"): doc})
    spec = service_openapi(app, models=models)
    op = spec["paths"]["/api/v1/things"]["post"]
    ref = {"$ref": "#/components/schemas/Thing"}
    assert op["requestBody"]["content"]["application/json"]["schema"] == ref
    assert op["responses"]["200"]["content"]["application/json"]["schema"] == ref
    assert op["responses"]["413"]["description"] == "Too big."
    assert "Thing" in spec["components"]["schemas"]


def test_documenting_a_route_that_does_not_exist_is_an_error() -> None:
    with pytest.raises(LookupError, match="/api/v1/gone"):
        _app({("GET", "/api/v1/gone"): RouteDoc(summary="x")})


def test_services_serve_their_document_but_no_cdn_swagger_page() -> None:
    from services.tenant.app import create_app

    paths = {getattr(r, "path", None) for r in create_app().router.routes}
    assert "/openapi.json" in paths
    assert "/docs" not in paths and "/redoc" not in paths
