"""The console build (services/cli/console.py) and rules the console's files keep.

The console is plain ES modules served as files; these tests read them as
text: what the build writes, that nothing points outside the origin (the
system runs air-gapped), that nothing the CSP forbids is in the page, and that
no script writes markup from strings (log content is attacker-controlled).
"""

from __future__ import annotations

import re
import stat
from pathlib import Path

import pytest

from services.cli import console
from services.cli.stack import REPO

SOURCE = REPO / "console"
MODULES = sorted((SOURCE / "assets").glob("*.js"))
HEADERS = REPO / "docker" / "console-headers.conf"


def make_source(root: Path, index: str, files: dict[str, str]) -> Path:
    (root / "assets").mkdir(parents=True)
    (root / "index.html").write_text(index)
    for name, text in files.items():
        (root / "assets" / name).write_text(text)
    return root


def test_build_copies_assets_under_their_hash_and_rewrites_index(tmp_path: Path) -> None:
    src = make_source(
        tmp_path / "src",
        '<link href="/assets/app.css"><script type="module" src="/assets/app.js"></script>',
        {"app.js": "import './b.js';", "b.js": "export {};", "app.css": "body{}"},
    )
    out = tmp_path / "out"
    version = console.build(out, src)
    assert re.fullmatch(r"[0-9a-f]{12}", version)
    assert sorted(p.name for p in (out / "assets" / version).iterdir()) == [
        "app.css",
        "app.js",
        "b.js",
    ]
    index = (out / "index.html").read_text()
    assert f'src="/assets/{version}/app.js"' in index
    assert f'href="/assets/{version}/app.css"' in index
    for path in out.rglob("*"):
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode & 0o004, f"{path} not readable by the gateway's user"


def test_any_change_moves_every_asset(tmp_path: Path) -> None:
    src = make_source(tmp_path / "src", '<script src="/assets/a.js"></script>', {"a.js": "1"})
    first = console.build(tmp_path / "out", src)
    assert console.build(tmp_path / "out", src) == first  # same bytes, same name
    (src / "assets" / "a.js").write_text("2")
    second = console.build(tmp_path / "out", src)
    assert second != first
    assert not (tmp_path / "out" / "assets" / first).exists()  # the old build is replaced


def test_a_missing_asset_fails_the_build(tmp_path: Path) -> None:
    src = make_source(tmp_path / "src", '<script src="/assets/gone.js"></script>', {"a.js": ""})
    with pytest.raises(FileNotFoundError, match=r"gone\.js"):
        console.build(tmp_path / "out", src)


def test_the_real_console_builds(tmp_path: Path) -> None:
    version = console.build(tmp_path / "out", SOURCE)
    index = (tmp_path / "out" / "index.html").read_text()
    assert f"/assets/{version}/app.js" in index
    assert "/assets/app.js" not in index


def test_main_needs_an_output_directory(capsys: pytest.CaptureFixture[str]) -> None:
    assert console.main([]) == 2
    assert "usage" in capsys.readouterr().err


# --- rules the files keep -----------------------------------------------------------


def test_modules_import_only_each_other() -> None:
    names = {p.name for p in MODULES}
    for module in MODULES:
        for spec in re.findall(r"^\s*import\b[^'\"]*['\"]([^'\"]+)['\"]", module.read_text(), re.M):
            assert spec.startswith("./") and spec[2:] in names, f"{module.name} imports {spec}"


def test_nothing_is_loaded_from_another_origin() -> None:
    for path in [SOURCE / "index.html", *(SOURCE / "assets").iterdir()]:
        text = path.read_text()
        for url in re.findall(r"(?:https?:)?//[\w.-]+\.[a-z]{2,}[^\s'\"]*", text):
            # Only the SVG namespace name appears, which is an identifier, not a load.
            assert url == "http://www.w3.org/2000/svg", f"{path.name}: {url}"
        if path.suffix == ".css":
            assert "@import" not in text and "url(" not in text, path.name


def test_no_script_writes_markup_from_strings() -> None:
    sinks = re.compile(
        r"\.(?:inner|outer)HTML\b|insertAdjacentHTML|document\.write|\beval\(|new Function\b"
        r"|createContextualFragment|srcdoc|setHTMLUnsafe"
    )
    for module in MODULES:
        found = sinks.findall(module.read_text())
        assert not found, f"{module.name} uses {found}"


def test_index_has_nothing_the_csp_forbids() -> None:
    index = (SOURCE / "index.html").read_text()
    scripts = re.findall(r"<script\b([^>]*)>(.*?)</script>", index, re.S)
    assert scripts, "the page loads its module"
    for attrs, body in scripts:
        assert "src=" in attrs and not body.strip(), "inline script"
    assert "<style" not in index
    assert not re.search(r"\sstyle\s*=", index), "inline style attribute"
    assert not re.search(r"\son[a-z]+\s*=", index, re.I), "inline event handler"
    assert "javascript:" not in index


def test_headers_are_strict() -> None:
    text = HEADERS.read_text()
    csp = re.search(r'add_header Content-Security-Policy "([^"]+)" always;', text)
    assert csp, "CSP header"
    directives = dict(
        (d.split()[0], d.split()[1:]) for d in (p.strip() for p in csp.group(1).split(";")) if d
    )
    assert directives["default-src"] == ["'none'"]
    assert directives["script-src"] == ["'self'"]
    assert directives["style-src"] == ["'self'"]
    assert directives["connect-src"] == ["'self'"]
    assert directives["frame-ancestors"] == ["'none'"]
    assert directives["require-trusted-types-for"] == ["'script'"]
    assert "unsafe" not in csp.group(1)
    for header in (
        'X-Content-Type-Options "nosniff"',
        'Referrer-Policy "no-referrer"',
        'X-Frame-Options "DENY"',
    ):
        assert f"add_header {header} always;" in text, header


def block(text: str, opening: str) -> str:
    """The body of the nginx block that starts with ``opening`` (braces counted)."""
    start = text.index(opening) + len(opening)
    depth, i = 1, start
    while depth:
        depth += {"{": 1, "}": -1}.get(text[i], 0)
        i += 1
    return text[start : i - 1]


def test_gateway_serves_the_console_with_the_headers_and_cache_rules() -> None:
    template = (REPO / "docker" / "nginx.conf.template").read_text()
    root = block(template, "location / {")
    assert "root ${console_dir};" in root
    assert "gzip on;" in root
    assert "text/javascript js;" in root  # module scripts need a JavaScript type (nosniff)
    index = block(root, "location = / {")
    assert "include ${console_headers};" in index
    assert 'Cache-Control "no-cache"' in index
    assets = block(root, "location ^~ /assets/ {")
    assert "include ${console_headers};" in assets
    assert 'Cache-Control "public, max-age=31536000, immutable"' in assets
