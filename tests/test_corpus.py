"""Replay the raw-request corpus (``tests/corpus/``) against a real palfrey process.

Every case is sent over a real TCP socket, once per HTTP parser (``--http httptools`` and
``--http h11``); both parsers must produce the same outcome for the same bytes.  The file format is
described in ``tests/corpus/README.md``.  Cases too large for a file (limit boundaries) are built by
:func:`generated_cases`.

* valid cases: every response is 200 and echoes the expected request fields (``tests/apps/echo.py``);
  afterwards the connection is either closed by the server (``# close: yes``) or still usable, and the
  app has been called exactly once per request.
* invalid cases: the last response has the expected error status, the server closes the connection
  right after it, and the app was called only for the valid requests pipelined before it.
"""

from __future__ import annotations

import json
import re
import select
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

CORPUS_DIR = Path(__file__).parent / "corpus"
KINDS = ("valid", "invalid")
PARSERS = ("httptools", "h11")
APP = "tests.apps.echo:app"
COUNT_PATH = "/__count"

IO_TIMEOUT = 5.0  # bound on every socket operation
LIMIT_REQUEST_LINE = 8190
LIMIT_REQUEST_FIELD_SIZE = 8190
LIMIT_REQUEST_FIELDS = 100
DEFAULT_HEAD_LIMIT = 32768  # palfrey.http.parsers.DEFAULT_HEAD_LIMIT, the --limit-request-head default

CASE_KEYS = {"description", "chunk", "close", "app-called"}
RESPONSE_KEYS = {"expect", "method", "path", "raw-path", "query", "version", "body", "header"}
GROUP_SEPARATOR = "---"
_KEY_LINE = re.compile(r"#\s*([a-z][a-z0-9-]*):(.*)\Z")
_HEX = frozenset("0123456789abcdefABCDEF")
_SIMPLE_ESCAPES = {"r": b"\r", "n": b"\n", "t": b"\t", "\\": b"\\"}


# ----------------------------------------------------------------------------------------------------
# Corpus format
# ----------------------------------------------------------------------------------------------------


class CorpusError(ValueError):
    """A corpus file does not follow the format of tests/corpus/README.md."""


def unescape(text: str) -> bytes:
    r"""Turn corpus text into bytes: ``\r \n \t \\ \xNN`` are escapes, other characters are UTF-8."""
    out = bytearray()
    i = 0
    while i < len(text):
        char = text[i]
        if char != "\\":
            out += char.encode("utf-8")
            i += 1
            continue
        code = text[i + 1 : i + 2]
        if code in _SIMPLE_ESCAPES:
            out += _SIMPLE_ESCAPES[code]
            i += 2
        elif code == "x" and len(text) >= i + 4 and set(text[i + 2 : i + 4]) <= _HEX:
            out.append(int(text[i + 2 : i + 4], 16))
            i += 4
        else:
            raise CorpusError(f"invalid escape {text[i : i + 4]!r} (use \\r \\n \\t \\\\ or \\xNN)")
    return bytes(out)


@dataclass
class Expected:
    """What one response (and the request the app saw) must look like."""

    status: int = 200
    method: str | None = None
    path: str | None = None
    raw_path: bytes | None = None
    query: bytes | None = None
    version: str | None = None
    body: bytes | None = None
    headers: list[tuple[bytes, bytes]] | None = None


@dataclass
class Case:
    name: str
    kind: str  # "valid" or "invalid"
    data: bytes
    responses: list[Expected]
    description: str = ""
    chunk: int | None = None  # send in writes of this many bytes (None: one write)
    close: bool = False  # valid cases: the server must close the connection after the last response
    # invalid cases: True when the error is in the body, which the server may already be streaming to
    # the app (so the app may have been called once for the rejected request).
    app_may_run: bool = False

    @property
    def id(self) -> str:
        return f"{self.kind}/{self.name}"


def _set_expectation(expected: Expected, key: str, raw: str) -> None:
    value = raw.strip()
    if key == "expect":
        if not value.isdigit() or len(value) != 3:
            raise CorpusError(f"expect: needs a 3-digit status, got {value!r}")
        expected.status = int(value)
    elif key == "method":
        expected.method = unescape(value).decode("latin-1")
    elif key == "path":
        expected.path = unescape(value).decode("utf-8")
    elif key == "raw-path":
        expected.raw_path = unescape(value)
    elif key == "query":
        expected.query = unescape(value)
    elif key == "version":
        expected.version = value
    elif key == "body":
        expected.body = unescape(value)
    elif key == "header":
        name, colon, header_value = value.partition(":")
        if not colon or not name.strip():
            raise CorpusError(f"header: needs 'name: value', got {value!r}")
        if expected.headers is None:
            expected.headers = []
        expected.headers.append((unescape(name.strip()), unescape(header_value.strip())))


def parse_case(name: str, kind: str, text: str) -> Case:
    """Parse one corpus file (see tests/corpus/README.md)."""
    if kind not in KINDS:
        raise CorpusError(f"unknown kind {kind!r}")
    lines = text.split("\n")
    groups = [Expected()]
    case_options: dict[str, str] = {}
    index = 0
    while index < len(lines) and lines[index].startswith("#"):
        line = lines[index].rstrip("\r")
        index += 1
        if line[1:].strip() == GROUP_SEPARATOR:
            groups.append(Expected())
            continue
        match = _KEY_LINE.match(line)
        if match is None:
            continue  # free-form comment
        key, raw = match.groups()
        if key in CASE_KEYS:
            if key in case_options:
                raise CorpusError(f"{key}: given twice")
            case_options[key] = raw.strip()
        elif key in RESPONSE_KEYS:
            _set_expectation(groups[-1], key, raw)
        else:
            raise CorpusError(f"unknown key {key!r}")

    data = bytearray()
    for number, line in enumerate(lines[index:], start=index + 1):
        line = line.removesuffix("\r")
        if line != line.rstrip(" "):
            raise CorpusError(f"line {number}: trailing space (write it as \\x20)")
        if any(ord(char) < 0x20 or ord(char) == 0x7F for char in line):
            raise CorpusError(f"line {number}: literal control character (use an escape)")
        data += unescape(line)
    if not data:
        raise CorpusError("no request data")

    chunk: int | None = None
    if "chunk" in case_options:
        if not case_options["chunk"].isdigit() or int(case_options["chunk"]) < 1:
            raise CorpusError(f"chunk: needs a positive integer, got {case_options['chunk']!r}")
        chunk = int(case_options["chunk"])
    close_value = case_options.get("close", "no")
    if close_value not in ("yes", "no"):
        raise CorpusError(f"close: needs yes or no, got {close_value!r}")

    app_called = case_options.get("app-called", "no")
    if app_called not in ("no", "maybe"):
        raise CorpusError(f"app-called: needs no or maybe, got {app_called!r}")

    case = Case(
        name=name,
        kind=kind,
        data=bytes(data),
        responses=groups,
        description=case_options.get("description", ""),
        chunk=chunk,
        close=close_value == "yes",
        app_may_run=app_called == "maybe",
    )
    _check_case(case)
    return case


def _check_case(case: Case) -> None:
    statuses = [expected.status for expected in case.responses]
    if case.kind == "valid":
        if any(status != 200 for status in statuses):
            raise CorpusError("valid cases expect 200 for every response")
        if case.app_may_run:
            raise CorpusError("app-called: is for invalid cases")
    else:
        if statuses[-1] < 400 or any(status != 200 for status in statuses[:-1]):
            raise CorpusError("invalid cases expect 200s for pipelined requests, then one error status")
        if case.close:
            raise CorpusError("close: is implied for invalid cases")
        if case.app_may_run and len(case.responses) != 1:
            raise CorpusError("app-called: maybe is only for cases with a single (rejected) request")
        if any(expected.method == "HEAD" for expected in case.responses):
            raise CorpusError("HEAD is not supported in invalid cases")


def load_corpus(root: Path = CORPUS_DIR) -> list[Case]:
    cases = []
    for kind in KINDS:
        for path in sorted((root / kind).glob("*.http")):
            try:
                cases.append(parse_case(path.stem, kind, path.read_text(encoding="utf-8")))
            except CorpusError as exc:
                raise CorpusError(f"{path}: {exc}") from exc
    return cases


# ----------------------------------------------------------------------------------------------------
# Generated cases: limit boundaries (too large to keep as files)
# ----------------------------------------------------------------------------------------------------


def _request_line_of(length: int) -> bytes:
    """A ``GET /aaa... HTTP/1.1`` request line of exactly `length` bytes (without CRLF)."""
    fixed = len(b"GET / HTTP/1.1")
    return b"GET /" + b"a" * (length - fixed) + b" HTTP/1.1"


def _field_line_of(length: int) -> bytes:
    """An ``X-Big: bbb...`` field line of exactly `length` bytes (without CRLF)."""
    return b"X-Big: " + b"b" * (length - len(b"X-Big: "))


def generated_cases() -> list[Case]:
    host = b"Host: example.com\r\n"
    host_header = (b"host", b"example.com")
    cases: list[Case] = []

    def add(name: str, kind: str, data: bytes, expected: Expected, chunk: int | None, what: str) -> None:
        cases.append(Case(f"gen_{name}", kind, data, [expected], what, chunk))

    line = _request_line_of(LIMIT_REQUEST_LINE)
    add(
        "request_line_at_limit",
        "valid",
        line + b"\r\n" + host + b"\r\n",
        Expected(path=line[4:-9].decode("ascii"), headers=[host_header]),
        None,
        f"A request line of exactly --limit-request-line ({LIMIT_REQUEST_LINE}) bytes is accepted.",
    )
    over = _request_line_of(LIMIT_REQUEST_LINE + 1) + b"\r\n" + host + b"\r\n"
    add("request_line_over_limit", "invalid", over, Expected(414), None, "Request line one byte too long.")
    add(
        "request_line_over_limit_byte_by_byte",
        "invalid",
        over,
        Expected(414),
        1,
        "Request line one byte too long, one byte per write.",
    )
    add(
        "request_line_endless",
        "invalid",
        b"GET /" + b"a" * (40 * LIMIT_REQUEST_LINE),
        Expected(414),
        1024,
        "A request line that never ends is refused once it passes the limit, not buffered.",
    )

    field_line = _field_line_of(LIMIT_REQUEST_FIELD_SIZE)
    add(
        "field_at_limit",
        "valid",
        b"GET / HTTP/1.1\r\n" + host + field_line + b"\r\n\r\n",
        Expected(headers=[host_header, (b"x-big", field_line[len(b"X-Big: ") :])]),
        None,
        f"A field line of exactly --limit-request-field-size ({LIMIT_REQUEST_FIELD_SIZE}) bytes is accepted.",
    )
    # The value alone exceeds the limit, so this is over the limit whether the server counts the whole
    # field line or only the value.
    big_field = b"X-Big: " + b"b" * (LIMIT_REQUEST_FIELD_SIZE + 1)
    over_field = b"GET / HTTP/1.1\r\n" + host + big_field + b"\r\n\r\n"
    add("field_over_limit", "invalid", over_field, Expected(431), None, "A field line too long.")
    add(
        "field_over_limit_sliced",
        "invalid",
        over_field,
        Expected(431),
        7,
        "A field line too long, in 7-byte writes.",
    )
    add(
        "field_endless",
        "invalid",
        b"GET / HTTP/1.1\r\n" + host + b"X-Big: " + b"b" * (40 * LIMIT_REQUEST_FIELD_SIZE),
        Expected(431),
        1024,
        "A field value that never ends is refused once it passes the limit, not buffered.",
    )

    def fields(count: int) -> tuple[bytes, list[tuple[bytes, bytes]]]:
        """`count` field lines in total, Host first."""
        lines = [host]
        headers = [host_header]
        for number in range(1, count):
            lines.append(b"X-F%d: %d\r\n" % (number, number))
            headers.append((b"x-f%d" % number, b"%d" % number))
        return b"".join(lines), headers

    head, headers = fields(LIMIT_REQUEST_FIELDS)
    add(
        "fields_at_limit",
        "valid",
        b"GET / HTTP/1.1\r\n" + head + b"\r\n",
        Expected(headers=headers),
        None,
        f"Exactly --limit-request-fields ({LIMIT_REQUEST_FIELDS}) fields are accepted.",
    )
    head, _ = fields(LIMIT_REQUEST_FIELDS + 1)
    too_many = b"GET / HTTP/1.1\r\n" + head + b"\r\n"
    add("fields_over_limit", "invalid", too_many, Expected(431), None, "One field too many.")
    add(
        "fields_over_limit_byte_by_byte",
        "invalid",
        too_many,
        Expected(431),
        1,
        "One field too many, one byte per write.",
    )
    head, _ = fields(20 * LIMIT_REQUEST_FIELDS)
    add(
        "fields_endless",
        "invalid",
        b"GET / HTTP/1.1\r\n" + head,
        Expected(431),
        512,
        "A head with thousands of fields is refused once it passes the limit.",
    )

    # The whole head (request line and field lines with their CRLFs) is bounded by DEFAULT_HEAD_LIMIT.
    def head_of(size: int) -> tuple[bytes, list[tuple[bytes, bytes]]]:
        """A head of exactly `size` (> 16 KiB) bytes: field lines of 8000 bytes or less after Host."""
        request_line = b"GET / HTTP/1.1\r\n"
        lines, headers, left = [request_line + host], [host_header], size - len(request_line) - len(host)
        sizes = []
        while left > 16000:
            sizes.append(8000)
            left -= 8000
        sizes += [left // 2, left - left // 2]
        for number, line_size in enumerate(sizes, 1):
            name = b"X-H%d" % number
            value = b"v" * (line_size - len(name) - 4)
            lines.append(b"%s: %s\r\n" % (name, value))
            headers.append((name.lower(), value))
        data = b"".join(lines)
        assert len(data) == size
        return data, headers

    at_limit, at_limit_headers = head_of(DEFAULT_HEAD_LIMIT)
    for chunk, how in ((None, "in one write"), (7, "in 7-byte writes"), (4096, "in 4 KiB writes")):
        suffix = f"_sliced_{chunk}" if chunk else ""
        add(
            f"head_at_limit{suffix}",
            "valid",
            at_limit + b"\r\n",
            Expected(headers=at_limit_headers),
            chunk,
            f"A head of exactly {DEFAULT_HEAD_LIMIT} bytes (the default total limit) is accepted, {how}.",
        )
        add(
            f"head_over_limit{suffix}",
            "invalid",
            head_of(DEFAULT_HEAD_LIMIT + 1)[0] + b"\r\n",
            Expected(431),
            chunk,
            f"A head one byte over the total limit gets 431, {how}.",
        )
    add(
        "head_endless_fields",
        "invalid",
        b"GET / HTTP/1.1\r\n" + host + b"".join(b"X-%d: %s\r\n" % (n, b"w" * 8000) for n in range(13)),
        Expected(431),
        3000,
        "~100 KB of headers in 13 fields of 8 KB (each under the field limit) is refused, not served.",
    )

    body = bytes(range(256)) * 1024  # 256 KiB, every byte value
    add(
        "large_body_content_length",
        "valid",
        b"POST /big HTTP/1.1\r\n" + host + b"Content-Length: %d\r\n\r\n" % len(body) + body,
        Expected(method="POST", body=body),
        4096,
        "A 256 KiB Content-Length body in 4 KiB writes.",
    )
    chunks = b"".join(b"fa0;n=%d\r\n" % i + body[i : i + 4000] + b"\r\n" for i in range(0, 64000, 4000))
    add(
        "large_body_chunked",
        "valid",
        b"POST /big HTTP/1.1\r\n" + host + b"Transfer-Encoding: chunked\r\n\r\n" + chunks + b"0\r\n\r\n",
        Expected(method="POST", body=body[:64000]),
        1000,
        "A 64000-byte chunked body (16 chunks with extensions) in 1000-byte writes.",
    )
    return cases


def all_cases() -> list[Case]:
    return load_corpus() + generated_cases()


CASES = all_cases()


# ----------------------------------------------------------------------------------------------------
# A minimal HTTP/1.1 client over a raw socket
# ----------------------------------------------------------------------------------------------------


class ConnectionClosed(Exception):
    """The server closed the connection before the expected bytes arrived."""


@dataclass
class Response:
    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes
    interim: list[int] = field(default_factory=list)  # 1xx statuses seen before this response

    def header(self, name: bytes) -> bytes | None:
        for key, value in self.headers:
            if key == name:
                return value
        return None

    def json(self) -> Any:
        return json.loads(self.body)


class Client:
    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=IO_TIMEOUT)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buffer = b""
        self.eof = False
        self.send_error: OSError | None = None  # the server reset the connection while we were sending

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.sock.close()

    def send(self, data: bytes, chunk: int | None = None, stop_on_response: bool = False) -> None:
        """Send `data` (in writes of `chunk` bytes).  With `stop_on_response`, stop as soon as the
        server answers or closes: it has rejected the request and the rest would only be reset.
        A reset while sending is recorded in `send_error`; what the server answered is still read."""
        step = chunk or len(data)
        for start in range(0, len(data), step):
            if stop_on_response and start and select.select([self.sock], [], [], 0)[0]:
                return
            try:
                self.sock.sendall(data[start : start + step])
            except (BrokenPipeError, ConnectionResetError) as exc:
                self.send_error = exc
                return

    def _fill(self) -> None:
        try:
            data = self.sock.recv(65536)
        except ConnectionResetError:
            data = b""
        if not data:
            self.eof = True
            raise ConnectionClosed(f"connection closed by the server; unparsed bytes: {self.buffer[:200]!r}")
        self.buffer += data

    def _read_until(self, marker: bytes) -> bytes:
        while (position := self.buffer.find(marker)) < 0:
            self._fill()
        data, self.buffer = self.buffer[:position], self.buffer[position + len(marker) :]
        return data

    def _read_exact(self, size: int) -> bytes:
        while len(self.buffer) < size:
            self._fill()
        data, self.buffer = self.buffer[:size], self.buffer[size:]
        return data

    def _read_to_eof(self) -> bytes:
        try:
            while True:
                self._fill()
        except ConnectionClosed:
            pass
        data, self.buffer = self.buffer, b""
        return data

    def read_response(self, head: bool = False) -> Response:
        interim = []
        while True:
            status_line, *lines = self._read_until(b"\r\n\r\n").split(b"\r\n")
            parts = status_line.split(b" ", 2)
            if len(parts) < 2 or not parts[0].startswith(b"HTTP/1.") or not parts[1].isdigit():
                raise AssertionError(f"malformed status line {status_line!r}")
            status = int(parts[1])
            headers = []
            for line in lines:
                name, _, value = line.partition(b":")
                headers.append((name.strip().lower(), value.strip()))
            if 100 <= status < 200 and status != 101:
                interim.append(status)
                continue
            break
        response = Response(status, headers, b"", interim)
        length = response.header(b"content-length")
        if head or status in (204, 304):
            pass
        elif (response.header(b"transfer-encoding") or b"").lower() == b"chunked":
            response.body = self._read_chunked()
        elif length is not None:
            response.body = self._read_exact(int(length))
        else:
            response.body = self._read_to_eof()
        return response

    def _read_chunked(self) -> bytes:
        body = bytearray()
        while True:
            size = int(self._read_until(b"\r\n").split(b";")[0], 16)
            if size == 0:
                while self._read_until(b"\r\n"):  # trailers
                    pass
                return bytes(body)
            body += self._read_exact(size)
            if self._read_exact(2) != b"\r\n":
                raise AssertionError("malformed chunked response")

    def closed_by_server(self) -> bool:
        """True if the server closes the connection (within IO_TIMEOUT) without sending more bytes."""
        if self.buffer:
            return False
        if self.eof:
            return True
        try:
            data = self.sock.recv(65536)
        except ConnectionResetError:
            return True
        except TimeoutError:
            return False
        self.buffer += data
        return not data


COUNT_REQUEST = b"GET " + COUNT_PATH.encode() + b" HTTP/1.1\r\nHost: corpus\r\n\r\n"


def read_count(client: Client) -> int:
    client.send(COUNT_REQUEST)
    response = client.read_response()
    assert response.status == 200, f"{COUNT_PATH} answered {response.status}"
    return int(response.json()["count"])


def fetch_count(port: int) -> int:
    with Client(port) as client:
        return read_count(client)


# ----------------------------------------------------------------------------------------------------
# Tests
# ----------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module", params=PARSERS)
def server(request: pytest.FixtureRequest) -> Iterator[Any]:
    from tests.support import run_server  # written alongside the server

    with run_server(
        APP,
        "--http",
        request.param,
        "--no-access-log",
        "--workers",
        "1",  # /__count is per process
        "--limit-request-line",
        str(LIMIT_REQUEST_LINE),
        "--limit-request-field-size",
        str(LIMIT_REQUEST_FIELD_SIZE),
        "--limit-request-fields",
        str(LIMIT_REQUEST_FIELDS),
    ) as process:
        yield process


def _server_output(server: Any) -> str:
    try:
        return "\n--- server output (tail) ---\n" + server.output()[-3000:]
    except Exception:  # the helper's output is a debugging aid only
        return ""


def _check_echo(case: Case, number: int, expected: Expected, response: Response, head: bool) -> None:
    where = f"{case.id} response #{number}"
    assert response.status == 200, f"{where}: status {response.status}, body {response.body[:300]!r}"
    if head:
        # The body must be absent; the follow-up request on the same connection proves it.
        assert response.header(b"x-echo-method") == b"HEAD", f"{where}: HEAD did not reach the app as HEAD"
        return
    echo = response.json()

    def raw(key: str) -> bytes:
        return echo[key].encode("latin-1")

    if expected.method is not None:
        assert echo["method"] == expected.method, where
    if expected.path is not None:
        assert echo["path"] == expected.path, where
    if expected.raw_path is not None:
        assert echo["raw_path"] is not None, f"{where}: raw_path is None"
        assert raw("raw_path") == expected.raw_path, where
    if expected.query is not None:
        assert raw("query_string") == expected.query, where
    if expected.version is not None:
        assert echo["http_version"] == expected.version, where
    if expected.body is not None:
        assert raw("body") == expected.body, where
    if expected.headers is not None:
        got = [(name.encode("latin-1"), value.encode("latin-1")) for name, value in echo["headers"]]
        assert got == expected.headers, where


def test_corpus_has_enough_cases() -> None:
    files = load_corpus()
    assert len(files) >= 60
    assert {case.kind for case in files} == set(KINDS)
    ids = [case.id for case in CASES]
    assert len(ids) == len(set(ids))


def test_unescape() -> None:
    assert unescape(r"a\r\n\t\\\x00\xFF\x7f") == b"a\r\n\t\\\x00\xff\x7f"
    assert unescape("café") == "café".encode()
    for bad in (r"\q", r"\x4", r"\xZZ", "\\"):
        with pytest.raises(CorpusError):
            unescape(bad)


def test_parse_case_format() -> None:
    text = (
        "# description: two pipelined requests\n"
        "# a free-form comment: with a colon and spaces in the key, so not a key\n"
        "# chunk: 3\n"
        "# app-called: no\n"
        "# method: POST\n"
        "# path: /a b\n"
        "# raw-path: /a%20b\n"
        "# query:\n"
        "# body: x\\x00y\n"
        "# header: host: h\n"
        "# header: content-length: 3\n"
        "# ---\n"
        "# path: /caf\\xc3\\xa9\n"
        "POST /a%20b HTTP/1.1\\r\\n\r\n"
        "Host: h\\r\\n\n"
        "Content-Length: 3\\r\\n\n"
        "\\r\\n\n"
        "\n"
        "x\\x00y\n"
        "GET /caf%C3%A9 HTTP/1.0\\r\\n\\r\\n\n"
    )
    case = parse_case("sample", "valid", text)
    assert case.data == (
        b"POST /a%20b HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nx\x00yGET /caf%C3%A9 HTTP/1.0\r\n\r\n"
    )
    assert case.chunk == 3 and not case.close and case.description == "two pipelined requests"
    first, second = case.responses
    assert first == Expected(
        method="POST",
        path="/a b",
        raw_path=b"/a%20b",
        query=b"",
        body=b"x\x00y",
        headers=[(b"host", b"h"), (b"content-length", b"3")],
    )
    assert second == Expected(path="/café")

    for bad in (
        "# expect: 200\nGET / HTTP/1.1 \n",  # trailing literal space
        "# expect: 200\nGET /\tHTTP/1.1\n",  # literal control character
        "# bogus: 1\nGET / HTTP/1.1\n",  # unknown key
        "# chunk: 0\nGET / HTTP/1.1\n",
        "# app-called: maybe\nGET / HTTP/1.1\n",  # only for invalid cases
        "# expect: 400\nGET / HTTP/1.1\n",  # valid cases expect 200
        "# description: nothing to send\n",
    ):
        with pytest.raises(CorpusError):
            parse_case("bad", "valid", bad)
    with pytest.raises(CorpusError):
        parse_case("bad", "invalid", "# expect: 200\nGET / HTTP/1.1\n")


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_corpus_case(server: Any, case: Case) -> None:
    port = server.port
    before = fetch_count(port)
    successes = sum(1 for expected in case.responses if expected.status == 200)

    with Client(port) as client:
        client.send(case.data, case.chunk, stop_on_response=case.kind == "invalid")
        responses = []
        for number, expected in enumerate(case.responses, start=1):
            head = expected.method == "HEAD"
            try:
                responses.append(client.read_response(head=head))
            except (ConnectionClosed, TimeoutError) as exc:
                got = [(r.status, r.body[:100]) for r in responses]
                pytest.fail(
                    f"{case.id}: no response #{number} (got {got}): {exc!r}"
                    f" (while sending: {client.send_error!r}){_server_output(server)}"
                )

        if case.kind == "invalid":
            *accepted, rejected = responses
            for number, response in enumerate(accepted, start=1):
                _check_echo(case, number, case.responses[number - 1], response, head=False)
            assert rejected.status == case.responses[-1].status, (
                f"{case.id}: expected {case.responses[-1].status}, got {rejected.status} "
                f"{rejected.body[:300]!r}"
            )
            assert client.closed_by_server(), f"{case.id}: connection left open after {rejected.status}"
            after = fetch_count(port)
        else:
            for number, response in enumerate(responses, start=1):
                expected = case.responses[number - 1]
                _check_echo(case, number, expected, response, head=expected.method == "HEAD")
            if case.close:
                assert client.closed_by_server(), f"{case.id}: connection left open"
                after = fetch_count(port)
            else:
                # Same connection: proves the framing consumed exactly the request bytes.
                connection = (responses[-1].header(b"connection") or b"").lower()
                assert connection != b"close", f"{case.id}: the server closes a keep-alive connection"
                after = read_count(client)

    allowed = {successes, successes + 1} if case.app_may_run else {successes}
    assert after - before in allowed, (
        f"{case.id}: the app was called {after - before} times, expected {' or '.join(map(str, allowed))}"
    )
