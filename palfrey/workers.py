"""gunicorn worker classes: keep gunicorn as the process manager, serve with palfrey.

    gunicorn main:app -k palfrey.workers.PalfreyWorker       # httptools + uvloop when installed
    gunicorn main:app -k palfrey.workers.PalfreyH11Worker    # h11 + asyncio (pure Python)

gunicorn binds the sockets, forks, recycles and kills; each worker runs one palfrey `Server` on the
sockets it inherited, configured from gunicorn's settings (`palfrey.gunicorn.settings`, documented in
docs/gunicorn.md). Signals mean what gunicorn means by them: TERM drains within `graceful_timeout`,
INT and QUIT stop at once, ABRT (sent when the worker missed its `timeout`) exits, USR1 reopens logs.
"""

from __future__ import annotations

import asyncio
import os
import signal
import ssl
import sys
from collections.abc import Callable
from typing import Any, ClassVar

try:
    from gunicorn.workers.base import Worker
except ImportError as exc:  # pragma: no cover - exercised without the extra installed
    raise ImportError(
        "palfrey.workers needs gunicorn, which is not installed: pip install gunicorn (or install palfrey with its gunicorn extra)"
    ) from exc

from palfrey.config import Config, ConfigError
from palfrey.gunicorn import restarts
from palfrey.gunicorn.adapters import (
    GunicornAccessLog,
    SecureSchemeHeaders,
    access_log_wanted,
    route_palfrey_logs,
)
from palfrey.gunicorn.hooks import PostRequestLog, is_default, with_pre_request
from palfrey.gunicorn.refused import refused_settings
from palfrey.gunicorn.settings import palfrey_settings, trusted_proxies
from palfrey.metrics.gunicorn_worker import GunicornMetrics
from palfrey.server.server import EXIT_BOOT, Server, new_event_loop
from palfrey.server.state import ServerState

__all__ = ["PalfreyH11Worker", "PalfreyWorker"]

#: How long a worker that stopped accepting waits before closing connections that carry no request.
DRAIN_GRACE = 0.1
#: Longest gap between two heartbeats, whatever the timeout: a heartbeat is one cheap syscall.
MAX_HEARTBEAT = 1.0


class PalfreyWorker(GunicornMetrics, Worker):  # type: ignore[misc]  # gunicorn has no type information
    """A gunicorn worker serving an ASGI or WSGI app with palfrey (parser and event loop: `auto`).

    Subclass and change `CONFIG_KWARGS` to set palfrey settings gunicorn has no name for.
    """

    CONFIG_KWARGS: ClassVar[dict[str, Any]] = {"loop": "auto", "http": "auto"}
    alive: bool  # gunicorn's Worker sets it; declared for the type checker

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.server: Server | None = None
        self._heartbeat_handle: asyncio.TimerHandle | None = None
        self._draining: asyncio.Future[None] | None = None
        # The arbiter builds this object in the master, just before the fork: a TERM after the
        # master's reload counter moved on is a HUP replacing us (palfrey.gunicorn.restarts).
        self._generation = restarts.generation()

    @classmethod
    def setup(cls) -> None:
        """Run by gunicorn in the master whenever the arbiter resolves `worker_class`: at boot and
        on every HUP reload, before the new workers are forked."""
        restarts.note_setup()

    @classmethod
    def check_config(cls, cfg: Any, log: Any) -> None:
        """Run once by gunicorn's arbiter, in the master, before the first fork: name every setting
        the worker ignores, and start the metrics collector if asked."""
        for line in refused_settings(cfg):
            log.warning("%s", line)
        if os.environ.get("PALFREY_METRICS_BIND"):  # docs/metrics.md, "Under gunicorn"
            from palfrey.metrics.gunicorn_master import install

            try:
                install(cfg, log)
            except ConfigError as exc:  # gunicorn prints a RuntimeError as one "Error: ..." line, exit 1
                raise RuntimeError(str(exc)) from None

    def palfrey_config(self) -> Config:
        """The palfrey settings this worker serves with: gunicorn's, translated, then `CONFIG_KWARGS`."""
        return Config(
            self.wsgi, **palfrey_settings(self.cfg, {**self.CONFIG_KWARGS, **self.metrics_settings()})
        )

    # gunicorn calls init_process() → init_signals(), load_wsgi(), then run(); returning from run()
    # exits the process with 0, SystemExit(n) with n.

    def run(self) -> None:
        try:
            config = self.palfrey_config()
            loop = new_event_loop(config.loop)
        except ConfigError as exc:
            self.log.error("%s", exc)
            sys.exit(EXIT_BOOT)  # a setting will not fix itself: gunicorn halts instead of respawning
        route_palfrey_logs(self.log)
        server = self.server = Server(config)
        server.install_signal_handlers = False  # gunicorn's signal vocabulary, installed below
        server.shares_listeners = self.cfg.workers > 1  # siblings to leave connections to (accept.py)
        server.prepare_state = self._prepare_state
        if config.is_ssl and not is_default(self.cfg, "ssl_context"):
            server.build_ssl_context = self._ssl_context
        # gunicorn owns the sockets and CTRL+C: "Palfrey running on ... (Press CTRL+C to quit)" would
        # mislead; each worker says it serves (gunicorn already logged "Listening at").
        server.log_listening = False
        server.on_started = self._started
        if not self.alive:  # TERM arrived while the app was loading
            server.request_exit()
        asyncio.set_event_loop(loop)
        try:
            code = loop.run_until_complete(self._serve(server, loop))
        except ConfigError as exc:  # e.g. TLS files that cannot be loaded
            self.log.error("%s", exc)
            code = EXIT_BOOT
        except Exception:
            if server.started:
                raise
            self.log.exception("Worker failed to boot")
            code = EXIT_BOOT
        finally:
            _close_loop(loop)
        if code:
            sys.exit(code)  # 3 (boot failure, lifespan startup failed) makes gunicorn's arbiter halt

    async def _serve(self, server: Server, loop: asyncio.AbstractEventLoop) -> int:
        handlers = {
            signal.SIGTERM: self._graceful_exit,
            signal.SIGINT: self._quick_exit,
            signal.SIGQUIT: self._quick_exit,
            signal.SIGUSR1: self.log.reopen_files,
        }
        installed = []
        for sig, handler in handlers.items():
            loop.add_signal_handler(sig, handler)
            installed.append(sig)
        # ABRT keeps gunicorn's plain handler (set by init_signals): it is sent precisely when this
        # loop is blocked, so it must not wait for the loop to run it.
        self._heartbeat(loop)  # from the loop, before lifespan startup: a blocked loop goes silent
        self.metrics_start(server, loop)  # PALFREY_METRICS_BIND: answer the master's collector
        try:
            return await server.serve([listener.sock for listener in self.sockets])
        finally:
            self.metrics_stop()  # the final snapshot, after the drain
            if self._heartbeat_handle is not None:
                self._heartbeat_handle.cancel()
            for sig in installed:
                loop.remove_signal_handler(sig)

    def _started(self) -> None:
        self.log.info("Palfrey worker serving (pid: %s)", os.getpid())
        self.metrics_ready()

    def _heartbeat(self, loop: asyncio.AbstractEventLoop) -> None:
        """Tell the arbiter we are alive; it kills a worker silent for `timeout` (self.timeout is half)."""
        self.notify()
        if os.getppid() != self.ppid and self.alive:
            self.alive = False
            self.log.info("Parent changed, shutting down: %s", self)
            self._graceful_exit(restarting=False)
        interval = min(self.timeout / 2, MAX_HEARTBEAT) if self.timeout > 0 else MAX_HEARTBEAT
        self._heartbeat_handle = loop.call_later(interval, self._heartbeat, loop)

    def _graceful_exit(self, restarting: bool | None = None) -> None:
        """TERM, max_requests reached, or the arbiter went away: stop accepting, then drain.

        `restarting` (a replacement serves on: WebSockets close with 1012, not 1001) defaults to
        whether the master reloaded (HUP) since it created this worker.
        """
        self.alive = False
        self.metrics_draining()
        server = self.server
        if server is None or self._draining is not None:
            return
        if not server.started:
            server.request_exit()  # still in lifespan startup: nothing accepted yet
            return
        if restarting is None:
            restarting = restarts.generation() != self._generation
        self._draining = asyncio.ensure_future(self._stop_accepting_then_drain(server, restarting))

    async def _stop_accepting_then_drain(self, server: Server, restarting: bool) -> None:
        """Palfrey's master's drain: take no new work, answer with `Connection: close`, then stop.

        Leave the shared listen queue to the other workers first. For a short grace every response
        says `Connection: close`, so a client sending back to back on a keep-alive connection
        reconnects (to another worker) instead of sending on a connection that the drain then closes
        under it; connections accepted just before we stopped accepting deliver their request.
        """
        state = server.state
        if state is not None:
            state.draining = True  # responses from now on carry Connection: close
            state.restarting = restarting
        server.pause_accepting()
        await server.stop_accepting()
        await asyncio.sleep(DRAIN_GRACE)
        server.request_exit()

    def _quick_exit(self) -> None:
        self.alive = False
        self.metrics_draining()
        self.cfg.worker_int(self)
        if self.server is not None:
            self.server.request_exit(force=True)

    def _prepare_state(self, state: ServerState) -> None:
        """Access log through gunicorn's logger; gunicorn's secure_scheme_headers on the proxy rules."""
        state.access_log = GunicornAccessLog(self.log) if access_log_wanted(self.log) else None
        if self.max_requests < sys.maxsize:
            # Checked after every response, not on the server's quarter-second tick: under load a
            # tick lets a worker overshoot max_requests by hundreds.
            state.on_request_done = _chain(state.on_request_done, self._count_request)
        state.proxy = SecureSchemeHeaders.wrap(
            self.cfg.secure_scheme_headers, trusted_proxies(self.cfg), state.proxy
        )
        # gunicorn's request hooks, only when the config sets them: the defaults add no work.
        if not is_default(self.cfg, "pre_request"):
            state.app = with_pre_request(state.app, self.cfg.pre_request, self)
        if not is_default(self.cfg, "post_request"):
            state.access_log = PostRequestLog(self.cfg.post_request, self, state.access_log)

    def _ssl_context(self, config: Config, palfrey_context: Callable[[], ssl.SSLContext]) -> ssl.SSLContext:
        """gunicorn 21+'s `ssl_context(cfg, default_ssl_context_factory)` hook builds the context;
        its factory is palfrey's (certificate, key, cert_reqs, ca_certs, ciphers, and `h2` in ALPN
        when HTTP/2 is on)."""
        context = self.cfg.ssl_context(self.cfg, palfrey_context)
        if not isinstance(context, ssl.SSLContext):
            raise ConfigError(f"gunicorn's ssl_context hook returned {context!r}, not an ssl.SSLContext")
        return context

    def _count_request(self) -> None:
        server = self.server
        if server is None or server.should_exit or server.state is None:
            return
        if server.state.total_requests >= self.max_requests and self._draining is None:
            self.log.info("Autorestarting worker after %d requests.", server.state.total_requests)
            self._graceful_exit(restarting=True)  # the arbiter replaces us


class PalfreyH11Worker(PalfreyWorker):
    """The pure-Python variant: h11 and the stdlib asyncio loop (no compiled dependencies)."""

    CONFIG_KWARGS: ClassVar[dict[str, Any]] = {"loop": "asyncio", "http": "h11"}


def _chain(first: Callable[[], None] | None, second: Callable[[], None]) -> Callable[[], None]:
    if first is None:
        return second

    def both() -> None:
        first()
        second()

    return both


def _close_loop(loop: asyncio.AbstractEventLoop) -> None:
    """Let cancelled tasks and async generators finish, then close the loop."""
    try:
        tasks = [task for task in asyncio.all_tasks(loop) if not task.done()]
        for task in tasks:
            task.cancel()
        if tasks:
            loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
        loop.run_until_complete(loop.shutdown_asyncgens())
    finally:
        asyncio.set_event_loop(None)
        loop.close()
