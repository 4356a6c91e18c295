"""The deadlines of one HTTP/2 connection, acted on by the server's once-per-tick sweep.

As for HTTP/1.1 (http/deadlines.py) a connection keeps one `deadline` and its kind, and no timer
is scheduled per stream: the sweep compares `deadline` with the clock every 0.25 s and calls
`check_deadline` only once it has passed. The same options apply:

- **request head** (--timeout-request-header): from the connection's start until its first
  HEADERS block is complete (the preface and a first request must come in time), and again
  whenever a header block is left open (HEADERS without END_HEADERS, CONTINUATION frames owed):
  while a block is open no other frame may arrive, so a client stalling there holds the whole
  connection. Expiry: GOAWAY and close.
- **keep-alive** (--timeout-keep-alive): no stream open for that long. Expiry: GOAWAY NO_ERROR
  (with the last stream id, so the client knows nothing was lost) and close.
- **send** (--timeout-send), while streams are open: a stream whose output the peer's windows have
  not admitted for that long (a zero-window stall, the client never sending WINDOW_UPDATE) is reset
  with ENHANCE_YOUR_CALM and its app's `send()` returns (the app sees `http.disconnect`); when the
  connection's own window is the one at zero, every stream is stuck behind it and the connection
  gets GOAWAY and is closed. A client that stops reading the socket altogether (the transport's
  buffer full) has its connection aborted, as on HTTP/1.1.
- **request body** (--timeout-request-body, and the --limit-request-body-rate floor), per stream
  while its app waits for body (`body_wait`): 408 on that stream, or RST_STREAM if its response
  began; the app gets `http.disconnect`.
- **request** (--timeout-request): the cycle's own deadline (`cycle_limits.check_timeout`), stamped
  by the same sweep for every stream (`check_request_timeout`).

Only the stalled streams are tracked (`H2Protocol.blocked`), so the common case costs the sweep
one comparison per connection.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from palfrey.http.cycle_limits import check_timeout
from palfrey.http2 import closing, refusals
from palfrey.http2.wire.errors import ENHANCE_YOUR_CALM, NO_ERROR

if TYPE_CHECKING:
    from palfrey.http.cycle import RequestCycle
    from palfrey.http2.connection import H2Protocol
    from palfrey.http2.stream import H2Stream

logger = logging.getLogger("palfrey.error")

INF = float("inf")
IDLE, HEADER, BUSY = range(3)


def rearm(conn: H2Protocol) -> None:
    """After input was handled, or when the last stream is forgotten: which deadline applies now."""
    if conn.h2.reader.block_stream:
        if conn.deadline_kind != HEADER:
            conn.deadline_kind = HEADER
            conn.deadline = conn.loop.time() + conn.state.timeout_request_header
        return
    if conn.streams:
        if conn.deadline_kind != BUSY:
            conn.deadline_kind = BUSY
            conn.deadline = _stall_deadline(conn)
        return
    if conn.deadline_kind != IDLE:
        if conn.drain_by < INF:
            closing.idle_goaway(conn)  # draining, and the last stream is done: GOAWAY now
            return
        conn.deadline_kind = IDLE
        conn.deadline = conn.loop.time() + conn.state.timeout_keep_alive


def stalled(conn: H2Protocol, at: float) -> None:
    """Something waits on the client (a blocked stream, a full transport) since `at`."""
    deadline = at + conn.state.slow.send_timeout
    if deadline < conn.deadline:
        conn.deadline = deadline


def _stall_deadline(conn: H2Protocol) -> float:
    timeout = conn.state.slow.send_timeout
    deadline = conn.paused_at + timeout if conn.write_paused else conn.drain_by
    for stream in conn.blocked.values():
        at = stream.blocked_since + timeout
        if at < deadline:
            deadline = at
    for stream in conn.waiting.values():
        at = _body_deadline(conn, stream)
        if at < deadline:
            deadline = at
    return deadline


def body_wait(conn: H2Protocol, stream: H2Stream, cycle: RequestCycle) -> None:
    """The stream's app waits for request body: its body deadline runs until data comes.

    As on HTTP/1.1: --timeout-request-body since the wait began, and the rate floor
    (--limit-request-body-rate R after --limit-request-body-rate-grace G) measured from the first
    wait over the whole body. Expiry: 408 if the response has not begun, else the stream is reset.
    """
    now = conn.loop.time()
    if stream.body_mark < 0:
        stream.body_since = now
        stream.body_mark = cycle.received
    stream.body_wait_at = now
    conn.waiting[stream.stream_id] = stream
    deadline = _body_deadline(conn, stream)
    if deadline < conn.deadline:
        conn.deadline = deadline


def _body_deadline(conn: H2Protocol, stream: H2Stream) -> float:
    state = conn.state
    deadline = stream.body_wait_at + state.timeout_request_body
    rate = state.slow.body_rate
    cycle = stream.cycle
    if rate and cycle is not None:
        floor = stream.body_since + state.slow.body_rate_grace + (cycle.received - stream.body_mark) / rate
        if floor < deadline:
            deadline = floor
    return deadline


def check_deadline(conn: H2Protocol, now: float) -> None:
    """The connection's deadline passed: act on what it was for, then arm the next one."""
    kind = conn.deadline_kind
    if kind == HEADER:
        if conn.h2.reader.block_stream:
            logger.debug("HTTP/2 header block from %s not completed in time; closing", conn.client)
            conn.close_with(NO_ERROR)
            return
    elif kind == IDLE:
        if not conn.streams:
            logger.debug(
                "HTTP/2 connection from %s idle (or no request) in time; GOAWAY and close", conn.client
            )
            conn.close_with(NO_ERROR)
            return
    else:
        if now >= conn.drain_by and not conn.goaway:
            logger.debug("HTTP/2 connection from %s not idle within the drain bound; GOAWAY", conn.client)
            closing.send_goaway(conn)
        timeout = conn.state.slow.send_timeout
        if conn.write_paused and now >= conn.paused_at + timeout:
            logger.warning("Client did not read the response for %gs; aborting the connection", timeout)
            conn.discard_input = True
            conn.transport.abort()  # connection_lost: every stream's app sees http.disconnect
            return
        stuck = [stream for stream in conn.blocked.values() if now >= stream.blocked_since + timeout]
        if stuck:
            if conn.h2.send_window <= 0:
                logger.warning(
                    "HTTP/2 client %s kept the connection window closed for %gs; closing",
                    conn.client,
                    timeout,
                )
                conn.close_with(ENHANCE_YOUR_CALM)
                return
            for stream in stuck:
                _reset_stalled(conn, stream, timeout)
        for stream in [s for s in conn.waiting.values() if now >= _body_deadline(conn, s)]:
            conn.waiting.pop(stream.stream_id, None)
            cycle = stream.cycle
            if cycle is None or not cycle.more_body or cycle.response_complete:
                continue  # the body ended (or the request did) since: nothing is waited for
            slow = now < stream.body_wait_at + conn.state.timeout_request_body  # the floor ran out
            refusals.refuse(conn, stream, 408, "Request body too slow" if slow else "Request body timeout")
    conn.deadline_kind = -1  # recomputed from scratch
    rearm(conn)


def _reset_stalled(conn: H2Protocol, stream: H2Stream, timeout: float) -> None:
    logger.warning(
        "HTTP/2 client %s kept stream %d's window closed for %gs; stream reset",
        conn.client,
        stream.stream_id,
        timeout,
    )
    conn.reset_stream(stream, ENHANCE_YOUR_CALM)
    cycle = stream.cycle
    if cycle is not None:
        cycle.disconnect()  # the app's send() returns (and later ones are dropped)
    stream.release()
    conn.forget(stream)


def check_request_timeout(conn: H2Protocol, now: float, timeout: float) -> None:
    """--timeout-request for every stream of the connection (504, the app's task cancelled)."""
    for stream in list(conn.streams.values()):
        cycle = stream.cycle
        if cycle is not None and not stream.reset:
            check_timeout(cycle, now, timeout)
