"""The Tiltfile, evaluated with stand-ins for Tilt's builtins.

Tilt is not installable here, so the Tiltfile is run as Python (Starlark is
close to a subset of it) against stubs that record what it asks Tilt to do,
with the real kustomize output. A guard checks it stays within Starlark.
"""

from __future__ import annotations

import ast
import re
import subprocess

import pytest
import yaml

from .conftest import REPO, k8s_routes

TILTFILE = REPO / "Tiltfile"
WORKLOAD_KINDS = {"Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob"}

# Python constructs Starlark (as Tilt runs it) does not have.
NOT_STARLARK = (
    ast.Import,
    ast.ImportFrom,
    ast.ClassDef,
    ast.While,
    ast.Try,
    ast.With,
    ast.JoinedStr,
    ast.Global,
    ast.Nonlocal,
    ast.Yield,
    ast.YieldFrom,
    ast.Await,
    ast.Raise,
    ast.Set,
    ast.Starred,
    ast.NamedExpr,
    ast.AsyncFunctionDef,
)


class _Config:
    def __init__(self, args: dict[str, str]):
        self.args = args
        self.defined: list[str] = []

    def define_string(self, name, args=False, usage=""):
        self.defined.append(name)

    def parse(self):
        return dict(self.args)


def run_tiltfile(kustomize: str, **args: str) -> dict:
    calls: list[tuple[str, tuple, dict]] = []

    def record(name):
        def f(*a, **kw):
            calls.append((name, a, kw))
            return (name, a, kw)

        return f

    def kustomize_(path):
        calls.append(("kustomize", (path,), {}))
        out = subprocess.run(
            [kustomize, "build", str(REPO / path)], capture_output=True, text=True, check=True
        )
        return out.stdout

    def k8s_yaml(blob):
        calls.append(("k8s_yaml", (blob,), {}))

    env = {
        "config": _Config(args),
        "kustomize": kustomize_,
        "decode_yaml_stream": lambda blob: [d for d in yaml.safe_load_all(blob) if d],
        "encode_yaml_stream": lambda objs: yaml.safe_dump_all(objs),
        "k8s_yaml": k8s_yaml,
        "docker_build": record("docker_build"),
        "sync": lambda src, dst: ("sync", src, dst),
        "fall_back_on": lambda files: ("fall_back_on", files),
        "run": lambda cmd, trigger=None: ("run", cmd, trigger),
        "k8s_resource": record("k8s_resource"),
        "local_resource": record("local_resource"),
        "link": lambda url, name="": ("link", url, name),
    }
    exec(compile(TILTFILE.read_text(), str(TILTFILE), "exec"), env)
    return {"calls": calls, "env": env}


@pytest.fixture(scope="module")
def tilt(kustomize):
    return run_tiltfile(kustomize)


def _calls(tilt, name):
    return [(a, kw) for n, a, kw in tilt["calls"] if n == name]


def _deployed(tilt) -> list[dict]:
    ((blob,), _) = _calls(tilt, "k8s_yaml")[0]
    return [d for d in yaml.safe_load_all(blob) if d]


def test_tiltfile_is_starlark():
    tree = ast.parse(TILTFILE.read_text())
    for node in ast.walk(tree):
        assert not isinstance(node, NOT_STARLARK), (
            f"Tiltfile line {node.lineno}: {type(node).__name__} is not Starlark"
        )
        if isinstance(node, ast.Compare):
            assert len(node.ops) == 1, f"line {node.lineno}: chained comparison"
            assert not isinstance(node.ops[0], ast.Is | ast.IsNot), f"line {node.lineno}: is"


def test_manifests_come_first_from_the_local_overlay(tilt):
    names = [n for n, _, _ in tilt["calls"]]
    assert names.index("k8s_yaml") < names.index("docker_build")
    assert names.index("k8s_yaml") < names.index("k8s_resource")
    assert _calls(tilt, "kustomize")[0][0] == ("k8s/overlays/local",)


def test_overlay_can_be_chosen(kustomize):
    tilt = run_tiltfile(kustomize, overlay="local-forward-auth")
    assert _calls(tilt, "kustomize")[0][0] == ("k8s/overlays/local-forward-auth",)


def test_docker_build_with_live_update(tilt):
    ((ref, context), kw) = _calls(tilt, "docker_build")[0]
    assert (ref, context) == ("logserver", ".")
    dockerfile = REPO / kw["dockerfile"]
    assert dockerfile.is_file()
    assert re.search(rf"^FROM .* AS {kw['target']}$", dockerfile.read_text(), re.MULTILINE)
    steps = kw["live_update"]
    assert steps[0][0] == "fall_back_on"  # Tilt wants these first
    assert all((REPO / f).exists() for f in steps[0][1])
    assert ("sync", "services", "/app/services") in steps
    assert (REPO / "services").is_dir()


def test_every_workload_is_a_labelled_resource(tilt):
    deployed = _deployed(tilt)
    workloads = {o["metadata"]["name"] for o in deployed if o["kind"] in WORKLOAD_KINDS}
    resources = {}
    for a, kw in _calls(tilt, "k8s_resource"):
        name = a[0] if a else kw.get("workload")
        if name:
            resources[name] = kw
    assert workloads == set(resources)
    for name, kw in resources.items():
        assert kw["labels"], name
    for name in k8s_routes.SERVICES:
        assert resources[name]["labels"] == ["services"]
        port = k8s_routes.SERVICE_PORTS[name]
        assert resources[name]["port_forwards"] == [f"{port}:{port}"]
        for dep in resources[name].get("resource_deps", []):
            assert dep in workloads, dep
    for name in ("mongodb", "elasticmq", "redis"):
        assert resources[name]["labels"] == ["backends"]


def test_everything_else_is_grouped_not_uncategorized(tilt):
    deployed = _deployed(tilt)
    grouped = [kw for _, kw in _calls(tilt, "k8s_resource") if kw.get("new_name")]
    selectors = [s for kw in grouped for s in kw["objects"]]
    expected = {
        o["metadata"]["name"] + ":" + o["kind"] + ":" + o["metadata"].get("namespace", "")
        for o in deployed
        if o["kind"] not in WORKLOAD_KINDS and o["kind"] != "Service"
    }
    assert {s if s.count(":") == 2 else s + ":" for s in selectors} == expected


def test_dev_mode_only_relaxes_what_live_update_needs(tilt):
    for o in _deployed(tilt):
        if o["kind"] != "Deployment" or o["metadata"]["name"] not in k8s_routes.SERVICES:
            continue
        name = o["metadata"]["name"]
        c = o["spec"]["template"]["spec"]["containers"][0]
        assert c["securityContext"]["readOnlyRootFilesystem"] is False
        assert c["securityContext"]["allowPrivilegeEscalation"] is False
        assert c["securityContext"]["capabilities"]["drop"] == ["ALL"]
        assert o["spec"]["template"]["spec"]["securityContext"]["runAsNonRoot"] is True
        assert c["command"][:2] == ["sh", "-c"]
        assert f"python -m services.{name}" in c["command"][2]


def test_gateway_port_forward(tilt):
    ((name,), kw) = _calls(tilt, "local_resource")[0]
    assert name == "gateway"
    assert "port-forward" in kw["serve_cmd"]
    assert "ingress-nginx-controller" in kw["serve_cmd"]
