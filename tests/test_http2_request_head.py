"""The HTTP/2 request-head check, in process (`request.split_pseudo_headers`): what RFC 9113 §8.2
and §8.3 make malformed is refused (None: the stream is reset), and what is fine passes untouched.
tests/test_http2_life.py plays the refusals against a real server."""

from __future__ import annotations

import pytest

from palfrey.http2.request import split_pseudo_headers

BASE = [(b":method", b"GET"), (b":scheme", b"https"), (b":path", b"/a?b=1"), (b":authority", b"example")]


def test_a_plain_request_is_split() -> None:
    fields = [(b"accept", b"*/*"), (b"x-empty", b""), (b"x-inner", b"a b\tc"), (b"te", b"Trailers")]
    assert split_pseudo_headers([*BASE, *fields], b"http") == (
        b"GET",
        b"https",
        b"/a?b=1",
        b"example",
        fields,
    )


def test_authority_is_optional() -> None:
    result = split_pseudo_headers(BASE[:3], b"http")
    assert result is not None and result[3] == b""


@pytest.mark.parametrize(
    "headers",
    [
        [*BASE, (b"connection", b"close")],
        [*BASE, (b"keep-alive", b"5")],
        [*BASE, (b"proxy-connection", b"x")],
        [*BASE, (b"transfer-encoding", b"chunked")],
        [*BASE, (b"upgrade", b"h2c")],
        [*BASE, (b"te", b"gzip")],
        [*BASE, (b"te", b"trailers, gzip")],
        [*BASE, (b"Accept", b"*/*")],
        [*BASE, (b"x a", b"1")],
        [*BASE, (b"", b"1")],
        [*BASE, (b"x-\x7f", b"1")],
        [*BASE, (b"x-a", b" leading")],
        [*BASE, (b"x-a", b"trailing\t")],
        [*BASE, (b"x-a", b"nul\x00")],
        [*BASE, (b"x-a", b"cr\r")],
        [*BASE, (b":method", b"GET")],
        [*BASE, (b":protocol", b"websocket")],
        [*BASE, (b":status", b"200")],
        [BASE[0], (b"x-a", b"1"), *BASE[1:]],
        BASE[1:],
        [BASE[0], BASE[2], BASE[3]],
        [BASE[0], BASE[1], BASE[3]],
        [BASE[0], BASE[1], (b":path", b""), BASE[3]],
    ],
)
def test_malformed_heads_are_refused(headers: list[tuple[bytes, bytes]]) -> None:
    assert split_pseudo_headers(headers, b"http") is None
