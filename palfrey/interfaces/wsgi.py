"""WSGI apps served as ASGI 3, so the one HTTP core serves them unchanged.

Each request runs the app in a worker thread of a bounded pool (`--threads`); requests beyond that
wait for a free thread while the event loop keeps serving everything else (keep-alive, new
connections, health pings). The request body streams into `wsgi.input` and the response iterable out
to the client, both with back-pressure (see `wsgi_bridge`), so no body is ever held whole.

Errors follow PEP 3333 and the HTTP core: an exception before the response head went out becomes a
500; after it, the connection is closed. Either way the traceback is logged and the iterable's
`close()` is called, also when the client disconnected mid-response.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from functools import partial
from types import GeneratorType
from typing import Any

from palfrey.asgi_types import Message, Receive, Scope, Send
from palfrey.http.cycle import RequestCycle
from palfrey.interfaces.wsgi_bridge import END, Bridge, ClientDisconnected
from palfrey.interfaces.wsgi_environ import ErrorStream, FileWrapper, InputStream, build_environ
from palfrey.interfaces.wsgi_pool import ThreadPool

__all__ = ["ClientDisconnected", "ThreadPool", "WSGIMiddleware"]  # ThreadPool: re-exported

logger = logging.getLogger("palfrey.error")

_NO_BODY = frozenset((204, 304))


_BUSY: Message = {
    "type": "http.response.start",
    "status": 503,
    "headers": [(b"content-type", b"text/plain; charset=utf-8"), (b"retry-after", b"1")],
}
_BUSY_BODY: Message = {"type": "http.response.body", "body": b"Service Unavailable: too many requests queued"}


class WSGIMiddleware:
    """Present `app(environ, start_response)` as an ASGI 3 app.

    `threads` > 0 is a fixed pool; 0 is the adaptive pool (see `wsgi_pool`) that grows up to
    `max_threads` while its threads wait on I/O and shrinks after `idle_timeout` seconds. At most
    `max_queued` requests wait for a thread (None: no bound); more are answered 503.
    """

    def __init__(
        self,
        app: Callable[..., Any],
        threads: int = 16,
        *,
        multiprocess: bool = False,
        max_threads: int = 1000,
        idle_timeout: float = 10.0,
        max_queued: int | None = None,
    ) -> None:
        self.app = app
        self.pool = ThreadPool(
            threads, ceiling=max_threads, idle_timeout=idle_timeout, queue_limit=max_queued
        )
        self.base_environ: dict[str, Any] = {
            "wsgi.version": (1, 0),
            "wsgi.errors": ErrorStream(),
            "wsgi.multithread": self.pool.multithread,
            "wsgi.multiprocess": multiprocess,
            "wsgi.run_once": False,
            "wsgi.file_wrapper": FileWrapper,
            # Reading wsgi.input to its end is safe (it ends with the body), so frameworks that honour
            # this (Werkzeug/Flask) accept chunked request bodies without a Content-Length.
            "wsgi.input_terminated": True,
            "SERVER_SOFTWARE": "palfrey",
        }

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "lifespan":
            await self._lifespan(receive, send)
        else:
            raise RuntimeError(f"A WSGI app cannot serve {kind!r} connections")

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        """Nothing to start; shutdown stops the pool's threads once their requests are done."""
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                self.pool.shutdown()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        bridge = Bridge(asyncio.get_running_loop(), receive, _has_body(scope["headers"]))
        gone = _disconnect_probe(receive)
        if not self.pool.submit(partial(self._run, scope, bridge, gone)):
            await send(_BUSY)  # the queue of requests waiting for a thread is full
            await send(_BUSY_BODY)
            return
        try:
            await bridge.pump(send, gone)
        except BaseException:
            bridge.abort()  # cancelled (shutdown) or the core refused a message: release the thread
            raise
        reader = bridge.reader
        if reader is not None and not reader.done():
            reader.cancel()  # the app answered without reading all of the body
        with bridge.cond:
            # Not done: the client left mid-response and the thread, told so, reports its own errors.
            error = bridge.error if bridge.done else None
        if error is None or isinstance(error, ClientDisconnected):
            return
        if isinstance(error, (SystemExit, KeyboardInterrupt)):
            # Raised in a request's thread, they mean nothing to the process: a failed request.
            raise RuntimeError(f"The WSGI app raised {type(error).__name__}") from error
        raise error

    # The worker thread.

    def _run(self, scope: Scope, bridge: Bridge, gone: Callable[[], bool]) -> None:
        if bridge.aborted or gone():
            bridge.finish(None)  # the client left while the request waited for a thread
            return
        response = _Response(bridge, scope["method"] == "HEAD")
        error: BaseException | None = None
        result: Any = None
        final: list[Any] = []
        try:
            environ = build_environ(scope, self.base_environ, InputStream(bridge))
            result = self.app(environ, response.start_response)
            response.stream(result)
            final = response.end()
        except BaseException as exc:
            error = exc
        errors = self.base_environ["wsgi.errors"]
        if errors.pending:  # an app that uses wsgi.errors: what this thread left unflushed, one record
            errors.flush()
        close = getattr(result, "close", None)
        if close is None or type(result) is GeneratorType or error is not None:
            # Closing first lets the end of the response and "done" travel in one loop wake-up
            # (an exhausted generator's close() does nothing).
            error = _close(close, error)
        else:
            try:
                bridge.post(final, 0)  # the client gets the end of the response before close() runs
            except ClientDisconnected as exc:
                error = exc
            final = []
            error = _close(close, error)
        if (
            not bridge.finish(error, final)
            and error is not None
            and not isinstance(error, ClientDisconnected)
        ):
            logger.error("Exception in WSGI application (client gone)\n", exc_info=error)


def _close(close: Callable[[], Any] | None, error: BaseException | None) -> BaseException | None:
    if close is not None:
        try:
            close()
        except BaseException as exc:
            if error is None:
                return exc
            logger.error("Exception closing the WSGI response iterable\n", exc_info=exc)
    return error


class _Response:
    """`start_response`, `write()` and the iteration of the app's result, for one request."""

    __slots__ = ("bridge", "head_posted", "headers", "is_head", "status")

    def __init__(self, bridge: Bridge, is_head: bool) -> None:
        self.bridge = bridge
        self.is_head = is_head
        self.status: int | None = None
        self.headers: list[tuple[bytes, bytes]] = []
        self.head_posted = False

    def start_response(
        self, status: str, headers: list[tuple[str, str]], exc_info: Any = None
    ) -> Callable[[bytes], None]:
        if exc_info is not None:
            try:
                if self.head_posted:
                    raise exc_info[1].with_traceback(exc_info[2])
            finally:
                exc_info = None  # no reference cycle through the traceback
        elif self.status is not None:
            raise RuntimeError("start_response() called twice without exc_info")
        if type(status) is not str:
            raise TypeError(f"WSGI status must be a str, got {type(status).__name__}")
        code = status[:3]
        if len(status) < 3 or not code.isdigit() or (len(status) > 3 and status[3] != " "):
            raise ValueError(f"WSGI status must look like '200 OK', got {status!r}")
        encoded = []
        known_length = False
        for name, value in headers:
            if type(name) is not str or type(value) is not str:
                raise TypeError(f"WSGI header names and values must be str, got {(name, value)!r}")
            raw = name.encode("latin-1")
            if not known_length and raw.lower() == b"content-length":
                known_length = True
            encoded.append((raw, value.encode("latin-1")))
        self.status = int(code)
        self.headers = encoded
        self.bridge.known_length = known_length
        return self.write

    def write(self, data: bytes) -> None:
        """PEP 3333's imperative `write()`: sent now, with the head if it has not gone out yet."""
        if self.status is None:
            raise RuntimeError("write() called before start_response()")
        if type(data) is not bytes:
            raise TypeError(f"WSGI response data must be bytes, got {type(data).__name__}")
        if data:
            self._send(data)

    def _send(self, data: bytes) -> None:
        if self.head_posted:
            self.bridge.post([data], len(data))
            return
        if self.status is None:
            raise RuntimeError("The WSGI app produced body data without calling start_response()")
        self.head_posted = True
        self.bridge.post([self._start(), data], len(data))

    def _start(self) -> Message:
        return {"type": "http.response.start", "status": self.status, "headers": self.headers}

    def stream(self, result: Any) -> None:
        """Send the iterable's chunks as they come; lists get a Content-Length when they have none."""
        if type(result) in (list, tuple) and not self.head_posted and self.status is not None:
            self._add_length(result)
        for chunk in result:
            if type(chunk) is not bytes:
                raise TypeError(f"WSGI response data must be bytes, got {type(chunk).__name__}")
            if chunk:
                self._send(chunk)
                if self.is_head:
                    return  # the head is out and the body is not sent: no need to produce it

    def _add_length(self, chunks: list[bytes] | tuple[bytes, ...]) -> None:
        status = self.status
        assert status is not None
        if self.bridge.known_length or status < 200 or status in _NO_BODY:
            return
        try:
            total = sum(map(len, chunks))
        except TypeError:
            return  # not bytes: stream() reports it
        self.headers.append((b"Content-Length", str(total).encode()))
        self.bridge.known_length = True

    def end(self) -> list[Any]:
        """The messages that finish the response."""
        if self.head_posted:
            return [END]
        if self.status is None:
            raise RuntimeError("The WSGI app returned without calling start_response()")
        self.head_posted = True
        return [self._start(), END]


def _has_body(headers: list[tuple[bytes, bytes]]) -> bool:
    """Request framing (already validated by the core): a length above zero, or chunked."""
    for name, value in headers:
        if name == b"content-length":
            return value.strip() != b"0"
        if name == b"transfer-encoding":
            return True
    return False


def _never() -> bool:
    return False


def _disconnect_probe(receive: Receive) -> Callable[[], bool]:
    """How to tell, cheaply and between chunks, that the client is gone while streaming a response.

    palfrey's request cycle drops sends to a closed connection silently, and its `receive()` only
    reports the disconnect to a task parked in it; its `disconnected` flag is one attribute read. With
    other servers a send to a closed connection raises (ASGI 2.4), which aborts the request too.
    """
    cycle = getattr(receive, "__self__", None)
    if isinstance(cycle, RequestCycle):
        return partial(getattr, cycle, "disconnected")
    return _never
