"""The two parser adapters: httptools (llhttp, fast) and h11 (pure Python).

Each turns bytes into the same three calls on its sink (the connection protocol):
`on_head(method, target, version, headers, framing)`, `on_body(data)`, `on_message_complete()`,
and raises `ParseError` for anything it will not pass on. Limits hold however the bytes arrive.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Protocol

import h11

from palfrey.http.body import ChunkedDecoder
from palfrey.http.head import (
    BODY_CHUNKED,
    BODY_LENGTH,
    BODY_NONE,
    KNOWN_METHODS,
    MAX_UNKNOWN_METHOD,
    Framing,
    ParseError,
    check_head,
    check_method,
    is_token,
    method_status,
    skip_empty_lines,
    unknown_method_status,
)

try:
    import httptools
except ImportError:  # pragma: no cover - depends on the installed extras
    httptools = None  # type: ignore[assignment]


DEFAULT_HEAD_LIMIT = 32768  # nginx's default ceiling (4 x 8 KiB buffers); h11 and Node use 16 KiB


@dataclass(frozen=True, slots=True)
class Limits:
    """Request-head limits, the same for both parsers (gunicorn's names, plus the whole head's size).

    `head` bounds the request line and field lines with their CRLFs (the blank line that ends the head
    is not counted), and a chunked body's trailer section.
    """

    request_line: int
    fields: int
    field_size: int
    head: int = DEFAULT_HEAD_LIMIT


class Sink(Protocol):
    def on_head(
        self,
        method: bytes,
        target: bytes,
        version: str,
        headers: list[tuple[bytes, bytes]],
        framing: Framing,
    ) -> None: ...

    def on_body(self, data: bytes) -> None: ...

    def on_message_complete(self) -> None: ...

    def on_upgrade(self, rest: bytes) -> None: ...


_CR_LF = (13, 10)


class HttptoolsParser:
    """llhttp via httptools: strict by default; this adds limits and the shared head policy.

    Three things llhttp does differently are evened out here: it skips bare CR/LF before a request
    line (checked at message boundaries with `skip_empty_lines`); it only reports complete header
    fields, so an endless field is bounded by counting the bytes of the current line between feeds;
    and it does not recognise `chunked` followed by a tab, which is valid OWS: such a body is read by
    llhttp as raw bytes and decoded by `ChunkedDecoder`, then a fresh llhttp parser takes over.
    """

    __slots__ = (
        "_after_cr",
        "_begun",
        "_body_chunks",
        "_body_left",
        "_decoder",
        "_empty_lines",
        "_error",
        "_field_size",
        "_first_line",
        "_head_bytes",
        "_head_limit",
        "_headers",
        "_ignored_upgrade",
        "_limits",
        "_line",
        "_max_fields",
        "_method_error",
        "_parser",
        "_prior",
        "_rest",
        "_sink",
        "_start",
        "_te_tab",
        "_upgraded",
        "_url",
        "between",
        "in_head",
    )

    def __init__(self, sink: Sink, limits: Limits) -> None:
        self._sink = sink
        self._limits = limits
        self._field_size = limits.field_size  # read per header field: plain attributes
        self._max_fields = limits.fields
        self._parser = httptools.HttpRequestParser(self)
        self._url = b""
        self._headers: list[tuple[bytes, bytes]] = []
        self._head_bytes = 0
        self._prior = 0  # bytes of the current head fed before this feed (heads in several feeds only)
        self._head_limit = limits.head
        self._line = 0  # bytes of the head line being received (request line or field line)
        self._error: ParseError | None = None
        self._start = b""
        self._method_error = False  # llhttp refused the method; waiting to see where it ends
        self._upgraded = False
        self._begun = 0  # messages begun during the current feed
        self._first_line = True
        self._after_cr = False  # the previous feed ended with a CR at a message boundary
        self._empty_lines = 0
        self._te_tab = False
        self._ignored_upgrade: Framing | None = None  # llhttp will stop after this plain request's head
        # The body of an ignored upgrade, read here since llhttp skips it: bytes left, or a decoder.
        self._body_left = 0
        self._body_chunks: ChunkedDecoder | None = None
        self._decoder: ChunkedDecoder | None = None
        self._rest: bytes | None = None
        self.between = True  # at a message boundary: no byte of the next request seen yet
        self.in_head = False

    def feed(self, data: bytes) -> None:
        if self._upgraded:
            if self._ignored_upgrade is not None:
                self._read_body(data)
            return
        if self._method_error:
            self._start += data[: self._limits.request_line + 2 - len(self._start)]
            self._method_verdict()
            return
        at_boundary = self.between
        if at_boundary and (self._after_cr or data[0] in _CR_LF):
            data = self._skip_empty_lines(data)
            if not data:
                return
        head_before = self.in_head
        self._begun = 0
        if not head_before:
            # To tell 501 from 400 if llhttp rejects the method, and (its length) to bound the head.
            self._start = data
        else:  # a head in several feeds: what came before counts towards the head limit
            self._prior = self._head_bytes + len(data)
            before = self._start
            if len(before) < MAX_UNKNOWN_METHOD + 2:
                # llhttp refuses an unknown method within its first dozen bytes, so this prefix is all
                # an earlier feed can hold of a refused request line; the failing feed is added whole.
                self._start += data[: MAX_UNKNOWN_METHOD + 2 - len(before)]
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade as exc:
            # llhttp cannot resume after an upgrade head: the bytes after it belong to the next
            # protocol (a WebSocket), or are ignored when the request is served as plain HTTP.
            offset = exc.args[0] if exc.args and isinstance(exc.args[0], int) else len(data)
            if self._ignored_upgrade is not None:
                self._read_on(data[offset:])
                return
            self._upgraded = True
            self._sink.on_upgrade(data[offset:])
            return
        except httptools.HttpParserInvalidMethodError:
            # llhttp rejects an unknown method at its first odd byte; whether that is an unknown
            # method (501) or garbage (400) is only known once the token ends, as h11 sees it.
            self._method_error = True
            self.in_head = True
            self._start = ((before + data) if head_before else data)[: self._limits.request_line + 2]
            self._method_verdict()
            return
        except httptools.HttpParserError as exc:
            if self._error is not None:
                raise self._error from None
            raise ParseError(400, str(exc) or "Invalid HTTP request") from None
        if self._rest is not None:
            self._restart()
            return
        if self.in_head:
            self._check_partial_head(data, head_before, at_boundary)
        elif data[-1] == 13 and self.between:
            self._after_cr = True

    def _skip_empty_lines(self, data: bytes) -> bytes:
        if self._after_cr:
            self._after_cr = False
            data = b"\r" + data
        pos, self._empty_lines = skip_empty_lines(data, self._empty_lines)
        if pos == len(data) - 1 and data[pos] == 13:
            self._after_cr = True  # half of a CRLF: llhttp does not need to see it
            return b""
        return data[pos:] if pos else data

    def _check_partial_head(self, data: bytes, head_before: bool, at_boundary: bool) -> None:
        """Bound a head that is still incomplete after this feed: llhttp does not buffer it, but
        httptools accumulates an unfinished field, so lines and the whole head are counted here."""
        limits = self._limits
        last_lf = data.rfind(b"\n")
        begun = self._begun
        if not head_before and begun == 1 and at_boundary:  # the head starts with this feed
            self._head_bytes = self._line = 0
            self._first_line = True
        if begun == 0 or (begun == 1 and at_boundary):  # every byte of the head so far is known
            self._head_bytes += len(data)
            if last_lf == -1:
                self._line += len(data)
            else:
                self._line = len(data) - last_lf - 1
                self._first_line = False
        else:
            # The head began inside this feed, after an earlier message: count what is known of it.
            tail = data[last_lf + 1 :]
            self._line = len(tail)
            self._first_line = not self._headers and (not self._url or self._url in tail)
            known = len(self._url) + sum(len(name) + len(value) + 4 for name, value in self._headers)
            self._head_bytes = known + self._line
        line = self._line - (data[-1] == 13)  # a final CR is half of the line's CRLF
        if self._first_line:
            if line > limits.request_line:
                raise ParseError(414, "Request line too long")
        elif line > limits.field_size:
            raise ParseError(431, "Request header field too large")
        if self._head_bytes - (data[-1] == 13) > limits.head:  # a CR may begin the blank line
            raise ParseError(431, "Request head too large")

    def _read_on(self, rest: bytes) -> None:
        """After the head of an upgrade palfrey ignores (h2c): llhttp skipped its body and stopped.
        The body is read here (ChunkedDecoder, as for h11), then a fresh llhttp parser reads on."""
        framing = self._ignored_upgrade
        assert framing is not None
        if framing.body == BODY_NONE:
            self._ignored_upgrade = None
            self._parser = httptools.HttpRequestParser(self)
            self.between = True
            if rest:
                self.feed(rest)
            return
        self._upgraded = True  # feed() hands bytes to _read_body until the body ends
        if framing.body == BODY_CHUNKED:
            self._body_chunks = ChunkedDecoder(self._sink.on_body, trailer_limit=self._head_limit)
        else:
            self._body_left = framing.length
        if rest:
            self._read_body(rest)

    def _read_body(self, data: bytes) -> None:
        decoder = self._body_chunks
        if decoder is not None:
            rest = decoder.feed(data)
            if not decoder.done:
                return
            self._body_chunks = None
        else:
            left = self._body_left
            if len(data) < left:
                self._body_left = left - len(data)
                self._sink.on_body(data)
                return
            self._body_left = 0
            self._sink.on_body(data[:left])
            rest = data[left:]
        self._upgraded = False
        self._ignored_upgrade = None
        self._parser = httptools.HttpRequestParser(self)
        self.on_message_complete()
        if rest:
            self.feed(rest)

    def _restart(self) -> None:
        """After a body decoded by ChunkedDecoder: a fresh llhttp parser reads what follows."""
        rest = self._rest or b""
        self._rest = None
        self._parser = httptools.HttpRequestParser(self)
        self.between = True
        if rest:
            self.feed(rest)

    def _method_verdict(self) -> None:
        """llhttp refused the method: 400 as soon as the bytes so far are not an unknown token's start,
        else wait for the end of the request line, which is 501 only when it is well-formed (as h11)."""
        start = self._start
        method, space, _ = start.partition(b" ")
        if not space:
            if len(start) > MAX_UNKNOWN_METHOD or not is_token(start.rstrip(b"\r\n")) or b"\n" in start:
                raise ParseError(400, "Invalid method")
            return
        if method_status(method) != 501:
            raise ParseError(400, "Invalid method")
        end = start.find(b"\n")
        if end == -1:
            if len(start) > self._limits.request_line + 1:
                raise ParseError(414, "Request line too long")
            return
        line = start[:end]
        if not line.endswith(b"\r"):
            raise ParseError(400, "Bare LF in request line")
        status = unknown_method_status(line[:-1])
        raise ParseError(status, "Method not implemented" if status == 501 else "Invalid request line")

    # httptools callbacks

    def on_message_begin(self) -> None:
        self.in_head = True
        self.between = False
        self._begun += 1
        self._url = b""
        self._headers = []
        self._te_tab = False

    def on_url(self, url: bytes) -> None:
        self._url += url
        if len(self._url) > self._limits.request_line:
            self._fail(414, "Request line too long")

    def on_header(self, name: bytes, value: bytes) -> None:
        if not self.in_head:
            return  # a trailer field: llhttp checked its syntax; trailers are not passed on
        headers = self._headers
        if len(name) + len(value) + 2 > self._field_size:
            self._fail(431, "Request header field too large")
        if len(headers) >= self._max_fields:
            self._fail(431, "Too many request header fields")
        name = name.lower()
        if 9 in value and name == b"transfer-encoding":  # 9: TAB (an int test skips a slow path)
            # llhttp does not see `chunked` in "chunked<TAB>": let it pass the raw body through.
            self._te_tab = True
            self._parser.set_dangerous_leniencies(lenient_transfer_encoding=True)
        headers.append((name, value.strip(b" \t")))

    def on_headers_complete(self) -> None:
        self.in_head = False
        parser = self._parser
        method = parser.get_method()
        version = parser.get_http_version()
        try:
            if len(method) + len(self._url) + 10 > self._limits.request_line:
                raise ParseError(414, "Request line too long")
            if self._prior or len(self._start) > self._head_limit:  # else the feed held all of it
                self._check_head_size(method)
            if method not in KNOWN_METHODS:
                check_method(method)
            framing = check_head(method, version, self._headers)
            if framing.ignored_upgrade:  # llhttp will skip the body and stop: see _read_on
                self._ignored_upgrade = framing
                if framing.body != BODY_NONE:
                    self._sink = _EarlyEnd(self, self._sink)
            elif self._te_tab and framing.body == BODY_CHUNKED:
                self._decoder = ChunkedDecoder(self._sink.on_body, trailer_limit=self._limits.head)
            self._sink.on_head(method, self._url, version, self._headers, framing)
        except ParseError as exc:
            self._error = exc
            raise

    def _check_head_size(self, method: bytes) -> None:
        """The head's size as h11's adapter counts it: `method SP target SP HTTP/x.y CRLF` and one
        `name: value CRLF` per field (llhttp strips OWS, so a padded field counts a few bytes less)."""
        self._prior = 0
        size = (
            len(method)
            + len(self._url)
            + 12
            + sum(len(name) + len(value) + 4 for name, value in self._headers)
        )
        if size > self._limits.head:
            raise ParseError(431, "Request head too large")

    def on_body(self, body: bytes) -> None:
        decoder = self._decoder
        if decoder is None:
            self._sink.on_body(body)
            return
        if self._rest is not None:
            return
        try:
            rest = decoder.feed(body)
        except ParseError as exc:
            self._error = exc
            raise
        if decoder.done:
            self._decoder = None
            self._rest = rest  # the old parser reads to EOF; feed() restarts on a fresh one
            self.on_message_complete()

    def on_message_complete(self) -> None:
        self.between = True
        self._empty_lines = 0
        self._sink.on_message_complete()

    def _fail(self, status: int, reason: str) -> None:
        self._error = ParseError(status, reason)
        raise self._error


class _EarlyEnd:
    """The sink while llhttp reads the head of an ignored upgrade with a body: llhttp ends that
    message at its head (it skips the body), and that early end must not reach the real sink.
    Swapping the sink keeps the test out of on_message_complete, which every request calls."""

    __slots__ = ("_parser", "_sink")

    def __init__(self, parser: HttptoolsParser, sink: Sink) -> None:
        self._parser = parser
        self._sink = sink

    def on_head(
        self, method: bytes, target: bytes, version: str, headers: list[tuple[bytes, bytes]], framing: Framing
    ) -> None:
        self._sink.on_head(method, target, version, headers, framing)

    def on_message_complete(self) -> None:
        self._parser._sink = self._sink

    def on_body(self, data: bytes) -> None:  # not called: llhttp skips this body (Sink protocol)
        self._sink.on_body(data)

    def on_upgrade(self, rest: bytes) -> None:  # not called: the parser reads on (Sink protocol)
        self._sink.on_upgrade(rest)


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
