"""Limits a request cycle is held to beyond its framing: --limit-request-body and --timeout-request.

Kept apart from cycle.py, whose code runs on every request: these run only when the options are set
(a chunked body with a body limit; the sweep's timeout check), or on their error paths.
"""

from __future__ import annotations

import logging

from palfrey.http.cycle import RequestCycle
from palfrey.http.head import BODY_CHUNKED, Framing, ParseError

logger = logging.getLogger("palfrey.error")


def check_timeout(cycle: RequestCycle, now: float, timeout: float) -> None:
    """--timeout-request, from the server's quarter-second sweep: time out a request whose app
    has not started its response within `timeout` seconds of the sweep first seeing it."""
    if cycle.response_started or cycle.response_complete or cycle.disconnected:
        return
    try:
        expires = cycle.expires
    except AttributeError:
        cycle.expires = now + timeout
        return
    if now >= expires:
        time_out(cycle, timeout)


def time_out(cycle: RequestCycle, timeout: float) -> None:
    """Answer 504 in the app's place, record it, and cancel the app's task.

    504 rather than 503: the app (the server's upstream) did not answer in time, which a
    balancer must not take for "this server is unavailable" (503 is --limit-concurrency's and
    /readyz's). The cancelled app sees CancelledError at its current await; whatever it sends
    afterwards is dropped. A WSGI app's thread cannot be cancelled: its bridge is aborted, so
    the thread's next read or write raises, and its result is discarded.
    """
    protocol = cycle.protocol
    state = protocol.state
    scope = cycle.scope
    logger.warning(
        "Request timeout: %s %s did not start its response within %gs; answered 504, app cancelled",
        scope["method"],
        scope["path"],
        timeout,
    )
    if state.metrics is not None:
        state.metrics.request_timeouts += 1
    cycle.status = 504
    cycle.response_headers = ()
    cycle.keep_alive = False
    cycle.response_complete = True
    cycle.disconnected = True  # the app's later sends are dropped; a receive() gets http.disconnect
    cycle.wake()
    cycle._write_error(504, "Gateway Timeout")  # HTTP/1.1 bytes, or HEADERS + DATA on an HTTP/2 stream
    cycle.record()
    task = cycle.task
    if task is not None and not task.done():
        task.cancel()


class LimitedCycle(RequestCycle):
    """A request whose body may grow past --limit-request-body (a chunked one): each chunk is
    checked. A request with no body, or whose Content-Length is within the limit, is a plain
    `RequestCycle`, so the check costs nothing there (and nothing at all when no limit is set)."""

    __slots__ = ("body_limit",)
    body_limit: int

    @classmethod
    def limiting(cls, cycle: RequestCycle, limit: int) -> LimitedCycle:
        """The same, not yet started, request with its body limited to `limit` bytes.

        Built from a plain cycle so that the common case (no body, or no limit) constructs exactly
        what it did before: the copy is paid only by chunked requests when a limit is set.
        """
        limited = cls.__new__(cls)
        for name in RequestCycle.__slots__:
            if name != "expires":  # stamped later by the deadline sweep
                setattr(limited, name, getattr(cycle, name))
        limited.body_limit = limit
        return limited

    def feed_body(self, data: bytes) -> None:
        if self.received + len(data) > self.body_limit:
            # The connection answers 413 (or closes, if the response began) and the app gets
            # http.disconnect through `abort_body`: never a truncated body that looks complete.
            raise ParseError(413, "Request body over the limit")
        RequestCycle.feed_body(self, data)


def limit_body(cycle: RequestCycle, framing: Framing, limit: int) -> RequestCycle:
    """--limit-request-body: a Content-Length over it is refused before the app runs (413); a
    chunked body is checked chunk by chunk by a `LimitedCycle` (a length within it cannot grow)."""
    if framing.body == BODY_CHUNKED:
        return LimitedCycle.limiting(cycle, limit)
    if framing.length > limit:
        raise ParseError(413, "Request body over the limit")
    return cycle


def raised_by_sink(exc: ParseError) -> ParseError:
    """The ParseError one of our own callbacks raised, if the parser wrapped it.

    httptools turns an exception raised in a callback (a cycle's body over --limit-request-body)
    into its own callback error, which the adapter reports as a 400; the original is its context.
    """
    inner = exc.__context__
    for _ in range(3):  # the callback error, then what it wraps: a short chain, never a loop
        if inner is None:
            break
        if isinstance(inner, ParseError):
            return inner
        inner = inner.__context__
    return exc
