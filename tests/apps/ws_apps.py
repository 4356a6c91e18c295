"""ASGI app for the WebSocket end-to-end tests (``tests/test_websocket*.py``), routed on the path.

It runs in one process, so module-level state is shared by all connections. What happens inside the
server is reported on stdout (the tests read the server's output) or through HTTP control routes,
never guessed with sleeps.

WebSocket routes:

  /echo            accept, echo text and bytes until the client leaves
  /scope           accept, send the scope as JSON, wait for the client to leave
  /subprotocol     accept with the *last* subprotocol offered and an extra header, send its name
  /close           accept, wait for one message, close with 4001 "server bye"
  /close-long      accept, close with 4002 and a 200-byte reason
  /reject          websocket.close before accepting (HTTP 403)
  /no-accept       return without accepting (HTTP 403)
  /raise-before    raise before accepting (HTTP 500)
  /raise-after     accept, then raise (close 1011)
  /http-response   websocket.http.response: 418, headers, a body in two messages (no length)
  /http-response-length  the same with one body message (Content-Length)
  /flood           ?count=&size=: send `count` binary messages of `size` bytes as fast as send() allows;
                   the bytes sent so far are at GET /flood-status
  /flood-until-error ?size=: send binary messages until send() raises; print `flood send raised X`
  /slow-read       accept, wait for event `release-read`, then read messages until the text "end";
                   answer {"count", "bytes"}
  /wait            accept and wait for the client to leave
  /slow-accept     print "slow-accept waiting", accept 1.5 s later, wait for the client to leave
  /send-after-close  accept, wait for the client to leave, then send: reports what send() raised

Every WebSocket that ends prints ``ws-disconnect <path> <code> <reason>``.

HTTP routes: GET /event/set?name=N sets event N; GET /flood-status; GET /rss (resident bytes);
anything else answers ``plain http <path>`` (``--ws none`` serves upgrade requests here).
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
_records: dict[str, Any] = {"flood-sent": 0}


def event(name: str) -> asyncio.Event:
    if name not in _events:
        _events[name] = asyncio.Event()
    return _events[name]


def _query(scope: Scope) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(scope["query_string"].decode()).items()}


def _rss() -> int:
    with open("/proc/self/statm", "rb") as file:
        return int(file.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


async def _until_disconnect(scope: Scope, receive: Receive) -> Message:
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            print(f"ws-disconnect {scope['path']} {message['code']} {message.get('reason', '')}", flush=True)
            return message


async def _lifespan(scope: Scope, receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            scope["state"]["greeting"] = "hello"
            await send({"type": "lifespan.startup.complete"})
        else:
            await send({"type": "lifespan.shutdown.complete"})
            return


async def _http(scope: Scope, receive: Receive, send: Send) -> None:
    path = scope["path"]
    if path == "/event/set":
        event(_query(scope)["name"]).set()
        body = b"set"
    elif path == "/flood-status":
        body = json.dumps({"sent": _records["flood-sent"]}).encode()
    elif path == "/rss":
        body = str(_rss()).encode()
    else:
        body = f"plain http {path}".encode()
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": body})


def _scope_json(scope: Scope) -> str:
    return json.dumps(
        {
            "type": scope["type"],
            "asgi": scope["asgi"],
            "http_version": scope["http_version"],
            "scheme": scope["scheme"],
            "path": scope["path"],
            "raw_path": scope["raw_path"].decode("latin-1"),
            "query_string": scope["query_string"].decode("latin-1"),
            "root_path": scope["root_path"],
            "headers": [[n.decode("latin-1"), v.decode("latin-1")] for n, v in scope["headers"]],
            "client": scope["client"],
            "server": scope["server"],
            "subprotocols": scope["subprotocols"],
            "state": scope["state"],
            "extensions": scope["extensions"],
        }
    )


async def _websocket(scope: Scope, receive: Receive, send: Send) -> None:
    path = scope["path"][len(scope["root_path"]) :]  # routes are below --root-path
    assert (await receive())["type"] == "websocket.connect"
    if path == "/reject":
        await send({"type": "websocket.close"})
        return
    if path == "/no-accept":
        return
    if path == "/raise-before":
        raise RuntimeError("boom before accept")
    if path.startswith("/http-response"):
        headers = [(b"content-type", b"text/plain"), (b"x-app", b"teapot")]
        await send({"type": "websocket.http.response.start", "status": 418, "headers": headers})
        if path == "/http-response":
            await send({"type": "websocket.http.response.body", "body": b"short and ", "more_body": True})
            await send({"type": "websocket.http.response.body", "body": b"stout"})
        else:
            await send({"type": "websocket.http.response.body", "body": b"short and stout"})
        return
    if path == "/slow-accept":
        print("slow-accept waiting", flush=True)
        await asyncio.sleep(1.5)  # long enough for the test to start a shutdown meanwhile
    if path == "/subprotocol":
        offered = scope["subprotocols"]
        chosen = offered[-1] if offered else None
        await send({"type": "websocket.accept", "subprotocol": chosen, "headers": [(b"x-app", b"accepted")]})
        await send({"type": "websocket.send", "text": str(chosen)})
        await _until_disconnect(scope, receive)
        return
    await send({"type": "websocket.accept"})
    if path == "/echo":
        while True:
            message = await receive()
            if message["type"] == "websocket.disconnect":
                print(f"ws-disconnect {path} {message['code']} {message.get('reason', '')}", flush=True)
                return
            if message.get("text") is not None:
                await send({"type": "websocket.send", "text": message["text"]})
            else:
                await send({"type": "websocket.send", "bytes": message["bytes"]})
    elif path == "/scope":
        await send({"type": "websocket.send", "text": _scope_json(scope)})
        await _until_disconnect(scope, receive)
    elif path == "/close":
        await receive()
        await send({"type": "websocket.close", "code": 4001, "reason": "server bye"})
        await _until_disconnect(scope, receive)
    elif path == "/close-long":
        await send({"type": "websocket.close", "code": 4002, "reason": "é" * 100})
        await _until_disconnect(scope, receive)
    elif path == "/raise-after":
        raise RuntimeError("boom after accept")
    elif path == "/flood":
        query = _query(scope)
        chunk = b"x" * int(query["size"])
        for _ in range(int(query["count"])):
            await send({"type": "websocket.send", "bytes": chunk})
            _records["flood-sent"] += len(chunk)
        await _until_disconnect(scope, receive)
    elif path == "/flood-until-error":
        chunk = b"x" * int(_query(scope)["size"])
        try:
            while True:
                await send({"type": "websocket.send", "bytes": chunk})
        except OSError as exc:
            print(f"flood send raised {type(exc).__name__}", flush=True)
        await _until_disconnect(scope, receive)
    elif path == "/slow-read":
        await event("release-read").wait()
        count = total = 0
        while True:
            message = await receive()
            if message["type"] == "websocket.disconnect" or message.get("text") == "end":
                break
            count += 1
            total += len(message.get("bytes") or b"")
        await send({"type": "websocket.send", "text": json.dumps({"count": count, "bytes": total})})
        await _until_disconnect(scope, receive)
    elif path == "/send-after-close":
        await _until_disconnect(scope, receive)
        try:
            await send({"type": "websocket.send", "text": "too late"})
        except OSError as exc:
            print(f"send-after-close raised {type(exc).__name__} OSError", flush=True)
        else:
            print("send-after-close did not raise", flush=True)
    else:
        await _until_disconnect(scope, receive)


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        await _lifespan(scope, receive, send)
    elif scope["type"] == "http":
        await _http(scope, receive, send)
    else:
        await _websocket(scope, receive, send)
