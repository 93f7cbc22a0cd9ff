"""`logserver dev`'s platform-admin credential file (kept in tmp_path)."""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from services.cli import devstack


@pytest.fixture
def data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    data = tmp_path / ".data"
    monkeypatch.setattr(devstack, "DATA", data)
    monkeypatch.setattr(devstack, "CREDENTIALS", data / "admin-credentials.json")
    for var in ("LOGSERVER_BOOTSTRAP_ADMIN_CLIENT_ID", "LOGSERVER_BOOTSTRAP_ADMIN_CLIENT_SECRET"):
        monkeypatch.delenv(var, raising=False)
    old = os.umask(0)  # the modes below are the code's choice, not the umask's
    yield data
    os.umask(old)


def test_admin_credential_is_created_0600_in_a_0700_folder(
    data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the credential file must be created 0600, not chmod-ed after")

    monkeypatch.setattr(os, "chmod", refuse)
    client_id, secret = devstack.admin_credential()
    path = data / "admin-credentials.json"
    assert json.loads(path.read_text()) == {"client_id": client_id, "client_secret": secret}
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    assert devstack.admin_credential() == (client_id, secret)  # read back, not regenerated


def test_the_ready_step_runs_this_module_not_a_logserver_command(tmp_path: Path) -> None:
    stack_json = tmp_path / "stack.json"
    argv = devstack.ready_command(stack_json, 1234.5)
    assert argv[1:3] == ["-m", "services.cli.devstack"]
    args = devstack._ready_parser().parse_args(argv[3:])
    assert (args.stack_file, args.started) == (stack_json, 1234.5)
