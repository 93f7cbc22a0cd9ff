"""The running test stack keeps its secrets private: what the real processes wrote."""

from __future__ import annotations

import stat

import pytest

from services.cli.stack import StackConfig

pytestmark = pytest.mark.integration


def mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_data_dir_and_signing_keys_are_owner_only(cfg: StackConfig) -> None:
    assert mode(cfg.data_dir) == 0o700
    keys_dir = cfg.data_dir / "jwt-keys"  # written by the auth service at start-up
    keys = sorted(keys_dir.glob("*.pem"))
    assert keys, f"auth wrote no signing key into {keys_dir}"
    assert mode(keys_dir) == 0o700
    for key in keys:
        assert mode(key) == 0o600, key
