"""The settings table, part: TLS, observability and the rest."""

from __future__ import annotations

import ssl

from palfrey.options.checks import check_headers, metrics, metrics_bind, ssl_version
from palfrey.options.option import BOOL, INT, MULTI, STR, Option

OPERATIONS: tuple[Option, ...] = (
    # TLS.
    Option("ssl_keyfile", STR, None, "SSL key file.", nullable=True, metavar="PATH"),
    Option("ssl_certfile", STR, None, "SSL certificate file.", nullable=True, metavar="PATH"),
    Option("ssl_keyfile_password", STR, None, "SSL keyfile password.", nullable=True),
    Option(
        "ssl_version",
        INT,
        int(ssl.PROTOCOL_TLS_SERVER),
        "SSL version to use (see stdlib ssl module's).",
        check=ssl_version,
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
        check=metrics,
    ),
    Option(
        "metrics_bind",
        STR,
        "127.0.0.1:9090",
        "HOST:PORT for --metrics (its own listener, never the app's port); IPv6 as [::1]:9090, "
        "port 0 picks a free port (logged).",
        metavar="HOST:PORT",
        check=metrics_bind,
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
        check=check_headers,
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
