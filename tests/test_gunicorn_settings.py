"""The gunicorn worker's settings beyond the basic mapping: threads, HTTP/2, palfrey's environment
variables, the request hooks and the settings it refuses loudly (pure parts, no processes)."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

pytest.importorskip("gunicorn")

from gunicorn.config import Config as GunicornConfig

from palfrey.config import Config, ConfigError
from palfrey.gunicorn import restarts
from palfrey.gunicorn.hooks import SCOPE_KEY, HookRequest, PostRequestLog, is_default, with_pre_request
from palfrey.gunicorn.refused import REFUSED, refused_settings
from palfrey.gunicorn.settings import environment_settings, palfrey_settings
from tests.support import gunicorn_cfg


async def app(scope: Any, receive: Any, send: Any) -> None:
    """A stand-in ASGI app."""


def needs(*names: str) -> pytest.MarkDecorator:
    """For settings newer gunicorn releases added (the suite runs the newest; older ones by hand)."""
    missing = set(names) - set(GunicornConfig().settings)
    return pytest.mark.skipif(bool(missing), reason=f"this gunicorn has no {', '.join(sorted(missing))}")


def config_for(cfg: GunicornConfig, environ: dict[str, str] | None = None) -> Config:
    return Config(app, **palfrey_settings(cfg, {"http": "h11"}, environ or {}))


def test_threads_default_keeps_the_adaptive_pool_and_more_than_one_is_a_fixed_pool() -> None:
    assert config_for(gunicorn_cfg()).threads == 0  # gunicorn's default 1: palfrey's "auto"
    assert config_for(gunicorn_cfg(threads=8)).threads == 8
    # gunicorn cannot say whether 1 was set; palfrey's own variable can.
    assert config_for(gunicorn_cfg(), {"PALFREY_THREADS": "1"}).threads == 1
    assert config_for(gunicorn_cfg(threads=8), {"PALFREY_THREADS": "auto"}).threads == 0
    assert config_for(gunicorn_cfg(), {"PALFREY_THREADS_MAX": "50"}).threads_max == 50


def test_palfrey_environment_turns_on_http2_and_wins_over_config_kwargs() -> None:
    assert config_for(gunicorn_cfg()).http2 is False
    assert config_for(gunicorn_cfg(), {"PALFREY_HTTP2": "1"}).http2 is True
    assert config_for(gunicorn_cfg(), {"PALFREY_HTTP2": "off"}).http2 is False
    settings = palfrey_settings(gunicorn_cfg(), {"http2": True}, {"PALFREY_HTTP2": "false"})
    assert settings["http2"] is False
    limited = config_for(
        gunicorn_cfg(), {"PALFREY_HTTP2": "yes", "PALFREY_HTTP2_MAX_CONCURRENT_STREAMS": "7"}
    )
    assert limited.http2_max_concurrent_streams == 7
    with pytest.raises(ConfigError, match="PALFREY_HTTP2 expects true or false"):
        environment_settings({"PALFREY_HTTP2": "maybe"})
    # Only the HTTP/2 and thread-pool options are read: the rest belongs to gunicorn's settings.
    assert environment_settings({"PALFREY_PORT": "1", "PALFREY_LOOP": "asyncio"}) == {}


@needs("http_protocols", "http2_cleartext")
def test_gunicorn_http_protocols_h2() -> None:
    tls = {"certfile": "cert.pem", "keyfile": "key.pem"}
    on = palfrey_settings(
        gunicorn_cfg(http_protocols="h2,h1", http2_max_concurrent_streams=50, **tls), {}, {}
    )
    assert (on["http2"], on["http2_max_concurrent_streams"]) == (True, 50)
    # Cleartext without http2_cleartext: gunicorn would never negotiate HTTP/2, nor does palfrey.
    assert "http2" not in palfrey_settings(gunicorn_cfg(http_protocols="h2,h1"), {}, {})
    cleartext = gunicorn_cfg(http_protocols="h2,h1", http2_cleartext="prior-knowledge")
    assert palfrey_settings(cleartext, {}, {})["http2"] is True
    assert "http2" not in palfrey_settings(gunicorn_cfg(), {}, {})


@needs("websocket_max_message_size")
def test_websocket_max_message_size_maps_to_ws_max_size() -> None:
    assert config_for(gunicorn_cfg(websocket_max_message_size=1024)).ws_max_size == 1024


def test_defaults_refuse_nothing() -> None:
    assert refused_settings(gunicorn_cfg()) == []
    # Honoured or mapped settings never warn, whatever their value.
    honoured = gunicorn_cfg(threads=4, do_handshake_on_connect=True, keepalive=9, sendfile=False)
    assert refused_settings(honoured) == []


@needs("proxy_protocol", "header_map", "http_protocols")
def test_changed_settings_the_worker_cannot_honour_are_named() -> None:
    cfg = gunicorn_cfg(suppress_ragged_eofs=False, proxy_protocol="v1", header_map="dangerous")
    lines = refused_settings(cfg)
    assert len(lines) == 3, lines
    assert any(
        line.startswith("gunicorn setting suppress_ragged_eofs = False is not honoured") for line in lines
    )
    assert any("proxy_protocol = 'v1'" in line and "PROXY protocol" in line for line in lines)
    assert any("header_map = 'dangerous'" in line for line in lines)
    # Every name in the table is a real gunicorn setting (a typo would never warn).
    assert set(REFUSED) <= set(GunicornConfig().settings)


@needs("http_protocols", "http2_cleartext")
def test_cleartext_http2_differences_are_named() -> None:
    cfg = gunicorn_cfg(http_protocols="h2,h1", http2_cleartext="prior-knowledge")
    (line,) = refused_settings(cfg)
    assert "http2_cleartext = 'prior-knowledge'" in line and "every peer" in line


def scope(**extra: Any) -> dict[str, Any]:
    base = {
        "type": "http",
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/a b",
        "raw_path": b"/a%20b",
        "query_string": b"x=1",
        "root_path": "",
        "headers": [(b"host", b"example"), (b"x-trace", b"abc")],
        "client": ("10.0.0.1", 5000),
        "server": ("127.0.0.1", 8000),
    }
    base.update(extra)
    return base


def test_hook_request_looks_like_gunicorns() -> None:
    request = HookRequest(scope())
    assert (request.method, request.path, request.query, request.uri) == ("POST", "/a b", "x=1", "/a%20b?x=1")
    assert request.headers == [("HOST", "example"), ("X-TRACE", "abc")]
    assert (request.version, request.scheme, request.remote_addr) == ((1, 1), "http", ("10.0.0.1", 5000))
    request.started = 1.0  # hooks keep their own values on the request, as with gunicorn's
    assert request.started == 1.0


def test_pre_request_then_post_request_get_the_same_request() -> None:
    calls: list[tuple[str, Any]] = []
    worker = object()
    called_app: list[str] = []

    async def inner(scope: Any, receive: Any, send: Any) -> None:
        called_app.append(scope["type"])

    def pre(w: Any, req: Any) -> None:
        assert w is worker
        req.tag = "seen"
        calls.append(("pre", req))

    def post(w: Any, req: Any, environ: dict[str, Any], resp: Any) -> None:
        calls.append(("post", (req, environ["PATH_INFO"], environ["HTTP_X_TRACE"], resp.status, resp.sent)))

    logged: list[int] = []

    class Inner:
        def log(self, scope: Any, status: int, headers: Any, sent: int, duration: int) -> None:
            logged.append(status)

    wrapped = with_pre_request(inner, pre, worker)
    http = scope()
    asyncio.run(wrapped(http, None, None))
    asyncio.run(wrapped({"type": "lifespan"}, None, None))  # lifespan: no hook
    assert called_app == ["http", "lifespan"]
    assert len(calls) == 1 and http[SCOPE_KEY] is calls[0][1]
    PostRequestLog(post, worker, Inner()).log(http, 201, [(b"content-length", b"2")], 2, 1000)
    request, path, trace, status, sent = calls[1][1]
    assert request is calls[0][1] and request.tag == "seen"
    assert (path, trace, status, sent) == ("/a b", "abc", "201 Created", 2)
    assert logged == [201]


def test_post_request_without_pre_request_and_errors_are_logged(caplog: pytest.LogCaptureFixture) -> None:
    seen: list[Any] = []

    def post(w: Any, req: Any, environ: Any, resp: Any) -> None:
        seen.append(req.method)
        raise RuntimeError("hook bug")

    hook_log = PostRequestLog(post, None, None)
    with caplog.at_level(logging.ERROR, logger="palfrey.error"):
        hook_log.log(scope(), 503, [], 0, 0)  # answered before the app ran: a request is built here
        hook_log.log(scope(type="websocket"), 101, [], 0, 0)  # WebSocket handshakes: no hook
    assert seen == ["POST"]
    assert "Exception in post_request hook" in caplog.text


def test_is_default() -> None:
    assert is_default(gunicorn_cfg(), "pre_request") and is_default(gunicorn_cfg(), "post_request")
    assert not is_default(gunicorn_cfg(pre_request=lambda w, r: None), "pre_request")
    assert not is_default(gunicorn_cfg(post_request=lambda w, r: None), "post_request")
    assert is_default(gunicorn_cfg(), "ssl_context")


def test_reload_counter() -> None:
    restarts.reset_for_tests()
    try:
        assert restarts.generation() == 0
        restarts.note_setup()  # boot: the page, no reload yet
        assert restarts.generation() == 0
        restarts.note_setup()
        restarts.note_setup()
        assert restarts.generation() == 2
    finally:
        restarts.reset_for_tests()


def prepared_state(**values: Any) -> tuple[Any, Any]:
    """A worker built as the arbiter builds it, and the per-process state after `_prepare_state`."""
    from types import SimpleNamespace

    from gunicorn.glogging import Logger

    from palfrey.workers import PalfreyWorker

    cfg = gunicorn_cfg(**values)
    worker = PalfreyWorker(1, 0, [], None, 30, cfg, Logger(cfg))
    state = SimpleNamespace(app=app, access_log=None, proxy=None, on_request_done=None)
    worker._prepare_state(state)
    return worker, state


def test_default_hooks_add_nothing_to_a_request() -> None:
    """Left at gunicorn's defaults, the hooks install nothing: the app is called directly and no
    per-request logger runs (the protocols' hot path is the one palfrey's own server has)."""
    _, state = prepared_state()
    assert state.app is app
    assert state.access_log is None


def test_set_hooks_are_installed() -> None:
    _, state = prepared_state(pre_request=lambda w, r: None, post_request=lambda w, r: None)
    assert state.app is not app and state.app.__name__ == "pre_request_app"
    assert isinstance(state.access_log, PostRequestLog)
