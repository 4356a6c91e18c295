"""Pure parts of the WSGI adapter, where a unit test says more than a server would:
`wsgi.input` across arbitrary chunk boundaries, the batching of response messages, the environ."""

from __future__ import annotations

import io
import random
from typing import Any

import pytest

from palfrey.interfaces.wsgi_bridge import END, _merge
from palfrey.interfaces.wsgi_environ import InputStream, build_environ


class FakeBridge:
    """Hands out a body in the given pieces, as the loop side would."""

    def __init__(self, pieces: list[bytes]) -> None:
        self.pieces = list(pieces)
        self.body_done = not pieces
        self.reads = 0

    def read_chunk(self) -> bytes:
        self.reads += 1
        return self.pieces.pop(0) if self.pieces else b""


def split(data: bytes, rng: random.Random) -> list[bytes]:
    pieces, pos = [], 0
    while pos < len(data):
        step = rng.randint(1, 9)
        pieces.append(data[pos : pos + step])
        pos += step
    return pieces


BODY = b"first line\nsecond\n\n\nno newline at the end, and some more bytes" * 3


@pytest.mark.parametrize("seed", range(40))
def test_input_matches_a_file_whatever_the_chunking(seed: int) -> None:
    rng = random.Random(seed)
    stream = InputStream(FakeBridge(split(BODY, rng)))  # type: ignore[arg-type]
    expected = io.BytesIO(BODY)
    while True:
        op = rng.choice(["read", "readline", "readline_limit", "read1"])
        if op == "read":
            size = rng.randint(0, 20)
            got, want = stream.read(size), expected.read(size)
        elif op == "readline":
            got, want = stream.readline(), expected.readline()
        elif op == "readline_limit":
            size = rng.randint(1, 8)
            got, want = stream.readline(size), expected.readline(size)
        else:
            got = stream.read1(rng.randint(1, 20))
            want = expected.read(len(got))
            assert got or not want
        assert got == want, op
        if not want and op != "read1" and expected.tell() == len(BODY):
            break
    assert stream.read() == b""


def test_input_read_all_lines_and_iteration() -> None:
    pieces = [b"a\nb", b"", b"c\n", b"d"]
    assert InputStream(FakeBridge([p for p in pieces if p])).read() == b"a\nbc\nd"  # type: ignore[arg-type]
    assert InputStream(FakeBridge([b"a\nb", b"c\n", b"d"])).readlines() == [b"a\n", b"bc\n", b"d"]  # type: ignore[arg-type]
    assert InputStream(FakeBridge([b"a\nb", b"c\n", b"d"])).readlines(2) == [b"a\n"]  # type: ignore[arg-type]
    assert list(InputStream(FakeBridge([b"x\ny\n"]))) == [b"x\n", b"y\n"]  # type: ignore[arg-type]


def test_input_without_body_never_asks_for_data() -> None:
    bridge = FakeBridge([])
    stream = InputStream(bridge)  # type: ignore[arg-type]
    assert stream.read() == b"" and stream.readline() == b"" and stream.read(10) == b""
    assert bridge.reads == 0


def test_merge_joins_chunks_and_keeps_framing_decisions() -> None:
    start: dict[str, Any] = {"type": "http.response.start", "status": 200, "headers": []}
    # First batch of a generator response: chunks joined, the end not merged (stays chunked).
    messages = _merge([start, b"a", b"b", END], may_end_merged=False)
    assert messages == [
        start,
        {"type": "http.response.body", "body": b"ab", "more_body": True},
        {"type": "http.response.body", "body": b"", "more_body": False},
    ]
    # Later batches (head already out), or a known length: the end rides on the last chunk.
    assert _merge([b"c", b"d", END], may_end_merged=True) == [
        {"type": "http.response.body", "body": b"cd", "more_body": False}
    ]
    assert _merge([start, b"a", b"b"], may_end_merged=False)[1]["body"] == b"ab"
    assert _merge([b"x", b"y"], may_end_merged=True) == [
        {"type": "http.response.body", "body": b"xy", "more_body": True}
    ]


def test_environ_from_scope_without_raw_path_or_server() -> None:
    scope = {
        "type": "http",
        "method": "GET",
        "path": "/app/caf\u00e9",
        "root_path": "/app",
        "query_string": b"",
        "headers": [(b"host", b"example.org:8443")],
        "http_version": "1.1",
        "scheme": "https",
        "server": None,
        "client": None,
    }
    environ = build_environ(scope, {}, InputStream(FakeBridge([])))  # type: ignore[arg-type]
    assert environ["SCRIPT_NAME"] == "/app"
    assert environ["PATH_INFO"] == "/caf\u00c3\u00a9"
    assert (environ["SERVER_NAME"], environ["SERVER_PORT"]) == ("example.org", "8443")
    assert "REMOTE_ADDR" not in environ
