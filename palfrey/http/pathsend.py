"""The ASGI `http.response.pathsend` and `http.response.zerocopysend` extensions: a file as the body.

`RequestCycle.send` comes here only for these two message types (an ordinary body never does), so
the extensions cost a request nothing unless it uses them; their advertisement in
`scope["extensions"]` is one shared constant dict (`EXTENSIONS`).

- `pathsend` (`{"path": ...}`): the server opens the file and sends all of it; the response ends.
- `zerocopysend` (`{"file": fd or file object, "offset"?, "count"?, "more_body"?}`): a range of an
  open file; without `offset` the file's own position is used and advanced, as the spec says.

Framing: the head is written with the first file message, so a missing or unreadable path still
gets a 500 (the `OSError` propagates to the app, and the cycle answers for a failed app as usual).
Without a Content-Length from the app, the file's size becomes it (a final message), or the body is
chunked (`more_body`). An app Content-Length is honoured: a longer file is cut at it and the
connection closed, a file that ends early (truncated while sent) closes the connection after what
was sent, with an error raised into the app. A HEAD request or a 204/304 sends no bytes.

Transfer: on plain TCP the kernel copies the file to the socket (`os.sendfile` on a duplicate of the
socket's descriptor, since the event loop refuses a second watcher on a transport's own descriptor),
after the transport's buffer has emptied; when the socket is full it waits for writability as a
paused transport would (`pause_writing`, so `--timeout-send` applies, and a lost connection wakes
it). Elsewhere (TLS, an HTTP/2 stream, a loop or platform without it) a read loop sends the file in
64 KiB pieces through the normal body path, with the usual back-pressure: in neither case is more
than a piece of the file in memory.
"""

from __future__ import annotations

import asyncio
import os
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from palfrey.http.cycle import RequestCycle

PATHSEND = "http.response.pathsend"
ZEROCOPYSEND = "http.response.zerocopysend"
FILE_MESSAGES = frozenset((PATHSEND, ZEROCOPYSEND))
#: What HTTP/1.1 scopes advertise: shared by every request (read-only for apps, like `asgi`).
EXTENSIONS: dict[str, dict[object, object]] = {PATHSEND: {}, ZEROCOPYSEND: {}}

PIECE = 65536  # bytes read per step of the read loop
SENDFILE_STEP = 1 << 22  # at most this much per sendfile call, so one fast client cannot hold the loop
_HAS_SENDFILE = hasattr(os, "sendfile")


async def send_file_message(cycle: RequestCycle, message: dict[str, Any]) -> None:
    """Send the file a pathsend/zerocopysend message names, as (part of) the response body."""
    if message["type"] == PATHSEND:
        # Opened before anything is written: an OSError here still lets the cycle answer 500.
        with open(message["path"], "rb", buffering=0) as file:
            fd = file.fileno()
            await send_range(cycle, fd, 0, os.fstat(fd).st_size, more_body=False)
        return
    source = message["file"]
    fd = source if isinstance(source, int) else source.fileno()
    offset = message.get("offset")
    advance = offset is None
    if offset is None:
        offset = os.lseek(fd, 0, os.SEEK_CUR)
    count = message.get("count")
    if count is None:
        count = max(0, os.fstat(fd).st_size - offset)
    sent = await send_range(cycle, fd, offset, count, more_body=bool(message.get("more_body", False)))
    if advance:
        os.lseek(fd, offset + sent, os.SEEK_SET)


async def send_range(cycle: RequestCycle, fd: int, offset: int, count: int, *, more_body: bool) -> int:
    """Send `count` bytes of `fd` from `offset` as body data; returns how many went out."""
    if not cycle.head_written:
        if (
            not more_body
            and cycle.status >= 200
            and cycle.status not in (204, 304)  # no Content-Length where no body may follow
            and not any(name.lower() == b"content-length" for name, _ in cycle.response_headers)
        ):
            cycle.response_headers = [*cycle.response_headers, (b"content-length", b"%d" % count)]
        cycle._write_head(b"", True)  # framing decided as for a streamed body; the head is queued
    sent = 0
    too_long = False
    if count and cycle.body_allowed and not cycle.disconnected:
        if cycle.expected_length is not None and cycle.sent + count > cycle.expected_length:
            count = cycle.expected_length - cycle.sent
            too_long = True
        if cycle.chunked and count:
            cycle._queue(b"%x\r\n" % count)
        sock = _plain_socket(cycle)
        if sock is not None and count:
            sent = await _zero_copy(cycle, sock, fd, offset, count)
        else:
            sent = await _read_loop(cycle, fd, offset, count)
        if cycle.disconnected:
            return sent  # the client left: like any later send, the rest is dropped quietly
        if sent < count:
            cycle.keep_alive = False
            cycle.flush()
            cycle.protocol.close_after_response()
            raise RuntimeError(f"The file ended after {sent} of {count} bytes; the connection is closed")
        if cycle.chunked and count:
            cycle._queue(b"\r\n")
        if too_long:
            cycle.flush()
            cycle._too_long()
    if not more_body:
        cycle._finish()
    elif cycle.protocol.write_paused:
        cycle.flush()
        await cycle.protocol.drain()
    return sent


def _plain_socket(cycle: RequestCycle) -> Any:
    """The socket under the cycle's transport if the kernel may write to it directly, else None."""
    if not _HAS_SENDFILE:
        return None
    get_extra_info = getattr(cycle.transport, "get_extra_info", None)
    if get_extra_info is None or get_extra_info("sslcontext") is not None:
        return None  # an HTTP/2 stream's writer, or TLS: the bytes must go through the transport
    return get_extra_info("socket")


async def _read_loop(cycle: RequestCycle, fd: int, offset: int, count: int) -> int:
    """Send through the transport, a piece at a time, waiting whenever the client is behind."""
    protocol = cycle.protocol
    sent = 0
    while sent < count and not cycle.disconnected:
        piece = os.pread(fd, min(PIECE, count - sent), offset + sent)
        if not piece:
            break
        sent += len(piece)
        cycle.sent += len(piece)
        cycle._queue(piece)
        if protocol.write_paused:
            cycle.flush()
            await protocol.drain()
    return sent


async def _zero_copy(cycle: RequestCycle, sock: Any, fd: int, offset: int, count: int) -> int:
    """`os.sendfile` from `fd` to the connection's socket; falls back to the read loop if the
    transport still holds unsent bytes (they must go first, and only the transport can send them)."""
    cycle.flush()  # the head (and any earlier body) goes through the transport first
    transport: Any = cycle.transport  # an asyncio transport here (`_plain_socket` found its socket)
    if transport.get_write_buffer_size():
        return await _read_loop(cycle, fd, offset, count)
    protocol: Any = cycle.protocol
    loop = protocol.loop
    out = os.dup(sock.fileno())
    sent = 0
    try:
        while sent < count:
            if cycle.disconnected or transport.is_closing():
                break
            step = min(count - sent, SENDFILE_STEP)
            try:
                done = os.sendfile(out, fd, offset + sent, step)
            except (BlockingIOError, InterruptedError):
                done = -1
            except OSError:  # EPIPE, ECONNRESET: the client is gone
                cycle.disconnect()
                break
            if done == 0:
                break  # end of file: the caller reports a file shorter than promised
            if done > 0:
                sent += done
                cycle.sent += done
                if done == step and sent < count:
                    await asyncio.sleep(0)  # let other connections run between large steps
                continue
            # The socket is full: wait as a paused transport waits (the send deadline runs).
            protocol.pause_writing()
            loop.add_writer(out, protocol.resume_writing)
            try:
                await protocol.drain()
            finally:
                loop.remove_writer(out)
    finally:
        os.close(out)
    return sent
