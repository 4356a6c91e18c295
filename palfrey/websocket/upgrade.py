"""From an upgrade head to a WebSocket protocol: which heads qualify, the scope, the handshake's HTTP bytes.

Called by `HttpProtocol.on_head` only when the head carries an upgrade (`framing.upgrade`), so ordinary
requests pay nothing here.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from palfrey.http.head import Framing
from palfrey.http.response import status_line

if TYPE_CHECKING:
    from palfrey.http.protocol import HttpProtocol
    from palfrey.server.state import ServerState
    from palfrey.websocket.protocol import WebSocketProtocol

_ASGI = {"version": "3.0", "spec_version": "2.4"}


def websocket_for(
    protocol: HttpProtocol,
    method: bytes,
    version: str,
    headers: list[tuple[bytes, bytes]],
    framing: Framing,
    path: str,
    raw_path: bytes,
    query_string: bytes,
) -> WebSocketProtocol | None:
    """The protocol that takes over this connection, or None to serve the request as plain HTTP.

    A handshake is a GET on HTTP/1.1 (RFC 9110 §7.8: Upgrade in HTTP/1.0 is ignored) whose Upgrade
    names `websocket`, on a connection with no earlier response still in progress.
    """
    if method != b"GET" or version != "1.1" or framing.upgrade is None:
        return None
    if b"websocket" not in [token.strip().lower() for token in framing.upgrade.split(b",")]:
        return None
    if protocol.cycle is not None or protocol.pipeline:
        return None
    from palfrey.websocket.protocol import WebSocketProtocol

    state = protocol.state
    subprotocols: list[str] = []
    for name, value in headers:
        if name == b"sec-websocket-protocol":
            subprotocols.extend(p.strip() for p in value.decode("latin-1").split(",") if p.strip())
    root_path = protocol.root_path
    scope: dict[str, Any] = {
        "type": "websocket",
        "asgi": _ASGI,
        "http_version": version,
        "scheme": "wss" if protocol.scheme == "https" else "ws",
        "server": protocol.server,
        "client": protocol.client,
        "root_path": root_path,
        "path": root_path + path if root_path else path,
        "raw_path": root_path.encode("ascii") + raw_path if root_path else raw_path,
        "query_string": query_string,
        "headers": headers,
        "subprotocols": subprotocols,
        "state": state.lifespan_state.copy(),
        "extensions": {"websocket.http.response": {}},
    }
    if state.proxy is not None:
        state.proxy.apply(scope)
    target = raw_path + b"?" + query_string if query_string else raw_path
    return WebSocketProtocol(state, scope, target.decode("ascii"))


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
