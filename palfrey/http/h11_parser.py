"""The h11 adapter: h11 reads each request line and header block, palfrey's checks do the rest."""

from __future__ import annotations

import re
from typing import Any

import h11

from palfrey.http.body import ChunkedDecoder
from palfrey.http.head import (
    BODY_CHUNKED,
    BODY_LENGTH,
    KNOWN_METHODS,
    ParseError,
    check_head,
    check_method,
    is_token,
    skip_empty_lines,
    unknown_method_status,
)
from palfrey.http.parser_base import Limits, Sink

_HEAD, _LENGTH, _CHUNKED, _STOPPED = range(4)
_FIELD_CTL = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")


class H11Parser:
    """h11 reads each request line and header block; palfrey's own checks and body decoder do the rest.

    A fresh `h11.Connection` per request head keeps h11's state machine out of the response path
    (responses are encoded once, by palfrey, for both parsers). Before h11 sees a head it is checked
    for what h11 tolerates and llhttp does not (bare LF, obs-fold, control characters, repeated
    Content-Length folded into one), so both parsers refuse the same requests.
    """

    __slots__ = (
        "_buffer",
        "_chunked",
        "_head_limit",
        "_incomplete_limit",
        "_leading",
        "_limits",
        "_line",
        "_lines",
        "_remaining",
        "_scanned",
        "_sink",
        "_state",
        "_stop_after",
        "in_head",
    )

    def __init__(self, sink: Sink, limits: Limits, max_incomplete_event_size: int | None = None) -> None:
        self._sink = sink
        self._limits = limits
        self._head_limit = limits.head
        # uvicorn's meaning, which is h11's: a bound on the bytes buffered while a head is still
        # incomplete. A complete head is bounded by `limits.head` only, so a head that arrives in one
        # piece is served whatever this is, as uvicorn serves it.
        self._incomplete_limit = max_incomplete_event_size
        self._buffer = bytearray()
        self._scanned = 0
        self._lines = 0  # complete lines of the head being received
        self._line = 0  # bytes received of its current line
        self._leading = 0
        self._state = _HEAD
        self._remaining = 0
        self._chunked: ChunkedDecoder | None = None
        self._stop_after = False
        self.in_head = False

    def feed(self, data: bytes) -> None:
        while data:
            state = self._state
            if state == _HEAD:
                data = self._feed_head(data)
            elif state == _LENGTH:
                remaining = self._remaining
                if len(data) <= remaining:
                    self._remaining = remaining - len(data)
                    self._sink.on_body(data)
                    data = b""
                else:
                    self._remaining = 0
                    self._sink.on_body(data[:remaining])
                    data = data[remaining:]
                if not self._remaining:
                    self._complete()
            elif state == _CHUNKED:
                assert self._chunked is not None
                data = self._chunked.feed(data)
                if self._chunked.done:
                    self._chunked = None
                    self._complete()
            else:
                return

    def _complete(self) -> None:
        self._state = _STOPPED if self._stop_after else _HEAD
        self._sink.on_message_complete()

    def _feed_head(self, data: bytes) -> bytes:
        buffer = self._buffer
        if not self.in_head:
            if buffer:  # a CR kept back from the previous feed
                data = bytes(buffer) + data
                buffer.clear()
            pos, self._leading = skip_empty_lines(data, self._leading)
            if pos == len(data) or (pos == len(data) - 1 and data[pos] == 13):
                buffer += data[pos:]
                return b""
            self.in_head = True
            data = data[pos:] if pos else data
        buffer += data
        end = buffer.find(b"\r\n\r\n", max(0, self._scanned - 3))
        if end == -1:
            self._check_partial_head(buffer)
            return b""
        head = bytes(buffer[: end + 2])
        rest = bytes(buffer[end + 4 :])
        buffer.clear()
        self._scanned = 0
        self._lines = 0
        self._line = 0
        self._leading = 0
        self.in_head = False
        self._parse_head(head)
        if self._state == _STOPPED:  # an upgrade head: what follows belongs to the next protocol
            self._sink.on_upgrade(rest)
            return b""
        return rest

    def _check_partial_head(self, buffer: bytearray) -> None:
        """Checks on a head still arriving, so that limits hold however the bytes are sliced: each
        byte is looked at once (bare CR/LF, line count), the current line's length is bounded."""
        scanned = self._scanned
        # A CR that ended the previous scan is looked at again, with the byte that follows it.
        start = scanned - 1 if scanned and buffer[scanned - 1] == 13 else scanned
        new = bytes(buffer[start:])
        crlf = new.count(b"\r\n")
        if new.count(b"\n") != crlf or new.count(b"\r") != crlf + new.endswith(b"\r"):
            raise ParseError(400, "Bare CR or LF in request head")
        self._scanned = size = len(buffer)
        self._lines += crlf
        last_lf = new.rfind(b"\n")
        self._line = self._line + size - scanned if last_lf == -1 else len(new) - last_lf - 1
        line = self._line - new.endswith(b"\r")  # a final CR is half of the line's CRLF
        limits = self._limits
        if not self._lines:
            if line > limits.request_line:
                raise ParseError(414, "Request line too long")
        elif line > limits.field_size:
            raise ParseError(431, "Request header field too large")
        if self._lines - 1 > limits.fields:
            raise ParseError(431, "Too many request header fields")
        # A final CR may begin the blank line that ends the head, which the head limit does not count.
        incomplete = self._incomplete_limit
        if size - new.endswith(b"\r") > self._head_limit or (incomplete is not None and size > incomplete):
            raise ParseError(431, "Request head too large")

    def _parse_head(self, head: bytes) -> None:
        limits = self._limits
        if head.count(b"\n") != head.count(b"\r\n") or head.count(b"\r") != head.count(b"\n"):
            raise ParseError(400, "Bare CR or LF in request head")
        lines = head.split(b"\r\n")
        request_line = lines[0]
        if len(request_line) > limits.request_line:
            raise ParseError(414, "Request line too long")
        if len(head) > self._head_limit:
            raise ParseError(431, "Request head too large")
        fields = lines[1:-1]
        if len(fields) > limits.fields:
            raise ParseError(431, "Too many request header fields")
        headers: list[tuple[bytes, bytes]] = []
        for line in fields:
            if len(line) > limits.field_size:
                raise ParseError(431, "Request header field too large")
            if line[:1] in (b" ", b"\t"):
                raise ParseError(400, "Obsolete line folding")
            if _FIELD_CTL.search(line) is not None:
                raise ParseError(400, "Invalid character in header field")
            name, colon, value = line.partition(b":")
            if not colon or not is_token(name):
                raise ParseError(400, "Invalid header field")
            headers.append((name.lower(), value.strip(b" \t")))
        if request_line.partition(b" ")[0] not in KNOWN_METHODS:
            # A well-formed line with an unknown method is 501 before h11 sees it (h11 has no method
            # list); anything else that is not `method SP target SP version` is 400, as in llhttp.
            status = unknown_method_status(request_line)
            raise ParseError(status, "Method not implemented" if status == 501 else "Invalid request line")
        connection = h11.Connection(h11.SERVER, max_incomplete_event_size=len(head) + 4)
        connection.receive_data(head + b"\r\n")
        try:
            event: Any = connection.next_event()
        except h11.RemoteProtocolError as exc:
            raise ParseError(400, str(exc)) from None
        if not isinstance(event, h11.Request):
            raise ParseError(400, "Invalid request line")
        version = event.http_version.decode("ascii")
        method = event.method
        check_method(method)
        framing = check_head(method, version, headers)
        # As with httptools: stop reading after an upgrade head; the sink gets the rest (on_upgrade).
        self._stop_after = framing.upgrade is not None
        self._sink.on_head(method, event.target, version, headers, framing)
        if framing.body == BODY_LENGTH:
            self._remaining = framing.length
            self._state = _LENGTH
        elif framing.body == BODY_CHUNKED:
            self._chunked = ChunkedDecoder(self._sink.on_body, trailer_limit=self._head_limit)
            self._state = _CHUNKED
        else:
            self._complete()
