"""ASGI 2 ("double callable") apps, presented as ASGI 3."""

from __future__ import annotations

from typing import Any


class ASGI2Middleware:
    """Calls `app(scope)` to get an instance, then `await instance(receive, send)`."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        instance = self.app(scope)
        await instance(receive, send)
