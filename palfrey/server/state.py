"""What every connection of one server process shares, prepared once from the Config.

Protocols read plain attributes from here (never the Config), so per-request code touches values
that were validated and encoded at startup: limits, timeouts, default header bytes, the app.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from palfrey.config import Config
from palfrey.http.parsers import H11Parser, HttptoolsParser, Limits
from palfrey.http.response import date_line, header_lines
from palfrey.websocket.engines import websocket_settings

if TYPE_CHECKING:
    from palfrey.metrics.counters import Recorder
    from palfrey.server.hooks import AccessLogger, ProxyRules


@dataclass(frozen=True, slots=True)
class SlowClients:
    """The slow-client floor and the request limits of docs/deployment.md: read off the hot path (or,
    for the body limit, only for requests with a body), so one attribute of ServerState holds them."""

    body_rate: int  # --limit-request-body-rate, bytes/s; 0: no floor
    body_rate_grace: float  # --limit-request-body-rate-grace, seconds
    send_timeout: float  # --timeout-send, seconds
    body_limit: int | None = None  # --limit-request-body, bytes; read only for requests with a body
    request_timeout: float | None = None  # --timeout-request, seconds; read once per sweep


class ServerState:
    """Shared, mostly read-only state for one process's connections.

    Keep its attributes at 30 or fewer: CPython 3.11 shares an instance dict's keys (and specializes
    attribute loads on them) only up to 30 keys, and one more made every `state.x` on the request
    path slower (measured: +400 instructions per request). Group rarely read values instead.
    """

    # Set here from the Config; the Gunicorn worker replaces both with its own (`prepare_state`).
    proxy: ProxyRules | None
    access_log: AccessLogger | None

    def __init__(self, config: Config, app: Callable[..., Any], loop: asyncio.AbstractEventLoop) -> None:
        from palfrey.logging import AccessLog

        # --log-level trace: every ASGI message is logged by a wrapper, so the hot path never tests for it.
        from palfrey.logging.trace import MessageLogger, trace_enabled
        from palfrey.middleware.proxy_headers import ProxyHeaders, TrustedHosts

        self.app = MessageLogger(app) if trace_enabled() else app  # no attribute: see the 30-key note
        self.loop = loop
        self.connections: set[Any] = set()
        self.tasks: set[asyncio.Task[None]] = set()
        self.total_requests = 0
        self.draining = False
        self.lifespan_state: dict[str, Any] = {}
        self.on_request_done: Callable[[], None] | None = None
        # --metrics: the per-process recorder protocols count into; None (one attribute test) when off.
        self.metrics: Recorder | None = None
        if config.metrics:
            from palfrey.metrics.counters import Recorder

            self.metrics = Recorder()
        self._idle: asyncio.Future[None] | None = None
        self.root_path: str = config.root_path
        self.limit_concurrency: int | None = config.limit_concurrency
        self.timeout_keep_alive = float(config.timeout_keep_alive)
        self.timeout_request_header = float(config.timeout_request_header)
        self.timeout_request_body = float(config.timeout_request_body)
        self.slow = SlowClients(
            body_rate=config.limit_request_body_rate,
            body_rate_grace=float(config.limit_request_body_rate_grace),
            send_timeout=float(config.timeout_send),
            body_limit=config.limit_request_body,
            request_timeout=(float(config.timeout_request) if config.timeout_request is not None else None),
        )
        self.limits = Limits(
            request_line=config.limit_request_line,
            fields=config.limit_request_fields,
            field_size=config.limit_request_field_size,
            head=config.limit_request_head,
        )
        self.parser_name = resolve_http(config.http)
        # WebSocket settings, or None (--ws none, or no engine installed): upgrades are plain HTTP.
        self.ws = websocket_settings(config)
        self.restarting = False  # set by a draining worker: WebSockets close with 1012, not 1001
        self.h11_max_incomplete_event_size = config.h11_max_incomplete_event_size
        self.proxy = (
            ProxyHeaders(TrustedHosts(config.forwarded_allow_ips), config.proxy_headers_family)
            if config.proxy_headers
            else None
        )
        access_log = AccessLog(config.access_log_format) if config.access_log else None
        self.access_log = access_log if access_log is not None and access_log.enabled else None
        # Request tasks start from a copy of this: the server's context at startup, or an empty one
        # with --reset-contextvars (then nothing set outside the request is visible inside it).
        self.context = contextvars.Context() if config.reset_contextvars else contextvars.copy_context()

        custom = [tuple(h.split(":", 1)) for h in config.headers]
        server_lines = [("server", "palfrey")] if config.server_header else []
        custom_names = {name.strip().lower() for name, _ in custom}
        if "server" in custom_names:
            server_lines = []
        self._server_bytes = header_lines(server_lines)
        self._custom_bytes = header_lines(custom)  # type: ignore[arg-type]
        self._date_enabled = config.date_header and "date" not in custom_names
        self._date = b""
        self.defaults = b""  # Date + Server + --header lines: what most responses carry as is
        self.refresh_date()

    def idle_future(self) -> asyncio.Future[None]:
        """Resolves once no connection and no request task is left (graceful shutdown waits on it)."""
        self._idle = self.loop.create_future()
        self.check_idle()
        return self._idle

    def check_idle(self) -> None:
        idle = self._idle
        if idle is not None and not idle.done() and not self.connections and not self.tasks:
            idle.set_result(None)

    def at_capacity(self) -> bool:
        """--limit-concurrency: are `limit` requests or WebSocket sessions already running?

        `tasks` holds one task per HTTP request in progress and one per open WebSocket session, so
        the limit counts work; an idle keep-alive connection holds no task and never counts. The
        HTTP protocol inlines this test on its hot path; the WebSocket protocol can call it.
        """
        limit = self.limit_concurrency
        return limit is not None and len(self.tasks) >= limit

    def task_done(self, task: asyncio.Task[None] | None) -> None:
        self.tasks.discard(task)
        if self._idle is not None:
            self.check_idle()

    def new_parser(self, protocol: Any) -> HttptoolsParser | H11Parser:
        if self.parser_name == "httptools":
            return HttptoolsParser(protocol, self.limits)
        return H11Parser(protocol, self.limits, self.h11_max_incomplete_event_size)

    def refresh_date(self, now: float | None = None) -> None:
        """Called once a second by the server tick: the Date header is never formatted per request."""
        self._date = date_line(now) if self._date_enabled else b""
        self.defaults = self._date + self._server_bytes + self._custom_bytes

    def default_headers(self, has_server: bool, has_date: bool) -> bytes:
        """Server-added header lines, leaving out those the app set itself."""
        if not has_server and not has_date:
            return self.defaults
        return (
            (b"" if has_date else self._date)
            + (b"" if has_server else self._server_bytes)
            + self._custom_bytes
        )


def resolve_http(name: str) -> str:
    if name == "auto":
        try:
            import httptools
        except ImportError:
            return "h11"
        return "httptools"
    if name == "httptools":
        import httptools  # noqa: F401  (ImportError reported by the caller)
    return name
