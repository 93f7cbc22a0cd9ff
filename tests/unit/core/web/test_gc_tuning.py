"""The services' garbage-collector tuning (see services.core.web.app.GC_THRESHOLDS)."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from services.core.web.app import GC_THRESHOLDS, tune_gc


@pytest.fixture
def restore_gc() -> Iterator[None]:
    before = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*before)


def test_tune_gc_freezes_startup_objects_and_raises_thresholds(restore_gc: None) -> None:
    startup_objects = [{"model": i} for i in range(1000)]
    tune_gc()
    assert gc.get_threshold() == GC_THRESHOLDS
    assert gc.get_freeze_count() >= len(startup_objects)
    assert GC_THRESHOLDS[0] > 700  # fewer young-generation passes than Python's default
