"""The aws overlay against what an operator would hit first on EKS (issue 17).

Each rule is checked on the rendered manifests, and where the rule follows
from the code (keep-alive, shutdown timeouts, which service calls AWS or talks
to which backend, the metrics alerts use) against the code itself, so the two
cannot drift apart.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from services.broadcast.settings import BroadcastSettings
from services.core.settings import CoreSettings
from services.core.web.app import KEEP_ALIVE_SECONDS
from services.worker.app import RETENTION_STOP_SECONDS
from services.worker.settings import WorkerSettings

from .conftest import REPO, by_kind, configmap_data, k8s_routes, one

SERVICES = k8s_routes.SERVICES
PUBLIC = sorted({r.service for r in k8s_routes.ROUTES})  # behind the ALB
IAM = REPO / "k8s" / "overlays" / "aws" / "iam"

# Peak RSS per service under load, MB (README "Performance", benchmark runs of
# 2026-11-23; the worker reached 241 MB in one run with 3x fuller messages).
MEASURED_RSS_MB = {"auth": 110, "tenant": 107, "log": 182, "worker": 241, "broadcast": 109}
# What the worker's RSS follows: ~150 MB plus ~3x the event bytes in hand
# (182 MB at ~10 MB in hand, 241 MB at ~29 MB).
WORKER_BASE_MB, WORKER_BYTES_FACTOR = 150, 3
# How long the AWS Load Balancer Controller and the endpoints take to stop
# routing to a terminating pod: the preStop sleep must cover it.
DEREGISTRATION_PROPAGATION_SECONDS = 15

_UNITS = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30}


def _bytes(quantity: str) -> int:
    m = re.fullmatch(r"(\d+)(Ki|Mi|Gi)?", str(quantity))
    assert m, quantity
    return int(m.group(1)) * _UNITS.get(m.group(2) or "", 1)


@pytest.fixture(scope="module")
def aws(rendered) -> list[dict]:
    return rendered("aws")


def _pod(objects: list[dict], name: str) -> dict:
    return one(objects, "Deployment", name)["spec"]["template"]


def _container(objects: list[dict], name: str) -> dict:
    return _pod(objects, name)["spec"]["containers"][0]


def _env(objects: list[dict], name: str) -> dict[str, dict]:
    return {e["name"]: e for e in _container(objects, name).get("env", [])}


def _app_source(service: str) -> str:
    return (REPO / "services" / service / "app.py").read_text()


def _needs(service: str) -> set[str]:
    m = re.search(r"needs=\(([^)]*)\)", _app_source(service))
    assert m, f"services/{service}/app.py names no needs"
    return set(re.findall(r'"(\w+)"', m.group(1)))


def _authenticates(service: str) -> bool:
    return "authenticates=False" not in _app_source(service)


# --- 1. idle timeouts -------------------------------------------------------------


def test_alb_idle_timeout_is_below_the_services_keep_alive(aws):
    """A backend that closes an idle connection before the ALB does makes 502s."""
    heartbeat = BroadcastSettings.model_fields["stream_heartbeat_seconds"].default
    for name, ingress in by_kind(aws, "Ingress").items():
        attrs = ingress["metadata"]["annotations"][
            "alb.ingress.kubernetes.io/load-balancer-attributes"
        ]
        found = dict(a.split("=", 1) for a in attrs.split(","))
        idle = int(found["idle_timeout.timeout_seconds"])
        assert idle < KEEP_ALIVE_SECONDS, name
        assert idle >= 2 * heartbeat, f"{name}: the WebSocket tail idles {heartbeat} s at most"


# --- 3. rollouts ------------------------------------------------------------------


def test_namespace_injects_alb_readiness_gates(aws):
    labels = one(aws, "Namespace", "logserver")["metadata"]["labels"]
    assert labels["elbv2.k8s.aws/pod-readiness-gate-inject"] == "enabled"


def _shutdown_timeout(objects: list[dict], name: str) -> float:
    env = _env(objects, name).get("LOGSERVER_SHUTDOWN_TIMEOUT_SECONDS")
    if env is not None:
        return float(env["value"])
    return CoreSettings.model_fields["shutdown_timeout_seconds"].default


def _prestop(objects: list[dict], name: str) -> float:
    hook = _container(objects, name).get("lifecycle", {}).get("preStop")
    if hook is None:
        return 0
    command = hook["exec"]["command"]
    assert command[0] == "sleep", command
    return float(command[1])


def _deregistration_delay(objects: list[dict], name: str) -> float:
    notes = one(objects, "Service", name)["metadata"].get("annotations", {})
    attrs = notes["alb.ingress.kubernetes.io/target-group-attributes"]
    found = dict(a.split("=", 1) for a in attrs.split(","))
    return float(found["deregistration_delay.timeout_seconds"])


@pytest.mark.parametrize("name", PUBLIC)
def test_termination_budget_covers_deregistration_and_drain(aws, name):
    """preStop outlasts the deregistration; the ALB lets the pod finish what it
    serves after SIGTERM; the kubelet does not kill it before that."""
    prestop = _prestop(aws, name)
    drain = _shutdown_timeout(aws, name)
    delay = _deregistration_delay(aws, name)
    grace = _pod(aws, name)["spec"]["terminationGracePeriodSeconds"]
    assert prestop >= DEREGISTRATION_PROPAGATION_SECONDS
    assert delay >= prestop + drain
    assert grace >= delay


def test_a_rollout_lets_an_export_run_as_long_as_the_ingress_does(aws, rendered):
    """The export budget decides: the log pod drains for as long as the api Ingress
    lets an export run (ingress-nginx's 300 s); preStop + that is the ALB's
    deregistration delay and at most the grace period."""
    nginx = by_kind(rendered("local"), "Ingress")["logserver-api"]["metadata"]["annotations"]
    export_seconds = float(nginx["nginx.ingress.kubernetes.io/proxy-read-timeout"])
    assert _shutdown_timeout(aws, "log") == export_seconds
    assert _deregistration_delay(aws, "log") >= _prestop(aws, "log") + export_seconds
    assert _pod(aws, "log")["spec"]["terminationGracePeriodSeconds"] > export_seconds


def test_worker_grace_covers_its_shutdown(aws):
    fields = WorkerSettings.model_fields
    needed = (
        _shutdown_timeout(aws, "worker")
        + fields["shutdown_grace_seconds"].default  # batches in hand
        + RETENTION_STOP_SECONDS
    )
    assert _pod(aws, "worker")["spec"]["terminationGracePeriodSeconds"] >= needed


# --- 4. memory --------------------------------------------------------------------


@pytest.mark.parametrize("name", SERVICES)
def test_memory_requests_cover_measured_use(aws, name):
    res = _container(aws, name)["resources"]
    assert _bytes(res["requests"]["memory"]) >= MEASURED_RSS_MB[name] * 10**6
    assert _bytes(res["limits"]["memory"]) >= _bytes(res["requests"]["memory"])


def test_worker_limit_covers_its_batch_memory_bound(aws):
    env = _env(aws, "worker").get("LOGSERVER_WORKER_MAX_BATCH_BYTES")
    batch = (
        int(env["value"]) if env else WorkerSettings.model_fields["worker_max_batch_bytes"].default
    )
    expected = WORKER_BASE_MB * 10**6 + WORKER_BYTES_FACTOR * batch
    limit = _bytes(_container(aws, "worker")["resources"]["limits"]["memory"])
    assert limit >= 1.5 * expected, "room for fragmentation above the fit"


# --- 7. least privilege -----------------------------------------------------------

SQS_CALL = re.compile(
    r"\.(get_queue_url|get_queue_attributes|send_message_batch|send_message|receive_message|"
    r"delete_message_batch|delete_message|change_message_visibility_batch|"
    r"change_message_visibility|purge_queue|create_queue|delete_queue|list_queues)\("
)
IAM_ACTION = {
    "get_queue_url": "sqs:GetQueueUrl",
    "get_queue_attributes": "sqs:GetQueueAttributes",
    "send_message": "sqs:SendMessage",
    "send_message_batch": "sqs:SendMessage",
    "receive_message": "sqs:ReceiveMessage",
    "delete_message": "sqs:DeleteMessage",
    "delete_message_batch": "sqs:DeleteMessage",
    "change_message_visibility": "sqs:ChangeMessageVisibility",
    "change_message_visibility_batch": "sqs:ChangeMessageVisibility",
    "purge_queue": "sqs:PurgeQueue",
    "create_queue": "sqs:CreateQueue",
    "delete_queue": "sqs:DeleteQueue",
    "list_queues": "sqs:ListQueues",
}
QUEUE_ARN = "arn:aws:sqs:us-east-1:<ACCOUNT_ID>:logserver-events"


def _sqs_calls(service: str) -> set[str]:
    """The SQS operations in a service's code and the shared library it runs."""
    files = [
        *(REPO / "services" / service).rglob("*.py"),
        *(REPO / "services" / "core").rglob("*.py"),
    ]
    return {m for f in files for m in SQS_CALL.findall(f.read_text())}


def _policy(path: Path) -> dict[str, set[str]]:
    """resource -> actions allowed on it."""
    doc = json.loads(path.read_text())
    out: dict[str, set[str]] = {}
    for statement in doc["Statement"]:
        assert statement["Effect"] == "Allow"
        actions = statement["Action"]
        actions = {actions} if isinstance(actions, str) else set(actions)
        assert not any("*" in a for a in actions), path
        out.setdefault(statement["Resource"], set()).update(actions)
    return out


def _own_sqs_calls(service: str) -> set[str]:
    files = (REPO / "services" / service).rglob("*.py")
    return {m for f in files for m in SQS_CALL.findall(f.read_text())}


def test_aws_is_called_by_the_services_that_open_sqs_only():
    callers = {s for s in SERVICES if "sqs" in _needs(s)}
    assert callers == {"log", "worker"}
    for service in set(SERVICES) - callers:
        assert not _own_sqs_calls(service), service


@pytest.mark.parametrize("name", SERVICES)
def test_one_service_account_per_service_with_a_role_only_where_aws_is_called(aws, name):
    assert _pod(aws, name)["spec"]["serviceAccountName"] == name
    notes = one(aws, "ServiceAccount", name)["metadata"].get("annotations", {})
    role = notes.get("eks.amazonaws.com/role-arn")
    if "sqs" in _needs(name):
        assert role == f"arn:aws:iam::<ACCOUNT_ID>:role/logserver-{name}"
        trust = json.loads((IAM / f"{name}-trust.json").read_text())
        (statement,) = trust["Statement"]
        assert statement["Action"] == "sts:AssumeRoleWithWebIdentity"
        subject = statement["Condition"]["StringEquals"]["<OIDC_PROVIDER>:sub"]
        assert subject == f"system:serviceaccount:logserver:{name}"
    else:
        assert role is None, f"{name} calls no AWS API and gets no role"
    assert "logserver" not in by_kind(aws, "ServiceAccount")  # the shared identity is gone


@pytest.mark.parametrize("name", ["log", "worker"])
def test_iam_policy_grants_exactly_the_calls_made(name):
    expected = {IAM_ACTION[c] for c in _sqs_calls(name)}
    policy = _policy(IAM / f"{name}-policy.json")
    assert set().union(*policy.values()) == expected
    assert policy[QUEUE_ARN] == expected
    dlq = policy.get(f"{QUEUE_ARN}-dlq")
    if "dlq_url()" in "".join(f.read_text() for f in (REPO / "services" / name).rglob("*.py")):
        assert dlq == {"sqs:GetQueueUrl", "sqs:GetQueueAttributes"}  # its depth, nothing else
    else:
        assert dlq is None
    assert set(policy) <= {QUEUE_ARN, f"{QUEUE_ARN}-dlq"}


def test_keda_reads_the_queue_length_only():
    assert _policy(IAM / "keda-operator-policy.json") == {QUEUE_ARN: {"sqs:GetQueueAttributes"}}


def test_redis_url_and_its_auth_token_come_from_a_secret(aws):
    data = configmap_data(aws, "logserver-config")
    assert not any("redis" in key.lower() for key in data), data.keys()
    for name in SERVICES:
        env = _env(aws, name)["LOGSERVER_REDIS_URL"]
        assert env["valueFrom"]["secretKeyRef"] == {"name": "logserver-redis", "key": "url"}


# --- 9. network policies ------------------------------------------------------------


def _selects(selector: dict, labels: dict[str, str]) -> bool:
    for key, value in selector.get("matchLabels", {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions", []):
        key, op, values = expr["key"], expr["operator"], expr.get("values", [])
        ok = {
            "In": labels.get(key) in values,
            "NotIn": labels.get(key) not in values,
            "Exists": key in labels,
            "DoesNotExist": key not in labels,
        }[op]
        if not ok:
            return False
    return True


def _policies_for(objects: list[dict], name: str) -> list[dict]:
    labels = _pod(objects, name)["metadata"]["labels"]
    return [
        p
        for p in by_kind(objects, "NetworkPolicy").values()
        if _selects(p["spec"]["podSelector"], labels)
    ]


def _egress_ports(objects: list[dict], name: str) -> set[int | str]:
    ports: set[int | str] = set()
    for policy in _policies_for(objects, name):
        for rule in policy["spec"].get("egress", []):
            assert rule.get("ports"), f"{policy['metadata']['name']}: an egress rule without ports"
            assert rule.get("to"), f"{policy['metadata']['name']}: an egress rule to anywhere"
            ports.update(p["port"] for p in rule["ports"])
    return ports


def test_default_deny_in_both_directions(aws):
    deny = one(aws, "NetworkPolicy", "default-deny")["spec"]
    assert deny == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}


@pytest.mark.parametrize(
    ("port", "needed_by"),
    [
        (27017, lambda s: "mongo" in _needs(s)),
        # every service publishes its errors on Redis (services/core/clients.py)
        (6379, lambda s: True),
        # SQS, and STS for the IRSA web identity
        (443, lambda s: "sqs" in _needs(s)),
    ],
    ids=["mongodb", "redis", "aws-https"],
)
def test_only_the_services_that_need_a_backend_reach_it(aws, port, needed_by):
    reaching = {s for s in SERVICES if port in _egress_ports(aws, s)}
    assert reaching == {s for s in SERVICES if needed_by(s)}


def test_nothing_else_leaves_the_pods(aws):
    allowed = {53, 8001, 27017, 6379, 443}
    for name in SERVICES:
        assert _egress_ports(aws, name) <= allowed, name
        assert 53 in _egress_ports(aws, name), f"{name} resolves names"
        fetches_jwks = name != "auth" and _authenticates(name)
        assert (8001 in _egress_ports(aws, name)) == fetches_jwks, name


def _ingress_peers(objects: list[dict], name: str) -> list[dict]:
    return [
        peer
        for policy in _policies_for(objects, name)
        for rule in policy["spec"].get("ingress", [])
        for peer in rule.get("from", [])
    ]


def test_ingress_from_the_load_balancer_and_jwks_fetchers_only(aws):
    for name in SERVICES:
        peers = _ingress_peers(aws, name)
        from_alb = {"ipBlock": {"cidr": "<ALB_SUBNETS_CIDR>"}} in peers
        assert from_alb == (name in PUBLIC), name
        pod_peers = [p["podSelector"] for p in peers if "podSelector" in p]
        fetchers = {
            s
            for s in SERVICES
            for sel in pod_peers
            if _selects(sel, _pod(aws, s)["metadata"]["labels"])
        }
        expected = (
            {s for s in SERVICES if s != "auth" and _authenticates(s)} if name == "auth" else set()
        )
        assert fetchers == expected, name


# --- 9. monitoring ----------------------------------------------------------------


def test_pod_monitor_scrapes_every_service(aws):
    monitor = one(aws, "PodMonitor", "logserver")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    for name in SERVICES:
        assert _selects(monitor["spec"]["selector"], _pod(aws, name)["metadata"]["labels"]), name
        ports = {p["name"] for p in _container(aws, name)["ports"]}
        (endpoint,) = monitor["spec"]["podMetricsEndpoints"]
        assert endpoint["port"] in ports and endpoint["path"] == "/metrics"
    scrape = one(aws, "NetworkPolicy", "allow-prometheus-scrape")["spec"]
    assert scrape["ingress"][0]["from"][0]["namespaceSelector"]


def test_alerts_use_metrics_the_services_export(aws):
    rule = one(aws, "PrometheusRule", "logserver")
    alerts = {r["alert"]: r["expr"] for g in rule["spec"]["groups"] for r in g["rules"]}
    assert set(alerts) == {"LogserverDeadLetters", "LogserverDependencyDown"}
    code = "".join(f.read_text() for f in (REPO / "services").rglob("*.py"))
    for expr in alerts.values():
        for metric in re.findall(r"\blogserver_\w+", expr):
            assert f'"{metric}"' in code, metric


# --- 9. topology and the rest ---------------------------------------------------------


@pytest.mark.parametrize("name", SERVICES)
def test_spread_across_zones_and_hosts(aws, name):
    pod = _pod(aws, name)
    keys = {}
    for c in pod["spec"]["topologySpreadConstraints"]:
        assert _selects(c["labelSelector"], pod["metadata"]["labels"])
        assert c["maxSkew"] == 1
        keys[c["topologyKey"]] = c
    assert set(keys) == {"topology.kubernetes.io/zone", "kubernetes.io/hostname"}


def test_documentdb_ca_bundle_is_mounted_when_present(aws):
    for name in SERVICES:
        pod = _pod(aws, name)["spec"]
        volume = next(v for v in pod["volumes"] if v["name"] == "mongodb-ca")
        assert volume["secret"] == {
            "secretName": "logserver-mongodb-ca",
            "optional": True,
            "defaultMode": 0o444,
        }
        mount = next(m for m in _container(aws, name)["volumeMounts"] if m["name"] == "mongodb-ca")
        assert (mount["mountPath"], mount["readOnly"]) == ("/etc/logserver/mongodb-ca", True)


def test_every_placeholder_is_listed_for_the_operator(aws):
    import yaml

    header = (REPO / "k8s" / "overlays" / "aws" / "kustomization.yaml").read_text()
    listed = set(re.findall(r"^#\s+(<[A-Z_]+>)", header, re.MULTILINE))
    used = set(re.findall(r"<[A-Z_]+>", yaml.safe_dump_all(aws)))
    assert used == listed
