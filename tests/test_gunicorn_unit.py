"""The gunicorn worker's pure parts: settings mapping, access log through gunicorn's logger,
secure_scheme_headers, and the message when gunicorn is missing."""

from __future__ import annotations

import importlib
import logging
import sys
from typing import Any

import pytest

pytest.importorskip("gunicorn")

from gunicorn.glogging import Logger

from palfrey.config import Config
from palfrey.gunicorn.adapters import (
    GunicornAccessLog,
    SecureSchemeHeaders,
    access_log_wanted,
    wsgi_environ,
)
from palfrey.gunicorn.settings import palfrey_settings, trusted_proxies
from palfrey.http.head import ParseError
from palfrey.interfaces.wsgi_environ import build_environ
from palfrey.middleware.proxy_headers import ProxyHeaders, TrustedHosts
from tests.support import gunicorn_cfg


async def app(scope: Any, receive: Any, send: Any) -> None:
    """A stand-in ASGI app."""


def test_settings_mapping() -> None:
    cfg = gunicorn_cfg(
        keepalive=7,
        graceful_timeout=12,
        backlog=64,
        worker_connections=250,
        limit_request_line=2048,
        limit_request_fields=50,
        limit_request_field_size=4096,
        forwarded_allow_ips="10.0.0.0/8,192.0.2.1",
    )
    settings = palfrey_settings(cfg, {"http": "h11"})
    config = Config(app, **settings)
    assert config.timeout_keep_alive == 7
    assert config.timeout_graceful_shutdown == 12
    assert config.backlog == 64
    assert config.limit_concurrency == 250
    assert (config.limit_request_line, config.limit_request_fields) == (2048, 50)
    assert config.limit_request_field_size == 4096
    assert config.forwarded_allow_ips == "10.0.0.0/8,192.0.2.1,unix:"
    assert config.proxy_headers is True
    assert config.http == "h11"  # CONFIG_KWARGS win
    assert config.access_log is False  # gunicorn's logger writes the access log
    assert config.limit_max_requests is None  # the worker enforces gunicorn's jittered max_requests
    assert config.workers == 1
    assert config.ssl_certfile is None


def test_zero_and_out_of_range_limits_mean_what_they_mean_to_gunicorn() -> None:
    cfg = gunicorn_cfg(limit_request_line=0, limit_request_fields=0, limit_request_field_size=0)
    settings = palfrey_settings(cfg, {})
    assert settings["limit_request_line"] == 1024 * 1024  # "unlimited"
    assert settings["limit_request_fields"] == 32768
    assert settings["limit_request_field_size"] == 8190
    Config(app, **settings)  # palfrey accepts every translated value


def test_web_concurrency_does_not_leak_into_the_worker(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WEB_CONCURRENCY", "4")  # gunicorn's worker count, not palfrey's
    assert Config(app, **palfrey_settings(gunicorn_cfg(), {})).workers == 1


def test_tls_settings(tmp_path: Any) -> None:
    cfg = gunicorn_cfg(certfile="/c.pem", ca_certs="/ca.pem", cert_reqs=2, ciphers="ECDHE+AESGCM")
    settings = palfrey_settings(cfg, {})
    assert settings["ssl_certfile"] == settings["ssl_keyfile"] == "/c.pem"  # key inside the cert file
    assert settings["ssl_ca_certs"] == "/ca.pem"
    assert settings["ssl_cert_reqs"] == 2
    assert settings["ssl_ciphers"] == "ECDHE+AESGCM"
    plain = palfrey_settings(gunicorn_cfg(certfile="/c.pem", keyfile="/k.pem"), {})
    assert plain["ssl_keyfile"] == "/k.pem"
    assert "ssl_ciphers" not in plain  # palfrey's default when gunicorn has none


def test_trusted_proxies_from_list() -> None:
    assert trusted_proxies(gunicorn_cfg(forwarded_allow_ips="*")) == "*,unix:"


def _scope(headers: list[tuple[bytes, bytes]], client: tuple[str, int] | None = ("127.0.0.1", 5000)) -> dict:
    return {
        "type": "http",
        "http_version": "1.1",
        "method": "GET",
        "path": "/api/items",
        "raw_path": b"/api/items",
        "root_path": "/api",
        "query_string": b"page=2",
        "headers": headers,
        "client": client,
        "server": ("127.0.0.1", 8000),
        "scheme": "http",
    }


DEFAULT_SECURE = {"X-FORWARDED-PROTOCOL": "ssl", "X-FORWARDED-PROTO": "https", "X-FORWARDED-SSL": "on"}


def _proxy(spec: str = "127.0.0.1,unix:") -> Any:
    return SecureSchemeHeaders.wrap(DEFAULT_SECURE, spec, ProxyHeaders(TrustedHosts(spec)))


def test_secure_scheme_headers_from_trusted_peer() -> None:
    scope = _scope([(b"x-forwarded-ssl", b"on")])
    _proxy().apply(scope)
    assert scope["scheme"] == "https"
    scope = _scope([(b"x-forwarded-protocol", b"ssl")], client=None)  # unix socket peer: trusted
    _proxy().apply(scope)
    assert scope["scheme"] == "https"


def test_secure_scheme_headers_ignored_from_untrusted_peer() -> None:
    scope = _scope([(b"x-forwarded-ssl", b"on"), (b"x-forwarded-proto", b"https")], ("203.0.113.9", 1))
    _proxy().apply(scope)
    assert scope["scheme"] == "http"


def test_x_forwarded_proto_and_client_stay_with_palfrey_rules() -> None:
    scope = _scope([(b"x-forwarded-proto", b"https"), (b"x-forwarded-for", b"198.51.100.7")])
    _proxy().apply(scope)
    assert scope["scheme"] == "https"
    assert scope["client"] == ("198.51.100.7", 0)


def test_contradictory_scheme_headers_are_a_400() -> None:
    scope = _scope([(b"x-forwarded-ssl", b"on"), (b"x-forwarded-protocol", b"plain")])
    with pytest.raises(ParseError) as info:
        _proxy().apply(scope)
    assert info.value.status == 400


def test_only_x_forwarded_proto_configured_adds_no_layer() -> None:
    inner = ProxyHeaders(TrustedHosts("127.0.0.1"))
    assert SecureSchemeHeaders.wrap({"X-FORWARDED-PROTO": "https"}, "127.0.0.1", inner) is inner
    assert SecureSchemeHeaders.wrap({}, "127.0.0.1", None) is None


def test_wsgi_environ_for_gunicorn_atoms() -> None:
    environ = wsgi_environ(_scope([(b"user-agent", b"curl/8"), (b"x-a", b"1"), (b"x-a", b"2")]))
    assert environ["RAW_URI"] == "/api/items?page=2"
    assert environ["SCRIPT_NAME"] == "/api"
    assert environ["PATH_INFO"] == "/items"
    assert environ["QUERY_STRING"] == "page=2"
    assert environ["SERVER_PROTOCOL"] == "HTTP/1.1"
    assert environ["REMOTE_ADDR"] == "127.0.0.1"
    assert environ["HTTP_USER_AGENT"] == "curl/8"
    assert environ["HTTP_X_A"] == "1,2"


def test_gunicorn_atoms_and_wsgi_apps_see_one_environ() -> None:
    """One builder: the environ behind gunicorn's atoms is the one a WSGI app gets (PEP 3333 rules:
    raw path percent-decoded, `_` header names dropped, cookies joined with "; ", SERVER_PORT from
    Host on a unix socket), minus the streams, plus gunicorn's RAW_URI."""
    scope = _scope(
        [
            (b"host", b"example.org:8443"),
            (b"cookie", b"a=1"),
            (b"cookie", b"b=2"),
            (b"x-forwarded-for", b"10.0.0.1"),
            (b"x_forwarded_for", b"6.6.6.6"),
            (b"content-type", b"text/plain"),
        ],
        client=None,
    )
    scope.update(server=None, raw_path=b"/api/caf%C3%A9", path="/api/caf\u00e9")
    stream = object()
    app_environ = build_environ(scope, {"wsgi.version": (1, 0)}, stream)  # type: ignore[arg-type]
    atoms_environ = wsgi_environ(scope)
    assert atoms_environ.pop("RAW_URI") == "/api/caf%C3%A9?page=2"
    assert app_environ.pop("wsgi.input") is stream and app_environ.pop("wsgi.version") == (1, 0)
    assert atoms_environ == app_environ
    assert app_environ["HTTP_COOKIE"] == "a=1; b=2"
    assert app_environ["HTTP_X_FORWARDED_FOR"] == "10.0.0.1"
    assert app_environ["PATH_INFO"] == "/caf\u00c3\u00a9"
    assert (app_environ["SERVER_NAME"], app_environ["SERVER_PORT"]) == ("example.org", "8443")
    assert app_environ["CONTENT_TYPE"] == "text/plain" and app_environ["CONTENT_LENGTH"] == ""


def test_wsgi_environ_of_a_websocket_scope() -> None:
    scope = _scope([(b"host", b"example.org")])
    scope["type"] = "websocket"
    del scope["method"]
    assert wsgi_environ(scope)["REQUEST_METHOD"] == "GET"


class _Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


@pytest.fixture
def glogger() -> Any:
    cfg = gunicorn_cfg(
        accesslog="-",
        access_log_format='%(h)s "%(r)s" %(s)s %(b)s %(U)s %(q)s %({x-id}i)s %({content-type}o)s %(M)s %(nope)s',
    )
    log = Logger(cfg)
    capture = _Capture()
    log.access_log.addHandler(capture)
    log.capture = capture
    try:
        yield log
    finally:
        for logger in (log.access_log, log.error_log):
            for handler in list(logger.handlers):
                logger.removeHandler(handler)


def test_access_log_goes_through_gunicorn_logger(glogger: Any) -> None:
    assert access_log_wanted(glogger)
    scope = _scope([(b"x-id", b"abc")])
    GunicornAccessLog(glogger).log(scope, 404, [(b"content-type", b"text/plain")], 9, 12_500_000)
    assert glogger.capture.lines == [
        '127.0.0.1 "GET /api/items?page=2 HTTP/1.1" 404 9 /items page=2 abc text/plain 12 -'
    ]


def test_access_log_off_without_accesslog() -> None:
    log = Logger(gunicorn_cfg())
    try:
        assert not access_log_wanted(log)
    finally:
        for handler in list(log.error_log.handlers):
            log.error_log.removeHandler(handler)


def test_custom_logger_class_with_access_gets_every_request() -> None:
    class Metrics(Logger):
        def access(self, resp: Any, req: Any, environ: Any, request_time: Any) -> None:
            self.seen = (resp.status, req.headers, environ["REQUEST_METHOD"], request_time.microseconds)

    log = Metrics(gunicorn_cfg())
    try:
        assert access_log_wanted(log)
        GunicornAccessLog(log).log(_scope([(b"x-id", b"1")]), 201, [], 0, 3_000_000)
        assert log.seen == ("201 Created", [("x-id", "1")], "GET", 3000)
    finally:
        for handler in list(log.error_log.handlers):
            log.error_log.removeHandler(handler)


def test_clear_message_without_gunicorn(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("gunicorn", "gunicorn.workers", "gunicorn.workers.base"):
        monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.delitem(sys.modules, "palfrey.workers", raising=False)
    with pytest.raises(
        ImportError, match=r"pip install gunicorn \(or install palfrey with its gunicorn extra\)"
    ):
        importlib.import_module("palfrey.workers")
