"""The gateway routes are one list: scripts/k8s_routes.py ROUTES.

The local nginx (docker/nginx.conf.template) and the Ingress objects of every
overlay must route exactly those paths to exactly those services.
"""

from __future__ import annotations

import pytest

from .conftest import OVERLAYS, by_kind, k8s_routes, one

Route = k8s_routes.Route


def test_canonical_routes_are_the_contract():
    contract = (
        Route("/api/v1/auth", "Prefix", "auth"),
        Route("/.well-known/jwks.json", "Exact", "auth"),
        Route("/api/v1/tenants", "Prefix", "tenant"),
        Route("/api/v1/logs/stream", "Exact", "broadcast"),
        Route("/api/v1/logs", "Prefix", "log"),
        Route("/otlp", "Prefix", "log"),
        Route("/loki", "Prefix", "log"),
        Route("/es", "Prefix", "log"),
        Route("/api/docs", "Prefix", "console"),
        Route("/api/openapi.json", "Prefix", "console"),
        Route("/", "Prefix", "console"),
    )
    routes = k8s_routes.ROUTES
    assert routes == contract
    services = {r.service for r in k8s_routes.ROUTES}
    assert services <= {*k8s_routes.SERVICES, k8s_routes.CONSOLE}
    assert "worker" not in services  # no public route


def test_nginx_template_locations_equal_routes(repo):
    template = repo / "docker" / "nginx.conf.template"
    assert template.is_file(), f"{template} is missing"
    got = k8s_routes.nginx_routes(template.read_text())
    assert got == k8s_routes.canonical(), k8s_routes.diff(k8s_routes.canonical(), got)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_ingress_routes_equal_routes(rendered, overlay):
    got = k8s_routes.ingress_routes(rendered(overlay))
    assert got == k8s_routes.canonical(), k8s_routes.diff(k8s_routes.canonical(), got)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_ingress_backends_exist_on_port_80(rendered, overlay):
    objects = rendered(overlay)
    services = by_kind(objects, "Service")
    for ingress in by_kind(objects, "Ingress").values():
        for rule in ingress["spec"]["rules"]:
            for path in rule["http"]["paths"]:
                backend = path["backend"]["service"]
                assert backend["name"] in services, backend
                assert backend["port"] == {"number": 80}
                ports = services[backend["name"]]["spec"]["ports"]
                assert [p["port"] for p in ports] == [80]


def _ingress_of(objects, path):
    for ingress in by_kind(objects, "Ingress").values():
        for rule in ingress["spec"]["rules"]:
            if any(p["path"] == path for p in rule["http"]["paths"]):
                return ingress
    raise AssertionError(f"no Ingress routes {path}")


@pytest.mark.parametrize("overlay", ["local", "local-forward-auth"])
def test_nginx_ingress_websocket_timeouts(rendered, overlay):
    objects = rendered(overlay)
    for path in k8s_routes.WEBSOCKET_PATHS:
        ingress = _ingress_of(objects, path)
        assert ingress["spec"]["ingressClassName"] == "nginx"
        notes = ingress["metadata"]["annotations"]
        for key in ("proxy-read-timeout", "proxy-send-timeout"):
            assert int(notes[f"nginx.ingress.kubernetes.io/{key}"]) >= 3600
        # only the stream Ingress carries the long timeouts
        others = [r.path for r in k8s_routes.ROUTES if r.path not in k8s_routes.WEBSOCKET_PATHS]
        for other in others:
            assert _ingress_of(objects, other) is not ingress


def test_forward_auth_covers_api_and_stream_but_not_auth(rendered):
    objects = rendered("local-forward-auth")
    url_key = "nginx.ingress.kubernetes.io/auth-url"
    for route in k8s_routes.ROUTES:
        notes = _ingress_of(objects, route.path)["metadata"].get("annotations", {})
        if route.service in ("auth", k8s_routes.CONSOLE):  # token and console: no token yet
            assert url_key not in notes, route
        else:
            assert notes[url_key] == (
                "http://auth.logserver.svc.cluster.local/api/v1/auth/verify"
            ), route
            assert notes["nginx.ingress.kubernetes.io/auth-response-headers"] == (
                "X-Auth-Sub,X-Auth-Tenant,X-Auth-Role"
            )
    # the plain local overlay has no edge auth
    for ingress in by_kind(rendered("local"), "Ingress").values():
        assert url_key not in ingress["metadata"].get("annotations", {})


def test_aws_ingresses_are_one_alb_with_stream_first(rendered):
    objects = rendered("aws")
    ingresses = by_kind(objects, "Ingress")
    assert ingresses
    order = {}
    for name, ingress in ingresses.items():
        notes = ingress["metadata"]["annotations"]
        assert ingress["spec"]["ingressClassName"] == "alb"
        assert not any(k.startswith("nginx.ingress.kubernetes.io/") for k in notes), name
        assert notes["alb.ingress.kubernetes.io/scheme"] == "internet-facing"
        assert notes["alb.ingress.kubernetes.io/target-type"] == "ip"
        assert notes["alb.ingress.kubernetes.io/group.name"] == "logserver"
        order[name] = int(notes["alb.ingress.kubernetes.io/group.order"])
    # ALB does not prefer the longest prefix: the stream rule must be evaluated
    # before /api/v1/logs.
    stream = _ingress_of(objects, "/api/v1/logs/stream")["metadata"]["name"]
    logs = _ingress_of(objects, "/api/v1/logs")["metadata"]["name"]
    assert order[stream] < order[logs]
    # The console's / matches every path: the catch-all comes last.
    console = _ingress_of(objects, "/")["metadata"]["name"]
    assert order[console] == max(order.values())
    assert len(set(order.values())) == len(order)
    one(objects, "Ingress", stream)


# --- the nginx parser itself ------------------------------------------------

SAMPLE = """
upstream auth { server 127.0.0.1:8001; }
server {
  # location ^~ /commented { proxy_pass http://nope; }
  location ^~ /api/v1/auth {
    proxy_set_header Connection "";
    proxy_pass http://auth;
  }
  location = /.well-known/jwks.json { proxy_pass http://auth; }
  location ^~ /api/v1/logs/stream {
    if ($http_upgrade) { set $x 1; }
    proxy_pass http://broadcast;
  }
  location = /healthz { return 200 'ok'; }
  location / { return 404 '{"detail": "no route; see /api/v1/logs"}'; }
}
"""


def test_nginx_parser_reads_prefix_exact_and_ignores_non_proxies():
    assert k8s_routes.nginx_routes(SAMPLE) == {
        Route("/api/v1/auth", "Prefix", "auth"),
        Route("/.well-known/jwks.json", "Exact", "auth"),
        Route("/api/v1/logs/stream", "Prefix", "broadcast"),
    }


def test_nginx_parser_reads_the_console_location_as_a_route():
    conf = """
    location ^~ /api/v1/logs { proxy_pass http://log; }
    location / {
      root /srv/console;
      location = / { try_files /index.html =404; }
      location ^~ /assets/ { add_header Cache-Control immutable; }
      return 404;
    }
    """
    assert k8s_routes.nginx_routes(conf) == {
        Route("/api/v1/logs", "Prefix", "log"),
        Route("/", "Prefix", "console"),
    }
    with pytest.raises(ValueError, match="prefix"):
        k8s_routes.nginx_routes("location = /x { root /srv; }")


def test_nginx_parser_rejects_other_location_forms():
    with pytest.raises(ValueError, match="only"):
        k8s_routes.nginx_routes("location ~ ^/api { proxy_pass http://log; }")
    with pytest.raises(ValueError, match="only"):
        k8s_routes.nginx_routes("location /api/v1/logs { proxy_pass http://log; }")


def test_ingress_parser_rejects_duplicates():
    ingress = {
        "kind": "Ingress",
        "spec": {
            "rules": [
                {
                    "http": {
                        "paths": [
                            {
                                "path": "/a",
                                "pathType": "Prefix",
                                "backend": {"service": {"name": "log", "port": {"number": 80}}},
                            }
                        ]
                    }
                }
            ]
        },
    }
    with pytest.raises(ValueError, match="twice"):
        k8s_routes.ingress_routes([ingress, ingress])


def test_gateway_drops_idle_upstream_connections_before_the_services_do(repo):
    """Else nginx reuses a connection uvicorn just closed and answers a POST with 502."""
    import re

    from services.core.web.app import KEEP_ALIVE_SECONDS

    template = (repo / "docker" / "nginx.conf.template").read_text()
    upstreams = re.findall(r"^\s*upstream (\w+)\s*\{(.*)\}\s*$", template, re.MULTILINE)
    assert {name for name, _ in upstreams} == {"auth", "tenant", "log", "broadcast"}
    for name, body in upstreams:
        found = re.search(r"keepalive_timeout (\d+)s;", body)
        assert found, f"upstream {name} has no keepalive_timeout"
        assert int(found.group(1)) < KEEP_ALIVE_SECONDS, name
