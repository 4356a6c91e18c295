"""The settings table, part: where palfrey listens, how it runs (reload, processes, implementations), logging, proxies."""

from __future__ import annotations

from palfrey.options.checks import access_log_format, threads, window_bits, workers, ws_engine
from palfrey.options.option import BOOL, CHOICE, FLOAT, INT, MULTI, STR, Option

SERVING: tuple[Option, ...] = (
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
        check=workers,
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
        check=ws_engine,
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
        check=window_bits,
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
        check=threads,
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
        check=access_log_format,
    ),
    Option("use_colors", BOOL, None, "Enable/Disable colorized logging.", nullable=True),
    Option(
        "log_format",
        CHOICE,
        "text",
        "Log output: 'text' (uvicorn's lines) or 'json' (one JSON object per line, for log "
        "pipelines; tracebacks in the 'exc_info' field). A --log-config decides the format itself.",
        choices=("text", "json"),
    ),
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
)
