"""The documents stay navigable: links resolve, and the request map names every handler.

Reads files and builds the apps without starting them (no lifespan runs, so
nothing connects to a backend).
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
ARCHITECTURE = REPO / "docs" / "architecture.md"
MAP_HEADING = "## Where each request is handled"
SERVICES = ("auth", "tenant", "log", "worker", "broadcast")
FRAMEWORK_ROUTES = {"/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"}


# --- links ---------------------------------------------------------------------------


def _without_code(text: str) -> str:
    """The text without fenced blocks and inline code (neither holds links)."""
    text = re.sub(r"^```.*?^```", "", text, flags=re.S | re.M)
    return re.sub(r"`[^`\n]*`", "", text)


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    text = re.sub(r"^```.*?^```", "", path.read_text(encoding="utf-8"), flags=re.S | re.M)
    found = {slug(line.lstrip("#")) for line in text.splitlines() if line.startswith("#")}
    found |= set(re.findall(r'<a id="([^"]+)"', text))
    return found


def links(path: Path) -> Iterator[str]:
    for match in re.finditer(r"\]\(([^)\s]+)\)", _without_code(path.read_text(encoding="utf-8"))):
        target = match.group(1)
        if not target.startswith(("http://", "https://", "mailto:")):
            yield target


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.relative_to(REPO).as_posix())
def test_relative_links_and_anchors_resolve(doc: Path) -> None:
    broken = []
    for target in links(doc):
        path, _, fragment = target.partition("#")
        dest = (doc.parent / path).resolve() if path else doc
        if not dest.exists():
            broken.append(f"{target} (no such file)")
        elif fragment and dest.suffix == ".md" and fragment not in anchors(dest):
            broken.append(f"{target} (no such heading)")
    assert not broken, f"{doc.name}: broken links: {broken}"


def test_slug_matches_githubs() -> None:
    assert slug(" The `logserver` command") == "the-logserver-command"
    assert slug("Counts: rollups and bounded totals") == "counts-rollups-and-bounded-totals"
    assert slug("Readiness: what each service needs") == "readiness-what-each-service-needs"


def test_a_broken_anchor_is_reported(tmp_path: Path) -> None:
    doc = tmp_path / "a.md"
    doc.write_text("# Title\n\nsee [x](#nowhere) and [y](#title)\n", encoding="utf-8")
    assert list(links(doc)) == ["#nowhere", "#title"]
    assert anchors(doc) == {"title"}


# --- the request map -----------------------------------------------------------------


def _walk(routes: Sequence[Any], prefix: str = "") -> Iterator[tuple[str, str, Any]]:
    """(methods, path, endpoint) of every route, inside included routers too."""
    for route in routes:
        inner = getattr(route, "original_router", None)  # FastAPI's lazily included router
        if inner is not None:
            context = getattr(route, "include_context", None)
            yield from _walk(inner.routes, prefix + (getattr(context, "prefix", "") or ""))
            continue
        endpoint = getattr(route, "endpoint", None)
        path = prefix + getattr(route, "path", "")
        if endpoint is None or path in FRAMEWORK_ROUTES:
            continue
        methods = sorted(set(getattr(route, "methods", None) or {"WS"}) - {"HEAD"})
        yield ",".join(methods), path, endpoint


def service_routes() -> list[tuple[str, str, str, str]]:
    """(service, methods, path, `module:function`) of every route of every service."""
    found = []
    for service in SERVICES:
        app = importlib.import_module(f"services.{service}.app").create_app()
        for methods, path, endpoint in _walk(app.routes):
            function = endpoint.__qualname__.split(".")[0]  # ops_router.<locals>.healthz
            found.append((service, methods, path, f"{endpoint.__module__}:{function}"))
    return found


def map_rows() -> list[list[str]]:
    text = ARCHITECTURE.read_text(encoding="utf-8")
    assert MAP_HEADING in text, f"docs/architecture.md needs the section {MAP_HEADING!r}"
    section = text.split(MAP_HEADING, 1)[1].split("\n## ", 1)[0]
    rows = [line.strip("|").split(" | ") for line in section.splitlines() if line.startswith("| ")]
    return [[cell.strip() for cell in row] for row in rows[1:]]  # without the header


def test_every_route_is_in_the_request_map() -> None:
    routes = service_routes()
    assert any(path == "/api/v1/logs/stream" for _, _, path, _ in routes)
    rows = map_rows()
    missing = []
    for service, methods, path, handler in routes:
        if not any(f"`{handler}`" == row[3] and f"`{path}`" in row[1] for row in rows):
            missing.append(f"{service} {methods} {path} → {handler}")
    assert not missing, f"docs/architecture.md {MAP_HEADING!r} lacks: {missing}"


def test_every_handler_in_the_request_map_exists() -> None:
    for row in map_rows():
        match = re.fullmatch(r"`(services\.[\w.]+):(\w+)`", row[3])
        if match is None:  # the gateway's own files
            continue
        module = importlib.import_module(match.group(1))
        assert hasattr(module, match.group(2)), f"{row[3]} named in the request map is gone"
