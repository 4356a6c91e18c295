"""The settings table, part: limits and timeouts against hostile or slow clients, and running at scale."""

from __future__ import annotations

from palfrey.options.checks import metrics_bind
from palfrey.options.option import FLOAT, INT, STR, Option

LIMITS: tuple[Option, ...] = (
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
    # Slow clients: a request body rate floor, a send timeout.
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
        check=metrics_bind,
    ),
    Option(
        "shutdown_delay",
        FLOAT,
        0,
        "On SIGTERM, answer /readyz with 503 at once but keep accepting and serving for this many "
        "seconds (for a load balancer to stop sending), then shut down gracefully.",
        minimum=0,
    ),
)
