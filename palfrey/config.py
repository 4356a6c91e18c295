"""`Config`: one immutable, validated object built from the settings table.

Everything below the entry points reads settings from here and nowhere else (never the CLI, never
the environment), so a server, a worker and the Gunicorn worker class all see the same values.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from palfrey.errors import ConfigError
from palfrey.options import BOOL, CHOICE, FLOAT, INT, MULTI, OPTIONS, OPTIONS_BY_NAME, STR, Option

AppType = str | Callable[..., Any]

__all__ = ["AppType", "Config", "ConfigError"]


def _coerce(option: Option, value: Any) -> Any:
    """Check and normalise one keyword value; the CLI has already converted strings."""
    flag = option.cli_flag.split("/")[0]
    if value is None:
        if option.nullable or option.default is None:
            return None
        raise ConfigError(f"{flag} cannot be None")
    kind = option.kind
    if kind == BOOL:
        if not isinstance(value, bool):
            raise ConfigError(f"{flag} expects true or false, got {value!r}")
    elif kind == INT:
        if isinstance(value, bool) or not isinstance(value, int):
            try:
                value = int(value)
            except (TypeError, ValueError):
                raise ConfigError(f"{flag} expects an integer, got {value!r}") from None
    elif kind == FLOAT:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            try:
                value = float(value)
            except (TypeError, ValueError):
                raise ConfigError(f"{flag} expects a number, got {value!r}") from None
    elif kind == CHOICE:
        if isinstance(value, str):
            value = value.lower()
        if value not in option.choices:
            raise ConfigError(f"{flag} must be one of {', '.join(option.choices)}; got {value!r}")
    elif kind == STR:
        if isinstance(value, os.PathLike):
            value = os.fspath(value)
        if not isinstance(value, str):
            raise ConfigError(f"{flag} expects a string, got {value!r}")
    elif kind == MULTI:
        if isinstance(value, (str, os.PathLike)):
            value = [value]
        value = tuple(os.fspath(v) if isinstance(v, os.PathLike) else v for v in value)
    if option.minimum is not None and value < option.minimum:
        raise ConfigError(f"{flag} must be at least {option.minimum:g}; got {value!r}")
    if option.check is not None:
        try:
            checked = option.check(value)
        except ValueError as exc:
            raise ConfigError(f"{flag}: {exc}") from None
        value = tuple(checked) if kind == MULTI else checked
    if option.pending is not None and value != option.default:
        raise ConfigError(f"{flag}: {option.pending}")
    return value


class Config:
    """Frozen settings for one palfrey server. Build it with keywords named as in the settings table.

    `Config(app, **settings)`: `app` is an import string ("module:attribute") or an app object.
    Unknown keywords raise `TypeError`; bad values raise `ConfigError` with a one-line message.
    """

    __slots__ = ("_values", "app")

    app: AppType
    _values: Mapping[str, Any]
    # One typed attribute per setting, in table order: `Option.annotation` of each entry in
    # palfrey.options.OPTIONS, written by `make docs` (tests/test_config.py checks they match). The
    # values live in `_values` and are read through `__getattr__`; these lines only type them.
    # --- settings: begin ---
    host: str
    port: int
    uds: str | None
    fd: int | None
    backlog: int
    reload: bool
    reload_dirs: tuple[str, ...]
    reload_includes: tuple[str, ...]
    reload_excludes: tuple[str, ...]
    reload_delay: float
    workers: int
    preload: bool
    reuse_port: bool
    pid: str | None
    loop: str
    http: str
    http2: bool
    http2_max_concurrent_streams: int
    ws: str
    ws_max_size: int
    ws_max_queue: int
    ws_ping_interval: float | None
    ws_ping_timeout: float | None
    ws_per_message_deflate: bool
    ws_deflate_window_bits: int
    lifespan: str
    interface: str
    threads: int
    threads_max: int
    threads_idle_timeout: float
    threads_queue: int
    env_file: str | None
    log_config: str | dict[str, Any] | None
    log_level: str | None
    access_log: bool
    access_log_format: str | None
    use_colors: bool | None
    log_format: str
    proxy_headers: bool
    proxy_headers_family: str
    server_header: bool
    date_header: bool
    forwarded_allow_ips: str
    root_path: str
    limit_concurrency: int | None
    limit_max_requests: int | None
    limit_max_requests_jitter: int
    limit_max_memory: int | None
    limit_worker_lifetime: float | None
    limit_request_line: int
    limit_request_fields: int
    limit_request_field_size: int
    limit_request_head: int
    timeout_keep_alive: float
    timeout_request_header: float
    timeout_request_body: float
    timeout_graceful_shutdown: float | None
    timeout_worker_healthcheck: float | None
    timeout_worker_boot: float
    limit_request_body_rate: int
    limit_request_body_rate_grace: float
    timeout_send: float
    limit_request_body: int | None
    timeout_request: float | None
    health_bind: str | None
    shutdown_delay: float
    ssl_keyfile: str | None
    ssl_certfile: str | None
    ssl_keyfile_password: str | None
    ssl_version: int
    ssl_cert_reqs: int
    ssl_ca_certs: str | None
    ssl_ciphers: str | None
    metrics: bool
    metrics_bind: str
    headers: tuple[str, ...]
    app_dir: str
    h11_max_incomplete_event_size: int | None
    factory: bool
    reset_contextvars: bool
    # --- settings: end ---

    def __init__(self, app: AppType, *, _env_file_loaded: bool = False, **settings: Any) -> None:
        unknown = sorted(set(settings) - set(OPTIONS_BY_NAME))
        if unknown:
            raise TypeError(f"unknown setting(s): {', '.join(unknown)}")
        log_config = settings.pop("log_config") if isinstance(settings.get("log_config"), dict) else None
        for name in ("workers", "threads"):
            count = settings.get(name)
            if isinstance(count, int) and not isinstance(count, bool):
                settings[name] = str(count)  # the table types these as text: they also take "auto"
        values: dict[str, Any] = {}
        for option in OPTIONS:
            if option.name in settings:
                values[option.name] = _coerce(option, settings[option.name])
            else:
                values[option.name] = option.default
        if log_config is not None:
            values["log_config"] = log_config
        if values["env_file"] is not None and not _env_file_loaded:
            _load_env_file(values["env_file"])
        if values["workers"] is None:
            values["workers"] = _workers_from_environment()
        if isinstance(values["threads"], str):  # the default, "auto", as the check spells it (0)
            values["threads"] = _coerce(OPTIONS_BY_NAME["threads"], values["threads"])
        if values["forwarded_allow_ips"] is None:
            from_environment = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1,::1")
            _check_trusted_hosts(from_environment, "FORWARDED_ALLOW_IPS")
            values["forwarded_allow_ips"] = from_environment
        else:
            _check_trusted_hosts(values["forwarded_allow_ips"], "--forwarded-allow-ips")
        if isinstance(app, str):
            _check_import_string(app)
        if values["uds"] is not None and values["fd"] is not None:
            raise ConfigError("--uds and --fd cannot be used together")
        if (values["ssl_keyfile"] is None) != (values["ssl_certfile"] is None):
            raise ConfigError("--ssl-keyfile and --ssl-certfile must be given together")
        object.__setattr__(self, "app", app)
        object.__setattr__(self, "_values", MappingProxyType(values))

    if not TYPE_CHECKING:  # hidden from mypy, so `config.prot` is a type error, not `Any`

        def __getattr__(self, name: str) -> Any:
            try:
                return self._values[name]
            except KeyError:
                raise AttributeError(f"Config has no setting {name!r}") from None

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("Config is immutable; use config.replace(...)")

    def __repr__(self) -> str:
        changed = ", ".join(f"{k}={v!r}" for k, v in self._values.items() if v != OPTIONS_BY_NAME[k].default)
        return f"Config(app={self.app!r}{', ' if changed else ''}{changed})"

    def __iter__(self) -> Iterator[tuple[str, Any]]:
        return iter(self._values.items())

    def replace(self, **changes: Any) -> Config:
        """A copy with some settings changed (validated again).

        The env file is not loaded again: it was loaded into os.environ when this config was built,
        and loading it on every copy (the master and each worker make several) would undo any
        change the app or the process made to those variables since.
        """
        values = dict(self._values)
        app = changes.pop("app", self.app)
        values.update(changes)
        reload_env = "env_file" in changes and changes["env_file"] != self._values["env_file"]
        return Config(app, _env_file_loaded=not reload_env, **values)

    @property
    def values(self) -> Mapping[str, Any]:
        return self._values

    @property
    def is_ssl(self) -> bool:
        return self._values["ssl_certfile"] is not None


def _workers_from_environment() -> int:
    """$WEB_CONCURRENCY: a number or "auto" (like --workers); 1 when unset."""
    raw = os.environ.get("WEB_CONCURRENCY")
    if raw is None or raw.strip() == "":
        return 1
    try:
        count: int = _coerce(OPTIONS_BY_NAME["workers"], raw)
        return count
    except ConfigError as exc:
        raise ConfigError(f"WEB_CONCURRENCY={raw!r}: {exc}") from None


def _check_import_string(app: str) -> None:
    module, _, attribute = app.partition(":")
    if not module.strip() or not attribute.strip():
        raise ConfigError(f'Import string "{app}" must be in format "<module>:<attribute>".')


def _check_trusted_hosts(value: str, source: str) -> None:
    """A bad --forwarded-allow-ips entry is a config error, not a traceback at server start."""
    from palfrey.middleware.proxy_headers import TrustedHosts

    try:
        TrustedHosts(value)
    except ValueError as exc:
        raise ConfigError(f"{source}: {exc}") from None


def _load_env_file(path: str) -> None:
    """Load a dotenv file into os.environ for the app (like uvicorn's --env-file)."""
    if not os.path.isfile(path):
        raise ConfigError(f"--env-file: no such file: {path}")
    try:
        from dotenv import load_dotenv
    except ImportError:
        raise ConfigError(
            "--env-file needs python-dotenv: pip install python-dotenv (or install palfrey with its standard extra)"
        ) from None
    load_dotenv(dotenv_path=path, override=True)
