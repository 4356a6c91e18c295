"""The httptools (llhttp) adapter: fast and strict; this adds palfrey's limits and head policy."""

from __future__ import annotations

from palfrey.http.body import ChunkedDecoder
from palfrey.http.head import (
    BODY_CHUNKED,
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
from palfrey.http.parser_base import Limits, Sink

try:
    import httptools
except ImportError:  # pragma: no cover - depends on the installed extras
    httptools = None  # type: ignore[assignment]


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
        "_rest",
        "_sink",
        "_spill",
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
        # What the length of the feed holding a head is compared with; -1 while a head spans several
        # feeds, so that its exact size is checked (one comparison per request either way).
        self._head_limit = limits.head
        self._spill = 0  # length of the feed that completed a head begun in an earlier feed
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
            self._head_limit = -1
            self._spill = len(data)
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
            self._body_chunks = ChunkedDecoder(self._sink.on_body, trailer_limit=self._limits.head)
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
            if len(self._start) > self._head_limit:  # else this feed held all of the head: within limits
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
        # A later head completed by the same (large) feed is still checked exactly: rare, so the
        # connection simply stays on this path.
        self._head_limit = self._limits.head if self._spill <= self._limits.head else -1
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
