"""`logserver generate`: posting the synthetic events (no network: a mock transport
answers), its summary, progress and arguments."""

from __future__ import annotations

import orjson
import pytest

from services.cli.generate import Progress, Result, generate
from services.cli.main import build_parser


def test_result_summary() -> None:
    summary = Result(sent=1000, requests=2, seconds=0.5).as_dict()
    assert summary["events_per_second"] == 2000.0
    assert summary["errors"] == 0


def test_progress_disabled_writes_nothing(capsys) -> None:
    Progress(10, enabled=False).update(5, force=True)
    assert capsys.readouterr().err == ""


def test_cli_parses_generate() -> None:
    args = build_parser().parse_args(
        ["generate", "--tenant", "acme", "--count", "5000", "--seed", "3", "--batch-size", "100"]
    )
    assert args.command == "generate"
    assert (args.tenant, args.count, args.seed, args.batch_size) == ("acme", 5000, 3, 100)
    assert args.rate is None and args.spread == 0.0


# --- backing off on 429 ------------------------------------------------------------


def _limited_server(refusals: int, retry_after: str = "0.1"):
    """A fake log service answering the first ``refusals`` bulk posts with 429."""
    import httpx

    seen: list[int] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(len(orjson.loads(request.content)))
        if len(seen) <= refusals:
            return httpx.Response(
                429,
                headers={"Retry-After": retry_after},
                json={"detail": "over its ingest rate of 10 events/s"},
            )
        return httpx.Response(202, json={"accepted": seen[-1]})

    return httpx.MockTransport(handle), seen


async def test_429_is_waited_out_said_once_and_not_an_error() -> None:
    transport, seen = _limited_server(refusals=3)
    notes: list[str] = []
    result = await generate(
        "http://logserver",
        lambda: "token",
        count=10,
        batch_size=10,
        concurrency=1,
        progress=False,
        transport=transport,
        notify=notes.append,
    )
    assert result.sent == 10 and result.errors == 0 and result.rate_limited == 3
    assert len(seen) == 4  # the same batch, sent again after each Retry-After
    assert len(notes) == 1  # said once, not for every refusal
    assert "rate limited" in notes[0] and "backing off 0.1 s" in notes[0]
    assert "10 events/s" in notes[0]


async def test_a_429_asking_for_hours_ends_the_run_with_the_reason() -> None:
    transport, _ = _limited_server(refusals=1, retry_after="36000")
    with pytest.raises(RuntimeError, match="refuses more events for 36,000 s: over its"):
        await generate(
            "http://logserver",
            lambda: "token",
            count=5,
            progress=False,
            transport=transport,
            notify=lambda message: None,
        )
