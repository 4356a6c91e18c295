"""The engine registry: which sans-I/O engine serves `--ws NAME`, and the per-process settings.

Nothing in `palfrey.websocket` below this module imports it: the adapters import the interface
(`engine.py`) and the settings (`settings.py`), and only this module imports the adapters, on demand
(each needs its optional library). `ServerState` calls `websocket_settings` once at startup.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from palfrey.websocket import settings as _settings
from palfrey.websocket.engine import Engine
from palfrey.websocket.settings import WebSocketSettings, resolve_ws


def _websockets(settings: WebSocketSettings) -> Callable[[], Engine]:
    from palfrey.websocket.websockets_engine import factory

    return factory(settings)


def _wsproto(settings: WebSocketSettings) -> Callable[[], Engine]:
    from palfrey.websocket.wsproto_engine import factory

    return factory(settings)


# Engine name (as `resolve_ws` returns it) -> builder of the per-connection engine maker.
ENGINES: dict[str, Callable[[WebSocketSettings], Callable[[], Engine]]] = {
    "websockets": _websockets,
    "wsproto": _wsproto,
}


def engine_factory(settings: WebSocketSettings) -> Callable[[], Engine]:
    """Build what is shared by all connections once (extension factories), return a per-connection maker."""
    return ENGINES[settings.engine](settings)


def websocket_settings(config: Any) -> WebSocketSettings | None:
    """The process's WebSocket settings, or None (--ws none, or no engine installed)."""
    engine = resolve_ws(config.ws)
    if engine is None:
        return None
    settings = WebSocketSettings(
        engine=engine,
        max_size=config.ws_max_size,
        max_queue=config.ws_max_queue,
        ping_interval=config.ws_ping_interval,
        ping_timeout=config.ws_ping_timeout,
        per_message_deflate=config.ws_per_message_deflate,
        window_bits=config.ws_deflate_window_bits,
        mem_level=_settings.DEFLATE_MEM_LEVEL,  # read at call time: docs_src/websockets/memory.py patches it
        send_timeout=float(config.timeout_send),
    )
    settings.new_engine = engine_factory(settings)
    return settings
