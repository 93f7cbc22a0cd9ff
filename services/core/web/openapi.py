"""The OpenAPI document of a service, true to what it answers.

FastAPI's generated document knows the parameters and bodies a route declares,
but not this project's conventions, which :func:`service_openapi` adds:

- every error is ``application/problem+json`` (:class:`Problem`, RFC 9457),
  including the 422 of a bad parameter or body: FastAPI's default
  ``HTTPValidationError`` shape is never answered, so it is never advertised;
- authentication is a dependency (services/core/web/security.py), not a FastAPI
  security class: the schemes a route takes are read from its dependencies
  (:func:`services.core.web.security.auth_schemes`), and a route that takes any
  also documents ``X-Tenant-ID`` and its 401/403;
- a route may add what its signature cannot say (a body read by hand, a
  response model of a handler that returns a ``Response``, the statuses its
  logic answers) with :class:`RouteDoc` and :func:`describe`, and a service may
  add paths FastAPI cannot describe at all (a WebSocket).
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, routing
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute
from pydantic import BaseModel, ConfigDict, Field
from pydantic.json_schema import models_json_schema

from services.core.web.security import SCHEMES, auth_schemes

PROBLEM_JSON = "application/problem+json"
REF = "#/components/schemas/"
ERROR_CONTENT = "x-error-content"  # RouteDoc.error_content, applied then dropped


class FieldError(BaseModel):
    field: str = Field(description="The parameter or body field, e.g. `limit` or `body.name`.")
    message: str


class Problem(BaseModel):
    """An error (RFC 9457). Some carry more members (e.g. `limit`, `retry_after`)."""

    model_config = ConfigDict(extra="allow")

    type: str = Field(description="A URI naming the kind of problem.")
    title: str
    status: int
    detail: str = Field(description="What went wrong, in words a person can act on.")
    instance: str | None = Field(None, description="The request path.")
    errors: list[FieldError] | None = Field(None, description="Each invalid field (422).")


def problem_response(status: int, description: str | None = None) -> dict[str, Any]:
    """The OpenAPI response object of an error ``status``."""
    return {
        "description": description or HTTPStatus(status).phrase,
        "content": {PROBLEM_JSON: {"schema": {"$ref": REF + "Problem"}}},
    }


#: Answered by any route: a bug (500), a backend that is not answering (503).
ALWAYS = (500, 503)
AUTH_ERRORS = {
    401: "No credential, or an invalid, expired or revoked one.",
    403: "The credential's role or tenant may not do this.",
}
TENANT_HEADER = {
    "name": "X-Tenant-ID",
    "in": "header",
    "required": False,
    "description": "A platform admin names the tenant it acts on; "
    "anyone else may only repeat their own.",
    "schema": {"type": "string"},
}


@dataclass(frozen=True)
class RouteDoc:
    """What a route's signature does not tell OpenAPI.

    ``body``: media type -> schema (a model or a JSON schema) of a body the
    handler reads itself; ``response``: the model of its success answer;
    ``errors``: status -> description of the errors its logic answers;
    ``error_content``: the content of its 4xx and 503 answers when they are not
    problem+json (a foreign protocol's error shape).
    """

    summary: str | None = None
    description: str | None = None
    body: Mapping[str, type[BaseModel] | dict[str, Any]] = field(default_factory=dict)
    body_description: str | None = None
    response: type[BaseModel] | None = None
    response_media: Mapping[str, dict[str, Any]] = field(default_factory=dict)
    errors: Mapping[int, str] = field(default_factory=dict)
    parameters: Sequence[dict[str, Any]] = ()
    error_content: Mapping[str, dict[str, Any]] | None = None


def _schema(value: type[BaseModel] | dict[str, Any]) -> dict[str, Any]:
    if isinstance(value, dict):
        return value
    return {"$ref": REF + value.__name__}


def _extra(doc: RouteDoc, status: int) -> dict[str, Any]:
    extra: dict[str, Any] = {}
    if doc.summary:
        extra["summary"] = doc.summary
    if doc.description:
        extra["description"] = doc.description
    if doc.body:
        body: dict[str, Any] = {
            "required": True,
            "content": {m: {"schema": _schema(s)} for m, s in doc.body.items()},
        }
        if doc.body_description:
            body["description"] = doc.body_description
        extra["requestBody"] = body
    responses: dict[str, Any] = {}
    content: dict[str, Any] = {}
    if doc.response is not None:
        content["application/json"] = {"schema": _schema(doc.response)}
    content.update(doc.response_media)
    if content:
        responses[str(status)] = {"content": content}
    for code, text in doc.errors.items():
        responses[str(code)] = problem_response(code, text)
    if responses:
        extra["responses"] = responses
    if doc.parameters:
        extra["parameters"] = list(doc.parameters)
    if doc.error_content is not None:
        extra[ERROR_CONTENT] = dict(doc.error_content)
    return extra


def describe(routes: Iterable[Any], docs: Mapping[tuple[str, str], RouteDoc]) -> set[type]:
    """Attach ``docs`` (keyed by ``(METHOD, path)``) to the matching routes; return
    the models they name, for :func:`service_openapi`'s components.

    A key that matches no route is an error: a renamed route must not silently
    lose its documentation.
    """
    found: set[tuple[str, str]] = set()
    models: set[type] = set()
    for route in routes:
        if not isinstance(route, APIRoute):
            continue
        for method in route.methods:
            doc = docs.get((method, route.path))
            if doc is None:
                continue
            found.add((method, route.path))
            route.openapi_extra = {
                **(route.openapi_extra or {}),
                **_extra(doc, route.status_code or 200),
            }
            for value in [*doc.body.values(), doc.response]:
                if isinstance(value, type) and issubclass(value, BaseModel):
                    models.add(value)
    missing = set(docs) - found
    if missing:
        raise LookupError(f"documented routes that do not exist: {sorted(missing)}")
    return models


def _operations(paths: dict[str, Any]) -> Iterable[tuple[str, str, dict[str, Any]]]:
    for path, item in paths.items():
        for method, op in item.items():
            if method in ("get", "put", "post", "delete", "patch", "head", "options", "trace"):
                yield path, method, op


def _uses_ref(doc: Any, name: str) -> bool:
    return f'"{REF}{name}"' in repr(doc).replace("'", '"')


def service_openapi(
    app: FastAPI,
    *,
    models: Iterable[type[BaseModel]] = (),
    paths: Mapping[str, dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """The service's OpenAPI document with the project's conventions applied."""
    with warnings.catch_warnings():
        # A route of several methods gets one operationId for all; made unique below.
        warnings.filterwarnings("ignore", "Duplicate Operation ID")
        spec = get_openapi(
            title=app.title,
            version=app.version,
            openapi_version=app.openapi_version,
            description=app.description,
            routes=app.routes,
        )
    components = spec.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    _, defs = models_json_schema(
        [(m, "serialization") for m in (Problem, *models)], ref_template=REF + "{model}"
    )
    for name, schema in defs.get("$defs", {}).items():
        schemas.setdefault(name, schema)
    routes = {
        (context.path_format, method.lower()): context.original_route
        for context in routing.iter_route_contexts(app.routes)
        if isinstance(context.original_route, APIRoute)
        for method in context.original_route.methods
    }
    for name, item in (paths or {}).items():
        spec.setdefault("paths", {})[name] = copy.deepcopy(item)
    used: set[str] = set()
    seen_ids: set[str] = set()
    for path, method, op in _operations(spec.get("paths", {})):
        if op.get("operationId") in seen_ids:
            op["operationId"] = f"{op['operationId']}_{method}_{len(seen_ids)}"
        seen_ids.add(op.get("operationId", ""))
        responses = op.setdefault("responses", {})
        if "422" in responses:
            # Validation errors are problem+json (services/core/web/app.py), not FastAPI's shape.
            responses["422"] = problem_response(422, "A parameter or the body is invalid.")
        route = routes.get((path, method))
        schemes = auth_schemes(route.dependant) if route is not None else ()
        if schemes:
            used.update(schemes)
            op["security"] = [{name: []} for name in schemes]
            params = op.setdefault("parameters", [])
            if not any(p.get("name") == TENANT_HEADER["name"] for p in params):
                params.append(dict(TENANT_HEADER))
            for status, text in AUTH_ERRORS.items():
                responses.setdefault(str(status), problem_response(status, text))
        for status in ALWAYS:
            responses.setdefault(str(status), problem_response(status))
        foreign = op.pop(ERROR_CONTENT, None)
        if foreign is not None:
            # Answered by the route's own error handler; a bug (500) stays problem+json.
            for status, response in responses.items():
                if status[0] == "4" or status == "503":
                    response["content"] = copy.deepcopy(foreign)
    for _, _, op in _operations(spec.get("paths", {})):
        for requirement in op.get("security", []):
            used.update(requirement)
    if used:
        components["securitySchemes"] = {n: SCHEMES[n] for n in SCHEMES if n in used}
    for name in ("HTTPValidationError", "ValidationError"):
        if name in schemas and not _uses_ref({**spec, "components": {}}, name):
            del schemas[name]
    return spec


def install(
    app: FastAPI,
    *,
    models: Iterable[type[BaseModel]] = (),
    paths: Mapping[str, dict[str, Any]] | None = None,
) -> None:
    """Serve :func:`service_openapi` as the app's ``/openapi.json`` (built once)."""
    model_list = list(models)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = service_openapi(app, models=model_list, paths=paths)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
