"""The local gateway answers its own errors with problem+json, never nginx's HTML pages.

Each status nginx generates itself is sent by ``error_page`` to an internal location
that returns a fixed problem+json body; the services' own responses must pass
untouched, so ``proxy_intercept_errors`` is never on.
"""

from __future__ import annotations

import json

import pytest

from .conftest import REPO, k8s_routes

TEMPLATE = REPO / "docker" / "nginx.conf.template"
# What nginx itself may answer (494 is its internal "request header too large").
NGINX_OWN = (400, 404, 405, 408, 411, 413, 414, 494, 500, 501, 502, 503, 504, 505)
RETRY_LATER = {502, 503, 504}


def _directives() -> list:
    return list(k8s_routes._walk(k8s_routes._parse(k8s_routes._tokens(TEMPLATE.read_text()))[0]))


def _error_pages() -> dict[int, tuple[int | None, str]]:
    """status -> (overriding status or None, target URI) of every error_page."""
    pages: dict[int, tuple[int | None, str]] = {}
    for d in _directives():
        if d.args[:1] != ["error_page"]:
            continue
        *codes, target = d.args[1:]
        override = int(codes.pop()[1:]) if codes[-1].startswith("=") else None
        for code in codes:
            pages[int(code)] = (override, target)
    return pages


def _exact_locations() -> dict[str, list]:
    return {
        d.args[2]: d.block
        for d in _directives()
        if d.args[:2] == ["location", "="] and d.block is not None
    }


def test_the_services_responses_are_never_intercepted() -> None:
    for d in _directives():
        assert d.args[:1] != ["proxy_intercept_errors"] or d.args[1] == "off", d
        assert d.args[:1] != ["fastcgi_intercept_errors"], d


@pytest.mark.parametrize("code", NGINX_OWN)
def test_each_error_of_nginx_itself_is_problem_json(code: int) -> None:
    pages = _error_pages()
    assert code in pages, f"no error_page for {code}: nginx would send its HTML page"
    override, target = pages[code]
    status = override or code
    # A URI, not a named location: an error found while reading the request line
    # (400, 414, 505) cannot go to a named location ("empty URI in redirect").
    assert target.startswith("/"), target
    block = _exact_locations()[target]
    names = [d.args[0] for d in block]
    assert "internal" in names, f"{target} must not be reachable from outside"
    default_type = next(d.args[1] for d in block if d.args[0] == "default_type")
    assert default_type == "application/problem+json"
    ret = next(d.args for d in block if d.args[0] == "return")
    assert int(ret[1]) == status
    body = json.loads(ret[2])
    assert set(body) == {"type", "title", "status", "detail"}
    assert body["status"] == status
    assert body["type"].startswith("https://logserver.dev/problems/")
    assert body["title"] and body["detail"].endswith(".")
    headers = {d.args[1]: d.args[2:] for d in block if d.args[0] == "add_header"}
    if status in RETRY_LATER:
        assert headers.get("Retry-After") == ["5", "always"]


def test_request_header_too_large_is_431_not_400() -> None:
    assert _error_pages()[494][0] == 431
