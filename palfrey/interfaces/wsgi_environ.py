"""PEP 3333 `environ` from an ASGI HTTP scope, and the streams it carries.

Strings in the environ are "native strings" holding latin-1-decoded bytes (PEP 3333), so
`PATH_INFO` is the percent-decoded raw path as bytes → latin-1, never a UTF-8 guess.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import unquote_to_bytes

from palfrey.interfaces.wsgi_bridge import Bridge

logger = logging.getLogger("palfrey.error")

_BLOCK = 64 * 1024
# Header name → environ key; header names come from a small set, so this stays small (and is capped).
_KEYS: dict[bytes, str | None] = {b"content-type": "CONTENT_TYPE", b"content-length": "CONTENT_LENGTH"}
_MAX_KEYS = 512


def _environ_key(name: bytes) -> str | None:
    """`x-forwarded-for` → `HTTP_X_FORWARDED_FOR`. Names containing `_` map to None and are dropped:
    `X_Forwarded_For` would otherwise land on the same key as `X-Forwarded-For` and could override what
    a proxy set (gunicorn drops them too)."""
    key = _KEYS.get(name)
    if key is not None or name in _KEYS:
        return key
    text = name.decode("latin-1")
    key = None if "_" in text else "HTTP_" + text.upper().replace("-", "_")
    if len(_KEYS) < _MAX_KEYS:
        _KEYS[name] = key
    return key


def build_environ(scope: Mapping[str, Any], base: dict[str, Any], stream: InputStream) -> dict[str, Any]:
    """The environ for one request; `base` holds the per-server constant entries."""
    environ = base.copy()
    environ["wsgi.input"] = stream
    _add_cgi_variables(environ, scope)
    return environ


def cgi_environ(scope: Mapping[str, Any]) -> dict[str, Any]:
    """Only the CGI variables of a request's environ (no streams), e.g. for gunicorn's access-log
    atoms: the same rules as the environ a WSGI app gets, so the two can never disagree."""
    environ: dict[str, Any] = {}
    _add_cgi_variables(environ, scope)
    return environ


def _add_cgi_variables(environ: dict[str, Any], scope: Mapping[str, Any]) -> None:
    """PEP 3333's CGI variables from the scope: the one set of rules for every environ palfrey builds.

    PATH_INFO is the percent-decoded raw path (bytes as latin-1); header names with `_` are
    dropped; repeated headers are joined with "," except Cookie ("; ", RFC 6265); SERVER_NAME and
    SERVER_PORT come from the listener, or from Host (then the scheme's port) on a unix socket.
    """
    root_path: str = scope.get("root_path", "")
    script_name = root_path.encode("utf-8").decode("latin-1") if root_path else ""
    raw_path = scope.get("raw_path")
    if raw_path is None:
        path = scope["path"].encode("utf-8").decode("latin-1")
    elif b"%" in raw_path:
        path = unquote_to_bytes(raw_path).decode("latin-1")
    else:
        path = raw_path.decode("latin-1")
    if script_name and (path == script_name or path.startswith(script_name + "/")):
        path = path[len(script_name) :]
    environ["REQUEST_METHOD"] = scope.get("method", "GET")  # a WebSocket scope (access log) has none
    environ["SCRIPT_NAME"] = script_name
    environ["PATH_INFO"] = path
    environ["QUERY_STRING"] = scope.get("query_string", b"").decode("latin-1")
    environ["SERVER_PROTOCOL"] = "HTTP/" + scope.get("http_version", "1.1")
    environ["wsgi.url_scheme"] = scope.get("scheme", "http")
    server = scope.get("server")
    client = scope.get("client")
    if client:
        environ["REMOTE_ADDR"] = client[0]
        environ["REMOTE_PORT"] = str(client[1])
    for name, value in scope.get("headers", ()):
        key = _environ_key(name)
        if key is None:
            continue
        text = value.decode("latin-1")
        if key in environ:
            separator = "; " if key == "HTTP_COOKIE" else ","
            environ[key] = environ[key] + separator + text
        else:
            environ[key] = text
    if server and server[1] is not None:
        environ["SERVER_NAME"] = server[0]
        environ["SERVER_PORT"] = str(server[1]) if server[1] is not None else "80"
    else:  # a unix socket ([path, None]): the Host header is the best name there is
        host = environ.get("HTTP_HOST", "")
        name, colon, port = host.rpartition(":")
        if not (colon and port.isdigit()):
            name, port = host, ("443" if environ["wsgi.url_scheme"] == "https" else "80")
        environ["SERVER_NAME"] = name or "localhost"
        environ["SERVER_PORT"] = port
    environ.setdefault("CONTENT_TYPE", "")
    environ.setdefault("CONTENT_LENGTH", "")


class InputStream:
    """`wsgi.input`: the request body as a binary file, read from the connection as the app asks.

    Only what the app has not consumed yet is held (at most one received chunk plus the read-ahead),
    so an upload of any size passes through in bounded memory. The first read answers a client's
    `Expect: 100-continue`; nothing is read from the client before that. `read(n)` returns `n` bytes
    unless the body ends first, like a buffered file.
    """

    __slots__ = ("_bridge", "_buffer", "_eof", "_pos")

    def __init__(self, bridge: Bridge) -> None:
        self._bridge = bridge
        self._buffer = b""
        self._pos = 0  # consumed bytes at the start of _buffer: slicing once beats copying the rest
        self._eof = bridge.body_done

    def _more(self) -> bool:
        """Append the next chunk to what is unread; False at the end of the body."""
        if self._eof:
            return False
        chunk = self._bridge.read_chunk()
        if not chunk:
            self._eof = True
            return False
        if self._pos < len(self._buffer):
            self._buffer = self._buffer[self._pos :] + chunk
        else:
            self._buffer = chunk
        self._pos = 0
        return True

    def _take(self, end: int) -> bytes:
        data = self._buffer[self._pos : end]
        self._pos = end
        return data

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0:
            parts = [self._take(len(self._buffer))]
            while not self._eof:
                chunk = self._bridge.read_chunk()
                if not chunk:
                    self._eof = True
                    break
                parts.append(chunk)
            return b"".join(parts)
        while len(self._buffer) - self._pos < size and self._more():
            pass
        return self._take(min(self._pos + size, len(self._buffer)))

    def read1(self, size: int = -1) -> bytes:
        """At most `size` bytes, waiting only if nothing is buffered (what `io` callers expect)."""
        if self._pos >= len(self._buffer):
            self._more()
        available = len(self._buffer) - self._pos
        return self._take(self._pos + (available if size is None or size < 0 else min(size, available)))

    def readline(self, size: int | None = -1) -> bytes:
        limit = size if size is not None and size >= 0 else None
        searched = 0  # unread bytes already searched for a newline
        while True:
            newline = self._buffer.find(b"\n", self._pos + searched)
            available = len(self._buffer) - self._pos
            if newline >= 0:
                end = newline + 1
                break
            if (limit is not None and available >= limit) or not self._more():
                end = len(self._buffer)
                break
            searched = available
        if limit is not None:
            end = min(end, self._pos + limit)
        return self._take(end)

    def readlines(self, hint: int | None = -1) -> list[bytes]:
        lines: list[bytes] = []
        total = 0
        while True:
            line = self.readline()
            if not line:
                return lines
            lines.append(line)
            total += len(line)
            if hint is not None and 0 < hint <= total:
                return lines

    def __iter__(self) -> Iterator[bytes]:
        return self

    def __next__(self) -> bytes:
        line = self.readline()
        if not line:
            raise StopIteration
        return line

    def readable(self) -> bool:
        return True

    def close(self) -> None:
        """The server owns the stream; an app closing it changes nothing."""


class ErrorStream:
    """`wsgi.errors`: text written by the app goes to palfrey's error log, one record per flush.

    Flask logs through a `StreamHandler` on this stream, which writes a whole record (a traceback is
    30 lines) and flushes: that is one record here, not one per line. Text is buffered per thread (the
    stream is shared by the pool's threads) and also flushed when the request ends or the buffer
    passes `MAX_BUFFER`, so nothing written without a flush is lost or held for long.
    """

    __slots__ = ("_local", "pending")

    MAX_BUFFER = 65536

    def __init__(self) -> None:
        self._local = threading.local()
        self.pending = False  # the app ever wrote: only then does the end of a request flush

    def write(self, text: str) -> int:
        local = self._local
        buffer: list[str] | None = getattr(local, "buffer", None)
        if buffer is None:
            buffer = local.buffer = []
            local.size = 0
        buffer.append(text)
        local.size += len(text)
        self.pending = True
        if local.size > self.MAX_BUFFER:
            self.flush()
        return len(text)

    def writelines(self, lines: Any) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        local = self._local
        buffer: list[str] | None = getattr(local, "buffer", None)
        if not buffer:
            return
        text = "".join(buffer)
        buffer.clear()
        local.size = 0
        text = text[:-1] if text.endswith("\n") else text
        if text:
            logger.error("%s", text)


class FileWrapper:
    """`wsgi.file_wrapper`: a file-like object served in blocks, closed with the response."""

    def __init__(self, filelike: Any, blksize: int = _BLOCK) -> None:
        self.filelike = filelike
        self.blksize = blksize

    def close(self) -> None:
        # Looked up now, not at wrap time: Django swaps in its own close() on the file it passes.
        close = getattr(self.filelike, "close", None)
        if close is not None:
            close()

    def __iter__(self) -> Iterator[bytes]:
        read = self.filelike.read
        size = self.blksize
        while True:
            data = read(size)
            if not data:
                return
            yield data
