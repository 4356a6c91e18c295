"""WebSocket settings prepared once per server process from the Config (protocols never read Config)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

# zlib memLevel for the compressor: 5 uses 16 KiB of hash tables instead of 128 KiB at the default 8,
# for a compression ratio within a few percent on typical JSON/text messages (docs/websockets.md).
DEFLATE_MEM_LEVEL = 5


@dataclass(slots=True)
class WebSocketSettings:
    """What every WebSocket connection of one process shares."""

    engine: str  # "websockets" or "wsproto"
    max_size: int
    max_queue: int
    ping_interval: float | None
    ping_timeout: float | None
    per_message_deflate: bool
    window_bits: int
    mem_level: int = DEFLATE_MEM_LEVEL
    new_engine: Callable[[], Any] | None = None  # per-connection engine maker, set once below


def resolve_ws(name: str) -> str | None:
    """auto: websockets' sans-I/O protocol when installed, then wsproto, else None (no WebSockets)."""
    if name == "none":
        return None
    candidates = ("websockets", "wsproto") if name == "auto" else (name,)
    for candidate in candidates:
        try:
            if candidate == "websockets":
                import websockets.server  # noqa: F401
            else:
                import wsproto  # noqa: F401
        except ImportError:
            continue
        return candidate
    return None


def websocket_settings(config: Any) -> WebSocketSettings | None:
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
        mem_level=DEFLATE_MEM_LEVEL,
    )
    from palfrey.websocket.engine import engine_factory

    settings.new_engine = engine_factory(settings)
    return settings
