"""README.md's configuration table is generated from the settings classes and must not drift.

Reads files only: the settings classes are inspected, never instantiated, so
neither the network nor this machine's environment plays a part.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

REPO = Path(__file__).resolve().parents[2]
FIX = "run `.venv/bin/python scripts/settings_table.py --write`"


def _load_script() -> ModuleType:
    path = REPO / "scripts" / "settings_table.py"
    spec = importlib.util.spec_from_file_location("settings_table", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def script() -> ModuleType:
    return _load_script()


@pytest.fixture(scope="module")
def readme() -> str:
    return (REPO / "README.md").read_text(encoding="utf-8")


def test_readme_has_the_table_markers_once(script: ModuleType, readme: str) -> None:
    assert readme.count(script.START) == 1, f"README.md needs one {script.START} line"
    assert readme.count(script.END) == 1, f"README.md needs one {script.END} line"
    assert readme.index(script.START) < readme.index(script.END)


def test_settings_table_in_readme_is_current(script: ModuleType, readme: str) -> None:
    generated = script.table()
    current = script.readme_section(readme)
    assert current == generated, (
        f"README.md's configuration table differs from the settings classes: {FIX}"
    )


def test_every_settings_field_is_in_the_table(script: ModuleType) -> None:
    """Each field of every service's settings class appears with its env var and a description."""
    from services.core.settings import CoreSettings

    table = script.table()
    for svc, (module, name) in script.CLASSES.items():
        cls = getattr(importlib.import_module(module), name)
        assert issubclass(cls, CoreSettings), f"{svc}'s settings must subclass CoreSettings"
        for field_name, field in cls.model_fields.items():
            assert f"`LOGSERVER_{field_name.upper()}`" in table, f"{svc}.{field_name}: {FIX}"
            assert field.description, f"{svc}.{field_name} has no Field(description=...)"


def test_core_fields_are_read_by_all_and_secrets_have_no_default(script: ModuleType) -> None:
    rows = {var.strip("`"): (read_by, default) for var, read_by, default, _ in script.rows()}
    assert rows["LOGSERVER_MONGODB_URL"] == ("all", "`mongodb://127.0.0.1:27017`")
    assert rows["LOGSERVER_PORT"][0] == "all"
    assert "`8003` (log)" in rows["LOGSERVER_PORT"][1]
    assert rows["LOGSERVER_JWT_KEYS_DIR"][0] == "auth"
    assert rows["LOGSERVER_BOOTSTRAP_ADMIN_CLIENT_SECRET"][1] == script.REQUIRED_SECRET
    assert rows["LOGSERVER_SQS_ACCESS_KEY_ID"][1] == script.UNSET


def test_write_replaces_only_the_section(script: ModuleType) -> None:
    text = f"intro\n{script.START}\nold table\n{script.END}\noutro\n"
    new = script.replace_section(text, "| new |\n")
    assert new == f"intro\n{script.START}\n| new |\n{script.END}\noutro\n"
    assert script.readme_section(new) == "| new |\n"


# --- code blocks ---------------------------------------------------------------------

COMMANDS = ("make ", "curl ", ".venv/", "websocat ", "redis-cli ", "openssl ", "printf ", "$ ")


def fenced_blocks(text: str) -> list[tuple[str, list[str]]]:
    """(info string, lines) of each fenced code block."""
    blocks: list[tuple[str, list[str]]] = []
    info: str | None = None
    body: list[str] = []
    for line in text.splitlines():
        if line.startswith("```"):
            if info is None:
                info, body = line[3:].strip(), []
            else:
                blocks.append((info, body))
                info = None
        elif info is not None:
            body.append(line)
    assert info is None, "README.md has an unclosed code block"
    return blocks


def test_shell_blocks_are_marked_bash(readme: str) -> None:
    """The examples use bash features (here-strings, $(...), arrays): say which shell."""
    blocks = fenced_blocks(readme)
    assert blocks
    for info, body in blocks:
        assert info not in ("sh", "shell", "console", "zsh"), f"```{info} block: use ```bash"
        if info != "bash":
            commands = [line for line in body if line.lstrip().startswith(COMMANDS)]
            assert not commands, f"```{info} block runs commands, mark it ```bash: {commands}"
