"""The one-way seam between a connection and the request cycles it runs.

A `RequestCycle` (cycle.py) owns the ASGI side of one request: `receive`/`send`, response validation
and encoding, the access log and metrics. Whatever carries it (an HTTP/1.1 connection today, an
HTTP/2 stream next) implements `CycleConnection`, and that is all the cycle may ask of it. The
connection talks back only through the cycle's own methods (`feed_body`, `end_body`, `disconnect`,
`abort_body`, `fail`, `run`), never by writing its fields, so either side can change without the
other's state being touched behind its back.

    connection (protocol.py, later an HTTP/2 stream)        cycle (cycle.py)
        on_head ─────────── RequestCycle(...), run(app) ──────────►
        on_body / on_message_complete ─ feed_body / end_body ─────►
        connection_lost / deadlines ─── disconnect / abort_body ──►
        ◄──── transport.write / writelines / is_closing ────────────  (response bytes)
        ◄──── pause_reading / wait_for_body / body_consumed ────────  (request body flow)
        ◄──── write_paused + drain() ───────────────────────────────  (response back-pressure)
        ◄──── cycle_done / close_after_response / abort_response ──  (end of the response)

Nothing here costs a call on the hot path: `transport` is the asyncio transport itself for HTTP/1.1
(an HTTP/2 stream would hand the cycle a small writer that frames DATA), and `write_paused` is a
plain attribute the cycle tests before it awaits `drain()`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from palfrey.http.cycle import RequestCycle
    from palfrey.server.state import ServerState


class ResponseWriter(Protocol):
    """Where a cycle's response bytes go (an asyncio transport satisfies it as is)."""

    def write(self, data: bytes) -> None: ...

    def writelines(self, list_of_data: Iterable[bytes]) -> None: ...

    def is_closing(self) -> bool: ...


class CycleConnection(Protocol):
    """What a request cycle may ask of the connection (or stream) that carries it."""

    loop: asyncio.AbstractEventLoop
    state: ServerState  # shared, read-only for a cycle: default headers, draining, task bookkeeping
    transport: ResponseWriter
    write_paused: bool  # the peer is not reading: `send()` awaits `drain()` before going on

    async def drain(self) -> None:
        """Return once the peer reads again, or the connection is gone."""

    def pause_reading(self) -> None:
        """The cycle holds more unread request body than it should buffer: stop reading."""

    def wait_for_body(self, cycle: RequestCycle) -> None:
        """The app waits for request body data: read it, and start the body deadline."""

    def body_consumed(self, cycle: RequestCycle) -> None:
        """The app took the buffered body: reading may resume."""

    def cycle_done(self, cycle: RequestCycle) -> None:
        """The response is complete (and recorded): move on to the next request, or close."""

    def close_after_response(self) -> None:
        """No further request on this connection once the current response is out."""

    def abort_response(self) -> None:
        """The response cannot be completed (it broke off): end the connection after what was written."""
