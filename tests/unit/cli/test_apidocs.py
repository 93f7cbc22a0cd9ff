"""The merged API reference: valid OpenAPI 3.1, every gateway route in it with
the parameters its route declares, problem+json errors, security per route."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import routing
from openapi_spec_validator import validate

from services.broadcast.apidoc import CLOSE_CODES
from services.cli.apidocs import _apps, merge, merged_spec
from services.core.logs.filters import FILTER_PARAMS
from tests.deploy.conftest import k8s_routes

METHODS = ("get", "put", "post", "delete", "patch", "head")


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    return merged_spec()


def operations(spec: dict[str, Any]):
    for path, item in spec["paths"].items():
        for method in METHODS:
            if method in item:
                yield path, method, item[method]


def names(op: dict[str, Any], where: str) -> set[str]:
    return {p["name"] for p in op.get("parameters", []) if p["in"] == where}


def test_the_merged_document_is_valid_openapi_3_1(spec: dict[str, Any]) -> None:
    assert spec["openapi"].startswith("3.1")
    validate(spec)


def test_every_gateway_route_has_paths_in_the_document(spec: dict[str, Any]) -> None:
    documented = set(spec["paths"])
    for route in k8s_routes.ROUTES:
        if route.service == k8s_routes.CONSOLE:
            continue  # files, not API: the console and this reference itself
        if route.match == "Exact":
            assert route.path in documented, route
        else:
            assert any(p.startswith(route.path) for p in documented), route


def test_every_route_of_every_service_is_documented_with_its_parameters(
    spec: dict[str, Any],
) -> None:
    """Each app route the gateway exposes (by ROUTES) is an operation of the merged
    document, with every query, path and header parameter the route declares."""
    prefixes = [r for r in k8s_routes.ROUTES if r.service != k8s_routes.CONSOLE]
    checked = 0
    for name, factory in _apps().items():
        app = factory()
        for context in routing.iter_route_contexts(app.routes):
            route = context.original_route
            if not isinstance(route, routing.APIRoute) or not route.include_in_schema:
                continue
            path = context.path_format
            exposed = any(
                path == r.path if r.match == "Exact" else path.startswith(r.path) for r in prefixes
            )
            if not exposed:
                assert name == "worker" or path in ("/healthz", "/readyz", "/metrics")
                continue
            for method in route.methods:
                op = spec["paths"][path][method.lower()]
                flat = route.dependant
                declared = {
                    "query": {p.alias for p in _all(flat, "query_params")},
                    "path": {p.alias for p in _all(flat, "path_params")},
                    "header": {p.alias for p in _all(flat, "header_params")},
                }
                for where, want in declared.items():
                    assert want <= names(op, where), (path, method, where)
                checked += 1
    assert checked >= 25


def _all(dependant: Any, kind: str) -> list[Any]:
    out = list(getattr(dependant, kind))
    for sub in dependant.dependencies:
        out += _all(sub, kind)
    return out


# The query parameters the README documents for the log queries. They appear in the
# document once the log routes declare them (SearchParams/ExportParams dependencies).
FILTERS = FILTER_PARAMS - {"severity"}  # an alias of level
LOG_QUERY_PARAMS = {
    ("/api/v1/logs", "get"): FILTERS | {"sort", "limit", "cursor", "page", "size", "total"},
    ("/api/v1/logs/stats", "get"): FILTERS | {"by", "interval"},
    ("/api/v1/logs/export", "get"): FILTERS | {"format", "sort", "limit"},
    ("/api/v1/logs/cleanup", "delete"): FILTERS | {"before", "older_than_days", "all"},
}


@pytest.mark.parametrize(("path", "method"), sorted(LOG_QUERY_PARAMS))
def test_the_log_queries_document_their_parameters(
    spec: dict[str, Any], path: str, method: str
) -> None:
    op = spec["paths"][path][method]
    missing = LOG_QUERY_PARAMS[(path, method)] - names(op, "query")
    assert not missing, f"{method.upper()} {path} does not document {sorted(missing)}"


def test_every_error_is_problem_json_and_fastapis_422_shape_is_gone(
    spec: dict[str, Any],
) -> None:
    assert "HTTPValidationError" not in spec["components"]["schemas"]
    for path, method, op in operations(spec):
        errors = {s: r for s, r in op["responses"].items() if s[0] in "45"}
        assert any(s.startswith("5") for s in errors), (path, method)
        if path.startswith("/es/"):
            for status, response in errors.items():  # Elasticsearch's own error shape
                media = "application/problem+json" if status == "500" else "application/json"
                assert list(response["content"]) == [media], (path, method, status)
            continue
        for status, response in errors.items():
            content = response.get("content", {})
            assert list(content) == ["application/problem+json"], (path, method, status)
            assert content["application/problem+json"]["schema"] == {
                "$ref": "#/components/schemas/Problem"
            }


def test_responses_are_models_not_strings(spec: dict[str, Any]) -> None:
    json_answers = [
        ("/api/v1/tenants", "post", "201"),
        ("/api/v1/tenants", "get", "200"),
        ("/api/v1/tenants/{key}/api-keys", "post", "201"),
        ("/api/v1/auth/token", "post", "200"),
        ("/api/v1/logs", "post", "202"),
        ("/api/v1/logs/bulk", "post", "202"),
        ("/api/v1/logs", "get", "200"),
        ("/api/v1/logs/stats", "get", "200"),
        ("/api/v1/logs/{event_id}", "get", "200"),
        ("/api/v1/logs/cleanup", "delete", "200"),
    ]
    for path, method, status in json_answers:
        schema = spec["paths"][path][method]["responses"][status]["content"]["application/json"]
        assert "$ref" in schema["schema"], (path, method)


def test_request_bodies_of_ingest_tenants_and_keys(spec: dict[str, Any]) -> None:
    for path, method in [
        ("/api/v1/logs", "post"),
        ("/api/v1/logs/bulk", "post"),
        ("/api/v1/tenants", "post"),
        ("/api/v1/tenants/{key}", "patch"),
        ("/api/v1/tenants/{key}/api-keys", "post"),
        ("/api/v1/auth/token", "post"),
        ("/otlp/v1/logs", "post"),
        ("/loki/api/v1/push", "post"),
        ("/es/_bulk", "post"),
    ]:
        assert spec["paths"][path][method]["requestBody"]["content"], (path, method)
    assert (
        "application/x-ndjson"
        in spec["paths"]["/api/v1/logs/bulk"]["post"]["requestBody"]["content"]
    )


def test_security_per_route(spec: dict[str, Any]) -> None:
    schemes = spec["components"]["securitySchemes"]
    assert schemes["bearer"] == {**schemes["bearer"], "type": "http", "scheme": "bearer"}
    assert schemes["basic"]["scheme"] == "basic"
    assert schemes["apiKey"]["type"] == "apiKey"
    ingest = [{"bearer": []}, {"basic": []}, {"apiKey": []}]
    for path, method in [
        ("/api/v1/logs", "post"),
        ("/api/v1/logs/bulk", "post"),
        ("/otlp/v1/logs", "post"),
        ("/loki/api/v1/push", "post"),
        ("/es/_bulk", "post"),
    ]:
        assert spec["paths"][path][method]["security"] == ingest, (path, method)
    for path, method in [("/api/v1/logs", "get"), ("/api/v1/tenants", "get")]:
        assert spec["paths"][path][method]["security"] == [{"bearer": []}], (path, method)
    assert spec["paths"]["/api/v1/auth/token"]["post"]["security"] == []
    assert "security" not in spec["paths"]["/.well-known/jwks.json"]["get"]


def test_the_live_tail_websocket_is_described(spec: dict[str, Any]) -> None:
    op = spec["paths"]["/api/v1/logs/stream"]["get"]
    assert "101" in op["responses"]
    for code in (4401, 4403, 4404, 4408, 4429, 1012, 1013):
        assert code in CLOSE_CODES
        assert f"| {code} |" in op["description"]
    assert "Sec-WebSocket-Protocol" in op["description"]
    assert {"tail", "token", "level", "min_level", "service", "q"} <= names(op, "query")


def test_the_workers_health_and_metrics_are_on_its_own_port(spec: dict[str, Any]) -> None:
    for path in ("/healthz", "/readyz", "/metrics"):
        item = spec["paths"][path]
        assert "get" in item
        assert item["servers"][0]["url"].endswith(":8004")


def test_merge_refuses_a_path_two_services_declare() -> None:
    one = {"paths": {"/x": {"get": {}}}, "components": {}}
    with pytest.raises(ValueError, match="/x"):
        merge({"a": one, "b": one})
