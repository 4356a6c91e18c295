"""Which protocol a new connection speaks, with --http2 on: HTTP/1.1 or HTTP/2.

Three ways in (docs/http2.md): ALPN `h2` on a TLS connection (decided in `connection_made`), the
client connection preface `PRI * HTTP/2.0` as the first bytes of a cleartext connection ("prior
knowledge"), and an HTTP/1.1 request with `Upgrade: h2c` and `HTTP2-Settings` (RFC 7540 §3.2),
answered as stream 1 after `101 Switching Protocols`.

This subclass of the HTTP/1.1 protocol is used only when --http2 is on, so without it the
HTTP/1.1 hot path is exactly what it was; with it, an HTTP/1.1 connection pays one attribute test
per `data_received` until its first request is parsed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from palfrey.errors import ConfigError
from palfrey.http.head import Framing
from palfrey.http.protocol import HttpProtocol

if TYPE_CHECKING:
    from palfrey.server.state import ServerState

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


def require_h2() -> None:
    """--http2 without the h2 package is a configuration error, reported at startup in one line."""
    try:
        import h2  # noqa: F401
    except ImportError:
        raise ConfigError("--http2 needs the h2 package: pip install h2") from None


def protocol_factory(state: ServerState, max_streams: int) -> Callable[[], asyncio.Protocol]:
    """The accept loop's protocol factory with --http2 on."""
    return lambda: NegotiatingProtocol(state, max_streams)


class NegotiatingProtocol(HttpProtocol):
    """An HTTP/1.1 connection that hands itself over to HTTP/2 when the client asks for it."""

    def __init__(self, state: ServerState, max_streams: int) -> None:
        super().__init__(state)
        self.max_streams = max_streams
        self.sniffing = True  # the first bytes may still be the HTTP/2 preface
        self.sniffed = b""
        self.h2c: tuple[bytes, bytes, bytes, list[tuple[bytes, bytes]]] | None = None
        self.h2c_body = bytearray()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        ssl_object = transport.get_extra_info("ssl_object")
        if ssl_object is not None:
            self.sniffing = False  # over TLS only ALPN selects HTTP/2
            if ssl_object.selected_alpn_protocol() == "h2":
                self._switch(b"")

    def data_received(self, data: bytes) -> None:
        if self.sniffing:
            data = self.sniffed + data
            if PREFACE.startswith(data[:24]):
                if len(data) < 24:
                    self.sniffed = data  # a preface split across reads
                    return
                self.sniffing = False
                self._switch(data)
                return
            self.sniffing = False
            self.sniffed = b""
        super().data_received(data)

    # An h2c upgrade: the parser reads the request and its body as for any upgrade palfrey does
    # not take (head.py's `ignored_upgrade`), and this protocol collects them instead of a cycle.

    def on_head(
        self,
        method: bytes,
        target: bytes,
        version: str,
        headers: list[tuple[bytes, bytes]],
        framing: Framing,
    ) -> None:
        self.sniffing = False
        if self.discard_input:
            return  # switched: bytes the parser still had belong to HTTP/2
        if framing.ignored_upgrade and self.scheme == "http" and self.cycle is None:
            settings = _h2c_settings(headers)
            if settings is not None:
                self.h2c = (settings, method, target, headers)
                self.requests += 1
                return
        super().on_head(method, target, version, headers, framing)

    def on_body(self, data: bytes) -> None:
        if self.h2c is not None:
            self.h2c_body += data
        elif not self.discard_input:
            super().on_body(data)

    def on_message_complete(self) -> None:
        upgrade = self.h2c
        if upgrade is not None:
            self.h2c = None
            self._switch(b"", upgrade=(*upgrade, bytes(self.h2c_body)))
        elif not self.discard_input:
            super().on_message_complete()

    def _switch(
        self, data: bytes, upgrade: tuple[bytes, bytes, bytes, list[Any], bytes] | None = None
    ) -> None:
        """Hand the transport to an HTTP/2 connection; this HTTP/1.1 protocol is done with it."""
        from palfrey.http2.connection import H2Protocol

        state = self.state
        state.connections.discard(self)
        self.last_request = True
        self.discard_input = True
        self.deadline = float("inf")
        transport = self.transport
        h2_protocol = H2Protocol(
            state,
            transport,
            client=self.client,
            server=self.server,
            scheme=self.scheme,
            max_streams=self.max_streams,
        )
        transport.set_protocol(h2_protocol)
        if self.read_paused:
            self.read_paused = False
            transport.resume_reading()
        if upgrade is None:
            h2_protocol.start(data)
        else:
            h2_protocol.start_upgraded(*upgrade)


def _h2c_settings(headers: list[tuple[bytes, bytes]]) -> bytes | None:
    """The HTTP2-Settings value of an `Upgrade: h2c` request, or None if it is not one."""
    settings = None
    h2c = False
    for name, value in headers:
        if name == b"http2-settings":
            settings = value
        elif name == b"upgrade":
            h2c = h2c or b"h2c" in [token.strip() for token in value.lower().split(b",")]
    return settings if h2c else None
