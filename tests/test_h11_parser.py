"""The `--http h11` adapter parses each head itself, once: it must judge request lines and fields as
h11 judged them when h11 still parsed the heads (h11 is the oracle here), and never import h11."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import h11
import pytest

from palfrey.http.head import ParseError
from palfrey.http.parser_base import Limits, Sink
from palfrey.http.parsers import H11Parser
from tests.corpus_loader import LIMIT_REQUEST_FIELD_SIZE, LIMIT_REQUEST_FIELDS, LIMIT_REQUEST_LINE

LIMITS = Limits(LIMIT_REQUEST_LINE, LIMIT_REQUEST_FIELDS, LIMIT_REQUEST_FIELD_SIZE)


class _Heads:
    """A sink that keeps what `on_head` was given."""

    def __init__(self) -> None:
        self.heads: list[tuple[Any, ...]] = []

    def on_head(self, method: bytes, target: bytes, version: str, headers: Any, framing: Any) -> None:
        self.heads.append((method, target, version, headers))

    def on_body(self, data: bytes) -> None:
        pass

    def on_message_complete(self) -> None:
        pass

    def on_upgrade(self, rest: bytes) -> None:
        pass


def parse(data: bytes, step: int | None = None) -> tuple[Any, ...] | int:
    """The head the adapter delivers, or the status it refuses `data` with."""
    sink = _Heads()
    sink_typed: Sink = sink
    parser = H11Parser(sink_typed, LIMITS)
    step = step or len(data)
    try:
        for start in range(0, len(data), step):
            parser.feed(data[start : start + step])
    except ParseError as exc:
        return exc.status
    assert len(sink.heads) == 1
    return sink.heads[0]


def h11_accepts(head: bytes) -> bool:
    """Whether h11 reads `head` as a request (what the adapter used to ask it per request)."""
    connection = h11.Connection(h11.SERVER)
    connection.receive_data(head)
    try:
        return isinstance(connection.next_event(), h11.Request)
    except h11.RemoteProtocolError:
        return False


REQUEST_LINES = [
    b"GET / HTTP/1.1",
    b"GET /a/b?c=d&e=%20f HTTP/1.1",
    b"GET http://example.com/x?y HTTP/1.1",
    b"OPTIONS * HTTP/1.1",
    b"M-SEARCH * HTTP/1.1",
    b"GET /\x80 HTTP/1.1",  # obs-text in the target
    b"GET /a\x7f HTTP/1.1",
    b"GET /a\tb HTTP/1.1",
    b"GET  / HTTP/1.1",
    b"GET / HTTP/1.1 ",
    b"GET / http/1.1",
    b"GET / HTTP/11",
    b"GET / HTTP/1.",
    b"GET /",
    b"GET / HTTP/1.1 x",
    b"G(T / HTTP/1.1",
    b" GET / HTTP/1.1",
]


@pytest.mark.parametrize("line", REQUEST_LINES)
def test_request_line_judged_as_h11_judged_it(line: bytes) -> None:
    head = line + b"\r\nHost: t\r\n\r\n"
    got = parse(head)
    if h11_accepts(head):
        method, target, version = line.split(b" ")
        assert got == (method, target, version[5:].decode(), [(b"host", b"t")])
    else:
        assert got == 400


def test_unknown_method_is_501_only_on_a_well_formed_line() -> None:
    assert parse(b"BREW /pot HTTP/1.1\r\nHost: t\r\n\r\n") == 501
    assert parse(b"BREW /\x80 HTTP/1.1\r\nHost: t\r\n\r\n") == 501  # as before: llhttp's verdict
    assert parse(b"BREW /pot\tHTTP/1.1\r\nHost: t\r\n\r\n") == 400
    assert parse(b"THIS IS NOT HTTP\r\n\r\n") == 400


def test_version_outside_1x_is_400() -> None:
    assert parse(b"GET / HTTP/2.0\r\nHost: t\r\n\r\n") == 400
    assert parse(b"GET / HTTP/1.0\r\n\r\n") == (b"GET", b"/", "1.0", [])


@pytest.mark.parametrize("value", [b"a\x00b", b"a\x0bb", b"a\x0cb", b"a\x01b", b"a\x1fb", b"a\x7fb"])
def test_control_characters_in_a_field_value_are_400(value: bytes) -> None:
    head = b"GET / HTTP/1.1\r\nHost: t\r\nX-A: " + value + b"\r\n\r\n"
    for step in (None, 1, 5):
        assert parse(head, step) == 400, step


def test_fields_as_received_names_lowercased_values_stripped() -> None:
    head = b"GET / HTTP/1.1\r\nHost: t\r\nX-A:\t a\tb \x80\t \r\nx-a: 2\r\nEmpty:\r\n\r\n"
    assert h11_accepts(head)
    for step in (None, 1, 3):
        assert parse(head, step) == (
            b"GET",
            b"/",
            "1.1",
            [(b"host", b"t"), (b"x-a", b"a\tb \x80"), (b"x-a", b"2"), (b"empty", b"")],
        )


@pytest.mark.parametrize(
    "field",
    [b" X-A: 1", b"X A: 1", b"X-A : 1", b": 1", b"X-A 1", b"X\x80: 1"],
)
def test_malformed_field_lines_are_400(field: bytes) -> None:
    assert parse(b"GET / HTTP/1.1\r\nHost: t\r\n" + field + b"\r\n\r\n") == 400


def test_the_adapter_does_not_import_h11() -> None:
    code = "import sys, palfrey.http.parsers, palfrey.main; print('h11' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
    assert result.stdout.strip() == "False", result.stderr


@pytest.mark.parametrize(
    "head", [b"GET / HTTP/1.1\r\nHost: t\rX: 1\r\n\r\n", b"GET / HTTP/1.1\nHost: t\r\n\r\n"]
)
def test_bare_cr_or_lf_in_a_whole_head_is_400(head: bytes) -> None:
    for step in (None, 1, 4):
        assert parse(head, step) == 400, step


def test_pipelined_heads_in_one_feed_each_parsed() -> None:
    sink = _Heads()
    parser = H11Parser(sink, LIMITS)
    parser.feed(
        b"GET /a HTTP/1.1\r\nHost: t\r\n\r\nGET /b HTTP/1.1\r\nHost: t\r\n\r\n\r\nGET /c HTTP/1.0\r\n\r\n"
    )
    assert [head[1] for head in sink.heads] == [b"/a", b"/b", b"/c"]
