"""Replay the raw-request corpus (``tests/corpus/``) against a real palfrey process.

Every case is sent over a real TCP socket, once per HTTP parser (``--http httptools`` and
``--http h11``); both parsers must produce the same outcome for the same bytes.  The file format is
described in ``tests/corpus/README.md``; the cases are loaded (and the ones too large for a file
generated) by ``tests/corpus_loader.py``.

* valid cases: every response is 200 and echoes the expected request fields (``tests/apps/echo.py``);
  afterwards the connection is either closed by the server (``# close: yes``) or still usable, and the
  app has been called exactly once per request.
* invalid cases: the last response has the expected error status, the server closes the connection
  right after it, and the app was called only for the valid requests pipelined before it.
"""

from __future__ import annotations

import json
import select
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from tests.corpus_loader import (
    CASES,
    KINDS,
    LIMIT_REQUEST_FIELD_SIZE,
    LIMIT_REQUEST_FIELDS,
    LIMIT_REQUEST_LINE,
    Case,
    CorpusError,
    Expected,
    load_corpus,
    parse_case,
    unescape,
)

PARSERS = ("httptools", "h11")
APP = "tests.apps.echo:app"
COUNT_PATH = "/__count"

IO_TIMEOUT = 5.0  # bound on every socket operation
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
