"""Prepared pieces of response heads: status lines, the once-a-second Date line, error responses.

Everything here is computed once (per status, per second, per server) so that encoding a response
head is a join of ready-made bytes.
"""

from __future__ import annotations

import http
import time
from email.utils import formatdate
from typing import Any

#: The one table of reason phrases (status lines, access logs, gunicorn's atoms, the metrics endpoint).
REASONS: dict[int, str] = {status.value: status.phrase for status in http.HTTPStatus}
STATUS_LINES: dict[int, bytes] = {}


def status_text(status: int) -> str:
    """ "404 Not Found"; just "599" for a status without a registered phrase."""
    phrase = REASONS.get(status)
    return f"{status} {phrase}" if phrase else str(status)


def status_line(status: int) -> bytes:
    """b"HTTP/1.1 200 OK\\r\\n", cached per status code."""
    line = STATUS_LINES.get(status)
    if line is None:
        if type(status) is not int or not 100 <= status <= 999:
            raise RuntimeError(f"Invalid HTTP status code {status!r} in response")
        line = b"HTTP/1.1 %d %s\r\n" % (status, REASONS.get(status, "").encode("ascii"))
        STATUS_LINES[status] = line
    return line


for _status in REASONS:
    status_line(_status)


def date_line(now: float | None = None) -> bytes:
    return b"date: " + formatdate(time.time() if now is None else now, usegmt=True).encode() + b"\r\n"


def header_lines(headers: list[tuple[str, str]]) -> bytes:
    """Encode configured `name: value` pairs (server header, --header) once."""
    out = []
    for name, value in headers:
        line = f"{name.strip().lower()}: {value.strip()}\r\n".encode("latin-1")
        if line.count(b"\n") != 1 or line.count(b"\r") != 1:
            raise ValueError(f"header {name!r} contains a line break")
        out.append(line)
    return b"".join(out)


def error_response(status: int, message: str, default_headers: bytes) -> bytes:
    """A complete plain-text response that closes the connection (used for 400/408/431/500/503)."""
    body = message.encode("utf-8")
    return b"".join(
        (
            status_line(status),
            default_headers,
            b"content-type: text/plain; charset=utf-8\r\nconnection: close\r\ncontent-length: ",
            str(len(body)).encode("ascii"),
            b"\r\n\r\n",
            body,
        )
    )


async def service_unavailable(scope: Any, receive: Any, send: Any) -> None:
    """The app a request runs instead of the real one past --limit-concurrency (HTTP/1.1 and HTTP/2
    streams alike; an HTTP/2 stream drops the connection-specific `connection` field)."""
    await send(
        {
            "type": "http.response.start",
            "status": 503,
            "headers": [
                (b"content-type", b"text/plain; charset=utf-8"),
                (b"content-length", b"19"),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": b"Service Unavailable"})
