#!/usr/bin/env bash
# Render the Kubernetes overlays and validate them, without a cluster.
#
#   scripts/k8s-validate.sh                 install tools, render, validate
#   scripts/k8s-validate.sh --render-only   install tools, render
#   scripts/k8s-validate.sh --install-only  install tools
#
# Tools (installed once into $CACHE, reused afterwards):
#   kustomize  $CACHE/bin/kustomize, built with `go install` from the Go
#              module proxy at $KUSTOMIZE_VERSION (needs Go >= 1.22).
#   Python     $PY (default .venv/bin/python) if it has kubernetes-validate
#              and PyYAML; otherwise a private venv $CACHE/k8s-venv with
#              kubernetes-validate==$KUBERNETES_VALIDATE_VERSION and
#              PyYAML==$PYYAML_VERSION from PyPI.
#
# Output: $K8S_OUT/<overlay>.yaml (default .data/k8s). Every rendered object
# is validated with kubernetes-validate (strict: unknown fields are errors)
# against Kubernetes $K8S_VERSION. Custom resources have no schema there:
# the kinds in SKIP_KINDS (KEDA) are skipped explicitly and reported; any
# other kind without a schema is an error. Then the Ingress routes of every
# overlay (and docker/nginx.conf.template, when present) are compared with
# the canonical list in scripts/k8s_routes.py.
set -euo pipefail

cd "$(dirname "$0")/.."

KUSTOMIZE_VERSION="${KUSTOMIZE_VERSION:-v5.7.1}"
KUBERNETES_VALIDATE_VERSION="${KUBERNETES_VALIDATE_VERSION:-1.37.0}"
PYYAML_VERSION="${PYYAML_VERSION:-6.0.3}"
K8S_VERSION="${K8S_VERSION:-1.33.0}"
CACHE="${CACHE:-${LOGSERVER_CACHE_DIR:-$HOME/.cache/logserver}}"
PY="${PY:-.venv/bin/python}"
K8S_OUT="${K8S_OUT:-.data/k8s}"
OVERLAYS="${OVERLAYS:-local local-forward-auth aws}"
SKIP_KINDS="${SKIP_KINDS:-ScaledObject TriggerAuthentication}"

mode="${1:-all}"
case "$mode" in
  all|--render-only|--install-only) ;;
  *) echo "usage: $0 [--render-only|--install-only]" >&2; exit 2 ;;
esac

log() { printf 'k8s-validate: %s\n' "$*"; }

# ---------------------------------------------------------------- kustomize --
KUSTOMIZE="$CACHE/bin/kustomize"
install_kustomize() {
  if [[ -x "$KUSTOMIZE" ]] && [[ "$("$KUSTOMIZE" version 2>/dev/null)" == "$KUSTOMIZE_VERSION" ]]; then
    return
  fi
  command -v go >/dev/null 2>&1 || {
    echo "k8s-validate: Go is needed to build kustomize (apt-get install golang-go, or https://go.dev/dl/)" >&2
    exit 1
  }
  log "building kustomize $KUSTOMIZE_VERSION into $CACHE/bin (go install, about a minute)"
  local tmp
  tmp="$(mktemp -d)"
  GOBIN="$tmp" GOFLAGS=-mod=mod go install "sigs.k8s.io/kustomize/kustomize/v5@$KUSTOMIZE_VERSION"
  mkdir -p "$CACHE/bin"
  mv -f "$tmp/kustomize" "$KUSTOMIZE"   # atomic: a parallel run sees old or new
  rm -rf "$tmp"
  log "kustomize $("$KUSTOMIZE" version)"
}

# ------------------------------------------------------------------- python --
python_has_tools() {
  [[ -x "$1" ]] && "$1" -c 'import kubernetes_validate, yaml' >/dev/null 2>&1
}
install_python_tools() {
  if python_has_tools "$PY"; then
    return
  fi
  local venv="$CACHE/k8s-venv"
  if ! python_has_tools "$venv/bin/python" ||
     ! "$venv/bin/python" -c "import importlib.metadata as m, sys; sys.exit(m.version('kubernetes-validate') != '$KUBERNETES_VALIDATE_VERSION')"; then
    log "$PY lacks kubernetes-validate/PyYAML: installing them into $venv"
    local base
    base="$(command -v python3.11 || command -v python3)"
    "$base" -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
      "kubernetes-validate==$KUBERNETES_VALIDATE_VERSION" "PyYAML==$PYYAML_VERSION"
  fi
  PY="$venv/bin/python"
}

# ------------------------------------------------------------------- render --
render() {
  mkdir -p "$K8S_OUT"
  local o
  for o in $OVERLAYS; do
    "$KUSTOMIZE" build "k8s/overlays/$o" >"$K8S_OUT/$o.yaml.tmp"
    mv -f "$K8S_OUT/$o.yaml.tmp" "$K8S_OUT/$o.yaml"
    log "rendered k8s/overlays/$o -> $K8S_OUT/$o.yaml ($(grep -c '^kind:' "$K8S_OUT/$o.yaml") objects)"
  done
}

# ----------------------------------------------------------------- validate --
validate() {
  local files=() o
  for o in $OVERLAYS; do files+=("$K8S_OUT/$o.yaml"); done
  K8S_VERSION="$K8S_VERSION" SKIP_KINDS="$SKIP_KINDS" "$PY" - "${files[@]}" <<'PYEOF'
import os
import sys

import yaml
import kubernetes_validate
from kubernetes_validate.utils import SchemaNotFoundError, ValidationError

version = os.environ["K8S_VERSION"]
skip_kinds = set(os.environ["SKIP_KINDS"].split())
failures = 0
for path in sys.argv[1:]:
    with open(path) as f:
        docs = [d for d in yaml.safe_load_all(f) if d]
    checked, skipped = 0, []
    for d in docs:
        ident = f"{d.get('kind')}/{d.get('metadata', {}).get('name')}"
        if d.get("kind") in skip_kinds:
            skipped.append(f"{ident} ({d.get('apiVersion')})")
            continue
        try:
            kubernetes_validate.validate(d, version, strict=True)
            checked += 1
        except ValidationError as e:
            failures += 1
            where = "/".join(str(p) for p in e.path)
            print(f"{path}: {ident}: INVALID at {where or '<root>'}: {e.message}")
        except SchemaNotFoundError as e:
            failures += 1
            print(f"{path}: {ident}: no schema ({e.message}); add the kind to SKIP_KINDS only if it is a CRD")
    print(f"k8s-validate: {path}: {checked} objects valid against Kubernetes {version} (strict)"
          + (f"; not schema-validated (custom resources): {', '.join(skipped)}" if skipped else ""))
sys.exit(1 if failures else 0)
PYEOF
  local nginx_args=()
  if [[ -f docker/nginx.conf.template ]]; then
    nginx_args=(--nginx docker/nginx.conf.template)
  else
    log "docker/nginx.conf.template not found: nginx routes not compared"
  fi
  "$PY" scripts/k8s_routes.py "${files[@]}" "${nginx_args[@]}"
}

install_kustomize
[[ "$mode" == "--render-only" ]] || install_python_tools
[[ "$mode" == "--install-only" ]] && exit 0
render
[[ "$mode" == "--render-only" ]] && exit 0
validate
log "ok"
