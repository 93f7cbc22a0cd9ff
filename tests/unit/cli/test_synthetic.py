"""The synthetic event generator: deterministic, realistic, accepted by the ingest."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

import orjson

from services.cli.synthetic import AUDIT_ACTIONS, LEVELS, EventGenerator
from services.log.events import normalize

BASE = datetime(2026, 3, 1, 12, 0, tzinfo=UTC).timestamp()


def sample(n: int = 2000, seed: int = 7, **kw: float) -> list[dict]:
    return EventGenerator(seed, base_time=BASE, **kw).batch(n)


def test_same_seed_same_events() -> None:
    assert sample(500) == sample(500)


def test_other_seed_other_events() -> None:
    assert sample(200, seed=1) != sample(200, seed=2)


def test_every_event_is_accepted_by_the_ingest_normalizer() -> None:
    for raw in sample(1000):
        event = normalize(orjson.loads(orjson.dumps(raw)), "2026-03-01T12:00:00.000Z")
        assert event["level"] in LEVELS
        assert event["message"]
        assert event["service"]


def test_levels_are_weighted_towards_info() -> None:
    counts = Counter(e["level"] for e in sample(5000))
    assert set(counts) <= set(LEVELS)
    assert counts["INFO"] > counts["WARNING"] > counts["CRITICAL"]
    assert counts["ERROR"] > 0 and counts["DEBUG"] > 0 and counts["CRITICAL"] > 0


def test_audit_events_have_the_audit_fields() -> None:
    audits = [e for e in sample() if "action" in e]
    assert len(audits) > 100
    actions = {a for a, _, _ in AUDIT_ACTIONS}
    for e in audits:
        assert e["action"] in actions
        for key in ("resource_type", "resource_id", "user_id", "ip_address", "user_agent"):
            assert isinstance(e[key], str) and e[key], key
        assert e["resource_id"].startswith(e["resource_type"] + "-")
    assert any("before" in e and "after" in e for e in audits)


def test_cicd_events_have_pipeline_attributes() -> None:
    ci = [e for e in sample() if e["service"] == "ci"]
    assert len(ci) > 50
    for e in ci:
        attrs = e["attributes"]
        assert isinstance(attrs["processId"], int)
        assert attrs["stage"] and attrs["version"].startswith("1.")
        assert attrs["projectId"].startswith("proj-")


def test_several_services_and_repeating_users() -> None:
    events = sample()
    assert len({e["service"] for e in events}) >= 6
    users = Counter(e["user_id"] for e in events if "user_id" in e)
    assert users.most_common(1)[0][1] > 1  # filters on a user find more than one event


def test_timestamps_at_base_or_spread_before_it() -> None:
    assert {e["timestamp"] for e in sample(50)} == {"2026-03-01T12:00:00.000Z"}
    spread = sample(500, spread_seconds=86400)
    stamps = sorted(e["timestamp"] for e in spread)
    assert stamps[0] >= "2026-02-28T12:00:00.000Z"
    assert stamps[-1] <= "2026-03-01T12:00:00.000Z"
    assert len(set(stamps)) > 400


def test_no_ids_so_runs_never_collide() -> None:
    assert all("id" not in e for e in sample(200))
