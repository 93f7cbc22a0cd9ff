import pytest

from services.core import lookupcache
from tests.support.fakes import FakeClock


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    """The clock of the storage-lookup caches (credentials, API keys, tenant policies)."""
    clock = FakeClock()
    monkeypatch.setattr(lookupcache, "time", clock)
    return clock
