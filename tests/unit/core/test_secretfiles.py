"""Secret files are born 0600 in 0700 folders (local files in tmp_path, as the CLI tests do)."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from services.core.secretfiles import private_dir, write_private


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def open_umask() -> Iterator[None]:
    """umask 0: whatever mode a file ends up with, the code chose it."""
    old = os.umask(0)
    yield
    os.umask(old)


@pytest.fixture
def no_chmod(monkeypatch: pytest.MonkeyPatch) -> None:
    """A secret file must not pass through a wider mode first: chmod is not allowed."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"chmod{args}: a secret file must be created with its mode")

    monkeypatch.setattr(os, "chmod", refuse)


def test_write_private_creates_0600(tmp_path: Path, open_umask: None, no_chmod: None) -> None:
    path = tmp_path / "secret.json"
    write_private(path, '{"client_secret": "s"}')
    assert mode(path) == 0o600
    assert path.read_text() == '{"client_secret": "s"}'
    assert [p.name for p in tmp_path.iterdir()] == ["secret.json"]  # no temp file left


def test_write_private_replaces_a_wider_file(tmp_path: Path, open_umask: None) -> None:
    path = tmp_path / "stack.json"
    path.write_text("old")
    path.chmod(0o644)
    write_private(path, b"new")
    assert mode(path) == 0o600
    assert path.read_bytes() == b"new"


def test_private_dir_creates_0700(tmp_path: Path, open_umask: None, no_chmod: None) -> None:
    path = private_dir(tmp_path / "a" / "b")
    assert path.is_dir()
    assert mode(path) == 0o700


def test_private_dir_tightens_an_existing_folder_of_ours(tmp_path: Path) -> None:
    path = tmp_path / "data"
    path.mkdir(mode=0o755)
    path.chmod(0o755)
    private_dir(path)
    assert mode(path) == 0o700
