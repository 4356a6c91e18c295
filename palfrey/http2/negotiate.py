"""Which protocol a new connection speaks, with --http2 on: HTTP/1.1 or HTTP/2.

Three ways in (docs/http2.md): ALPN `h2` on a TLS connection (decided in `connection_made`), the
client connection preface `PRI * HTTP/2.0` as the first bytes of a cleartext connection ("prior
knowledge"), and an HTTP/1.1 request with `Upgrade: h2c` and `HTTP2-Settings` (RFC 7540 §3.2),
answered as stream 1 after `101 Switching Protocols`.

`Negotiator` is the transport's protocol only until the first bytes arrive: it creates the HTTP/1.1
protocol at once (so the connection is counted, drained and under the header deadline as always)
and then hands the transport to it, or to an HTTP/2 connection. So an HTTP/1.1 connection on a
server with --http2 runs the plain `HttpProtocol` for every request; the only per-request cost is
the `framing.ignored_upgrade` test HttpProtocol.on_head makes anyway for the h2c case.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

from palfrey.errors import ConfigError
from palfrey.http.protocol import HttpProtocol

if TYPE_CHECKING:
    from palfrey.http.cycle import RequestCycle
    from palfrey.server.state import ServerState

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
H2C_BODY_LIMIT = 1024 * 1024  # an upgrading request's body is held in memory: past this, 413


def require_h2() -> None:
    """--http2 without the h2 package is a configuration error, reported at startup in one line."""
    try:
        import h2  # noqa: F401
    except ImportError:
        raise ConfigError("--http2 needs the h2 package: pip install h2") from None


@dataclass(frozen=True, slots=True)
class Http2Options:
    """The HTTP/2 settings of one server, shared by its connections."""

    max_streams: int


def protocol_factory(
    state: ServerState, max_streams: int, http1: Callable[[ServerState], HttpProtocol] = HttpProtocol
) -> Callable[[], asyncio.Protocol]:
    """The accept loop's protocol factory with --http2 on (`http1`: the HTTP/1.1 protocol class)."""
    options = Http2Options(max_streams)
    return lambda: Negotiator(http1(state), options)


class Negotiator(asyncio.Protocol):
    """A connection's protocol until its first bytes (or its TLS handshake) say which HTTP it speaks."""

    __slots__ = ("http1", "options", "sniffed", "transport")

    def __init__(self, http1: HttpProtocol, options: Http2Options) -> None:
        self.http1 = http1
        self.options = options
        self.sniffed = b""  # the first bytes while they may still be a split preface
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast("asyncio.Transport", transport)
        http1 = self.http1
        http1.connection_made(transport)
        http1.h2c = self.options  # an `Upgrade: h2c` request may switch later
        ssl_object = transport.get_extra_info("ssl_object")
        if ssl_object is not None:  # over TLS only ALPN selects HTTP/2
            if ssl_object.selected_alpn_protocol() == "h2":
                switch_to_h2(http1, b"", self.options)
            else:
                self.transport.set_protocol(http1)

    def data_received(self, data: bytes) -> None:
        if self.sniffed:
            data = self.sniffed + data
        if PREFACE.startswith(data[:24]):
            if len(data) < 24:
                self.sniffed = data  # a preface split across reads
                return
            switch_to_h2(self.http1, data, self.options)
            return
        assert self.transport is not None
        self.transport.set_protocol(self.http1)
        self.http1.data_received(data)

    # Until the first bytes, everything else is the HTTP/1.1 protocol's business.

    def eof_received(self) -> bool | None:
        return self.http1.eof_received()

    def connection_lost(self, exc: Exception | None) -> None:
        self.http1.connection_lost(exc)

    def pause_writing(self) -> None:
        self.http1.pause_writing()

    def resume_writing(self) -> None:
        self.http1.resume_writing()


class H2cRequest:
    """An `Upgrade: h2c` request whose body is being read: it becomes stream 1 once complete.

    It stands in for the request cycle on the HTTP/1.1 protocol (as `cycle` and `parsing`), so the
    parser's body and end-of-message calls, a disconnect or a broken body reach it as they would a
    cycle; only the methods HttpProtocol calls on those paths exist.
    """

    __slots__ = ("body", "headers", "method", "more_body", "options", "protocol", "settings", "target")

    response_complete = False

    def __init__(
        self,
        protocol: HttpProtocol,
        options: Http2Options,
        settings: bytes,
        method: bytes,
        target: bytes,
        headers: list[tuple[bytes, bytes]],
    ) -> None:
        self.protocol = protocol
        self.options = options
        self.settings = settings
        self.method = method
        self.target = target
        self.headers = headers
        self.body: bytearray | None = bytearray()  # None: over H2C_BODY_LIMIT (read and dropped)
        self.more_body = True

    def feed_body(self, data: bytes) -> None:
        body = self.body
        if body is not None:
            body += data
            if len(body) > H2C_BODY_LIMIT:
                self.body = None

    def end_body(self) -> None:
        self.more_body = False
        protocol = self.protocol
        if self.body is None:
            from palfrey.http.head import ParseError

            protocol.cycle = protocol.parsing = None
            protocol._reject(ParseError(413, "h2c upgrade request body too large"))
            return
        switch_to_h2(protocol, b"", self.options, upgrade=self)

    def disconnect(self) -> None:
        self.more_body = False

    def abort_body(self) -> bool:
        self.more_body = False
        return False  # nothing was written: the connection's error response answers


def take_h2c(
    protocol: HttpProtocol, method: bytes, target: bytes, headers: list[tuple[bytes, bytes]]
) -> bool:
    """Called by HttpProtocol.on_head for an ignored upgrade when --http2 is on: is it h2c?"""
    options = protocol.h2c
    if options is None or protocol.scheme != "http" or protocol.cycle is not None:
        return False
    settings = None
    h2c = False
    for name, value in headers:
        if name == b"http2-settings":
            settings = value
        elif name == b"upgrade":
            h2c = h2c or b"h2c" in [token.strip() for token in value.lower().split(b",")]
    if settings is None or not h2c:
        return False
    request = cast("RequestCycle", H2cRequest(protocol, options, settings, method, target, headers))
    protocol.cycle = protocol.parsing = request
    return True


def switch_to_h2(
    http1: HttpProtocol, data: bytes, options: Http2Options, upgrade: H2cRequest | None = None
) -> None:
    """Hand the transport to an HTTP/2 connection; the HTTP/1.1 protocol is done with it."""
    from palfrey.http2.connection import H2Protocol

    state = http1.state
    state.connections.discard(http1)
    http1.last_request = True
    http1.discard_input = True
    http1.deadline = float("inf")
    http1.cycle = http1.parsing = None
    transport = http1.transport
    h2_protocol = H2Protocol(
        state,
        transport,
        client=http1.client,
        server=http1.server,
        scheme=http1.scheme,
        max_streams=options.max_streams,
    )
    transport.set_protocol(h2_protocol)
    if http1.read_paused:
        http1.read_paused = False
        transport.resume_reading()
    if upgrade is None:
        h2_protocol.start(data)
    else:
        assert upgrade.body is not None
        h2_protocol.start_upgraded(
            upgrade.settings, upgrade.method, upgrade.target, upgrade.headers, bytes(upgrade.body)
        )
