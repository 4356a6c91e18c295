"""The settings table: every option palfrey has, declared exactly once.

The click CLI (`palfrey.cli`), `palfrey.run(**kwargs)`, `palfrey.Config(...)`, the `PALFREY_*`
environment variables and the settings reference in the docs are all derived from `OPTIONS`, so a
setting cannot drift between entry points. Names and defaults follow uvicorn's where uvicorn has the
option, so `uvicorn main:app --flags` becomes `palfrey main:app --flags`.
"""

from __future__ import annotations

import ssl
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

# Kinds decide both the click type and the validation of keyword arguments.
STR, INT, FLOAT, BOOL, CHOICE, MULTI = "str", "int", "float", "bool", "choice", "multi"


_PYTHON_TYPES = {
    STR: "str",
    INT: "int",
    FLOAT: "float",
    BOOL: "bool",
    CHOICE: "str",
    MULTI: "tuple[str, ...]",
}


@dataclass(frozen=True)
class Option:
    """One setting: its name, type, default, help text and how it is exposed."""

    name: str
    kind: str
    default: Any
    help: str
    choices: tuple[str, ...] = ()
    flag: str | None = None  # CLI spelling when it is not derived from the name
    short: str | None = None
    metavar: str | None = None
    minimum: float | None = None
    nullable: bool = False  # None is a valid value (meaning "not set")
    cli: bool = True
    # A feature that lands in a later release: any value other than the default is refused
    # with this message instead of being silently ignored.
    pending: str | None = None
    # Extra validation/normalisation of the value after type checks (raises ValueError).
    check: Callable[[Any], Any] | None = None
    # The Python type of the value in `Config` when `kind` does not say it (a check converts it).
    python_type: str | None = None

    @property
    def cli_flag(self) -> str:
        if self.flag:
            return self.flag
        dashed = "--" + self.name.replace("_", "-")
        if self.kind == BOOL:
            return f"{dashed}/--no-{self.name.replace('_', '-')}"
        return dashed

    @property
    def envvar(self) -> str:
        return "PALFREY_" + self.name.upper()

    @property
    def annotation(self) -> str:
        """The type of `Config.<name>` as source text; `Config`'s annotations must match it (a test
        checks), so `config.port` is an `int` to mypy, not `Any`."""
        if self.python_type is not None:
            return self.python_type
        base = _PYTHON_TYPES[self.kind]
        return f"{base} | None" if self.nullable or self.default is None else base


def _header(value: Any) -> str:
    """A "name:value" string, or uvicorn's Python form, a (name, value) pair (stored as "name:value")."""
    if isinstance(value, (tuple, list)) and len(value) == 2 and all(isinstance(v, str) for v in value):
        name, header_value = value
        if not name.strip() or ":" in name:
            raise ValueError(f"header {value!r} has no valid name")
        return f"{name.strip()}:{header_value}"
    if not isinstance(value, str):
        raise ValueError(f"header {value!r} is not a 'name:value' string or a (name, value) pair")
    name, sep, _ = value.partition(":")
    if not sep or not name.strip():
        raise ValueError(f"header {value!r} is not of the form 'name:value'")
    return value


def _check_headers(values: Any) -> list[str]:
    return [_header(v) for v in values]


def _access_log_format(value: str | None) -> str | None:
    if value is not None:
        from palfrey.logging import compile_access_format

        compile_access_format(value)  # ValueError with a clear message when the format is bad
    return value


def _ssl_version(value: Any) -> int:
    return int(value)


def _workers(value: str) -> int:
    """A count, or "auto": the CPUs this process may use (affinity and cgroup quota respected)."""
    text = value.strip().lower()
    if text == "auto":
        from palfrey.supervisor.process import usable_cpus

        return usable_cpus()
    try:
        count = int(text)
    except ValueError:
        raise ValueError(f"expects a number of workers or 'auto', got {value!r}") from None
    if count < 1:
        raise ValueError(f"must be at least 1; got {count}")
    return count


def _threads(value: str) -> int:
    """A fixed pool size, or "auto" (0): the adaptive pool."""
    text = value.strip().lower()
    if text == "auto":
        return 0
    try:
        count = int(text)
    except ValueError:
        raise ValueError(f"expects a number of threads or 'auto', got {value!r}") from None
    if count < 0:
        raise ValueError(f"must be at least 1 (or 'auto', also spelled 0); got {count}")
    return count


def _metrics(value: bool) -> bool:
    """--metrics needs the optional prometheus_client (palfrey[metrics]): say so at startup, in one line."""
    if value:
        from palfrey.metrics import MISSING_CLIENT, client_available

        if not client_available():
            raise ValueError(MISSING_CLIENT)
    return value


def _metrics_bind(value: str) -> str:
    from palfrey.addresses import parse_bind

    parse_bind(value)  # ValueError with a one-line message
    return value.strip()


def _ws_engine(value: str) -> str:
    """An explicitly chosen WebSocket implementation must be installed (auto falls back quietly)."""
    if value == "websockets-sansio":
        value = "websockets"  # uvicorn's name for its sans-I/O websockets engine: the one palfrey uses
    if value in ("websockets", "wsproto"):
        from importlib.util import find_spec

        if find_spec(value) is None:
            raise ValueError(f"{value} is not installed: pip install {value}")
    return value


def _window_bits(value: int) -> int:
    if not 9 <= value <= 15:
        raise ValueError(f"must be between 9 and 15; got {value}")
    return value


OPTIONS: tuple[Option, ...] = (
    # Where to listen.
    Option("host", STR, "127.0.0.1", "Bind socket to this host; '::' for IPv6.", metavar="HOST"),
    Option("port", INT, 8000, "Bind socket to this port; 0 picks a free port.", minimum=0),
    Option("uds", STR, None, "Bind to a UNIX domain socket.", nullable=True, metavar="PATH"),
    Option("fd", INT, None, "Bind to socket from this file descriptor.", nullable=True, minimum=0),
    Option("backlog", INT, 2048, "Maximum number of connections to hold in backlog.", minimum=1),
    # Development.
    Option("reload", BOOL, False, "Enable auto-reload.", flag="--reload"),
    Option(
        "reload_dirs",
        MULTI,
        (),
        "Set reload directories explicitly.",
        flag="--reload-dir",
        metavar="PATH",
    ),
    Option(
        "reload_includes",
        MULTI,
        (),
        "Set glob patterns to include while watching for files.",
        flag="--reload-include",
        metavar="GLOB",
    ),
    Option(
        "reload_excludes",
        MULTI,
        (),
        "Set glob patterns to exclude while watching for files.",
        flag="--reload-exclude",
        metavar="GLOB",
    ),
    Option(
        "reload_delay",
        FLOAT,
        0.25,
        "Delay between previous and next check if application needs to be reloaded.",
        minimum=0,
    ),
    # Processes.
    Option(
        "workers",
        STR,
        None,
        "Number of worker processes, or 'auto' for the CPUs this process may use. Defaults to "
        "$WEB_CONCURRENCY or 1. More than one worker, --reload, or any worker limit or health-check "
        "option runs a pre-fork master.",
        nullable=True,
        metavar="N|auto",
        check=_workers,
        python_type="int",  # Config resolves None to $WEB_CONCURRENCY or 1, "auto" to a count
    ),
    Option(
        "preload",
        BOOL,
        False,
        "Import the app once in the master before forking workers (copy-on-write memory sharing; "
        "HUP then restarts workers without new code).",
        flag="--preload",
    ),
    Option(
        "reuse_port",
        BOOL,
        False,
        "Give each worker its own SO_REUSEPORT listener instead of one shared socket.",
        flag="--reuse-port",
    ),
    Option(
        "pid",
        STR,
        None,
        "Write the master's (or the single process's) pid to this file.",
        nullable=True,
        metavar="PATH",
    ),
    # Implementations.
    Option("loop", CHOICE, "auto", "Event loop implementation.", choices=("auto", "asyncio", "uvloop")),
    Option("http", CHOICE, "auto", "HTTP protocol implementation.", choices=("auto", "h11", "httptools")),
    # HTTP/2 (docs/http2.md): negotiated per connection, so HTTP/1.1 costs nothing when it is on.
    Option(
        "http2",
        BOOL,
        False,
        "Serve HTTP/2 as well as HTTP/1.1 (needs the 'h2' package): by ALPN over TLS, and over "
        "cleartext by prior knowledge or an 'Upgrade: h2c' request.",
        flag="--http2",
    ),
    Option(
        "http2_max_concurrent_streams",
        INT,
        100,
        "HTTP/2: streams a client may have open at once on one connection (SETTINGS_MAX_CONCURRENT_STREAMS).",
        minimum=1,
    ),
    Option(
        "ws",
        CHOICE,
        "auto",
        "WebSocket protocol implementation.",
        choices=("auto", "none", "websockets", "websockets-sansio", "wsproto"),
        check=_ws_engine,
    ),
    Option(
        "ws_max_size",
        INT,
        16777216,
        "WebSocket max size message in bytes (larger: close 1009).",
        minimum=1,
    ),
    Option(
        "ws_max_queue",
        INT,
        32,
        "The maximum length of the WebSocket message queue: received messages the app has not read "
        "yet. When it is full the server stops reading from that client.",
        minimum=1,
    ),
    Option(
        "ws_ping_interval",
        FLOAT,
        20.0,
        "WebSocket ping interval in seconds.",
        nullable=True,
        minimum=0.01,
    ),
    Option(
        "ws_ping_timeout",
        FLOAT,
        20.0,
        "WebSocket ping timeout in seconds: a client that does not answer a ping in time is disconnected.",
        nullable=True,
        minimum=0.01,
    ),
    Option(
        "ws_per_message_deflate",
        BOOL,
        True,
        "WebSocket per-message-deflate compression.",
        flag="--ws-per-message-deflate",
    ),
    Option(
        "ws_deflate_window_bits",
        INT,
        12,
        "WebSocket per-message-deflate: base-2 log of the LZ77 window (9-15) the server compresses "
        "with and asks clients to compress with. 12 (4 KiB) keeps zlib state per connection small; "
        "15 compresses a little better at several times the memory.",
        minimum=9,
        check=_window_bits,
    ),
    Option("lifespan", CHOICE, "auto", "Lifespan implementation.", choices=("auto", "on", "off")),
    Option(
        "interface",
        CHOICE,
        "auto",
        "Select ASGI3, ASGI2, or WSGI as the application interface.",
        choices=("auto", "asgi3", "asgi2", "wsgi"),
    ),
    Option(
        "threads",
        STR,
        "auto",
        "WSGI apps only: threads per worker that run the app. 'auto' (the default) is an adaptive "
        "pool: it starts at the usable CPUs and, while requests wait and the process is not using its "
        "CPU (the threads wait on I/O), doubles up to --threads-max; idle threads exit after "
        "--threads-idle-timeout. A number N is a fixed pool of N threads. Threads start on first use.",
        metavar="N|auto",
        check=_threads,
        python_type="int",  # 0 means auto
    ),
    Option(
        "threads_max",
        INT,
        1000,
        "WSGI apps only, --threads auto: the most threads a worker's pool grows to (like gevent's "
        "worker_connections: a waiting thread costs tens of KiB).",
        minimum=1,
    ),
    Option(
        "threads_idle_timeout",
        FLOAT,
        10.0,
        "WSGI apps only, --threads auto: seconds a thread waits for work before it exits (the pool "
        "keeps its starting size).",
        minimum=0.01,
    ),
    Option(
        "threads_queue",
        INT,
        4096,
        "WSGI apps only: requests per worker that may wait for a free thread; more are answered 503 "
        "with Retry-After.",
        minimum=1,
    ),
    Option("env_file", STR, None, "Environment configuration file.", nullable=True, metavar="PATH"),
    # Logging.
    Option(
        "log_config",
        STR,
        None,
        "Logging configuration file. Supported formats: .ini, .json, .yaml.",
        nullable=True,
        metavar="PATH",
        python_type="str | dict[str, Any] | None",  # palfrey.run() also takes a dictConfig dict
    ),
    Option(
        "log_level",
        CHOICE,
        None,
        "Log level. [default: info]",
        choices=("critical", "error", "warning", "info", "debug", "trace"),
        nullable=True,
    ),
    Option("access_log", BOOL, True, "Enable/Disable access log."),
    Option(
        "access_log_format",
        STR,
        None,
        "Access log format with gunicorn-style atoms, e.g. '%(h)s \"%(r)s\" %(s)s %(M)sms'.",
        nullable=True,
        metavar="FORMAT",
        check=_access_log_format,
    ),
    Option("use_colors", BOOL, None, "Enable/Disable colorized logging.", nullable=True),
    # Proxies and paths.
    Option(
        "proxy_headers",
        BOOL,
        True,
        "Enable/Disable X-Forwarded-Proto and X-Forwarded-For (or Forwarded, see "
        "--proxy-headers-family) from trusted proxies to populate url scheme and remote address info.",
    ),
    Option(
        "proxy_headers_family",
        CHOICE,
        "x-forwarded",
        "Which proxy headers are trusted: 'x-forwarded' (X-Forwarded-For/-Proto, as uvicorn) or "
        "'forwarded' (RFC 7239 Forwarded). The other family is ignored, never mixed in.",
        choices=("x-forwarded", "forwarded"),
    ),
    Option("server_header", BOOL, True, "Enable/Disable default Server header."),
    Option("date_header", BOOL, True, "Enable/Disable default Date header."),
    Option(
        "forwarded_allow_ips",
        STR,
        None,
        "Comma separated list of IP Addresses, IP Networks, or literals (e.g. unix:) to trust with "
        "proxy headers. Defaults to $FORWARDED_ALLOW_IPS or '127.0.0.1,::1'. '*' trusts all.",
        nullable=True,
        python_type="str",  # Config resolves None to $FORWARDED_ALLOW_IPS or "127.0.0.1"
    ),
    Option(
        "root_path",
        STR,
        "",
        "Set the ASGI 'root_path' for applications submounted below a given URL path.",
    ),
    # Limits.
    Option(
        "limit_concurrency",
        INT,
        None,
        "Maximum number of requests (and open WebSockets) in progress at once; a request beyond it is "
        "answered 503. Idle keep-alive connections do not count.",
        nullable=True,
        minimum=1,
    ),
    Option(
        "limit_max_requests",
        INT,
        None,
        "Maximum number of requests a worker serves before it is recycled (a replacement starts first; "
        "with no master, the process exits).",
        nullable=True,
        minimum=1,
    ),
    Option(
        "limit_max_requests_jitter",
        INT,
        0,
        "Maximum jitter to add to limit_max_requests, so workers do not restart together.",
        minimum=0,
    ),
    Option(
        "limit_max_memory",
        INT,
        None,
        "Recycle a worker (replacement first) once its resident memory reaches this many MiB.",
        nullable=True,
        minimum=1,
        metavar="MIB",
    ),
    Option(
        "limit_worker_lifetime",
        FLOAT,
        None,
        "Recycle a worker (replacement first) after this many seconds, plus up to 10% jitter.",
        nullable=True,
        minimum=1,
    ),
    Option(
        "limit_request_line",
        INT,
        8190,
        "Maximum size of the HTTP request line in bytes (larger: 414).",
        minimum=64,
    ),
    Option(
        "limit_request_fields",
        INT,
        100,
        "Maximum number of header fields in a request (more: 431).",
        minimum=1,
    ),
    Option(
        "limit_request_field_size",
        INT,
        8190,
        "Maximum size of one request header field in bytes (larger: 431).",
        minimum=64,
    ),
    Option(
        "limit_request_head",
        INT,
        32768,
        "Maximum size of the whole request head (request line and header fields) in bytes, whatever "
        "the parser (larger: 431). Raise it with --limit-request-field-size for very large headers.",
        minimum=256,
    ),
    # Timeouts.
    Option(
        "timeout_keep_alive",
        FLOAT,
        5,
        "Close Keep-Alive connections if no new data is received within this timeout (seconds).",
        minimum=0,
    ),
    Option(
        "timeout_request_header",
        FLOAT,
        30,
        "Drop a client that has not sent a complete request head within this many seconds (slowloris).",
        minimum=0.01,
    ),
    Option(
        "timeout_request_body",
        FLOAT,
        60,
        "Answer 408 and close when the app waits for request body data that does not arrive within "
        "this many seconds.",
        minimum=0.01,
    ),
    Option(
        "timeout_graceful_shutdown",
        FLOAT,
        30,
        "Maximum number of seconds to wait for in-flight requests on shutdown.",
        nullable=True,
        minimum=0,
    ),
    Option(
        "timeout_worker_healthcheck",
        FLOAT,
        None,
        "Maximum number of seconds a worker's event loop may take to answer a health-check ping "
        "before the worker is killed and replaced. Setting it runs a master even for one worker. "
        "[default: 5 under a master]",
        nullable=True,
        minimum=0.1,
    ),
    Option(
        "timeout_worker_boot",
        FLOAT,
        60,
        "Maximum number of seconds a new worker may take to import the app and finish lifespan startup.",
        minimum=0.1,
    ),
    # Slow clients (helper B's block: request body rate floor, send timeout).
    Option(
        "limit_request_body_rate",
        INT,
        500,
        "Minimum average rate, in bytes per second, at which a request body must arrive while the app "
        "waits for it, once --limit-request-body-rate-grace has passed; slower: 408 and close. 0 turns "
        "the floor off.",
        minimum=0,
        metavar="BYTES",
    ),
    Option(
        "limit_request_body_rate_grace",
        FLOAT,
        10,
        "Seconds a request body gets before --limit-request-body-rate applies (the body must have "
        "arrived by grace + bytes / rate seconds after the app first waited for it).",
        minimum=0,
    ),
    Option(
        "timeout_send",
        FLOAT,
        60,
        "Abort the connection when the client has not read any of the response for this many seconds "
        "while the server has data waiting to be written (the app's send() gets the disconnect).",
        minimum=0.01,
    ),
    # Running at scale (docs/deployment.md).
    Option(
        "limit_request_body",
        INT,
        None,
        "Largest request body accepted, in bytes: a larger Content-Length is answered 413 before the "
        "app runs; a chunked body that grows past it gets 413 (or, once the response has begun, the "
        "connection closes) and the app receives http.disconnect. Unset: no limit.",
        nullable=True,
        minimum=0,
        metavar="BYTES",
    ),
    Option(
        "timeout_request",
        FLOAT,
        None,
        "Seconds an app may take to start its response (send http.response.start); later, the "
        "client gets 504, the app task is cancelled, and the timeout is logged and counted. Checked "
        "by the quarter-second deadline sweep. Unset: no limit.",
        nullable=True,
        minimum=0.01,
    ),
    Option(
        "health_bind",
        STR,
        None,
        "HOST:PORT of a listener answering GET /livez (200 while the master's, or the single "
        "process's, loop turns) and GET /readyz (200 when a worker is ready and the server is not "
        "shutting down or in --shutdown-delay; else 503 and a one-line reason). The same address as "
        "--metrics-bind serves all three paths on one listener.",
        nullable=True,
        metavar="HOST:PORT",
        check=_metrics_bind,
    ),
    Option(
        "shutdown_delay",
        FLOAT,
        0,
        "On SIGTERM, answer /readyz with 503 at once but keep accepting and serving for this many "
        "seconds (for a load balancer to stop sending), then shut down gracefully.",
        minimum=0,
    ),
    # TLS.
    Option("ssl_keyfile", STR, None, "SSL key file.", nullable=True, metavar="PATH"),
    Option("ssl_certfile", STR, None, "SSL certificate file.", nullable=True, metavar="PATH"),
    Option("ssl_keyfile_password", STR, None, "SSL keyfile password.", nullable=True),
    Option(
        "ssl_version",
        INT,
        int(ssl.PROTOCOL_TLS_SERVER),
        "SSL version to use (see stdlib ssl module's).",
        check=_ssl_version,
    ),
    Option(
        "ssl_cert_reqs",
        INT,
        int(ssl.CERT_NONE),
        "Whether client certificate is required (see stdlib ssl module's).",
        minimum=0,
    ),
    Option("ssl_ca_certs", STR, None, "CA certificates file.", nullable=True, metavar="PATH"),
    Option(
        "ssl_ciphers",
        STR,
        None,
        "Ciphers to use, an OpenSSL cipher list (see stdlib ssl module's). [default: OpenSSL's defaults "
        "as Python sets them: forward-secret AEAD suites first, no SHA-1 or RC4]",
        nullable=True,
    ),
    # Observability.
    Option(
        "metrics",
        BOOL,
        False,
        "Serve Prometheus metrics for the master and every worker (or the single process) on "
        "--metrics-bind. Needs prometheus_client (palfrey's metrics extra). See docs/metrics.md.",
        check=_metrics,
    ),
    Option(
        "metrics_bind",
        STR,
        "127.0.0.1:9090",
        "HOST:PORT for --metrics (its own listener, never the app's port); IPv6 as [::1]:9090, "
        "port 0 picks a free port (logged).",
        metavar="HOST:PORT",
        check=_metrics_bind,
    ),
    # Misc.
    Option(
        "headers",
        MULTI,
        (),
        "Specify custom default HTTP response headers as a Name:Value pair.",
        flag="--header",
        short="-H",
        metavar="NAME:VALUE",
        check=_check_headers,
    ),
    Option(
        "app_dir",
        STR,
        "",
        "Look for APP in the specified directory, by adding this to the PYTHONPATH. "
        "Defaults to the current working directory.",
        metavar="PATH",
    ),
    Option(
        "h11_max_incomplete_event_size",
        INT,
        None,
        "For h11, the maximum number of bytes to buffer of an incomplete event (as in uvicorn: a head "
        "that arrives whole is bounded only by --limit-request-head).",
        nullable=True,
        minimum=1,
    ),
    Option(
        "factory",
        BOOL,
        False,
        "Treat APP as an application factory, i.e. a () -> <ASGI app> callable.",
        flag="--factory",
    ),
    Option(
        "reset_contextvars",
        BOOL,
        False,
        "Run every request in a fresh copy of the server's context, so context variables set by one "
        "request never leak into the next on the same connection.",
        flag="--reset-contextvars",
    ),
)

OPTIONS_BY_NAME: dict[str, Option] = {option.name: option for option in OPTIONS}
