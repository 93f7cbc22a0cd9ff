"""The gateway's routes, in one place, and readers for the two gateways.

The local gateway (``docker/nginx.conf.template``) and the Kubernetes
Ingress objects (``k8s/``) must route exactly the same paths to exactly the
same services. ``ROUTES`` is the canonical list; ``nginx_routes`` and
``ingress_routes`` read what each gateway really does, in the same shape, so
a test (``tests/unit/deploy``) and ``scripts/k8s-validate.sh`` can compare
them.

A route is ``(path, match, service)``: ``match`` is the Ingress pathType,
``"Prefix"`` or ``"Exact"``; nginx writes them ``location ^~ PATH`` and
``location = PATH``. ``service`` is the Kubernetes Service name, which is
also the nginx upstream name.

Usage as a script (standard library plus PyYAML)::

    python scripts/k8s_routes.py RENDERED.yaml [RENDERED.yaml ...] [--nginx FILE]

exits non-zero and says what differs when a rendered manifest's Ingress
objects (or the nginx template) do not match ``ROUTES``.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, NamedTuple


class Route(NamedTuple):
    path: str
    match: str  # "Prefix" | "Exact"
    service: str


#: The one list. The nginx template and every overlay's Ingresses must equal it.
ROUTES: tuple[Route, ...] = (
    Route("/api/v1/auth", "Prefix", "auth"),
    Route("/.well-known/jwks.json", "Exact", "auth"),
    Route("/api/v1/tenants", "Prefix", "tenant"),
    Route("/api/v1/logs/stream", "Prefix", "broadcast"),
    Route("/api/v1/logs", "Prefix", "log"),
)

#: Routes that carry WebSockets and need long proxy timeouts.
WEBSOCKET_PATHS: frozenset[str] = frozenset({"/api/v1/logs/stream"})

#: The five services of the project (Deployment, Service and container name).
SERVICES: tuple[str, ...] = ("auth", "tenant", "log", "worker", "broadcast")

#: Container port of each service (its LOGSERVER_PORT default).
SERVICE_PORTS: Mapping[str, int] = {
    "auth": 8001,
    "tenant": 8002,
    "log": 8003,
    "worker": 8004,
    "broadcast": 8005,
}

_NGINX_MATCH = {"^~": "Prefix", "=": "Exact"}
_LOCATION_RE = re.compile(r"^\s*location\s+(\S+)\s+(\S+)\s*\{", re.MULTILINE)
_PROXY_PASS_RE = re.compile(r"^\s*proxy_pass\s+https?://([A-Za-z0-9_.-]+)", re.MULTILINE)


def canonical() -> set[Route]:
    return set(ROUTES)


def _strip_comments(text: str) -> str:
    return "\n".join(line.split("#", 1)[0] for line in text.splitlines())


def _block_end(text: str, open_brace: int) -> int:
    """Index just past the ``}`` closing the ``{`` at ``open_brace``."""
    depth = 0
    for i in range(open_brace, len(text)):
        if text[i] == "{":
            depth += 1
        elif text[i] == "}":
            depth -= 1
            if depth == 0:
                return i + 1
    raise ValueError("unbalanced braces in nginx configuration")


def nginx_routes(text: str) -> set[Route]:
    """Routes of an nginx configuration: every ``location`` that proxies.

    Only the two forms the project uses are accepted (``^~`` prefix and
    ``=`` exact); any other location modifier is an error, so a regex
    location cannot slip in unnoticed. Locations without ``proxy_pass``
    (e.g. a local ``/healthz``) are not routes and are ignored.
    """
    text = _strip_comments(text)
    routes: set[Route] = set()
    for m in _LOCATION_RE.finditer(text):
        modifier, path = m.group(1), m.group(2)
        body = text[m.end() - 1 : _block_end(text, m.end() - 1)]
        passes = _PROXY_PASS_RE.findall(body)
        if not passes:
            continue
        if modifier not in _NGINX_MATCH:
            raise ValueError(f"nginx location {modifier} {path}: only '^~' and '=' are allowed")
        if len(set(passes)) != 1:
            raise ValueError(f"nginx location {path}: several proxy_pass targets {passes}")
        routes.add(Route(path, _NGINX_MATCH[modifier], passes[0]))
    return routes


def ingress_routes(objects: Iterable[Mapping[str, Any]]) -> set[Route]:
    """Routes of every Ingress among ``objects`` (rendered manifests)."""
    routes: set[Route] = set()
    for obj in objects:
        if not obj or obj.get("kind") != "Ingress":
            continue
        for rule in obj.get("spec", {}).get("rules", []) or []:
            for p in (rule.get("http") or {}).get("paths", []) or []:
                service = p["backend"]["service"]["name"]
                route = Route(p["path"], p["pathType"], service)
                if route in routes:
                    raise ValueError(f"route {route} is declared twice")
                routes.add(route)
    return routes


def diff(expected: set[Route], actual: set[Route]) -> str:
    lines = [f"  missing: {r}" for r in sorted(expected - actual)]
    lines += [f"  extra:   {r}" for r in sorted(actual - expected)]
    return "\n".join(lines)


def _load_yaml_stream(path: Path) -> list[dict]:
    import yaml  # imported here so the constants above need nothing

    with path.open() as f:
        return [d for d in yaml.safe_load_all(f) if d]


def main(argv: list[str]) -> int:
    nginx: Path | None = None
    files: list[Path] = []
    args = iter(argv)
    for a in args:
        if a == "--nginx":
            nginx = Path(next(args))
        else:
            files.append(Path(a))
    failed = False
    expected = canonical()
    for f in files:
        got = ingress_routes(_load_yaml_stream(f))
        if got != expected:
            failed = True
            print(f"{f}: Ingress routes differ from scripts/k8s_routes.py ROUTES:\n{diff(expected, got)}")
        else:
            print(f"{f}: Ingress routes match ({len(got)} routes)")
    if nginx is not None:
        if not nginx.exists():
            print(f"{nginx}: not found, nginx routes not checked")
        else:
            got = nginx_routes(nginx.read_text())
            if got != expected:
                failed = True
                print(f"{nginx}: locations differ from ROUTES:\n{diff(expected, got)}")
            else:
                print(f"{nginx}: locations match ({len(got)} routes)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
