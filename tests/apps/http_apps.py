"""ASGI app for the HTTP/1.1 end-to-end tests (``tests/test_http_*.py``): one app, routed on the path.

It runs in one process (``--workers 1``), so module-level state is shared by all connections. Tests
that must wait for something to happen inside the server use *events*: a handler sets a named
event, and ``GET /event/wait?name=N`` answers once it is set (or 504 after ``timeout`` seconds), so
a test awaits the server instead of sleeping. ``GET /event/set?name=N`` sets one from outside.

Routes (anything else: 404):

  /echo[/...]       read the whole body; answer JSON with the scope and what receive() gave
  /stream           ?n=&size=: n chunks of `size` bytes, no Content-Length
  /fixed            Content-Length set by the app, one body message (HEAD keeps the length)
  /status           ?code=&body=&close=: that status, with the body if given (close: the app
                    sets `Connection: close`)
  /too-long         Content-Length 5, 10 bytes sent
  /too-short        Content-Length 10, 5 bytes sent
  /own-headers      the app sets its own `server` and `date`
  /raise-before     raises before the response starts
  /raise-after      starts a streamed response, then raises
  /no-response      returns without sending anything
  /no-body-message  sends http.response.start only, then returns
  /state            scope["state"] as seen by this request, then mutates it
  /no-read          answers at once without reading the body
  /read-after       waits for event `release-read`, then reads the body (100-continue tests)
  /slow-reader      reads one body message, sets `slow-reader-waiting`, waits for `release-reader`,
                    then reads the rest: records the largest body message and the total
  /slow-reader/result  the numbers recorded by /slow-reader (after it finished)
  /big-stream       ?total=&size=: streams `total` bytes; sets `big-stream-blocked` once a send()
                    waited; /big-stream/progress tells how far send() got, and the RSS
  /wait-disconnect  sets `waiting-in-receive`, reads the body (`body-read`), then waits in
                    receive(); /wait-disconnect/result says how the wait ended
  /hold             waits for event `release-hold`, or for the client to leave (concurrency tests)
  /rss              the process's resident memory in bytes (Linux)
  /event/set-later  ?name=&delay=: answers at once, sets the event `delay` seconds later (a release
                    that needs no new connection, for tests that shut the listener down meanwhile)
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qs

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

_events: dict[str, asyncio.Event] = {}
_records: dict[str, Any] = {}


def event(name: str) -> asyncio.Event:
    if name not in _events:
        _events[name] = asyncio.Event()
    return _events[name]


def _latin1(value: bytes) -> str:
    return bytes(value).decode("latin-1")


async def respond(
    send: Send, status: int, body: bytes = b"", headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    await send({"type": "http.response.start", "status": status, "headers": headers or []})
    await send({"type": "http.response.body", "body": body})


async def respond_json(send: Send, payload: Any, status: int = 200) -> None:
    body = json.dumps(payload).encode()
    await respond(
        send,
        status,
        body,
        [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
    )


async def read_body(receive: Receive) -> tuple[bytes, list[int], bool]:
    """The whole body, the sizes of the body messages, and whether a disconnect ended it."""
    body = bytearray()
    sizes = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return bytes(body), sizes, True
        sizes.append(len(message.get("body", b"")))
        body += message.get("body", b"")
        if not message.get("more_body", False):
            return bytes(body), sizes, False


def _rss() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


async def lifespan(receive: Receive, send: Send, scope: Scope) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            scope["state"]["greeting"] = "hello"
            scope["state"]["items"] = ["lifespan"]
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        await lifespan(receive, send, scope)
        return
    assert scope["type"] == "http"
    path = scope["path"]
    root = scope["root_path"]
    if root and path.startswith(root):
        path = path[len(root) :]
    query = {k: v[0] for k, v in parse_qs(scope["query_string"].decode("latin-1")).items()}
    handler = ROUTES.get(path) or ROUTES.get("/" + path.split("/")[1])  # /echo/any/thing -> /echo
    if handler is None:
        await respond(send, 404, b"not found")
        return
    await handler(scope, receive, send, query)


async def echo(scope: Scope, receive: Receive, send: Send, query: dict[str, str]) -> None:
    body, sizes, disconnected = await read_body(receive)
    if disconnected:
        return
    await respond_json(
        send,
        {
            "type": scope["type"],
            "asgi": scope["asgi"],
            "http_version": scope["http_version"],
            "method": scope["method"],
            "scheme": scope["scheme"],
            "path": scope["path"],
            "raw_path": _latin1(scope["raw_path"]),
            "query_string": _latin1(scope["query_string"]),
            "root_path": scope["root_path"],
            "headers": [[_latin1(k), _latin1(v)] for k, v in scope["headers"]],
            "client": scope["client"],
            "server": scope["server"],
            "body": _latin1(body),
            "body_messages": sizes,
        },
    )


async def stream(scope: Scope, receive: Receive, send: Send, query: dict[str, str]) -> None:
    n, size = int(query.get("n", "3")), int(query.get("size", "5"))
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    for i in range(n):
        await send({"type": "http.response.body", "body": bytes([97 + i % 26]) * size, "more_body": True})
    await send({"type": "http.response.body", "body": b""})


async def stream_wait(scope: Scope, receive: Receive, send: Send, query: dict[str, str]) -> None:
    """Two chunks, then a wait on event `stream-go`: what was sent must reach the client meanwhile."""
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": b"first|", "more_body": True})
    await send({"type": "http.response.body", "body": b"second|", "more_body": True})
    await asyncio.wait_for(event("stream-go").wait(), 10)
    event("stream-go").clear()
    await send({"type": "http.response.body", "body": b"last", "more_body": False})


async def fixed(scope: Scope, receive: Receive, send: Send, query: dict[str, str]) -> None:
    await respond(send, 200, b"0123456789", [(b"content-length", b"10"), (b"content-type", b"text/plain")])


async def status(scope: Scope, receive: Receive, send: Send, query: dict[str, str]) -> None:
    headers = [(b"connection", b"close")] if query.get("close") else []
    await respond(send, int(query["code"]), query.get("body", "").encode(), headers)


async def too_long(scope: Scope, receive: Receive, send: Send, query: dict[str, str]) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"5")]})
    await send({"type": "http.response.body", "body": b"0123456789"})


async def too_short(scope: Scope, receive: Receive, send: Send, query: dict[str, str]) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"10")]})
    await send({"type": "http.response.body", "body": b"01234"})


async def own_headers(scope: Scope, receive: Receive, send: Send, query: dict[str, str]) -> None:
    await respond(send, 200, b"ok", [(b"Server", b"my-server"), (b"Date", b"Thu, 01 Jan 1970 00:00:00 GMT")])


async def raise_before(scope: Scope, receive: Receive, send: Send, query: dict[str, str]) -> None:
    raise RuntimeError("boom before the response")


async def raise_after(scope: Scope, receive: Receive, send: Send, query: dict[str, str]) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"partial", "more_body": True})
    raise RuntimeError("boom after the response started")


async def no_response(scope: Scope, receive: Receive, send: Send, query: dict[str, str]) -> None:
    return None


async def no_body_message(scope: Scope, receive: Receive, send: Send, query: dict[str, str]) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})


async def state(scope: Scope, receive: Receive, send: Send, query: dict[str, str]) -> None:
    seen = dict(scope["state"])
    scope["state"]["greeting"] = "changed by a request"
    scope["state"]["leak"] = True
    await respond_json(send, seen)


async def no_read(scope: Scope, receive: Receive, send: Send, query: dict[str, str]) -> None:
    await respond(send, 200, b"answered without reading", [(b"content-length", b"24")])


async def read_after(scope: Scope, receive: Receive, send: Send, query: dict[str, str]) -> None:
    release = event("release-read")
    await asyncio.wait_for(release.wait(), 10)
    release.clear()
    body, _, _ = await read_body(receive)
    await respond(send, 200, b"read %d" % len(body))


async def slow_reader(scope: Scope, receive: Receive, send: Send, query: dict[str, str]) -> None:
    first = await receive()
    largest = total = len(first.get("body", b""))
    event("slow-reader-waiting").set()
    await asyncio.wait_for(event("release-reader").wait(), 20)
    more = first.get("more_body", False)
    while more:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        largest = max(largest, len(chunk))
        total += len(chunk)
        more = message.get("more_body", False)
    _records["slow-reader"] = {"largest": largest, "total": total}
    event("slow-reader-done").set()
    await respond(send, 200, b"%d" % total)


async def slow_reader_result(scope: Scope, receive: Receive, send: Send, query: dict[str, str]) -> None:
    await asyncio.wait_for(event("slow-reader-done").wait(), 10)
    await respond_json(send, _records["slow-reader"])


async def big_stream(scope: Scope, receive: Receive, send: Send, query: dict[str, str]) -> None:
    total, size = int(query["total"]), int(query.get("size", "65536"))
    progress = _records["big-stream"] = {"sent": 0, "in_send": False, "done": False}
    await send(
        {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"%d" % total)]}
    )
    chunk = b"x" * size
    loop = asyncio.get_running_loop()
    while progress["sent"] < total:
        part = chunk[: total - progress["sent"]]
        progress["in_send"] = True
        # Set while this send() is still waiting: the server applies back-pressure.
        blocked = loop.call_later(0.2, event("big-stream-blocked").set)
        await send({"type": "http.response.body", "body": part, "more_body": True})
        blocked.cancel()
        progress["in_send"] = False
        progress["sent"] += len(part)
    await send({"type": "http.response.body", "body": b""})
    progress["done"] = True


async def big_stream_progress(scope: Scope, receive: Receive, send: Send, query: dict[str, str]) -> None:
    await respond_json(send, {**_records.get("big-stream", {}), "rss": _rss()})


async def wait_disconnect(scope: Scope, receive: Receive, send: Send, query: dict[str, str]) -> None:
    """Reads the body, then keeps waiting in receive(): what ends the wait must be a disconnect."""
    event("waiting-in-receive").set()
    _, _, disconnected = await read_body(receive)
    if not disconnected:
        event("body-read").set()
        message = await receive()
        assert message["type"] == "http.disconnect", message
    _records["after-body"] = "disconnect during body" if disconnected else "disconnect after body"
    event("receive-returned").set()


async def after_body(scope: Scope, receive: Receive, send: Send, query: dict[str, str]) -> None:
    await asyncio.wait_for(event("receive-returned").wait(), 10)
    for name in ("waiting-in-receive", "body-read", "receive-returned"):
        event(name).clear()
    await respond(send, 200, _records["after-body"].encode())


async def hold(scope: Scope, receive: Receive, send: Send, query: dict[str, str]) -> None:
    """Holds its request until event `release-hold` is set or the client goes away."""
    await read_body(receive)
    release = asyncio.ensure_future(event("release-hold").wait())
    gone = asyncio.ensure_future(receive())
    done, pending = await asyncio.wait({release, gone}, timeout=10, return_when=asyncio.FIRST_COMPLETED)
    for task in pending:
        task.cancel()
    if release in done:
        await respond(send, 200, b"held")


async def rss(scope: Scope, receive: Receive, send: Send, query: dict[str, str]) -> None:
    await respond(send, 200, b"%d" % _rss())


async def event_set(scope: Scope, receive: Receive, send: Send, query: dict[str, str]) -> None:
    event(query["name"]).set()
    await respond(send, 200, b"set")


async def event_set_later(scope: Scope, receive: Receive, send: Send, query: dict[str, str]) -> None:
    asyncio.get_running_loop().call_later(float(query["delay"]), event(query["name"]).set)
    await respond(send, 200, b"scheduled")


async def event_clear(scope: Scope, receive: Receive, send: Send, query: dict[str, str]) -> None:
    event(query["name"]).clear()
    await respond(send, 200, b"cleared")


async def event_wait(scope: Scope, receive: Receive, send: Send, query: dict[str, str]) -> None:
    try:
        await asyncio.wait_for(event(query["name"]).wait(), float(query.get("timeout", "5")))
    except asyncio.TimeoutError:
        await respond(send, 504, b"timeout")
        return
    await respond(send, 200, b"set")


ROUTES: dict[str, Callable[[Scope, Receive, Send, dict[str, str]], Awaitable[None]]] = {
    "/echo": echo,
    "/stream": stream,
    "/stream-wait": stream_wait,
    "/fixed": fixed,
    "/status": status,
    "/too-long": too_long,
    "/too-short": too_short,
    "/own-headers": own_headers,
    "/raise-before": raise_before,
    "/raise-after": raise_after,
    "/no-response": no_response,
    "/no-body-message": no_body_message,
    "/state": state,
    "/no-read": no_read,
    "/read-after": read_after,
    "/slow-reader": slow_reader,
    "/slow-reader/result": slow_reader_result,
    "/big-stream": big_stream,
    "/big-stream/progress": big_stream_progress,
    "/wait-disconnect": wait_disconnect,
    "/wait-disconnect/result": after_body,
    "/hold": hold,
    "/rss": rss,
    "/event/set": event_set,
    "/event/set-later": event_set_later,
    "/event/clear": event_clear,
    "/event/wait": event_wait,
}
