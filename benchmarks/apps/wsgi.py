"""Plain WSGI app for the benchmarks: the same endpoints as `asgi.py`, minus WebSockets."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from asgi import BODY_64K, JSON_PAYLOAD, PLAINTEXT, SLEEP_SECONDS, STREAM_CHUNK, STREAM_CHUNKS

StartResponse = Callable[..., Any]

_TEXT = ("Content-Type", "text/plain")
_JSON = ("Content-Type", "application/json")
_BINARY = ("Content-Type", "application/octet-stream")


def _respond(start_response: StartResponse, status: str, header: tuple[str, str], body: bytes) -> list[bytes]:
    start_response(status, [header, ("Content-Length", str(len(body)))])
    return [body]


def _stream() -> Iterator[bytes]:
    for _ in range(STREAM_CHUNKS):
        yield STREAM_CHUNK


def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    path = environ.get("PATH_INFO", "")
    if path == "/plaintext":
        return _respond(start_response, "200 OK", _TEXT, PLAINTEXT)
    if path == "/json":
        return _respond(start_response, "200 OK", _JSON, json.dumps(JSON_PAYLOAD).encode())
    if path == "/64k":
        return _respond(start_response, "200 OK", _BINARY, BODY_64K)
    if path == "/echo":
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        return _respond(start_response, "200 OK", _BINARY, body)
    if path == "/stream":
        start_response("200 OK", [_BINARY])
        return _stream()
    if path == "/sleep":
        time.sleep(SLEEP_SECONDS)
        return _respond(start_response, "200 OK", _TEXT, PLAINTEXT)
    if path == "/cpu":  # a view that computes (~2 ms of pure Python: templating, serialising, ...)
        total = 0
        for i in range(40_000):
            total += i * i % 7
        return _respond(start_response, "200 OK", _TEXT, b"%d" % total)
    if path == "/gateway":  # a view waiting 1 s on an upstream (the seed's gateway page, without Django)
        time.sleep(1.0)
        return _respond(start_response, "200 OK", _TEXT, PLAINTEXT)
    return _respond(start_response, "404 Not Found", _TEXT, b"Not Found")
