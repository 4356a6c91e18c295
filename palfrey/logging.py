"""Logging for palfrey: uvicorn-style console output and gunicorn-style access log atoms.

Three loggers matter: ``palfrey`` (parent), ``palfrey.error`` (server messages) and ``palfrey.access``
(one line per request).  The access path is hot, so :class:`AccessLog` does all its parsing at
construction and, per request, only computes the atoms the format actually names.
"""

from __future__ import annotations

import base64
import binascii
import http
import json
import logging
import logging.config
import os
import re
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any, TextIO
from urllib.parse import quote

import click

__all__ = [
    "LOGGING_CONFIG",
    "LOG_LEVELS",
    "TRACE_LOG_LEVEL",
    "AccessAtoms",
    "AccessFormatter",
    "AccessLog",
    "DefaultFormatter",
    "LogConfigError",
    "configure_logging",
]

TRACE_LOG_LEVEL: int = 5
logging.addLevelName(TRACE_LOG_LEVEL, "TRACE")

LOG_LEVELS: dict[str, int] = {
    "critical": logging.CRITICAL,
    "error": logging.ERROR,
    "warning": logging.WARNING,
    "info": logging.INFO,
    "debug": logging.DEBUG,
    "trace": TRACE_LOG_LEVEL,
}

#: Loggers whose level ``--log-level`` sets.
PALFREY_LOGGERS: tuple[str, ...] = ("palfrey", "palfrey.error", "palfrey.access")

#: The default configuration; copied before use so callers may build on it safely.
LOGGING_CONFIG: dict[str, Any] = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "default": {
            "()": "palfrey.logging.DefaultFormatter",
            "fmt": "%(levelprefix)s %(message)s",
            "use_colors": None,
        },
        "access": {
            "()": "palfrey.logging.AccessFormatter",
            "fmt": "%(levelprefix)s %(message)s",
            "use_colors": None,
        },
    },
    "handlers": {
        "default": {"formatter": "default", "class": "logging.StreamHandler", "stream": "ext://sys.stderr"},
        "access": {"formatter": "access", "class": "logging.StreamHandler", "stream": "ext://sys.stdout"},
    },
    "loggers": {
        "palfrey": {"handlers": ["default"], "level": "INFO", "propagate": False},
        "palfrey.error": {"level": "INFO"},
        "palfrey.access": {"handlers": ["access"], "level": "INFO", "propagate": False},
    },
}


class LogConfigError(RuntimeError):
    """Logging could not be configured; the message is one line the CLI can print as-is."""


# --------------------------------------------------------------------------------------------------
# Formatters
# --------------------------------------------------------------------------------------------------

_LEVEL_COLORS: dict[int, str] = {
    TRACE_LOG_LEVEL: "blue",
    logging.DEBUG: "cyan",
    logging.INFO: "green",
    logging.WARNING: "yellow",
    logging.ERROR: "red",
    logging.CRITICAL: "bright_red",
}

_STATUS_COLORS: dict[int, str] = {1: "bright_white", 2: "green", 3: "yellow", 4: "red", 5: "bright_red"}

_STATUS_PHRASES: dict[int, str] = {status.value: status.phrase for status in http.HTTPStatus}

_DEFAULT_FORMATS: dict[str, str] = {
    "%": "%(levelprefix)s %(message)s",
    "{": "{levelprefix} {message}",
    "$": "${levelprefix} ${message}",
}


def _stream_is_tty(stream: TextIO | None) -> bool:
    """Decide auto colors: only for a real terminal, and never when NO_COLOR is set (no-color.org)."""
    if os.environ.get("NO_COLOR"):
        return False
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty is not None and isatty())
    except ValueError:  # closed stream
        return False


class DefaultFormatter(logging.Formatter):
    """Render ``%(levelprefix)s`` (``INFO:     ``) so palfrey's output lines up exactly like uvicorn's.

    ``use_colors=None`` colors only when the formatter's usual stream (stderr) is a terminal; a record
    carrying a ``color_message`` attribute uses it instead of ``msg`` when colors are on.
    """

    #: The stream this formatter normally writes to, consulted when ``use_colors`` is None.
    default_stream_name: str = "stderr"

    def __init__(
        self,
        fmt: str | None = None,
        datefmt: str | None = None,
        style: str = "%",
        use_colors: bool | None = None,
        *,
        validate: bool = True,
        defaults: Mapping[str, Any] | None = None,
    ) -> None:
        if fmt is None:
            fmt = _DEFAULT_FORMATS.get(style)
        super().__init__(fmt, datefmt, style, validate, defaults=defaults)  # type: ignore[arg-type]
        if use_colors is None:
            use_colors = _stream_is_tty(getattr(sys, self.default_stream_name, None))
        self.use_colors: bool = bool(use_colors)
        self._prefixes: dict[tuple[int, str], str] = {}

    def levelprefix(self, levelno: int, levelname: str) -> str:
        """Pad from the *plain* name so colored and plain lines align; cached since levels are few."""
        key = (levelno, levelname)
        prefix = self._prefixes.get(key)
        if prefix is None:
            padding = " " * max(0, 8 - len(levelname))
            color = _LEVEL_COLORS.get(levelno)
            name = click.style(levelname, fg=color) if self.use_colors and color else levelname
            prefix = self._prefixes[key] = f"{name}:{padding}"
        return prefix

    def format(self, record: logging.LogRecord) -> str:
        """Decorate a copy so other handlers of the same record never see our ANSI codes."""
        duplicate = record.__class__.__new__(record.__class__)
        duplicate.__dict__.update(record.__dict__)  # Shallow, like copy.copy but cheaper per line.
        self.decorate(duplicate)
        return super().format(duplicate)

    def decorate(self, record: logging.LogRecord) -> None:
        """Add ``levelprefix`` (and swap in ``color_message``) on the record copy before formatting."""
        record.levelprefix = self.levelprefix(record.levelno, record.levelname)
        if self.use_colors:
            color_message = record.__dict__.get("color_message")
            if color_message is not None:
                record.msg = color_message


class _StyledStatus(int):
    """An int that prints colored: ``%(s)d`` keeps working while ``%(s)s`` gets the color."""

    styled: str

    def __str__(self) -> str:
        return self.styled


class _StyledAtoms(Mapping[str, Any]):
    """A view of :class:`AccessAtoms` whose status atoms are colored, without touching the original."""

    __slots__ = ("_atoms", "_s", "_status_code")

    def __init__(self, atoms: AccessAtoms, s: int, status_code: str) -> None:
        self._atoms = atoms
        self._s = s
        self._status_code = status_code

    def __getitem__(self, key: str) -> Any:
        if key == "s":
            return self._s
        if key == "status_code":
            return self._status_code
        return self._atoms[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._atoms)

    def __len__(self) -> int:
        return len(self._atoms)


class AccessFormatter(DefaultFormatter):
    """Format access records: expose ``client_addr``/``request_line``/``status_code`` like uvicorn's
    formatter does, show ``200 OK`` rather than ``200``, and color the status by class when colors are on.

    It understands both record shapes :class:`AccessLog` emits: uvicorn's 5-tuple ``args`` (default
    format) and an :class:`AccessAtoms` mapping (custom ``--access-log-format``).
    """

    default_stream_name = "stdout"

    def __init__(
        self,
        fmt: str | None = None,
        datefmt: str | None = None,
        style: str = "%",
        use_colors: bool | None = None,
        *,
        validate: bool = True,
        defaults: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(fmt, datefmt, style, use_colors, validate=validate, defaults=defaults)
        self._statuses: dict[int, str] = {}
        self._styled_ints: dict[int, _StyledStatus] = {}
        # Only build the uvicorn-style fields when this formatter's own format asks for them.
        self._uses_fields: bool = any(
            field in self._style._fmt for field in ("client_addr", "request_line", "status_code")
        )

    def styled_int(self, status: int) -> _StyledStatus:
        """The bare status code colored by class, as an int so numeric conversions still work."""
        styled = self._styled_ints.get(status)
        if styled is None:
            styled = self._styled_ints[status] = _StyledStatus(status)
            color = _STATUS_COLORS.get(status // 100)
            styled.styled = click.style(str(status), fg=color) if color else str(status)
        return styled

    def status_text(self, status: int) -> str:
        """``200 OK``, colored by class when enabled; cached per status code."""
        text = self._statuses.get(status)
        if text is None:
            phrase = _STATUS_PHRASES.get(status)
            text = f"{status} {phrase}" if phrase else str(status)
            color = _STATUS_COLORS.get(status // 100)
            if self.use_colors and color:
                text = click.style(text, fg=color)
            self._statuses[status] = text
        return text

    def decorate(self, record: logging.LogRecord) -> None:
        super().decorate(record)
        args = record.args
        fields = self._uses_fields
        if isinstance(args, AccessAtoms):
            if self.use_colors:
                record.args = _StyledAtoms(args, self.styled_int(args.status), self.status_text(args.status))
            if fields:
                record.client_addr = args["client_addr"]
                record.request_line = args["request_line"]
                record.status_code = self.status_text(args.status)
        elif record.msg == DEFAULT_ACCESS_MESSAGE and isinstance(args, tuple) and len(args) == 5:
            client_addr, method, target, http_version, status = args
            status_text = self.status_text(status) if isinstance(status, int) else str(status)
            record.args = (client_addr, method, target, http_version, status_text)
            if fields:
                record.client_addr = client_addr
                record.request_line = f"{method} {target} HTTP/{http_version}"
                record.status_code = status_text
        elif fields:  # Someone else's record on the access logger: fill what the format references.
            status = record.__dict__.get("status_code")
            record.status_code = self.status_text(status) if isinstance(status, int) else "-"
            record.client_addr = record.__dict__.get("client_addr", "-")
            record.request_line = record.__dict__.get("request_line", "-")


# --------------------------------------------------------------------------------------------------
# Access log atoms
# --------------------------------------------------------------------------------------------------

#: uvicorn's access message; ``args`` stay uvicorn's 5-tuple so existing filters keep working.
DEFAULT_ACCESS_MESSAGE = '%s - "%s %s HTTP/%s" %s'

_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_last_date: tuple[int, str] = (-1, "")


def _common_log_date() -> str:
    """``[10/Oct/2000:13:55:36 +0000]`` in local time, English month (locale-proof); cached per second."""
    global _last_date
    now = int(time.time())
    if _last_date[0] != now:
        moment = datetime.fromtimestamp(now).astimezone()
        text = (
            f"[{moment.day:02d}/{_MONTHS[moment.month - 1]}/{moment.year:04d}:"
            f"{moment.hour:02d}:{moment.minute:02d}:{moment.second:02d} {moment.strftime('%z')}]"
        )
        _last_date = (now, text)
    return _last_date[1]


def _header(headers: Sequence[tuple[bytes, bytes]], name: bytes) -> str:
    """Case-insensitive lookup; repeated headers are joined with ',' as HTTP allows; '-' if absent."""
    values = [value for key, value in headers if key.lower() == name]
    if not values:
        return "-"
    return b",".join(values).decode("latin-1")


def format_client_addr(client: Any) -> str:
    """``host:port``, just ``host`` without a port (unix sockets), ``-`` without a client."""
    if not client or not client[0]:
        return "-"
    port = client[1] if len(client) > 1 else None
    return f"{client[0]}:{port}" if port else str(client[0])


def format_target(scope: Mapping[str, Any]) -> str:
    """The request target as the client sent it (``raw_path``), so logs cannot be split by ``%0a``."""
    path = _path_only(scope)
    query = scope.get("query_string")
    if query:
        return f"{path}?{query.decode('ascii', 'backslashreplace')}"
    return path


def _basic_auth_user(headers: Sequence[tuple[bytes, bytes]]) -> str:
    """The user of a Basic ``Authorization`` header; never the password, '-' for anything else."""
    value = _header(headers, b"authorization")
    scheme, _, credentials = value.partition(" ")
    if scheme.lower() != "basic" or not credentials:
        return "-"
    try:
        decoded = base64.b64decode(credentials.strip(), validate=True).decode("utf-8", "backslashreplace")
    except (binascii.Error, ValueError):
        return "-"
    user = decoded.partition(":")[0]
    if not user:
        return "-"
    return user if user.isprintable() else user.encode("unicode_escape").decode("ascii")


def _path_only(scope: Mapping[str, Any]) -> str:
    """Path without query, still percent-encoded: a decoded path could smuggle newlines into logs."""
    raw_path = scope.get("raw_path")
    if raw_path:
        return raw_path.decode("ascii", "backslashreplace")
    return quote(scope.get("path", "/"))


def _query(scope: Mapping[str, Any]) -> str:
    query = scope.get("query_string")
    return query.decode("ascii", "backslashreplace") if query else ""


def _method(scope: Mapping[str, Any]) -> str:
    # A scope without a method can only be a websocket handshake, which is a GET.
    return scope.get("method", "GET")


def _protocol(scope: Mapping[str, Any]) -> str:
    return f"HTTP/{scope.get('http_version', '1.1')}"


def _request_line(a: AccessAtoms) -> str:
    return f"{_method(a.scope)} {format_target(a.scope)} {_protocol(a.scope)}"


def _duration_seconds(a: AccessAtoms) -> str:
    return f"{a.duration_ns // 1_000_000_000}.{(a.duration_ns // 1_000) % 1_000_000:06d}"


def _status_code(a: AccessAtoms) -> str:
    phrase = _STATUS_PHRASES.get(a.status)
    return f"{a.status} {phrase}" if phrase else str(a.status)


_Resolver = Callable[["AccessAtoms"], Any]

#: Atoms with a fixed name; ints where gunicorn's are numbers so ``%(D)d`` works.
_SIMPLE_ATOMS: dict[str, _Resolver] = {
    "h": lambda a: (a.scope.get("client") or ("-",))[0] or "-",
    "l": lambda a: "-",
    "u": lambda a: _basic_auth_user(a.scope.get("headers", ())),
    "t": lambda a: _common_log_date(),
    "r": _request_line,
    "m": lambda a: _method(a.scope),
    "U": lambda a: _path_only(a.scope),
    "q": lambda a: _query(a.scope),
    "H": lambda a: _protocol(a.scope),
    "s": lambda a: a.status,
    "B": lambda a: a.response_bytes,
    "b": lambda a: str(a.response_bytes) if a.response_bytes else "-",
    "f": lambda a: _header(a.scope.get("headers", ()), b"referer"),
    "a": lambda a: _header(a.scope.get("headers", ()), b"user-agent"),
    "T": lambda a: a.duration_ns // 1_000_000_000,
    "M": lambda a: a.duration_ns // 1_000_000,
    "D": lambda a: a.duration_ns // 1_000,
    "L": _duration_seconds,
    "p": lambda a: f"<{os.getpid()}>",
    "client_addr": lambda a: format_client_addr(a.scope.get("client")),
    "request_line": _request_line,
    "status_code": _status_code,
}

_PARAMETRIC_ATOM = re.compile(r"\{([^{}]+)\}([ioe])")


def _resolver_for(key: str) -> _Resolver | None:
    """Build the function computing one atom; ``None`` for a name that is not an atom."""
    simple = _SIMPLE_ATOMS.get(key)
    if simple is not None:
        return simple
    match = _PARAMETRIC_ATOM.fullmatch(key)
    if match is None:
        return None
    name, kind = match.groups()
    if kind == "e":
        return lambda a: os.environ.get(name, "-")
    header = name.strip().lower().encode("latin-1", "replace")
    if kind == "i":
        return lambda a: _header(a.scope.get("headers", ()), header)
    return lambda a: _header(a.response_headers, header)


class AccessAtoms(Mapping[str, Any]):
    """The per-request atom mapping: ``fmt % atoms`` computes only the atoms ``fmt`` names.

    It is also the record's ``args``, as in gunicorn, so filters and formatters can read atoms too.
    """

    __slots__ = ("_resolvers", "duration_ns", "response_bytes", "response_headers", "scope", "status")

    def __init__(
        self,
        resolvers: dict[str, _Resolver],
        scope: Mapping[str, Any],
        status: int,
        response_headers: Sequence[tuple[bytes, bytes]],
        response_bytes: int,
        duration_ns: int,
    ) -> None:
        self._resolvers = resolvers
        self.scope = scope
        self.status = status
        self.response_headers = response_headers
        self.response_bytes = response_bytes
        self.duration_ns = duration_ns

    def __getitem__(self, key: str) -> Any:
        # KeyError (not TypeError) for non-atoms, so filters written for uvicorn's tuple fail softly.
        resolver = self._resolvers.get(key) or (_resolver_for(key) if isinstance(key, str) else None)
        if resolver is None:
            raise KeyError(key)
        return resolver(self)

    def __iter__(self) -> Iterator[str]:
        return iter(self._resolvers)

    def __len__(self) -> int:
        return len(self._resolvers)

    def __repr__(self) -> str:
        return f"<AccessAtoms {self.scope.get('method')} {self.scope.get('path')} {self.status}>"


_SAMPLE_SCOPE: dict[str, Any] = {
    "type": "http",
    "http_version": "1.1",
    "method": "GET",
    "path": "/",
    "raw_path": b"/",
    "query_string": b"",
    "headers": [],
    "client": ("127.0.0.1", 1),
}


def compile_access_format(fmt: str) -> dict[str, _Resolver]:
    """Validate ``fmt`` once and return the resolvers it needs; ``ValueError`` says what is wrong."""
    if not isinstance(fmt, str):
        raise ValueError(f"Invalid access log format {fmt!r}: expected a string.")
    if re.search(r"%(?!\()", fmt.replace("%%", "")):
        raise ValueError(
            f"Invalid access log format {fmt!r}: every field must be named, "
            "e.g. %(h)s or %({x-request-id}i)s."
        )
    resolvers: dict[str, _Resolver] = {}

    class _Probe(Mapping[str, Any]):
        """Records each key the format asks for and answers with a value of the real type."""

        def __getitem__(self, key: str) -> Any:
            resolver = _resolver_for(key)
            if resolver is None:
                raise KeyError(key)
            resolvers[key] = resolver
            return resolver(sample)

        def __iter__(self) -> Iterator[str]:
            return iter(_SIMPLE_ATOMS)

        def __len__(self) -> int:
            return len(_SIMPLE_ATOMS)

    sample = AccessAtoms({}, _SAMPLE_SCOPE, 200, [], 0, 0)
    try:
        fmt % _Probe()
    except KeyError as exc:
        raise ValueError(
            f"Invalid access log format {fmt!r}: unknown atom {exc.args[0]!r} "
            f"(use one of {', '.join(_SIMPLE_ATOMS)}, or {{name}}i, {{name}}o, {{name}}e)."
        ) from None
    except (TypeError, ValueError) as exc:
        raise ValueError(f"Invalid access log format {fmt!r}: {exc}.") from None
    return resolvers


def _emits_info(logger: logging.Logger) -> bool:
    """Would an INFO record on ``logger`` reach a handler that writes it somewhere?"""
    if logger.disabled or not logger.isEnabledFor(logging.INFO):
        return False
    current: logging.Logger | None = logger
    while current is not None:
        for handler in current.handlers:
            if handler.level <= logging.INFO and not isinstance(handler, logging.NullHandler):
                return True
        if not current.propagate:
            return False
        current = current.parent
    return False


class AccessLog:
    """One line per request on ``palfrey.access``.

    Build it after :func:`configure_logging` (in each worker is fine): the format is compiled and
    ``enabled`` decided once here, so the server's hot path can skip everything when it is False.
    """

    __slots__ = ("_message", "_resolvers", "enabled", "fmt", "logger")

    def __init__(self, fmt: str | None, logger: logging.Logger | None = None) -> None:
        self.logger: logging.Logger = logger if logger is not None else logging.getLogger("palfrey.access")
        self.fmt: str | None = fmt
        self._resolvers: dict[str, _Resolver] = {} if fmt is None else compile_access_format(fmt)
        # A format naming no atom is a constant line; logging would not treat empty args as a mapping.
        self._message: str | None = None
        if fmt is not None and not self._resolvers:
            self._message = fmt % {}
        self.enabled: bool = _emits_info(self.logger)

    def log(
        self,
        scope: Mapping[str, Any],
        status: int,
        response_headers: Sequence[tuple[bytes, bytes]],
        response_bytes: int,
        duration_ns: int,
    ) -> None:
        """Emit the access record; the line itself is only rendered if a handler formats it."""
        if not self.enabled:
            return
        extra = {"status_code": status, "duration_ns": duration_ns, "response_bytes": response_bytes}
        if self.fmt is None:
            self.logger.info(
                DEFAULT_ACCESS_MESSAGE,
                format_client_addr(scope.get("client")),
                _method(scope),
                format_target(scope),
                scope.get("http_version", "1.1"),
                status,
                extra=extra,
            )
        elif self._message is not None:
            self.logger.info(self._message, extra=extra)
        else:
            atoms = AccessAtoms(self._resolvers, scope, status, response_headers, response_bytes, duration_ns)
            self.logger.info(self.fmt, atoms, extra=extra)


# --------------------------------------------------------------------------------------------------
# Configuration
# --------------------------------------------------------------------------------------------------

_OUR_FORMATTERS = (
    "palfrey.logging.DefaultFormatter",
    "palfrey.logging.AccessFormatter",
    DefaultFormatter,
    AccessFormatter,
)


def _resolve_level(log_level: str | int) -> int:
    if isinstance(log_level, bool):
        raise LogConfigError(f"Invalid log level {log_level!r}.")
    if isinstance(log_level, int):
        return log_level
    name = str(log_level).strip().lower()
    if name in LOG_LEVELS:
        return LOG_LEVELS[name]
    if name.isdigit():
        return int(name)
    raise LogConfigError(f"Invalid log level {log_level!r}; choose from {', '.join(LOG_LEVELS)}.")


def _force_colors(config: dict[str, Any], use_colors: bool | None) -> dict[str, Any]:
    """Let ``--use-colors/--no-use-colors`` win over palfrey formatters declared in a user config.

    ``config`` is already a shallow copy; the formatters mapping is rebuilt rather than mutated.
    """
    formatters = config.get("formatters")
    if use_colors is None or not isinstance(formatters, dict):
        return config
    config["formatters"] = {
        name: {**formatter, "use_colors": use_colors}
        if isinstance(formatter, dict) and formatter.get("()") in _OUR_FORMATTERS
        else formatter
        for name, formatter in formatters.items()
    }
    return config


def _describe(exc: BaseException) -> str:
    """dictConfig hides the real reason in ``__cause__``; fold it into one line."""
    text = str(exc) or type(exc).__name__
    if isinstance(exc, KeyError):
        text = f"missing {exc}"
    cause = exc.__cause__
    if cause is not None and str(cause) not in text:
        text = f"{text}: {cause}"
    return " ".join(text.split())


def _dict_config(config: Any, source: str, use_colors: bool | None) -> None:
    if not isinstance(config, dict):
        raise LogConfigError(f"Unable to configure logging from {source}: expected a mapping at top level.")
    # Copy only what we change: a user's dict may hold objects (streams) that cannot be deep-copied.
    config = dict(config)
    # Match fileConfig below: loggers created before configuration (e.g. the app's) keep working.
    config.setdefault("disable_existing_loggers", False)
    try:
        logging.config.dictConfig(_force_colors(config, use_colors))
    except Exception as exc:
        raise LogConfigError(f"Unable to configure logging from {source}: {_describe(exc)}") from exc


def _file_config(path: str, use_colors: bool | None) -> None:
    if not os.path.isfile(path):
        raise LogConfigError(f"Log config file {path!r} does not exist.")
    source = repr(path)
    lowered = path.lower()
    if lowered.endswith(".json"):
        try:
            with open(path, encoding="utf-8") as file:
                loaded = json.load(file)
        except (OSError, ValueError) as exc:
            raise LogConfigError(f"Unable to read log config {source}: {_describe(exc)}") from exc
        _dict_config(loaded, source, use_colors)
    elif lowered.endswith((".yaml", ".yml")):
        try:
            import yaml
        except ImportError:
            raise LogConfigError(
                f"Log config {source} is YAML, which needs PyYAML: pip install 'palfrey[standard]'."
            ) from None
        try:
            with open(path, encoding="utf-8") as file:
                loaded = yaml.safe_load(file)
        except (OSError, yaml.YAMLError) as exc:
            raise LogConfigError(f"Unable to read log config {source}: {_describe(exc)}") from exc
        _dict_config(loaded, source, use_colors)
    else:
        try:
            logging.config.fileConfig(path, disable_existing_loggers=False)
        except Exception as exc:
            raise LogConfigError(f"Unable to configure logging from {source}: {_describe(exc)}") from exc


def configure_logging(
    *,
    log_config: str | os.PathLike[str] | dict[str, Any] | None,
    log_level: str | int | None,
    access_log: bool,
    use_colors: bool | None,
) -> None:
    """Apply the logging options; raises :class:`LogConfigError` (one clear line) on any failure.

    Order mirrors uvicorn: the config first, then ``log_level`` overrides it, then ``access_log=False``
    silences ``palfrey.access`` so an :class:`AccessLog` built afterwards reports ``enabled=False``.
    """
    level = None if log_level is None else _resolve_level(log_level)
    for name in PALFREY_LOGGERS:  # Undo an earlier access_log=False (reloads, tests).
        logging.getLogger(name).disabled = False
    if log_config is None:
        _dict_config(LOGGING_CONFIG, "the default config", use_colors)
    elif isinstance(log_config, dict):
        _dict_config(log_config, "the log_config dict", use_colors)
    else:
        _file_config(os.fspath(log_config), use_colors)
    if level is not None:
        for name in PALFREY_LOGGERS:
            logging.getLogger(name).setLevel(level)
    if not access_log:
        access = logging.getLogger("palfrey.access")
        access.handlers = []
        access.propagate = False
        access.disabled = True
