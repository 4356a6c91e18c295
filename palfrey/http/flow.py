"""Write flow control shared by the HTTP and WebSocket connection protocols.

The transport calls pause_writing/resume_writing around its buffer's high-water mark; a sender that
finds `write_paused` set awaits `drain()`, which parks it on a future in `drain_waiters`, released
here when the buffer drains or the connection is lost (so no sender waits forever on a dead
connection).

`drain()` asks the transport whether it is closing, never a protocol flag such as "this is the last
request": a connection that is draining (HUP, recycling, shutdown) still has a client that may stop
reading, and its sender must still wait rather than pile the response up in memory.
"""

from __future__ import annotations

import asyncio
from typing import Any


class WriteFlow:
    """Mixin: the owner sets `write_paused = False`, `drain_waiters = []`, `loop` and `transport`."""

    __slots__ = ()

    write_paused: bool
    drain_waiters: list[asyncio.Future[None]]
    loop: asyncio.AbstractEventLoop
    transport: Any

    # The owners declare `write_paused` in their own __slots__ (or have a __dict__); mypy cannot see
    # that from a slotted mixin, hence the two ignores.
    def pause_writing(self) -> None:
        self.write_paused = True  # type: ignore[misc]

    def resume_writing(self) -> None:
        self.write_paused = False  # type: ignore[misc]
        self.release_drain_waiters()

    def release_drain_waiters(self) -> None:
        for waiter in self.drain_waiters:
            if not waiter.done():
                waiter.set_result(None)
        self.drain_waiters.clear()

    async def drain(self) -> None:
        """Wait until the transport's buffer drains, or the connection goes away."""
        if self.write_paused and not self.transport.is_closing():
            waiter = self.loop.create_future()
            self.drain_waiters.append(waiter)
            await waiter
