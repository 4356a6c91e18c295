"""`--log-level trace`: connection open/close and every ASGI message, as uvicorn traces them.

Nothing here runs unless TRACE is enabled when the server starts: the server then builds connections
from :class:`TracingHttpProtocol` and wraps the app in :class:`MessageLogger`, so the normal path has
no trace test at all (not even one bool per request).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from palfrey.http.protocol import HttpProtocol
from palfrey.logging.access import format_client_addr
from palfrey.logging.levels import TRACE_LOG_LEVEL

Message = MutableMapping[str, Any]
ASGIApp = Callable[..., Awaitable[None]]

_connections = logging.getLogger("palfrey.error")
_messages = logging.getLogger("palfrey.asgi")
_SIZED = ("body", "bytes", "text")


def trace_enabled() -> bool:
    """Decided once per process, after logging is configured (``--log-level trace`` or a log config)."""
    return _connections.isEnabledFor(TRACE_LOG_LEVEL) or _messages.isEnabledFor(TRACE_LOG_LEVEL)


class TracingHttpProtocol(HttpProtocol):
    """The HTTP protocol, plus a TRACE line when a connection opens and when it closes."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        _connections.log(TRACE_LOG_LEVEL, "%s - HTTP connection made", format_client_addr(self.client))

    def connection_lost(self, exc: Exception | None) -> None:
        _connections.log(TRACE_LOG_LEVEL, "%s - HTTP connection lost", format_client_addr(self.client))
        super().connection_lost(exc)


def _abridged(message: Message) -> dict[str, Any]:
    """Bodies are logged by size (`<1024 bytes>`), not content."""
    return {
        key: f"<{len(value)} {key}>" if key in _SIZED and value is not None else value
        for key, value in message.items()
    }


class MessageLogger:
    """ASGI middleware logging every scope, message and outcome on ``palfrey.asgi`` at TRACE."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._ids = itertools.count(1)

    async def __call__(self, scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
        number = next(self._ids)
        client = format_client_addr(scope.get("client"))
        shown = {key: value for key, value in scope.items() if key not in ("headers", "state")}
        _messages.log(TRACE_LOG_LEVEL, "%s - ASGI [%d] Started scope=%s", client, number, shown)

        async def traced_receive() -> Message:
            message: Message = await receive()
            _messages.log(TRACE_LOG_LEVEL, "%s - ASGI [%d] Receive %s", client, number, _abridged(message))
            return message

        async def traced_send(message: Message) -> None:
            _messages.log(TRACE_LOG_LEVEL, "%s - ASGI [%d] Send %s", client, number, _abridged(message))
            await send(message)

        try:
            await self.app(scope, traced_receive, traced_send)
        except BaseException:
            _messages.log(TRACE_LOG_LEVEL, "%s - ASGI [%d] Raised exception", client, number)
            raise
        _messages.log(TRACE_LOG_LEVEL, "%s - ASGI [%d] Completed", client, number)
