"""A strict, sans-IO decoder of chunked request bodies (a Content-Length body needs none: the
adapters count its bytes).

The h11 adapter uses it instead of h11's own body reader, and the httptools adapter for the
`chunked<TAB>` bodies llhttp does not recognise, so chunk sizes, chunk extensions and line endings
are judged by one set of rules, the ones llhttp applies: no whitespace in chunk sizes, a value that fits
in 64 bits (at most 16 hex digits after any leading zeros, which RFC 9112 allows), CRLF only,
extensions that are `;token[=token|quoted-string]`, bounded trailers.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from palfrey.http.head import ParseError

_CHUNK_LINE = re.compile(
    rb'0*([0-9A-Fa-f]{1,16})((?:;[!#$%&\'*+\-.^_`|~0-9A-Za-z]+(?:=(?:[!#$%&\'*+\-.^_`|~0-9A-Za-z]+|"(?:[\t !#-\[\]-~\x80-\xff]|\\[\t -~\x80-\xff])*"))?)*)'
)
_MAX_CHUNK_LINE = 4096
_SIZE, _DATA, _DATA_END, _TRAILERS, _DONE = range(5)


class ChunkedDecoder:
    """Feed bytes; decoded data goes to `on_data`; returns the bytes left after the final chunk."""

    __slots__ = ("_buffer", "_on_data", "_remaining", "_state", "_trailer_bytes", "_trailer_limit")

    def __init__(self, on_data: Callable[[bytes], None], trailer_limit: int) -> None:
        self._on_data = on_data
        self._state = _SIZE
        self._remaining = 0
        self._buffer = b""
        self._trailer_bytes = 0
        self._trailer_limit = trailer_limit

    @property
    def done(self) -> bool:
        return self._state == _DONE

    def feed(self, data: bytes) -> bytes:
        """Consume `data`; return what follows the message once it is complete, else b""."""
        if self._buffer:
            data = self._buffer + data
            self._buffer = b""
        pos = 0
        end = len(data)
        while pos < end:
            state = self._state
            if state == _DATA:
                take = min(self._remaining, end - pos)
                self._on_data(data[pos : pos + take] if (pos or take != end) else data)
                pos += take
                self._remaining -= take
                if not self._remaining:
                    self._state = _DATA_END
            elif state == _DATA_END:
                if end - pos < 2:
                    break
                if data[pos : pos + 2] != b"\r\n":
                    raise ParseError(400, "Missing CRLF after chunk data")
                pos += 2
                self._state = _SIZE
            else:
                eol = data.find(b"\r\n", pos)
                if eol == -1:
                    tail = data[pos:end]
                    # A trailing CR may be the first half of a CRLF split across reads.
                    if 10 in tail or 13 in tail[:-1]:  # LF, CR (int tests are the fast path)
                        raise ParseError(400, "Bare CR or LF in chunked framing")
                    if len(tail) > _MAX_CHUNK_LINE:
                        raise ParseError(400, "Chunk line too long")
                    break
                line = data[pos:eol]
                if 10 in line or 13 in line:
                    raise ParseError(400, "Bare CR or LF in chunked framing")
                pos = eol + 2
                if state == _SIZE:
                    self._size_line(line)
                elif line:  # a trailer field: checked for shape, then discarded
                    self._trailer_bytes += len(line) + 2
                    if self._trailer_bytes > self._trailer_limit:
                        raise ParseError(431, "Trailers too large")
                    name, colon, _ = line.partition(b":")
                    if not colon or not name or name[-1:] in (b" ", b"\t") or line[:1] in (b" ", b"\t"):
                        raise ParseError(400, "Invalid trailer field")
                else:
                    self._state = _DONE
                    return data[pos:]
        if pos < end:
            self._buffer = data[pos:]
        return b""

    def _size_line(self, line: bytes) -> None:
        match = _CHUNK_LINE.fullmatch(line)
        if match is None:
            raise ParseError(400, "Invalid chunk size line")
        size = int(match.group(1), 16)
        if size:
            self._remaining = size
            self._state = _DATA
        else:
            self._state = _TRAILERS
