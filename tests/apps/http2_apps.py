"""The app of the HTTP/2 frame-level tests (tests/test_http2_frames.py): counts the requests it
starts (a reset stream must never reach it), answers slowly on demand, and reads bodies or not."""

from __future__ import annotations

import asyncio
import sys
from typing import Any

started = 0
disconnects = 0


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    global started, disconnects
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            await send({"type": message["type"] + ".complete"})
            if message["type"] == "lifespan.shutdown":
                return
    path = scope["path"]
    if path == "/started":
        await _respond(send, b"%d" % started)
        return
    if path == "/disconnects":
        await _respond(send, b"%d" % disconnects)
        return
    started += 1
    if path == "/wait-disconnect":
        print("waiting for disconnect", file=sys.stderr, flush=True)
        while (await receive())["type"] != "http.disconnect":
            pass
        disconnects += 1
        return
    if path == "/slow":
        print("slow request started", file=sys.stderr, flush=True)  # the test waits for this line
        await asyncio.sleep(1.0)
        await _respond(send, b"slow done")
    elif path == "/no-read":
        await asyncio.sleep(3.0)  # never reads the body: only this stream's window must close
        await _respond(send, b"late")
    elif path == "/big":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        for _ in range(32):
            await send({"type": "http.response.body", "body": b"x" * 32768, "more_body": True})
        await send({"type": "http.response.body", "body": b""})
    elif path == "/echo":
        body = b""
        more = True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        await _respond(send, body)
    else:
        await _respond(send, b"ok")


async def _respond(send: Any, body: bytes) -> None:
    await send(
        {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"%d" % len(body))]}
    )
    await send({"type": "http.response.body", "body": body})
