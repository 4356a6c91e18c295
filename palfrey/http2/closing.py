"""How an HTTP/2 connection ends: floods cut off, protocol errors, graceful shutdown.

Functions of the connection (`H2Protocol`), kept apart so connection.py stays about frames in and
out. Floods are counted by floods.py (resets, ours for the client's fault included; useless
frames); past a limit the connection gets GOAWAY ENHANCE_YOUR_CALM. An HPACK block that cannot be
decoded is a COMPRESSION_ERROR (RFC 9113 §4.3, wire/hpack_decode.py), one that decodes past our
header-list limit ENHANCE_YOUR_CALM (the decoder stops collecting there: the decoded size is never
allocated). A graceful shutdown (TERM, HUP, recycling) sends GOAWAY with the last stream taken once
the connection has no stream in flight (or after DRAIN_BOUND) and finishes the streams up to it.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from palfrey.http2.wire.errors import ENHANCE_YOUR_CALM, PROTOCOL_ERROR, H2ConnectionError

if TYPE_CHECKING:
    from palfrey.http2.connection import H2Protocol
    from palfrey.http2.stream import H2Stream

logger = logging.getLogger("palfrey.error")

INF = float("inf")
# How long a draining connection with streams in flight may wait for an idle moment before its
# GOAWAY goes anyway: ten times the 100 ms in which a draining worker still answers HTTP/1.1
# keep-alive requests (with `Connection: close`) before closing idle connections. Far under the
# graceful-shutdown timeout (30 s by default), so the streams up to the GOAWAY's id still finish.
DRAIN_BOUND = 1.0


def remote_reset(conn: H2Protocol, stream_id: int) -> None:
    stream = conn.streams.get(stream_id)
    conn.blocked.pop(stream_id, None)
    if stream is not None:
        conn.forget(stream)
        _abandon(conn, stream)
    count_reset(conn)


def count_reset(conn: H2Protocol) -> None:
    """A stream was reset, by the client or by us for its fault (MadeYouReset): one budget."""
    if conn.floods.reset(conn.loop.time()) and not conn.discard_input:
        calm(conn, "rapid reset")


def remote_goaway(conn: H2Protocol) -> None:
    """The client sent GOAWAY: it opens no more streams and we send nothing more on this connection.

    A received GOAWAY is taken as the end of the connection (as h2, which palfrey ran before its own
    engine, did; clients send it when they want nothing more), so the streams in flight are not answered: they end as if reset (apps not yet started never run,
    running ones see `http.disconnect` and their `send()` returns), then the connection closes. A
    client sends GOAWAY once it wants nothing more (h2load at the end of a timed run, with its last
    requests in the same read): nothing here is an app failure, so nothing is logged as one.
    """
    conn.goaway = True
    conn.blocked.clear()
    for stream in list(conn.streams.values()):
        _abandon(conn, stream)
    conn.flush()
    conn.transport.close()


def _abandon(conn: H2Protocol, stream: H2Stream) -> None:
    """The client gave up on the stream: no more output for it, and its app stops (or never starts)."""
    stream.reset = True
    stream.out.clear()
    stream.release()
    cycle = stream.cycle
    if cycle is not None:
        if not cycle.started and cycle.task is not None:
            # Reset before the app ran: the task never starts (rapid reset costs no app work).
            cycle.task.cancel()
            conn.state.task_done(cycle.task)
        else:
            cycle.disconnect()


def control_frame(conn: H2Protocol, count: int = 1) -> None:
    if conn.floods.control_frame(conn.loop.time(), count) and not conn.discard_input:
        calm(conn, "control frame flood")


def calm(conn: H2Protocol, what: str) -> None:
    logger.warning("HTTP/2 %s from %s: connection closed (ENHANCE_YOUR_CALM)", what, conn.client)
    # What h2 queued in answer to the flood (PING acks, RST_STREAM for frames on closed streams)
    # is dropped: the client gets the GOAWAY, not one more answer per frame it flooded us with.
    conn.h2.writer.parts.clear()
    close_with(conn, ENHANCE_YOUR_CALM)


def protocol_error(conn: H2Protocol, exc: H2ConnectionError) -> None:
    code = exc.code or PROTOCOL_ERROR
    logger.debug("HTTP/2 protocol error from %s: %s", conn.client, exc)
    close_with(conn, code)


def close_with(conn: H2Protocol, code: int) -> None:
    conn.h2.writer.goaway(conn.last_stream_id, code)
    conn.goaway = True
    data = conn.h2.data_to_send()
    if data and not conn.discard_input and not conn.transport.is_closing():
        conn.transport.write(data)
    for stream in list(conn.streams.values()):
        stream.reset = True
        if stream.cycle is not None:
            stream.cycle.disconnect()
        stream.release()
    conn.linger()


def shutdown(conn: H2Protocol) -> None:
    """Graceful (TERM, HUP, recycling): GOAWAY once the connection is idle, or after DRAIN_BOUND.

    An idle connection that has served a request gets its GOAWAY at once. One with streams in flight keeps serving (new
    streams too) and gets it at the first moment it has none (`idle_goaway`, from deadlines.rearm),
    the HTTP/2 analogue of `Connection: close` on HTTP/1.1's next response: the `h2` library's
    client (httpx) fails every stream still in flight when a GOAWAY arrives, even those the GOAWAY
    promises to finish, while the streams it opens after the GOAWAY's last id are retried on a new
    connection. A client never idle (multiplexing back to back) gets its GOAWAY when the bound
    expires (the sweep, deadlines.check_deadline) and its streams up to the last id are finished.
    """
    if conn.goaway or conn.drain_by < INF:
        return
    for stream in conn.streams.values():
        if stream.cycle is not None:
            stream.cycle.server_draining()  # a long-lived response waiting in receive() is told to end
    if not conn.streams and conn.last_stream_id:
        send_goaway(conn)
        return
    # Streams in flight, or a connection that has not sent its first request yet (accepted just
    # as the drain began; its request is likely on the way, and httpx fails a request answered by
    # GOAWAY with last stream 0 instead of retrying it): served, then GOAWAY when idle.
    conn.drain_by = conn.loop.time() + DRAIN_BOUND
    if conn.drain_by < conn.deadline:
        conn.deadline = conn.drain_by


def idle_goaway(conn: H2Protocol) -> None:
    """The last stream in flight is done while draining: the GOAWAY goes now."""
    if not conn.goaway and conn.drain_by < INF:
        send_goaway(conn)


def send_goaway(conn: H2Protocol) -> None:
    """GOAWAY NO_ERROR with the last stream taken; in-flight streams finish, then we close.

    The machine is not told (`ServerMachine.goaway` would ignore streams opened after it);
    streams the client opens after it are refused, so the client knows they were never processed and may retry them elsewhere.
    """
    conn.flush()  # before `goaway` is set: with no stream left, a flush after it shuts the write side
    conn.goaway = True
    conn.h2.writer.goaway(conn.last_stream_id, 0)
    if not conn.transport.is_closing() and not conn.discard_input:
        conn.transport.write(conn.h2.data_to_send())
    if not conn.streams:
        conn.linger()
