"""gunicorn settings palfrey's worker classes cannot honour: one warning per setting at boot.

A setting left at gunicorn's default says nothing and costs nothing. A setting changed from its
default that the worker cannot honour is named in a warning in the arbiter's log when gunicorn starts
(`PalfreyWorker.check_config`, run once in the master), with what palfrey does instead: a config that
silently means something else is worse than one that fails loudly. docs/gunicorn.md has the same table.
"""

from __future__ import annotations

from typing import Any

from palfrey.gunicorn.settings import setting

# name -> what palfrey does instead. Only consulted when the value differs from gunicorn's default.
REFUSED: dict[str, str] = {
    "suppress_ragged_eofs": "asyncio's TLS always treats an EOF without close_notify as the end of "
    "the connection; it cannot be turned into an error",
    "ssl_version": "deprecated in gunicorn and ignored by its own TLS setup since 21.0 too; set "
    "minimum_version in an ssl_context hook",
    "http2_initial_window_size": "palfrey's HTTP/2 uses its own flow-control windows",
    "http2_max_frame_size": "palfrey's HTTP/2 uses the protocol's default frame size",
    "http2_max_header_list_size": "palfrey's HTTP/2 bounds header lists with its own limits",
    "proxy_protocol": "palfrey does not read the PROXY protocol: requests from the proxy will be "
    "answered 400",
    "protocol": "palfrey speaks HTTP only (not uwsgi)",
    "permit_obsolete_folding": "palfrey's HTTP parsers apply their own rules",
    "strip_header_spaces": "palfrey's HTTP parsers apply their own rules",
    "permit_unconventional_http_method": "palfrey's HTTP parsers apply their own rules",
    "permit_unconventional_http_version": "palfrey's HTTP parsers apply their own rules",
    "casefold_http_method": "palfrey's HTTP parsers apply their own rules",
    "header_map": "palfrey's WSGI environ drops headers with underscores in their names, like "
    "gunicorn's default 'drop'",
    "forwarder_headers": "palfrey reads no WSGI environ variables from proxy headers",
    "http_parser": "the worker class picks the parser (PalfreyWorker: httptools when installed; "
    "PalfreyH11Worker: h11)",
    "asgi_loop": "the worker class picks the event loop (PalfreyWorker: uvloop when installed; "
    "PalfreyH11Worker: asyncio)",
    "asgi_disconnect_grace_period": "palfrey tells the app about a disconnect at once",
}


def _changed(cfg: Any, name: str) -> bool:
    entry = cfg.settings.get(name)
    if entry is None:  # an older gunicorn without this setting
        return False
    default = type(entry)().value  # the validated default, as gunicorn stores it
    return bool(entry.value != default)


def refused_settings(cfg: Any) -> list[str]:
    """One warning line per gunicorn setting that is set and that the worker does not honour."""
    lines = [
        f"gunicorn setting {name} = {cfg.settings[name].value!r} is not honoured by palfrey's worker: {why}"
        for name, why in REFUSED.items()
        if _changed(cfg, name)
    ]
    cleartext = setting(cfg, "http2_cleartext", "off")
    tls = bool(cfg.certfile or cfg.keyfile)
    if "h2" in (setting(cfg, "http_protocols", None) or ()) and not tls and cleartext != "off":
        lines.append(
            f"gunicorn setting http2_cleartext = {cleartext!r} is served as palfrey's --http2 by its "
            "worker: cleartext HTTP/2 by prior knowledge and by Upgrade: h2c, from every peer (not "
            "only forwarded_allow_ips)"
        )
    return lines
