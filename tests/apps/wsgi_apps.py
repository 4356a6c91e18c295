"""Plain WSGI callables for the end-to-end WSGI tests (``tests/test_wsgi*.py``).

``app`` routes on ``PATH_INFO``; query parameters tune each route. An app tells the test that
something happened by printing a line (the harness merges the server's output and can wait for it).
Routes that block do so on a FIFO named by ``?fifo=``: the app opens it for reading, which blocks
until the test opens it for writing, so tests release them with an event, never a sleep.
"""

from __future__ import annotations

import json
import sys
import threading
import time
import zlib
from collections.abc import Callable, Iterable, Iterator
from typing import Any
from urllib.parse import parse_qs

StartResponse = Callable[..., Any]
Environ = dict[str, Any]

CHUNK = b"x" * 65536
_lock = threading.Lock()
_stats = {"produced": 0, "active": 0, "max_active": 0}


def _query(environ: Environ) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(environ["QUERY_STRING"]).items()}


def _say(line: str) -> None:
    print(line, flush=True)


def _json(start_response: StartResponse, data: Any, status: str = "200 OK") -> list[bytes]:
    body = json.dumps(data).encode()
    start_response(status, [("Content-Type", "application/json")])
    return [body]


def _text(start_response: StartResponse, text: str, status: str = "200 OK") -> list[bytes]:
    start_response(status, [("Content-Type", "text/plain")])
    return [text.encode()]


def _wait_fifo(path: str) -> None:
    with open(path, "rb") as fifo:
        fifo.read()


class Stream:
    """An iterable with close(): counts what it produced and says when it was closed."""

    def __init__(self, tag: str, chunks: int, size: int) -> None:
        self.tag = tag
        self.chunks = chunks
        self.chunk = CHUNK[:size] if size <= len(CHUNK) else b"x" * size

    def __iter__(self) -> Iterator[bytes]:
        for _ in range(self.chunks):
            with _lock:
                _stats["produced"] += len(self.chunk)
            yield self.chunk

    def close(self) -> None:
        _say(f"app: closed {self.tag}")


def environ_view(environ: Environ, start_response: StartResponse) -> list[bytes]:
    view = {k: v for k, v in environ.items() if isinstance(v, (str, int, bool, float))}
    view["wsgi.version"] = list(environ["wsgi.version"])
    view["keys"] = sorted(environ)
    view["file_wrapper"] = callable(environ.get("wsgi.file_wrapper"))
    view["input_read"] = callable(getattr(environ["wsgi.input"], "read", None))
    view["errors_write"] = callable(getattr(environ["wsgi.errors"], "write", None))
    return _json(start_response, view)


def echo(environ: Environ, start_response: StartResponse) -> list[bytes]:
    """Read the body the way ?mode= says and describe what came out."""
    stream = environ["wsgi.input"]
    mode = _query(environ).get("mode", "read")
    if mode == "read":
        parts = [stream.read()]
    elif mode == "readn":
        size = int(_query(environ).get("n", "3"))
        parts = list(iter(lambda: stream.read(size), b""))
    elif mode == "readline":
        parts = list(iter(stream.readline, b""))
    elif mode == "readline_limit":
        parts = list(iter(lambda: stream.readline(4), b""))
    elif mode == "readlines":
        parts = stream.readlines()
    elif mode == "iter":
        parts = list(stream)
    else:
        raise ValueError(mode)
    return _json(
        start_response,
        {"parts": [p.decode("latin-1") for p in parts], "after": stream.read().decode("latin-1")},
    )


def upload(environ: Environ, start_response: StartResponse) -> list[bytes]:
    """Read a large body in 64 KiB pieces; only its length and CRC are kept."""
    stream = environ["wsgi.input"]
    length = crc = 0
    try:
        while True:
            block = stream.read(65536)
            if not block:
                break
            length += len(block)
            crc = zlib.crc32(block, crc)
    except OSError as exc:
        _say(f"app: upload interrupted: {type(exc).__name__}")
        raise
    return _json(start_response, {"length": length, "crc": crc})


def stream_route(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    query = _query(environ)
    headers = [("Content-Type", "application/octet-stream")]
    if "length" in query:
        headers.append(("Content-Length", query["length"]))
    start_response("200 OK", headers)
    return Stream(query.get("tag", "stream"), int(query.get("chunks", "4")), int(query.get("size", "10")))


def stats(environ: Environ, start_response: StartResponse) -> list[bytes]:
    with _lock:
        data = dict(_stats)
        if _query(environ).get("reset"):
            _stats.update(produced=0, max_active=0)
    return _json(start_response, data)


def write_route(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    write = start_response("200 OK", [("Content-Type", "text/plain")])
    write(b"written 1\n")
    write(b"")
    write(b"written 2\n")
    return iter([b"returned\n"])


def gate(environ: Environ, start_response: StartResponse) -> Iterator[bytes]:
    """Streams 'first', then waits for the test before 'second': proves chunks go out as they come."""
    fifo = _query(environ)["fifo"]
    start_response("200 OK", [("Content-Type", "text/plain")])
    yield b"first\n"
    _wait_fifo(fifo)
    yield b"second\n"


def block(environ: Environ, start_response: StartResponse) -> list[bytes]:
    query = _query(environ)
    _say(f"app: blocking {query.get('tag', '')}")
    _wait_fifo(query["fifo"])
    return _text(start_response, "released")


def sleep(environ: Environ, start_response: StartResponse) -> list[bytes]:
    with _lock:
        _stats["active"] += 1
        _stats["max_active"] = max(_stats["max_active"], _stats["active"])
    try:
        time.sleep(float(_query(environ).get("seconds", "0.2")))
    finally:
        with _lock:
            _stats["active"] -= 1
    return _text(start_response, "slept")


def exc_info_early(environ: Environ, start_response: StartResponse) -> list[bytes]:
    """An error page replacing a response whose head had not gone out yet."""
    start_response("200 OK", [("Content-Type", "text/plain"), ("X-Original", "yes")])
    try:
        raise ValueError("boom")
    except ValueError:
        start_response("503 Service Unavailable", [("Content-Type", "text/plain")], sys.exc_info())
    return [b"replaced"]


def exc_info_late(environ: Environ, start_response: StartResponse) -> Iterator[bytes]:
    """After the head went out, start_response(exc_info=...) re-raises: the connection is closed."""
    start_response("200 OK", [("Content-Type", "text/plain")])
    yield b"partial"
    try:
        raise ValueError("late boom")
    except ValueError:
        start_response("500 Internal Server Error", [], sys.exc_info())
    yield b"never"


def error_before(environ: Environ, start_response: StartResponse) -> list[bytes]:
    raise RuntimeError("error before start_response")


def error_after(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain")])

    def body() -> Iterator[bytes]:
        try:
            yield b"some data"
            raise RuntimeError("error after the head was sent")
        finally:
            _say("app: error_after closed")

    return body()


def no_start(environ: Environ, start_response: StartResponse) -> list[bytes]:
    return [b"nobody called start_response"]


def lazy_start(environ: Environ, start_response: StartResponse) -> Iterator[bytes]:
    start_response("201 Created", [("Content-Type", "text/plain")])
    yield b""
    yield b"lazy"


def errors_stream(environ: Environ, start_response: StartResponse) -> list[bytes]:
    environ["wsgi.errors"].write("message to wsgi.errors\n")
    environ["wsgi.errors"].flush()
    return _text(start_response, "logged")


def file_route(environ: Environ, start_response: StartResponse) -> Any:
    start_response("200 OK", [("Content-Type", "text/x-python")])
    return environ["wsgi.file_wrapper"](open(__file__, "rb"), 1024)


def no_read(environ: Environ, start_response: StartResponse) -> list[bytes]:
    return _text(start_response, "did not read")


def empty(environ: Environ, start_response: StartResponse) -> list[bytes]:
    start_response("204 No Content", [])
    return []


ROUTES: dict[str, Callable[[Environ, StartResponse], Any]] = {
    "/environ": environ_view,
    "/echo": echo,
    "/upload": upload,
    "/stream": stream_route,
    "/stats": stats,
    "/write": write_route,
    "/gate": gate,
    "/block": block,
    "/sleep": sleep,
    "/exc-info-early": exc_info_early,
    "/exc-info-late": exc_info_late,
    "/error-before": error_before,
    "/error-after": error_after,
    "/no-start": no_start,
    "/lazy-start": lazy_start,
    "/errors": errors_stream,
    "/file": file_route,
    "/no-read": no_read,
    "/empty": empty,
}


def app(environ: Environ, start_response: StartResponse) -> Any:
    path = environ["PATH_INFO"]
    route = environ_view if path.startswith("/environ") else ROUTES.get(path)
    if route is None:
        return _text(start_response, f"no route {environ['PATH_INFO']}", "404 Not Found")
    return route(environ, start_response)


class CallableApp:
    """A WSGI app that is an instance: auto-detection must see `(environ, start_response)` too."""

    def __call__(self, environ: Environ, start_response: StartResponse) -> list[bytes]:
        return _text(start_response, "instance app")


instance_app = CallableApp()
