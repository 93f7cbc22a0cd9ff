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
#   CRDs       the CustomResourceDefinitions of the custom resources we
#              render (KEDA, Prometheus Operator), from their projects' Go
#              modules at the versions in CRD_MODULES: `go mod download`
#              through the Go module proxy into Go's module cache (once).
#
# Output: $K8S_OUT/<overlay>.yaml (default .data/k8s). Every rendered object
# is validated strictly (unknown fields are errors): built-in kinds with
# kubernetes-validate against Kubernetes $K8S_VERSION, custom resources
# against the openAPIV3Schema of their CRD (with jsonschema, which
# kubernetes-validate brings). A kind in SKIP_KINDS (none by default) is
# skipped and reported; any other kind without a schema is an error. Then the
# Ingress routes of every overlay (and docker/nginx.conf.template, when
# present) are compared with the canonical list in scripts/k8s_routes.py.
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
SKIP_KINDS="${SKIP_KINDS:-}"
# module@version:directory of its CRD YAML files (Apache-2.0 projects).
CRD_MODULES="${CRD_MODULES:-github.com/kedacore/keda/v2@v2.16.1:config/crd/bases github.com/prometheus-operator/prometheus-operator@v0.79.2:example/prometheus-operator-crd}"

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

# --------------------------------------------------------------------- CRDs --
CRD_DIRS=()
install_crds() {
  local entry module dir tmp
  tmp="$(mktemp -d)"
  for entry in $CRD_MODULES; do
    module="${entry%%:*}"
    # Outside any module, so that `go mod download` only fetches (cached after once).
    dir="$( (cd "$tmp" && GOFLAGS=-mod=mod go mod download -json "$module") |
      "$PY" -c 'import json, sys; d = json.load(sys.stdin); print(d.get("Dir") or sys.exit(d.get("Error", "no Dir")))')" || {
      echo "k8s-validate: cannot fetch $module from the Go module proxy" >&2
      rm -rf "$tmp"
      exit 1
    }
    CRD_DIRS+=("$dir/${entry#*:}")
  done
  rm -rf "$tmp"
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
  K8S_VERSION="$K8S_VERSION" SKIP_KINDS="$SKIP_KINDS" CRD_DIRS="${CRD_DIRS[*]}" \
    "$PY" - "${files[@]}" <<'PYEOF'
import os
import re
import sys
from pathlib import Path

import jsonschema
import yaml
import kubernetes_validate
from kubernetes_validate.utils import SchemaNotFoundError, ValidationError

Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
version = os.environ["K8S_VERSION"]
skip_kinds = set(os.environ["SKIP_KINDS"].split())
docs_by_path = {}
for path in sys.argv[1:]:
    with open(path) as f:
        docs_by_path[path] = [d for d in yaml.load_all(f, Loader=Loader) if d]


def strict(schema):
    """An object schema with properties admits no others, unless the CRD keeps
    unknown fields: what the API server's strict field validation rejects."""
    if not isinstance(schema, dict):
        return schema
    for key in ("properties", "patternProperties", "definitions"):
        if isinstance(schema.get(key), dict):
            for sub in schema[key].values():
                strict(sub)
    for key in ("items", "additionalProperties", "not"):
        if isinstance(schema.get(key), dict):
            strict(schema[key])
    for key in ("allOf", "anyOf", "oneOf"):
        for sub in schema.get(key, []):
            strict(sub)
    if ("properties" in schema and "additionalProperties" not in schema
            and not schema.get("x-kubernetes-preserve-unknown-fields")):
        schema["additionalProperties"] = False
    return schema


# (group/version, kind) -> schema, only for the kinds the overlays render
wanted = {(d.get("apiVersion"), d.get("kind")) for docs in docs_by_path.values() for d in docs}
wanted_kinds = {k for _, k in wanted}
crd_schemas = {}
for directory in os.environ["CRD_DIRS"].split():
    for crd_file in sorted(Path(directory).glob("*.yaml")):
        text = crd_file.read_text()
        m = re.search(r"^  names:\n(?:    .*\n)*?    kind: (\w+)$", text, re.MULTILINE)
        if not m or m.group(1) not in wanted_kinds:
            continue
        crd = yaml.load(text, Loader=Loader)
        for v in crd["spec"]["versions"]:
            key = (f"{crd['spec']['group']}/{v['name']}", crd["spec"]["names"]["kind"])
            if key in wanted:
                crd_schemas[key] = strict(v["schema"]["openAPIV3Schema"])

failures = 0
for path, docs in docs_by_path.items():
    checked, custom, skipped = 0, [], []
    for d in docs:
        ident = f"{d.get('kind')}/{d.get('metadata', {}).get('name')}"
        key = (d.get("apiVersion"), d.get("kind"))
        if d.get("kind") in skip_kinds:
            skipped.append(f"{ident} ({d.get('apiVersion')})")
            continue
        if key in crd_schemas:
            errors = sorted(jsonschema.Draft7Validator(crd_schemas[key]).iter_errors(d), key=str)
            for e in errors:
                failures += 1
                where = "/".join(str(p) for p in e.absolute_path)
                print(f"{path}: {ident}: INVALID at {where or '<root>'}: {e.message}")
            checked += not errors
            custom.append(ident)
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
            print(f"{path}: {ident}: no schema ({e.message}); add its CRD's module to CRD_MODULES")
    print(f"k8s-validate: {path}: {checked} objects valid against Kubernetes {version} (strict)"
          + (f", custom resources against their CRDs: {', '.join(custom)}" if custom else "")
          + (f"; skipped (SKIP_KINDS): {', '.join(skipped)}" if skipped else ""))
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
[[ "$mode" == "--render-only" ]] || { install_python_tools; install_crds; }
[[ "$mode" == "--install-only" ]] && exit 0
render
[[ "$mode" == "--render-only" ]] && exit 0
validate
log "ok"
