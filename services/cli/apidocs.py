"""The API reference: one OpenAPI document of the five services, and Swagger UI.

Each service's document comes from its ``create_app().openapi()`` (nothing is
run: no backend is needed). Their paths are already the gateway's (every
service mounts its routes under the path the gateway routes to it), so merging
is a union; the worker, which the gateway does not route to, keeps its health
and metrics paths with its own port as their ``servers``.

``build`` writes, under a directory the gateway serves as files (the console's,
built by services/cli/console.py)::

    api/openapi.json          the merged document
    api/docs/index.html       Swagger UI's page (our own: no inline script)
    api/docs/*.js|css         Swagger UI's files, from swagger-ui-dist (npm,
                              pinned in scripts/swagger-ui/package-lock.json)

Run by ``gateway_proc`` (``make dev``, the integration tests) and by hand::

    python -m services.cli.apidocs OUT_DIR SWAGGER_UI_DIST_DIR
"""

from __future__ import annotations

import json
import shutil
import sys
from collections.abc import Callable
from importlib.metadata import version
from pathlib import Path
from typing import Any

from fastapi import FastAPI

SERVICES = ("auth", "tenant", "log", "broadcast", "worker")
WORKER_SERVER = {
    "url": "http://worker:8004",
    "description": "The worker's own port inside the cluster; the gateway does not route to it.",
}
#: The files of swagger-ui-dist the page loads.
SWAGGER_FILES = ("swagger-ui-bundle.js", "swagger-ui.css", "favicon-32x32.png")

INDEX_HTML = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>logserver API reference</title>
<link rel="icon" type="image/png" href="/api/docs/favicon-32x32.png">
<link rel="stylesheet" href="/api/docs/swagger-ui.css">
</head>
<body>
<div id="swagger-ui"></div>
<script src="/api/docs/swagger-ui-bundle.js"></script>
<script src="/api/docs/init.js"></script>
</body>
</html>
"""
INIT_JS = """// Swagger UI on the merged document, served by the gateway itself.
window.ui = SwaggerUIBundle({
  url: "/api/openapi.json",
  dom_id: "#swagger-ui",
  deepLinking: true,
  validatorUrl: null,
});
"""


def _apps() -> dict[str, Callable[[], FastAPI]]:
    # Imported here: the CLI's other commands need none of the services.
    from services.auth.app import create_app as auth
    from services.broadcast.app import create_app as broadcast
    from services.log.app import create_app as log
    from services.tenant.app import create_app as tenant
    from services.worker.app import create_app as worker

    return {"auth": auth, "tenant": tenant, "log": log, "broadcast": broadcast, "worker": worker}


def merge(specs: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """One document of the services' ``specs`` (name -> document).

    Two services may not declare the same path, nor different schemas under one
    name: the merge fails rather than hide one.
    """
    merged: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {
            "title": "logserver API",
            "version": version("logserver"),
            "description": "The HTTP API of logserver through its gateway: auth, tenants, "
            "logs (ingest, search, stats, export, cleanup, live tail) and the log "
            "shippers' protocols. Errors are application/problem+json (RFC 9457).",
        },
        "paths": {},
        "components": {"schemas": {}, "securitySchemes": {}},
        "tags": [],
    }
    paths, components = merged["paths"], merged["components"]
    for service, spec in specs.items():
        for path, item in spec.get("paths", {}).items():
            if path in paths:
                raise ValueError(f"{service} and another service both declare {path}")
            if service == "worker":
                item = {**item, "servers": [WORKER_SERVER]}
            paths[path] = item
        for kind in ("schemas", "securitySchemes"):
            for name, value in spec.get("components", {}).get(kind, {}).items():
                if components[kind].setdefault(name, value) != value:
                    raise ValueError(f"{kind} {name}: {service}'s differs from another's")
    tags = sorted(
        {
            t
            for item in paths.values()
            for op in item.values()
            if isinstance(op, dict)
            for t in op.get("tags", [])
        }
    )
    merged["tags"] = [{"name": t} for t in tags]
    return merged


def merged_spec() -> dict[str, Any]:
    """The merged document of the five services, as their apps declare them."""
    return merge({name: factory().openapi() for name, factory in _apps().items()})


def build(out: Path, swagger_dist: Path, spec: dict[str, Any] | None = None) -> None:
    """Write ``api/openapi.json`` and ``api/docs/`` under ``out`` (see the module doc)."""
    api = out / "api"
    docs = api / "docs"
    shutil.rmtree(api, ignore_errors=True)
    docs.mkdir(parents=True)
    body = json.dumps(spec or merged_spec(), indent=1, sort_keys=False)
    (api / "openapi.json").write_text(body + "\n", encoding="utf-8")
    for name in SWAGGER_FILES:
        shutil.copyfile(swagger_dist / name, docs / name)
    (docs / "index.html").write_text(INDEX_HTML, encoding="utf-8")
    (docs / "init.js").write_text(INIT_JS, encoding="utf-8")
    # Served by nginx, which may run as another user: readable by all.
    for path in [api, *api.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        print("usage: python -m services.cli.apidocs OUT_DIR SWAGGER_UI_DIST_DIR", file=sys.stderr)
        return 2
    build(Path(args[0]), Path(args[1]))
    print(f"API reference built into {args[0]}/api/ (openapi.json, docs/)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
