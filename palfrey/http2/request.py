"""An HTTP/2 request's head as an ASGI scope: pseudo-header fields to method, scheme, path, authority.

`:authority` becomes a `host` field when the request has none, so apps that read `host` (every
framework) see the same thing over HTTP/1.1 and HTTP/2; proxy headers apply as on HTTP/1.1.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

if TYPE_CHECKING:
    from palfrey.server.state import ServerState

_ASGI = {"version": "3.0", "spec_version": "2.4"}
Fields = list[tuple[bytes, bytes]]


_PSEUDO = frozenset((b":method", b":scheme", b":path", b":authority"))
# RFC 9113 §8.2.2: fields that only mean something to one HTTP/1.1 hop (`te` is checked apart).
_CONNECTION_SPECIFIC = frozenset(
    (b"connection", b"keep-alive", b"proxy-connection", b"transfer-encoding", b"upgrade")
)
# RFC 9113 §8.2.1: a name has no controls, spaces, uppercase or bytes past 0x7e; a value has no
# NUL, CR or LF and no leading or trailing space or tab.
_BAD_NAME = re.compile(rb"[\x00-\x20A-Z\x7f-\xff]")
_BAD_VALUE = re.compile(rb"[\x00\r\n]|^[ \t]|[ \t]$")


def split_pseudo_headers(headers: Any, scheme: bytes) -> tuple[bytes, bytes, bytes, bytes, Fields] | None:
    """(method, scheme, path, authority, the other fields) of a decoded HEADERS block, or None for
    a malformed request (RFC 9113 §8.1.1, §8.2, §8.3.1), which is reset on its stream alone.

    The engine does not validate fields (h2 would end the whole connection); this walk is the
    one that builds the scope anyway.
    """
    method = path = authority = b""
    seen: set[bytes] = set()
    fields: list[tuple[bytes, bytes]] = []
    bad_name = _BAD_NAME.search
    bad_value = _BAD_VALUE.search
    for name, value in headers:
        if value and bad_value(value) is not None:
            return None
        if name[:1] == b":":
            if fields or name not in _PSEUDO or name in seen:
                return None  # after a regular field, unknown (:protocol, :status) or repeated
            seen.add(name)
            if name == b":method":
                method = value
            elif name == b":path":
                path = value
            elif name == b":authority":
                authority = value
            else:
                scheme = value
            continue
        if not name or bad_name(name) is not None or name in _CONNECTION_SPECIFIC:
            return None
        if name == b"te" and value.lower() != b"trailers":
            return None
        fields.append((name, value))
    if not method or not path or b":scheme" not in seen:
        return None
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


def content_length(fields: Fields) -> int | None:
    """The request's content-length: None without one, -1 when unreadable or given twice with
    different values (RFC 9110 §8.6: a malformed request, reset on its own stream)."""
    length: int | None = None
    for name, value in fields:
        if name == b"content-length":
            if not value.isdigit() or (length is not None and int(value) != length):
                return -1
            length = int(value)
    return length
