"""Write flow control shared by the HTTP and WebSocket connection protocols.

The transport calls pause_writing/resume_writing around its buffer's high-water mark; a sender that
finds `write_paused` set waits on a future in `drain_waiters`, released here when the buffer drains
or the connection is lost (so no sender waits forever on a dead connection).
"""

from __future__ import annotations

import asyncio


class WriteFlow:
    """Mixin: the owner sets `write_paused = False` and `drain_waiters = []` in its constructor."""

    __slots__ = ()

    write_paused: bool
    drain_waiters: list[asyncio.Future[None]]

    def pause_writing(self) -> None:
        self.write_paused = True

    def resume_writing(self) -> None:
        self.write_paused = False
        self.release_drain_waiters()

    def release_drain_waiters(self) -> None:
        for waiter in self.drain_waiters:
            if not waiter.done():
                waiter.set_result(None)
        self.drain_waiters.clear()
