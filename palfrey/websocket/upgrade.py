"""From an upgrade head to a WebSocket protocol: which heads qualify, the scope, the protocol.

Called by `HttpProtocol.on_head` only when the head carries an upgrade (`framing.upgrade`), so ordinary
requests pay nothing here. The HTTP connection is described by `UpgradingConnection` (what is read
from it) rather than imported, so `palfrey.http` and `palfrey.websocket` import each other one way.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from palfrey.http.head import Framing
from palfrey.websocket.protocol import WebSocketProtocol

if TYPE_CHECKING:
    from palfrey.server.state import ServerState

_ASGI = {"version": "3.0", "spec_version": "2.4"}


class UpgradingConnection(Protocol):
    """What `websocket_for` reads from the HTTP connection the upgrade head arrived on."""

    state: ServerState
    cycle: Any  # the request in progress, if any
    pipeline: Any  # requests waiting behind it
    root_path: str
    scheme: str
    server: tuple[str, int | None] | None  # [path, None] on a unix socket (ASGI spec)
    client: tuple[str, int] | None


def websocket_for(
    protocol: UpgradingConnection,
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
