"""Running load against the stack: the tenants every scenario shares, a config file per
load generator (it holds tokens: private), the locust and asyncio generators in child
processes with the stack's CPU read before and after, waiting for the queue to drain,
preloading a tenant with `logserver generate`, and one scenario's whole life (load,
drain, the RSS and queue samples of its time)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from benchmarks.harness.parameters import BENCH, REPO, Params, log
from benchmarks.harness.sampling import (
    Queue,
    Sampler,
    cpu_per_request,
    cpu_snapshot,
    summarize_samples,
)
from benchmarks.harness.stack import Target, storage_name
from services.cli.admin import AdminClient
from services.core.secretfiles import write_private

if TYPE_CHECKING:
    from benchmarks.harness.scenarios import Scenario


class Runner:
    def __init__(self, target: Target, params: Params, work: Path) -> None:
        self.target = target
        self.p = params
        self.work = work
        self.queue = Queue(target.sqs_url)
        self.sampler = Sampler(target, self.queue)
        self.results: dict[str, Any] = {}
        self.http = httpx.Client(base_url=target.url, timeout=60)
        self.admin = AdminClient(self.http)
        self.admin.login(*target.admin)
        self.storage = storage_name(target)
        self.notes: list[str] = []
        log(f"creating {params.tenants} tenants with writer and viewer keys")
        self.tenants = [self.tenant(f"bench{i}") for i in range(params.tenants)]
        self.warm_up()

    def warm_up(self) -> None:
        """What a service does once, on its first requests (fetch the signing keys, open
        its queue, Redis and storage connections, load its Lua scripts), done before any
        phase is measured, with a tenant of its own: the CPU per request of a phase is
        that of a running service, not of its first second."""
        warm = self.tenant("benchwarm")
        writer = {"Authorization": f"Bearer {warm['writer_token']}"}
        viewer = {"Authorization": f"Bearer {warm['viewer_token']}"}
        for _ in range(3):
            self.http.post("/api/v1/logs", json={"message": "warm-up"}, headers=writer)
            body = [{"message": "warm-up", "level": "debug"}] * 3
            self.http.post("/api/v1/logs/bulk", json=body, headers=writer).raise_for_status()
            self.http.get("/api/v1/logs", params={"limit": 1}, headers=viewer).raise_for_status()

    def tenant(self, prefix: str) -> dict[str, Any]:
        """A new tenant with a writer and a viewer key, and a token for each."""
        key = self.admin.tenant(prefix)
        writer = self.admin.key(key, "writer", name="bench writer")
        viewer = self.admin.key(key, "viewer", name="bench viewer")
        return {
            "tenant": key,
            "writer": writer,
            "viewer": viewer,
            "writer_token": self.admin.token(*writer),
            "viewer_token": self.admin.token(*viewer),
        }

    # load generators in child processes

    def config(self, name: str, **values: Any) -> tuple[Path, Path]:
        """Write the config of load generator ``name``; its path and its summary's."""
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

    def env(self, config: Path) -> dict[str, str]:
        return os.environ | {
            "BENCH_CONFIG": str(config),
            "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""),
        }

    def _run(self, name: str, argv: list[str], config: Path, timeout: float) -> None:
        out = self.work / f"{name}.log"
        with out.open("wb") as fh:
            proc = subprocess.run(
                argv,
                env=self.env(config),
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
        config, summary = self.config(name, **values)
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
        config, summary = self.config(name, **values)
        before = cpu_snapshot(self.target.pids)
        self._run(name, [sys.executable, str(BENCH / script)], config, timeout)
        after = cpu_snapshot(self.target.pids)
        result = json.loads(summary.read_text())
        cpu_per_request(before, after, result)
        return result

    def generate(
        self, writer: tuple[str, str], count: int, *args: str, timeout: float
    ) -> subprocess.CompletedProcess[bytes]:
        """``count`` events with `logserver generate` (1,000 a request) as ``writer``;
        ``args``: more of its options (seed, spread, output)."""
        return subprocess.run(
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
                *args,
            ],
            env=os.environ
            | {"LOGSERVER_CLIENT_ID": writer[0], "LOGSERVER_CLIENT_SECRET": writer[1]},
            stdout=subprocess.PIPE if "--json" in args else None,
            cwd=REPO,
            check=True,
            timeout=timeout,
        )

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

    def scenario(self, scenario: Scenario) -> None:
        key = scenario.NAME
        self.sampler.label = key
        log(f"scenario {key}: {scenario.TITLE}")
        started = time.time()
        result = scenario.run(self)
        result["wall_seconds"] = round(time.time() - started, 1)
        self.sampler.label = f"{key}-drain"
        result["drain_seconds"] = self.drain(key)
        samples = self.sampler.of(key) + self.sampler.of(f"{key}-drain")
        result["resources"] = summarize_samples(samples)
        self.results[key] = result
        self.sampler.label = "idle"

    def close(self) -> None:
        self.http.close()
