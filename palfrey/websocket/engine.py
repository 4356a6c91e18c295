"""What the WebSocket connection needs from a sans-I/O engine (the factory is in `engines.py`).

An engine validates the handshake, turns received bytes into a few plain events and turns outgoing
messages into bytes. Everything about ASGI, queues, flow control, pings and shutdown lives once, in
`palfrey.websocket.protocol` and `palfrey.websocket.cycle`; the two adapters (`websockets_engine`,
`wsproto_engine`) stay thin.

Events are tuples, cheap to build and to dispatch on:

- `(DATA, payload, is_text, fin)`: a piece of a message. `payload` is bytes, or str when the engine
  already decoded text; `is_text` is None on a continuation frame; `fin` ends the message.
- `(PONG, payload)`.
- `(CLOSE, code, reason)`: the client's close frame; the engine has already queued its answer.
- `(FAIL, code, reason)`: the engine failed the connection (protocol error 1002, bad UTF-8 1007,
  too big 1009) and queued its close frame; the TCP connection is to be closed.

Outgoing bytes are lists of chunks; an empty chunk (`EOF`) means "half-close the TCP connection
after these bytes": the WebSocket closing handshake is over from the server's side.
"""

from __future__ import annotations

from typing import Any, Protocol

DATA, PONG, CLOSE, FAIL = range(4)
EOF = b""

Event = tuple[Any, ...]


class HandshakeError(Exception):
    """The upgrade request is not a valid WebSocket handshake: answer with this HTTP status."""

    def __init__(self, status: int, message: str, headers: list[tuple[bytes, bytes]] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or []


class Engine(Protocol):
    def handshake(self, path: str, headers: list[tuple[bytes, bytes]]) -> tuple[str, str | None]:
        """Validate the request; (Sec-WebSocket-Accept, Sec-WebSocket-Extensions or None).

        Raises HandshakeError. Extensions are negotiated here; the subprotocol is the app's choice.
        """
        ...

    def receive(self, data: bytes) -> tuple[list[Event], list[bytes]]: ...

    def send_text(self, text: str) -> list[bytes]: ...

    def send_bytes(self, data: bytes) -> list[bytes]: ...

    def send_ping(self, payload: bytes) -> list[bytes]: ...

    def send_close(self, code: int, reason: str) -> list[bytes]:
        """Start the closing handshake (the client's answer then ends it with EOF)."""
        ...

    def fail(self, code: int, reason: str) -> list[bytes]:
        """Close frame with `code`, then EOF: no more input is processed."""
        ...


def check_key(headers: list[tuple[bytes, bytes]]) -> None:
    """Sec-WebSocket-Key must be base64 of 16 bytes (RFC 6455 §4.2.1); used where an engine does not check."""
    import base64
    import binascii

    keys = [value for name, value in headers if name == b"sec-websocket-key"]
    if len(keys) != 1:
        raise HandshakeError(400, "Missing or repeated Sec-WebSocket-Key")
    try:
        raw = base64.b64decode(keys[0], validate=True)
    except binascii.Error:
        raw = b""
    if len(raw) != 16:
        raise HandshakeError(400, "Invalid Sec-WebSocket-Key")
