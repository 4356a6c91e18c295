"""Engine adapter over wsproto's `Connection` (the frame layer; the handshake is validated by wsproto's
`H11Handshake` from the already-parsed head).

wsproto reports a frame it cannot parse as a `CloseConnection` event without changing its state, so
a close event while the connection is still OPEN (or LOCAL_CLOSING) is a failure, not the client's
close frame. wsproto does not bound message size: the shared cycle does, and `ServerDeflate`
bounds inflation.
"""

from __future__ import annotations

from collections.abc import Callable

from wsproto.connection import Connection, ConnectionState, ConnectionType
from wsproto.events import BytesMessage, CloseConnection, Ping, Pong, TextMessage
from wsproto.events import Request as WsRequest
from wsproto.handshake import H11Handshake, server_extensions_handshake
from wsproto.utilities import LocalProtocolError, RemoteProtocolError, generate_accept_token

from palfrey.websocket.engine import CLOSE, DATA, EOF, FAIL, PONG, Event, HandshakeError, check_key
from palfrey.websocket.settings import WebSocketSettings
from palfrey.websocket.wsproto_deflate import ServerDeflate

_SERVER = ConnectionType.SERVER
_OPEN = ConnectionState.OPEN
_REMOTE_CLOSING = ConnectionState.REMOTE_CLOSING
_CLOSED = ConnectionState.CLOSED


class WsprotoEngine:
    __slots__ = ("_conn", "_done", "_settings")

    def __init__(self, settings: WebSocketSettings) -> None:
        self._settings = settings
        self._conn: Connection | None = None
        self._done = False  # EOF was sent: no more input is processed

    def handshake(self, path: str, headers: list[tuple[bytes, bytes]]) -> tuple[str, str | None]:
        handshake = H11Handshake(_SERVER)
        try:
            handshake.initiate_upgrade_connection(headers, path)
            request = next((e for e in handshake.events() if isinstance(e, WsRequest)), None)
        except (RemoteProtocolError, LocalProtocolError) as exc:
            hint = getattr(exc, "event_hint", None)
            status = getattr(hint, "status_code", 400)
            raise HandshakeError(status, str(exc), list(getattr(hint, "headers", []) or [])) from None
        if request is None:
            raise HandshakeError(400, "Invalid WebSocket handshake")
        check_key(headers)
        key = next(value for name, value in headers if name == b"sec-websocket-key")
        settings = self._settings
        extensions: list[ServerDeflate] = []
        extensions_header = None
        if settings.per_message_deflate and request.extensions:
            deflate = ServerDeflate(settings.window_bits, settings.mem_level, settings.max_size)
            accepted = server_extensions_handshake(request.extensions, [deflate])  # type: ignore[arg-type]
            if accepted and deflate.enabled():
                extensions.append(deflate)
                extensions_header = accepted.decode("ascii")
        self._conn = Connection(_SERVER, extensions)  # type: ignore[arg-type]
        return generate_accept_token(key).decode("ascii"), extensions_header

    def receive(self, data: bytes) -> tuple[list[Event], list[bytes]]:
        conn = self._conn
        if self._done or conn is None:
            return [], []
        conn.receive_data(data)
        events: list[Event] = []
        out: list[bytes] = []
        for event in conn.events():
            if isinstance(event, TextMessage):
                events.append((DATA, event.data, True, event.message_finished))
            elif isinstance(event, BytesMessage):
                events.append((DATA, bytes(event.data), False, event.message_finished))
            elif isinstance(event, Ping):
                if conn.state is _OPEN:  # wsproto sends nothing but a close while closing
                    out.append(conn.send(event.response()))
            elif isinstance(event, Pong):
                events.append((PONG, bytes(event.payload)))
            elif isinstance(event, CloseConnection):
                state = conn.state
                if state is _REMOTE_CLOSING:  # the client's close frame: answer it, then EOF
                    out.append(conn.send(event.response()))
                    events.append((CLOSE, int(event.code), event.reason or ""))
                elif state is _CLOSED:  # the client's answer to our close frame
                    events.append((CLOSE, int(event.code), event.reason or ""))
                else:  # a frame wsproto could not parse
                    if state is _OPEN:
                        out.append(conn.send(CloseConnection(code=event.code, reason=event.reason)))
                    events.append((FAIL, int(event.code), event.reason or ""))
                self._done = True
                out.append(EOF)
                break
        return events, out

    def send_text(self, text: str) -> list[bytes]:
        assert self._conn is not None
        return [self._conn.send(TextMessage(data=text))]

    def send_bytes(self, data: bytes) -> list[bytes]:
        assert self._conn is not None
        return [self._conn.send(BytesMessage(data=data))]

    def send_ping(self, payload: bytes) -> list[bytes]:
        assert self._conn is not None
        return [self._conn.send(Ping(payload=payload))]

    def send_close(self, code: int, reason: str) -> list[bytes]:
        assert self._conn is not None
        return [self._conn.send(CloseConnection(code=code, reason=reason))]

    def fail(self, code: int, reason: str) -> list[bytes]:
        conn = self._conn
        out: list[bytes] = []
        if conn is not None and conn.state is _OPEN:
            out.append(conn.send(CloseConnection(code=code, reason=reason)))
        self._done = True
        out.append(EOF)
        return out


def factory(settings: WebSocketSettings) -> Callable[[], WsprotoEngine]:
    def new_engine() -> WsprotoEngine:
        return WsprotoEngine(settings)

    return new_engine
