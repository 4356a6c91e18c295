"""The `Upgrade: h2c` request (RFC 7540 §3.2) and the switch of a connection to HTTP/2.

`HttpProtocol.on_head` calls `take_h2c` for an upgrade palfrey otherwise ignores, only when
--http2 set `protocol.h2c`. This module imports nothing of the HTTP/1.1 protocol (no import cycle).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

from palfrey.http.pathsend import EXTENSIONS

if TYPE_CHECKING:
    from palfrey.http.cycle import RequestCycle
    from palfrey.http.protocol import HttpProtocol

H2C_BODY_LIMIT = 1024 * 1024  # an upgrading request's body is held in memory: past this, 413


@dataclass(frozen=True, slots=True)
class Http2Options:
    """The HTTP/2 settings of one server, shared by its connections."""

    max_streams: int


class H2cRequest:
    """An `Upgrade: h2c` request whose body is being read: it becomes stream 1 once complete.

    It stands in for the request cycle on the HTTP/1.1 protocol (as `cycle` and `parsing`), so the
    parser's body and end-of-message calls, a disconnect or a broken body reach it as they would a
    cycle; only the methods HttpProtocol calls on those paths exist.
    """

    __slots__ = (
        "body",
        "headers",
        "limit",
        "method",
        "more_body",
        "options",
        "protocol",
        "settings",
        "target",
    )

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
        self.body: bytearray | None = bytearray()  # None: over `limit` (read and dropped)
        body_limit = protocol.state.slow.body_limit  # --limit-request-body, if lower
        self.limit = H2C_BODY_LIMIT if body_limit is None else min(body_limit, H2C_BODY_LIMIT)
        self.more_body = True

    def feed_body(self, data: bytes) -> None:
        body = self.body
        if body is not None:
            body += data
            if len(body) > self.limit:
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
    h2_protocol.extensions = getattr(http1, "extensions", EXTENSIONS)  # TlsHttpProtocol's: `tls` too
    transport.set_protocol(h2_protocol)
    if upgrade is None:
        # The parser calls back into `http1`: a reference cycle that only the cyclic GC frees, ~0.7 KiB
        # per HTTP/2 connection held for as long as no full collection runs (measured by the
        # h2-idle1000 bench row). Prior knowledge and ALPN switch before the parser saw a byte; an
        # h2c upgrade switches from inside the parser's callback, so there the cycle is left to gc.
        http1.parser = None
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
