# Kubernetes targets; included from the Makefile (which defines VENV, PY,
# CACHE). See docs/deploy.md.
#   make up            minikube + Tilt: the whole stack on a local cluster
#   make down          remove what Tilt deployed (the cluster keeps running)
#   make k8s-render    .data/k8s/{local,local-forward-auth,aws}.yaml
#   make k8s-validate  render + schema-validate + route check (no cluster)

K8S_OUT ?= .data/k8s
MINIKUBE_START_ARGS ?= --memory=4096
TILT_ARGS ?=

.PHONY: up down k8s-render k8s-validate

up:
	@command -v minikube >/dev/null 2>&1 || { echo "minikube is not installed (https://minikube.sigs.k8s.io/docs/start/)"; exit 1; }
	@command -v tilt >/dev/null 2>&1 || { echo "tilt is not installed (https://docs.tilt.dev/install.html)"; exit 1; }
	minikube status >/dev/null 2>&1 || minikube start $(MINIKUBE_START_ARGS)
	minikube addons enable ingress
	tilt up $(TILT_ARGS)

down:
	tilt down $(TILT_ARGS)

k8s-render:
	PY=$(PY) CACHE=$(CACHE) K8S_OUT=$(K8S_OUT) bash scripts/k8s-validate.sh --render-only

k8s-validate:
	PY=$(PY) CACHE=$(CACHE) K8S_OUT=$(K8S_OUT) bash scripts/k8s-validate.sh
