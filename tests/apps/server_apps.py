"""ASGI apps for the end-to-end server tests (``tests/test_server_*.py``, ``test_cli.py``, ...).

``app`` is the main one. Its lifespan puts ``{"started": "yes", "hits": []}`` in the state; its
routes (matched on the path below ``root_path``):

* ``/sleep?seconds=S``: prints ``app: sleeping`` (so a test knows the request is in flight), sleeps,
  answers ``slept``.
* ``/hang``: prints ``app: hanging`` and never answers.
* ``/env?name=NAME``: answers ``os.environ[NAME]`` (``<unset>`` if missing).
* ``/state``: answers the request's state keys, then sets a key and appends to a list in it, to show
  that each request gets a *shallow* copy.
* ``/stop``: calls ``STOP_HOOK`` (set by a script embedding ``palfrey.Server``), answers ``stopping``.
* anything else: a JSON description of the scope.

Printing to stdout is how an app tells a test something happened: the test harness merges the
server's stdout and stderr and can wait for a line. With ``APP_SHUTDOWN_FILE`` set, lifespan shutdown
writes ``shutdown`` to that file.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Awaitable, Callable
from types import SimpleNamespace
from typing import Any
from urllib.parse import parse_qs

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

STOP_HOOK: Callable[[], None] | None = None


async def read_body(receive: Receive) -> bytes:
    body = b""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return body
        body += message.get("body", b"")
        if not message.get("more_body", False):
            return body


async def respond(
    send: Send,
    body: bytes | str | dict[str, Any] | list[Any],
    status: int = 200,
    headers: list[tuple[bytes, bytes]] | None = None,
) -> None:
    if isinstance(body, (dict, list)):
        content_type = b"application/json"
        data = json.dumps(body).encode()
    else:
        content_type = b"text/plain; charset=utf-8"
        data = body.encode() if isinstance(body, str) else body
    head = [(b"content-type", content_type), (b"content-length", str(len(data)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": head + list(headers or [])})
    await send({"type": "http.response.body", "body": data})


async def lifespan(scope: Scope, receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            scope["state"]["started"] = "yes"
            scope["state"]["hits"] = []
            print("app: lifespan startup", flush=True)
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            marker = os.environ.get("APP_SHUTDOWN_FILE")
            if marker:
                with open(marker, "w") as file:
                    file.write("shutdown")
            print("app: lifespan shutdown", flush=True)
            await send({"type": "lifespan.shutdown.complete"})
            return


def describe(scope: Scope) -> dict[str, Any]:
    state = scope.get("state")
    return {
        "type": scope["type"],
        "asgi": scope.get("asgi"),
        "http_version": scope.get("http_version"),
        "method": scope.get("method"),
        "scheme": scope.get("scheme"),
        "path": scope.get("path"),
        "raw_path": scope["raw_path"].decode("latin-1") if scope.get("raw_path") is not None else None,
        "root_path": scope.get("root_path"),
        "query_string": scope.get("query_string", b"").decode("latin-1"),
        "client": list(scope["client"]) if scope.get("client") else None,
        "server": list(scope["server"]) if scope.get("server") else None,
        "headers": [[k.decode("latin-1"), v.decode("latin-1")] for k, v in scope.get("headers", [])],
        "state": {k: v for k, v in state.items() if isinstance(v, (str, int))} if state is not None else None,
    }


def _route(scope: Scope) -> str:
    path: str = scope["path"]
    root = scope.get("root_path", "")
    return path[len(root) :] if root and path.startswith(root) else path


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        await lifespan(scope, receive, send)
        return
    route = _route(scope)
    query = {k: v[0] for k, v in parse_qs(scope.get("query_string", b"").decode()).items()}
    await read_body(receive)
    if route == "/sleep":
        print("app: sleeping", flush=True)
        await asyncio.sleep(float(query.get("seconds", "2")))
        await respond(send, "slept")
    elif route == "/hang":
        print("app: hanging", flush=True)
        await asyncio.Event().wait()
    elif route == "/env":
        await respond(send, os.environ.get(query["name"], "<unset>"))
    elif route == "/state":
        state = scope["state"]
        payload = {"keys": sorted(state), "started": state.get("started"), "hits": list(state["hits"])}
        state["mutated"] = True  # a top-level change: must not leak into the next request
        state["hits"].append(len(state["hits"]))  # a shared object: shallow copy, so it persists
        await respond(send, payload)
    elif route == "/stop":
        if STOP_HOOK is not None:
            STOP_HOOK()
        await respond(send, "stopping")
    elif route == "/out-headers":
        await respond(send, "with headers", headers=[(b"x-out", b"out-value")])
    else:
        await respond(send, describe(scope))


# ``module:attr.sub`` loading.
nested = SimpleNamespace(inner=SimpleNamespace(app=app))


# --factory.
def create_app() -> Callable[..., Awaitable[None]]:
    print("app: factory called", flush=True)
    return app


def broken_factory(required: str) -> Callable[..., Awaitable[None]]:
    return app


async def _tagged(scope: Scope, receive: Receive, send: Send, tag: str) -> None:
    if scope["type"] == "lifespan":
        await lifespan(scope, receive, send)
        return
    await read_body(receive)
    await respond(send, {"tag": tag, "path": scope["path"]})


# ASGI 2, class-based: the class is the app; an instance per scope.
class ASGI2ClassApp:
    def __init__(self, scope: Scope) -> None:
        self.scope = scope

    async def __call__(self, receive: Receive, send: Send) -> None:
        await _tagged(self.scope, receive, send, "asgi2-class")


# ASGI 2, closure-based.
def asgi2_closure_app(scope: Scope) -> Callable[[Receive, Send], Awaitable[None]]:
    async def instance(receive: Receive, send: Send) -> None:
        await _tagged(scope, receive, send, "asgi2-closure")

    return instance


# ASGI 3 as an instance with an async __call__.
class ASGI3Instance:
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await _tagged(scope, receive, send, "asgi3-instance")


asgi3_instance = ASGI3Instance()


# WSGI.
def wsgi_app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"wsgi"]


not_callable = 42


# Lifespan variants.
async def no_lifespan_app(scope: Scope, receive: Receive, send: Send) -> None:
    """An app that only knows HTTP: under --lifespan auto it must still be served."""
    if scope["type"] != "http":
        raise RuntimeError(f"unsupported scope type {scope['type']}")
    await read_body(receive)
    await respond(send, {"state": sorted(scope.get("state", {}))})


async def startup_failed_app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        await receive()
        await send({"type": "lifespan.startup.failed", "message": "database unreachable at startup"})
        return
    await respond(send, "never")


async def startup_raises_app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        await receive()
        raise RuntimeError("kaboom during startup")
    await respond(send, "never")


async def shutdown_failed_app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        await receive()
        await send({"type": "lifespan.startup.complete"})
        await receive()
        await send({"type": "lifespan.shutdown.failed", "message": "could not flush the queue"})
        return
    await read_body(receive)
    await respond(send, "ok")
