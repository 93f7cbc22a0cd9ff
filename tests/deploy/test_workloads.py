"""Every overlay runs the five services the same safe way.

Probes, resources, the non-root / read-only / no-escalation security
context, one image chosen by command, port wiring, PDBs; then what each
overlay adds (backends and generated keys locally; Secrets, IRSA, HPAs and
KEDA on AWS).
"""

from __future__ import annotations

import re

import pytest

from .conftest import OVERLAYS, by_kind, configmap_data, k8s_routes, one

SERVICES = k8s_routes.SERVICES
PORTS = k8s_routes.SERVICE_PORTS
LABELS = {"app.kubernetes.io/part-of": "logserver"}

_UNITS = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30}


def _bytes(quantity: str) -> int:
    m = re.fullmatch(r"(\d+)(Ki|Mi|Gi)?", str(quantity))
    assert m, f"unexpected memory quantity {quantity!r}"
    return int(m.group(1)) * _UNITS.get(m.group(2) or "", 1)


def _millicores(quantity: str) -> int:
    q = str(quantity)
    return int(q[:-1]) if q.endswith("m") else int(float(q) * 1000)


def _container(deployment: dict) -> dict:
    containers = deployment["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return containers[0]


def _env(container: dict) -> dict[str, dict]:
    return {e["name"]: e for e in container.get("env", [])}


def _workloads(objects):
    return {o["metadata"]["name"]: o for o in objects if o["kind"] in ("Deployment", "StatefulSet")}


@pytest.fixture(params=OVERLAYS)
def overlay(request, rendered):
    return request.param, rendered(request.param)


def test_overlay_renders_into_one_labelled_namespace(overlay):
    name, objects = overlay
    assert len(objects) > 20, name
    for o in objects:
        ident = f"{o['kind']}/{o['metadata']['name']}"
        assert LABELS.items() <= o["metadata"].get("labels", {}).items(), ident
        if o["kind"] != "Namespace":
            assert o["metadata"].get("namespace") == "logserver", ident


def test_every_service_is_a_deployment_with_a_service_and_pdb(overlay):
    _, objects = overlay
    for name in SERVICES:
        dep = one(objects, "Deployment", name)
        labels = {"app.kubernetes.io/name": name, **LABELS}
        assert labels.items() <= dep["metadata"]["labels"].items()
        assert labels.items() <= dep["spec"]["template"]["metadata"]["labels"].items()
        selector = dep["spec"]["selector"]["matchLabels"]
        svc = one(objects, "Service", name)
        assert svc["spec"]["selector"] == selector
        assert labels.items() <= svc["metadata"]["labels"].items()
        assert svc["spec"]["ports"] == [
            {"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}
        ]
        pdb = one(objects, "PodDisruptionBudget", name)
        assert pdb["spec"]["selector"]["matchLabels"] == selector
        assert "maxUnavailable" in pdb["spec"] or "minAvailable" in pdb["spec"]


def test_one_image_the_command_picks_the_service(overlay):
    _, objects = overlay
    images = set()
    for name in SERVICES:
        c = _container(one(objects, "Deployment", name))
        assert c["name"] == name
        assert c["command"] == ["python", "-m", f"services.{name}"]
        images.add(c["image"])
    assert len(images) == 1, images


def test_port_env_matches_container_port(overlay):
    _, objects = overlay
    for name in SERVICES:
        c = _container(one(objects, "Deployment", name))
        assert c["ports"] == [{"name": "http", "containerPort": PORTS[name], "protocol": "TCP"}]
        assert _env(c)["LOGSERVER_PORT"]["value"] == str(PORTS[name])


def test_probes(overlay):
    _, objects = overlay
    for name in SERVICES:
        c = _container(one(objects, "Deployment", name))
        assert c["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}, name
        assert c["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}, name
        # a slow start must not be killed by the liveness probe
        assert c["startupProbe"]["httpGet"]["path"] == "/healthz"


def test_resources(overlay):
    _, objects = overlay
    for name in SERVICES:
        res = _container(one(objects, "Deployment", name))["resources"]
        assert {"cpu", "memory"} <= res["requests"].keys(), name
        assert {"cpu", "memory"} <= res["limits"].keys(), name
        assert _bytes(res["limits"]["memory"]) <= 512 * 2**20, name
        assert _bytes(res["requests"]["memory"]) <= _bytes(res["limits"]["memory"])
        assert _millicores(res["requests"]["cpu"]) <= _millicores(res["limits"]["cpu"])


def test_security_context(overlay):
    _, objects = overlay
    for name in SERVICES:
        dep = one(objects, "Deployment", name)
        pod = dep["spec"]["template"]["spec"]
        psc = pod["securityContext"]
        assert psc["runAsNonRoot"] is True, name
        assert psc["runAsUser"] == 10001, name
        assert psc["seccompProfile"] == {"type": "RuntimeDefault"}, name
        assert pod["automountServiceAccountToken"] is False
        # one identity per service (IRSA roles only where AWS is called: test_aws.py)
        assert pod["serviceAccountName"] == name
        sa = one(objects, "ServiceAccount", name)
        assert sa["automountServiceAccountToken"] is False
        csc = _container(dep)["securityContext"]
        assert csc["allowPrivilegeEscalation"] is False, name
        assert csc["readOnlyRootFilesystem"] is True, name
        assert csc["capabilities"]["drop"] == ["ALL"], name
        assert csc.get("runAsUser", 10001) == 10001
        assert csc.get("privileged", False) is False


def test_every_workload_runs_as_non_root(overlay):
    """Backends included (MongoDB, ElasticMQ, Redis): no container of any overlay runs as
    root, escalates, keeps capabilities or (where it has one) writes its image."""
    name, objects = overlay
    workloads = _workloads(objects)
    assert workloads, name
    for wname, w in workloads.items():
        ident = (name, w["kind"], wname)
        pod = w["spec"]["template"]["spec"]
        psc = pod.get("securityContext", {})
        assert psc.get("runAsNonRoot") is True, ident
        assert psc.get("runAsUser", 0) > 0, ident
        assert psc.get("runAsGroup", 0) > 0, ident
        assert psc.get("fsGroup", 0) > 0, ident
        assert psc.get("seccompProfile") == {"type": "RuntimeDefault"}, ident
        assert pod.get("hostNetwork", False) is False and pod.get("hostPID", False) is False
        for c in pod.get("initContainers", []) + pod["containers"]:
            csc = c.get("securityContext", {})
            assert csc.get("runAsNonRoot", True) is True, (*ident, c["name"])
            assert csc.get("runAsUser", psc["runAsUser"]) > 0, (*ident, c["name"])
            assert csc.get("allowPrivilegeEscalation") is False, (*ident, c["name"])
            assert csc.get("privileged", False) is False, (*ident, c["name"])
            assert csc.get("capabilities", {}).get("drop") == ["ALL"], (*ident, c["name"])
            assert not csc.get("capabilities", {}).get("add"), (*ident, c["name"])
            assert csc.get("readOnlyRootFilesystem") is True, (*ident, c["name"])


def test_tmp_is_an_empty_dir(overlay):
    _, objects = overlay
    for name in SERVICES:
        dep = one(objects, "Deployment", name)
        volumes = {v["name"]: v for v in dep["spec"]["template"]["spec"]["volumes"]}
        mounts = {m["mountPath"]: m for m in _container(dep)["volumeMounts"]}
        assert "emptyDir" in volumes[mounts["/tmp"]["name"]], name


def test_config_and_secret_references_resolve(overlay):
    """Every ConfigMap/Secret a pod reads is rendered, or is one of the
    documented Secrets created outside kustomize."""
    name, objects = overlay
    external = {
        "logserver-jwt-keys",
        "logserver-bootstrap-admin",
        "logserver-mongodb",
        "logserver-redis",
        "logserver-mongodb-ca",
    }
    configmaps = set(by_kind(objects, "ConfigMap"))
    secrets = set(by_kind(objects, "Secret")) | external
    for wname, w in _workloads(objects).items():
        pod = w["spec"]["template"]["spec"]
        for c in pod["containers"]:
            for src in c.get("envFrom", []):
                if "configMapRef" in src:
                    assert src["configMapRef"]["name"] in configmaps, (name, wname)
            for e in c.get("env", []):
                ref = e.get("valueFrom", {})
                if "configMapKeyRef" in ref:
                    assert ref["configMapKeyRef"]["name"] in configmaps, (name, wname)
                if "secretKeyRef" in ref:
                    assert ref["secretKeyRef"]["name"] in secrets, (name, wname, e["name"])
        for v in pod.get("volumes", []):
            if "configMap" in v:
                assert v["configMap"]["name"] in configmaps, (name, wname)
            if "secret" in v:
                assert v["secret"]["secretName"] in secrets, (name, wname)


def test_shared_config(overlay):
    _, objects = overlay
    data = configmap_data(objects, "logserver-config")
    assert data["LOGSERVER_HOST"] == "0.0.0.0"
    assert data["LOGSERVER_AUTH_URL"] == "http://auth"
    assert data["LOGSERVER_SQS_QUEUE_NAME"] == "logserver-events"
    assert data["LOGSERVER_SQS_DLQ_NAME"] == "logserver-events-dlq"
    assert data["LOGSERVER_JWT_AUDIENCE"] == "logserver"
    for key in ("LOGSERVER_MONGODB_DATABASE", "LOGSERVER_JWT_ISSUER", "LOGSERVER_LOG_LEVEL"):
        assert data[key], key
    for svc in SERVICES:
        c = _container(one(objects, "Deployment", svc))
        refs = [s["configMapRef"]["name"] for s in c["envFrom"]]
        assert refs == [n for n in by_kind(objects, "ConfigMap") if n.startswith("logserver-")]


# --- local ------------------------------------------------------------------


@pytest.mark.parametrize("name", ["local", "local-forward-auth"])
def test_local_backends(rendered, name):
    objects = rendered(name)
    mongo = one(objects, "StatefulSet", "mongodb")
    assert _container(mongo)["image"].startswith("mongo:7")
    assert one(objects, "Service", "mongodb")["spec"]["ports"][0]["port"] == 27017
    assert one(objects, "Service", "elasticmq")["spec"]["ports"][0]["port"] == 9324
    assert _container(one(objects, "Deployment", "elasticmq"))["image"].startswith(
        "softwaremill/elasticmq-native:"
    )
    assert one(objects, "Service", "redis")["spec"]["ports"][0]["port"] == 6379
    assert _container(one(objects, "Deployment", "redis"))["image"].startswith("redis:7")

    data = configmap_data(objects, "logserver-config")
    assert data["LOGSERVER_MONGODB_URL"] == "mongodb://mongodb:27017"
    assert data["LOGSERVER_SQS_ENDPOINT_URL"] == "http://elasticmq:9324"
    assert data["LOGSERVER_REDIS_URL"] == "redis://redis:6379/0"
    assert data["LOGSERVER_SQS_ACCESS_KEY_ID"]
    assert data["LOGSERVER_SQS_SECRET_ACCESS_KEY"]

    conf = configmap_data(objects, "elasticmq-config")["elasticmq.conf"]
    queues = conf[conf.index("queues {") :]
    assert re.search(r"\blogserver-events\s*\{", queues)
    assert re.search(r"\blogserver-events-dlq\s*\{", queues)
    assert re.search(
        r'deadLettersQueue\s*\{\s*name\s*=\s*"logserver-events-dlq"\s*maxReceiveCount\s*=\s*5\s*\}',
        queues,
    )
    for svc in SERVICES:
        assert one(objects, "Deployment", svc)["spec"]["replicas"] == 1


def test_local_auth_generates_its_keys(rendered):
    auth = one(rendered("local"), "Deployment", "auth")
    c = _container(auth)
    env = _env(c)
    assert env["LOGSERVER_JWT_GENERATE_KEYS"]["value"] == "true"
    keys_dir = env["LOGSERVER_JWT_KEYS_DIR"]["value"]
    mount = next(m for m in c["volumeMounts"] if m["mountPath"] == keys_dir)
    assert mount.get("readOnly", False) is False
    volume = next(
        v for v in auth["spec"]["template"]["spec"]["volumes"] if v["name"] == mount["name"]
    )
    assert "emptyDir" in volume and "secret" not in volume
    assert auth["spec"]["replicas"] == 1  # one pod, one generated key
    for name in ("LOGSERVER_BOOTSTRAP_ADMIN_CLIENT_ID", "LOGSERVER_BOOTSTRAP_ADMIN_CLIENT_SECRET"):
        assert env[name]["valueFrom"]["secretKeyRef"]["name"].startswith(
            "logserver-bootstrap-admin-"
        )


# --- aws --------------------------------------------------------------------


def test_aws_auth_mounts_the_key_secret_read_only(rendered):
    auth = one(rendered("aws"), "Deployment", "auth")
    c = _container(auth)
    env = _env(c)
    assert "LOGSERVER_JWT_GENERATE_KEYS" not in env
    keys_dir = env["LOGSERVER_JWT_KEYS_DIR"]["value"]
    mount = next(m for m in c["volumeMounts"] if m["mountPath"] == keys_dir)
    assert mount["readOnly"] is True
    volume = next(
        v for v in auth["spec"]["template"]["spec"]["volumes"] if v["name"] == mount["name"]
    )
    assert volume["secret"]["secretName"] == "logserver-jwt-keys"
    assert env["LOGSERVER_BOOTSTRAP_ADMIN_CLIENT_SECRET"]["valueFrom"]["secretKeyRef"] == {
        "name": "logserver-bootstrap-admin",
        "key": "client-secret",
    }


def test_aws_uses_real_sqs_and_an_external_mongodb(rendered):
    objects = rendered("aws")
    data = configmap_data(objects, "logserver-config")
    assert data["LOGSERVER_SQS_ENDPOINT_URL"] == ""  # empty = real AWS
    assert "LOGSERVER_SQS_ACCESS_KEY_ID" not in data
    assert "LOGSERVER_MONGODB_URL" not in data
    for kind in ("StatefulSet",):
        assert not by_kind(objects, kind)  # no in-cluster MongoDB
    ns = one(objects, "Namespace", "logserver")
    assert ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"


def test_aws_mongodb_url_comes_from_a_secret(rendered):
    objects = rendered("aws")
    for name in SERVICES:
        env = _env(_container(one(objects, "Deployment", name)))
        assert env["LOGSERVER_MONGODB_URL"]["valueFrom"]["secretKeyRef"] == {
            "name": "logserver-mongodb",
            "key": "url",
        }


def test_aws_autoscaling(rendered):
    objects = rendered("aws")
    hpas = by_kind(objects, "HorizontalPodAutoscaler")
    assert set(hpas) == {"log", "broadcast"}
    for name, hpa in hpas.items():
        assert hpa["apiVersion"] == "autoscaling/v2"
        target = hpa["spec"]["scaleTargetRef"]
        assert (target["kind"], target["name"]) == ("Deployment", name)
        assert hpa["spec"]["minReplicas"] >= 2
    scaled = one(objects, "ScaledObject", "worker")
    assert scaled["apiVersion"] == "keda.sh/v1alpha1"
    assert scaled["spec"]["scaleTargetRef"]["name"] == "worker"
    assert scaled["spec"]["minReplicaCount"] >= 1  # the worker also runs retention sweeps
    (trigger,) = scaled["spec"]["triggers"]
    assert trigger["type"] == "aws-sqs-queue"
    assert trigger["metadata"]["queueURL"].endswith("/logserver-events")
    auth = one(objects, "TriggerAuthentication", trigger["authenticationRef"]["name"])
    assert auth["spec"]["podIdentity"]["provider"] == "aws"
    # replica counts belong to the autoscalers
    for name in ("log", "broadcast", "worker"):
        assert "replicas" not in one(objects, "Deployment", name)["spec"], name
    for name in ("auth", "tenant"):
        assert one(objects, "Deployment", name)["spec"]["replicas"] >= 2
