"""`make benchmark`: run the load scenarios of benchmarks/ against a stack and write results.

    .venv/bin/python scripts/benchmark.py                  # all scenarios, full size
    .venv/bin/python scripts/benchmark.py --scenario a     # one (a to g; comma list)
    .venv/bin/python scripts/benchmark.py --quick          # seconds-long smoke run

Starts a private stack on free ports under ``.data/bench-<pid>`` (the same
process list as ``make dev``/``make test``) unless ``LOGSERVER_URL`` names a
running one; then it uses that stack, with the credential from
``LOGSERVER_CLIENT_ID``/``_SECRET`` or ``.data/admin-credentials.json`` and the
backend addresses from ``.data/dev/stack.json`` when there is one.

Tenants, API keys and tokens are made through the real HTTP flow. While the
scenarios run, a sampler records every process's RSS (``/proc/<pid>/status``)
and the queue depth once a second. The storage's raw ``insert_many`` rate
(PyMongo straight into a scratch database, same document shape, batches of
1,000) is measured in the same run, so the persisted throughput is reported
as a ratio of it. Results: ``benchmarks/results/<date>.json`` and ``.md``
(``<date>-quick.*`` for ``--quick``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import secrets
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from services.cli.stack import (  # noqa: E402
    Ports,
    ProcessGroup,
    StackConfig,
    build_stack,
    provision,
)
from services.core.secretfiles import write_private  # noqa: E402

BENCH = REPO / "benchmarks"
RESULTS = BENCH / "results"
ALL = ("a", "b", "c", "d", "e", "f", "g")
NAMES = {
    "a": "single-event POST (closed loop + open loop)",
    "b": "bulk POST, 1,000 events/request",
    "c": "mixed ingest + search + tail",
    "d": "filtered search on a preloaded tenant",
    "e": "WebSocket fan-out ingest→receive",
    "f": "log shipper protocols (OTLP, Loki, Elasticsearch) beside bulk, 1,000 records/request",
    "g": "noisy neighbour: one tenant floods ingest and searches, another's latency",
}
FERRETDB_PRELOAD = 100_000
# Issue 18: the log service's CPU per request, read from /proc (machine noise moves it
# much less than throughput), so one process takes twice the traffic.
LOG_CPU_MS_TARGET = 0.28
LOG_CPU_US_PER_EVENT_TARGET = 8
QUEUE = os.environ.get("LOGSERVER_SQS_QUEUE_NAME", "logserver-events")
DLQ = os.environ.get("LOGSERVER_SQS_DLQ_NAME", "logserver-events-dlq")


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# --- parameters -------------------------------------------------------------------


@dataclass
class Params:
    quick: bool
    seed: int = 42
    tenants: int = 4
    a_users: int = 1000
    a_requests: int = 10_000
    open_rate: float = 1000
    open_seconds: float = 10
    b_users: int = 8  # enough bulk clients to keep the log service busy (4 left it idle 80 %)
    b_requests: int = 100
    raw_docs: int = 20_000
    c_seconds: float = 60
    c_users: int = 60
    c_tail_clients: int = 20
    d_preload: int = 1_000_000
    d_users: int = 4
    d_seconds: float = 30
    e_clients: int = 100
    e_rate: float = 1000
    e_seconds: float = 20
    e_batch: int = 10
    e_processes: int = 0  # listener processes; 0: one per 25 clients, at most 4
    f_requests: int = 60  # requests of 1,000 records per protocol
    f_users: int = 4
    g_seconds: float = 30  # each phase (quiet, flood)
    g_b_rate: float = 200  # tenant B's steady single-event POSTs per second
    # Tenant A's ingest_events_per_second (it offers 5x that): what A may send is load
    # the 2-core machine carries for everyone, so it is B's rate, not a fifth of capacity.
    g_a_limit: int = 200
    g_flood_factor: float = 5
    g_a_batch: int = 50
    g_a_searchers: int = 4  # heavy-search clients of A (its max_concurrent_queries: 1)
    g_a_preload: int = 5_000  # FerretDB v1 reads the whole collection for every search
    g_b_preload: int = 1_000
    drain_timeout: float = 600
    preload_given: bool = False

    @classmethod
    def make(cls, args: argparse.Namespace) -> Params:
        if getattr(args, "smoke", False):
            # for tests/integration/test_benchmark_smoke.py: proves each scenario runs
            p = cls(
                quick=True,
                tenants=2,
                a_users=10,
                a_requests=60,
                open_rate=40,
                open_seconds=1,
                b_users=1,
                b_requests=2,
                raw_docs=1000,
                c_seconds=3,
                c_users=6,
                c_tail_clients=2,
                d_preload=300,
                d_users=2,
                d_seconds=2,
                e_clients=2,
                e_rate=50,
                e_seconds=2,
                e_processes=2,  # exercise the multi-process listeners too
                f_requests=3,
                f_users=1,
                drain_timeout=30,
                g_seconds=2,
                g_b_rate=20,
                g_a_limit=100,
                g_a_batch=20,
                g_a_searchers=2,
                g_a_preload=300,
                g_b_preload=50,
            )
        elif args.quick:
            p = cls(
                quick=True,
                a_users=50,
                a_requests=500,
                open_rate=200,
                open_seconds=2,
                b_users=2,
                b_requests=6,
                raw_docs=3000,
                c_seconds=4,
                c_users=15,
                c_tail_clients=5,
                d_preload=3000,
                d_users=4,
                d_seconds=3,
                e_clients=5,
                e_rate=200,
                e_seconds=3,
                f_requests=9,
                f_users=2,
                drain_timeout=60,
                g_seconds=5,
                g_a_preload=2000,
                g_b_preload=200,
            )
        else:
            p = cls(quick=False)
        p.preload_given = getattr(args, "d_preload", None) is not None
        for name in (
            "seed",
            "a_users",
            "a_requests",
            "open_rate",
            "open_seconds",
            "b_users",
            "c_seconds",
            "d_preload",
            "e_clients",
            "e_rate",
            "e_seconds",
            "f_requests",
            "g_seconds",
        ):
            value = getattr(args, name, None)
            if value is not None:
                setattr(p, name, value)
        return p


# --- the stack ---------------------------------------------------------------------


@dataclass
class Target:
    url: str
    admin: tuple[str, str]
    mongodb_url: str | None = None
    sqs_url: str | None = None
    worker_url: str | None = None
    log_url: str | None = None
    pids: dict[str, int] = field(default_factory=dict)
    group: ProcessGroup | None = None
    data_dir: Path | None = None


def raise_nofile() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def start_stack() -> Target:
    data_dir = REPO / ".data" / f"bench-{os.getpid()}"
    shutil.rmtree(data_dir, ignore_errors=True)
    log(f"starting a private stack under {data_dir.relative_to(REPO)}")
    tools = provision()
    admin = (f"admin_{secrets.token_hex(4)}", secrets.token_urlsafe(24))
    cfg = build_stack(data_dir, Ports.free(), tools, admin=admin)
    group = ProcessGroup(cfg)
    started = time.monotonic()
    try:
        group.start_all(timeout=240)
    except Exception as exc:
        logs = "\n".join(f"--- {n}\n{group.tail(n)}" for n in group.specs)
        raise SystemExit(f"stack did not start: {exc}\n{logs}") from exc
    log(f"stack up in {time.monotonic() - started:.1f}s at {cfg.gateway_url}")
    return Target(
        url=cfg.gateway_url,
        admin=admin,
        mongodb_url=cfg.mongodb_url,
        sqs_url=cfg.sqs_endpoint_url,
        worker_url=cfg.service_url("worker"),
        log_url=cfg.service_url("log"),
        pids={name: proc.pid for name, proc in group.procs.items()},
        group=group,
        data_dir=data_dir,
    )


def external_stack(url: str) -> Target:
    from services.cli.errors import CliError
    from services.cli.token import load_credential

    try:
        admin = load_credential(None, None, None)
    except CliError as exc:
        raise SystemExit(f"benchmark: {exc}") from exc
    target = Target(url=url.rstrip("/"), admin=admin)
    target.mongodb_url = os.environ.get("LOGSERVER_MONGODB_URL")
    target.sqs_url = os.environ.get("LOGSERVER_SQS_ENDPOINT_URL")
    stack_file = Path(os.environ.get("LOGSERVER_STACK_FILE", REPO / ".data" / "dev" / "stack.json"))
    if stack_file.exists():
        cfg = StackConfig.load(stack_file)
        target.mongodb_url = target.mongodb_url or cfg.mongodb_url
        target.sqs_url = target.sqs_url or cfg.sqs_endpoint_url
        target.worker_url = cfg.service_url("worker")
        target.log_url = cfg.service_url("log")
        ports = {
            name: getattr(cfg.ports, name)
            for name in ("auth", "tenant", "log", "worker", "broadcast", "gateway")
        }
        ports |= {"mongodb": cfg.ports.mongo, "elasticmq": cfg.ports.sqs, "redis": cfg.ports.redis}
        target.pids = pids_by_port(ports)
    log(f"using the running stack at {target.url} (pids found: {sorted(target.pids)})")
    return target


def pids_by_port(ports: dict[str, int]) -> dict[str, int]:
    """Which process listens on each port (own processes only: /proc/<pid>/fd)."""
    inodes: dict[str, int] = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            parts = line.split()
            if parts[3] == "0A":  # LISTEN
                inodes[parts[9]] = int(parts[1].rsplit(":", 1)[1], 16)
    by_port = {port: inode for inode, port in inodes.items()}
    wanted = {by_port[p]: name for name, p in ports.items() if p in by_port}
    found: dict[str, int] = {}
    for pid_dir in Path("/proc").iterdir():
        if not pid_dir.name.isdigit():
            continue
        try:
            for fd in (pid_dir / "fd").iterdir():
                link = os.readlink(fd)
                if link.startswith("socket:["):
                    name = wanted.get(link[8:-1])
                    if name and name not in found:
                        found[name] = int(pid_dir.name)
        except OSError:
            continue
    return found


# --- sampling: RSS and queue depth ---------------------------------------------------


def rss_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def children_map() -> dict[int, list[int]]:
    out: dict[int, list[int]] = {}
    for pid_dir in Path("/proc").iterdir():
        if not pid_dir.name.isdigit():
            continue
        try:
            stat = (pid_dir / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        out.setdefault(ppid, []).append(int(pid_dir.name))
    return out


def tree_rss_mb(pid: int, kids: dict[int, list[int]]) -> float:
    total, stack = 0, [pid]
    while stack:
        p = stack.pop()
        total += rss_kb(p)
        stack.extend(kids.get(p, []))
    return round(total / 1024, 1)


_CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """utime + stime of ``pid`` from ``/proc/<pid>/stat`` (0 once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _CLK_TCK


def cpu_snapshot(pids: dict[str, int]) -> dict[str, float]:
    """CPU seconds so far of each stack process with its children (nginx's workers)."""
    kids = children_map()
    out = {}
    for name, pid in pids.items():
        todo, total = [pid], 0.0
        while todo:
            p = todo.pop()
            total += cpu_seconds(p)
            todo.extend(kids.get(p, ()))
        out[name] = total
    return out


def cpu_per_request(
    before: dict[str, float], after: dict[str, float], summary: dict[str, Any]
) -> None:
    """Add each process's CPU per request (ms) over a load phase, and per event (µs)."""
    protocols = (summary.get("protocols") or {}).values()  # (f): every protocol's requests
    requests = summary.get("requests") or sum(p.get("requests", 0) for p in protocols)
    if not requests or not before:
        return
    spent = {n: max(0.0, after.get(n, 0.0) - before[n]) for n in before}
    summary["cpu_ms_per_request"] = {n: round(v * 1000 / requests, 4) for n, v in spent.items()}
    events = summary.get("events") or 0
    if events > requests:
        summary["cpu_us_per_event"] = {n: round(v * 1e6 / events, 2) for n, v in spent.items()}


class Queue:
    def __init__(self, endpoint: str | None) -> None:
        self.client = None
        self.urls: dict[str, str] = {}
        if not endpoint:
            return
        import boto3

        self.client = boto3.client(
            "sqs",
            endpoint_url=endpoint,
            region_name="us-east-1",
            aws_access_key_id="local",
            aws_secret_access_key="local",
        )

    def depth(self, name: str = QUEUE) -> tuple[int, int] | None:
        if self.client is None:
            return None
        try:
            if name not in self.urls:
                self.urls[name] = self.client.get_queue_url(QueueName=name)["QueueUrl"]
            attrs = self.client.get_queue_attributes(
                QueueUrl=self.urls[name],
                AttributeNames=[
                    "ApproximateNumberOfMessages",
                    "ApproximateNumberOfMessagesNotVisible",
                ],
            )["Attributes"]
            return (
                int(attrs["ApproximateNumberOfMessages"]),
                int(attrs["ApproximateNumberOfMessagesNotVisible"]),
            )
        except Exception:
            return None


class Sampler(threading.Thread):
    """Once a second: RSS of every stack process (with children) and the queue depth."""

    def __init__(self, target: Target, queue: Queue, interval: float = 1.0) -> None:
        super().__init__(daemon=True, name="bench-sampler")
        self.target = target
        self.queue = queue
        self.interval = interval
        self.label = "setup"
        self.samples: list[dict[str, Any]] = []
        self._halt = threading.Event()
        self.t0 = time.time()

    def run(self) -> None:
        while not self._halt.is_set():
            kids = children_map()
            sample: dict[str, Any] = {
                "t": round(time.time() - self.t0, 1),
                "scenario": self.label,
                "rss_mb": {n: tree_rss_mb(p, kids) for n, p in self.target.pids.items()},
            }
            depth = self.queue.depth()
            if depth is not None:
                sample["queue_visible"], sample["queue_in_flight"] = depth
            self.samples.append(sample)
            self._halt.wait(self.interval)

    def stop(self) -> None:
        self._halt.set()
        self.join(5)

    def of(self, label: str) -> list[dict[str, Any]]:
        return [s for s in self.samples if s["scenario"] == label]


def summarize_samples(samples: list[dict[str, Any]]) -> dict[str, Any]:
    if not samples:
        return {}
    rss: dict[str, float] = {}
    for s in samples:
        for name, mb in s["rss_mb"].items():
            rss[name] = max(rss.get(name, 0.0), mb)
    depth = [
        (s["t"], s.get("queue_visible", 0) + s.get("queue_in_flight", 0))
        for s in samples
        if "queue_visible" in s
    ]
    return {
        "rss_max_mb": rss,
        "queue_depth_max": max((d for _, d in depth), default=None),
        "queue_depth_series": depth,
    }


# --- metrics and HTTP setup ---------------------------------------------------------


def metric_sum(url: str | None, name: str) -> float | None:
    if not url:
        return None
    try:
        text = httpx.get(url + "/metrics", timeout=10).text
    except httpx.HTTPError:
        return None
    total, seen = 0.0, False
    for line in text.splitlines():
        if line.startswith(name) and (line[len(name)] in " {"):
            total += float(line.rsplit(" ", 1)[1])
            seen = True
    return total if seen else None


class Setup:
    """Tenants, keys and tokens through the real HTTP flow (as tests/integration do)."""

    def __init__(self, url: str, admin: tuple[str, str]) -> None:
        self.http = httpx.Client(base_url=url, timeout=60)
        self.admin_token = self.token(*admin)
        self.admin = {"Authorization": f"Bearer {self.admin_token}"}

    def token(self, client_id: str, secret: str) -> str:
        resp = self.http.post(
            "/api/v1/auth/token",
            data={
                "grant_type": "client_credentials",
                "client_id": client_id,
                "client_secret": secret,
            },
        )
        resp.raise_for_status()
        return resp.json()["access_token"]

    def tenant(self, prefix: str) -> str:
        key = f"{prefix}-{secrets.token_hex(3)}"
        resp = self.http.post("/api/v1/tenants", json={"key": key, "name": key}, headers=self.admin)
        if resp.status_code != 201:
            raise SystemExit(f"could not create tenant {key}: {resp.status_code} {resp.text}")
        return key

    def key(self, tenant: str, role: str) -> tuple[str, str]:
        resp = self.http.post(
            f"/api/v1/tenants/{tenant}/api-keys",
            json={"name": f"bench {role}", "role": role},
            headers=self.admin,
        )
        if resp.status_code != 201:
            raise SystemExit(f"could not create a {role} key: {resp.status_code} {resp.text}")
        body = resp.json()
        return body["client_id"], body["client_secret"]

    def tenants(self, n: int, prefix: str = "bench") -> list[dict[str, Any]]:
        out = []
        for i in range(n):
            key = self.tenant(f"{prefix}{i}")
            writer = self.key(key, "writer")
            viewer = self.key(key, "viewer")
            out.append(
                {
                    "tenant": key,
                    "writer": writer,
                    "writer_token": self.token(*writer),
                    "viewer_token": self.token(*viewer),
                }
            )
        return out

    def total(self, token: str) -> int:
        """The tenant's event count (a full scan on FerretDB: may hit the query timeout)."""
        resp = self.http.get(
            "/api/v1/logs",
            params={"limit": 1, "total": "true"},
            headers={"Authorization": f"Bearer {token}"},
            timeout=600,
        )
        if resp.status_code == 504:
            raise SystemExit(
                "counting the preloaded events took longer than the log service's query "
                "timeout; raise LOGSERVER_QUERY_TIMEOUT_SECONDS or preload fewer (--preload)"
            )
        resp.raise_for_status()
        return int(resp.json()["meta"]["total"])


# --- running one scenario ------------------------------------------------------------


class Runner:
    def __init__(self, target: Target, params: Params, work: Path) -> None:
        self.target = target
        self.p = params
        self.work = work
        self.queue = Queue(target.sqs_url)
        self.sampler = Sampler(target, self.queue)
        self.results: dict[str, Any] = {}
        self.setup = Setup(target.url, target.admin)
        self.storage = storage_name(target)
        self.notes: list[str] = []
        log(f"creating {params.tenants} tenants with writer and viewer keys")
        self.tenants = self.setup.tenants(params.tenants)

    # helpers

    def _config(self, name: str, **values: Any) -> tuple[Path, Path]:
        summary = self.work / f"{name}.summary.json"
        summary.unlink(missing_ok=True)
        cfg = {
            "url": self.target.url,
            "seed": self.p.seed,
            "summary_path": str(summary),
            "writer_tokens": [t["writer_token"] for t in self.tenants],
            "viewer_tokens": [t["viewer_token"] for t in self.tenants],
            **values,
        }
        path = self.work / f"{name}.config.json"
        write_private(path, json.dumps(cfg))  # it holds tokens
        return path, summary

    def _env(self, config: Path) -> dict[str, str]:
        return os.environ | {
            "BENCH_CONFIG": str(config),
            "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""),
        }

    def _run(self, name: str, argv: list[str], config: Path, timeout: float) -> None:
        out = self.work / f"{name}.log"
        with out.open("wb") as fh:
            proc = subprocess.run(
                argv,
                env=self._env(config),
                stdout=fh,
                stderr=subprocess.STDOUT,
                cwd=REPO,
                timeout=timeout,
                check=False,
            )
        if proc.returncode not in (0, 1):  # locust exits 1 when any request failed
            tail = out.read_text(errors="replace")[-3000:]
            raise RuntimeError(f"{name} exited with {proc.returncode}:\n{tail}")

    def locust(
        self,
        name: str,
        locustfile: str,
        users: int,
        *,
        run_time: float,
        spawn_rate: float | None = None,
        **values: Any,
    ) -> dict[str, Any]:
        config, summary = self._config(name, **values)
        argv = [
            sys.executable,
            "-m",
            "locust",
            "-f",
            str(BENCH / locustfile),
            "--headless",
            "--only-summary",
            "-u",
            str(users),
            "-r",
            str(spawn_rate or users),
            "-t",
            f"{int(run_time)}s",
            "--stop-timeout",
            "5",
            "--loglevel",
            "WARNING",
        ]
        before = cpu_snapshot(self.target.pids)
        self._run(name, argv, config, timeout=run_time + 120)
        after = cpu_snapshot(self.target.pids)
        if not summary.exists():
            raise RuntimeError(f"{name}: locust wrote no summary (see {self.work / name}.log)")
        result = json.loads(summary.read_text())
        cpu_per_request(before, after, result)
        return result

    def script(self, name: str, script: str, timeout: float, **values: Any) -> dict[str, Any]:
        config, summary = self._config(name, **values)
        before = cpu_snapshot(self.target.pids)
        self._run(name, [sys.executable, str(BENCH / script)], config, timeout)
        after = cpu_snapshot(self.target.pids)
        result = json.loads(summary.read_text())
        cpu_per_request(before, after, result)
        return result

    def drain(self, label: str) -> float | None:
        """Wait until the queue is empty (twice in a row); seconds waited."""
        if self.queue.client is None:
            time.sleep(2)
            return None
        start = time.monotonic()
        empty = 0
        while time.monotonic() - start < self.p.drain_timeout:
            depth = self.queue.depth()
            if depth is not None and sum(depth) == 0:
                empty += 1
                if empty >= 2:
                    return round(time.monotonic() - start, 1)
            else:
                empty = 0
            time.sleep(0.5)
        log(f"{label}: the queue did not drain within {self.p.drain_timeout:.0f}s")
        return None

    def scenario(self, key: str) -> None:
        self.sampler.label = key
        log(f"scenario {key}: {NAMES[key]}")
        started = time.time()
        result = getattr(self, f"run_{key}")()
        result["wall_seconds"] = round(time.time() - started, 1)
        self.sampler.label = f"{key}-drain"
        result["drain_seconds"] = self.drain(key)
        samples = self.sampler.of(key) + self.sampler.of(f"{key}-drain")
        result["resources"] = summarize_samples(samples)
        self.results[key] = result
        self.sampler.label = "idle"

    # scenarios

    def run_a(self) -> dict[str, Any]:
        p = self.p
        closed = self.locust(
            "a_closed",
            "locust_ingest.py",
            p.a_users,
            run_time=600,
            requests=p.a_requests,
        )
        log(
            f"  closed loop: {closed['req_per_s']:.0f} req/s, p99 {closed['latency_ms']['p99']} "
            f"ms, errors {closed['errors']}"
        )
        self.drain("a")
        opened = self.script(
            "a_open",
            "open_loop.py",
            timeout=p.open_seconds + 120,
            rate=p.open_rate,
            duration=p.open_seconds,
            warmup=1.0 if not p.quick else 0.5,
        )
        log(
            f"  open loop {p.open_rate:.0f}/s: p50 {opened['latency_ms']['p50']} ms, "
            f"p99 {opened['latency_ms']['p99']} ms, errors {opened['errors']}"
        )
        return {"closed": closed, "open": opened}

    def raw_insert_rate(self) -> dict[str, Any] | None:
        if not self.target.mongodb_url:
            return None
        from pymongo import MongoClient

        from services.cli.generate import EventGenerator
        from services.core.logmodel import wire_to_document
        from services.core.logstore import log_indexes_for
        from services.log.events import normalize

        gen = EventGenerator(self.p.seed + 99)
        received = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        docs = [
            wire_to_document("bench-raw", normalize(e, received))
            for e in gen.batch(self.p.raw_docs)
        ]
        client = MongoClient(self.target.mongodb_url, serverSelectionTimeoutMS=10_000)
        db_name = f"bench_scratch_{os.getpid()}"
        try:
            coll = client[db_name]["logs"]
            indexes = log_indexes_for(client.admin.command("buildInfo"))  # as the worker does
            if indexes:
                coll.create_indexes(indexes)
            start = time.perf_counter()
            for i in range(0, len(docs), 1000):
                coll.insert_many(docs[i : i + 1000], ordered=False)
            seconds = time.perf_counter() - start
        finally:
            client.drop_database(db_name)
            client.close()
        rate = len(docs) / seconds
        log(f"  raw insert_many: {len(docs):,} docs in {seconds:.2f}s = {rate:,.0f} docs/s")
        return {"docs": len(docs), "seconds": round(seconds, 3), "docs_per_s": round(rate, 1)}

    def run_b(self) -> dict[str, Any]:
        p = self.p
        raw = self.raw_insert_rate()
        self.drain("b")
        stored_before = metric_sum(self.target.worker_url, "logserver_worker_events_stored_total")
        t0 = time.time()
        bulk = self.locust(
            "b_bulk",
            "locust_bulk.py",
            p.b_users,
            run_time=900,
            requests=p.b_requests,
            batch=1000,
        )
        log(
            f"  bulk: {bulk['events_per_s']:,.0f} events/s accepted, "
            f"p99 {bulk['latency_ms']['p99']} ms, errors {bulk['errors']}"
        )
        drained = self.drain("b")
        t1 = time.time()
        stored_after = metric_sum(self.target.worker_url, "logserver_worker_events_stored_total")
        persisted: dict[str, Any] = {"drained": drained is not None}
        if stored_before is not None and stored_after is not None:
            stored = int(stored_after - stored_before)
            # from the first request to the moment the queue was empty again
            seconds = t1 - (bulk.get("started") or t0)
            persisted |= {
                "events": stored,
                "seconds": round(seconds, 2),
                "events_per_s": round(stored / seconds, 1) if seconds else None,
            }
            if raw:
                persisted["ratio_of_raw_insert_many"] = round(
                    persisted["events_per_s"] / raw["docs_per_s"], 3
                )
            log(
                f"  persisted: {stored:,} events in {seconds:.1f}s = "
                f"{persisted['events_per_s']:,.0f}/s "
                f"(ratio {persisted.get('ratio_of_raw_insert_many')})"
            )
        return {"bulk": bulk, "raw_insert_many": raw, "persisted": persisted}

    def run_c(self) -> dict[str, Any]:
        p = self.p
        marker = f"mixed-{secrets.token_hex(3)}"
        tail_cfg, tail_summary = self._config(
            "c_tail",
            clients=p.c_tail_clients,
            duration=p.c_seconds + 5,
            listen_only=True,
            marker=marker,
        )
        tail_log = (self.work / "c_tail.log").open("wb")
        tail = subprocess.Popen(
            [sys.executable, str(BENCH / "ws_fanout.py")],
            env=self._env(tail_cfg),
            stdout=tail_log,
            stderr=subprocess.STDOUT,
            cwd=REPO,
        )
        time.sleep(3 if not p.quick else 2)  # tail clients connected before the load starts
        try:
            mixed = self.locust(
                "c_mixed", "locust_mixed.py", p.c_users, run_time=p.c_seconds, marker=marker
            )
        finally:
            try:
                tail.wait(timeout=p.c_seconds + 90)
            except subprocess.TimeoutExpired:
                tail.terminate()
                tail.wait(10)
            tail_log.close()
        tail_result = json.loads(tail_summary.read_text()) if tail_summary.exists() else None
        log(
            f"  mixed: {mixed['req_per_s']:.0f} req/s, p99 {mixed['latency_ms']['p99']} ms, "
            f"errors {mixed['errors']}; tail p99 "
            f"{(tail_result or {}).get('latency_ms', {}).get('p99')} ms"
        )
        return {"mixed": mixed, "tail": tail_result}

    def run_d(self) -> dict[str, Any]:
        p = self.p
        if not p.quick and not p.preload_given and not self.storage.startswith("MongoDB"):
            p.d_preload = FERRETDB_PRELOAD
            self.notes.append(
                f"(d) preloaded {FERRETDB_PRELOAD:,} events instead of 1,000,000: {self.storage} "
                "persists only a few thousand events/s, so 1,000,000 would take most of an hour "
                "(pass --preload to override)."
            )
        tenant = self.setup.tenant("bench-search")
        writer = self.setup.key(tenant, "writer")
        viewer_token = self.setup.token(*self.setup.key(tenant, "viewer"))
        log(f"  preloading {p.d_preload:,} events into {tenant} with `logserver generate`")
        stored_before = metric_sum(self.target.worker_url, "logserver_worker_events_stored_total")
        start = time.monotonic()
        gen = subprocess.run(
            [
                sys.executable,
                "-m",
                "services.cli",
                "generate",
                "--url",
                self.target.url,
                "--count",
                str(p.d_preload),
                "--batch-size",
                "1000",
                "--concurrency",
                "4",
                "--seed",
                str(p.seed),
                "--spread",
                str(7 * 86400),
                "--json",
            ],
            env=os.environ
            | {"LOGSERVER_CLIENT_ID": writer[0], "LOGSERVER_CLIENT_SECRET": writer[1]},
            stdout=subprocess.PIPE,
            cwd=REPO,
            check=True,
            timeout=3600,
        )
        generated = json.loads(gen.stdout)
        self.sampler.label = "d-preload-drain"
        self.drain("d preload")
        preload_seconds = time.monotonic() - start
        stored_after = metric_sum(self.target.worker_url, "logserver_worker_events_stored_total")
        if stored_before is not None and stored_after is not None:
            stored = int(stored_after - stored_before)  # the worker's count: no storage scan
        else:
            stored = self.setup.total(viewer_token)
        log(
            f"  preload: {generated['events']:,} accepted at {generated['events_per_second']:,.0f}"
            f"/s, {stored:,} stored after {preload_seconds:.0f}s"
        )
        self.sampler.label = "d"
        # before the load: abandoned searches would still hold FerretDB afterwards
        reads = measure_reads(self.target.url, viewer_token, repeat=3 if p.quick else 5)
        log("  reads (median ms): " + ", ".join(f"{k} {v['median_ms']}" for k, v in reads.items()))
        search = self.locust(
            "d_search",
            "locust_search.py",
            p.d_users,
            run_time=p.d_seconds,
            viewer_tokens=[viewer_token],
            tenant=tenant,
            preloaded=stored,
            preload_seed=p.seed,
        )
        log(
            f"  search: {search['req_per_s']:.1f} req/s, p50 {search['latency_ms']['p50']} ms, "
            f"p95 {search['latency_ms']['p95']} ms, errors {search['errors']}"
        )
        return {
            "preload": generated | {"stored": stored, "seconds": round(preload_seconds, 1)},
            "search": search,
            "reads": reads,
        }

    def run_e(self) -> dict[str, Any]:
        p = self.p
        tenant = self.tenants[0]
        fan = self.script(
            "e_fanout",
            "ws_fanout.py",
            timeout=p.e_seconds + 180,
            clients=p.e_clients,
            rate=p.e_rate,
            duration=p.e_seconds,
            batch=p.e_batch,
            processes=p.e_processes,
            drain=30 if not p.quick else 10,
            viewer_tokens=[tenant["viewer_token"]],
            writer_tokens=[tenant["writer_token"]],
        )
        log(
            f"  fan-out {fan['clients']} clients at {p.e_rate:.0f} events/s: p50 "
            f"{fan['latency_ms']['p50']} ms, p99 {fan['latency_ms']['p99']} ms, delivered "
            f"{fan['delivered_ratio']}"
        )
        return {"fanout": fan}

    def run_f(self) -> dict[str, Any]:
        p = self.p
        tenant = self.tenants[0]
        log_pid = self.target.pids.get("log")
        if not log_pid:
            self.notes.append("(f) the log service's pid was not found: no CPU per event.")
        result = self.script(
            "f_shippers",
            "shippers.py",
            timeout=900,
            requests=p.f_requests,
            users=p.f_users,
            rounds=3,
            batch=1000,
            writer_key=list(tenant["writer"]),
            log_pid=log_pid,
        )
        for name, s in result["protocols"].items():
            log(
                f"  {name}: {s['events_per_s'] or 0:,.0f} events/s, log CPU "
                f"{s['log_cpu_ms_per_1000_events']} ms per 1,000 events "
                f"({s['cpu_ratio_to_bulk']} x bulk), errors {s['errors']}"
            )
        return result

    def preload(self, tenant: str, writer: tuple[str, str], count: int, seed: int) -> None:
        """``count`` events into ``tenant`` with `logserver generate`, then wait until stored."""
        subprocess.run(
            [
                sys.executable,
                "-m",
                "services.cli",
                "generate",
                "--url",
                self.target.url,
                "--count",
                str(count),
                "--batch-size",
                "1000",
                "--seed",
                str(seed),
                "--spread",
                "3600",
                "--quiet",
            ],
            env=os.environ
            | {"LOGSERVER_CLIENT_ID": writer[0], "LOGSERVER_CLIENT_SECRET": writer[1]},
            cwd=REPO,
            check=True,
            timeout=1800,
        )

    def run_g(self) -> dict[str, Any]:
        p = self.p
        a, b = self.setup.tenant("noisy-a"), self.setup.tenant("quiet-b")
        keys = {t: (self.setup.key(t, "writer"), self.setup.key(t, "viewer")) for t in (a, b)}
        log(f"  preloading {p.g_a_preload:,} events into {a} and {p.g_b_preload:,} into {b}")
        self.preload(a, keys[a][0], p.g_a_preload, p.seed + 5)
        self.preload(b, keys[b][0], p.g_b_preload, p.seed + 6)
        self.drain("g preload")
        limits = {
            "ingest_events_per_second": p.g_a_limit,
            "ingest_burst": p.g_a_limit,
            "max_concurrent_queries": 1,
        }
        resp = self.setup.http.patch(
            f"/api/v1/tenants/{a}", json={"limits": limits}, headers=self.setup.admin
        )
        resp.raise_for_status()
        self.sampler.label = "g"
        unenforced = "logserver_limits_unenforced_total"
        skipped_before = metric_sum(self.target.log_url, unenforced) or 0.0
        noisy = self.script(
            "g_noisy",
            "noisy_neighbour.py",
            timeout=2 * p.g_seconds + 300,
            seconds=p.g_seconds,
            warmup=1.0 if not p.quick else 0.5,
            b_rate=p.g_b_rate,
            a_limit=p.g_a_limit,
            flood_factor=p.g_flood_factor,
            a_batch=p.g_a_batch,
            a_searchers=p.g_a_searchers,
            a_writer=self.setup.token(*keys[a][0]),
            a_viewer=self.setup.token(*keys[a][1]),
            b_writer=self.setup.token(*keys[b][0]),
            b_viewer=self.setup.token(*keys[b][1]),
        )
        # Limits fail open when Redis does not answer in time: say if that happened.
        noisy["limit_checks_unenforced"] = (metric_sum(self.target.log_url, unenforced) or 0.0) - (
            skipped_before
        )
        q, f = noisy["quiet"], noisy["flood"]
        log(
            f"  B ingest p99 {q['b_ingest']['latency_ms']['p99']} ms quiet, "
            f"{f['b_ingest']['latency_ms']['p99']} ms with A's flood "
            f"(x{noisy['b_ingest_p99_ratio']}); B search p95 "
            f"{q['b_search']['latency_ms']['p95']} / {f['b_search']['latency_ms']['p95']} ms; "
            f"A offered {f['a_ingest']['offered_events_per_s']:,.0f} events/s, accepted "
            f"{f['a_ingest']['accepted_events_per_s']:,.0f}/s, statuses "
            f"{f['a_ingest']['statuses']}, A searches {f['a_search']['statuses']}; "
            f"limit checks unenforced: {noisy['limit_checks_unenforced']:.0f}"
        )
        return {"noisy": noisy, "tenants": {"a": a, "b": b}, "a_limits": limits}


# --- reads beside the search (scenario d) ---------------------------------------------

READ_TARGETS = {  # the share of the filtered search's time each read may take
    "stats": 1 / 20,
    "stats_histogram_24h": 1 / 20,
    "total": 1 / 20,
    "tail_replay_100": 1 / 20,
    "get_by_id": 1 / 10,
}


def measure_reads(url: str, token: str, repeat: int) -> dict[str, dict[str, Any]]:
    """Timings (median of ``repeat`` interleaved rounds, after a warm-up) of a full filtered
    search and of the reads that must not cost what it costs: stats by level, a 24 h
    histogram, a total, a `tail=100` replay, one event by id."""
    from websockets.sync.client import connect

    headers = {"Authorization": f"Bearer {token}"}
    since = datetime.now(UTC).replace(second=0, microsecond=0).timestamp() - 86400
    day_ago = datetime.fromtimestamp(since, UTC).isoformat().replace("+00:00", "Z")
    filtered = {"service": "api", "level": "ERROR", "limit": "50"}
    ws_url = url.replace("http://", "ws://") + "/api/v1/logs/stream?tail=100&token=" + token
    out: dict[str, dict[str, Any]] = {}
    timed_out: set[str] = set()
    with httpx.Client(base_url=url, headers=headers, timeout=120) as http:

        def get(path: str, params: dict[str, str] | None = None) -> None:
            resp = http.get(path, params=params)
            if resp.status_code == 504:  # the storage's query limit: a lower bound
                timed_out.add((path, tuple(sorted((params or {}).items()))))
            elif resp.status_code >= 400:
                raise RuntimeError(f"{path} {params}: {resp.status_code} {resp.text[:200]}")

        def replay() -> list[dict[str, Any]]:
            with connect(ws_url, open_timeout=30) as ws:
                frame = json.loads(ws.recv(timeout=120))
                if not frame.get("replay"):
                    raise RuntimeError(f"not a replay frame: {str(frame)[:200]}")
                return frame["data"]

        # The tenant's first replay reads the storage and has the ring rebuilt; on
        # FerretDB that read may outlast the replay's time limit: wait for the ring.
        deadline = time.monotonic() + 900
        while True:
            try:
                newest = replay()
                break
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(5)
        event_id = newest[-1]["id"] if newest else "none"

        reads = {
            "search_filtered": lambda: get("/api/v1/logs", filtered),
            "stats": lambda: get("/api/v1/logs/stats", {"by": "level"}),
            "stats_histogram_24h": lambda: get(
                "/api/v1/logs/stats", {"by": "level", "interval": "1h", "from": day_ago}
            ),
            "total": lambda: get(
                "/api/v1/logs", {"service": "api", "level": "ERROR", "total": "true", "limit": "0"}
            ),
            "tail_replay_100": lambda: replay(),
            "get_by_id": lambda: get(f"/api/v1/logs/{event_id}"),
        }
        for read in reads.values():
            read()  # warm-up
        # Interleaved rounds: a disturbance (another scan holding the storage) falls on
        # every kind of read alike rather than on one kind's block.
        times: dict[str, list[float]] = {name: [] for name in reads}
        for _ in range(repeat):
            for name, read in reads.items():
                start = time.perf_counter()
                read()
                times[name].append((time.perf_counter() - start) * 1000)
        for name, runs in times.items():
            runs.sort()
            out[name] = {
                "median_ms": round(runs[len(runs) // 2], 1),
                "runs_ms": [round(t, 1) for t in runs],
            }
    if ("/api/v1/logs", tuple(sorted(filtered.items()))) in timed_out:
        out["search_filtered"]["timed_out"] = True  # 504: its time is a lower bound
    base = out["search_filtered"]["median_ms"] or 1
    for name, share in READ_TARGETS.items():
        out[name]["share_of_search"] = round(out[name]["median_ms"] / base, 4)
        out[name]["target_share"] = round(share, 4)
    return out


# --- report ---------------------------------------------------------------------------


def storage_name(target: Target) -> str:
    if not target.mongodb_url:
        return "unknown"
    try:
        from pymongo import MongoClient

        client = MongoClient(target.mongodb_url, serverSelectionTimeoutMS=5000)
        info = client.admin.command("buildInfo")
        client.close()
    except Exception as exc:
        return f"unknown ({type(exc).__name__})"
    if "ferretdbVersion" in info or "ferretdb" in json.dumps(info, default=str).lower():
        version = info.get("ferretdbVersion") or info.get("version")
        return f"FerretDB {version} (SQLite handler)"
    return f"MongoDB {info.get('version')}"


def machine_info(target: Target) -> dict[str, Any]:
    cpu = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem_kb = 0
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            mem_kb = int(line.split()[1])
    storage = storage_name(target)
    try:  # never `import locust` here: it monkey-patches this process with gevent
        from importlib.metadata import version

        locust_version = version("locust")
    except Exception:
        locust_version = None
    return {
        "nproc": os.cpu_count(),
        "cpu_model": cpu,
        "memory_gb": round(mem_kb / 1024 / 1024, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "storage": storage,
        "queue": "ElasticMQ (SQS API)" if target.sqs_url else "unknown",
        "locust": locust_version,
        "load_generator": "same machine",
    }


def targets(results: dict[str, Any], params: Params, storage: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []

    def row(target: str, measured: str, met: bool | None, note: str = "") -> None:
        rows.append({"target": target, "measured": measured, "met": met, "note": note})

    if "a" in results:
        c = results["a"]["closed"]
        lat = c["latency_ms"]
        ok = (
            c["req_per_s"] >= 2000
            and c["errors"] == 0
            and lat["p99"] is not None
            and lat["p99"] <= 2 * lat["mean"]
        )
        row(
            "closed loop 1,000 clients x 10,000: ≥ 2,000 req/s, 0 errors, p99 ≤ 2 x mean",
            f"{c['req_per_s']:,.0f} req/s, {c['errors']} errors, mean {lat['mean']} ms, "
            f"p99 {lat['p99']} ms ({(lat['p99'] or 0) / (lat['mean'] or 1):.1f} x mean)",
            ok,
        )
        o = results["a"]["open"]
        row(
            f"open loop at {params.open_rate:,.0f} req/s: p99 ≤ 50 ms",
            f"p99 {o['latency_ms']['p99']} ms, {o['errors']} errors",
            o["latency_ms"]["p99"] is not None and o["latency_ms"]["p99"] <= 50 and not o["errors"],
        )
        log_ms = (c.get("cpu_ms_per_request") or {}).get("log")
        if log_ms is not None:
            row(
                f"log service CPU per single-event request ≤ {LOG_CPU_MS_TARGET} ms (closed loop)",
                f"{log_ms:.3f} ms at {c['req_per_s']:,.0f} req/s, p99 {lat['p99']} ms",
                log_ms <= LOG_CPU_MS_TARGET,
            )
    if "b" in results:
        b = results["b"]
        log_us = (b["bulk"].get("cpu_us_per_event") or {}).get("log")
        if log_us is not None:
            row(
                "log service CPU per event in 1,000-event bulks "
                f"≤ {LOG_CPU_US_PER_EVENT_TARGET} µs",
                f"{log_us:.1f} µs at {b['bulk']['events_per_s']:,.0f} events/s, "
                f"p99 {b['bulk']['latency_ms']['p99']} ms",
                log_us <= LOG_CPU_US_PER_EVENT_TARGET,
            )
        row(
            "bulk POST 1,000 events/request: ≥ 50,000 events/s accepted",
            f"{b['bulk']['events_per_s']:,.0f} events/s",
            b["bulk"]["events_per_s"] >= 50_000,
        )
        ratio = b["persisted"].get("ratio_of_raw_insert_many")
        raw = (b.get("raw_insert_many") or {}).get("docs_per_s")
        row(
            "persisted throughput ≥ 80% of raw insert_many",
            f"{b['persisted'].get('events_per_s', 0):,.0f}/s vs raw {raw or 0:,.0f}/s "
            f"= {ratio if ratio is not None else 'n/a'}",
            ratio is not None and ratio >= 0.8,
            storage,
        )
    if "e" in results:
        f = results["e"]["fanout"]
        row(
            f"ingest→WebSocket p99 ≤ 250 ms at {params.e_rate:,.0f} events/s, "
            f"{params.e_clients} clients",
            f"p99 {f['latency_ms']['p99']} ms, delivered {f['delivered_ratio']}",
            f["latency_ms"]["p99"] is not None
            and f["latency_ms"]["p99"] <= 250
            and (f["delivered_ratio"] or 0) >= 0.999,
        )
    if "d" in results:
        d = results["d"]
        mongo = storage.startswith("MongoDB")
        p95 = d["search"]["latency_ms"]["p95"]
        measured = (
            f"p95 {p95} ms on {storage}"
            if p95 is not None
            else f"no search answered in time on {storage} ({d['search']['errors']} errors)"
        )
        row(
            f"filtered search, {d['preload']['stored']:,}-event tenant: p95 ≤ 50 ms (MongoDB)",
            measured,
            (d["search"]["latency_ms"]["p95"] or 1e9) <= 50 if mongo else None,
            "" if mongo else "FerretDB v1: reported, not judged (docs/architecture.md#backends)",
        )
        reads = d.get("reads") or {}
        search_ms = (reads.get("search_filtered") or {}).get("median_ms")
        for name, share in READ_TARGETS.items():
            r = reads.get(name)
            if not r or not search_ms:
                continue
            row(
                f"{name.replace('_', ' ')} ≤ 1/{round(1 / share)} of a filtered search",
                f"{r['median_ms']} ms vs search "
                f"{'≥ ' if reads['search_filtered'].get('timed_out') else ''}{search_ms} ms "
                f"= 1/{search_ms / max(r['median_ms'], 0.1):.0f}",
                r["share_of_search"] <= share,
                storage,
            )
    if "f" in results:
        protocols = results["f"]["protocols"]
        ratios = {
            name: s["cpu_ratio_to_bulk"]
            for name, s in protocols.items()
            if name in ("otlp", "loki", "elastic")
        }
        row(
            "shipper protocols: log service CPU per event ≤ 1.5 x our bulk's",
            ", ".join(f"{n} {r} x" for n, r in ratios.items())
            + f" (bulk {protocols['bulk']['log_cpu_ms_per_1000_events']} ms / 1,000 events)",
            all(r is not None and r <= 1.5 for r in ratios.values()),
        )
    if "g" in results:
        n = results["g"]["noisy"]
        q, fl = n["quiet"]["b_ingest"]["latency_ms"], n["flood"]["b_ingest"]["latency_ms"]
        ratio = n["b_ingest_p99_ratio"]
        sq, sf = n["quiet"]["b_search"]["latency_ms"], n["flood"]["b_search"]["latency_ms"]
        row(
            f"noisy neighbour: B's ingest p99 with A flooding at {n['flood_factor']:g}x its "
            "limit ≤ 1.5 x quiet",
            f"p99 {q['p99']} ms quiet, {fl['p99']} ms flooded (x{ratio}); "
            f"B search p95 {sq['p95']} / {sf['p95']} ms (x{n['b_search_p95_ratio']})",
            ratio is not None and ratio <= 1.5,
        )
    rss: dict[str, float] = {}
    for r in results.values():
        for name, mb in r.get("resources", {}).get("rss_max_mb", {}).items():
            rss[name] = max(rss.get(name, 0), mb)
    services = {
        n: v for n, v in rss.items() if n in ("auth", "tenant", "log", "worker", "broadcast")
    }
    if services:
        worst = max(services, key=services.__getitem__)
        row(
            "each service's RSS ≤ 200 MB under load",
            ", ".join(f"{n} {v:.0f}" for n, v in services.items()) + " MB",
            services[worst] <= 200,
        )
    return rows


def fmt(v: Any, digits: int = 0) -> str:
    if v is None:
        return "-"
    if isinstance(v, float | int):
        return f"{v:,.{digits}f}"
    return str(v)


def scenario_rows(results: dict[str, Any]) -> list[list[str]]:
    rows = []

    def add(label: str, s: dict[str, Any] | None, note: str = "") -> None:
        if not s:
            return
        lat = s.get("latency_ms") or {}
        rows.append(
            [
                label,
                fmt(s.get("req_per_s"), 1),
                fmt(s.get("events_per_s")),
                fmt(lat.get("p50"), 1),
                fmt(lat.get("p95"), 1),
                fmt(lat.get("p99"), 1),
                fmt(lat.get("mean"), 1),
                fmt(s.get("errors")),
                note,
            ]
        )

    if "a" in results:
        c = results["a"]["closed"]
        add(
            "a closed loop",
            c,
            f"{c['requests']:,} requests, {c.get('users', '')} users, {c['seconds']:.1f} s",
        )
        o = results["a"]["open"]
        add("a open loop", o, f"target {o['target_rate']:,.0f} req/s, latency from due time")
    if "b" in results:
        b = results["b"]
        per = b["persisted"]
        add(
            "b bulk x1000",
            b["bulk"],
            f"persisted {fmt(per.get('events_per_s'))}/s = "
            f"{fmt(per.get('ratio_of_raw_insert_many'), 2)} x raw insert_many "
            f"({fmt((b.get('raw_insert_many') or {}).get('docs_per_s'))}/s)",
        )
    if "c" in results:
        add("c mixed", results["c"]["mixed"], f"{results['c']['mixed']['seconds']:.0f} s")
        t = results["c"].get("tail")
        if t:
            rows.append(
                [
                    "c mixed: tail",
                    "-",
                    fmt(t["deliveries_per_s"]),
                    fmt(t["latency_ms"]["p50"], 1),
                    fmt(t["latency_ms"]["p95"], 1),
                    fmt(t["latency_ms"]["p99"], 1),
                    fmt(t["latency_ms"]["mean"], 1),
                    fmt(sum(v for k, v in t["closes"].items() if k != "closed_by_server")),
                    f"{t['clients']} WS clients, ingest→receive",
                ]
            )
    if "d" in results:
        d = results["d"]
        add(
            "d search",
            d["search"],
            f"{d['preload']['stored']:,} events preloaded",
        )
    if "e" in results:
        f = results["e"]["fanout"]
        rows.append(
            [
                "e fan-out",
                fmt(f["requests"] / max(f["seconds"], 1e-9), 1),
                fmt(f["events_per_s"]),
                fmt(f["latency_ms"]["p50"], 1),
                fmt(f["latency_ms"]["p95"], 1),
                fmt(f["latency_ms"]["p99"], 1),
                fmt(f["latency_ms"]["mean"], 1),
                fmt(f["errors"]),
                f"{f['clients']} clients, ingest→receive, delivered {f['delivered_ratio']}",
            ]
        )
    if "f" in results:
        for name, s in results["f"]["protocols"].items():
            add(
                f"f {name} x1000",
                s | {"req_per_s": s["requests"] / s["seconds"] if s["seconds"] else None},
                f"log CPU {fmt(s['log_cpu_ms_per_1000_events'], 1)} ms / 1,000 events "
                f"= {fmt(s['cpu_ratio_to_bulk'], 2)} x bulk",
            )
    if "g" in results:
        n = results["g"]["noisy"]
        for phase in ("quiet", "flood"):
            for kind, label in (("b_ingest", "B ingest"), ("b_search", "B search")):
                s = n[phase][kind]
                lat = s["latency_ms"]
                errors = sum(v for k, v in s["statuses"].items() if not k.startswith("2"))
                rows.append(
                    [
                        f"g {phase}: {label}",
                        fmt(s["req_per_s"], 1),
                        fmt(s["req_per_s"]) if kind == "b_ingest" else "-",
                        fmt(lat["p50"], 1),
                        fmt(lat["p95"], 1),
                        fmt(lat["p99"], 1),
                        fmt(lat["mean"], 1),
                        fmt(errors),
                        "from due time" + (", A flooding" if phase == "flood" else ", A idle"),
                    ]
                )
        a_in, a_se = n["flood"]["a_ingest"], n["flood"]["a_search"]
        rows.append(
            [
                "g flood: A ingest",
                fmt(a_in["req_per_s"], 1),
                fmt(a_in["accepted_events_per_s"]),
                fmt(a_in["latency_ms"]["p50"], 1),
                fmt(a_in["latency_ms"]["p95"], 1),
                fmt(a_in["latency_ms"]["p99"], 1),
                fmt(a_in["latency_ms"]["mean"], 1),
                "-",
                f"offered {a_in['offered_events_per_s']:,.0f} events/s; statuses "
                f"{a_in['statuses']}; A searches {a_se['statuses']}",
            ]
        )
    return rows


def cpu_phases(results: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """Each load phase's summary, labelled as in the scenario table."""
    picks = [
        ("a closed loop", ("a", "closed")),
        ("a open loop", ("a", "open")),
        ("b bulk x1000", ("b", "bulk")),
        ("c mixed", ("c", "mixed")),
        ("d search", ("d", "search")),
        ("e fan-out", ("e", "fanout")),
        ("f shippers (all protocols)", ("f", None)),
    ]
    out = []
    for label, (key, part) in picks:
        s = results.get(key)
        if s is not None and part is not None:
            s = s.get(part)
        if s and s.get("cpu_ms_per_request"):
            out.append((label, s))
    return out


def cpu_table(results: dict[str, Any]) -> list[str]:
    """CPU per request of every process in every phase (utime + stime from /proc)."""
    phases = cpu_phases(results)
    if not phases:
        return []
    names: list[str] = []
    for _, s in phases:
        names += [n for n in s["cpu_ms_per_request"] if n not in names]
    out = [
        "",
        "## CPU per request (ms) of each process",
        "",
        "utime + stime from `/proc/<pid>/stat` (with children) over the phase, divided by "
        "its requests; the log service's targets are ≤ "
        f"{LOG_CPU_MS_TARGET} ms per single-event request and ≤ "
        f"{LOG_CPU_US_PER_EVENT_TARGET} µs per event in 1,000-event bulks.",
        "",
        "| phase | " + " | ".join(names) + " | log µs / event |",
        "|---|" + "---:|" * len(names) + "---:|",
    ]
    for label, s in phases:
        cpu = s["cpu_ms_per_request"]
        per_event = (s.get("cpu_us_per_event") or {}).get("log")
        out.append(
            f"| {label} | "
            + " | ".join(fmt(cpu.get(n), 3) for n in names)
            + f" | {fmt(per_event, 1)} |"
        )
    return out


def markdown(doc: dict[str, Any]) -> str:
    m = doc["machine"]
    out = [
        f"# Benchmark {doc['date']}{' (quick smoke run)' if doc['quick'] else ''}",
        "",
        f"Machine: {m['nproc']} cores, {m['cpu_model']}, {m['memory_gb']} GB RAM, "
        f"Linux {m['kernel']}, Python {m['python']}, locust {m['locust']}. "
        f"Storage: **{m['storage']}**; queue: {m['queue']}; load generator on the same machine.",
        "",
        "| scenario | req/s | events/s | p50 ms | p95 ms | p99 ms | mean ms | errors | notes |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    out += ["| " + " | ".join(r) + " |" for r in scenario_rows(doc["results"])]
    out += cpu_table(doc["results"])
    out += ["", "## Targets", "", "| target | measured | met |", "|---|---|---|"]
    for t in doc["targets"]:
        met = {True: "yes", False: "**no**", None: "n/a"}[t["met"]]
        note = f" ({t['note']})" if t["note"] else ""
        out.append(f"| {t['target']} | {t['measured']}{note} | {met} |")
    out += ["", "## Max RSS per process (MB) and queue depth", ""]
    names: list[str] = []
    for r in doc["results"].values():
        for n in r.get("resources", {}).get("rss_max_mb", {}):
            if n not in names:
                names.append(n)
    if names:
        out.append("| scenario | " + " | ".join(names) + " | max queue depth | depth over time |")
        out.append("|---|" + "---:|" * len(names) + "---:|---|")
        for key, r in doc["results"].items():
            res = r.get("resources", {})
            series = res.get("queue_depth_series") or []
            step = max(1, len(series) // 12)
            spark = " ".join(f"{t:.0f}s:{d}" for t, d in series[::step])
            out.append(
                f"| {key} | "
                + " | ".join(fmt(res.get("rss_max_mb", {}).get(n)) for n in names)
                + f" | {fmt(res.get('queue_depth_max'))} | {spark} |"
            )
    out += [
        "",
        "Queue depth = ApproximateNumberOfMessages + NotVisible (messages, each holding "
        "many events); t is seconds since the benchmark started.",
        "",
        "Notes:",
        "- Latencies are exact percentiles over every request (not locust's rounded ones). "
        "The closed-loop run stops after exactly the request budget; the open-loop run "
        "measures each request from its scheduled send time, so queueing in the load "
        "generator is counted too.",
        "- FerretDB v1 on SQLite filters in Go, sorts in memory (docs/architecture.md#backends): "
        "search latencies and the raw insert_many rate are those of this dev backend, "
        "not of MongoDB.",
        f"- Reproduce: `make benchmark` (all) or `make benchmark SCENARIO=a`; parameters: "
        f"`{json.dumps(doc['params'])}`.",
    ]
    if doc.get("notes"):
        out += [f"- {n}" for n in doc["notes"]]
    return "\n".join(out) + "\n"


# --- main -------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--scenario", default="all", help="a to g, a comma list, or all")
    ap.add_argument("--quick", action="store_true", help="seconds-long smoke run of each")
    ap.add_argument("--smoke", action="store_true", help="smallest run (used by the tests)")
    ap.add_argument("--preload", dest="d_preload", type=int, help="events to preload for (d)")
    ap.add_argument("--duration", dest="c_seconds", type=float, help="seconds of mixed load (c)")
    ap.add_argument("--users", dest="a_users", type=int, help="closed-loop users (a)")
    ap.add_argument("--requests", dest="a_requests", type=int, help="closed-loop requests (a)")
    ap.add_argument("--rate", dest="open_rate", type=float, help="open-loop req/s (a)")
    ap.add_argument("--open-seconds", dest="open_seconds", type=float, help="open loop length")
    ap.add_argument("--bulk-users", dest="b_users", type=int, help="concurrent bulk clients (b)")
    ap.add_argument("--clients", dest="e_clients", type=int, help="fan-out WS clients (e)")
    ap.add_argument("--fanout-rate", dest="e_rate", type=float, help="fan-out events/s (e)")
    ap.add_argument("--fanout-seconds", dest="e_seconds", type=float, help="fan-out length (e)")
    ap.add_argument("--noisy-seconds", dest="g_seconds", type=float, help="each phase of (g)")
    ap.add_argument("--seed", type=int, help="random seed of every scenario (default 42)")
    ap.add_argument("--out-dir", type=Path, default=RESULTS, help="where results go")
    ap.add_argument("--work-dir", type=Path, help="scenario configs and logs (default .data/)")
    ap.add_argument("--name", help="results file name without extension (default: the date)")
    ap.add_argument("--note", action="append", default=[], help="a line for the report's notes")
    return ap.parse_args(argv)


def run(args: argparse.Namespace, target: Target | None = None) -> dict[str, Any]:
    keys = list(ALL) if args.scenario == "all" else [s.strip() for s in args.scenario.split(",")]
    unknown = [k for k in keys if k not in ALL]
    if unknown:
        raise SystemExit(f"unknown scenario(s): {', '.join(unknown)}; choose from {', '.join(ALL)}")
    params = Params.make(args)
    args.quick = params.quick
    raise_nofile()
    own = target is None
    if target is None:
        url = os.environ.get("LOGSERVER_URL")
        target = external_stack(url) if url else start_stack()
    scratch = None
    if args.work_dir:
        work = args.work_dir
    elif target.data_dir:
        work = target.data_dir / "bench"
    else:
        scratch = work = REPO / ".data" / f"bench-{os.getpid()}"
    work.mkdir(parents=True, exist_ok=True)
    try:
        runner = Runner(target, params, work)
        runner.sampler.start()
        for key in keys:
            runner.scenario(key)
        runner.sampler.stop()
        machine = machine_info(target)
        today = datetime.now(UTC).strftime("%Y-%m-%d")
        doc = {
            "date": today,
            "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "quick": params.quick,
            "scenarios": keys,
            "params": {k: v for k, v in vars(params).items() if k != "quick"},
            "machine": machine,
            "results": runner.results,
            "targets": targets(runner.results, params, machine["storage"]),
            "notes": args.note + runner.notes,
            "samples": runner.sampler.samples,
        }
    finally:
        if own and target.group is not None:
            log("stopping the private stack")
            target.group.stop_all()
            if target.data_dir and os.environ.get("LOGSERVER_KEEP_BENCH_DATA") != "1":
                shutil.rmtree(target.data_dir, ignore_errors=True)
        if scratch and os.environ.get("LOGSERVER_KEEP_BENCH_DATA") != "1":
            shutil.rmtree(scratch, ignore_errors=True)
    name = args.name or (today + ("-quick" if params.quick else ""))
    args.out_dir.mkdir(parents=True, exist_ok=True)
    json_path = args.out_dir / f"{name}.json"
    md_path = args.out_dir / f"{name}.md"
    json_path.write_text(json.dumps(doc, indent=2, default=str) + "\n")
    md_path.write_text(markdown(doc))
    log(f"wrote {json_path} and {md_path}")
    return doc


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    doc = run(args)
    print(markdown(doc))
    return 0


if __name__ == "__main__":
    sys.exit(main())
