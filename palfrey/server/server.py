"""`Server`: one process serving the app on its listeners until told to stop.

Startup: load the app, run lifespan startup, start listening, log where. A tick every quarter second
refreshes the Date header (once a second) and sweeps connection deadlines. Shutdown (TERM/INT):
stop accepting, close idle connections, let in-flight requests finish (answered with
`Connection: close`) within --timeout-graceful-shutdown, run lifespan shutdown. A second INT, or QUIT,
stops at once. `await Server(config).serve()` also works inside an existing event loop.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import signal
import socket
import ssl
import threading
import time
from collections.abc import Callable
from typing import Any

from palfrey.config import Config, ConfigError
from palfrey.errors import EXIT_BAD_SETTINGS, EXIT_BOOT, EXIT_CONFIG, EXIT_OK
from palfrey.http.protocol import HttpProtocol
from palfrey.importer import AppLoadError, detect_interface, load_app, log_app_load_error
from palfrey.interfaces.asgi2 import ASGI2Middleware
from palfrey.lifespan import Lifespan
from palfrey.server.accept import Acceptor, connection_room
from palfrey.server.sockets import bind_sockets, describe
from palfrey.server.state import ServerState

logger = logging.getLogger("palfrey.error")

# The exit codes live in palfrey.errors; re-exported here, where callers have always found them.
__all__ = [
    "EXIT_BAD_SETTINGS",
    "EXIT_BOOT",
    "EXIT_CONFIG",
    "EXIT_OK",
    "Server",
    "load_asgi_app",
    "new_event_loop",
]

TICK = 0.25
_HANDLED_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGQUIT)


def load_asgi_app(config: Config) -> Callable[..., Any]:
    """The configured app as an ASGI 3 callable (ASGI 2 and WSGI apps are wrapped)."""
    app = load_app(config.app, app_dir=config.app_dir, factory=config.factory)
    interface = config.interface if config.interface != "auto" else detect_interface(app)
    if interface == "wsgi":
        from palfrey.interfaces.wsgi import WSGIMiddleware

        # The thread pool starts threads on first use (never in a master before fork) and stops
        # them at lifespan shutdown.
        return WSGIMiddleware(
            app,
            config.threads,
            multiprocess=(config.workers or 1) > 1,
            max_threads=config.threads_max,
            idle_timeout=config.threads_idle_timeout,
            max_queued=config.threads_queue,
        )
    if interface == "asgi2":
        return ASGI2Middleware(app)
    return app


def draw_request_limit(config: Config) -> int | None:
    """--limit-max-requests plus a random draw up to --limit-max-requests-jitter, once per process.

    The one place the jitter is drawn: a plain Server stops at this limit, and a forked worker (which
    sets `Server.on_max_requests`) asks its master to recycle it instead.
    """
    if config.limit_max_requests is None:
        return None
    return config.limit_max_requests + random.randint(0, config.limit_max_requests_jitter)


def new_event_loop(name: str) -> asyncio.AbstractEventLoop:
    """auto prefers uvloop when installed; asking for uvloop without it is a config error."""
    if name in ("auto", "uvloop"):
        try:
            import uvloop
        except ImportError:
            if name == "uvloop":
                raise ConfigError(
                    "--loop uvloop needs uvloop: pip install uvloop (or install palfrey with its standard extra)"
                ) from None
        else:
            return uvloop.new_event_loop()
    return asyncio.SelectorEventLoop() if os.name != "nt" else asyncio.new_event_loop()


class Server:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.should_exit = False
        self.force_exit = False
        self.started = False
        self.state: ServerState | None = None
        self.sockets: list[socket.socket] = []
        self._servers: list[asyncio.AbstractServer] = []  # the --metrics endpoint's
        self._acceptor: Acceptor | None = None  # the listeners (accept.py: back-off out of descriptors)
        self._exit: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._force: asyncio.Future[None] | None = None
        self._tick_handle: asyncio.TimerHandle | None = None
        self._last_second = 0
        # --limit-max-requests (+ jitter): reaching it calls on_max_requests if set (a forked worker asks
        # its master to recycle it), else this server stops gracefully.
        self.max_requests = draw_request_limit(config)
        self.on_max_requests: Callable[[], None] | None = None
        # A forked worker sends why it cannot boot to its master, which logs it once for all workers.
        self.on_boot_error: Callable[[AppLoadError], None] | None = None
        # Supervisor hooks (palfrey.supervisor.worker): a forked worker reports readiness to its master
        # from on_started, and leaves the "running on" line to the master, which logs it once.
        self.on_started: Callable[[], None] | None = None
        self.log_listening = True
        # Embedding hooks (palfrey.workers, the gunicorn worker): a host that owns the process's signals
        # turns ours off, and may adjust the per-process state (access logger, proxy rules) before serving.
        self.install_signal_handlers = True
        self.prepare_state: Callable[[ServerState], None] | None = None
        # ... and may build the TLS context itself (gunicorn's `ssl_context` hook), given palfrey's.
        self.build_ssl_context: Callable[[Config, Callable[[], ssl.SSLContext]], ssl.SSLContext] | None = None
        # Other workers read the same listeners (palfrey's master with --workers > 1, gunicorn with
        # workers > 1): only then does a full WSGI worker leave new connections to them (accept.py).
        # A lone server has nobody to leave them to, so it accepts at once and queues for a thread.
        self.shares_listeners = False
        self._accepting_stopped = False
        # --metrics: one process serves scrapes itself; a forked worker (False) reports to its master.
        self.metrics_endpoint = True
        self._metrics_sock: socket.socket | None = None
        self._health_sock: socket.socket | None = None  # --health-bind on an address of its own
        # --shutdown-delay: on TERM, /readyz turns 503 while serving goes on this long. A forked
        # worker sets 0: its master keeps the delay and sends TERM when it is over.
        self.shutdown_delay = float(config.shutdown_delay)
        self.delaying = False

    def run(self, sockets: list[socket.socket] | None = None) -> int:
        """Run in a new event loop of the configured kind; returns the process exit code."""
        loop = new_event_loop(self.config.loop)
        asyncio.set_event_loop(loop)
        try:
            return loop.run_until_complete(self.serve(sockets))
        finally:
            try:
                _cancel_all(loop)
                loop.run_until_complete(loop.shutdown_asyncgens())
            finally:
                asyncio.set_event_loop(None)
                loop.close()

    async def serve(self, sockets: list[socket.socket] | None = None) -> int:
        loop = asyncio.get_running_loop()
        self._exit = asyncio.Event()
        self._force = loop.create_future()
        self._loop = loop
        if self.should_exit or self.force_exit:
            self._wake()
        config = self.config
        installed = self._install_signal_handlers(loop) if self.install_signal_handlers else []
        try:
            return await self._serve(loop, config, sockets)
        finally:
            for sig in installed:
                loop.remove_signal_handler(sig)
            for sock in (self._metrics_sock, self._health_sock):
                if sock is not None:
                    sock.close()  # already closed with its server, unless startup failed

    async def _serve(
        self, loop: asyncio.AbstractEventLoop, config: Config, sockets: list[socket.socket] | None
    ) -> int:
        logger.info("Started server process [%d]", os.getpid())
        ssl_context = None
        if config.is_ssl:
            from palfrey.tls import create_ssl_context

            build = self.build_ssl_context
            ssl_context = (
                create_ssl_context(config)
                if build is None
                else build(config, lambda: create_ssl_context(config))
            )
        if config.http2:
            from palfrey.http2.negotiate import prepare_http2

            prepare_http2()
        self.sockets = sockets if sockets is not None else bind_sockets(config)
        if config.metrics and self.metrics_endpoint:
            from palfrey.metrics.endpoint import bind

            self._metrics_sock = bind(config.metrics_bind)  # a busy port is one line and exit 1
        if config.health_bind is not None and self.metrics_endpoint and not self._health_shared():
            from palfrey.metrics.endpoint import bind

            self._health_sock = bind(config.health_bind, "--health-bind")
        try:
            app = load_asgi_app(config)
        except AppLoadError as exc:
            if self.on_boot_error is not None:
                self.on_boot_error(exc)
            else:
                log_app_load_error(logger, exc)
            return EXIT_BOOT
        state = self.state = ServerState(config, app, loop)
        if self.max_requests is not None:
            state.on_request_done = self._request_done
        if self.prepare_state is not None:
            self.prepare_state(state)
        lifespan = Lifespan(app, config.lifespan, state.lifespan_state)
        if not await lifespan.startup():
            return EXIT_BOOT
        if self.should_exit:
            await lifespan.shutdown()
            return EXIT_OK

        protocol = HttpProtocol
        from palfrey.logging.trace import TracingHttpProtocol, trace_enabled

        if trace_enabled():  # connection open/close at TRACE, decided once (as ServerState decided)
            protocol = TracingHttpProtocol
        if ssl_context is not None:  # the ASGI `tls` extension: a subclass, so plain TCP pays nothing
            from palfrey.http.tls_extension import tls_protocol

            protocol = tls_protocol(protocol, config.ssl_certfile, ssl_context)
        metrics = state.metrics

        def protocol_factory() -> asyncio.Protocol:
            return protocol(state)

        if config.http2:
            from palfrey.http2.negotiate import protocol_factory as http2_factory

            protocol_factory = http2_factory(state, config.http2_max_concurrent_streams, protocol)
        self._acceptor = Acceptor(
            loop,
            self.sockets,
            protocol_factory,
            ssl=ssl_context,
            backlog=config.backlog,
            on_exhausted=metrics.accept_exhausted_episode if metrics is not None else None,
            room=connection_room(app, state.connections)
            if self.shares_listeners and not config.reuse_port
            else None,
        )
        try:
            self._acceptor.start()
        except NotImplementedError:  # a loop without add_reader (Windows' proactor): its own accept
            self._acceptor = None
            for sock in self.sockets:
                server = await loop.create_server(
                    protocol_factory, sock=sock, backlog=config.backlog, ssl=ssl_context
                )
                self._servers.append(server)
        for sock in self.sockets if self.log_listening else ():
            logger.info(
                "Palfrey running on %s (Press CTRL+C to quit)", describe(sock, ssl_context is not None)
            )
        if self._metrics_sock is not None:
            from palfrey.metrics.endpoint import serve_local

            health = self.not_ready if self._health_shared() else None
            self._servers.append(await serve_local(state, self._metrics_sock, health))
        if self._health_sock is not None:
            from palfrey.metrics.endpoint import serve_health

            self._servers.append(await serve_health(self._health_sock, self.not_ready))
        self.started = True
        self._tick()
        if self.on_started is not None:
            self.on_started()

        assert self._exit is not None  # set by serve() before it calls this
        await self._exit.wait()
        await self._shutdown(lifespan)
        return EXIT_OK

    def _tick(self) -> None:
        state = self.state
        assert state is not None
        loop = state.loop
        now = time.time()
        if int(now) != self._last_second:
            self._last_second = int(now)
            state.refresh_date(now)
        monotonic = loop.time()
        for connection in state.connections:
            if monotonic >= connection.deadline:
                connection.check_deadline(monotonic)
        request_timeout = state.slow.request_timeout
        if request_timeout is not None:
            # --timeout-request: each request's deadline is stamped by this sweep the first time it
            # sees the request (no timer, nothing per request); WebSocket sessions have none.
            for connection in list(state.connections):
                check = getattr(connection, "check_request_timeout", None)
                if check is not None:
                    check(monotonic, request_timeout)
        if self.should_exit or self.force_exit:
            # `server.should_exit = True` (uvicorn's idiom, possibly from another thread) stops it too.
            self._wake()
        self._tick_handle = loop.call_later(TICK, self._tick)

    def _health_shared(self) -> bool:
        """--health-bind names the --metrics-bind address: one listener serves all three paths."""
        config = self.config
        return (
            bool(config.metrics)
            and config.health_bind is not None
            and (config.health_bind == config.metrics_bind)
        )

    def not_ready(self) -> str | None:
        """/readyz of a single process: None when it takes new work, else why not (one line)."""
        state = self.state
        if self.should_exit or (state is not None and state.draining):
            return "shutting down"
        if self.delaying:
            return f"shutting down: in the {self.shutdown_delay:g}s shutdown delay"
        if not self.started:
            return "starting"
        return None

    def _request_done(self) -> None:
        """Per finished request, only with --limit-max-requests: act the moment the limit is reached."""
        state = self.state
        assert state is not None and self.max_requests is not None
        if state.total_requests < self.max_requests:
            return
        state.on_request_done = None
        if self.on_max_requests is not None:
            self.on_max_requests()
        elif not self.should_exit:
            logger.info("Maximum request limit of %d exceeded. Terminating process.", self.max_requests)
            self.request_exit()

    def request_exit(self, force: bool = False) -> None:
        """Stop serving (gracefully unless `force`); safe to call from any thread."""
        self.should_exit = True
        if force:
            self.force_exit = True
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            self._wake()
        else:
            loop.call_soon_threadsafe(self._wake)

    def _wake(self) -> None:
        if self.should_exit and self._exit is not None and not self._exit.is_set():
            self._exit.set()
        if self.force_exit and self._force is not None and not self._force.done():
            self._force.set_result(None)

    def handle_signal(self, sig: int) -> None:
        if sig == signal.SIGQUIT or (sig == signal.SIGINT and self.should_exit):
            self.request_exit(force=True)
        elif sig == signal.SIGTERM and self.shutdown_delay > 0 and not self.delaying and not self.should_exit:
            self.start_shutdown_delay()
        else:
            self.request_exit()  # a second TERM during the delay shuts down now

    def start_shutdown_delay(self) -> None:
        """--shutdown-delay: not ready at once, serving on (every listener accepts) until it is over."""
        self.delaying = True
        logger.info(
            "Received SIGTERM: /readyz now answers 503; serving for %gs more, then shutting down",
            self.shutdown_delay,
        )
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_later(self.shutdown_delay, self.request_exit)
        else:
            self.request_exit()

    async def stop_accepting(self) -> None:
        """Close the listeners without dropping connections accepted a moment ago.

        A batch of connections accepted in one wake-up gets its transports a loop iteration or two
        later. So stop reading the listeners first, let those attach, then close the sockets.
        A shared listener's backlog stays with the other processes holding it (pre-fork, gunicorn).
        """
        if self._accepting_stopped:
            return
        self._accepting_stopped = True
        if self.pause_accepting():
            for _ in range(3):
                await asyncio.sleep(0)
        if self._acceptor is not None:
            self._acceptor.close()
        for server in self._servers:
            server.close()

    def pause_accepting(self) -> bool:
        """Stop reading the listeners now, synchronously; True if it could (on both loops: the
        `Acceptor` owns the readers; False only where the loop has no `add_reader`).

        A worker at its limit calls this the moment it reaches it, so not one more connection is
        accepted; `stop_accepting()` then closes the listeners a few loop iterations later.
        """
        acceptor = self._acceptor
        if acceptor is None:
            return False
        acceptor.stop()
        return True

    async def _shutdown(self, lifespan: Lifespan) -> None:
        state = self.state
        assert state is not None
        if not self.force_exit:
            await self.stop_accepting()
        if self._acceptor is not None:
            self._acceptor.close()
        for server in self._servers:
            server.close()
        # Logged once the listeners are closed, with no await before the connections are told: a
        # request that arrives after this line is answered with `Connection: close`.
        logger.info("Shutting down")
        state.draining = True
        for connection in list(state.connections):
            connection.shutdown()
        timeout = self.config.timeout_graceful_shutdown
        if not self.force_exit and (state.connections or state.tasks):
            idle = state.idle_future()
            assert self._force is not None
            done, _ = await asyncio.wait(
                (idle, self._force), timeout=timeout, return_when=asyncio.FIRST_COMPLETED
            )
            if not done:
                logger.warning(
                    "Graceful shutdown timed out after %gs with %d connection(s) open; closing them.",
                    timeout,
                    len(state.connections),
                )
        for connection in list(state.connections):
            connection.transport.abort()
        for task in list(state.tasks):
            task.cancel()
        if state.tasks:
            await asyncio.wait(list(state.tasks), timeout=1)
        if self._tick_handle is not None:
            self._tick_handle.cancel()
        if not self.force_exit:
            await lifespan.shutdown()
        for server in self._servers:
            server.close()
        if self.config.uds and os.path.exists(self.config.uds):
            try:
                os.unlink(self.config.uds)
            except OSError:
                pass
        logger.info("Finished server process [%d]", os.getpid())

    def _install_signal_handlers(self, loop: asyncio.AbstractEventLoop) -> list[int]:
        if threading.current_thread() is not threading.main_thread():
            return []
        installed: list[int] = []
        for sig in _HANDLED_SIGNALS:
            try:
                loop.add_signal_handler(sig, self.handle_signal, sig)
            except (NotImplementedError, RuntimeError, ValueError):
                continue
            installed.append(sig)
        return installed


def _cancel_all(loop: asyncio.AbstractEventLoop) -> None:
    tasks = [t for t in asyncio.all_tasks(loop) if not t.done()]
    for task in tasks:
        task.cancel()
    if tasks:
        loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
