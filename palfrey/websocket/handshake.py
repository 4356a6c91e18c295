"""The HTTP bytes of a WebSocket handshake's answer: the 101 response, or an HTTP response given
instead of the upgrade (the `websocket.http.response` extension). Pure functions of their arguments.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from palfrey.http.response import status_line

if TYPE_CHECKING:
    from palfrey.server.state import ServerState


def header_block(
    headers: Iterable[tuple[bytes, bytes]], skip: tuple[bytes, ...] = ()
) -> tuple[bytes, bool, bool]:
    """App headers as bytes (names lowercased), and whether they set Server / Date. No CR/LF allowed."""
    parts: list[bytes] = []
    has_server = has_date = False
    for name, value in headers:
        lname = bytes(name).lower()
        if lname in skip:
            continue
        if lname == b"server":
            has_server = True
        elif lname == b"date":
            has_date = True
        parts.append(lname + b": " + bytes(value) + b"\r\n")
    block = b"".join(parts)
    if block.count(b"\n") != len(parts) or block.count(b"\r") != len(parts):
        raise RuntimeError("Invalid response header: line breaks are not allowed in names or values")
    return block, has_server, has_date


def switching_protocols(
    state: ServerState,
    accept: str,
    extensions: str | None,
    subprotocol: str | None,
    app_headers: Iterable[tuple[bytes, bytes]],
) -> bytes:
    """The 101 response: engine-negotiated fields, the app's subprotocol and extra headers, defaults."""
    block, has_server, has_date = header_block(
        app_headers, (b"sec-websocket-protocol", b"sec-websocket-extensions", b"sec-websocket-accept")
    )
    lines = [
        status_line(101),
        b"upgrade: websocket\r\nconnection: Upgrade\r\nsec-websocket-accept: ",
        accept.encode("ascii"),
        b"\r\n",
    ]
    if extensions:
        lines += (b"sec-websocket-extensions: ", extensions.encode("ascii"), b"\r\n")
    if subprotocol is not None:
        lines += (b"sec-websocket-protocol: ", subprotocol.encode("ascii"), b"\r\n")
    lines += (state.default_headers(has_server, has_date), block, b"\r\n")
    return b"".join(lines)


def response_head(
    state: ServerState, status: int, app_headers: Iterable[tuple[bytes, bytes]], length: int | None
) -> bytes:
    """Head of an HTTP response given instead of the upgrade (always `Connection: close`).

    The app's Content-Length is kept; otherwise `length` is added when known, else the body ends
    with the connection (no chunked coding: WebSocket clients rarely read it).
    """
    app_headers = list(app_headers)
    block, has_server, has_date = header_block(app_headers, (b"connection", b"transfer-encoding"))
    extra = b"connection: close\r\n"
    if length is not None and not any(bytes(name).lower() == b"content-length" for name, _ in app_headers):
        extra += b"content-length: %d\r\n" % length
    return b"".join((status_line(status), state.default_headers(has_server, has_date), block, extra, b"\r\n"))
