"""The access log: one record per request on ``palfrey.access``, in uvicorn's shape by default or
with gunicorn's atoms (``--access-log-format``). The path is hot, so :class:`AccessLog` does all its
parsing at construction and, per request, computes only the atoms the format names."""

from __future__ import annotations

import base64
import binascii
import http
import logging
import os
import re
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any
from urllib.parse import quote

# --------------------------------------------------------------------------------------------------
# Access log atoms
# --------------------------------------------------------------------------------------------------

_STATUS_PHRASES: dict[int, str] = {status.value: status.phrase for status in http.HTTPStatus}

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
        return str(raw_path.decode("ascii", "backslashreplace"))
    return quote(scope.get("path", "/"))


def _query(scope: Mapping[str, Any]) -> str:
    query = scope.get("query_string")
    return query.decode("ascii", "backslashreplace") if query else ""


def _method(scope: Mapping[str, Any]) -> str:
    # A scope without a method can only be a websocket handshake, which is a GET.
    return str(scope.get("method", "GET"))


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
        self.scope: Mapping[str, Any] = scope
        self.status: int = status
        self.response_headers: Sequence[tuple[bytes, bytes]] = response_headers
        self.response_bytes: int = response_bytes
        self.duration_ns: int = duration_ns

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
