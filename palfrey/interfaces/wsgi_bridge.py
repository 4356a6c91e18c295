"""The handoff between one request's event-loop side and the worker thread running the WSGI app.

Both directions are bounded, so neither a slow client nor a slow app makes the server hold a whole
body in memory:

* Request body, loop → thread: a reader task on the loop awaits ASGI `receive()` and appends chunks
  to `inbox` while the thread is keeping up; it stops once `READ_AHEAD` bytes wait unread (the HTTP
  core then pauses reading the socket) and the thread restarts it when it has drained them.
* Response, thread → loop: the thread appends messages to `outbox` and may run `WINDOW` bytes ahead
  of the transport before it blocks. The loop side sends whatever has piled up in one go (adjacent
  body chunks joined into one write) and only needs a cross-thread wake-up when it was idle, so a
  fast app streaming small chunks costs one loop wake-up per batch, not per chunk.

Everything shared is guarded by `cond` (a `threading.Condition`); the loop side never blocks on it
for longer than a few attribute updates.
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from collections.abc import Callable
from typing import Any

from palfrey.asgi_types import Message, Receive, Send

READ_AHEAD = 128 * 1024  # request body bytes fetched ahead of the app
WINDOW = 256 * 1024  # response bytes the app may produce ahead of the transport

_END = object()  # end of the response body, in the outbox


class ClientDisconnected(OSError):
    """Raised in the app's thread (from `wsgi.input` reads, `write()`, or between response chunks)
    once the client is gone or the server gave up on the request: the app should stop, and the
    server still calls `close()` on its iterable."""


class Bridge:
    """Shared state of one request; the thread side's methods are called from the worker thread."""

    __slots__ = (
        "aborted",
        "body_done",
        "cond",
        "done",
        "error",
        "in_bytes",
        "inbox",
        "known_length",
        "loop",
        "out_bytes",
        "outbox",
        "reader",
        "reader_idle",
        "receive",
        "scheduled",
        "thread_waiting",
        "wakeup",
    )

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        receive: Receive,
        has_body: bool,
    ) -> None:
        self.loop = loop
        self.receive = receive
        self.cond = threading.Condition(threading.Lock())
        self.aborted = False  # client gone / request cancelled: the thread must stop
        # Request body (loop → thread).
        self.inbox: deque[bytes] = deque()
        self.in_bytes = 0
        self.body_done = not has_body
        self.reader: asyncio.Task[None] | None = None
        self.reader_idle = True  # no reader task is running
        # Response (thread → loop).
        self.outbox: list[Any] = []
        self.out_bytes = 0
        self.scheduled = True  # the loop side will look at the outbox without being woken
        self.wakeup: asyncio.Future[None] | None = None
        self.thread_waiting = False
        self.known_length = False  # Content-Length is set: body chunks may be merged freely
        self.done = False
        self.error: BaseException | None = None

    # Thread side.

    def _call_loop(self, callback: Callable[[], None]) -> None:
        try:
            self.loop.call_soon_threadsafe(callback)
        except RuntimeError:  # the loop is closed: the server is gone
            self.aborted = True

    def read_chunk(self) -> bytes:
        """The next piece of request body; b"" at its end. Blocks until data arrives."""
        with self.cond:
            while True:
                if self.inbox:
                    chunk = self.inbox.popleft()
                    self.in_bytes -= len(chunk)
                    if self.reader_idle and not self.body_done and not self.aborted:
                        self.reader_idle = False  # fetch the next piece while the app works on this one
                        self._call_loop(self._start_reader)
                    return chunk
                if self.body_done:
                    return b""
                if self.aborted:
                    raise ClientDisconnected("client disconnected while the request body was read")
                if self.reader_idle:
                    self.reader_idle = False
                    self._call_loop(self._start_reader)
                    continue
                self.cond.wait()

    def post(self, messages: list[Any], size: int) -> None:
        """Queue response messages for the loop; block while the app is `WINDOW` bytes ahead."""
        with self.cond:
            if self.aborted:
                raise ClientDisconnected("client disconnected")
            self.outbox.extend(messages)
            self.out_bytes += size
            if not self.scheduled:
                self.scheduled = True
                self._call_loop(self._wake)
            if self.out_bytes > WINDOW:
                self.thread_waiting = True
                while self.out_bytes > WINDOW and not self.aborted:
                    self.cond.wait()
                self.thread_waiting = False
                if self.aborted:
                    raise ClientDisconnected("client disconnected")

    def finish(self, error: BaseException | None, messages: list[Any] | tuple[()] = ()) -> bool:
        """The app is done (its iterable closed): queue its last `messages`; `error` is what it
        raised, if anything. Never blocks. False when the loop side has given up on the request, so
        nobody will report `error` unless the caller does."""
        with self.cond:
            self.error = error
            self.done = True
            if self.aborted:
                return False
            self.outbox.extend(messages)
            if not self.scheduled:
                self.scheduled = True
                self._call_loop(self._wake)
            return True

    # Loop side.

    def _wake(self) -> None:
        wakeup = self.wakeup
        if wakeup is not None and not wakeup.done():
            wakeup.set_result(None)

    def abort(self) -> None:
        """Release the thread from any wait; its next read or send raises ClientDisconnected."""
        with self.cond:
            self.aborted = True
            self.cond.notify_all()
        reader = self.reader
        if reader is not None and not reader.done():
            reader.cancel()

    def _start_reader(self) -> None:
        if not self.aborted and (self.reader is None or self.reader.done()):
            self.reader = self.loop.create_task(self._read())

    async def _read(self) -> None:
        receive = self.receive
        cond = self.cond
        while True:
            message = await receive()
            with cond:
                if message["type"] != "http.request":
                    self.aborted = True  # http.disconnect
                    cond.notify_all()
                    return
                body = message.get("body", b"")
                if body:
                    self.inbox.append(body)
                    self.in_bytes += len(body)
                if not message.get("more_body", False):
                    self.body_done = True
                cond.notify_all()
                if self.body_done:
                    return
                if self.in_bytes >= READ_AHEAD:
                    self.reader_idle = True
                    return

    async def pump(self, send: Send, gone: Callable[[], bool]) -> None:
        """Send what the thread posts until it is done. `gone()` tells whether the client left."""
        loop = self.loop
        cond = self.cond
        head_sent = False
        while True:
            wakeup = None
            with cond:
                batch = self.outbox
                done = self.done
                if batch:
                    self.outbox = []
                elif not done:
                    self.scheduled = False
                    self.wakeup = wakeup = loop.create_future()
            if batch:
                size = 0
                for message in _merge(batch, head_sent or self.known_length):
                    if message["type"] == "http.response.body":
                        head_sent = True
                        size += len(message["body"])
                    await send(message)
                if gone():
                    self.abort()
                    return
                with cond:
                    self.out_bytes -= size
                    if self.thread_waiting:
                        cond.notify_all()
                continue
            if wakeup is None:
                return
            await wakeup


def _merge(batch: list[Any], may_end_merged: bool) -> list[Message]:
    """ASGI messages for a batch: adjacent body chunks joined; the end merged into the last chunk only
    when that cannot change the framing (the head is already out, or Content-Length is set)."""
    messages: list[Message] = []
    chunks: list[bytes] = []
    framed = may_end_merged
    for item in batch:
        if type(item) is bytes:
            chunks.append(item)
            continue
        if item is _END:
            if chunks and framed:
                messages.append(_body(chunks, more=False))
            else:
                if chunks:
                    messages.append(_body(chunks, more=True))
                messages.append({"type": "http.response.body", "body": b"", "more_body": False})
            chunks = []
            continue
        if chunks:
            messages.append(_body(chunks, more=True))
            framed = True
            chunks = []
        messages.append(item)
    if chunks:
        messages.append(_body(chunks, more=True))
    return messages


def _body(chunks: list[bytes], more: bool) -> Message:
    body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
    return {"type": "http.response.body", "body": body, "more_body": more}


END = _END
