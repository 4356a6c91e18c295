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
from typing import TYPE_CHECKING, cast

from palfrey.http.protocol import HttpProtocol
from palfrey.http2.h2c import Http2Options, switch_to_h2

if TYPE_CHECKING:
    from palfrey.server.state import ServerState

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


def prepare_http2() -> None:
    """At server start with --http2: build the HPACK Huffman decode table now (0.1-0.2 s, see
    wire/huffman.py), not in the first request that carries a Huffman-coded string.

    palfrey's own engine (wire/) serves HTTP/2: the h2 package is no longer needed at run time."""
    from palfrey.http2.wire import huffman

    huffman.prepare()


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
