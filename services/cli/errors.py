"""What the `logserver` command tells a person when it cannot go on: one line, no traceback."""

from __future__ import annotations

import os


class CliError(Exception):
    """A failure the user can act on; `main` prints ``logserver: <message>`` and exits 1."""


class Unreachable(CliError):
    """The server could not be reached at all (a retry may help, unlike a refusal)."""

    def __init__(self, url: str, exc: BaseException) -> None:
        super().__init__(f"cannot reach {url}: {network_reason(exc)}")


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in seen:
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen


def network_reason(exc: BaseException) -> str:
    """A short reason for a failed connection: ``connection refused``, ``timed out``, ..."""
    for cause in _chain(exc):
        if isinstance(cause, TimeoutError) or "Timeout" in type(cause).__name__:
            return "timed out"
        if isinstance(cause, OSError):
            # asyncio words a refusal as "Connect call failed (...)"; the errno is plainer.
            text = os.strerror(cause.errno) if cause.errno and cause.errno > 0 else cause.strerror
            if text:
                return text[0].lower() + text[1:]
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
