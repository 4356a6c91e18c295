"""Translate a gunicorn `Config` (the worker's `self.cfg`) into palfrey settings.

One function, so the mapping is written once and documented once (docs/gunicorn.md). gunicorn has
already validated every value and applied its own environment rules (`FORWARDED_ALLOW_IPS`,
`WEB_CONCURRENCY`), so palfrey's environment fallbacks are overridden explicitly here.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from palfrey.config import ConfigError
from palfrey.options import OPTIONS_BY_NAME
from palfrey.options.option import BOOL

# gunicorn's own parser bounds (gunicorn/http/message.py), so "0" and out-of-range values mean here
# what they mean to a gunicorn sync worker.
MAX_REQUEST_LINE = 8190
MAX_HEADERS = 32768
DEFAULT_FIELD_SIZE = 8190
UNLIMITED_REQUEST_LINE = 1024 * 1024  # gunicorn's "0 = unlimited" is 1 MiB in its fast parser too
_PALFREY_MINIMUM = 64  # palfrey refuses absurdly small line/field limits


def setting(cfg: Any, name: str, default: Any) -> Any:
    """A gunicorn setting that older gunicorn releases may not have (e.g. `root_path` is 24+)."""
    try:
        return getattr(cfg, name)
    except AttributeError:
        return default


def trusted_proxies(cfg: Any) -> str:
    """`forwarded_allow_ips` as palfrey's comma list. gunicorn always trusts unix-socket peers
    (a proxy on the same host), so `unix:` is added to keep that behaviour."""
    ips = cfg.forwarded_allow_ips
    entries = [ips] if isinstance(ips, str) else list(ips)
    return ",".join([*entries, "unix:"])


def request_line_limit(value: int) -> int:
    if value == 0:
        return UNLIMITED_REQUEST_LINE
    if value < 0 or value > MAX_REQUEST_LINE:
        return MAX_REQUEST_LINE
    return max(value, _PALFREY_MINIMUM)


def request_fields_limit(value: int) -> int:
    return MAX_HEADERS if value <= 0 or value > MAX_HEADERS else value


def field_size_limit(value: int) -> int:
    return DEFAULT_FIELD_SIZE if value <= 0 else max(value, _PALFREY_MINIMUM)


#: Palfrey settings a deployment may set for the worker classes in the environment, with palfrey's
#: own variable names (`PALFREY_HTTP2=1`, `PALFREY_THREADS=auto`, ...): every option whose name
#: starts with one of these. They win over gunicorn's settings and `CONFIG_KWARGS`.
ENVIRONMENT_PREFIXES = ("http2", "threads")
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def environment_settings(environ: Mapping[str, str]) -> dict[str, Any]:
    """`PALFREY_<OPTION>` values for the options named by ENVIRONMENT_PREFIXES (checked by Config)."""
    found: dict[str, Any] = {}
    for name, option in OPTIONS_BY_NAME.items():
        if not name.startswith(ENVIRONMENT_PREFIXES) or option.envvar not in environ:
            continue
        raw = environ[option.envvar]
        if option.kind == BOOL:
            text = raw.strip().lower()
            if text not in _TRUE | _FALSE:
                raise ConfigError(f"{option.envvar} expects true or false, got {raw!r}")
            found[name] = text in _TRUE
        else:
            found[name] = raw.strip()
    return found


def http2_settings(cfg: Any) -> dict[str, Any]:
    """gunicorn 25+'s `http_protocols` (with `h2`) turns palfrey's HTTP/2 on, as gunicorn would
    serve it: by ALPN over TLS; over cleartext only if `http2_cleartext` is not `off` (palfrey then
    takes both prior knowledge and `Upgrade: h2c`, see `refused_settings`)."""
    protocols = setting(cfg, "http_protocols", None) or ()
    if "h2" not in protocols:
        return {}
    if not (cfg.certfile or cfg.keyfile) and setting(cfg, "http2_cleartext", "off") == "off":
        return {}  # gunicorn itself would never negotiate HTTP/2 here (it warns at boot)
    return {"http2": True, "http2_max_concurrent_streams": cfg.http2_max_concurrent_streams}


def palfrey_settings(
    cfg: Any, overrides: Mapping[str, Any], environ: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """Keyword arguments for `palfrey.Config` from gunicorn's settings; `overrides` (the worker
    class's `CONFIG_KWARGS`) win, and `PALFREY_HTTP2*` / `PALFREY_THREADS*` in `environ` (default:
    the process environment) win over both."""
    settings: dict[str, Any] = {
        # gunicorn is the process manager: one palfrey server per gunicorn worker, whatever
        # WEB_CONCURRENCY says (gunicorn already used it for its own worker count).
        "workers": 1,
        "backlog": cfg.backlog,  # asyncio re-listens on the shared socket; keep gunicorn's value
        "timeout_keep_alive": cfg.keepalive,
        "timeout_graceful_shutdown": cfg.graceful_timeout,
        # max_requests (jitter drawn by gunicorn) is enforced by the worker after every response, so
        # it can stop accepting before it drains; palfrey's own quarter-second check stays off.
        "limit_max_requests": None,
        "limit_concurrency": cfg.worker_connections or None,
        "limit_request_line": request_line_limit(cfg.limit_request_line),
        "limit_request_fields": request_fields_limit(cfg.limit_request_fields),
        "limit_request_field_size": field_size_limit(cfg.limit_request_field_size),
        # gunicorn has no total head limit: palfrey's default, or more if one line could not fit.
        "limit_request_head": max(
            32768,
            request_line_limit(cfg.limit_request_line) + field_size_limit(cfg.limit_request_field_size) + 4,
        ),
        "proxy_headers": True,
        "forwarded_allow_ips": trusted_proxies(cfg),
        "root_path": setting(cfg, "root_path", "") or "",
        "lifespan": setting(cfg, "asgi_lifespan", "auto") or "auto",
        # The worker hands requests to gunicorn's logger itself (accesslog, access_log_format,
        # logger_class such as statsd), so palfrey's own access logger stays off.
        "access_log": False,
    }
    # gunicorn's `threads` (default 1) sizes a WSGI app's thread pool when it is above 1, as in
    # gunicorn's gthread worker. 1 cannot be told apart from "not set" (gunicorn stores no such
    # difference), so it keeps palfrey's adaptive pool; PALFREY_THREADS=1 asks for one thread.
    if cfg.threads > 1:
        settings["threads"] = cfg.threads
    websocket_max = setting(cfg, "websocket_max_message_size", None)  # gunicorn 24+
    if websocket_max:
        settings["ws_max_size"] = websocket_max
    settings.update(http2_settings(cfg))
    if cfg.certfile or cfg.keyfile:
        settings["ssl_certfile"] = cfg.certfile
        # gunicorn accepts a certfile that also holds the key; so does load_cert_chain.
        settings["ssl_keyfile"] = cfg.keyfile or cfg.certfile
        settings["ssl_cert_reqs"] = int(cfg.cert_reqs)
        if cfg.ca_certs:
            settings["ssl_ca_certs"] = cfg.ca_certs
        if cfg.ciphers:
            settings["ssl_ciphers"] = cfg.ciphers
    settings.update(overrides)
    settings.update(environment_settings(os.environ if environ is None else environ))
    return settings
