"""An HTTP/2 request's head as an ASGI scope: pseudo-header fields to method, scheme, path, authority.

`:authority` becomes a `host` field when the request has none, so apps that read `host` (every
framework) see the same thing over HTTP/1.1 and HTTP/2; proxy headers apply as on HTTP/1.1.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

if TYPE_CHECKING:
    from palfrey.server.state import ServerState

_ASGI = {"version": "3.0", "spec_version": "2.4"}
Fields = list[tuple[bytes, bytes]]


def split_pseudo_headers(headers: Any, scheme: bytes) -> tuple[bytes, bytes, bytes, bytes, Fields]:
    """(method, scheme, path, authority, the other fields) of a decoded HEADERS block."""
    method = path = authority = b""
    fields: list[tuple[bytes, bytes]] = []
    for name, value in headers:
        if name[:1] == b":":
            if name == b":method":
                method = value
            elif name == b":path":
                path = value
            elif name == b":authority":
                authority = value
            elif name == b":scheme":
                scheme = value
        else:
            fields.append((name, value))
    return method, scheme, path, authority, fields


def request_scope(
    state: ServerState,
    client: tuple[str, int] | None,
    server: tuple[str, int | None] | None,
    default_scheme: str,
    method: bytes,
    scheme: bytes,
    target: bytes,
    authority: bytes,
    fields: Fields,
) -> dict[str, Any] | None:
    """The scope of a new stream; None for a request palfrey does not serve (the stream is reset)."""
    raw_path, _, query_string = target.partition(b"?")
    try:
        path = raw_path.decode("ascii")
        method_str = method.decode("ascii")
    except UnicodeDecodeError:
        path = ""
    if not path.startswith("/") or method == b"CONNECT":
        return None
    if 37 in raw_path:
        path = unquote(path)
    if authority and not any(name == b"host" for name, _ in fields):
        fields.insert(0, (b"host", authority))
    root_path = state.root_path
    scope: dict[str, Any] = {
        "type": "http",
        "asgi": _ASGI,
        "http_version": "2",
        "server": server,
        "client": client,
        "scheme": scheme.decode("ascii") if scheme in (b"http", b"https") else default_scheme,
        "method": method_str,
        "root_path": root_path,
        "path": root_path + path if root_path else path,
        "raw_path": root_path.encode("ascii") + raw_path if root_path else raw_path,
        "query_string": query_string,
        "headers": fields,
        "state": state.lifespan_state.copy(),
    }
    if state.proxy is not None:
        state.proxy.apply(scope)
    return scope
