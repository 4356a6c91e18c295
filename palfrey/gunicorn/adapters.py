"""Objects that let palfrey's server speak to gunicorn's machinery without knowing about it.

`GunicornAccessLog` has the shape of `palfrey.logging.AccessLog` (one `log()` call per request) but
hands the request to gunicorn's own logger, so `accesslog`, `access_log_format` (gunicorn's atoms,
its `-` for unknown atoms, its quoting) and custom `logger_class`es such as statsd behave exactly as
under gunicorn's own workers. `SecureSchemeHeaders` has the shape of palfrey's `ProxyHeaders` and adds
gunicorn's `secure_scheme_headers` on top of it.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from palfrey.http.head import ParseError, watch_proxy_headers
from palfrey.http.response import status_text
from palfrey.interfaces.wsgi_environ import cgi_environ
from palfrey.logging import format_target
from palfrey.middleware.proxy_headers import TrustedHosts

if TYPE_CHECKING:
    from palfrey.server.hooks import ProxyRules


class _Request:
    """What gunicorn's `Logger.atoms` reads from a request: its headers."""

    __slots__ = ("headers",)

    def __init__(self, headers: list[tuple[str, str]]) -> None:
        self.headers = headers


class _Response:
    """What gunicorn's `Logger.atoms` (and statsd's `access`) read from a response."""

    __slots__ = ("headers", "response_length", "sent", "status", "status_code")

    def __init__(self, status: int, headers: list[tuple[str, str]], sent: int) -> None:
        self.status = status_text(status)
        self.status_code = status
        self.headers = headers
        self.sent = sent
        self.response_length = sent


def _text(value: bytes) -> str:
    return value.decode("latin-1")


def gunicorn_response(status: int, headers: Sequence[tuple[bytes, bytes]], sent: int) -> _Response:
    """A response as gunicorn's logger and `post_request` hook read it (text headers)."""
    return _Response(status, [(_text(name), _text(value)) for name, value in headers], sent)


def wsgi_environ(scope: Mapping[str, Any]) -> dict[str, Any]:
    """The CGI variables gunicorn's atoms read (`r`, `m`, `U`, `q`, `H`, `h`, `f`, `a`, `u`, `{..}e`):
    the environ a WSGI app would get (one builder, `cgi_environ`), plus gunicorn's `RAW_URI`."""
    environ = cgi_environ(scope)
    environ["RAW_URI"] = format_target(scope)
    return environ


class GunicornAccessLog:
    """One call to gunicorn's `log.access(resp, req, environ, request_time)` per request."""

    __slots__ = ("_access", "enabled")

    def __init__(self, glogger: Any) -> None:
        self._access = glogger.access
        self.enabled = True

    def log(
        self,
        scope: Mapping[str, Any],
        status: int,
        response_headers: Sequence[tuple[bytes, bytes]],
        response_bytes: int,
        duration_ns: int,
    ) -> None:
        request = _Request([(_text(name), _text(value)) for name, value in scope.get("headers", ())])
        response = gunicorn_response(status, response_headers, response_bytes)
        self._access(response, request, wsgi_environ(scope), timedelta(microseconds=duration_ns // 1000))


def access_log_wanted(glogger: Any) -> bool:
    """Whether per-request work is worth doing: gunicorn's own logger skips everything unless an access
    log is configured; a custom `logger_class` overriding `access` (statsd) wants every request."""
    from gunicorn.glogging import Logger

    if getattr(type(glogger), "access", None) is not Logger.access:
        return True
    enabled = getattr(glogger, "access_log_enabled", None)  # gunicorn 23.1+
    if enabled is not None:
        return bool(enabled)
    cfg = glogger.cfg
    return bool(
        cfg.accesslog
        or cfg.logconfig
        or cfg.logconfig_dict
        or getattr(cfg, "logconfig_json", None)
        or (cfg.syslog and not cfg.disable_redirect_access_to_syslog)
    )


_HTTP_SCHEMES = {"http": "http", "https": "https"}
_WS_SCHEMES = {"http": "ws", "https": "wss"}


class SecureSchemeHeaders:
    """gunicorn's `secure_scheme_headers` on top of palfrey's proxy-header rules.

    X-Forwarded-Proto (and RFC 7239 `Forwarded`) stay with palfrey's `ProxyHeaders`, which picks the
    value belonging to the client hop. Every other configured header (gunicorn's defaults:
    `X-Forwarded-Protocol: ssl`, `X-Forwarded-Ssl: on`) is applied as gunicorn does: only from a
    trusted peer, value equal to the configured one means https, any other value http, and two such
    headers that disagree are a 400. These headers are applied last, so they win.
    """

    __slots__ = ("_headers", "_inner", "_trusted")

    def __init__(self, headers: Mapping[str, str], trusted: TrustedHosts, inner: ProxyRules | None) -> None:
        self._headers = {
            name.strip().lower().encode("latin-1"): value.encode("latin-1")
            for name, value in headers.items()
            if name.strip().lower() != "x-forwarded-proto"
        }
        self._trusted = trusted
        self._inner = inner

    @classmethod
    def wrap(
        cls, headers: Mapping[str, str] | None, trusted_spec: str, inner: ProxyRules | None
    ) -> ProxyRules | None:
        """`inner` unchanged when no header beyond X-Forwarded-Proto is configured (no extra work)."""
        headers = headers or {}
        if all(name.strip().lower() == "x-forwarded-proto" for name in headers):
            return inner
        rules = cls(headers, TrustedHosts(trusted_spec), inner)
        watch_proxy_headers(
            rules._headers
        )  # HTTP/1.1 consults proxy rules only when such a header is present
        return rules

    def apply(self, scope: dict[str, Any]) -> None:
        scheme = None
        client = scope.get("client")
        if (client[0] if client else None) in self._trusted:  # judged on the real peer, before rewriting
            configured = self._headers
            for name, value in scope.get("headers", ()):
                expected = configured.get(name)
                if expected is None:
                    continue
                found = "https" if value == expected else "http"
                if scheme is not None and found != scheme:
                    raise ParseError(400, "Contradictory scheme headers")
                scheme = found
        if self._inner is not None:
            self._inner.apply(scope)
        if scheme is not None:
            schemes = _WS_SCHEMES if scope.get("type") == "websocket" else _HTTP_SCHEMES
            scope["scheme"] = schemes[scheme]


def route_palfrey_logs(glogger: Any) -> None:
    """Send palfrey's server messages through gunicorn's error log (its handlers, format and level),
    unless the user's logging config already gave palfrey loggers handlers of their own."""
    names = ("palfrey", "palfrey.error")
    if any(logging.getLogger(name).handlers for name in names):
        return
    error_log: logging.Logger = glogger.error_log
    if not error_log.handlers:
        return  # gunicorn logs through the root logger (logconfig); palfrey's records propagate there
    target = logging.getLogger("palfrey")
    target.handlers = list(error_log.handlers)
    target.setLevel(error_log.level)
    target.propagate = False
    logging.getLogger("palfrey.error").disabled = False
