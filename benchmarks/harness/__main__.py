"""`make benchmark`: run the load scenarios of benchmarks/ against a stack and write results.

    .venv/bin/python -m benchmarks.harness                        # all scenarios, full size
    .venv/bin/python -m benchmarks.harness --scenario bulk,fanout # some (names below)
    .venv/bin/python -m benchmarks.harness --quick                # seconds-long smoke run

Scenarios, in the order they run (the letters a-g they had before are accepted too):
  single_event     single-event POSTs, closed loop (1,000 users) and open loop (fixed rate)
  bulk             bulk POSTs of 1,000 events; persisted rate vs. raw insert_many
  mixed            ingest + search + WebSocket tail together
  search           filtered search on a preloaded tenant, and the reads beside it
  fanout           WebSocket fan-out, ingest→receive latency
  shippers         OTLP, Loki, Elasticsearch beside bulk: CPU per 1,000 events
  noisy_neighbour  one tenant floods ingest and searches; another tenant's latency

Starts a private stack on free ports under ``.data/bench-<pid>`` (the same
process list as ``make dev``/``make test``) unless ``LOGSERVER_URL`` names a
running one; then it uses that stack, with the credential from
``LOGSERVER_CLIENT_ID``/``_SECRET`` or ``.data/admin-credentials.json`` and the
backend addresses from ``.data/dev/stack.json`` when there is one.

Tenants, API keys and tokens are made through the real HTTP flow. While the
scenarios run, a sampler records every process's RSS (``/proc/<pid>/status``)
and the queue depth once a second. Results: ``benchmarks/results/<date>.json``
and ``.md`` (``<date>-quick.*`` for ``--quick``).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks.harness.parameters import REPO, RESULTS, Params, log
from benchmarks.harness.report import machine_info, markdown, targets
from benchmarks.harness.runner import Runner
from benchmarks.harness.scenarios import SCENARIOS, choose
from benchmarks.harness.stack import Target, external_stack, raise_nofile, start_stack
from services.cli.errors import CliError


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        prog="python -m benchmarks.harness",
        description=__doc__,
        formatter_class=argparse.RawTextHelpFormatter,
    )
    ap.add_argument("--scenario", default="all", help="a name, a comma list, or all")
    ap.add_argument("--quick", action="store_true", help="seconds-long smoke run of each")
    ap.add_argument("--smoke", action="store_true", help="smallest run (used by the tests)")
    ap.add_argument("--preload", dest="search_preload", type=int, help="events to preload (search)")
    ap.add_argument("--duration", dest="mixed_seconds", type=float, help="seconds of mixed load")
    ap.add_argument("--users", dest="single_event_users", type=int, help="closed-loop users")
    ap.add_argument(
        "--requests", dest="single_event_requests", type=int, help="closed-loop requests"
    )
    ap.add_argument("--rate", dest="open_rate", type=float, help="open-loop req/s (single_event)")
    ap.add_argument("--open-seconds", dest="open_seconds", type=float, help="open loop length")
    ap.add_argument("--bulk-users", dest="bulk_users", type=int, help="concurrent bulk clients")
    ap.add_argument("--clients", dest="fanout_clients", type=int, help="fan-out WS clients")
    ap.add_argument("--fanout-rate", dest="fanout_rate", type=float, help="fan-out events/s")
    ap.add_argument("--fanout-seconds", dest="fanout_seconds", type=float, help="fan-out length")
    ap.add_argument("--noisy-seconds", dest="noisy_seconds", type=float, help="each noisy phase")
    ap.add_argument("--seed", type=int, help="random seed of every scenario (default 42)")
    ap.add_argument("--out-dir", type=Path, default=RESULTS, help="where results go")
    ap.add_argument("--work-dir", type=Path, help="scenario configs and logs (default .data/)")
    ap.add_argument("--name", help="results file name without extension (default: the date)")
    ap.add_argument("--note", action="append", default=[], help="a line for the report's notes")
    return ap.parse_args(argv)


def run(args: argparse.Namespace, target: Target | None = None) -> dict[str, Any]:
    keys = choose(args.scenario)
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
        try:
            runner.sampler.start()
            for key in keys:
                runner.scenario(SCENARIOS[key])
            runner.sampler.stop()
        finally:
            runner.close()
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
    try:
        doc = run(args)
    except CliError as exc:  # the stack refused an admin call: say which, no traceback
        raise SystemExit(f"benchmark: {exc}") from exc
    print(markdown(doc))
    return 0


if __name__ == "__main__":
    sys.exit(main())
