"""The web console's files, ready to serve: ``console/`` copied with a content hash.

The console is plain HTML, CSS and ES modules (no bundler, no npm). This
build step only makes long caching safe: every file under ``console/assets``
is copied to ``<out>/assets/<hash>/`` (the hash covers all of them, so any
change moves them all; relative imports between modules keep working), and
``index.html`` is written with its ``/assets/`` references pointing there. The
gateway serves ``/assets/…`` as immutable for a year and ``index.html`` with
``no-cache`` (revalidated by ETag).

Run by ``build_stack`` (``make dev``, the integration tests) into the stack's
data directory, and by the Dockerfile for the console image::

    python -m services.cli.console OUT_DIR
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import sys
from pathlib import Path

SOURCE = Path(__file__).resolve().parents[2] / "console"
ASSET_REF = re.compile(r'(["\'])/assets/([^"\'/]+)\1')


def asset_hash(assets: Path) -> str:
    """A short digest of every asset's relative path and bytes."""
    digest = hashlib.sha256()
    for path in sorted(p for p in assets.rglob("*") if p.is_file()):
        digest.update(path.relative_to(assets).as_posix().encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()[:12]


def rewrite_index(html: str, version: str, available: set[str]) -> str:
    """Point ``"/assets/x"`` at ``"/assets/<version>/x"``; a missing file is an error."""

    def repl(m: re.Match[str]) -> str:
        name = m.group(2)
        if name not in available:
            raise FileNotFoundError(f"index.html references /assets/{name}, which does not exist")
        return f"{m.group(1)}/assets/{version}/{name}{m.group(1)}"

    return ASSET_REF.sub(repl, html)


def build(out: Path, source: Path = SOURCE) -> str:
    """Write the servable console into ``out`` (replaced whole); return the asset version."""
    assets = source / "assets"
    version = asset_hash(assets)
    available = {p.relative_to(assets).as_posix() for p in assets.rglob("*") if p.is_file()}
    html = rewrite_index((source / "index.html").read_text(encoding="utf-8"), version, available)
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(assets, tmp / "assets" / version)
    (tmp / "index.html").write_text(html, encoding="utf-8")
    # Files are served by nginx, which may run as another user: readable by all.
    for path in [tmp, *tmp.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)
    return version


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m services.cli.console OUT_DIR", file=sys.stderr)
        return 2
    version = build(Path(args[0]))
    print(f"console built into {args[0]} (assets/{version}/)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
