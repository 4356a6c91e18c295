"""Plain ASGI 3 app for the benchmarks: no framework, so the server is what is measured.

Every server in a scenario serves this same module. Responses carry Content-Length except the
stream, so each server frames them the same way.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

PLAINTEXT = b"Hello, world!"
BODY_64K = b"x" * 65536
STREAM_CHUNK = b"y" * 1024
STREAM_CHUNKS = 16
SLEEP_SECONDS = 0.05

_TEXT = [(b"content-type", b"text/plain")]
_JSON = [(b"content-type", b"application/json")]
_BINARY = [(b"content-type", b"application/octet-stream")]

# ~200 bytes once serialised; serialised per request like a real API would.
JSON_PAYLOAD: dict[str, Any] = {
    "id": 12345,
    "name": "palfrey benchmark",
    "active": True,
    "tags": ["asgi", "wsgi", "http/1.1", "benchmark"],
    "scores": [1.5, 2.25, 3.125, 4.0625],
    "owner": {"id": 7, "login": "benchmark-user", "email": "bench@example.com"},
}


def _with_length(headers: list[tuple[bytes, bytes]], body: bytes) -> list[tuple[bytes, bytes]]:
    return [*headers, (b"content-length", str(len(body)).encode())]


async def _respond(send: Any, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
    await send({"type": "http.response.start", "status": status, "headers": _with_length(headers, body)})
    await send({"type": "http.response.body", "body": body})


async def _read_body(receive: Any) -> bytes:
    chunks = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


async def _http(scope: dict[str, Any], receive: Any, send: Any) -> None:
    path = scope["path"]
    if path == "/plaintext":
        await _respond(send, 200, _TEXT, PLAINTEXT)
    elif path == "/json":
        await _respond(send, 200, _JSON, json.dumps(JSON_PAYLOAD).encode())
    elif path == "/64k":
        await _respond(send, 200, _BINARY, BODY_64K)
    elif path == "/echo":
        await _respond(send, 200, _BINARY, await _read_body(receive))
    elif path == "/stream":
        await send({"type": "http.response.start", "status": 200, "headers": _BINARY})
        for _ in range(STREAM_CHUNKS):
            await send({"type": "http.response.body", "body": STREAM_CHUNK, "more_body": True})
        await send({"type": "http.response.body", "body": b""})
    elif path == "/sleep":
        await asyncio.sleep(SLEEP_SECONDS)
        await _respond(send, 200, _TEXT, PLAINTEXT)
    else:
        await _respond(send, 404, _TEXT, b"Not Found")


async def _websocket(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Echo every message back until the client leaves."""
    message = await receive()
    if message["type"] != "websocket.connect":
        return
    await send({"type": "websocket.accept"})
    while True:
        message = await receive()
        if message["type"] == "websocket.receive":
            if message.get("text") is not None:
                await send({"type": "websocket.send", "text": message["text"]})
            else:
                await send({"type": "websocket.send", "bytes": message.get("bytes") or b""})
        else:
            return


async def _lifespan(receive: Any, send: Any) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    kind = scope["type"]
    if kind == "http":
        await _http(scope, receive, send)
    elif kind == "websocket":
        await _websocket(scope, receive, send)
    elif kind == "lifespan":
        await _lifespan(receive, send)
