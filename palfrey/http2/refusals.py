"""Requests an HTTP/2 connection refuses on their own stream, never with the whole connection.

- **Malformed** (RFC 9113 §8.1.1): a request head `request.split_pseudo_headers` rejects
  (connection-specific fields, a `te` other than "trailers", uppercase names, pseudo-headers
  missing, repeated, unknown or after a regular field) or a body longer or shorter than its
  content-length (the machine checks it, wire/machine.py). RST_STREAM PROTOCOL_ERROR; the app never sees such a request, or,
  if its body broke the content-length after the app started, gets `http.disconnect` (never a
  body that looks complete).
- **Over --limit-request-body**: a content-length over the limit is answered 413 before the app
  runs; a body that grows past it is answered 413 if the response has not begun, else the stream
  is reset (CANCEL); either way the app gets `http.disconnect`. After a complete 413 the stream is
  also reset with NO_ERROR, which tells the client to stop sending the rest (RFC 9113 §8.1).

Other streams on the connection carry on. Each refusal resets a stream for the client's fault, so
it counts against the connection's reset budget (closing.count_reset): a client that makes the
server reset streams in a loop ("MadeYouReset", CVE-2025-8671) is cut off as a rapid reset is.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from palfrey.http2 import closing
from palfrey.http2.wire.errors import CANCEL, NO_ERROR, PROTOCOL_ERROR

if TYPE_CHECKING:
    from palfrey.http2.connection import H2Protocol
    from palfrey.http2.stream import H2Stream

logger = logging.getLogger("palfrey.error")

_MESSAGES = {400: "Bad Request", 408: "Request Timeout", 413: "Request Entity Too Large"}


def malformed(conn: H2Protocol, stream_id: int, reason: str) -> None:
    """Reset a malformed request's stream (PROTOCOL_ERROR); its app stops (or never starts)."""
    logger.debug("Malformed HTTP/2 request on stream %d from %s: %s", stream_id, conn.client, reason)
    metrics = conn.metrics
    if metrics is not None:
        metrics.protocol_error(400, reason)
    stream = conn.streams.get(stream_id)
    if stream is None:
        _rst(conn, stream_id, PROTOCOL_ERROR)
        closing.count_reset(conn)
        return
    cycle = stream.cycle
    if cycle is not None:
        cycle.abort_body()  # a waiting receive() gets http.disconnect
        if not cycle.started and cycle.task is not None:
            cycle.task.cancel()  # not run yet: the app never sees the request
            conn.state.task_done(cycle.task)
    conn.reset_stream(stream, PROTOCOL_ERROR)
    stream.release()
    conn.forget(stream)
    closing.count_reset(conn)


def content_length_over(fields: list[tuple[bytes, bytes]], limit: int) -> bool:
    """Does the request's content-length say its body is over --limit-request-body?"""
    for name, value in fields:
        if name == b"content-length":
            return value.isdigit() and int(value) > limit
    return False


def refuse(conn: H2Protocol, stream: H2Stream, status: int, reason: str) -> None:
    """Answer `status` in the app's place (or reset the stream if its response began)."""
    logger.warning("%s (%s) from %s", _MESSAGES.get(status, ""), reason, conn.client)
    metrics = conn.metrics
    if metrics is not None:
        metrics.protocol_error(status, reason)
    cycle = stream.cycle
    assert cycle is not None
    began = cycle.abort_body()  # the app gets http.disconnect, never a truncated body
    if began:
        conn.reset_stream(stream, CANCEL)
        stream.release()
        conn.forget(stream)
        closing.count_reset(conn)
        return
    cycle.status = status
    cycle._write_error(status, _MESSAGES.get(status, "Error"))
    if not stream.out and not stream.reset:
        _rst(conn, stream.stream_id, NO_ERROR)  # "stop sending the body"
    conn.forget(stream)
    closing.count_reset(conn)


def _rst(conn: H2Protocol, stream_id: int, code: int) -> None:
    conn.h2.reset(stream_id, code)  # nothing if the stream is already closed on both sides
    conn.schedule_flush()
