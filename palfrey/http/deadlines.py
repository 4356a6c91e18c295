"""The deadlines of one HTTP/1.1 connection, acted on by the server's once-per-tick sweep.

A connection keeps one `deadline` and its kind (request head, request body, keep-alive, linger,
fresh connection during a drain, send), so no timer is scheduled per request: the server compares
`deadline` with the clock every 0.25 s and calls `check_deadline` only when it has passed. The send
deadline (--timeout-send) starts when the transport's buffer fills; when another deadline is active
it waits behind it (`send_deadline`) and takes over once that one is handled. The body deadline is
the earlier of the gap since the last chunk and the request-body rate floor. The request deadline
(--timeout-request) is the cycle's own (`cycle_limits.check_timeout`), stamped by the same sweep.

`DeadlineSweep` is a mixin of `HttpProtocol` (protocol.py): what it acts with (`_reject`, `_close`,
the parser) lives there.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from palfrey.http.cycle_limits import check_timeout
from palfrey.http.head import ParseError

if TYPE_CHECKING:
    import asyncio

    from palfrey.http.cycle import RequestCycle
    from palfrey.server.state import ServerState

logger = logging.getLogger("palfrey.error")

INF = float("inf")
_NONE, _HEADER, _BODY, _KEEP_ALIVE, _LINGER, _DRAIN, _SEND = range(7)


class DeadlineSweep:
    """Deadline bookkeeping for HttpProtocol (which sets every attribute declared here)."""

    state: ServerState
    loop: asyncio.AbstractEventLoop
    transport: Any
    parser: Any
    cycle: RequestCycle | None
    parsing: RequestCycle | None
    deadline: float
    deadline_kind: int
    send_deadline: float
    body_since: float
    body_mark: int
    body_gap: float
    body_cycle: RequestCycle | None
    write_paused: bool
    last_request: bool
    discard_input: bool

    if TYPE_CHECKING:

        def _reject(self, exc: ParseError, *, log: bool = True) -> None: ...

        def _close(self) -> None: ...

        def close_after_response(self) -> None: ...

        def release_drain_waiters(self) -> None: ...

    def pause_writing(self) -> None:
        """The client stopped reading: start the send deadline (--timeout-send)."""
        self.write_paused = True
        self.send_deadline = self.loop.time() + self.state.slow.send_timeout
        if self.deadline_kind == _NONE:
            self.deadline_kind = _SEND
            self.deadline = self.send_deadline

    def resume_writing(self) -> None:
        self.send_deadline = INF
        if self.deadline_kind == _SEND:
            self.deadline_kind = _NONE
            self.deadline = INF
        self.write_paused = False
        self.release_drain_waiters()

    def _set_deadline(self, kind: int, timeout: float) -> None:
        self.deadline_kind = kind
        self.deadline = self.loop.time() + timeout

    def _clear_deadline(self) -> None:
        """No deadline of its own any more; the send deadline stays while the client does not read."""
        if self.write_paused and self.send_deadline != INF:
            self.deadline_kind = _SEND
            self.deadline = self.send_deadline
        else:
            self.deadline_kind = _NONE
            self.deadline = INF

    def _restart_body_rate(self, cycle: RequestCycle) -> None:
        self.body_since = self.loop.time()
        self.body_mark = cycle.received

    def _body_deadline(self) -> None:
        """The body deadline: the earlier of the gap since the last chunk and the rate floor.

        The floor (--limit-request-body-rate R, --limit-request-body-rate-grace G) requires the body
        to arrive by `since + G + received / R`: a client at R bytes/s or faster is never cut by it,
        and one trickling bytes to hold the connection gets 408 once its average falls below R.
        """
        state = self.state
        deadline = self.body_gap = self.loop.time() + state.timeout_request_body
        slow = state.slow
        rate = slow.body_rate
        if rate:
            cycle = self.body_cycle
            received = cycle.received - self.body_mark if cycle is not None else 0
            floor = self.body_since + slow.body_rate_grace + received / rate
            if floor < deadline:
                deadline = floor
        self.deadline = deadline

    def check_request_timeout(self, now: float, timeout: float) -> None:
        """--timeout-request, from the server's sweep (only when the option is set): the request
        being answered times out if its app has not started the response in time. The deadline
        lives in the cycle, so an HTTP/2 stream's cycles are timed out the same way."""
        cycle = self.cycle
        if cycle is not None:
            check_timeout(cycle, now, timeout)

    def check_deadline(self, now: float) -> None:
        """Called by the server's sweep; acts when this connection's deadline has passed."""
        if now < self.deadline:
            return
        kind = self.deadline_kind
        self.deadline = INF
        self.deadline_kind = _NONE
        if kind == _SEND:
            if self.write_paused:
                logger.warning(
                    "Client did not read the response for %gs; aborting the connection",
                    self.state.slow.send_timeout,
                )
                self.last_request = True
                self.discard_input = True
                self.transport.abort()  # connection_lost: the app's send returns, receive gets a disconnect
            return
        self._check_kind(kind, now)
        if self.deadline_kind == _NONE and self.write_paused:
            # A send deadline waited behind this one (also when the transport now closes with a full
            # buffer: a close waits for the client to read, so it is aborted at the send deadline).
            self._clear_deadline()

    def _check_kind(self, kind: int, now: float) -> None:
        if kind == _HEADER:
            if self.cycle is not None:
                self.close_after_response()  # a pipelined head is trickling in: no more requests
            elif self.parser.in_head:
                logger.debug("Request head not received in time; closing the connection")
                self._reject(ParseError(408, "Request head timeout"), log=False)
            else:
                self._close()  # not one byte of a request: nothing to answer
        elif kind == _BODY:
            cycle = self.parsing
            if cycle is not None and cycle.more_body:
                if now < self.body_gap:  # the last chunk is recent: the rate floor ran out
                    logger.warning(
                        "Request body arriving too slowly (%d bytes in %.1fs, floor %d bytes/s); "
                        "closing the connection",
                        cycle.received - self.body_mark,
                        now - self.body_since,
                        self.state.slow.body_rate,
                    )
                    self._reject(ParseError(408, "Request body too slow"), log=False)
                else:
                    logger.warning("Request body not received in time; closing the connection")
                    self._reject(ParseError(408, "Request body timeout"), log=False)
        else:  # keep-alive or linger
            self._close()
