"""Apps served by real gunicorn in tests/test_gunicorn*.py.

`app` routes:
  /pid          the worker's pid (which gunicorn worker answered)
  /slow?s=N     logs "slow request started pid=P", sleeps N seconds without blocking, answers "done"
  /block        blocks the worker's event loop (a sync sleep in an async handler)
  /scheme       scope["scheme"], scope["client"] host and scope["root_path"], as JSON
  /started      what lifespan startup put in the state
anything else   "ok"
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qs

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


async def _lifespan(receive: Receive, send: Send, state: dict[str, Any], fail: bool = False) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            if fail:
                await send({"type": "lifespan.startup.failed", "message": "database unreachable"})
                return
            state["started_by"] = os.getpid()
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


async def _text(send: Send, body: bytes, content_type: bytes = b"text/plain") -> None:
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", content_type), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        await _lifespan(receive, send, scope.setdefault("state", {}))
        return
    path = scope["path"]
    if path == "/pid":
        await _text(send, str(os.getpid()).encode())
    elif path == "/slow":
        seconds = float(parse_qs(scope["query_string"].decode()).get("s", ["1"])[0])
        print(f"slow request started pid={os.getpid()}", file=sys.stderr, flush=True)
        await asyncio.sleep(seconds)
        await _text(send, b"done")
    elif path == "/block":
        print(f"blocking the loop pid={os.getpid()}", file=sys.stderr, flush=True)
        time.sleep(60)
        await _text(send, b"unblocked")
    elif path == "/scheme":
        client = scope.get("client")
        payload = {
            "scheme": scope["scheme"],
            "client": client[0] if client else None,
            "root_path": scope["root_path"],
        }
        await _text(send, json.dumps(payload).encode(), b"application/json")
    elif path == "/started":
        await _text(send, str(scope.get("state", {}).get("started_by")).encode())
    else:
        await _text(send, b"ok")


async def failing_startup(scope: Scope, receive: Receive, send: Send) -> None:
    """Lifespan startup fails: gunicorn must stop, not respawn forever."""
    if scope["type"] == "lifespan":
        await _lifespan(receive, send, {}, fail=True)
        return
    await _text(send, b"unreachable")


def wsgi_app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
    body = f"wsgi {environ['REQUEST_METHOD']} {environ['PATH_INFO']} pid={os.getpid()}".encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


async def websocket_app(scope: Scope, receive: Receive, send: Send) -> None:
    """`app`, plus a WebSocket at any path that echoes text ("pid" is answered with the worker's pid)."""
    if scope["type"] != "websocket":
        await app(scope, receive, send)
        return
    await receive()  # websocket.connect
    await send({"type": "websocket.accept"})
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            return
        text = message.get("text") or ""
        await send({"type": "websocket.send", "text": str(os.getpid()) if text == "pid" else text})


def wsgi_thread_app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
    """Sleeps 0.3 s in the WSGI pool and answers the name of the thread that ran it."""
    time.sleep(0.3)
    import threading

    body = threading.current_thread().name.encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
