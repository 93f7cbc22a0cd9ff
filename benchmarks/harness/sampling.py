"""What the stack spends while a scenario runs, read from outside it: each process's
RSS (``/proc/<pid>/status``, with children) and the queue depth once a second, CPU
seconds (utime + stime from ``/proc/<pid>/stat``) before and after each load phase,
and counters from the services' ``/metrics``."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from benchmarks.harness.parameters import QUEUE

if TYPE_CHECKING:
    from benchmarks.harness.stack import Target


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
    protocols = (summary.get("protocols") or {}).values()  # shippers: every protocol's requests
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
