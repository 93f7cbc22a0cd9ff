"""`logserver` argument handling: help, version, hidden internals, refusing half credentials.

Nothing here reaches a network: every case stops before a request is made.
"""

from __future__ import annotations

import importlib.metadata
import sys
from pathlib import Path

import pytest

import services.cli
from services.cli import token as token_module
from services.cli.errors import CliError
from services.cli.main import build_parser, main
from services.cli.token import load_credential


@pytest.fixture(autouse=True)
def no_credential_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("LOGSERVER_CLIENT_ID", "LOGSERVER_CLIENT_SECRET", "LOGSERVER_URL"):
        monkeypatch.delenv(var, raising=False)


def test_version_comes_from_the_package_metadata(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.strip() == (
        f"logserver {importlib.metadata.version('logserver')}"
    )


def test_help_describes_the_command_and_lists_only_public_commands(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    assert "multi-tenant log server" in out
    assert "Entry point" not in out
    for command in ("provision", "dev", "token", "tail", "generate"):
        assert f"    {command} " in out, command
    assert "ready" not in out
    assert "SUPPRESS" not in out


def test_ready_is_not_a_logserver_command(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args(["ready", "stack.json", "--started", "1"])
    assert exit_info.value.code == 2
    assert "'ready'" in capsys.readouterr().err


def test_token_with_a_client_id_but_no_secret_refuses(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Even with a dev admin credential on disk, it is not used in place of the missing secret.
    admin = tmp_path / "admin-credentials.json"
    admin.write_text('{"client_id": "admin", "client_secret": "admin-secret"}')
    monkeypatch.setattr(token_module, "DEV_ADMIN_CREDENTIALS", admin)

    def no_request(*args: object) -> None:
        raise AssertionError("no token may be requested")

    monkeypatch.setattr(token_module, "fetch_token", no_request)
    assert main(["token", "--client-id", "x"]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    (line,) = captured.err.splitlines()
    assert line.startswith("logserver: ")
    assert "--client-secret" in line and "LOGSERVER_CLIENT_SECRET" in line


def test_the_secret_may_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOGSERVER_CLIENT_SECRET", "s")
    assert load_credential("x", None, None) == ("x", "s")
    monkeypatch.setenv("LOGSERVER_CLIENT_ID", "y")
    assert load_credential(None, None, None) == ("y", "s")


def test_a_secret_without_an_id_refuses() -> None:
    with pytest.raises(CliError, match="--client-id"):
        load_credential(None, "s", None)


def test_no_credential_at_all_says_how_to_get_one(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(token_module, "DEV_ADMIN_CREDENTIALS", tmp_path / "missing.json")
    with pytest.raises(CliError, match="make dev"):
        load_credential(None, None, None)


def test_a_broken_credentials_file_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "creds.json"
    path.write_text("{not json")
    with pytest.raises(CliError, match="cannot read a client_id"):
        load_credential(None, None, path)


def test_tail_rejects_a_malformed_attr(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["tail", "--client-id", "a", "--client-secret", "b", "--attr", "stage"])
    assert code == 1
    assert "key=value" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("command", "missing"),
    [
        ("dev", "services.cli.stack"),
        ("provision", "services.cli.devstack"),
        ("dev", "honcho.manager"),
    ],
)
def test_dev_stack_commands_say_so_when_the_dev_stack_is_not_installed(
    command: str, missing: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """As in the runtime image: no dev stack modules, or no honcho (devstack extra)."""
    monkeypatch.setitem(sys.modules, missing, None)  # makes `import` fail: not installed
    for name in ("stack", "devstack"):
        monkeypatch.delattr(services.cli, name, raising=False)
    assert main([command]) == 1
    err = capsys.readouterr().err
    assert f"`logserver {command}` runs the local dev stack" in err
    assert f"({missing} is missing)" in err and "devstack extra" in err


def test_token_works_without_the_dev_stack(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "services.cli.stack", None)
    monkeypatch.delitem(sys.modules, "services.cli.token")
    monkeypatch.delattr(services.cli, "token")
    import services.cli.token as reloaded

    assert reloaded.DEV_ADMIN_CREDENTIALS.name == "admin-credentials.json"
