"""RSA keys for the auth tests, generated in memory once per session."""

from __future__ import annotations

import pytest

from services.auth.keys import generate_pem


@pytest.fixture(scope="session")
def pem_a() -> bytes:
    return generate_pem()


@pytest.fixture(scope="session")
def pem_b() -> bytes:
    return generate_pem()
