"""Files that hold secrets (signing keys, credentials, stack configs): owner-only from birth.

A file is created 0600 by ``os.open`` itself, never written first and
``chmod``-ed after (another user could open it in between and keep the
descriptor), and it replaces its target atomically, so rewriting a file that
an older version left 0644 also leaves it 0600. Its folder is 0700.
"""

from __future__ import annotations

import os
import secrets
import stat
from pathlib import Path

FILE_MODE = 0o600
DIR_MODE = 0o700


def private_dir(path: Path) -> Path:
    """Create ``path`` (its parents as usual) as 0700; tighten it if it exists and is ours.

    A folder that belongs to someone else is left alone: e.g. a Kubernetes
    emptyDir is root's, mounted for a non-root process that cannot chmod it.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        path.mkdir(mode=DIR_MODE)
    except FileExistsError:
        info = path.stat()
        mode = stat.S_IMODE(info.st_mode)
        if info.st_uid == os.geteuid() and mode & ~DIR_MODE:
            path.chmod(mode & DIR_MODE)
    return path


def write_private(path: Path, data: bytes | str) -> None:
    """Write ``data`` to ``path`` as a 0600 file, atomically (readers see old or new)."""
    if isinstance(data, str):
        data = data.encode()
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
