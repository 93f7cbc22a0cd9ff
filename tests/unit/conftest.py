"""Fixtures shared by the unit tests of several packages."""

from __future__ import annotations

import pytest

from services.auth.keys import generate_pem


# RSA keys, generated in memory once per session (the auth and the token tests use them).
@pytest.fixture(scope="session")
def pem_a() -> bytes:
    return generate_pem()


@pytest.fixture(scope="session")
def pem_b() -> bytes:
    return generate_pem()
