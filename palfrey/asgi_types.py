"""ASGI scopes and messages as types: what palfrey hands an app and what it accepts back.

A leaf module (it imports nothing from palfrey), so any module may use it. The TypedDicts say what
the ASGI specification promises for each scope and event; the callable aliases at the bottom are what
palfrey's own code is typed with.

Why the `receive`/`send` aliases carry `MutableMapping[str, Any]` rather than the unions of
TypedDicts: an app may send anything (a typo in `type`, a missing `status`, an extension key), and
palfrey must validate it and answer 500 rather than trust a type. Code that *builds* a message can
annotate it with the TypedDict below (mypy then checks the keys); code that *reads* one from an app
indexes the mapping and validates what it finds.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any, Literal, TypedDict

# --- scopes ------------------------------------------------------------------------------------


class ASGIVersions(TypedDict):
    spec_version: str
    version: Literal["2.0", "3.0"]


class HTTPScope(TypedDict, total=False):
    """Built by the HTTP protocol for each request (all keys are always set by palfrey)."""

    type: Literal["http"]
    asgi: ASGIVersions
    http_version: str
    server: tuple[str, int | None] | None
    client: tuple[str, int] | None
    scheme: str
    method: str
    root_path: str
    path: str
    raw_path: bytes
    query_string: bytes
    headers: Iterable[tuple[bytes, bytes]]
    state: dict[str, Any]
    extensions: dict[str, dict[object, object]]


class WebSocketScope(TypedDict, total=False):
    """Built by the WebSocket upgrade for each connection."""

    type: Literal["websocket"]
    asgi: ASGIVersions
    http_version: str
    server: tuple[str, int | None] | None
    client: tuple[str, int] | None
    scheme: str
    root_path: str
    path: str
    raw_path: bytes
    query_string: bytes
    headers: Iterable[tuple[bytes, bytes]]
    subprotocols: Iterable[str]
    state: dict[str, Any]
    extensions: dict[str, dict[object, object]]


class LifespanScope(TypedDict, total=False):
    type: Literal["lifespan"]
    asgi: ASGIVersions
    state: dict[str, Any]


WWWScope = HTTPScope | WebSocketScope
TypedScope = HTTPScope | WebSocketScope | LifespanScope

# --- HTTP events -------------------------------------------------------------------------------


class HTTPRequestEvent(TypedDict):
    type: Literal["http.request"]
    body: bytes
    more_body: bool


class HTTPDisconnectEvent(TypedDict):
    type: Literal["http.disconnect"]


class HTTPResponseStartEvent(TypedDict, total=False):
    type: Literal["http.response.start"]
    status: int
    headers: Iterable[tuple[bytes, bytes]]
    trailers: bool


class HTTPResponseBodyEvent(TypedDict, total=False):
    type: Literal["http.response.body"]
    body: bytes
    more_body: bool


# --- WebSocket events --------------------------------------------------------------------------


class WebSocketConnectEvent(TypedDict):
    type: Literal["websocket.connect"]


class WebSocketAcceptEvent(TypedDict, total=False):
    type: Literal["websocket.accept"]
    subprotocol: str | None
    headers: Iterable[tuple[bytes, bytes]]


class WebSocketReceiveEvent(TypedDict, total=False):
    type: Literal["websocket.receive"]
    bytes: bytes | None
    text: str | None


class WebSocketSendEvent(TypedDict, total=False):
    type: Literal["websocket.send"]
    bytes: bytes | None
    text: str | None


class WebSocketCloseEvent(TypedDict, total=False):
    type: Literal["websocket.close"]
    code: int
    reason: str | None


class WebSocketDisconnectEvent(TypedDict, total=False):
    type: Literal["websocket.disconnect"]
    code: int
    reason: str | None


# --- lifespan events ---------------------------------------------------------------------------


class LifespanStartupEvent(TypedDict):
    type: Literal["lifespan.startup"]


class LifespanShutdownEvent(TypedDict):
    type: Literal["lifespan.shutdown"]


class LifespanStartupCompleteEvent(TypedDict):
    type: Literal["lifespan.startup.complete"]


class LifespanStartupFailedEvent(TypedDict):
    type: Literal["lifespan.startup.failed"]
    message: str


class LifespanShutdownCompleteEvent(TypedDict):
    type: Literal["lifespan.shutdown.complete"]


class LifespanShutdownFailedEvent(TypedDict):
    type: Literal["lifespan.shutdown.failed"]
    message: str


ReceiveEvent = (
    HTTPRequestEvent
    | HTTPDisconnectEvent
    | WebSocketConnectEvent
    | WebSocketReceiveEvent
    | WebSocketDisconnectEvent
    | LifespanStartupEvent
    | LifespanShutdownEvent
)
SendEvent = (
    HTTPResponseStartEvent
    | HTTPResponseBodyEvent
    | WebSocketAcceptEvent
    | WebSocketSendEvent
    | WebSocketCloseEvent
    | LifespanStartupCompleteEvent
    | LifespanStartupFailedEvent
    | LifespanShutdownCompleteEvent
    | LifespanShutdownFailedEvent
)

# --- what palfrey's code is typed with ---------------------------------------------------------

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
ASGI2App = Callable[[Scope], Callable[[Receive, Send], Awaitable[None]]]
