"""One short reason for a failed connection, whatever library raised it."""

from __future__ import annotations

import socket

import httpx
import pytest

from services.cli.errors import Unreachable, network_reason


def chained(outer: BaseException, inner: BaseException) -> BaseException:
    outer.__cause__ = inner
    return outer


@pytest.mark.parametrize(
    ("exc", "reason"),
    [
        (ConnectionRefusedError(111, "Connect call failed ('127.0.0.1', 1)"), "connection refused"),
        (
            chained(
                httpx.ConnectError("[Errno 111] Connection refused"),
                ConnectionRefusedError(111, "Connection refused"),
            ),
            "connection refused",
        ),
        (socket.gaierror(-2, "Name or service not known"), "name or service not known"),
        (httpx.ConnectTimeout("timed out"), "timed out"),
        (TimeoutError(), "timed out"),
        (
            httpx.RemoteProtocolError("Server disconnected\nwithout a response"),
            "Server disconnected",
        ),
    ],
)
def test_network_reason(exc: BaseException, reason: str) -> None:
    assert network_reason(exc) == reason


def test_unreachable_names_the_url() -> None:
    exc = Unreachable("http://127.0.0.1:1", ConnectionRefusedError(111, "x"))
    assert str(exc) == "cannot reach http://127.0.0.1:1: connection refused"
