"""Apps for the JSON-log, `http.response.pathsend` and WebSocket `tls` tests (``tests/test_ext_*.py``).

Nothing here prints: the JSON-log tests parse every line the server writes, so an app line would
not be JSON. Routes: /ok, /boom (raises, with a newline in its message), /applog (a record on the
app's own logger, with `extra`), /ext (the extension names of the scope), /file?p=PATH (pathsend;
`cl=N` sends that Content-Length, `zc=1` uses zerocopysend on an open descriptor from position `skip` instead), /parts?p=PATH (two zerocopysend ranges); `count=N` sends N bytes by zerocopysend.
A WebSocket connection gets its scope's `tls` extension as one JSON text message.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs

Scope = dict[str, Any]
Receive = Callable[[], Any]
Send = Callable[[dict[str, Any]], Any]

_log = logging.getLogger("tests.app")


async def _respond(send: Send, status: int, body: bytes) -> None:
    await send(
        {"type": "http.response.start", "status": status, "headers": [(b"content-type", b"text/plain")]}
    )
    await send({"type": "http.response.body", "body": body})


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "websocket":
        await receive()  # websocket.connect
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.send", "text": json.dumps(scope.get("extensions", {}).get("tls"))})
        await receive()  # the client closes (the test reads the connection's TLS details first)
        return
    if scope["type"] != "http":
        return
    path = scope["path"]
    query = {k: v[0] for k, v in parse_qs(scope["query_string"].decode()).items()}
    if path == "/boom":
        raise RuntimeError("boom\nsecond line of the message")
    if path == "/applog":
        _log.warning("app says %s", "hi", extra={"order": 7})
        await _respond(send, 200, b"logged")
        return
    if path == "/ext":
        await _respond(send, 200, json.dumps(sorted(scope.get("extensions", {}))).encode())
        return
    if path == "/file":
        headers = [(b"content-type", b"application/octet-stream")]
        if "cl" in query:
            headers.append((b"content-length", query["cl"].encode()))
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        if "count" in query:  # zerocopysend of `count` bytes from offset 0, perhaps past the end
            with open(query["p"], "rb") as file:
                await send(
                    {
                        "type": "http.response.zerocopysend",
                        "file": file,
                        "offset": 0,
                        "count": int(query["count"]),
                    }
                )
            return
        if query.get("zc"):
            with open(query["p"], "rb", buffering=0) as file:
                file.seek(int(query.get("skip", 0)))  # no offset: sent from the file's position
                await send({"type": "http.response.zerocopysend", "file": file.fileno(), "more_body": True})
                # ...which the server advanced past what it sent: the rest is empty
                await send({"type": "http.response.body", "body": file.read()})
            return
        await send({"type": "http.response.pathsend", "path": query["p"]})
        return
    if path == "/parts":  # two ranges of the file by zerocopysend, then an empty final body: chunked
        await send({"type": "http.response.start", "status": 200, "headers": []})
        with open(query["p"], "rb") as file:
            for offset, count in ((10, 1000), (0, 5)):
                message = {"type": "http.response.zerocopysend", "file": file, "offset": offset}
                await send({**message, "count": count, "more_body": True})
        await send({"type": "http.response.body", "body": b"end"})
        return
    await _respond(send, 200, b"ok")
