"""ASGI 2 ("double callable") apps, presented as ASGI 3."""

from __future__ import annotations

from palfrey.asgi_types import ASGI2App, Receive, Scope, Send


class ASGI2Middleware:
    """Calls `app(scope)` to get an instance, then `await instance(receive, send)`."""

    def __init__(self, app: ASGI2App) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        instance = self.app(scope)
        await instance(receive, send)
