"""Apps for the running-at-scale tests (``tests/test_scale_*.py``): body limit, request timeout.

Each app tells the test what it saw by printing one line (the harness merges the server's output
and waits for it), e.g. ``SCALE body complete 10`` or ``SCALE body disconnect 65536``.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qs

Scope = dict[str, Any]
Receive = Callable[[], Any]
Send = Callable[[dict[str, Any]], Any]


def _say(line: str) -> None:
    print(f"SCALE {line}", flush=True)


async def _respond(send: Send, status: int, body: bytes) -> None:
    await send(
        {"type": "http.response.start", "status": status, "headers": [(b"content-type", b"text/plain")]}
    )
    await send({"type": "http.response.body", "body": body})


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    """/echo reads the whole body; /early starts a streamed response, then reads; /sleep?s= waits."""
    if scope["type"] != "http":
        return
    path = scope["path"]
    query = {k: v[0] for k, v in parse_qs(scope["query_string"].decode()).items()}
    if path == "/sleep":
        try:
            await asyncio.sleep(float(query.get("s", "30")))
        except asyncio.CancelledError:
            _say("sleep cancelled")
            raise
        await _respond(send, 200, b"slept")
        return
    if path == "/tls":
        body = json.dumps(scope.get("extensions", {}).get("tls")).encode()
        await _respond(send, 200, body)
        return
    if path == "/sse":
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"text/event-stream")],
            }
        )
        await send({"type": "http.response.body", "body": b"data: hello\n\n", "more_body": True})
        while (await receive())["type"] != "http.disconnect":
            pass
        _say("sse disconnect")
        if query.get("bye"):
            await send({"type": "http.response.body", "body": b"data: bye\n\n", "more_body": True})
        return  # without a final message: the server ends the stream cleanly during a drain
    if path == "/early":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"begun\n", "more_body": True})
    received = 0
    _say("reading")
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            _say(f"body disconnect {received}")
            return
        received += len(message.get("body", b""))
        if not message.get("more_body", False):
            break
    _say(f"body complete {received}")
    if path == "/early":
        await send({"type": "http.response.body", "body": b"done\n"})
        return
    await _respond(send, 200, str(received).encode())


def wsgi_app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    """/echo reads wsgi.input to the end; /sleep?s= blocks its thread."""
    path = environ["PATH_INFO"]
    query = {k: v[0] for k, v in parse_qs(environ["QUERY_STRING"]).items()}
    if path == "/sleep":
        time.sleep(float(query.get("s", "2")))
        _say("wsgi sleep returned")
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"slept"]
    received = 0
    _say("wsgi reading")
    try:
        while True:
            chunk = environ["wsgi.input"].read(4096)
            if not chunk:
                break
            received += len(chunk)
    except Exception as exc:  # the bridge's ClientDisconnected
        _say(f"wsgi body error {type(exc).__name__} {received}")
        raise
    _say(f"wsgi body complete {received}")
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [str(received).encode()]
