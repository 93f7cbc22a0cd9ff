"""Print the configuration table of README.md from the services' settings classes.

    .venv/bin/python scripts/settings_table.py           print the markdown table
    .venv/bin/python scripts/settings_table.py --write   rewrite the README section in place
    .venv/bin/python scripts/settings_table.py --check   exit 1 if the README section is stale

The table is generated, never edited by hand: ``CoreSettings``
(services/core/settings.py) holds what every service reads, and each
service's subclass (services/<name>/settings.py) adds its own fields or
changes a default. ``tests/unit/test_readme.py`` fails when README.md and
this output differ. Nothing here instantiates a settings class, so the
environment of the machine never leaks into the table.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from annotated_types import Ge, Gt, Le, Lt  # noqa: E402
from pydantic import SecretStr  # noqa: E402
from pydantic.fields import FieldInfo  # noqa: E402
from pydantic_core import PydanticUndefined  # noqa: E402

README = REPO / "README.md"
START = "<!-- settings-table:start -->"
END = "<!-- settings-table:end -->"
SERVICES = ("auth", "tenant", "log", "worker", "broadcast")
CORE = ("services.core.settings", "CoreSettings")
CLASSES = {
    "auth": ("services.auth.settings", "AuthSettings"),
    "tenant": ("services.tenant.settings", "TenantSettings"),
    "log": ("services.log.settings", "LogSettings"),
    "worker": ("services.worker.settings", "WorkerSettings"),
    "broadcast": ("services.broadcast.settings", "BroadcastSettings"),
}
REQUIRED_SECRET = "(none — required in production)"
UNSET = "(unset)"


def _load(module: str, name: str) -> type:
    return getattr(importlib.import_module(module), name)


def _is_secret(field: FieldInfo) -> bool:
    annotation = field.annotation
    args = getattr(annotation, "__args__", ()) or ()
    return annotation is SecretStr or SecretStr in args


def env_name(cls: type, name: str, field: FieldInfo) -> str:
    alias = field.validation_alias or field.alias
    if isinstance(alias, str):
        return alias.upper()
    prefix = cls.model_config.get("env_prefix", "")
    return f"{prefix}{name}".upper()


def format_default(field: FieldInfo) -> str:
    if field.default is PydanticUndefined and field.default_factory is None:
        return REQUIRED_SECRET if _is_secret(field) else "(none — required)"
    value: Any = field.default if field.default_factory is None else field.default_factory()
    if value is None:
        return REQUIRED_SECRET if _is_secret(field) else UNSET
    if isinstance(value, SecretStr):
        return "(set, hidden)"
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, Path):
        text = value.as_posix()
    else:
        text = str(value)
    return f"`{text}`" if text else '`""`'


def _bound(number: Any) -> str:
    return str(number) if isinstance(number, int) else f"{number:g}"


def format_bounds(field: FieldInfo) -> str:
    lo = hi = None
    lo_open = hi_open = False
    for item in field.metadata:
        if isinstance(item, Ge):
            lo = item.ge
        elif isinstance(item, Gt):
            lo, lo_open = item.gt, True
        elif isinstance(item, Le):
            hi = item.le
        elif isinstance(item, Lt):
            hi, hi_open = item.lt, True
    if lo is not None and hi is not None and not lo_open and not hi_open:
        return f"{_bound(lo)}\N{EN DASH}{_bound(hi)}"
    parts = []
    if lo is not None:
        parts.append(f"{'>' if lo_open else '≥'} {_bound(lo)}")
    if hi is not None:
        parts.append(f"{'<' if hi_open else '≤'} {_bound(hi)}")
    return ", ".join(parts)


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def rows() -> list[tuple[str, str, str, str]]:
    """(env var, read by, default, description) for every setting, core fields first."""
    core = _load(*CORE)
    classes = {svc: _load(*CLASSES[svc]) for svc in SERVICES}
    names: list[str] = list(core.model_fields)
    for svc in SERVICES:
        names += [n for n in classes[svc].model_fields if n not in names]

    out = []
    for name in names:
        readers = [svc for svc in SERVICES if name in classes[svc].model_fields]
        fields = {svc: classes[svc].model_fields[name] for svc in readers}
        owner = core if name in core.model_fields else classes[readers[0]]
        base = owner.model_fields[name]

        defaults: dict[str, list[str]] = {}
        for svc in readers:
            defaults.setdefault(format_default(fields[svc]), []).append(svc)
        if len(defaults) == 1:
            default = next(iter(defaults))
        else:
            default = ", ".join(f"{d} ({', '.join(svcs)})" for d, svcs in defaults.items())

        description = base.description or ""
        if name not in core.model_fields:
            seen = []
            for svc in readers:
                text = fields[svc].description or ""
                if text and text not in seen:
                    seen.append(text)
            description = " / ".join(seen)
        bounds = format_bounds(base)
        if bounds:
            description = f"{description} Allowed: {bounds}."

        read_by = "all" if len(readers) == len(SERVICES) else ", ".join(readers)
        out.append((f"`{env_name(owner, name, base)}`", read_by, default, _cell(description)))
    return out


def table() -> str:
    lines = [
        "| variable | read by | default | description |",
        "|---|---|---|---|",
    ]
    lines += [f"| {v} | {r} | {_cell(d)} | {desc} |" for v, r, d, desc in rows()]
    return "\n".join(lines) + "\n"


def readme_section(text: str) -> str:
    """The text between the markers of README.md (without the marker lines)."""
    try:
        start = text.index(START) + len(START)
        end = text.index(END, start)
    except ValueError:
        raise SystemExit(f"README.md lacks the markers {START} … {END}") from None
    return text[start:end].strip("\n") + "\n"


def replace_section(text: str, new: str) -> str:
    start = text.index(START) + len(START)
    end = text.index(END, start)
    return text[:start] + "\n" + new + text[end:]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--write", action="store_true", help="rewrite the README.md section")
    mode.add_argument("--check", action="store_true", help="exit 1 if README.md is stale")
    args = parser.parse_args(argv)
    generated = table()
    if args.write or args.check:
        text = README.read_text(encoding="utf-8")
        current = readme_section(text)
        if args.check:
            if current != generated:
                print(
                    "README.md settings table is stale: run "
                    "`.venv/bin/python scripts/settings_table.py --write`",
                    file=sys.stderr,
                )
                return 1
            return 0
        if current != generated:
            README.write_text(replace_section(text, generated), encoding="utf-8")
            print("README.md: settings table updated")
        else:
            print("README.md: settings table already up to date")
        return 0
    sys.stdout.write(generated)
    return 0


if __name__ == "__main__":
    sys.exit(main())
