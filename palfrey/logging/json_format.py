"""`--log-format json`: one JSON object per line for every record, for log pipelines.

A pipeline (Loki, Elasticsearch, CloudWatch, Datadog) splits its input on newlines and parses each
line, so a record must never span two lines: the traceback of a failing app goes into the `exc_info`
field of the same object instead of following it as text, and any newline inside a message is an
escaped `\\n` inside a JSON string.

Every object has `timestamp` (RFC 3339, UTC, milliseconds), `level`, `logger`, `message` and `pid`
(which process of a pre-fork server wrote it). An access record (``palfrey.access``) adds the request:
`client`, `method`, `path`, `query`, `http_version`, `status`, `bytes` and `duration` (seconds).
Fields a caller attaches with ``extra=`` are kept, so an app logging through the root logger gets
its own context into the same object.

The access fields are read from what :class:`~palfrey.logging.access.AccessLog` already hands every
record (uvicorn's 5-tuple, or the :class:`~palfrey.logging.access.AccessAtoms` mapping, plus the
`status_code`/`response_bytes`/`duration_ns` extras), so the request path does no extra work for
JSON: all of it happens here, only when a JSON handler formats the record.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping
from typing import Any

from palfrey.logging.access import (
    DEFAULT_ACCESS_MESSAGE,
    AccessAtoms,
    _method,
    _path_only,
    _query,
    format_client_addr,
)

# Attributes every LogRecord has (plus the ones palfrey's formatters and access log add): anything
# else on a record came from a caller's `extra=` and is written as a field of its own.
_STANDARD = frozenset(
    logging.LogRecord("", 0, "", 0, "", (), None).__dict__.keys()
    | {"message", "asctime", "levelprefix", "color_message", "taskName"}
    | {"status_code", "response_bytes", "duration_ns", "client_addr", "request_line"}
)


class JsonFormatter(logging.Formatter):
    """Render a record as one line of JSON (see the module docstring for the fields).

    It takes (and ignores) the arguments palfrey's text formatters take, so a ``--log-config`` can
    swap ``palfrey.logging.DefaultFormatter`` for ``palfrey.logging.JsonFormatter`` without other changes.
    """

    def __init__(
        self,
        fmt: str | None = None,
        datefmt: str | None = None,
        style: str = "%",
        use_colors: bool | None = None,
        **_: Any,
    ) -> None:
        super().__init__()
        self._second = -1
        self._stamp = ""

    def timestamp(self, created: float) -> str:
        """``2026-12-03T14:10:06.123Z``; the part up to the second is computed once per second."""
        second = int(created)
        if second != self._second:
            self._stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
            self._second = second
        millis = min(int((created - second) * 1000), 999)
        return f"{self._stamp}.{millis:03d}Z"

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        if message.endswith("\n"):  # "Exception in ASGI application\n": the traceback has its own field
            message = message.rstrip("\n")
        data: dict[str, Any] = {
            "timestamp": self.timestamp(record.created),
            "level": record.levelname,
            "logger": record.name,
            "message": message,
            "pid": record.process,
        }
        if "status_code" in record.__dict__ and "duration_ns" in record.__dict__:
            _access_fields(record, data)
        if record.exc_info:
            data["exc_info"] = self.formatException(record.exc_info)
        elif record.exc_text:
            data["exc_info"] = record.exc_text
        if record.stack_info:
            data["stack_info"] = self.formatStack(record.stack_info)
        for key, value in record.__dict__.items():
            if key not in _STANDARD and key not in data:
                data[key] = value
        return json.dumps(data, default=str, ensure_ascii=False)


def _access_fields(record: logging.LogRecord, data: dict[str, Any]) -> None:
    """The request fields of an access record, from either shape of its ``args``."""
    args = record.args
    if isinstance(args, AccessAtoms):
        scope: Mapping[str, Any] = args.scope
        data["client"] = format_client_addr(scope.get("client"))
        data["method"] = _method(scope)
        data["path"] = _path_only(scope)
        data["query"] = _query(scope)
        data["http_version"] = str(scope.get("http_version", "1.1"))
    elif record.msg == DEFAULT_ACCESS_MESSAGE and isinstance(args, tuple) and len(args) == 5:
        client_addr, method, target, http_version, _status = args
        path, _, query = str(target).partition("?")
        data["client"] = client_addr
        data["method"] = method
        data["path"] = path
        data["query"] = query
        data["http_version"] = str(http_version)
    data["status"] = record.__dict__["status_code"]
    data["bytes"] = record.__dict__.get("response_bytes")
    data["duration"] = round(record.__dict__["duration_ns"] / 1e9, 6)
