"""The gateway's routes, in one place, and readers for the two gateways.

The local gateway (``docker/nginx.conf.template``) and the Kubernetes
Ingress objects (``k8s/``) must route exactly the same paths to exactly the
same services. ``ROUTES`` is the canonical list; ``nginx_routes`` and
``ingress_routes`` read what each gateway really does, in the same shape, so
a test (``tests/deploy``) and ``scripts/k8s-validate.sh`` can compare
them.

A route is ``(path, match, service)``: ``match`` is the Ingress pathType,
``"Prefix"`` or ``"Exact"``; nginx writes them ``location ^~ PATH`` and
``location = PATH``. ``service`` is the Kubernetes Service name, which is
also the nginx upstream name. One route is not proxied by the local nginx:
the web console's ``/``, whose files it serves itself (a ``location`` with a
``root``); in Kubernetes the ``console`` Service serves them.

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
    Route("/api/v1/logs/stream", "Exact", "broadcast"),  # not a prefix: ids like stream-1
    Route("/api/v1/logs", "Prefix", "log"),
    # log shippers: OTLP/HTTP logs, Loki push, Elasticsearch _bulk
    Route("/otlp", "Prefix", "log"),
    Route("/loki", "Prefix", "log"),
    Route("/es", "Prefix", "log"),
    # the API reference (files built beside the console's, services/cli/apidocs.py)
    Route("/api/docs", "Prefix", "console"),
    Route("/api/openapi.json", "Prefix", "console"),
    # the web console's files (nginx serves them itself locally)
    Route("/", "Prefix", "console"),
)

#: The Service of the web console's static files (served by nginx itself locally).
CONSOLE = "console"

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


def canonical() -> set[Route]:
    return set(ROUTES)


_NGINX_MATCH = {"^~": "Prefix", "=": "Exact"}
_NGINX_MODIFIERS = {"=", "^~", "~", "~*"}


class _Directive(NamedTuple):
    args: list[str]  # name first
    block: list[_Directive] | None


def _tokens(text: str) -> list[str]:
    """nginx tokens: words, quoted strings (unquoted), ``{``, ``}``, ``;``.

    Comments run from an unquoted ``#`` to the end of the line; braces and
    ``#`` inside quotes are text.
    """
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c.isspace():
            i += 1
        elif c == "#":
            while i < n and text[i] != "\n":
                i += 1
        elif c in "{};":
            out.append(c)
            i += 1
        elif c in "'\"":
            j, buf = i + 1, []
            while j < n and text[j] != c:
                if text[j] == "\\" and j + 1 < n:
                    j += 1
                buf.append(text[j])
                j += 1
            if j >= n:
                raise ValueError("unterminated quoted string in nginx configuration")
            out.append("".join(buf))
            i = j + 1
        else:
            j = i
            while j < n and not text[j].isspace() and text[j] not in "{};":
                j += 1
            out.append(text[i:j])
            i = j
    return out


def _parse(tokens: list[str], pos: int = 0, depth: int = 0) -> tuple[list[_Directive], int]:
    directives: list[_Directive] = []
    args: list[str] = []
    while pos < len(tokens):
        t = tokens[pos]
        pos += 1
        if t == ";":
            directives.append(_Directive(args, None))
            args = []
        elif t == "{":
            block, pos = _parse(tokens, pos, depth + 1)
            directives.append(_Directive(args, block))
            args = []
        elif t == "}":
            if depth == 0:
                raise ValueError("unbalanced '}' in nginx configuration")
            return directives, pos
        else:
            args.append(t)
    if depth != 0:
        raise ValueError("unbalanced '{' in nginx configuration")
    return directives, pos


def _walk(directives: list[_Directive]):
    for d in directives:
        yield d
        if d.block:
            yield from _walk(d.block)


def nginx_routes(text: str) -> set[Route]:
    """Routes of an nginx configuration: every ``location`` that proxies, and the
    one that serves the console's files (``root``, as a route to ``console``).

    Only the two forms the project uses are accepted for proxies (``^~`` prefix
    and ``=`` exact); any other form (plain prefix, regex) of a proxying
    location is an error, so it cannot slip in unnoticed. Locations without
    ``proxy_pass`` or ``root`` (e.g. the gateway's own ``/healthz``, or those
    nested in the console's, which inherit its ``root``) are not routes.
    """
    tree, _ = _parse(_tokens(text))
    routes: set[Route] = set()
    for d in _walk(tree):
        if not d.args or d.args[0] != "location" or d.block is None:
            continue
        loc = d.args[1:]
        modifier, path = (loc[0], loc[1]) if loc[0] in _NGINX_MODIFIERS else ("", loc[0])
        if any(inner.args[:1] == ["root"] for inner in d.block):
            # Files served by nginx itself: the console. A plain or ^~ prefix.
            if modifier not in ("", "^~"):
                raise ValueError(f"nginx location {' '.join(loc)}: files are served by prefix")
            routes.add(Route(path, "Prefix", CONSOLE))
            continue
        passes = [inner.args[1] for inner in _walk(d.block) if inner.args[:1] == ["proxy_pass"]]
        if not passes:
            continue
        if modifier not in _NGINX_MATCH:
            raise ValueError(
                f"nginx location {' '.join(loc)}: only '^~ PATH' and '= PATH' are allowed"
            )
        upstreams = {re.sub(r"^https?://", "", p).split("/", 1)[0] for p in passes}
        if len(upstreams) != 1:
            raise ValueError(f"nginx location {path}: several proxy_pass targets {passes}")
        routes.add(Route(path, _NGINX_MATCH[modifier], upstreams.pop()))
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
            print(f"{f}: Ingress routes differ from ROUTES:\n{diff(expected, got)}")
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
