"""WebSocket settings prepared once per server process from the Config (protocols never read Config).

A leaf module: it names the engines but imports none of them (`engines.py` does, on demand), so the
settings, the engine interface and the engine adapters import each other in one direction only.
"""

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
    # A `send` waiting on write back-pressure longer than this aborts the connection (None: no limit).
    send_timeout: float | None = None
    new_engine: Callable[[], Any] | None = None  # per-connection engine maker, set by engines.py


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
