"""gunicorn's per-request hooks, `pre_request(worker, req)` and `post_request(worker, req, environ, resp)`.

Installed only when a config sets one of them (the defaults cost nothing: no wrapper at all):

- `pre_request` runs from a thin wrapper around the app, on the event loop, just before the app is
  called for an HTTP request (not for lifespan, not for WebSocket handshakes: gunicorn's request
  hooks belong to HTTP requests). If it raises, the request is answered 500, as gunicorn does.
- `post_request` runs when the response is complete (the moment gunicorn's access log is written),
  with the same `req` object `pre_request` received, a CGI environ, and the response (`status`,
  `status_code`, `headers`, `sent`). An exception in it is logged and the response is unaffected.

Both run on the worker's event loop: a hook that blocks stalls every connection of the worker.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from palfrey.gunicorn.adapters import gunicorn_response, wsgi_environ
from palfrey.logging import format_target
from palfrey.server.hooks import AccessLogger

logger = logging.getLogger("palfrey.error")

#: Where the hook request object rides with its scope, from pre_request to post_request.
SCOPE_KEY = "gunicorn.request"


class HookRequest:
    """What gunicorn's `Request` offers hooks, built from the ASGI scope.

    `headers` are gunicorn's: (UPPER-CASE NAME, value) string pairs in request order.
    """

    __slots__ = ("__dict__", "headers", "method", "path", "query", "remote_addr", "scheme", "uri", "version")

    def __init__(self, scope: Mapping[str, Any]) -> None:
        self.method: str = scope["method"]
        self.uri = format_target(scope)
        self.path: str = scope["path"]
        self.query: str = scope["query_string"].decode("latin-1")
        major, _, minor = scope.get("http_version", "1.1").partition(".")
        self.version = (int(major), int(minor or 0))
        self.scheme: str = scope["scheme"]
        client = scope.get("client")
        self.remote_addr = (client[0], client[1]) if client else None
        self.headers = [
            (name.decode("latin-1").upper(), value.decode("latin-1")) for name, value in scope["headers"]
        ]

    def __repr__(self) -> str:
        return f"<HookRequest {self.method} {self.uri}>"


def with_pre_request(
    app: Callable[..., Any], hook: Callable[[Any, Any], Any], worker: Any
) -> Callable[..., Any]:
    """The app, with `hook(worker, req)` called before each HTTP request reaches it."""

    async def pre_request_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            request = scope[SCOPE_KEY] = HookRequest(scope)
            hook(worker, request)
        await app(scope, receive, send)

    return pre_request_app


class PostRequestLog:
    """Has the shape of an access logger: calls `post_request`, then the real access log (if any)."""

    __slots__ = ("_hook", "_inner", "_worker")

    def __init__(self, hook: Callable[..., Any], worker: Any, inner: AccessLogger | None) -> None:
        self._hook = hook
        self._worker = worker
        self._inner = inner

    def log(
        self,
        scope: Mapping[str, Any],
        status: int,
        response_headers: Sequence[tuple[bytes, bytes]],
        response_bytes: int,
        duration_ns: int,
    ) -> None:
        if scope.get("type") == "http":
            request = scope.get(SCOPE_KEY)
            if request is None:  # answered before the app ran (a 503 over worker_connections, ...)
                request = HookRequest(scope)
            try:
                self._hook(
                    self._worker,
                    request,
                    wsgi_environ(scope),
                    gunicorn_response(status, response_headers, response_bytes),
                )
            except Exception:
                logger.exception("Exception in post_request hook")
        if self._inner is not None:
            self._inner.log(scope, status, response_headers, response_bytes, duration_ns)


def is_default(cfg: Any, name: str) -> bool:
    """Whether hook `name` is gunicorn's own default (then the worker installs nothing)."""
    setting = cfg.settings.get(name)
    return setting is None or setting.value is setting.default
