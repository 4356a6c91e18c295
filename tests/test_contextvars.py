"""Context variables never leak from one request into the next, even when pipelined.

A pipelined request is started from inside the previous request's task; a task copies the
*current* context, so without care it would inherit what the previous request set (CPython
gh-140947, the reason uvicorn grew --reset-contextvars). Palfrey starts every request task from a
copy of the server's base context, so there is no leak by default; --reset-contextvars makes that
base context empty.
"""

from __future__ import annotations

import re

import pytest

from tests.support import raw_request, run_server

PIPELINE = b"".join(b"GET /%d HTTP/1.1\r\nHost: t\r\n\r\n" % i for i in range(3)) + (
    b"GET /3 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
)


def pipelined_answers(port: int) -> list[bytes]:
    """Bodies of the four pipelined responses (read to the close: they may share one recv)."""
    data = raw_request(port, PIPELINE)
    bodies = []
    while data:
        head, _, rest = data.partition(b"\r\n\r\n")
        length = int(re.search(rb"content-length: (\d+)", head, re.I).group(1))
        bodies.append(rest[:length])
        data = rest[length:]
    return bodies


@pytest.mark.parametrize("http", ["httptools", "h11"])
@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_pipelined_requests_do_not_inherit_context(http: str, loop: str) -> None:
    with run_server(
        "tests.apps.context_app:app", "--http", http, "--loop", loop, "--no-access-log"
    ) as server:
        assert pipelined_answers(server.port) == [b"set-at-import"] * 4


def test_reset_contextvars_starts_each_request_from_an_empty_context() -> None:
    with run_server("tests.apps.context_app:app", "--reset-contextvars", "--no-access-log") as server:
        assert pipelined_answers(server.port) == [b"unset"] * 4
