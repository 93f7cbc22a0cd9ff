"""Running a stack's processes: readiness probes, and the background group the tests use."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable

from services.cli.stack.config import REPO, ProcSpec, StackConfig


def probe_once(probe: tuple[str, str]) -> bool:
    kind, target = probe
    try:
        if kind == "tcp":
            host, port = target.rsplit(":", 1)
            with socket.create_connection((host, int(port)), timeout=1):
                return True
        if kind == "http":
            with urllib.request.urlopen(target, timeout=2) as resp:
                return resp.status == 200
        if kind == "sqs":
            url, queue = target.split("|")
            req = urllib.request.Request(
                url + "/",
                data=json.dumps({"QueueName": queue}).encode(),
                method="POST",
                headers={
                    "Content-Type": "application/x-amz-json-1.0",
                    "X-Amz-Target": "AmazonSQS.GetQueueUrl",
                },
            )
            with urllib.request.urlopen(req, timeout=2) as resp:
                return resp.status == 200
    except (OSError, urllib.error.URLError, ValueError):
        return False
    return False


def wait_ready(
    specs: list[ProcSpec], timeout: float, alive: Callable[[str], bool] | None = None
) -> None:
    """Poll every probe until all pass; raise with the names still down at the deadline."""
    deadline = time.monotonic() + timeout
    pending = list(specs)
    while pending:
        pending = [s for s in pending if not probe_once(s.probe)]
        if alive:
            dead = [s.name for s in pending if not alive(s.name)]
            if dead:
                raise RuntimeError(f"process exited before it was ready: {', '.join(dead)}")
        if not pending:
            return
        if time.monotonic() > deadline:
            names = ", ".join(s.name for s in pending)
            raise TimeoutError(f"not ready after {timeout:.0f}s: {names}")
        time.sleep(0.2)


# --- background runner (tests) -------------------------------------------------------


class ProcessGroup:
    """Runs stack processes in the background with their output in ``<data>/logs``."""

    def __init__(self, cfg: StackConfig) -> None:
        self.cfg = cfg
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.specs = {s.name: s for s in cfg.procs}
        self.log_dir = cfg.data_dir / "logs"
        self.log_dir.mkdir(parents=True, exist_ok=True)

    def add(self, spec: ProcSpec) -> None:
        """Run an extra process (e.g. a second replica) under this group's control."""
        self.specs[spec.name] = spec
        self.cfg.procs.append(spec)

    def start(self, name: str) -> None:
        spec = self.specs[name]
        log = (self.log_dir / f"{name}.log").open("ab")
        self.procs[name] = subprocess.Popen(
            spec.argv,
            env=os.environ | spec.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=REPO,
            start_new_session=True,
        )
        log.close()

    def alive(self, name: str) -> bool:
        proc = self.procs.get(name)
        return proc is not None and proc.poll() is None

    def wait(self, names: list[str], timeout: float = 120) -> None:
        wait_ready([self.specs[n] for n in names], timeout, self.alive)

    def start_all(self, timeout: float = 180) -> None:
        for spec in self.cfg.procs:
            self.start(spec.name)
        try:
            self.wait([s.name for s in self.cfg.procs], timeout)
        except Exception:
            self.stop_all()
            raise

    def stop(self, name: str, sig: int = signal.SIGTERM, timeout: float = 15) -> int | None:
        proc = self.procs.pop(name, None)
        if proc is None or proc.poll() is not None:
            return proc.returncode if proc else None
        os.killpg(proc.pid, sig)
        try:
            return proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            return proc.wait(5)

    def restart(self, name: str, timeout: float = 60) -> None:
        self.stop(name)
        self.start(name)
        self.wait([name], timeout)

    def stop_all(self) -> None:
        # Reverse start order: gateway and services before the backends they hold
        # connections to (FerretDB waits for its clients to go before it exits).
        for spec in reversed(self.cfg.procs):
            self.stop(spec.name)

    def tail(self, name: str, lines: int = 40) -> str:
        path = self.log_dir / f"{name}.log"
        if not path.exists():
            return ""
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
