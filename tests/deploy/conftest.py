"""Fixtures of the deployment tests: the repo, the route list, rendered overlays.

These tests run tools (kustomize, bash), so they live beside the unit tests
rather than among them (unit tests do no I/O); still no network, no cluster, no
backends. `make test` runs them; `make test-deploy` runs them alone.

Rendering runs the kustomize binary (no network, no cluster). It is looked
up at ``$HOME/.cache/logserver/bin/kustomize`` (``$LOGSERVER_CACHE_DIR/bin``
when set), where ``scripts/k8s-validate.sh`` installs it, or on PATH; when it
is missing the rendering tests fail, they do not skip.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
from pathlib import Path
from types import ModuleType

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
OVERLAYS = ("local", "local-forward-auth", "aws")


def _load_routes_module() -> ModuleType:
    path = REPO / "scripts" / "k8s_routes.py"
    spec = importlib.util.spec_from_file_location("k8s_routes", path)
    assert spec and spec.loader, path
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


k8s_routes = _load_routes_module()


def find_kustomize() -> str | None:
    default = Path.home() / ".cache" / "logserver"
    cache = Path(os.environ.get("LOGSERVER_CACHE_DIR") or os.environ.get("CACHE") or default)
    cached = cache / "bin" / "kustomize"
    if cached.is_file() and os.access(cached, os.X_OK):
        return str(cached)
    return shutil.which("kustomize")


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO


@pytest.fixture(scope="session")
def kustomize() -> str:
    path = find_kustomize()
    if path is None:
        pytest.fail(
            "kustomize not found at $HOME/.cache/logserver/bin/kustomize nor on PATH: "
            "run `scripts/k8s-validate.sh --install-only` (make test runs it first)"
        )
    return path


_rendered: dict[str, list[dict]] = {}


def render(kustomize: str, overlay: str) -> list[dict]:
    if overlay not in _rendered:
        result = subprocess.run(
            [kustomize, "build", str(REPO / "k8s" / "overlays" / overlay)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 0, f"kustomize build {overlay} failed:\n{result.stderr}"
        _rendered[overlay] = [d for d in yaml.safe_load_all(result.stdout) if d]
    return _rendered[overlay]


@pytest.fixture(scope="session")
def rendered(kustomize: str):
    """``rendered(overlay) -> list of objects``, cached per session."""
    return lambda overlay: render(kustomize, overlay)


def by_kind(objects: list[dict], kind: str) -> dict[str, dict]:
    return {o["metadata"]["name"]: o for o in objects if o["kind"] == kind}


def one(objects: list[dict], kind: str, name: str) -> dict:
    found = by_kind(objects, kind).get(name)
    assert found is not None, f"{kind}/{name} not rendered"
    return found


def configmap_data(objects: list[dict], prefix: str) -> dict[str, str]:
    """Data of the generated ConfigMap ``prefix-<hash>``."""
    maps = [
        o
        for o in objects
        if o["kind"] == "ConfigMap" and o["metadata"]["name"].rsplit("-", 1)[0] == prefix
    ]
    assert len(maps) == 1, f"expected one ConfigMap {prefix}-<hash>, got {len(maps)}"
    return maps[0].get("data", {})
