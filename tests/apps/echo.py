"""ASGI echo application used by the request corpus (``tests/test_corpus.py``).

``GET /__count`` answers ``{"count": N}``, where N is the number of *other* requests this process
has handled so far.  The corpus reads it before and after an invalid request to prove that the
request never reached the application.

Every other request is counted as soon as the application is called; its whole body is read and
the request is echoed back as JSON (status 200)::

    {"method": ..., "path": ..., "raw_path": ..., "query_string": ..., "http_version": ...,
     "headers": [[name, value], ...], "body": ...}

Byte strings are decoded as latin-1, so every byte maps to exactly one code point and the test can
recover the exact bytes with ``.encode("latin-1")``.  The request method is also returned in the
``x-echo-method`` response header, which survives a HEAD request (whose body the server drops).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

COUNT_PATH = "/__count"

_handled = 0


def _latin1(value: bytes | None) -> str | None:
    return None if value is None else bytes(value).decode("latin-1")


async def _respond(send: Send, payload: dict[str, Any], method: str) -> None:
    body = json.dumps(payload).encode("ascii")
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode("ascii")),
                (b"x-echo-method", method.encode("latin-1")),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    global _handled

    if scope["type"] == "lifespan":
        await _lifespan(receive, send)
        return
    if scope["type"] != "http":
        return

    method: str = scope["method"]
    if method == "GET" and scope["path"] == COUNT_PATH:
        await _respond(send, {"count": _handled}, method)
        return

    _handled += 1
    body = bytearray()
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
        body += message.get("body", b"")
        if not message.get("more_body", False):
            break

    payload = {
        "method": method,
        "path": scope["path"],
        "raw_path": _latin1(scope.get("raw_path")),
        "query_string": _latin1(scope.get("query_string", b"")),
        "http_version": scope.get("http_version"),
        "headers": [[_latin1(name), _latin1(value)] for name, value in scope.get("headers", [])],
        "body": _latin1(bytes(body)),
    }
    await _respond(send, payload, method)
